"""The rfq database's tables, as the service's Piccolo ORM sees them.

The database is built by the SQL of the migrations in piccolo_migrations/; these classes describe
it as closely as Piccolo can, and `piccolo migrations new rfq --auto` diffs them against the
migrations' state. What Piccolo cannot express lives only in the SQL: the named indexes (incl. the
partial idx_outbox_unpublished and idx_rfqs_tenant_open_expiry), update_updated_at() and its
triggers. The outbox tables have the shape of orion's, but each database owns its copy.
"""

from piccolo.columns import UUID, ForeignKey, Numeric, Text, Timestamptz, Varchar
from piccolo.columns.base import OnDelete, OnUpdate
from piccolo.constraints import Check
from piccolo.table import Table

from common.event_tables import OutboxEventColumns, ProcessedEventColumns


class OutboxEvent(OutboxEventColumns, Table, tablename="outbox_events"):
    """The transactional outbox (columns in common/event_tables.py)."""


class ProcessedEvent(ProcessedEventColumns, Table, tablename="processed_events"):
    """Events already consumed, per consumer group (columns in common/event_tables.py)."""


class Rfq(Table, tablename="rfqs"):
    """A client's request for quote on one instrument, for one tenant.

    tenant_id and requester_id are orion's tenants and users, instrument_id is marketdata's
    instruments: other databases, so no foreign keys (instrument_symbol is copied for display).
    state moves draft -> open -> quoted -> accepted / rejected / expired / cancelled; every change
    is a row of rfq_state_history.
    """

    id = UUID(primary_key=True)
    tenant_id = UUID(default=None, null=False)
    requester_id = UUID(default=None, null=False)
    instrument_id = UUID(default=None, null=False)
    instrument_symbol = Varchar(length=64, default=None, null=False)
    side = Varchar(length=4, default=None, null=False)
    quantity = Numeric(digits=(28, 8), default=None, null=False)
    limit_price = Numeric(digits=(28, 10), default=None, null=True)
    currency = Varchar(length=3, default=None, null=False)
    state = Varchar(length=20, default="open", null=False)
    expires_at = Timestamptz(default=None, null=False)
    created_at = Timestamptz()
    updated_at = Timestamptz()

    rfqs_side_check = Check("side IN ('buy', 'sell')")
    rfqs_quantity_check = Check("quantity > 0")
    rfqs_currency_check = Check("currency ~ '^[A-Z]{3}$'")
    rfqs_state_check = Check("state IN ('draft', 'open', 'quoted', 'accepted', 'rejected', 'expired', 'cancelled')")


class RfqQuote(Table, tablename="rfq_quotes"):
    """A dealer's answer to an RFQ. dealer_id is an orion user (another database: no foreign key)."""

    id = UUID(primary_key=True)
    rfq_id = ForeignKey(references=Rfq, null=False, on_delete=OnDelete.cascade, on_update=OnUpdate.no_action)
    tenant_id = UUID(default=None, null=False)
    dealer_id = UUID(default=None, null=False)
    price = Numeric(digits=(28, 10), default=None, null=False)
    quantity = Numeric(digits=(28, 8), default=None, null=False)
    state = Varchar(length=20, default="active", null=False)
    valid_until = Timestamptz(default=None, null=False)
    created_at = Timestamptz()
    updated_at = Timestamptz()

    rfq_quotes_quantity_check = Check("quantity > 0")
    rfq_quotes_state_check = Check("state IN ('active', 'accepted', 'rejected', 'withdrawn', 'expired')")


class RfqStateHistory(Table, tablename="rfq_state_history"):
    """Every state change of an RFQ (from_state is NULL for its creation), oldest first."""

    id = UUID(primary_key=True)
    rfq_id = ForeignKey(references=Rfq, null=False, on_delete=OnDelete.cascade, on_update=OnUpdate.no_action)
    tenant_id = UUID(default=None, null=False)
    from_state = Varchar(length=20, default=None, null=True)
    to_state = Varchar(length=20, default=None, null=False)
    changed_by = UUID(default=None, null=True)
    reason = Text(default=None, null=True)
    changed_at = Timestamptz()

    rfq_state_history_from_state_check = Check(
        "from_state IN ('draft', 'open', 'quoted', 'accepted', 'rejected', 'expired', 'cancelled')"
    )
    rfq_state_history_to_state_check = Check(
        "to_state IN ('draft', 'open', 'quoted', 'accepted', 'rejected', 'expired', 'cancelled')"
    )
