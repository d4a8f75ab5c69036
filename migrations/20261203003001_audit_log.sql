-- The audit log: every change to billing, written by triggers in the same transaction as the
-- change, so no path (a customer's form, the API, a webhook, a job, an admin) can skip it. Who
-- acted comes from transaction-local settings the portal sets (`audit.actor_kind`,
-- `audit.actor_id`, `audit.action`, `audit.reason`; see src/audit/context.rs); without them the
-- row says `system`. Append-only: UPDATE, DELETE and TRUNCATE are refused.

CREATE TABLE audit_log (
    id         bigserial PRIMARY KEY,
    at         timestamptz NOT NULL DEFAULT now(),
    -- No foreign key: the record outlives the organization.
    org_id     uuid,
    actor_kind text NOT NULL CHECK (actor_kind IN ('user', 'api_key', 'stripe_event', 'job', 'system')),
    actor_id   text,
    action     text NOT NULL,
    entity     text NOT NULL,
    entity_id  text,
    reason     text,
    before     jsonb,
    after      jsonb
);
CREATE INDEX audit_log_org_idx ON audit_log (org_id, id DESC);
CREATE INDEX audit_log_at_idx ON audit_log (at DESC);

CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the audit log is append-only: % is refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END $$;
CREATE TRIGGER audit_log_no_change BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();

-- Records one changed row. TG_ARGV[0] names the row's key column; the other arguments name
-- columns whose changes alone are bookkeeping, not billing (versions, timestamps, cached sums).
CREATE FUNCTION audit_change() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    old_row jsonb := CASE WHEN TG_OP <> 'INSERT' THEN to_jsonb(OLD) END;
    new_row jsonb := CASE WHEN TG_OP <> 'DELETE' THEN to_jsonb(NEW) END;
    noise   text[] := TG_ARGV[1:];
    row_key text := coalesce(new_row, old_row) ->> TG_ARGV[0];
    kind    text := nullif(current_setting('audit.actor_kind', true), '');
    actor   text := nullif(current_setting('audit.actor_id', true), '');
    event   text;
BEGIN
    IF TG_OP = 'UPDATE' AND (old_row - noise) = (new_row - noise) THEN
        RETURN NULL;
    END IF;
    -- Invoice events applied together name their invoices' events in one setting.
    event := nullif(current_setting('audit.invoice_events', true), '')::jsonb ->> row_key;
    IF event IS NOT NULL THEN
        kind := 'stripe_event';
        actor := event;
    END IF;
    INSERT INTO audit_log (org_id, actor_kind, actor_id, action, entity, entity_id, reason, before, after)
    VALUES (
        (coalesce(new_row, old_row) ->> 'org_id')::uuid,
        coalesce(kind, 'system'),
        actor,
        coalesce(nullif(current_setting('audit.action', true), ''), TG_TABLE_NAME || '.' || lower(TG_OP)),
        TG_TABLE_NAME,
        row_key,
        nullif(current_setting('audit.reason', true), ''),
        old_row,
        new_row
    );
    RETURN NULL;
END $$;

CREATE TRIGGER billing_customers_audit AFTER INSERT OR UPDATE OR DELETE ON billing_customers
    FOR EACH ROW EXECUTE FUNCTION audit_change('stripe_customer_id', 'created_at');
CREATE TRIGGER subscriptions_audit AFTER INSERT OR UPDATE OR DELETE ON subscriptions
    FOR EACH ROW EXECUTE FUNCTION audit_change('stripe_subscription_id', 'updated_at', 'stripe_version');
CREATE TRIGGER invoices_audit AFTER INSERT OR UPDATE OR DELETE ON invoices
    FOR EACH ROW EXECUTE FUNCTION audit_change('stripe_invoice_id');
CREATE TRIGGER checkout_sessions_audit AFTER INSERT OR UPDATE ON checkout_sessions
    FOR EACH ROW EXECUTE FUNCTION audit_change('id');
CREATE TRIGGER credit_ledger_audit AFTER INSERT OR UPDATE OR DELETE ON credit_ledger
    FOR EACH ROW EXECUTE FUNCTION audit_change('id');
CREATE TRIGGER credit_purchases_audit AFTER INSERT OR UPDATE ON credit_purchases
    FOR EACH ROW EXECUTE FUNCTION audit_change('id');
-- The account row changes with every credit spent; only its auto top-up settings are billing
-- decisions (the ledger records the credits).
CREATE TRIGGER credit_accounts_audit AFTER UPDATE ON credit_accounts
    FOR EACH ROW
    WHEN ((OLD.auto_top_up, OLD.top_up_below_credits, OLD.top_up_packs, OLD.top_up_monthly_cap)
          IS DISTINCT FROM (NEW.auto_top_up, NEW.top_up_below_credits, NEW.top_up_packs, NEW.top_up_monthly_cap))
    EXECUTE FUNCTION audit_change('org_id', 'balance_millicredits', 'unsettled_overage',
                                  'top_up_failures', 'top_up_not_before', 'updated_at');
