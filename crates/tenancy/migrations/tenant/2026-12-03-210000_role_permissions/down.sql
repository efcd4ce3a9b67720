ALTER TABLE roles DROP CONSTRAINT roles_name_slug;
UPDATE users SET role = 'viewer' WHERE role NOT IN ('admin', 'trader', 'viewer', 'api_user');
DELETE FROM roles WHERE name NOT IN ('admin', 'trader', 'viewer', 'api_user');
UPDATE roles SET permissions = '{}';
