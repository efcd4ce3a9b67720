DROP TABLE platform.tenant_usage;
DROP TABLE platform.tenant_events;
DROP TABLE platform.tenant_migrations;
DROP TABLE platform.tenants;
