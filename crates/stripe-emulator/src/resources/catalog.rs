//! `/v1/products` and `/v1/prices`, including look-up by `lookup_keys[]`.

use serde_json::{json, Value};

use super::{merge_metadata, metadata_value};
use crate::api::Call;
use crate::error::StripeError;
use crate::objects::{self, PriceSpec, Recurring};
use crate::params::Params;
use crate::store::{str_field, Work};
use crate::Emulator;

const INTERVALS: [&str; 4] = ["day", "week", "month", "year"];

pub async fn create_product(
    w: &mut Work,
    _: &Emulator,
    call: &mut Call,
) -> Result<Value, StripeError> {
    let p = &mut call.params;
    let name = p.required_string("name")?;
    let product = new_product(w, p, name).await?;
    Ok(product)
}

async fn new_product(w: &mut Work, p: &mut Params, name: String) -> Result<Value, StripeError> {
    let description = p.string("description")?;
    let active = p.boolean("active")?.unwrap_or(true);
    let metadata = metadata_value(p)?;
    let id = p.string("id")?;
    let now = w.global_now();
    let mut product = objects::product(now, &name, description, metadata, active);
    if let Some(id) = id {
        if w.load(&id).await?.is_some() {
            return Err(
                StripeError::invalid_request("Product already exists.", Some("id"))
                    .with_code("resource_already_exists"),
            );
        }
        product["id"] = json!(id);
    }
    w.insert(&product).await?;
    w.emit(now, "product.created", &product, None).await?;
    Ok(product)
}

pub async fn retrieve_product(
    w: &mut Work,
    _: &Emulator,
    call: &mut Call,
) -> Result<Value, StripeError> {
    w.fetch("product", &call.id("id"), "id").await
}

pub async fn update_product(
    w: &mut Work,
    _: &Emulator,
    call: &mut Call,
) -> Result<Value, StripeError> {
    let before = w.fetch("product", &call.id("id"), "id").await?;
    let mut after = before.clone();
    let p = &mut call.params;
    if let Some(name) = p.string("name")? {
        after["name"] = json!(name);
    }
    if p.has("description") {
        after["description"] = json!(p.string("description")?.filter(|s| !s.is_empty()));
    }
    if let Some(active) = p.boolean("active")? {
        after["active"] = json!(active);
    }
    merge_metadata(&mut after, p)?;
    let now = w.global_now();
    after["updated"] = json!(now);
    w.save_and_emit_update(now, "product.updated", &before, &after)
        .await?;
    Ok(after)
}

pub async fn list_products(
    w: &mut Work,
    _: &Emulator,
    call: &mut Call,
) -> Result<Value, StripeError> {
    let active = call.params.boolean("active")?;
    let items = w
        .all("product", Default::default())
        .await?
        .into_iter()
        .filter(|p| active.is_none_or(|a| p["active"] == a))
        .collect();
    call.list(items)
}

pub async fn create_price(
    w: &mut Work,
    _: &Emulator,
    call: &mut Call,
) -> Result<Value, StripeError> {
    let p = &mut call.params;
    let currency = p.required_string("currency")?.to_lowercase();
    if currency.len() != 3 || !currency.chars().all(|c| c.is_ascii_lowercase()) {
        return Err(StripeError::invalid_request(
            format!("Invalid currency: {currency}"),
            Some("currency"),
        ));
    }
    let unit_amount = p
        .integer("unit_amount")?
        .ok_or_else(|| StripeError::missing_param("unit_amount"))?;
    if unit_amount < 0 {
        return Err(StripeError::invalid_request(
            "Invalid integer: unit_amount must be greater than or equal to 0",
            Some("unit_amount"),
        ));
    }
    let recurring = recurring(p)?;
    let product = match (p.string("product")?, p.object("product_data")?) {
        (Some(id), None) => {
            w.fetch("product", &id, "product").await?;
            id
        }
        (None, Some(mut data)) => {
            let name = data.required_string("name")?;
            let product = new_product(w, &mut data, name).await?;
            data.finish()?;
            str_field(&product, "id")
        }
        (Some(_), Some(_)) => {
            return Err(StripeError::invalid_request(
                "You may only specify one of these parameters: product, product_data.",
                Some("product"),
            ))
        }
        (None, None) => return Err(StripeError::missing_param("product")),
    };
    let lookup_key = p.string("lookup_key")?;
    let transfer = p.boolean("transfer_lookup_key")?.unwrap_or(false);
    let nickname = p.string("nickname")?;
    let active = p.boolean("active")?.unwrap_or(true);
    let metadata = metadata_value(p)?;
    let now = w.global_now();
    if let Some(key) = &lookup_key {
        for mut holder in prices_with_lookup_key(w, key).await? {
            if !transfer {
                return Err(StripeError::invalid_request(
                    format!(
                        "A price (`{}`) already uses that lookup key.",
                        str_field(&holder, "id")
                    ),
                    Some("lookup_key"),
                ));
            }
            let before = holder.clone();
            holder["lookup_key"] = Value::Null;
            w.save_and_emit_update(now, "price.updated", &before, &holder)
                .await?;
        }
    }
    let price = objects::price(
        now,
        PriceSpec {
            product,
            currency,
            unit_amount,
            recurring,
            lookup_key,
            nickname,
            metadata,
            active,
        },
    );
    w.insert(&price).await?;
    w.emit(now, "price.created", &price, None).await?;
    Ok(price)
}

/// `recurring[interval]` and `recurring[interval_count]` of a price (or of `price_data`).
pub fn recurring(p: &mut Params) -> Result<Option<Recurring>, StripeError> {
    let Some(mut r) = p.object("recurring")? else {
        return Ok(None);
    };
    let interval = r
        .one_of("interval", &INTERVALS)?
        .ok_or_else(|| StripeError::missing_param("recurring[interval]"))?;
    let interval_count = r.integer("interval_count")?.unwrap_or(1);
    if interval_count < 1 {
        return Err(StripeError::invalid_request(
            "recurring[interval_count] must be at least 1.",
            Some("recurring[interval_count]"),
        ));
    }
    r.finish()?;
    Ok(Some(Recurring {
        interval,
        interval_count,
    }))
}

async fn prices_with_lookup_key(w: &mut Work, key: &str) -> Result<Vec<Value>, StripeError> {
    Ok(w.all("price", Default::default())
        .await?
        .into_iter()
        .filter(|p| p["lookup_key"] == json!(key))
        .collect())
}

pub async fn retrieve_price(
    w: &mut Work,
    _: &Emulator,
    call: &mut Call,
) -> Result<Value, StripeError> {
    w.fetch("price", &call.id("id"), "id").await
}

pub async fn update_price(
    w: &mut Work,
    _: &Emulator,
    call: &mut Call,
) -> Result<Value, StripeError> {
    let before = w.fetch("price", &call.id("id"), "id").await?;
    let mut after = before.clone();
    let p = &mut call.params;
    if let Some(active) = p.boolean("active")? {
        after["active"] = json!(active);
    }
    if p.has("nickname") {
        after["nickname"] = json!(p.string("nickname")?.filter(|s| !s.is_empty()));
    }
    merge_metadata(&mut after, p)?;
    let now = w.global_now();
    if p.has("lookup_key") {
        let key = p.string("lookup_key")?.filter(|s| !s.is_empty());
        let transfer = p.boolean("transfer_lookup_key")?.unwrap_or(false);
        if let Some(key) = &key {
            for mut holder in prices_with_lookup_key(w, key).await? {
                if holder["id"] == after["id"] {
                    continue;
                }
                if !transfer {
                    return Err(StripeError::invalid_request(
                        "A price already uses that lookup key.",
                        Some("lookup_key"),
                    ));
                }
                let old = holder.clone();
                holder["lookup_key"] = Value::Null;
                w.save_and_emit_update(now, "price.updated", &old, &holder)
                    .await?;
            }
        }
        after["lookup_key"] = json!(key);
    }
    w.save_and_emit_update(now, "price.updated", &before, &after)
        .await?;
    Ok(after)
}

pub async fn list_prices(
    w: &mut Work,
    _: &Emulator,
    call: &mut Call,
) -> Result<Value, StripeError> {
    let p = &mut call.params;
    let lookup_keys = p.strings("lookup_keys")?;
    let active = p.boolean("active")?;
    let product = p.string("product")?;
    let kind = p.one_of("type", &["one_time", "recurring"])?;
    let currency = p.string("currency")?;
    let items = w
        .all("price", Default::default())
        .await?
        .into_iter()
        .filter(|price| {
            (lookup_keys.is_empty() || lookup_keys.iter().any(|k| price["lookup_key"] == json!(k)))
                && active.is_none_or(|a| price["active"] == a)
                && product
                    .as_ref()
                    .is_none_or(|id| price["product"] == json!(id))
                && kind.as_ref().is_none_or(|t| price["type"] == json!(t))
                && currency
                    .as_ref()
                    .is_none_or(|c| price["currency"] == json!(c))
        })
        .collect();
    call.list(items)
}
