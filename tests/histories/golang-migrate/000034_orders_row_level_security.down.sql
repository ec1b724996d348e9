DROP POLICY wh_orders_web_only ON wh_orders;
ALTER TABLE wh_orders DISABLE ROW LEVEL SECURITY;
