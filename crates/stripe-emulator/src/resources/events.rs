//! `/v1/events`: every event the emulator emitted, newest first.

use serde_json::{json, Value};

use crate::api::Call;
use crate::error::StripeError;
use crate::store::Work;
use crate::Emulator;

pub async fn list(w: &mut Work, _: &Emulator, call: &mut Call) -> Result<Value, StripeError> {
    let p = &mut call.params;
    let event_type = p.string("type")?;
    let types = p.strings("types")?;
    let mut created_gte = None;
    let mut created_lte = None;
    if let Some(mut created) = p.object("created")? {
        created_gte = created
            .integer("gte")?
            .or(created.integer("gt")?.map(|t| t + 1));
        created_lte = created
            .integer("lte")?
            .or(created.integer("lt")?.map(|t| t - 1));
        created.finish()?;
    }
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
