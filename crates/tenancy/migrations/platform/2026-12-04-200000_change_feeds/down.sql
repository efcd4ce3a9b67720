DROP SCHEMA platform_tenant_api CASCADE;
DROP TABLE platform.tenant_changes;
DROP TABLE platform.token_revocations;
DROP FUNCTION platform.tenant_in_effect();
