-- migrate:up
CREATE TABLE wh_stock_movements (
    id bigserial PRIMARY KEY,
    item_id bigint NOT NULL REFERENCES wh_items (id) ON DELETE CASCADE,
    quantity integer NOT NULL,
    moved_at timestamptz NOT NULL DEFAULT now(),
    note text
);

-- migrate:down
DROP TABLE wh_stock_movements;
