-- Usage history that stays small (README "Usage retention").
--
-- `usage_actions` becomes a table partitioned by month of `recorded_at` (UTC), so a month past
-- the retention (USAGE_RETENTION_MONTHS) is dropped whole instead of deleted row by row. Two
-- small tables keep what must outlive the raw rows or must be unique across partitions:
-- - `usage_action_keys`: one row per (organization, idempotency key). A unique index on a
--   partitioned table must contain the partition key, so it could not say "this key once across
--   every month"; this table does. Its rows go with their month's partition: a key older than
--   the retention is forgotten, and sending it again records a new action.
-- - `usage_daily`: actions, counts by how they were counted, and credits taken, per
--   organization, day recorded, day occurred, period and tier, kept forever. The chart, the
--   summary API, the ledger's debit lines and reconciliation read these, so they stay right
--   after a month's raw actions are gone.

ALTER TABLE usage_actions RENAME TO usage_actions_unpartitioned;
ALTER TABLE usage_actions_unpartitioned RENAME CONSTRAINT usage_actions_pkey TO usage_actions_unpartitioned_pkey;
ALTER INDEX usage_actions_org_time_idx RENAME TO usage_actions_unpartitioned_org_time_idx;
ALTER TABLE usage_actions_unpartitioned
    RENAME CONSTRAINT usage_actions_org_id_idempotency_key_key TO usage_actions_unpartitioned_key;

CREATE TABLE usage_actions (
    id                 bigint NOT NULL DEFAULT nextval('usage_actions_id_seq'),
    org_id             uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    idempotency_key    text NOT NULL CHECK (char_length(idempotency_key) BETWEEN 1 AND 255),
    tier               text NOT NULL,
    counted_as         text NOT NULL CHECK (counted_as IN ('included', 'credits', 'overage')),
    millicredits       bigint NOT NULL CHECK (millicredits >= 0),
    period_start       timestamptz NOT NULL,
    occurred_at        timestamptz NOT NULL,
    recorded_at        timestamptz NOT NULL DEFAULT now(),
    included_remaining bigint,
    balance_after      bigint NOT NULL,
    metadata           jsonb,
    api_key_id         uuid REFERENCES api_keys (id) ON DELETE SET NULL,
    PRIMARY KEY (id, recorded_at)
) PARTITION BY RANGE (recorded_at);
ALTER SEQUENCE usage_actions_id_seq OWNED BY usage_actions.id;

-- Every partition the portal made, with its range (dropping reads this, not the catalog).
CREATE TABLE usage_partitions (
    name        text PRIMARY KEY,
    month_start timestamptz NOT NULL UNIQUE,
    month_end   timestamptz NOT NULL
);

-- Where the raw actions begin: everything recorded before was dropped with its partition and
-- lives on only in usage_daily. Reconciliation compares usage_daily with raw actions from here.
CREATE TABLE usage_retention (
    only_row      boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    raw_kept_from timestamptz NOT NULL DEFAULT '-infinity'
);
INSERT INTO usage_retention DEFAULT VALUES;

-- The first instant of the month (UTC) holding `t`.
CREATE FUNCTION usage_month_start(t timestamptz) RETURNS timestamptz
LANGUAGE sql IMMUTABLE AS $$
    SELECT date_trunc('month', t AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'
$$;

-- Creates the partition for the month holding `t` unless it exists; true when it made one.
CREATE FUNCTION usage_partition_ensure(t timestamptz) RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
    lo timestamptz := usage_month_start(t);
    hi timestamptz := ((lo AT TIME ZONE 'UTC') + interval '1 month') AT TIME ZONE 'UTC';
    part text := 'usage_actions_' || to_char(lo AT TIME ZONE 'UTC', 'YYYY_MM');
BEGIN
    IF EXISTS (SELECT 1 FROM usage_partitions WHERE month_start = lo) THEN
        RETURN false;
    END IF;
    EXECUTE format('CREATE TABLE %I PARTITION OF usage_actions FOR VALUES FROM (%L) TO (%L)',
                   part, lo, hi);
    INSERT INTO usage_partitions (name, month_start, month_end) VALUES (part, lo, hi);
    RETURN true;
EXCEPTION WHEN duplicate_table OR unique_violation THEN
    -- Another instance made it at the same moment.
    RETURN false;
END $$;

-- Drops every partition whose month ended at or before `cut`, with its idempotency keys, and
-- moves the start of the raw actions to the end of the last month dropped. One transaction (the
-- caller's): the keys, the partition and the marker go together. Returns the names dropped.
CREATE FUNCTION usage_partitions_drop_before(cut timestamptz) RETURNS SETOF text
LANGUAGE plpgsql AS $$
DECLARE
    p record;
BEGIN
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

-- A partition for every month that already has actions, and for this month; the portal's
-- upkeep job makes the months ahead (usage::retention).
SELECT usage_partition_ensure(m)
FROM generate_series(
         usage_month_start(coalesce((SELECT min(recorded_at) FROM usage_actions_unpartitioned), now())),
         usage_month_start(now()),
         interval '1 month') AS m;

INSERT INTO usage_actions SELECT * FROM usage_actions_unpartitioned;

CREATE TABLE usage_action_keys (
    org_id          uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    idempotency_key text NOT NULL,
    action_id       bigint NOT NULL,
    recorded_at     timestamptz NOT NULL,
    PRIMARY KEY (org_id, idempotency_key)
);
INSERT INTO usage_action_keys (org_id, idempotency_key, action_id, recorded_at)
SELECT org_id, idempotency_key, id, recorded_at FROM usage_actions_unpartitioned;

CREATE TABLE usage_daily (
    org_id           uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    recorded_day     date NOT NULL,
    occurred_day     date NOT NULL,
    period_start     timestamptz NOT NULL,
    tier             text NOT NULL,
    included         bigint NOT NULL DEFAULT 0,
    credits          bigint NOT NULL DEFAULT 0,
    overage          bigint NOT NULL DEFAULT 0,
    -- Credits taken, and how many actions took any (the ledger's debit lines).
    millicredits     bigint NOT NULL DEFAULT 0,
    debits           bigint NOT NULL DEFAULT 0,
    last_recorded_at timestamptz NOT NULL,
    PRIMARY KEY (org_id, recorded_day, occurred_day, period_start, tier)
);
INSERT INTO usage_daily
SELECT org_id, (recorded_at AT TIME ZONE 'UTC')::date, (occurred_at AT TIME ZONE 'UTC')::date,
       period_start, tier,
       count(*) FILTER (WHERE counted_as = 'included'),
       count(*) FILTER (WHERE counted_as = 'credits'),
       count(*) FILTER (WHERE counted_as = 'overage'),
       sum(millicredits), count(*) FILTER (WHERE millicredits > 0), max(recorded_at)
FROM usage_actions_unpartitioned GROUP BY 1, 2, 3, 4, 5;

DROP TABLE usage_actions_unpartitioned;
