-- Up Migration
CREATE TABLE wh_orders (
    id bigserial PRIMARY KEY,
    number bigint NOT NULL DEFAULT nextval('wh_order_number_seq'),
    status text NOT NULL DEFAULT 'new',
    created_at timestamptz NOT NULL DEFAULT now()
);

-- Down Migration
DROP TABLE wh_orders;
