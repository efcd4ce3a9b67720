-- Hands the tenant schemas back to their tenant roles.
DO $$
DECLARE
    t record;
BEGIN
    FOR t IN
        SELECT schema_name, role_name
        FROM platform.tenants
        WHERE to_regnamespace(schema_name) IS NOT NULL
    LOOP
        EXECUTE format('ALTER SCHEMA %I OWNER TO %I', t.schema_name, t.role_name);
    END LOOP;
END $$;
