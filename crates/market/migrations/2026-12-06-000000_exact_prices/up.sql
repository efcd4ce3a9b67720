-- Prices are exact decimals (rust_decimal through diesel's Numeric), as
-- portfolio amounts are: a vendor's "187.23" is kept as 187.23, not as the
-- nearest double. Unconstrained numeric holds every value a Decimal can; a
-- stored double becomes the decimal PostgreSQL prints for it (15 digits).
ALTER TABLE market.prices_daily
    ALTER COLUMN open      TYPE numeric USING open::numeric,
    ALTER COLUMN high      TYPE numeric USING high::numeric,
    ALTER COLUMN low       TYPE numeric USING low::numeric,
    ALTER COLUMN close     TYPE numeric USING close::numeric,
    ALTER COLUMN adj_close TYPE numeric USING adj_close::numeric;

ALTER TABLE market.quotes_latest
    ALTER COLUMN price          TYPE numeric USING price::numeric,
    ALTER COLUMN previous_close TYPE numeric USING previous_close::numeric,
    ALTER COLUMN bid            TYPE numeric USING bid::numeric,
    ALTER COLUMN ask            TYPE numeric USING ask::numeric;
