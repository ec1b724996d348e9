-- migrate:up
CREATE TABLE wh_item_suppliers (
    item_id bigint NOT NULL REFERENCES wh_items (id) ON DELETE CASCADE,
    supplier_id bigint NOT NULL REFERENCES wh_suppliers (id),
    lead_time_days smallint NOT NULL DEFAULT 7,
    PRIMARY KEY (item_id, supplier_id)
);

-- migrate:down
DROP TABLE wh_item_suppliers;
