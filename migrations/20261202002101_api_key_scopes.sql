-- Restricted API keys: each key holds the scopes it may use. Keys made before scopes existed,
-- and keys made without naming any, hold all of them.
ALTER TABLE api_keys
    ADD COLUMN scopes text[] NOT NULL
        DEFAULT ARRAY['usage:write', 'entitlements:read', 'billing:read', 'billing:write'];
ALTER TABLE api_keys
    ADD CONSTRAINT api_keys_scopes_known CHECK (
        cardinality(scopes) > 0
        AND scopes <@ ARRAY['usage:write', 'entitlements:read', 'billing:read', 'billing:write']
    );
