-- migrate:up
ALTER TABLE wh_orders ENABLE ROW LEVEL SECURITY;
CREATE POLICY wh_orders_web_only ON wh_orders USING (channel = 'web');

-- migrate:down
DROP POLICY wh_orders_web_only ON wh_orders;
ALTER TABLE wh_orders DISABLE ROW LEVEL SECURITY;
