-- Issue 11, money and prices exact: a price alert's threshold and the quote
-- that fired it are exact decimals, like positions and snapshots
-- (2026-12-02-000000_exact_amounts). The values kept are the decimals of the
-- floats' shortest text, as the API reads JSON numbers. The table keeps its
-- columns inline (2026-12-03-200000_relation_diet): the type change makes a
-- TOAST table for numeric, which STORAGE PLAIN and CLUSTER drop again.
ALTER TABLE price_alerts
    ALTER COLUMN threshold TYPE numeric(28, 10)
        USING round((threshold::text)::numeric, 10),
    ALTER COLUMN triggered_price TYPE numeric(28, 10)
        USING round((triggered_price::text)::numeric, 10);
ALTER TABLE price_alerts
    ALTER COLUMN threshold SET STORAGE PLAIN,
    ALTER COLUMN triggered_price SET STORAGE PLAIN;
CLUSTER price_alerts USING price_alerts_pkey;
ALTER TABLE price_alerts SET WITHOUT CLUSTER;
