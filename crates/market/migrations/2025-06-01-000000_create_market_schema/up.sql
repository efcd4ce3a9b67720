-- Market data is not tenant-specific: one shared `market` schema serves every
-- tenant. Owned by crates/market (rampart-market applies it itself and records
-- the version in market.schema_migrations).
CREATE SCHEMA IF NOT EXISTS market;

-- Daily OHLCV bars (the L3 cache; permanent).
CREATE TABLE market.prices_daily (
    symbol      text             NOT NULL,
    date        date             NOT NULL,
    open        double precision NOT NULL,
    high        double precision NOT NULL,
    low         double precision NOT NULL,
    close       double precision NOT NULL,
    adj_close   double precision,
    volume      bigint           NOT NULL DEFAULT 0,
    source      text             NOT NULL,
    fetched_at  timestamptz      NOT NULL DEFAULT now(),
    PRIMARY KEY (symbol, date),
    CONSTRAINT prices_daily_positive CHECK (open > 0 AND high > 0 AND low > 0 AND close > 0
                                            AND (adj_close IS NULL OR adj_close > 0) AND volume >= 0),
    CONSTRAINT prices_daily_high_low CHECK (high >= low)
);

-- Date ranges already fetched from a provider, holidays included, so that a
-- range is never fetched twice even where it holds no trading day.
CREATE TABLE market.fetched_ranges (
    symbol      text        NOT NULL,
    first_date  date        NOT NULL,
    last_date   date        NOT NULL,
    source      text        NOT NULL,
    fetched_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (symbol, first_date, last_date),
    CONSTRAINT fetched_ranges_order CHECK (first_date <= last_date)
);

-- The last quote fetched per symbol, served stale when every provider fails.
CREATE TABLE market.quotes_latest (
    symbol          text             PRIMARY KEY,
    price           double precision NOT NULL CHECK (price > 0),
    previous_close  double precision,
    bid             double precision,
    ask             double precision,
    volume          bigint,
    currency        text,
    as_of           timestamptz      NOT NULL,
    source          text             NOT NULL,
    fetched_at      timestamptz      NOT NULL
);
