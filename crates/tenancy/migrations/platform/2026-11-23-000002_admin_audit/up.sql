-- Every change made through the admin listener, with the operator's
-- client-certificate identity (append-only by convention; the platform role
-- owns it, tenant roles cannot reach it).
CREATE TABLE platform.admin_audit (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    occurred_at     timestamptz NOT NULL DEFAULT now(),
    subject         text NOT NULL,
    sans            text[] NOT NULL DEFAULT '{}',
    fingerprint     text NOT NULL,
    method          text NOT NULL,
    route           text NOT NULL,
    path            text NOT NULL,
    status          integer NOT NULL,
    request_id      text NOT NULL,
    ip              text
);
CREATE INDEX admin_audit_by_time ON platform.admin_audit (occurred_at);
