//! Webhook endpoints, Stripe's signature, and at-least-once delivery with retries and backoff.
//! With the chaos switch on, every event goes out twice and in shuffled order, as real Stripe
//! may deliver them.

use std::sync::Arc;
use std::time::Duration;

use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;
use sqlx::PgPool;
use tokio::sync::Notify;

use super::error::StripeError;
use super::store::{new_id, real_now, Work};

/// With chaos on, the first this-many events of a request are delivered in reverse order.
const CHAOS_SLOTS: i64 = 25;

/// A configured endpoint: where events go and the secret they are signed with.
#[derive(Debug, Clone)]
pub struct EndpointConfig {
    pub url: String,
    pub secret: String,
}

impl std::str::FromStr for EndpointConfig {
    type Err = String;

    /// `URL=SECRET`, as given on the command line or in `STRIPE_EMULATOR_WEBHOOKS`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (url, secret) = s
            .rsplit_once('=')
            .ok_or_else(|| format!("expected URL=SECRET, got {s:?}"))?;
        if crate::urls::check(url).is_err() || secret.is_empty() {
            return Err(format!(
                "expected URL=SECRET with an http(s) URL, got {s:?}"
            ));
        }
        Ok(Self {
            url: url.to_owned(),
            secret: secret.to_owned(),
        })
    }
}

/// `Stripe-Signature: t=...,v1=...`: HMAC-SHA256 of `"{t}.{payload}"` keyed with the endpoint
/// secret, exactly as Stripe computes it.
pub fn signature_header(secret: &str, timestamp: i64, payload: &str) -> String {
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret.as_bytes()) {
        Ok(mac) => mac,
        // HMAC takes keys of any length; this cannot happen.
        Err(_) => return format!("t={timestamp}"),
    };
    mac.update(format!("{timestamp}.{payload}").as_bytes());
    let signature = hex::encode(mac.finalize().into_bytes());
    format!("t={timestamp},v1={signature}")
}

/// Registers (or, for the same URL, updates) an endpoint given by configuration.
pub async fn register(pool: &PgPool, endpoint: &EndpointConfig) -> Result<String, StripeError> {
    let mut work = Work::begin(pool, None).await?;
    let id = register_in(&mut work, endpoint).await?;
    work.commit().await?;
    Ok(id)
}

/// [`register`] inside a unit of work.
pub async fn register_in(
    work: &mut Work,
    endpoint: &EndpointConfig,
) -> Result<String, StripeError> {
    let existing: Option<String> =
        sqlx::query_scalar("SELECT id FROM stripe_emulator.webhook_endpoints WHERE url = $1")
            .bind(&endpoint.url)
            .fetch_optional(work.tx())
            .await?;
    if let Some(id) = existing {
        sqlx::query(
            "UPDATE stripe_emulator.webhook_endpoints SET secret = $2, enabled_events = '{*}' WHERE id = $1",
        )
        .bind(&id)
        .bind(&endpoint.secret)
        .execute(work.tx())
        .await?;
        return Ok(id);
    }
    let id = new_id("we");
    sqlx::query(
        "INSERT INTO stripe_emulator.webhook_endpoints (id, url, secret, created) VALUES ($1, $2, $3, $4)",
    )
    .bind(&id)
    .bind(&endpoint.url)
    .bind(&endpoint.secret)
    .bind(real_now())
    .execute(work.tx())
    .await?;
    Ok(id)
}

/// How many endpoints will receive `event` (its `pending_webhooks`).
pub async fn queue_deliveries(work: &mut Work, event: &Value) -> Result<i64, StripeError> {
    let event_type = event["type"].as_str().unwrap_or_default();
    Ok(sqlx::query_scalar(
        "SELECT count(*) FROM stripe_emulator.webhook_endpoints
         WHERE NOT disabled AND ('*' = ANY(enabled_events) OR $1 = ANY(enabled_events))",
    )
    .bind(event_type)
    .fetch_one(work.tx())
    .await?)
}

/// Queues the deliveries of a stored event: once per endpoint, or with chaos twice and in
/// reverse order: the n-th event of a request waits less than the one before it, and its copy
/// comes later still, so anything a request emits arrives newest first and then again.
pub async fn insert_deliveries(
    work: &mut Work,
    event: &Value,
    index_in_request: i64,
) -> Result<(), StripeError> {
    let event_type = event["type"].as_str().unwrap_or_default();
    let copies = if work.chaos() { 2 } else { 1 };
    for copy in 0..copies {
        let delay_ms: i64 = if work.chaos() {
            (CHAOS_SLOTS - index_in_request).max(0) * 60 + copy * 400
        } else {
            0
        };
        sqlx::query(
            "INSERT INTO stripe_emulator.deliveries (event_id, endpoint_id, next_attempt)
             SELECT $1, id, now() + make_interval(secs => $3::double precision / 1000)
             FROM stripe_emulator.webhook_endpoints
             WHERE NOT disabled AND ('*' = ANY(enabled_events) OR $2 = ANY(enabled_events))",
        )
        .bind(event["id"].as_str().unwrap_or_default())
        .bind(event_type)
        .bind(delay_ms)
        .execute(work.tx())
        .await?;
    }
    Ok(())
}

/// Sends due deliveries until the process ends. Several emulator processes may share the
/// database: `SKIP LOCKED` gives each delivery to one of them.
pub async fn deliver_forever(pool: PgPool, wake: Arc<Notify>, retry_base: Duration) {
    let client = match reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
    {
        Ok(client) => client,
        Err(e) => {
            tracing::error!(error = %e, "emulator: cannot build the webhook HTTP client");
            return;
        }
    };
    loop {
        match deliver_due(&pool, &client, retry_base).await {
            Ok(0) => {
                let _ = tokio::time::timeout(Duration::from_millis(250), wake.notified()).await;
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(error = %e, "emulator: webhook delivery pass failed");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

/// One pass: claims up to 20 due deliveries, sends them, records the outcome. Returns how many
/// it handled.
async fn deliver_due(
    pool: &PgPool,
    client: &reqwest::Client,
    retry_base: Duration,
) -> Result<usize, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let due: Vec<(i64, i32, String, String, Value)> = sqlx::query_as(
        "SELECT d.id, d.attempts, e.url, e.secret, o.data
         FROM stripe_emulator.deliveries d
         JOIN stripe_emulator.webhook_endpoints e ON e.id = d.endpoint_id
         JOIN stripe_emulator.objects o ON o.id = d.event_id
         WHERE d.delivered_at IS NULL AND d.next_attempt <= now() AND NOT e.disabled
         ORDER BY d.next_attempt, d.id
         LIMIT 20
         FOR UPDATE OF d SKIP LOCKED",
    )
    .fetch_all(&mut *tx)
    .await?;
    let handled = due.len();
    for (id, attempts, url, secret, event) in due {
        let payload = event.to_string();
        let header = signature_header(&secret, real_now(), &payload);
        let outcome = client
            .post(&url)
            .header("content-type", "application/json; charset=utf-8")
            .header("stripe-signature", header)
            .header(
                "user-agent",
                "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
            )
            .body(payload)
            .send()
            .await;
        let (status, error) = match outcome {
            Ok(response) => (Some(i32::from(response.status().as_u16())), None),
            Err(e) => (None, Some(e.to_string())),
        };
        let delivered = status.is_some_and(|s| (200..300).contains(&s));
        let attempts = attempts + 1;
        // Exponential backoff from the base (Stripe retries for three days; tests want seconds).
        let backoff = retry_base.as_secs_f64() * 2f64.powi(attempts.min(16) - 1);
        sqlx::query(
            "UPDATE stripe_emulator.deliveries
             SET attempts = $2, last_status = $3, last_error = $4,
                 delivered_at = CASE WHEN $5 THEN now() END,
                 next_attempt = now() + make_interval(secs => $6)
             WHERE id = $1",
        )
        .bind(id)
        .bind(attempts)
        .bind(status)
        .bind(error)
        .bind(delivered)
        .bind(backoff)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(handled)
}

/// The API's view of an endpoint.
pub fn endpoint_object(
    id: &str,
    url: &str,
    secret: Option<&str>,
    events: &[String],
    created: i64,
    disabled: bool,
) -> Value {
    let mut object = json!({
        "id": id,
        "object": "webhook_endpoint",
        "api_version": super::store::api_version(),
        "application": null,
        "created": created,
        "description": null,
        "enabled_events": events,
        "livemode": false,
        "metadata": {},
        "status": if disabled { "disabled" } else { "enabled" },
        "url": url,
    });
    if let Some(secret) = secret {
        object["secret"] = json!(secret);
    }
    object
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_matches_stripes_documented_scheme() {
        // Computed independently: Python's hmac.new(b"whsec_test", b"1700000000.{}", sha256).
        assert_eq!(
            signature_header("whsec_test", 1_700_000_000, "{}"),
            "t=1700000000,v1=35495024f4ef3f94e5a93e22221544c4b75e9a42300cd965ab81cb85cd994e91"
        );
    }

    #[test]
    fn endpoint_config_parses_url_and_secret() {
        let e: EndpointConfig = "http://127.0.0.1:3000/webhooks/stripe=whsec_abc"
            .parse()
            .expect("parses");
        assert_eq!(e.url, "http://127.0.0.1:3000/webhooks/stripe");
        assert_eq!(e.secret, "whsec_abc");
        assert!("no-secret".parse::<EndpointConfig>().is_err());
        assert!("ftp://x=whsec".parse::<EndpointConfig>().is_err());
    }
}
