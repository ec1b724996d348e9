-- Up Migration
CREATE DOMAIN wh_positive_int AS integer CHECK (VALUE > 0);

-- Down Migration
DROP DOMAIN wh_positive_int;
