-- Usage metering and prepaid credits (DESIGN.md section 3, "Usage and credits").
-- Credits are integer milli-credits. The cached balance in credit_accounts always equals
-- SUM(credit_ledger.millicredits) - SUM(usage_actions.millicredits); `reconcile` proves it.

-- Per-organization API keys. Only a SHA-256 of the secret is kept (the secret is random and
-- long, so a slow hash adds nothing); the prefix tells keys apart on the page.
CREATE TABLE api_keys (
    id           uuid PRIMARY KEY,
    org_id       uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    name         text NOT NULL CHECK (char_length(name) BETWEEN 1 AND 100),
    prefix       text NOT NULL,
    secret_hash  bytea NOT NULL UNIQUE,
    created_by   uuid REFERENCES users (id) ON DELETE SET NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_used_at timestamptz,
    revoked_at   timestamptz
);
CREATE INDEX api_keys_org_idx ON api_keys (org_id, created_at DESC);

-- The cached balance, locked (FOR UPDATE) by every change to an organization's credits, and
-- the auto top-up settings.
CREATE TABLE credit_accounts (
    org_id               uuid PRIMARY KEY REFERENCES organizations (id) ON DELETE CASCADE,
    balance_millicredits bigint NOT NULL DEFAULT 0,
    -- Overage actions since the balance was last at or above zero (the soft-limit buffer used).
    unsettled_overage    integer NOT NULL DEFAULT 0 CHECK (unsettled_overage >= 0),
    auto_top_up          boolean NOT NULL DEFAULT false,
    top_up_below_credits bigint NOT NULL DEFAULT 50 CHECK (top_up_below_credits >= 0),
    top_up_packs         integer NOT NULL DEFAULT 1 CHECK (top_up_packs BETWEEN 1 AND 100),
    top_up_monthly_cap   integer NOT NULL DEFAULT 4 CHECK (top_up_monthly_cap BETWEEN 1 AND 100),
    top_up_failures      integer NOT NULL DEFAULT 0,
    -- After a failed top-up the next one waits until then.
    top_up_not_before    timestamptz,
    updated_at           timestamptz NOT NULL DEFAULT now()
);
INSERT INTO credit_accounts (org_id) SELECT id FROM organizations;

CREATE FUNCTION open_credit_account() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO credit_accounts (org_id) VALUES (NEW.id) ON CONFLICT DO NOTHING;
    RETURN NEW;
END $$;
CREATE TRIGGER organizations_open_credit_account AFTER INSERT ON organizations
    FOR EACH ROW EXECUTE FUNCTION open_credit_account();

-- Every allowed billable action, once per (organization, idempotency key). Refused actions are
-- not recorded, so the same key may be tried again after buying credits.
CREATE TABLE usage_actions (
    id                 bigserial PRIMARY KEY,
    org_id             uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    idempotency_key    text NOT NULL CHECK (char_length(idempotency_key) BETWEEN 1 AND 255),
    tier               text NOT NULL,
    counted_as         text NOT NULL CHECK (counted_as IN ('included', 'credits', 'overage')),
    -- Taken from the balance (0 when included).
    millicredits       bigint NOT NULL CHECK (millicredits >= 0),
    period_start       timestamptz NOT NULL,
    occurred_at        timestamptz NOT NULL,
    recorded_at        timestamptz NOT NULL DEFAULT now(),
    -- What the answer said remained, so a repeated key answers exactly the same.
    included_remaining bigint,
    balance_after      bigint NOT NULL,
    metadata           jsonb,
    api_key_id         uuid REFERENCES api_keys (id) ON DELETE SET NULL,
    UNIQUE (org_id, idempotency_key)
);
CREATE INDEX usage_actions_org_time_idx ON usage_actions (org_id, occurred_at);

-- Actions per organization, period and tier, by how they were counted: the "used" of each
-- meter without counting rows on the hot path.
CREATE TABLE usage_counters (
    org_id       uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    period_start timestamptz NOT NULL,
    tier         text NOT NULL,
    included     bigint NOT NULL DEFAULT 0,
    credits      bigint NOT NULL DEFAULT 0,
    overage      bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (org_id, period_start, tier)
);

-- Everything that adds or removes credits other than actions. `reference` makes each outside
-- fact (a Checkout Session, a top-up, a refund state) count once.
CREATE TABLE credit_ledger (
    id           bigserial PRIMARY KEY,
    org_id       uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    kind         text NOT NULL CHECK (kind IN ('purchase', 'top_up', 'refund', 'grant', 'removal')),
    millicredits bigint NOT NULL,
    reason       text,
    reference    text,
    actor_id     uuid REFERENCES users (id) ON DELETE SET NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    UNIQUE (org_id, kind, reference)
);
CREATE INDEX credit_ledger_org_idx ON credit_ledger (org_id, created_at DESC);

-- Credit pack purchases: through Checkout, or charged off-session by auto top-up.
CREATE TABLE credit_purchases (
    id                    uuid PRIMARY KEY,
    org_id                uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    source                text NOT NULL CHECK (source IN ('checkout', 'auto_top_up')),
    packs                 integer NOT NULL CHECK (packs >= 1),
    millicredits          bigint NOT NULL CHECK (millicredits > 0),
    amount_cents          bigint NOT NULL,
    currency              text NOT NULL,
    status                text NOT NULL CHECK (status IN ('pending', 'paid', 'failed', 'expired')),
    checkout_session_id   text UNIQUE,
    payment_intent_id     text UNIQUE,
    refunded_cents        bigint NOT NULL DEFAULT 0,
    refunded_millicredits bigint NOT NULL DEFAULT 0,
    failure               text,
    created_at            timestamptz NOT NULL DEFAULT now(),
    settled_at            timestamptz
);
CREATE INDEX credit_purchases_org_idx ON credit_purchases (org_id, created_at DESC);
-- At most one auto top-up in flight per organization.
CREATE UNIQUE INDEX credit_purchases_one_top_up_idx ON credit_purchases (org_id)
    WHERE source = 'auto_top_up' AND status = 'pending';

-- When each warning was last sent, for the cooldown.
CREATE TABLE usage_warnings (
    org_id       uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    kind         text NOT NULL,
    tier         text NOT NULL DEFAULT '',
    last_sent_at timestamptz NOT NULL,
    PRIMARY KEY (org_id, kind, tier)
);

-- Messages to an organization's owners (warnings, auto top-up turned off), shown on the
-- dashboard and mailed when SMTP is configured.
CREATE TABLE notifications (
    id           bigserial PRIMARY KEY,
    org_id       uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    kind         text NOT NULL,
    message      text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    delivered_at timestamptz
);
CREATE INDEX notifications_org_idx ON notifications (org_id, created_at DESC);
CREATE INDEX notifications_undelivered_idx ON notifications (created_at) WHERE delivered_at IS NULL;
