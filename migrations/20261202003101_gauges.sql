-- Gauges: meters whose value is a current count rather than a sum per period (agents, say),
-- set by the product through PUT /api/v1/gauges/{meter}. The members gauge is not stored here:
-- it is the organization's membership count. One row per organization and meter, overwritten.
CREATE TABLE gauge_values (
    org_id     uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    meter      text NOT NULL CHECK (char_length(meter) BETWEEN 1 AND 64),
    value      bigint NOT NULL CHECK (value >= 0),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (org_id, meter)
);
