//! `/v1/webhook_endpoints`: where events are delivered. The secret is shown once, at creation.
//! An endpoint can be disabled and enabled again (`disabled=true|false` on update): while it is
//! disabled nothing is delivered to it, and what was emitted meanwhile is never sent (the Events
//! API still lists it), as in Stripe.

use serde_json::{json, Value};

use crate::api::Call;
use crate::error::StripeError;
use crate::store::{new_id, Work};
use crate::webhooks::endpoint_object;
use crate::Emulator;

pub async fn create(w: &mut Work, _: &Emulator, call: &mut Call) -> Result<Value, StripeError> {
    let url = call.params.required_url("url")?;
    let events = call.params.strings("enabled_events")?;
    if events.is_empty() {
        return Err(StripeError::missing_param("enabled_events"));
    }
    let _description = call.params.string("description")?;
    let _api_version = call.params.string("api_version")?;
    let id = new_id("we");
    let secret = format!("whsec_{}", &new_id("x")[2..]);
    let created = w.global_now();
    sqlx::query(
        "INSERT INTO stripe_emulator.webhook_endpoints (id, url, secret, enabled_events, created)
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(&id)
    .bind(&url)
    .bind(&secret)
    .bind(&events)
    .bind(created)
    .execute(w.tx())
    .await?;
    Ok(endpoint_object(
        &id,
        &url,
        Some(&secret),
        &events,
        created,
        false,
    ))
}

pub async fn list(w: &mut Work, _: &Emulator, call: &mut Call) -> Result<Value, StripeError> {
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT id, url, enabled_events, created, disabled FROM stripe_emulator.webhook_endpoints ORDER BY created DESC, id",
    )
    .fetch_all(w.tx())
    .await?;
    let items = rows.iter().map(object_of).collect();
    call.list(items)
}

type Row = (String, String, Vec<String>, i64, bool);

fn object_of((id, url, events, created, disabled): &Row) -> Value {
    endpoint_object(id, url, None, events, *created, *disabled)
}

async fn load(w: &mut Work, id: &str) -> Result<Row, StripeError> {
    sqlx::query_as(
        "SELECT id, url, enabled_events, created, disabled FROM stripe_emulator.webhook_endpoints WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(w.tx())
    .await?
    .ok_or_else(|| StripeError::no_such("webhook endpoint", id, "id"))
}

pub async fn retrieve(w: &mut Work, _: &Emulator, call: &mut Call) -> Result<Value, StripeError> {
    let row = load(w, &call.id("id")).await?;
    Ok(object_of(&row))
}

/// `POST /v1/webhook_endpoints/{id}`: change `url`, `enabled_events`, or `disabled`.
pub async fn update(w: &mut Work, _: &Emulator, call: &mut Call) -> Result<Value, StripeError> {
    let id = call.id("id");
    let (_, mut url, mut events, created, mut disabled) = load(w, &id).await?;
    if let Some(new_url) = call.params.url("url")? {
        url = new_url;
    }
    let new_events = call.params.strings("enabled_events")?;
    if !new_events.is_empty() {
        events = new_events;
    }
    if let Some(d) = call.params.boolean("disabled")? {
        disabled = d;
    }
    let _description = call.params.string("description")?;
    sqlx::query(
        "UPDATE stripe_emulator.webhook_endpoints SET url = $2, enabled_events = $3, disabled = $4 WHERE id = $1",
    )
    .bind(&id)
    .bind(&url)
    .bind(&events)
    .bind(disabled)
    .execute(w.tx())
    .await?;
    Ok(endpoint_object(&id, &url, None, &events, created, disabled))
}

pub async fn delete(w: &mut Work, _: &Emulator, call: &mut Call) -> Result<Value, StripeError> {
    let id = call.id("id");
    let deleted = sqlx::query("DELETE FROM stripe_emulator.webhook_endpoints WHERE id = $1")
        .bind(&id)
        .execute(w.tx())
        .await?;
    if deleted.rows_affected() == 0 {
        return Err(StripeError::no_such("webhook endpoint", &id, "id"));
    }
    Ok(json!({ "id": id, "object": "webhook_endpoint", "deleted": true }))
}
