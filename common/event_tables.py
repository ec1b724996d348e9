"""The event tables every Orion database has, defined once: the transactional outbox and the
record of processed events (idempotent consumers).

Each app's tables.py declares `class OutboxEvent(OutboxEventColumns, Table, tablename=...)`, so
the table class itself lives in that app's module, where Piccolo's `table_finder` (with
`exclude_imported=True`) finds it, while its columns come from here (Piccolo's mixins).
"""

from piccolo.columns import JSONB, UUID, Integer, Text, Timestamptz, Varchar
from piccolo.constraints import Unique


class OutboxEventColumns:
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


class ProcessedEventColumns:
    """Events already consumed, per consumer group (idempotent consumers)."""

    id = UUID(primary_key=True)
    tenant_id = UUID(default=None, null=False)
    consumer_group = Varchar(length=255, default=None, null=False)
    event_id = UUID(default=None, null=False)
    event_type = Varchar(length=255, default=None, null=False)
    processed_at = Timestamptz()

    processed_events_tenant_id_consumer_group_event_id_key = Unique([tenant_id, consumer_group, event_id])
