-- migrate:up
CREATE TYPE wh_order_channel AS ENUM ('web', 'store', 'phone');
ALTER TABLE wh_orders ADD COLUMN channel wh_order_channel NOT NULL DEFAULT 'web';

-- migrate:down
ALTER TABLE wh_orders DROP COLUMN channel;
DROP TYPE wh_order_channel;
