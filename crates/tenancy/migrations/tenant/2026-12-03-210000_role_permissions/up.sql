-- Roles become data (issue 15, EPV Valuation Pro's five tiers): what a role
-- may do is its `permissions` (permission scopes, see crates/auth/README.md
-- "Roles"), read by rampart-auth on every request (cached per tenant for
-- `auth.role_cache_secs`). The built-in roles keep what the code gave them
-- and get the cases permissions their portfolio permissions covered before;
-- the EPV tiers viewer < analyst < senior_analyst < manager < admin are
-- added. A tenant admin changes any of them (`PUT …/roles/{name}`). The
-- sets equal `Role::default_permissions` (a test compares them).
UPDATE roles SET permissions = ARRAY[
    'portfolio:read', 'portfolio:write', 'trade', 'market:read', 'analytics:read',
    'users:manage', 'clients:manage', 'apikeys:manage', 'audit:read', 'tenant:admin',
    'account:manage', 'cases:read', 'cases:write', 'cases:share'
] WHERE name = 'admin';
UPDATE roles SET permissions = ARRAY[
    'portfolio:read', 'portfolio:write', 'trade', 'market:read', 'analytics:read',
    'account:manage', 'cases:read', 'cases:write', 'cases:share'
] WHERE name = 'trader';
UPDATE roles SET permissions = ARRAY[
    'portfolio:read', 'market:read', 'analytics:read', 'account:manage', 'cases:read'
], description = 'Reads portfolios, market data, analytics and the cases shared with them'
WHERE name = 'viewer';
UPDATE roles SET permissions = ARRAY[
    'portfolio:read', 'trade', 'market:read', 'analytics:read', 'account:manage', 'cases:read'
] WHERE name = 'api_user';

INSERT INTO roles (name, description, permissions) VALUES
    ('analyst', 'Values companies: own portfolios and valuation cases', ARRAY[
        'portfolio:read', 'portfolio:write', 'market:read', 'analytics:read',
        'account:manage', 'cases:read', 'cases:write'
    ]),
    ('senior_analyst', 'An analyst who also shares cases with colleagues', ARRAY[
        'portfolio:read', 'portfolio:write', 'market:read', 'analytics:read',
        'account:manage', 'cases:read', 'cases:write', 'cases:share'
    ]),
    ('manager', 'A senior analyst who also trades, reads the audit log and manages API keys', ARRAY[
        'portfolio:read', 'portfolio:write', 'trade', 'market:read', 'analytics:read',
        'account:manage', 'cases:read', 'cases:write', 'cases:share', 'audit:read',
        'apikeys:manage'
    ])
ON CONFLICT (name) DO NOTHING;

ALTER TABLE roles ADD CONSTRAINT roles_name_slug CHECK (name ~ '^[a-z][a-z0-9_]{0,31}$');
