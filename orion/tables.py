"""The orion database's tables, as the service's Piccolo ORM sees them.

The database is built by the SQL of the migrations in piccolo_migrations/; these classes describe
it as closely as Piccolo can, and `piccolo migrations new orion --auto` diffs them against the
migrations' state. What Piccolo cannot express lives only in the SQL: the named indexes (incl. the
partial idx_outbox_unpublished), the update_updated_at() function and its triggers. Piccolo
writes `DEFAULT current_timestamp` where the SQL has `now()` (the same function).
NOT NULL columns without a database default have `default=None`, so the ORM sends NULL (and the
database rejects the row) rather than inventing a value when the caller leaves them out.
"""

from piccolo.columns import (
    JSONB,
    UUID,
    Array,
    ForeignKey,
    Integer,
    Numeric,
    Text,
    Timestamptz,
    Varchar,
)
from piccolo.columns.base import OnDelete, OnUpdate
from piccolo.constraints import Unique
from piccolo.table import Table

from common.event_tables import OutboxEventColumns, ProcessedEventColumns
from dbmigrate.columns import Inet


class Tenant(Table, tablename="tenants"):
    id = UUID(primary_key=True)
    name = Varchar(length=255, default=None, null=False)
    type = Varchar(length=50, default="standard")
    status = Varchar(length=50, default="active")
    settings = JSONB(default="{}", null=True)
    created_at = Timestamptz()
    updated_at = Timestamptz()


class User(Table, tablename="users"):
    id = UUID(primary_key=True)
    tenant_id = ForeignKey(
        references=Tenant,
        null=False,
        on_delete=OnDelete.no_action,
        on_update=OnUpdate.no_action,
    )
    email = Varchar(length=255, default=None, null=False)
    username = Varchar(length=255, default=None, null=False)
    display_name = Varchar(length=255, default=None, null=True)
    status = Varchar(length=50, default="active")
    created_at = Timestamptz()
    updated_at = Timestamptz()

    users_tenant_id_email_key = Unique([tenant_id, email])
    users_tenant_id_username_key = Unique([tenant_id, username])


class UserRole(Table, tablename="user_roles"):
    id = UUID(primary_key=True)
    user_id = ForeignKey(
        references=User,
        null=False,
        on_delete=OnDelete.cascade,
        on_update=OnUpdate.no_action,
    )
    role = Varchar(length=50, default=None, null=False)
    created_at = Timestamptz()

    user_roles_user_id_role_key = Unique([user_id, role])


class UserEntitlement(Table, tablename="user_entitlements"):
    id = UUID(primary_key=True)
    user_id = ForeignKey(
        references=User,
        null=False,
        unique=True,
        on_delete=OnDelete.cascade,
        on_update=OnUpdate.no_action,
    )
    asset_classes = Array(Text(), null=True)
    instruments = Array(Text(), null=True)
    venues = Array(Text(), null=True)
    max_notional = Numeric(digits=(20, 4), default=None, null=True)
    rfq_rate_limit = Integer(default=10, null=True)
    order_rate_limit = Integer(default=100, null=True)
    max_open_orders = Integer(default=100, null=True)
    created_at = Timestamptz()
    updated_at = Timestamptz()


class OutboxEvent(OutboxEventColumns, Table, tablename="outbox_events"):
    """The transactional outbox (columns in common/event_tables.py)."""


class ProcessedEvent(ProcessedEventColumns, Table, tablename="processed_events"):
    """Events already consumed, per consumer group (columns in common/event_tables.py)."""


class AuditLog(Table, tablename="audit_log"):
    """Append-only record of who changed what."""

    id = UUID(primary_key=True)
    tenant_id = UUID(default=None, null=False)
    user_id = UUID(default=None, null=True)
    action = Varchar(length=100, default=None, null=False)
    entity_type = Varchar(length=100, default=None, null=False)
    entity_id = Varchar(length=255, default=None, null=False)
    old_value = JSONB(default=None, null=True)
    new_value = JSONB(default=None, null=True)
    correlation_id = UUID(default=None, null=True)
    ip_address = Inet(default=None, null=True)
    user_agent = Text(default=None, null=True)
    created_at = Timestamptz()
