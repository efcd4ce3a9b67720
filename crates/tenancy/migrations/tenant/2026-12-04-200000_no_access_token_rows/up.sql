-- Issue 14: access tokens are no longer recorded, one row each. Revocations
-- go to `platform.token_revocations` and are pushed to every replica; an
-- access token names its refresh-token family (`fam`) and session (`sid`).
-- A replayed authorization code revokes the family its exchange started,
-- kept on the code's row.
DROP TABLE access_tokens;
ALTER TABLE authorization_codes ADD COLUMN family_id uuid;
