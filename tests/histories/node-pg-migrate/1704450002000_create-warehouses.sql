-- Up Migration
CREATE TABLE wh_warehouses (
    id bigserial PRIMARY KEY,
    code text NOT NULL UNIQUE,
    name text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- Down Migration
DROP TABLE wh_warehouses;
