DROP PROCEDURE wh_restock(bigint, integer);
