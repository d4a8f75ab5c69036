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
