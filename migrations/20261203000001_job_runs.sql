-- What the background jobs that run once across instances did: one row per run, so operators
-- (and the metrics endpoint) can see when each job last ran, how long it took and whether it failed.
CREATE TABLE job_runs (
    id          bigserial PRIMARY KEY,
    job         text        NOT NULL,
    instance    text        NOT NULL,
    started_at  timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz,
    ok          boolean,
    error       text
);
CREATE INDEX job_runs_by_job ON job_runs (job, started_at DESC);
