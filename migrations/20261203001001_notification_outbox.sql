-- Notifications (src/notify/): every message is first a row of the outbox, written in the same
-- transaction as the change that causes it, then sent by the worker.
CREATE TABLE notification_outbox (
    id              bigserial PRIMARY KEY,
    -- Derived from the cause (a Stripe object and transition, a warning's window, an
    -- invitation) and the recipient: the same cause twice sends one message.
    dedupe_key      text NOT NULL UNIQUE CHECK (char_length(dedupe_key) <= 500),
    -- NULL for operators' messages that concern no one organization.
    org_id          uuid REFERENCES organizations (id) ON DELETE CASCADE,
    user_id         uuid REFERENCES users (id) ON DELETE SET NULL,
    recipient       text NOT NULL,
    kind            text NOT NULL,
    category        text NOT NULL,
    params          jsonb NOT NULL DEFAULT '{}',
    status          text NOT NULL DEFAULT 'pending'
                    CHECK (status IN ('pending', 'sent', 'failed', 'suppressed')),
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    last_error      text,
    subject         text,
    message_id      text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    sent_at         timestamptz
);
CREATE INDEX notification_outbox_due_idx ON notification_outbox (next_attempt_at, id)
    WHERE status = 'pending';
CREATE INDEX notification_outbox_org_idx ON notification_outbox (org_id, created_at DESC);

-- The categories a member turned off (a row per category turned off).
CREATE TABLE notification_opt_outs (
    user_id    uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    category   text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, category)
);

-- The mail catcher: without SMTP_URL every message lands here, for the platform admins' page.
CREATE TABLE caught_mail (
    id         bigserial PRIMARY KEY,
    outbox_id  bigint REFERENCES notification_outbox (id) ON DELETE SET NULL,
    message_id text NOT NULL,
    sender     text NOT NULL,
    recipient  text NOT NULL,
    subject    text NOT NULL,
    headers    text NOT NULL,
    text_body  text NOT NULL,
    html_body  text NOT NULL,
    caught_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX caught_mail_caught_idx ON caught_mail (caught_at DESC);
