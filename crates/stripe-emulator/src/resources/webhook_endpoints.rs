//! `/v1/webhook_endpoints`: where events are delivered. The secret is shown once, at creation.

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
    Ok(endpoint_object(&id, &url, Some(&secret), &events, created))
}

pub async fn list(w: &mut Work, _: &Emulator, call: &mut Call) -> Result<Value, StripeError> {
    let rows: Vec<(String, String, Vec<String>, i64)> = sqlx::query_as(
        "SELECT id, url, enabled_events, created FROM stripe_emulator.webhook_endpoints ORDER BY created DESC, id",
    )
    .fetch_all(w.tx())
    .await?;
    let items = rows
        .iter()
        .map(|(id, url, events, created)| endpoint_object(id, url, None, events, *created))
        .collect();
    call.list(items)
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
