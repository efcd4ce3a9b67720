DROP TABLE IF EXISTS import_previews;
DROP TABLE IF EXISTS leaderboard_daily;
DROP TABLE IF EXISTS portfolio_snapshots;
DROP TABLE IF EXISTS broker_accounts;
ALTER TABLE users DROP COLUMN IF EXISTS leaderboard_opt_out;
