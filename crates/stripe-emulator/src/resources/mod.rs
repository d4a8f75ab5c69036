//! The emulated API, one file per Stripe resource. Each handler takes what it needs from the
//! request's parameters and returns the object Stripe would.

pub mod catalog;
pub mod checkout;
pub mod control;
pub mod customers;
pub mod events;
pub mod invoices;
pub mod payments;
pub mod portal;
pub mod subscriptions;
pub mod test_clocks;
pub mod webhook_endpoints;

use serde_json::{Map, Value};

use super::error::StripeError;
use super::params::Params;

/// A list's `created` filter, as the inclusive bounds `(from, to)`: `created=TS` (exactly), or
/// `created[gt|gte|lt|lte]=TS`, as Stripe takes it.
pub fn created_range(params: &mut Params) -> Result<(Option<i64>, Option<i64>), StripeError> {
    if params.is_text("created") {
        let exact = params.integer("created")?;
        return Ok((exact, exact));
    }
    let Some(mut created) = params.object("created")? else {
        return Ok((None, None));
    };
    let gte = created.integer("gte")?;
    let gt = created.integer("gt")?.map(|t| t + 1);
    let lte = created.integer("lte")?;
    let lt = created.integer("lt")?.map(|t| t - 1);
    created.finish()?;
    // Both given: the tighter bound holds, as Stripe combines them.
    let from = match (gte, gt) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    };
    let to = match (lte, lt) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    Ok((from, to))
}

/// Whether `object`'s `created` lies within `range` (from [`created_range`]).
pub fn created_within(object: &Value, (from, to): (Option<i64>, Option<i64>)) -> bool {
    let created = object["created"].as_i64().unwrap_or_default();
    from.is_none_or(|t| created >= t) && to.is_none_or(|t| created <= t)
}

/// `metadata[...]` as a JSON object (new objects).
pub fn metadata_value(params: &mut Params) -> Result<Value, StripeError> {
    Ok(Value::Object(
        params
            .metadata("metadata")?
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| (k, Value::String(v)))
            .collect(),
    ))
}

/// Applies `metadata[...]` to an existing object's metadata: empty values delete keys, and
/// `metadata=` clears it, as in Stripe.
pub fn merge_metadata(target: &mut Value, params: &mut Params) -> Result<(), StripeError> {
    let Some(update) = params.metadata("metadata")? else {
        return Ok(());
    };
    let mut merged: Map<String, Value> = if update.is_empty() {
        Map::new()
    } else {
        target["metadata"].as_object().cloned().unwrap_or_default()
    };
    for (k, v) in update {
        if v.is_empty() {
            merged.remove(&k);
        } else {
            merged.insert(k, Value::String(v));
        }
    }
    target["metadata"] = Value::Object(merged);
    Ok(())
}
