-- Revenue metrics (`/admin/metrics`): a snapshot of each finished day's figures, written once per
-- day by one instance (the job holds a lease; `ON CONFLICT` makes a rerun rewrite the same row).
CREATE TABLE revenue_snapshots (
    day         date PRIMARY KEY,
    -- `revenue::figures::DayFigures` as JSON: fields are only ever added.
    figures     jsonb NOT NULL,
    computed_at timestamptz NOT NULL DEFAULT now()
);

-- Every figure counts on the day the portal recorded the fact. Invoices carry only Stripe's
-- `created`, so the day an invoice was first seen paid is kept here, set by the database itself
-- whichever code path writes the invoice.
ALTER TABLE invoices ADD COLUMN paid_seen_at timestamptz;
UPDATE invoices SET paid_seen_at = created WHERE status = 'paid';

CREATE FUNCTION invoices_mark_paid_seen() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.status = 'paid' AND NEW.paid_seen_at IS NULL THEN
        NEW.paid_seen_at := now();
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER invoices_paid_seen BEFORE INSERT OR UPDATE OF status ON invoices
    FOR EACH ROW EXECUTE FUNCTION invoices_mark_paid_seen();
CREATE INDEX invoices_paid_seen_idx ON invoices (paid_seen_at) WHERE paid_seen_at IS NOT NULL;

-- Each refund of a credit pack with its day and amount: `credit_purchases.refunded_cents` is a
-- running total, so its increases are recorded as they happen.
CREATE TABLE credit_refunds (
    id           bigserial PRIMARY KEY,
    purchase_id  uuid NOT NULL REFERENCES credit_purchases (id) ON DELETE CASCADE,
    currency     text NOT NULL,
    amount_cents bigint NOT NULL CHECK (amount_cents > 0),
    at           timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX credit_refunds_at_idx ON credit_refunds (at);
INSERT INTO credit_refunds (purchase_id, currency, amount_cents, at)
SELECT id, currency, refunded_cents, coalesce(settled_at, created_at)
FROM credit_purchases WHERE refunded_cents > 0;

CREATE FUNCTION credit_purchases_record_refund() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.refunded_cents > OLD.refunded_cents THEN
        INSERT INTO credit_refunds (purchase_id, currency, amount_cents)
        VALUES (NEW.id, NEW.currency, NEW.refunded_cents - OLD.refunded_cents);
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER credit_purchases_refund AFTER UPDATE OF refunded_cents ON credit_purchases
    FOR EACH ROW EXECUTE FUNCTION credit_purchases_record_refund();

-- The per-day reads of the metrics job.
CREATE INDEX subscription_history_at_idx ON subscription_history (at);
CREATE INDEX checkout_sessions_created_idx ON checkout_sessions (created_at);
CREATE INDEX credit_purchases_settled_idx ON credit_purchases (settled_at) WHERE status = 'paid';
CREATE INDEX webhook_events_received_idx ON webhook_events (received_at);
-- Only actions that took credits: included actions (most of them) add nothing to this index.
CREATE INDEX usage_actions_credit_recorded_idx ON usage_actions (recorded_at) WHERE millicredits > 0;
