-- Invitations: the only way into someone else's organization. The invited person accepts after
-- logging in or signing up with the invited address; until then they are not a member. The link
-- carries a random token; only its SHA-256 is stored, so the table cannot be used to join.
CREATE TABLE invitations (
    id          uuid PRIMARY KEY,
    org_id      uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    -- Normalized as users.email is (accounts::model::normalize_email), compared by equality.
    email       text NOT NULL CHECK (char_length(email) BETWEEN 3 AND 254),
    role        text NOT NULL CHECK (role IN ('owner', 'admin', 'member')),
    token_hash  text NOT NULL UNIQUE,
    invited_by  uuid REFERENCES users (id) ON DELETE SET NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    accepted_at timestamptz,
    accepted_by uuid REFERENCES users (id) ON DELETE SET NULL,
    revoked_at  timestamptz,
    CHECK (accepted_at IS NULL OR revoked_at IS NULL)
);
CREATE INDEX invitations_pending_idx ON invitations (org_id, created_at DESC)
    WHERE accepted_at IS NULL AND revoked_at IS NULL;
