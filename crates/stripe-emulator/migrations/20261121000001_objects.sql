-- State of the offline Stripe emulator, in its own schema so it never mixes with the tables of a
-- program sharing the database. Objects are kept in Stripe's own JSON shape: that is what the
-- emulator serves, and what it changes.
--
-- Every statement tolerates objects that exist already: databases of the billing portal's demo
-- from before the emulator had migrations of its own hold these same tables, which are adopted
-- as they are.
CREATE SCHEMA IF NOT EXISTS stripe_emulator;

CREATE TABLE IF NOT EXISTS stripe_emulator.objects (
    id         text PRIMARY KEY,
    kind       text NOT NULL,
    customer   text,
    test_clock text,
    created    bigint NOT NULL,
    seq        bigserial NOT NULL,
    data       jsonb NOT NULL,
    -- What the emulator remembers but Stripe does not show (a session's trial days, a card's
    -- test behaviour, pending proration items, ...).
    private    jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS objects_kind_created_idx ON stripe_emulator.objects (kind, created DESC, seq DESC);
CREATE INDEX IF NOT EXISTS objects_customer_idx ON stripe_emulator.objects (customer, kind);
CREATE INDEX IF NOT EXISTS objects_lookup_key_idx ON stripe_emulator.objects ((data ->> 'lookup_key'))
    WHERE kind = 'price';

-- Saved answers to POST requests that carried an Idempotency-Key.
CREATE TABLE IF NOT EXISTS stripe_emulator.idempotency (
    key          text PRIMARY KEY,
    request_hash text NOT NULL,
    status       integer NOT NULL,
    response     jsonb NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS stripe_emulator.webhook_endpoints (
    id             text PRIMARY KEY,
    url            text NOT NULL,
    secret         text NOT NULL,
    enabled_events text[] NOT NULL DEFAULT '{*}',
    created        bigint NOT NULL
);

-- At-least-once delivery of events to endpoints, retried with backoff.
CREATE TABLE IF NOT EXISTS stripe_emulator.deliveries (
    id           bigserial PRIMARY KEY,
    event_id     text NOT NULL REFERENCES stripe_emulator.objects (id),
    endpoint_id  text NOT NULL REFERENCES stripe_emulator.webhook_endpoints (id) ON DELETE CASCADE,
    attempts     integer NOT NULL DEFAULT 0,
    next_attempt timestamptz NOT NULL DEFAULT now(),
    delivered_at timestamptz,
    last_status  integer,
    last_error   text
);
CREATE INDEX IF NOT EXISTS deliveries_due_idx ON stripe_emulator.deliveries (next_attempt) WHERE delivered_at IS NULL;

-- Emulator-wide settings: the clock offset of the global (non-test-clock) time, the chaos switch
-- and counters.
CREATE TABLE IF NOT EXISTS stripe_emulator.settings (
    id                  boolean PRIMARY KEY DEFAULT true CHECK (id),
    clock_offset_secs   bigint NOT NULL DEFAULT 0,
    chaos               boolean NOT NULL DEFAULT false,
    invoice_counter     bigint NOT NULL DEFAULT 0
);
INSERT INTO stripe_emulator.settings DEFAULT VALUES ON CONFLICT DO NOTHING;
