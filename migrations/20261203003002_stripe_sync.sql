-- Staying in sync with Stripe: events the catch-up job found in Stripe's Events API are marked,
-- the job keeps its cursor, and the drift check records each difference it finds.

ALTER TABLE webhook_events ADD COLUMN source text NOT NULL DEFAULT 'webhook'
    CHECK (source IN ('webhook', 'catch_up'));

-- One row: how far the catch-up has read Stripe's events.
CREATE TABLE stripe_catch_up (
    singleton      boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    -- `created` of the newest event the last run listed (the next run reads from a little before).
    cursor_created bigint,
    last_run_at    timestamptz,
    last_listed    integer NOT NULL DEFAULT 0,
    last_inserted  integer NOT NULL DEFAULT 0,
    total_inserted bigint NOT NULL DEFAULT 0
);
INSERT INTO stripe_catch_up DEFAULT VALUES;

-- A difference between our projection and Stripe, open until it is repaired or heals itself.
CREATE TABLE billing_drifts (
    id          bigserial PRIMARY KEY,
    org_id      uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    field       text NOT NULL,
    object_id   text NOT NULL,
    ours        text NOT NULL,
    stripe      text NOT NULL,
    cause       text NOT NULL,
    found_at    timestamptz NOT NULL DEFAULT now(),
    seen_at     timestamptz NOT NULL DEFAULT now(),
    resolved_at timestamptz,
    resolution  text CHECK (resolution IN ('repaired', 'healed'))
);
CREATE UNIQUE INDEX billing_drifts_open_idx ON billing_drifts (org_id, field, object_id)
    WHERE resolved_at IS NULL;
CREATE INDEX billing_drifts_recent_idx ON billing_drifts (found_at DESC);
