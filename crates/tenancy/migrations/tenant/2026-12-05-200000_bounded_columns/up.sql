-- Issue 14, the per-tenant relation budget (see 2026-12-03-200000_relation_diet):
-- three more tables whose every variable-length value is bounded by the code
-- that writes it store it inline, without a TOAST table and index (six
-- relations a tenant). The bounds, enforced before the insert:
-- authorization_codes: client_id <= 100 bytes, redirect_uri <= 2,000 bytes
-- (client registration), nonce <= 512 bytes (authorize), scope (known scopes),
-- code_challenge (43), code_hash (32); external_identities: provider <= 64,
-- subject <= 255 (OpenID Connect), email <= 254 (else not kept);
-- known_devices: fingerprint (32), label <= 160 characters, ip_prefix.
ALTER TABLE authorization_codes
    ALTER COLUMN code_hash SET STORAGE PLAIN,
    ALTER COLUMN client_id SET STORAGE PLAIN,
    ALTER COLUMN redirect_uri SET STORAGE PLAIN,
    ALTER COLUMN scope SET STORAGE PLAIN,
    ALTER COLUMN code_challenge SET STORAGE PLAIN,
    ALTER COLUMN nonce SET STORAGE PLAIN;
CLUSTER authorization_codes USING authorization_codes_pkey;
ALTER TABLE authorization_codes SET WITHOUT CLUSTER;

ALTER TABLE external_identities
    ALTER COLUMN provider SET STORAGE PLAIN,
    ALTER COLUMN subject SET STORAGE PLAIN,
    ALTER COLUMN email SET STORAGE PLAIN;
CLUSTER external_identities USING external_identities_pkey;
ALTER TABLE external_identities SET WITHOUT CLUSTER;

ALTER TABLE known_devices
    ALTER COLUMN fingerprint SET STORAGE PLAIN,
    ALTER COLUMN label SET STORAGE PLAIN,
    ALTER COLUMN ip_prefix SET STORAGE PLAIN;
CLUSTER known_devices USING known_devices_pkey;
ALTER TABLE known_devices SET WITHOUT CLUSTER;
