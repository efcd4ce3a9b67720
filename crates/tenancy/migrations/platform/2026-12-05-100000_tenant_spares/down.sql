DO $$
DECLARE s record;
BEGIN
    FOR s IN SELECT schema_name, role_name FROM platform.tenant_spares LOOP
        EXECUTE format('DROP SCHEMA IF EXISTS %I CASCADE', s.schema_name);
        EXECUTE format('DROP OWNED BY %I', s.role_name);
        EXECUTE format('DROP ROLE IF EXISTS %I', s.role_name);
    END LOOP;
END $$;
DROP TABLE platform.tenant_spares;
