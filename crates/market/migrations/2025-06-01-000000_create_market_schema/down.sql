DROP TABLE IF EXISTS market.quotes_latest;
DROP TABLE IF EXISTS market.fetched_ranges;
DROP TABLE IF EXISTS market.prices_daily;
