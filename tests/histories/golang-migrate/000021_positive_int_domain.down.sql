DROP DOMAIN wh_positive_int;
