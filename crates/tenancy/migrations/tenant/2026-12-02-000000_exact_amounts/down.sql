ALTER TABLE leaderboard_daily
    ALTER COLUMN equity TYPE double precision,
    ALTER COLUMN last_equity TYPE double precision,
    ALTER COLUMN daily_pnl TYPE double precision;

ALTER TABLE portfolio_snapshots
    ALTER COLUMN equity TYPE double precision,
    ALTER COLUMN cash TYPE double precision,
    ALTER COLUMN last_equity TYPE double precision,
    ALTER COLUMN daily_pnl TYPE double precision;
