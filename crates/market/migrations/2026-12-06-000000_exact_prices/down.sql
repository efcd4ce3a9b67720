ALTER TABLE market.prices_daily
    ALTER COLUMN open      TYPE double precision,
    ALTER COLUMN high      TYPE double precision,
    ALTER COLUMN low       TYPE double precision,
    ALTER COLUMN close     TYPE double precision,
    ALTER COLUMN adj_close TYPE double precision;

ALTER TABLE market.quotes_latest
    ALTER COLUMN price          TYPE double precision,
    ALTER COLUMN previous_close TYPE double precision,
    ALTER COLUMN bid            TYPE double precision,
    ALTER COLUMN ask            TYPE double precision;
