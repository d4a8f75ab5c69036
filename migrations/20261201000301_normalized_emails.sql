-- E-mail addresses are normalized once, in Rust (trimmed, Unicode NFC, full lowercase; see
-- accounts::model::normalize_email), stored in that form and compared by plain equality. The old
-- unique index on lower(email) folded only ASCII here (the private cluster runs without a locale),
-- so `ÄDA@…` and `äda@…` could be two accounts. Existing rows are normalized as far as SQL can
-- (NFC and ASCII lowercase); the server finishes non-ASCII ones at start-up
-- (accounts::repo::normalize_stored_emails), leaving any address that would collide as it is.
UPDATE users u SET email = lower(normalize(btrim(u.email), NFC))
WHERE u.email <> lower(normalize(btrim(u.email), NFC))
  AND NOT EXISTS (
      SELECT 1 FROM users o
      WHERE o.id <> u.id AND lower(normalize(btrim(o.email), NFC)) = lower(normalize(btrim(u.email), NFC))
  );

DROP INDEX users_email_key;
ALTER TABLE users ADD CONSTRAINT users_email_key UNIQUE (email);
