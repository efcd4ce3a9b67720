DROP TABLE valuation_case_activity;
DROP TABLE valuation_case_analyses;
DROP TABLE valuation_case_comments;
DROP TABLE valuation_case_shares;
DROP TABLE valuation_case_versions;
DROP TABLE valuation_cases;
