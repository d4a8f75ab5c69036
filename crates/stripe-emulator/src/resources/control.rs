//! The emulator's own controls (not Stripe's API), under `/_emulator`: move the global clock,
//! switch duplicate and out-of-order delivery on or off, register an endpoint with a known
//! secret, and see what was delivered.

use serde_json::{json, Value};

use crate::api::Call;
use crate::billing::Engine;
use crate::error::StripeError;
use crate::store::Work;
use crate::Emulator;

/// `GET /_emulator/clock`: the global clock.
pub async fn clock(w: &mut Work, _: &Emulator, _: &mut Call) -> Result<Value, StripeError> {
    Ok(json!({ "now": w.global_now(), "offset_seconds": w.clock_offset() }))
}

/// `POST /_emulator/clock/advance` with `seconds=N` or `to=TIMESTAMP`: moves the global clock
/// forward and runs everything that falls due, in order.
pub async fn advance(
    w: &mut Work,
    emulator: &Emulator,
    call: &mut Call,
) -> Result<Value, StripeError> {
    let seconds = call.params.integer("seconds")?;
    let to = call.params.integer("to")?;
    let now = w.global_now();
    let target = match (seconds, to) {
        (Some(s), None) if s > 0 => now + s,
        (None, Some(t)) if t > now => t,
        _ => {
            return Err(StripeError::invalid_request(
                "Give either seconds (> 0) or to (a timestamp after the emulator's now).",
                Some("seconds"),
            ))
        }
    };
    w.set_clock_offset(w.clock_offset() + (target - now))
        .await?;
    let mut engine = Engine {
        w,
        base: &emulator.base,
    };
    let ran = engine.run_due(None, target).await?;
    Ok(json!({ "now": target, "offset_seconds": engine.w.clock_offset(), "ran": ran }))
}

/// `POST /_emulator/chaos` with `enabled=true|false`.
pub async fn chaos(w: &mut Work, _: &Emulator, call: &mut Call) -> Result<Value, StripeError> {
    let enabled = call
        .params
        .boolean("enabled")?
        .ok_or_else(|| StripeError::missing_param("enabled"))?;
    w.set_chaos(enabled).await?;
    Ok(json!({ "chaos": enabled }))
}

/// `POST /_emulator/webhook_endpoints` with `url` and `secret`: an endpoint whose secret the
/// caller chooses (real Stripe generates it; the portal's configuration names it).
pub async fn register_endpoint(
    w: &mut Work,
    _: &Emulator,
    call: &mut Call,
) -> Result<Value, StripeError> {
    let url = call.params.required_url("url")?;
    let secret = call.params.required_string("secret")?;
    let spec: crate::webhooks::EndpointConfig = format!("{url}={secret}")
        .parse()
        .map_err(|e: String| StripeError::invalid_request(e, Some("url")))?;
    let id = crate::webhooks::register_in(w, &spec).await?;
    Ok(json!({ "id": id, "url": spec.url }))
}

/// `GET /_emulator/deliveries`: every delivery attempt's state, newest first.
pub async fn deliveries(w: &mut Work, _: &Emulator, _: &mut Call) -> Result<Value, StripeError> {
    let rows: Vec<(String, String, i32, Option<i32>, bool)> = sqlx::query_as(
        "SELECT d.event_id, e.url, d.attempts, d.last_status, d.delivered_at IS NOT NULL
         FROM stripe_emulator.deliveries d JOIN stripe_emulator.webhook_endpoints e ON e.id = d.endpoint_id
         ORDER BY d.id DESC LIMIT 1000",
    )
    .fetch_all(w.tx())
    .await?;
    let data: Vec<Value> = rows
        .into_iter()
        .map(|(event, url, attempts, status, delivered)| {
            json!({ "event": event, "url": url, "attempts": attempts, "last_status": status, "delivered": delivered })
        })
        .collect();
    Ok(json!({ "data": data }))
}
