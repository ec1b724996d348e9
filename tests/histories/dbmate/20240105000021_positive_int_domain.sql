-- migrate:up
CREATE DOMAIN wh_positive_int AS integer CHECK (VALUE > 0);

-- migrate:down
DROP DOMAIN wh_positive_int;
