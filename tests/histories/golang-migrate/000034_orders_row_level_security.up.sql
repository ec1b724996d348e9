ALTER TABLE wh_orders ENABLE ROW LEVEL SECURITY;
CREATE POLICY wh_orders_web_only ON wh_orders USING (channel = 'web');
