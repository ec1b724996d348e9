"""The rfq database's tables, as the service's Piccolo ORM sees them.

The database is built by the SQL of the migrations in piccolo_migrations/; these classes describe
it as closely as Piccolo can, and `piccolo migrations new rfq --auto` diffs them against the
migrations' state. The named indexes (incl. the partial idx_outbox_unpublished) live only in the
SQL. They have the shape of orion's outbox tables, but each database owns its copy.
"""

from piccolo.columns import JSONB, UUID, Integer, Text, Timestamptz, Varchar
from piccolo.constraints import Unique
from piccolo.table import Table


class OutboxEvent(Table, tablename="outbox_events"):
    """Events to publish, written in the same transaction as the change (transactional outbox)."""

    id = UUID(primary_key=True)
    event_type = Varchar(length=255, default=None, null=False)
    event_id = UUID(default=None, null=False, unique=True)
    tenant_id = UUID(default=None, null=False)
    correlation_id = UUID(default=None, null=True)
    entity_type = Varchar(length=100, default=None, null=True)
    entity_id = Varchar(length=255, default=None, null=True)
    payload = JSONB(default=None, null=False)
    created_at = Timestamptz()
    published_at = Timestamptz(default=None, null=True)
    retry_count = Integer(default=0, null=True)
    last_error = Text(default=None, null=True)


class ProcessedEvent(Table, tablename="processed_events"):
    """Events already consumed, per consumer group (idempotent consumers)."""

    id = UUID(primary_key=True)
    tenant_id = UUID(default=None, null=False)
    consumer_group = Varchar(length=255, default=None, null=False)
    event_id = UUID(default=None, null=False)
    event_type = Varchar(length=255, default=None, null=False)
    processed_at = Timestamptz()

    processed_events_tenant_id_consumer_group_event_id_key = Unique([tenant_id, consumer_group, event_id])
