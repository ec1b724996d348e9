"""Writes the test histories: one warehouse schema's history in each source format import reads.

`python tests/histories/generate.py` rewrites tests/histories/<format>/ (the files are committed:
they are test data). The same 36 migrations in every format: tables, an enum and a value added
to it, dollar-quoted functions (`$$`, `$body$`, nested `$q$`), DO blocks, a procedure, views,
data migrations, two indexes built CONCURRENTLY (outside a transaction), an irreversible
migration without a down, one whose down is empty, and one whose up and down are both empty.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Step:
    name: str
    up: str
    down: str | None  # None: no down at all; "": a down that is present but empty
    concurrent: bool = False  # must run outside a transaction


STEPS = [
    Step(
        "create stock status enum",
        "CREATE TYPE wh_stock_status AS ENUM ('in_stock', 'reserved', 'shipped');\n",
        "DROP TYPE wh_stock_status;\n",
    ),
    Step(
        "create warehouses",
        """CREATE TABLE wh_warehouses (
    id bigserial PRIMARY KEY,
    code text NOT NULL UNIQUE,
    name text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
""",
        "DROP TABLE wh_warehouses;\n",
    ),
    Step(
        "create items",
        """CREATE TABLE wh_items (
    id bigserial PRIMARY KEY,
    sku text NOT NULL UNIQUE,
    title text NOT NULL,
    price_cents integer NOT NULL CHECK (price_cents >= 0),
    status wh_stock_status NOT NULL DEFAULT 'in_stock',
    warehouse_id bigint REFERENCES wh_warehouses (id) ON DELETE RESTRICT,
    updated_at timestamptz NOT NULL DEFAULT now()
);
""",
        "DROP TABLE wh_items;\n",
    ),
    Step(
        "touch updated_at trigger",
        """-- Keeps updated_at current; the body is dollar-quoted and holds semicolons.
CREATE FUNCTION wh_touch_updated_at() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.updated_at := now();
    RETURN NEW;
END;
$$;

CREATE TRIGGER wh_items_touch BEFORE UPDATE ON wh_items
    FOR EACH ROW EXECUTE FUNCTION wh_touch_updated_at();
""",
        "DROP TRIGGER wh_items_touch ON wh_items;\nDROP FUNCTION wh_touch_updated_at();\n",
    ),
    Step(
        "seed warehouses",
        """INSERT INTO wh_warehouses (code, name) VALUES
    ('AMS1', 'Amsterdam'),
    ('FRA1', 'Frankfurt'),
    ('LON1', 'London; Docklands'),  -- a semicolon inside a string
    ('DUB1', 'Dublin /* not a comment */');
""",
        "DELETE FROM wh_warehouses WHERE code IN ('AMS1', 'FRA1', 'LON1', 'DUB1');\n",
    ),
    Step(
        "index items by warehouse",
        "CREATE INDEX CONCURRENTLY wh_items_warehouse_idx ON wh_items (warehouse_id);\n",
        "DROP INDEX CONCURRENTLY wh_items_warehouse_idx;\n",
        concurrent=True,
    ),
    Step(
        "add item weight if missing",
        """DO $$
BEGIN
    IF NOT EXISTS (
        SELECT 1 FROM information_schema.columns
        WHERE table_name = 'wh_items' AND column_name = 'weight_grams'
    ) THEN
        ALTER TABLE wh_items ADD COLUMN weight_grams integer;
    END IF;
END
$$;
""",
        "ALTER TABLE wh_items DROP COLUMN weight_grams;\n",
    ),
    Step(
        "create stock movements",
        """CREATE TABLE wh_stock_movements (
    id bigserial PRIMARY KEY,
    item_id bigint NOT NULL REFERENCES wh_items (id) ON DELETE CASCADE,
    quantity integer NOT NULL,
    moved_at timestamptz NOT NULL DEFAULT now(),
    note text
);
""",
        "DROP TABLE wh_stock_movements;\n",
    ),
    Step(
        "seed items",
        """INSERT INTO wh_items (sku, title, price_cents, warehouse_id)
SELECT 'SKU-' || lpad(g::text, 4, '0'), 'Item ' || g, g * 125,
       (SELECT id FROM wh_warehouses WHERE code = CASE WHEN g % 2 = 0 THEN 'AMS1' ELSE 'FRA1' END)
FROM generate_series(1, 60) AS g;
""",
        "DELETE FROM wh_items WHERE sku LIKE 'SKU-%';\n",
    ),
    Step(
        "add discontinued status",
        "ALTER TYPE wh_stock_status ADD VALUE 'discontinued';\n",
        "",  # an enum value cannot be removed: the down is there, and empty
    ),
    Step(
        "stock level function",
        """CREATE FUNCTION wh_stock_level(p_item bigint) RETURNS integer
LANGUAGE sql STABLE AS $body$
    SELECT COALESCE(sum(quantity), 0)::integer FROM wh_stock_movements WHERE item_id = p_item;
$body$;
""",
        "DROP FUNCTION wh_stock_level(bigint);\n",
    ),
    Step(
        "item stock view",
        """CREATE VIEW wh_item_stock AS
SELECT i.id, i.sku, wh_stock_level(i.id) AS on_hand
FROM wh_items AS i;
""",
        "DROP VIEW wh_item_stock;\n",
    ),
    Step(
        "backfill weights",
        "UPDATE wh_items SET weight_grams = price_cents / 10 WHERE weight_grams IS NULL;\n",
        None,  # a data migration that cannot be undone: no down at all
    ),
    Step(
        "reserved number",
        "-- Kept so the numbering matches production: the change it held was reverted.\n",
        "",  # up and down both empty: a no-op in both directions
    ),
    Step(
        "create suppliers",
        """CREATE TABLE wh_suppliers (
    id bigserial PRIMARY KEY,
    name text NOT NULL,
    country char(2) NOT NULL,
    email text,
    CONSTRAINT wh_suppliers_email_check CHECK (email ~* '^[^@\\s]+@[^@\\s]+$')
);
""",
        "DROP TABLE wh_suppliers;\n",
    ),
    Step(
        "item suppliers",
        """CREATE TABLE wh_item_suppliers (
    item_id bigint NOT NULL REFERENCES wh_items (id) ON DELETE CASCADE,
    supplier_id bigint NOT NULL REFERENCES wh_suppliers (id),
    lead_time_days smallint NOT NULL DEFAULT 7,
    PRIMARY KEY (item_id, supplier_id)
);
""",
        "DROP TABLE wh_item_suppliers;\n",
    ),
    Step(
        "audit log",
        """CREATE TABLE wh_audit_log (
    id bigserial PRIMARY KEY,
    table_name text NOT NULL,
    operation text NOT NULL,
    at timestamptz NOT NULL DEFAULT now()
);

/* Nested dollar quotes: $q$ inside $fn$. */
CREATE FUNCTION wh_audit() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
    EXECUTE format($q$INSERT INTO wh_audit_log (table_name, operation) VALUES (%L, %L);$q$,
                   TG_TABLE_NAME, TG_OP);
    RETURN NULL;
END
$fn$;

CREATE TRIGGER wh_suppliers_audit AFTER INSERT OR UPDATE OR DELETE ON wh_suppliers
    FOR EACH ROW EXECUTE FUNCTION wh_audit();
""",
        """DROP TRIGGER wh_suppliers_audit ON wh_suppliers;
DROP FUNCTION wh_audit();
DROP TABLE wh_audit_log;
""",
    ),
    Step(
        "seed suppliers",
        """INSERT INTO wh_suppliers (name, country, email) VALUES
    ('O''Reilly Parts', 'IE', 'sales@oreilly.example'),
    ('Müller GmbH', 'DE', NULL),
    (E'Tab\\tSeparated Ltd', 'GB', 'tabs@example.org');
""",
        "DELETE FROM wh_suppliers WHERE country IN ('IE', 'DE', 'GB');\n",
    ),
    Step(
        "reserved items index",
        "CREATE INDEX wh_items_reserved_idx ON wh_items (warehouse_id) WHERE status = 'reserved';\n",
        "DROP INDEX wh_items_reserved_idx;\n",
    ),
    Step(
        "rename item title",
        "ALTER TABLE wh_items RENAME COLUMN title TO display_name;\n",
        "ALTER TABLE wh_items RENAME COLUMN display_name TO title;\n",
    ),
    Step(
        "positive int domain",
        "CREATE DOMAIN wh_positive_int AS integer CHECK (VALUE > 0);\n",
        "DROP DOMAIN wh_positive_int;\n",
    ),
    Step(
        "movement batch size",
        "ALTER TABLE wh_stock_movements ADD COLUMN batch_size wh_positive_int;\n",
        "ALTER TABLE wh_stock_movements DROP COLUMN batch_size;\n",
    ),
    Step(
        "initial stock counts",
        """DO $migration$
DECLARE
    item record;
BEGIN
    FOR item IN SELECT id FROM wh_items WHERE id % 10 = 0 ORDER BY id LOOP
        INSERT INTO wh_stock_movements (item_id, quantity, note) VALUES (item.id, 5, 'initial count');
    END LOOP;
END
$migration$;
""",
        "DELETE FROM wh_stock_movements WHERE note = 'initial count';\n",
    ),
    Step(
        "order number sequence",
        "CREATE SEQUENCE wh_order_number_seq START 1000 INCREMENT 10;\n",
        "DROP SEQUENCE wh_order_number_seq;\n",
    ),
    Step(
        "create orders",
        """CREATE TABLE wh_orders (
    id bigserial PRIMARY KEY,
    number bigint NOT NULL DEFAULT nextval('wh_order_number_seq'),
    status text NOT NULL DEFAULT 'new',
    created_at timestamptz NOT NULL DEFAULT now()
);
""",
        "DROP TABLE wh_orders;\n",
    ),
    Step(
        "unique order numbers",
        "CREATE UNIQUE INDEX CONCURRENTLY wh_orders_number_key ON wh_orders (number);\n",
        "DROP INDEX CONCURRENTLY wh_orders_number_key;\n",
        concurrent=True,
    ),
    Step(
        "comment on items",
        "COMMENT ON TABLE wh_items IS 'Stock keeping units; one row per SKU';\n",
        "COMMENT ON TABLE wh_items IS NULL;\n",
    ),
    Step(
        "warehouse totals",
        """CREATE MATERIALIZED VIEW wh_warehouse_totals AS
SELECT w.code, count(i.id) AS items
FROM wh_warehouses AS w LEFT JOIN wh_items AS i ON i.warehouse_id = w.id
GROUP BY w.code
WITH DATA;
""",
        "DROP MATERIALIZED VIEW wh_warehouse_totals;\n",
    ),
    Step(
        "order status check",
        """ALTER TABLE wh_orders
    ADD CONSTRAINT wh_orders_status_check CHECK (status IN ('new', 'paid', 'shipped')) NOT VALID;
ALTER TABLE wh_orders VALIDATE CONSTRAINT wh_orders_status_check;
""",
        "ALTER TABLE wh_orders DROP CONSTRAINT wh_orders_status_check;\n",
    ),
    Step(
        "item price in euros",
        "ALTER TABLE wh_items ADD COLUMN price_eur numeric GENERATED ALWAYS AS (price_cents / 100.0) STORED;\n",
        "ALTER TABLE wh_items DROP COLUMN price_eur;\n",
    ),
    Step(
        "order channel",
        """CREATE TYPE wh_order_channel AS ENUM ('web', 'store', 'phone');
ALTER TABLE wh_orders ADD COLUMN channel wh_order_channel NOT NULL DEFAULT 'web';
""",
        "ALTER TABLE wh_orders DROP COLUMN channel;\nDROP TYPE wh_order_channel;\n",
    ),
    Step(
        "restock procedure",
        """CREATE PROCEDURE wh_restock(p_item bigint, p_quantity integer)
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO wh_stock_movements (item_id, quantity, note) VALUES (p_item, p_quantity, 'restock');
END
$$;
""",
        "DROP PROCEDURE wh_restock(bigint, integer);\n",
    ),
    Step(
        "first restock",
        """DO $$
DECLARE
    first_item bigint := (SELECT min(id) FROM wh_items);  -- CALL itself takes no subquery
BEGIN
    CALL wh_restock(first_item, 7);
END
$$;
""",
        "DELETE FROM wh_stock_movements WHERE note = 'restock';\n",
    ),
    Step(
        "orders row level security",
        """ALTER TABLE wh_orders ENABLE ROW LEVEL SECURITY;
CREATE POLICY wh_orders_web_only ON wh_orders USING (channel = 'web');
""",
        "DROP POLICY wh_orders_web_only ON wh_orders;\nALTER TABLE wh_orders DISABLE ROW LEVEL SECURITY;\n",
    ),
    Step(
        "sample orders",
        """INSERT INTO wh_orders (status, channel)
SELECT (ARRAY['new', 'paid', 'shipped'])[1 + g % 3], (ARRAY['web', 'store'])[1 + g % 2]::wh_order_channel
FROM generate_series(1, 25) AS g;
""",
        "DELETE FROM wh_orders;\n",
    ),
    Step(
        "discontinue empty items",
        """UPDATE wh_items SET status = 'discontinued'
WHERE id NOT IN (SELECT item_id FROM wh_stock_movements);
""",
        "UPDATE wh_items SET status = 'in_stock' WHERE status = 'discontinued';\n",
    ),
]


def write_dbmate(folder: Path) -> None:
    for number, step in enumerate(STEPS, start=1):
        version = f"20240105{number:06d}"
        option = " transaction:false" if step.concurrent else ""
        text = f"-- migrate:up{option}\n{step.up}\n"
        if step.down is not None:
            text += f"-- migrate:down{option}\n{step.down}"
        (folder / f"{version}_{step.name.replace(' ', '_')}.sql").write_text(text)


def write_golang_migrate(folder: Path) -> None:
    for number, step in enumerate(STEPS, start=1):
        stem = f"{number:06d}_{step.name.replace(' ', '_')}"
        (folder / f"{stem}.up.sql").write_text(step.up)
        if step.down is not None:
            (folder / f"{stem}.down.sql").write_text(step.down)


def flyway_versions() -> list[str]:
    """1, 2, ..., 9, then 9.1 and 9.2 (numeric, not text, order: 9.2 < 10 < 10.5 < 11), ..."""
    versions = []
    for number in range(1, len(STEPS) + 1):
        if number in (10, 11):
            versions.append(f"9.{number - 9}")
        elif number == 20:
            versions.append("19_5")  # underscores separate parts too
        else:
            versions.append(str(number))
    return versions


def write_flyway(folder: Path) -> None:
    (folder / "sql").mkdir()  # Flyway scans its locations recursively
    for number, (version, step) in enumerate(zip(flyway_versions(), STEPS, strict=True), start=1):
        description = step.name.replace(" ", "_")
        where = folder / "sql" if number > 30 else folder
        script = where / f"V{version}__{description}.sql"
        up = step.up
        if step.concurrent and number % 2 == 0:
            up = f"-- flyway:executeInTransaction=false\n{up}"
        script.write_text(up)
        if step.concurrent and number % 2 == 1:
            script.with_name(script.name + ".conf").write_text("executeInTransaction=false\n")
        if step.down is not None:
            (where / f"U{version}__{description}.sql").write_text(step.down)


def write_node_pg_migrate(folder: Path) -> None:
    for number, step in enumerate(STEPS, start=1):
        text = f"-- Up Migration\n{step.up}\n"
        if step.down is not None:
            text += f"-- Down Migration\n{step.down}"
        (folder / f"{1704450000000 + number * 1000}_{step.name.replace(' ', '-')}.sql").write_text(text)


WRITERS = {
    "dbmate": write_dbmate,
    "golang-migrate": write_golang_migrate,
    "flyway": write_flyway,
    "node-pg-migrate": write_node_pg_migrate,
}


def main() -> None:
    for name, writer in WRITERS.items():
        folder = HERE / name
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir()
        writer(folder)


if __name__ == "__main__":
    main()
