-- The API's in-memory copies (verified keys, entitlements answers) agree across instances the way
-- sessions do (20261202000901_cache_invalidation.sql): a change that concerns them tells every
-- instance, when it commits, which copy to drop.

-- A key is cached by the hash of its secret, so its notice names the hash. Only changes that
-- matter are told: marking a key used (every lookup does) changes nothing a copy holds.
CREATE FUNCTION api_key_cache_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('portal_cache', 'api_key:' || encode(OLD.secret_hash, 'hex'));
    RETURN NULL;
END;
$$;

CREATE TRIGGER api_key_changed
    AFTER UPDATE OF revoked_at, scopes, org_id, secret_hash OR DELETE ON api_keys
    FOR EACH ROW EXECUTE FUNCTION api_key_cache_notify();

-- What the entitlements answer is made of, apart from usage counters: the plan (subscriptions),
-- credits bought, granted, refunded or removed (the ledger), and gauges.
CREATE TRIGGER subscription_changed_entitlements AFTER INSERT OR UPDATE OR DELETE ON subscriptions
    FOR EACH ROW EXECUTE FUNCTION portal_cache_notify('entitlements', 'org_id');

CREATE TRIGGER credit_ledger_changed_entitlements AFTER INSERT OR UPDATE OR DELETE ON credit_ledger
    FOR EACH ROW EXECUTE FUNCTION portal_cache_notify('entitlements', 'org_id');

CREATE TRIGGER gauge_changed_entitlements AFTER INSERT OR UPDATE OR DELETE ON gauge_values
    FOR EACH ROW EXECUTE FUNCTION portal_cache_notify('entitlements', 'org_id');
