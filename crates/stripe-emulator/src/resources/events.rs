//! `/v1/events`: the events of the last 30 days, newest first, as Stripe keeps them; filtered by
//! `type`/`types` and `created`, paginated like every list.

use serde_json::{json, Value};

use super::created_range;
use crate::api::Call;
use crate::error::StripeError;
use crate::store::Work;
use crate::Emulator;

/// How long Stripe keeps events listable: 30 days.
pub const RETENTION_SECS: i64 = 30 * 86_400;

pub async fn list(w: &mut Work, _: &Emulator, call: &mut Call) -> Result<Value, StripeError> {
    let p = &mut call.params;
    let event_type = p.string("type")?;
    let types = p.strings("types")?;
    let (created_gte, created_lte) = created_range(p)?;
    // Stripe lists (and retrieves) events of the last 30 days only.
    let oldest = w.global_now() - RETENTION_SECS;
    let matches_type = |t: &str| match &event_type {
        // `customer.subscription.*` style wildcards, as Stripe allows.
        Some(pattern) if pattern.ends_with(".*") => t.starts_with(&pattern[..pattern.len() - 1]),
        Some(pattern) => t == pattern,
        None => types.is_empty() || types.iter().any(|x| x == t),
    };
    let items = w
        .all("event", Default::default())
        .await?
        .into_iter()
        .filter(|e| {
            matches_type(e["type"].as_str().unwrap_or_default())
                && e["created"].as_i64().unwrap_or_default() >= oldest
                && created_gte.is_none_or(|t| e["created"].as_i64().unwrap_or_default() >= t)
                && created_lte.is_none_or(|t| e["created"].as_i64().unwrap_or_default() <= t)
        })
        .collect();
    call.list(items)
}

pub async fn retrieve(w: &mut Work, _: &Emulator, call: &mut Call) -> Result<Value, StripeError> {
    let event = w.fetch("event", &call.id("id"), "id").await?;
    Ok(json!(event))
}
