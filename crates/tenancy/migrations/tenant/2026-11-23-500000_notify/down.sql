DROP TABLE IF EXISTS sent_emails;
DROP TABLE IF EXISTS price_alerts;
DROP TABLE IF EXISTS login_device_checks;
DROP TABLE IF EXISTS known_devices;
DROP TABLE IF EXISTS email_tokens;
