DROP TABLE platform.admin_audit;
