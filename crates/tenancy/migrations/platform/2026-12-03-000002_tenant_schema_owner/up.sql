-- Tenant schemas provisioned before belong to their tenant role, which as
-- the schema's owner could drop its (append-only) audit log table. They
-- become the platform role's; the tenant role keeps USAGE and CREATE and
-- owns its other tables, as for schemas provisioned from now on.
DO $$
DECLARE
    t record;
BEGIN
    FOR t IN
        SELECT schema_name, role_name
        FROM platform.tenants
        WHERE to_regnamespace(schema_name) IS NOT NULL
    LOOP
        EXECUTE format('ALTER SCHEMA %I OWNER TO CURRENT_USER', t.schema_name);
        EXECUTE format('GRANT USAGE, CREATE ON SCHEMA %I TO %I', t.schema_name, t.role_name);
    END LOOP;
END $$;
