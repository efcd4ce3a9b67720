ALTER TABLE price_alerts
    ALTER COLUMN threshold TYPE double precision USING threshold::double precision,
    ALTER COLUMN triggered_price TYPE double precision USING triggered_price::double precision;
