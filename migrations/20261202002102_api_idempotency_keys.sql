-- Idempotency-Key headers of the JSON API, per organization: the request they were first sent
-- with (method, path and query, SHA-256 of the body) and, once it finished with a 2xx or 4xx,
-- the saved answer. A row without a status is a request still in flight (locked_at says since
-- when). Rows older than 24 hours are treated as gone and deleted by a job.
CREATE TABLE api_idempotency_keys (
    org_id          uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    key             text NOT NULL CHECK (char_length(key) BETWEEN 1 AND 255),
    method          text NOT NULL,
    target          text NOT NULL,
    body_sha256     bytea NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    locked_at       timestamptz NOT NULL DEFAULT now(),
    response_status smallint,
    response_headers jsonb,
    response_body   bytea,
    PRIMARY KEY (org_id, key)
);
CREATE INDEX api_idempotency_keys_created_idx ON api_idempotency_keys (created_at);
