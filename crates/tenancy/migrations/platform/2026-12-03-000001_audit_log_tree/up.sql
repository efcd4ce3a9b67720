-- The tenant audit logs as verifiable logs (RFC 9162): the sealer (crate
-- rampart-auth, `audit_log`) appends each tenant's new audit rows as leaves
-- of the tenant's Merkle tree and records a signed tree head. Both tables
-- are the platform role's: tenant roles have no privilege on `platform`, so
-- what a tenant's schema holds is checked against what it cannot rewrite.

-- One row per sealed audit row: its position in the tree, the row it is
-- (`audit_log.id` in the tenant's schema) and its RFC 9162 leaf hash.
CREATE TABLE platform.audit_leaves (
    tenant_id   uuid NOT NULL,
    leaf_index  bigint NOT NULL CHECK (leaf_index >= 0),
    row_id      bigint NOT NULL,
    leaf_hash   bytea NOT NULL CHECK (octet_length(leaf_hash) = 32),
    PRIMARY KEY (tenant_id, leaf_index)
);
CREATE UNIQUE INDEX audit_leaves_by_row ON platform.audit_leaves (tenant_id, row_id);

-- Signed tree heads, oldest first per tenant. `last_row_id` is the highest
-- audit row id sealed (the next seal starts after it); `frontier` the roots
-- of the perfect subtrees of the tree (RFC 9162's compact range), so a seal
-- extends the tree without reading its leaves; `signature` a compact JWS
-- (ES256, `kid` of the platform's signing key) over the canonical encoding
-- of tenant, size, time and root.
CREATE TABLE platform.audit_tree_heads (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id    uuid NOT NULL,
    tree_size    bigint NOT NULL CHECK (tree_size >= 0),
    root_hash    bytea NOT NULL CHECK (octet_length(root_hash) = 32),
    last_row_id  bigint NOT NULL,
    frontier     bytea NOT NULL,
    signed_at    timestamptz NOT NULL,
    kid          text NOT NULL,
    signature    text NOT NULL
);
CREATE INDEX audit_tree_heads_by_tenant ON platform.audit_tree_heads (tenant_id, tree_size, id);
