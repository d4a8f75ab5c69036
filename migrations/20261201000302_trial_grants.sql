-- Trials are granted once per person and once per organization (and, when the card is known,
-- once per card). A row is written in the same transaction that starts the trial, before Stripe
-- is asked, so two parallel starts meet at these unique constraints: one wins, the other is
-- refused with a message instead of failing.
CREATE TABLE trial_grants (
    id               bigserial PRIMARY KEY,
    -- SET NULL rather than CASCADE: deleting an organization or account must not hand out a
    -- fresh trial.
    org_id           uuid REFERENCES organizations (id) ON DELETE SET NULL,
    user_id          uuid REFERENCES users (id) ON DELETE SET NULL,
    plan_key         text NOT NULL,
    -- Stripe's card fingerprint (stable per card across customers), once a card is known.
    card_fingerprint text,
    granted_at       timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT trial_grants_org_key UNIQUE (org_id),
    CONSTRAINT trial_grants_user_key UNIQUE (user_id)
);
CREATE INDEX trial_grants_card_idx ON trial_grants (card_fingerprint)
    WHERE card_fingerprint IS NOT NULL;

-- Trials started before this table existed: who started them is not recorded, so only the
-- organization is known.
INSERT INTO trial_grants (org_id, plan_key, granted_at)
SELECT DISTINCT ON (h.org_id) h.org_id, h.plan_key, h.at
FROM subscription_history h
WHERE h.status = 'trialing'
ORDER BY h.org_id, h.at
ON CONFLICT DO NOTHING;
