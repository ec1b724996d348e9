"""The marketdata database's tables, as the service's Piccolo ORM sees them.

The database is built by the SQL of the migrations in piccolo_migrations/; these classes describe
it as closely as Piccolo can, and `piccolo migrations new marketdata --auto` diffs them against the
migrations' state. What Piccolo cannot express lives only in the SQL: the named indexes (incl. the
partial idx_outbox_unpublished), update_updated_at() and its triggers, and the partitioning of
market_data_snapshots (see MarketDataSnapshot). The outbox tables have the shape of orion's, but
each database owns its copy. venues and instruments are reference data, shared by all tenants.
"""

from piccolo.columns import UUID, ForeignKey, Numeric, Timestamptz, Varchar
from piccolo.columns.base import OnDelete, OnUpdate
from piccolo.constraints import Check, Unique
from piccolo.table import Table

from common.event_tables import OutboxEventColumns, ProcessedEventColumns


class OutboxEvent(OutboxEventColumns, Table, tablename="outbox_events"):
    """The transactional outbox (columns in common/event_tables.py)."""


class ProcessedEvent(ProcessedEventColumns, Table, tablename="processed_events"):
    """Events already consumed, per consumer group (columns in common/event_tables.py)."""


class Venue(Table, tablename="venues"):
    """A trading venue, by its ISO 10383 market identifier code (MIC); reference data, not tenant-owned.

    operating_mic is the MIC of the organisation running it (XNYS for ARCX); name is free text;
    timezone an IANA name (America/New_York). Seeded from seeds/reference/marketdata/.
    """

    id = UUID(primary_key=True)
    mic = Varchar(length=4, default=None, null=False, unique=True)
    operating_mic = Varchar(length=4, default=None, null=False)
    name = Varchar(length=255, default=None, null=False)
    country = Varchar(length=2, default=None, null=False)
    timezone = Varchar(length=64, default=None, null=False)
    status = Varchar(length=20, default="active", null=False)
    created_at = Timestamptz()
    updated_at = Timestamptz()

    venues_mic_check = Check("mic ~ '^[A-Z0-9]{4}$'")
    venues_operating_mic_check = Check("operating_mic ~ '^[A-Z0-9]{4}$'")
    venues_country_check = Check("country ~ '^[A-Z]{2}$'")
    venues_status_check = Check("status IN ('active', 'inactive')")


class Instrument(Table, tablename="instruments"):
    """A tradable instrument on a venue; reference data, not tenant-owned.

    isin is NULL where none exists (FX pairs). currency is the ISO 4217 currency prices are quoted
    in (the quote currency of an FX pair). lot_size and tick_size are NULL where they depend on the
    price (tick size tables) or vary per instrument in ways we do not track.
    """

    id = UUID(primary_key=True)
    symbol = Varchar(length=64, default=None, null=False)
    isin = Varchar(length=12, default=None, null=True, unique=True)
    asset_class = Varchar(length=20, default=None, null=False)
    currency = Varchar(length=3, default=None, null=False)
    venue_id = ForeignKey(references=Venue, null=False, on_delete=OnDelete.no_action, on_update=OnUpdate.no_action)
    name = Varchar(length=255, default=None, null=False)
    status = Varchar(length=20, default="active", null=False)
    lot_size = Numeric(digits=(28, 8), default=None, null=True)
    tick_size = Numeric(digits=(28, 10), default=None, null=True)
    created_at = Timestamptz()
    updated_at = Timestamptz()

    instruments_venue_id_symbol_key = Unique([venue_id, symbol])
    instruments_isin_check = Check("isin ~ '^[A-Z]{2}[A-Z0-9]{9}[0-9]$'")
    instruments_asset_class_check = Check(
        "asset_class IN ('equity', 'fx', 'fixed_income', 'etf', 'future', 'option', 'crypto')"
    )
    instruments_currency_check = Check("currency ~ '^[A-Z]{3}$'")
    instruments_status_check = Check("status IN ('active', 'suspended', 'delisted')")
    instruments_lot_size_check = Check("lot_size > 0")
    instruments_tick_size_check = Check("tick_size > 0")


class MarketDataSnapshot(Table, tablename="market_data_snapshots"):
    """Top-of-book and last trade of an instrument at snapshot_at (one row per instrument per tick).

    What Piccolo cannot model, and lives only in the SQL of marketdata_002: the table is
    PARTITIONED BY RANGE (snapshot_at), one partition per month plus a DEFAULT partition, and its
    primary key is (instrument_id, snapshot_at, id), since a partitioned table's primary key must
    contain the partition key; Piccolo knows only single-column keys, so here `id` stands for it.
    instrument_id and venue_id are deliberately not foreign keys (ingest speed; see the migration).
    """

    id = UUID(primary_key=True)
    instrument_id = UUID(default=None, null=False)
    venue_id = UUID(default=None, null=True)
    bid = Numeric(digits=(28, 10), default=None, null=True)
    ask = Numeric(digits=(28, 10), default=None, null=True)
    last = Numeric(digits=(28, 10), default=None, null=True)
    bid_size = Numeric(digits=(28, 8), default=None, null=True)
    ask_size = Numeric(digits=(28, 8), default=None, null=True)
    last_size = Numeric(digits=(28, 8), default=None, null=True)
    snapshot_at = Timestamptz(default=None, null=False)
    received_at = Timestamptz()
