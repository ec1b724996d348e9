CREATE TYPE wh_order_channel AS ENUM ('web', 'store', 'phone');
ALTER TABLE wh_orders ADD COLUMN channel wh_order_channel NOT NULL DEFAULT 'web';
