-- Portal instances serving one database announce themselves here with a heartbeat, so each can
-- take its share of the API's rate limits (limit / live instances) without a query per request.
CREATE TABLE portal_instances (
    id           uuid PRIMARY KEY,
    started_at   timestamptz NOT NULL DEFAULT now(),
    heartbeat_at timestamptz NOT NULL DEFAULT now()
);
