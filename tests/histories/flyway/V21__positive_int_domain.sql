CREATE DOMAIN wh_positive_int AS integer CHECK (VALUE > 0);
