CREATE TABLE wh_items (
    id bigserial PRIMARY KEY,
    sku text NOT NULL UNIQUE,
    title text NOT NULL,
    price_cents integer NOT NULL CHECK (price_cents >= 0),
    status wh_stock_status NOT NULL DEFAULT 'in_stock',
    warehouse_id bigint REFERENCES wh_warehouses (id) ON DELETE RESTRICT,
    updated_at timestamptz NOT NULL DEFAULT now()
);
