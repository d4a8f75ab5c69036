-- A webhook endpoint can be disabled (`POST /v1/webhook_endpoints/{id}` with `disabled=true`), as
-- in Stripe: events emitted meanwhile are not delivered to it, ever (the Events API still lists
-- them).
ALTER TABLE stripe_emulator.webhook_endpoints ADD COLUMN IF NOT EXISTS disabled boolean NOT NULL DEFAULT false;
