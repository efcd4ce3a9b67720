-- Instruments as vendors describe them (symbol search and symbol lookups,
-- and the ingestion job for the symbols it ingests): one row per symbol,
-- the last vendor's answer wins. Shared by every tenant like the prices.
CREATE TABLE market.instruments (
    symbol      text        PRIMARY KEY,
    name        text        NOT NULL DEFAULT '',
    exchange    text,
    asset_type  text,
    source      text        NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now()
);
