-- Issue 14: access tokens are no longer recorded, one row each. Revocations
-- go to `platform.token_revocations` and are pushed to every replica; an
-- access token names its refresh-token family (`fam`) and session (`sid`).
-- A replayed authorization code revokes the family its exchange started,
-- kept on the code's row.
--
-- Tokens revoked before this migration and not yet expired keep their
-- revocation: they move to the feed (through the function tenant roles may
-- call), kept until they expire plus a minute of clock skew.
SELECT platform_tenant_api.revoke_access_tokens(
    'jti', array_agg(jti), now(), max(expires_at) + interval '60 seconds')
FROM access_tokens
WHERE revoked_at IS NOT NULL AND expires_at > now() - interval '60 seconds'
HAVING count(*) > 0;
DROP TABLE access_tokens;
ALTER TABLE authorization_codes ADD COLUMN family_id uuid;
