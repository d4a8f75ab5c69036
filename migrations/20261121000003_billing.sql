-- Billing: our projection of Stripe's state (Stripe is the source of truth), and the webhook inbox.

-- One Stripe customer per organization, created once.
CREATE TABLE billing_customers (
    org_id             uuid PRIMARY KEY REFERENCES organizations (id) ON DELETE CASCADE,
    stripe_customer_id text NOT NULL UNIQUE,
    created_at         timestamptz NOT NULL DEFAULT now()
);

-- The organization's current subscription as Stripe last told us.
CREATE TABLE subscriptions (
    org_id                 uuid PRIMARY KEY REFERENCES organizations (id) ON DELETE CASCADE,
    stripe_subscription_id text NOT NULL UNIQUE,
    plan_key               text NOT NULL,
    status                 text NOT NULL,
    trial_end              timestamptz,
    current_period_start   timestamptz,
    current_period_end     timestamptz,
    cancel_at_period_end   boolean NOT NULL DEFAULT false,
    -- When the renewal payment first failed: the 7-day grace period counts from here.
    past_due_since         timestamptz,
    -- After a downgrade the organization keeps its old plan until the period it paid for ends.
    kept_plan_key          text,
    kept_until             timestamptz,
    -- `created` of the newest Stripe event (or fetch) applied, to refuse older ones.
    stripe_version         bigint NOT NULL DEFAULT 0,
    updated_at             timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE subscription_history (
    id                     bigserial PRIMARY KEY,
    org_id                 uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    stripe_subscription_id text NOT NULL,
    plan_key               text NOT NULL,
    status                 text NOT NULL,
    source                 text NOT NULL,
    at                     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX subscription_history_org_idx ON subscription_history (org_id, at DESC);

CREATE TABLE checkout_sessions (
    id         text PRIMARY KEY,
    org_id     uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    plan_key   text,
    status     text NOT NULL,
    url        text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
-- One open checkout per organization at a time.
CREATE UNIQUE INDEX checkout_sessions_one_open_idx ON checkout_sessions (org_id) WHERE status = 'open';

CREATE TABLE invoices (
    stripe_invoice_id  text PRIMARY KEY,
    org_id             uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    number             text,
    status             text NOT NULL,
    currency           text NOT NULL,
    amount_due         bigint NOT NULL,
    amount_paid        bigint NOT NULL,
    period_start       timestamptz,
    period_end         timestamptz,
    hosted_invoice_url text,
    invoice_pdf        text,
    created            timestamptz NOT NULL
);
CREATE INDEX invoices_org_idx ON invoices (org_id, created DESC);

-- Every webhook event, stored as received before it is applied.
CREATE TABLE webhook_events (
    id              text PRIMARY KEY,
    type            text NOT NULL,
    api_version     text,
    created         bigint NOT NULL,
    payload         jsonb NOT NULL,
    status          text NOT NULL DEFAULT 'pending'
                    CHECK (status IN ('pending', 'applied', 'ignored', 'failed')),
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    last_error      text,
    org_id          uuid REFERENCES organizations (id) ON DELETE SET NULL,
    received_at     timestamptz NOT NULL DEFAULT now(),
    applied_at      timestamptz
);
CREATE INDEX webhook_events_due_idx ON webhook_events (next_attempt_at) WHERE status = 'pending';
CREATE INDEX webhook_events_org_idx ON webhook_events (org_id, received_at DESC);
CREATE INDEX webhook_events_type_idx ON webhook_events (type, received_at DESC);
