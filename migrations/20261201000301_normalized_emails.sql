-- E-mail addresses are normalized once, in Rust (trimmed, Unicode NFC, full lowercase; see
-- accounts::model::normalize_email), stored in that form and compared by plain equality. The old
-- unique index on lower(email) folded only ASCII here (the private cluster runs without a locale),
-- so `ÄDA@…` and `äda@…` could be two accounts. Existing rows are normalized here as far as SQL
-- can without depending on the locale or the encoding (trimmed, ASCII lowercase); the server
-- finishes addresses with non-ASCII letters at start-up (accounts::repo::normalize_stored_emails),
-- leaving any address that would collide with another account as it is, for an operator.
UPDATE users u SET email = lower(btrim(u.email))
WHERE u.email <> lower(btrim(u.email))
  AND NOT EXISTS (
      SELECT 1 FROM users o
      WHERE o.id <> u.id AND lower(btrim(o.email)) = lower(btrim(u.email))
  );

DROP INDEX users_email_key;
ALTER TABLE users ADD CONSTRAINT users_email_key UNIQUE (email);
