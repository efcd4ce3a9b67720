-- Tenant schemas built ahead of demand from the tenant template (crate
-- rampart-tenancy, module `spares`): a provisioning claims one and renames
-- its schema and role to the new tenant's, instead of running the template's
-- DDL (~140 relations) while the caller waits. A spare is used only when its
-- template version and checksum are the running template's; stale ones are
-- dropped by the next replenish.
CREATE TABLE platform.tenant_spares (
    schema_name text PRIMARY KEY,
    role_name   text NOT NULL UNIQUE,
    version     text NOT NULL,
    checksum    text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
