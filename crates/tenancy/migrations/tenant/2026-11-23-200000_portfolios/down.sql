DROP TABLE IF EXISTS portfolio_activity;
DROP TABLE IF EXISTS portfolio_comments;
DROP TABLE IF EXISTS portfolio_shares;
