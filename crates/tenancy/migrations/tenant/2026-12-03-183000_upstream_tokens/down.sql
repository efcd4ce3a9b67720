DROP TABLE upstream_tokens;
ALTER TABLE upstream_providers DROP COLUMN options;
