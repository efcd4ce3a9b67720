-- Issue 14, the per-tenant relation budget: five indexes that no query can
-- use (each one a relation and a file per tenant, and a write per insert).
--
-- The cleanup deletes sessions and refresh tokens with an OR of expiry and
-- revocation times (and rotation for refresh tokens): an index on one arm
-- of an OR cannot serve it, so both sweeps read the table either way.
DROP INDEX sessions_expiry;
DROP INDEX refresh_tokens_expiry;
-- E-mail tokens are found by id (the key) or by user and purpose
-- (email_tokens_by_user); expiry is checked on the row found.
DROP INDEX email_tokens_expiry;
-- Nothing filters or sorts on checked_at: a check is found by its session.
DROP INDEX login_device_checks_time;
-- Login challenges live minutes; a challenge is found by id, and the sweep
-- of expired ones reads a table of at most those minutes' logins.
DROP INDEX login_challenges_expiry;
