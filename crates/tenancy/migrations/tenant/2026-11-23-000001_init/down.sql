DROP TABLE portfolio_metrics_daily, prices_daily, positions, portfolio_versions, portfolios, instruments, audit_log, sessions, users, roles;
