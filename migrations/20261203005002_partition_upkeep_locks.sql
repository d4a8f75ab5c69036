-- Making or dropping a month's partition locks the partitioned table and, for its foreign keys,
-- the tables they point at (organizations, api_keys). Taken one by one in the middle of the DDL,
-- those locks could deadlock with a request that writes an organization and then a key, and
-- PostgreSQL might abort the request rather than the upkeep. So the upkeep takes every lock first,
-- in one order, and gives up after a short wait (before the deadlock detector's one second): the
-- request always goes ahead, and the upkeep tries again (it runs months ahead of need).

CREATE OR REPLACE FUNCTION usage_partition_upkeep_locks() RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM set_config('lock_timeout', '500ms', true);
    LOCK TABLE organizations, api_keys IN SHARE ROW EXCLUSIVE MODE;
    LOCK TABLE usage_actions IN ACCESS EXCLUSIVE MODE;
END $$;

CREATE OR REPLACE FUNCTION usage_partition_ensure(t timestamptz) RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
    lo timestamptz := usage_month_start(t);
    hi timestamptz := ((lo AT TIME ZONE 'UTC') + interval '1 month') AT TIME ZONE 'UTC';
    part text := 'usage_actions_' || to_char(lo AT TIME ZONE 'UTC', 'YYYY_MM');
BEGIN
    IF EXISTS (SELECT 1 FROM usage_partitions WHERE month_start = lo) THEN
        RETURN false;
    END IF;
    PERFORM usage_partition_upkeep_locks();
    EXECUTE format('CREATE TABLE %I PARTITION OF usage_actions FOR VALUES FROM (%L) TO (%L)',
                   part, lo, hi);
    INSERT INTO usage_partitions (name, month_start, month_end) VALUES (part, lo, hi);
    RETURN true;
EXCEPTION WHEN duplicate_table OR unique_violation THEN
    -- Another instance made it at the same moment.
    RETURN false;
END $$;

CREATE OR REPLACE FUNCTION usage_partitions_drop_before(cut timestamptz) RETURNS SETOF text
LANGUAGE plpgsql AS $$
DECLARE
    p record;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM usage_partitions WHERE month_end <= cut) THEN
        RETURN;
    END IF;
    PERFORM usage_partition_upkeep_locks();
    FOR p IN SELECT name, month_start, month_end FROM usage_partitions
             WHERE month_end <= cut ORDER BY month_start LOOP
        -- The keys of this month's actions (found through the partition, so no index on
        -- recorded_at is kept on the keys for this once-a-month delete).
        EXECUTE format('DELETE FROM usage_action_keys k USING %I a
                        WHERE k.org_id = a.org_id AND k.idempotency_key = a.idempotency_key
                          AND k.recorded_at < %L', p.name, p.month_end);
        UPDATE usage_retention SET raw_kept_from = greatest(raw_kept_from, p.month_end);
        EXECUTE format('DROP TABLE %I', p.name);
        DELETE FROM usage_partitions WHERE name = p.name;
        RETURN NEXT p.name;
    END LOOP;
END $$;
