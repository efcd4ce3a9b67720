-- The platform registry: one row per tenant, the per-tenant migration state,
-- and the provisioning/lifecycle event log. Everything lives in `platform`;
-- tenant schemas never reference it (no cross-schema foreign keys), so tenant
-- schemas can be distributed across a Citus cluster.
CREATE SCHEMA IF NOT EXISTS platform;

CREATE TABLE platform.tenants (
    id                  uuid PRIMARY KEY,
    slug                text NOT NULL UNIQUE CHECK (slug ~ '^[a-z][a-z0-9_]{2,39}$'),
    display_name        text NOT NULL,
    status              text NOT NULL DEFAULT 'provisioning'
                        CHECK (status IN ('provisioning', 'active', 'suspended', 'deactivated', 'purged')),
    schema_name         text NOT NULL UNIQUE,
    role_name           text NOT NULL UNIQUE,
    settings            jsonb NOT NULL DEFAULT '{}'::jsonb,
    feature_flags       jsonb NOT NULL DEFAULT '{}'::jsonb,
    is_canary           boolean NOT NULL DEFAULT false,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    suspended_at        timestamptz,
    deactivated_at      timestamptz,
    retention_deadline  timestamptz,
    purged_at           timestamptz
);

-- One row per tenant: the central state that lets one query find the
-- tenants behind the newest template version.
CREATE TABLE platform.tenant_migrations (
    tenant_id   uuid PRIMARY KEY REFERENCES platform.tenants (id),
    version     text NOT NULL,
    checksum    text NOT NULL,
    status      text NOT NULL CHECK (status IN ('ok', 'running', 'failed')),
    error       text,
    attempts    integer NOT NULL DEFAULT 0,
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX tenant_migrations_behind ON platform.tenant_migrations (version, status);

CREATE TABLE platform.tenant_events (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id   uuid,
    slug        text NOT NULL,
    event       text NOT NULL,
    detail      jsonb NOT NULL DEFAULT '{}'::jsonb,
    actor       text,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX tenant_events_by_tenant ON platform.tenant_events (tenant_id, created_at);

-- Checkout counters flushed from memory (usage reporting).
CREATE TABLE platform.tenant_usage (
    tenant_id   uuid PRIMARY KEY REFERENCES platform.tenants (id),
    checkouts   bigint NOT NULL DEFAULT 0,
    updated_at  timestamptz NOT NULL DEFAULT now()
);
