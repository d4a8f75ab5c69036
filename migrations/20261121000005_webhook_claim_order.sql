-- The webhook workers claim pending events oldest first (ORDER BY created, received_at ... LIMIT
-- 100 FOR UPDATE SKIP LOCKED). Indexed in that order, a claim reads the 100 rows it takes; the
-- index on next_attempt_at made every claim read and sort the whole backlog, payloads included.
CREATE INDEX webhook_events_pending_idx ON webhook_events (created, received_at) WHERE status = 'pending';
DROP INDEX webhook_events_due_idx;
