-- Two feeds every server replica follows with one query for all tenants:
-- access-token revocations and announced changes of cached tenant data.
--
-- Access-token revocations, pushed to every server replica (crate
-- rampart-auth, `revocation`). Access tokens have no rows of their own: a
-- row here names one revoked token (`jti`), a refresh-token family or a
-- login session whose tokens are all revoked, or a user or client whose
-- tokens issued up to `revoked_at` are revoked. Each replica reads the rows
-- of the transactions that were not yet visible at its previous read
-- (`xact` against the snapshot's xmin), so one indexed query per interval
-- keeps every replica's verdicts fresh for every tenant. A row is kept until
-- no token it names can still pass verification (`expires_at`).
CREATE TABLE platform.token_revocations (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    xact        bigint NOT NULL DEFAULT (pg_current_xact_id()::text::bigint),
    tenant_id   uuid NOT NULL,
    kind        text NOT NULL CHECK (kind IN ('jti', 'family', 'session', 'user', 'client')),
    subject     text NOT NULL CHECK (length(subject) BETWEEN 1 AND 200),
    revoked_at  timestamptz NOT NULL,
    expires_at  timestamptz NOT NULL
);
CREATE INDEX token_revocations_by_xact ON platform.token_revocations (xact);
CREATE INDEX token_revocations_by_expiry ON platform.token_revocations (expires_at);

-- The tenant whose role is in effect (`with_tenant` sets it; a tenant role
-- cannot set another's), or an error: what the functions below record for.
CREATE FUNCTION platform.tenant_in_effect()
RETURNS uuid
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    tenant uuid;
BEGIN
    SELECT t.id INTO tenant FROM platform.tenants t
    WHERE t.role_name = current_setting('role') AND t.status <> 'purged';
    IF tenant IS NULL THEN
        RAISE EXCEPTION 'the role in effect is no tenant''s' USING ERRCODE = '42501';
    END IF;
    RETURN tenant;
END
$$;

-- Tenant roles cannot write the platform schema. They record revocations
-- through these functions, which runs as the platform role and takes the
-- tenant from the role in effect (`with_tenant` sets it): a tenant can only
-- record for itself, and only insert.
CREATE SCHEMA platform_tenant_api;
GRANT USAGE ON SCHEMA platform_tenant_api TO PUBLIC;

CREATE FUNCTION platform_tenant_api.revoke_access_tokens(
    kind text, subjects text[], revoked_at timestamptz, expires_at timestamptz)
RETURNS uuid LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
    INSERT INTO platform.token_revocations (tenant_id, kind, subject, revoked_at, expires_at)
    SELECT platform.tenant_in_effect(), kind, s, revoked_at, expires_at FROM unnest(subjects) AS s
    RETURNING tenant_id
$$;

-- Changes of tenant data that replicas cache (crate rampart-tenancy,
-- `ChangeFeed`): a role's permissions, ... A service announces a change of a
-- topic in the transaction that made it; every replica reads the rows of the
-- transactions not yet visible at its previous read and moves the
-- generation its cache entries are keyed by. Rows are kept an hour.
CREATE TABLE platform.tenant_changes (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    xact        bigint NOT NULL DEFAULT (pg_current_xact_id()::text::bigint),
    tenant_id   uuid NOT NULL,
    topic       text NOT NULL CHECK (length(topic) BETWEEN 1 AND 64),
    changed_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX tenant_changes_by_xact ON platform.tenant_changes (xact);

CREATE FUNCTION platform_tenant_api.announce_change(topic text)
RETURNS uuid LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
    INSERT INTO platform.tenant_changes (tenant_id, topic)
    VALUES (platform.tenant_in_effect(), topic)
    RETURNING tenant_id
$$;
