-- Snapshot and leaderboard amounts become exact decimals (crates/members):
-- the broker reports them as decimal text, and as floats 100000.3 - 100000.1
-- was 0.20000000000436557. A float converts to the decimal of its 15
-- significant digits, the amount it stood for. Returns stay floats: they are
-- ratios for ranking, not amounts.
ALTER TABLE portfolio_snapshots
    ALTER COLUMN equity TYPE numeric(28, 10),
    ALTER COLUMN cash TYPE numeric(28, 10),
    ALTER COLUMN last_equity TYPE numeric(28, 10),
    ALTER COLUMN daily_pnl TYPE numeric(28, 10);

ALTER TABLE leaderboard_daily
    ALTER COLUMN equity TYPE numeric(28, 10),
    ALTER COLUMN last_equity TYPE numeric(28, 10),
    ALTER COLUMN daily_pnl TYPE numeric(28, 10);
