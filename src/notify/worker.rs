//! The sender: claims due outbox rows with `FOR UPDATE SKIP LOCKED` (any number of instances side
//! by side each get their own rows), renders and sends them concurrently, and records each
//! outcome. A claim pushes the row's next attempt past a lease, so a row whose instance died is
//! taken again after it; a temporary failure is retried with exponential backoff; a permanent
//! refusal (5xx) or the last attempt ends the row as `failed`, with the server's answer.

use std::sync::Arc;
use std::time::Duration;

use lettre::message::Mailbox;
use serde_json::Value;
use sqlx::PgPool;
use tokio::task::JoinSet;
use uuid::Uuid;

use super::kinds::Kind;
use super::mailer::{Mailer, Outgoing, SendError};
use super::templates::Templates;
use super::token;
use crate::web::csrf::CsrfKey;

/// Rows claimed at once.
const BATCH: i64 = 100;
/// How long a claimed row stays with its instance before another may take it.
const LEASE_SECONDS: f64 = 120.0;
/// How often an idle worker looks for due rows.
const IDLE_POLL: Duration = Duration::from_millis(500);

/// What the sender needs besides the database.
#[derive(Clone)]
pub struct SenderConfig {
    pub mailer: Mailer,
    pub templates: Arc<Templates>,
    pub from: Mailbox,
    /// The portal's public address, for links (no trailing slash).
    pub public_url: String,
    /// Signs unsubscribe links.
    pub key: CsrfKey,
    /// The first retry's delay; each later one doubles it (capped at six hours).
    pub retry_base: Duration,
    /// Attempts before a temporarily failing row ends `failed`.
    pub max_attempts: i32,
}

/// Sends until the task is aborted.
pub async fn work_forever(pool: PgPool, config: SenderConfig) {
    loop {
        match send_due(&pool, &config).await {
            Ok(n) if n as i64 >= BATCH => continue,
            Ok(_) => tokio::time::sleep(IDLE_POLL).await,
            Err(e) => {
                tracing::warn!(error = format!("{e:#}"), "sending notifications failed");
                tokio::time::sleep(IDLE_POLL * 4).await;
            }
        }
    }
}

#[derive(sqlx::FromRow)]
struct Claimed {
    id: i64,
    kind: String,
    recipient: String,
    user_id: Option<Uuid>,
    category: String,
    params: Value,
    attempts: i32,
    opted_out: bool,
}

/// What became of one row.
struct Outcome {
    id: i64,
    status: &'static str,
    error: Option<String>,
    subject: Option<String>,
    message_id: Option<String>,
    retry_in: f64,
}

/// Sends one batch of due rows; returns how many were claimed.
pub async fn send_due(pool: &PgPool, config: &SenderConfig) -> anyhow::Result<usize> {
    let claimed: Vec<Claimed> = sqlx::query_as(
        "UPDATE notification_outbox o
         SET attempts = o.attempts + 1, next_attempt_at = now() + make_interval(secs => $2)
         FROM (SELECT id FROM notification_outbox
               WHERE status = 'pending' AND next_attempt_at <= now()
               ORDER BY next_attempt_at, id LIMIT $1
               FOR UPDATE SKIP LOCKED) due
         WHERE o.id = due.id
         RETURNING o.id, o.kind, o.recipient, o.user_id, o.category, o.params, o.attempts,
                   EXISTS (SELECT 1 FROM notification_opt_outs x
                           WHERE x.user_id = o.user_id AND x.category = o.category) AS opted_out",
    )
    .bind(BATCH)
    .bind(LEASE_SECONDS)
    .fetch_all(pool)
    .await?;
    let count = claimed.len();
    if count == 0 {
        return Ok(0);
    }
    let config = Arc::new(config.clone());
    let mut outcomes = Vec::with_capacity(count);
    let mut tasks = JoinSet::new();
    let mut rows = claimed.into_iter();
    let limit = config.mailer.concurrency();
    loop {
        while tasks.len() < limit {
            let Some(row) = rows.next() else { break };
            let config = config.clone();
            tasks.spawn(async move { deliver(&config, row).await });
        }
        match tasks.join_next().await {
            Some(Ok(outcome)) => outcomes.push(outcome),
            Some(Err(e)) => tracing::error!(error = %e, "a notification send task failed"),
            None => break,
        }
    }
    record(pool, &outcomes).await?;
    Ok(count)
}

async fn deliver(config: &SenderConfig, row: Claimed) -> Outcome {
    let mut outcome = Outcome {
        id: row.id,
        status: "failed",
        error: None,
        subject: None,
        message_id: None,
        retry_in: 0.0,
    };
    let Some(kind) = Kind::parse(&row.kind) else {
        outcome.error = Some(format!("unknown notification kind {}", row.kind));
        return outcome;
    };
    let category = kind.category();
    if row.opted_out && category.optional() && row.category == category.as_str() {
        outcome.status = "suppressed";
        return outcome;
    }
    // The link in the message opens a page with a button (link scanners only GET); the
    // List-Unsubscribe header names the RFC 8058 one-click endpoint mail clients POST to.
    let token = match (category.optional(), row.user_id) {
        (true, Some(user)) => Some(token::issue(&config.key, user, category)),
        _ => None,
    };
    let unsubscribe = token
        .as_ref()
        .map(|t| format!("{}/unsubscribe/{t}", config.public_url));
    let one_click = token
        .as_ref()
        .map(|t| format!("{}/unsubscribe/one-click/{t}", config.public_url));
    let values = values_for(config, &row, unsubscribe.as_deref());
    let rendered = match config.templates.render(kind, &values) {
        Ok(r) => r,
        Err(e) => {
            outcome.error = Some(format!("rendering {}: {e}", kind.as_str()));
            return outcome;
        }
    };
    let domain = config.from.email.domain().to_owned();
    let message_id = format!(
        "<notification-{}-{}@{domain}>",
        row.id,
        Uuid::new_v4().simple()
    );
    let sent = config
        .mailer
        .send(&Outgoing {
            outbox_id: row.id,
            from: &config.from,
            to: &row.recipient,
            message_id: &message_id,
            rendered: &rendered,
            unsubscribe: one_click.as_deref(),
        })
        .await;
    outcome.subject = Some(rendered.subject);
    match sent {
        Ok(()) => {
            outcome.status = "sent";
            outcome.message_id = Some(message_id);
        }
        Err(SendError::Permanent(e)) => outcome.error = Some(e),
        Err(SendError::Temporary(e)) => {
            tracing::info!(id = row.id, attempt = row.attempts, error = %e, "a notification will be retried");
            outcome.error = Some(e);
            if row.attempts < config.max_attempts {
                outcome.status = "pending";
                outcome.retry_in = backoff(config.retry_base, row.attempts).as_secs_f64();
            }
        }
    }
    outcome
}

/// The delay after the `attempt`-th try: base, 2×base, 4×base… at most six hours.
pub fn backoff(base: Duration, attempt: i32) -> Duration {
    let doublings = attempt.saturating_sub(1).clamp(0, 20) as u32;
    base.saturating_mul(2u32.saturating_pow(doublings))
        .min(Duration::from_secs(6 * 3600))
}

/// The stored values plus the links every template may use.
fn values_for(config: &SenderConfig, row: &Claimed, unsubscribe: Option<&str>) -> Value {
    let base = &config.public_url;
    let mut values = match &row.params {
        Value::Object(map) => map.clone(),
        _ => serde_json::Map::new(),
    };
    let slug = values
        .get("org_slug")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let org = format!("{base}/orgs/{slug}");
    let mut put = |k: &str, v: String| {
        values.insert(k.to_owned(), Value::from(v));
    };
    put("portal_url", base.clone());
    put("org_url", org.clone());
    put("billing_url", format!("{org}/billing"));
    put("plans_url", format!("{org}/plans"));
    put("credits_url", format!("{org}/credits"));
    put("settings_url", format!("{base}/settings/notifications"));
    put(
        "unsubscribe_url",
        unsubscribe.unwrap_or_default().to_owned(),
    );
    put("recipient", row.recipient.clone());
    values.entry("org_name").or_insert(Value::from(""));
    Value::Object(values)
}

async fn record(pool: &PgPool, outcomes: &[Outcome]) -> sqlx::Result<()> {
    let ids: Vec<i64> = outcomes.iter().map(|o| o.id).collect();
    let statuses: Vec<&str> = outcomes.iter().map(|o| o.status).collect();
    let errors: Vec<Option<String>> = outcomes.iter().map(|o| o.error.clone()).collect();
    let subjects: Vec<Option<String>> = outcomes.iter().map(|o| o.subject.clone()).collect();
    let message_ids: Vec<Option<String>> = outcomes.iter().map(|o| o.message_id.clone()).collect();
    let retry: Vec<f64> = outcomes.iter().map(|o| o.retry_in).collect();
    sqlx::query(
        "UPDATE notification_outbox o
         SET status = u.status, last_error = u.error,
             subject = coalesce(u.subject, o.subject),
             message_id = coalesce(u.message_id, o.message_id),
             sent_at = CASE WHEN u.status = 'sent' THEN now() ELSE o.sent_at END,
             next_attempt_at = CASE WHEN u.status = 'pending'
                                    THEN now() + make_interval(secs => u.retry) ELSE o.next_attempt_at END
         FROM UNNEST($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[], $6::float8[])
              AS u(id, status, error, subject, message_id, retry)
         WHERE o.id = u.id",
    )
    .bind(&ids)
    .bind(&statuses)
    .bind(&errors)
    .bind(&subjects)
    .bind(&message_ids)
    .bind(&retry)
    .execute(pool)
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::backoff;
    use std::time::Duration;

    #[test]
    fn retries_back_off_exponentially_up_to_six_hours() {
        let base = Duration::from_secs(30);
        assert_eq!(backoff(base, 1), Duration::from_secs(30));
        assert_eq!(backoff(base, 2), Duration::from_secs(60));
        assert_eq!(backoff(base, 4), Duration::from_secs(240));
        assert_eq!(backoff(base, 40), Duration::from_secs(6 * 3600));
    }
}
