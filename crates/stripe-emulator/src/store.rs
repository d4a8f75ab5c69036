//! The emulator's state in PostgreSQL and the unit of work every request runs in: one
//! transaction, serialized by an advisory lock (the emulator is a test double, not a hot path),
//! with helpers to load, save and list Stripe objects and to emit events.

use std::time::{SystemTime, UNIX_EPOCH};

use rand::distr::{Alphanumeric, SampleString};
use serde_json::{json, Value};
use sqlx::{PgPool, Postgres, Transaction};

use super::error::StripeError;
use super::webhooks;

/// The Stripe API version whose shapes the emulator serves: the one async-stripe 1.0.0-rc.10 is
/// built for (its tests check that the two agree).
pub const API_VERSION: &str = "2026-09-30.endive";

pub fn api_version() -> &'static str {
    API_VERSION
}

/// A Stripe-looking id: `cus_` followed by 24 letters and digits.
pub fn new_id(prefix: &str) -> String {
    format!(
        "{prefix}_{}",
        Alphanumeric.sample_string(&mut rand::rng(), 24)
    )
}

pub fn real_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default()
}

/// One request's (or one clock tick's) changes, applied atomically.
pub struct Work {
    tx: Transaction<'static, Postgres>,
    clock_offset: i64,
    chaos: bool,
    pub request_id: String,
    pub idempotency_key: Option<String>,
    events_emitted: i64,
}

/// Which objects to list.
#[derive(Default)]
pub struct Filter<'a> {
    pub customer: Option<&'a str>,
    pub test_clock: Option<&'a str>,
}

impl Work {
    pub async fn begin(
        pool: &PgPool,
        idempotency_key: Option<String>,
    ) -> Result<Self, StripeError> {
        let mut tx = pool.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock(hashtext('stripe_emulator'))")
            .execute(&mut *tx)
            .await?;
        let (clock_offset, chaos): (i64, bool) =
            sqlx::query_as("SELECT clock_offset_secs, chaos FROM stripe_emulator.settings")
                .fetch_one(&mut *tx)
                .await?;
        Ok(Self {
            tx,
            clock_offset,
            chaos,
            request_id: new_id("req"),
            idempotency_key,
            events_emitted: 0,
        })
    }

    /// Commits; returns whether any event was emitted (so the sender should be woken).
    pub async fn commit(self) -> Result<bool, StripeError> {
        self.tx.commit().await?;
        Ok(self.events_emitted > 0)
    }

    pub fn tx(&mut self) -> &mut sqlx::PgConnection {
        &mut self.tx
    }

    /// The emulator's own time, outside any test clock: real time plus the advanced offset.
    pub fn global_now(&self) -> i64 {
        real_now() + self.clock_offset
    }

    pub async fn set_clock_offset(&mut self, offset: i64) -> Result<(), StripeError> {
        sqlx::query("UPDATE stripe_emulator.settings SET clock_offset_secs = $1")
            .bind(offset)
            .execute(&mut *self.tx)
            .await?;
        self.clock_offset = offset;
        Ok(())
    }

    pub fn clock_offset(&self) -> i64 {
        self.clock_offset
    }

    pub fn chaos(&self) -> bool {
        self.chaos
    }

    pub async fn set_chaos(&mut self, on: bool) -> Result<(), StripeError> {
        sqlx::query("UPDATE stripe_emulator.settings SET chaos = $1")
            .bind(on)
            .execute(&mut *self.tx)
            .await?;
        self.chaos = on;
        Ok(())
    }

    /// "Now" for objects on `test_clock` (its frozen time) or, without one, the global clock.
    pub async fn now_on(&mut self, test_clock: Option<&str>) -> Result<i64, StripeError> {
        match test_clock {
            None => Ok(self.global_now()),
            Some(clock) => {
                let frozen: Option<i64> = sqlx::query_scalar(
                    "SELECT (data ->> 'frozen_time')::bigint FROM stripe_emulator.objects WHERE id = $1",
                )
                .bind(clock)
                .fetch_optional(&mut *self.tx)
                .await?;
                Ok(frozen.unwrap_or_else(|| self.global_now()))
            }
        }
    }

    /// The test clock a customer lives on, if any.
    pub async fn clock_of_customer(
        &mut self,
        customer: Option<&str>,
    ) -> Result<Option<String>, StripeError> {
        let Some(customer) = customer else {
            return Ok(None);
        };
        Ok(sqlx::query_scalar::<_, Option<String>>(
            "SELECT test_clock FROM stripe_emulator.objects WHERE id = $1",
        )
        .bind(customer)
        .fetch_optional(&mut *self.tx)
        .await?
        .flatten())
    }

    pub async fn now_for_customer(&mut self, customer: Option<&str>) -> Result<i64, StripeError> {
        let clock = self.clock_of_customer(customer).await?;
        self.now_on(clock.as_deref()).await
    }

    /// What a price is called on pages and invoices: its nickname, else its product's name.
    pub async fn price_label(&mut self, price: &Value) -> Result<String, StripeError> {
        if let Some(nickname) = price["nickname"].as_str() {
            return Ok(nickname.to_owned());
        }
        let product = match &price["product"] {
            Value::String(id) => self.load(id).await?,
            Value::Object(_) => Some(price["product"].clone()),
            _ => None,
        };
        Ok(product
            .and_then(|p| p["name"].as_str().map(str::to_owned))
            .unwrap_or_else(|| "Item".to_owned()))
    }

    /// Next invoice number suffix, emulator-wide.
    pub async fn next_invoice_number(&mut self) -> Result<i64, StripeError> {
        Ok(sqlx::query_scalar(
            "UPDATE stripe_emulator.settings SET invoice_counter = invoice_counter + 1 RETURNING invoice_counter",
        )
        .fetch_one(&mut *self.tx)
        .await?)
    }

    /// Stores a new object. Its customer (and that customer's test clock) are indexed.
    pub async fn insert(&mut self, object: &Value) -> Result<(), StripeError> {
        let id = str_field(object, "id");
        let kind = str_field(object, "object");
        let customer = customer_of(object);
        let test_clock = match kind.as_str() {
            "customer" => object["test_clock"].as_str().map(str::to_owned),
            "test_helpers.test_clock" => Some(id.clone()),
            _ => self.clock_of_customer(customer.as_deref()).await?,
        };
        let created = object["created"]
            .as_i64()
            .unwrap_or_else(|| self.global_now());
        sqlx::query(
            "INSERT INTO stripe_emulator.objects (id, kind, customer, test_clock, created, data)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&id)
        .bind(&kind)
        .bind(customer)
        .bind(test_clock)
        .bind(created)
        .bind(object)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// The emulator's private notes on an object (never served).
    pub async fn private(&mut self, id: &str) -> Result<Value, StripeError> {
        Ok(
            sqlx::query_scalar("SELECT private FROM stripe_emulator.objects WHERE id = $1")
                .bind(id)
                .fetch_optional(&mut *self.tx)
                .await?
                .unwrap_or_else(|| json!({})),
        )
    }

    pub async fn set_private(&mut self, id: &str, private: &Value) -> Result<(), StripeError> {
        sqlx::query("UPDATE stripe_emulator.objects SET private = $2 WHERE id = $1")
            .bind(id)
            .bind(private)
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    /// Objects of `kind` on one clock: a test clock, or (`None`) the global clock.
    pub async fn all_on_clock(
        &mut self,
        kind: &str,
        clock: Option<&str>,
    ) -> Result<Vec<Value>, StripeError> {
        Ok(sqlx::query_scalar(
            "SELECT data FROM stripe_emulator.objects
             WHERE kind = $1 AND test_clock IS NOT DISTINCT FROM $2
             ORDER BY created, seq",
        )
        .bind(kind)
        .bind(clock)
        .fetch_all(&mut *self.tx)
        .await?)
    }

    pub async fn save(&mut self, object: &Value) -> Result<(), StripeError> {
        sqlx::query("UPDATE stripe_emulator.objects SET data = $2, customer = coalesce($3, customer) WHERE id = $1")
            .bind(str_field(object, "id"))
            .bind(object)
            .bind(customer_of(object))
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    pub async fn load(&mut self, id: &str) -> Result<Option<Value>, StripeError> {
        Ok(
            sqlx::query_scalar("SELECT data FROM stripe_emulator.objects WHERE id = $1")
                .bind(id)
                .fetch_optional(&mut *self.tx)
                .await?,
        )
    }

    /// The object `id` of `kind`, or Stripe's 404 (`No such customer: 'cus_x'`).
    pub async fn fetch(&mut self, kind: &str, id: &str, param: &str) -> Result<Value, StripeError> {
        match self.load(id).await? {
            Some(object) if object["object"] == kind => Ok(object),
            _ => Err(StripeError::no_such(&kind_name(kind), id, param)),
        }
    }

    /// All objects of `kind` matching `filter`, newest first.
    pub async fn all(&mut self, kind: &str, filter: Filter<'_>) -> Result<Vec<Value>, StripeError> {
        Ok(sqlx::query_scalar(
            "SELECT data FROM stripe_emulator.objects
             WHERE kind = $1 AND ($2::text IS NULL OR customer = $2)
               AND ($3::text IS NULL OR test_clock = $3)
             ORDER BY created DESC, seq DESC",
        )
        .bind(kind)
        .bind(filter.customer)
        .bind(filter.test_clock)
        .fetch_all(&mut *self.tx)
        .await?)
    }

    /// Records an event for `object` and queues its delivery to every endpoint that wants it.
    pub async fn emit(
        &mut self,
        now: i64,
        event_type: &str,
        object: &Value,
        previous_attributes: Option<Value>,
    ) -> Result<Value, StripeError> {
        let mut data = json!({ "object": object });
        if let Some(previous) = previous_attributes {
            data["previous_attributes"] = previous;
        }
        let mut event = json!({
            "id": new_id("evt"),
            "object": "event",
            "api_version": api_version(),
            "created": now,
            "data": data,
            "livemode": false,
            "pending_webhooks": 0,
            "request": {
                "id": self.request_id,
                "idempotency_key": self.idempotency_key,
            },
            "type": event_type,
        });
        let pending = webhooks::queue_deliveries(self, &event).await?;
        event["pending_webhooks"] = json!(pending);
        let customer = customer_of(object);
        let test_clock = self.clock_of_customer(customer.as_deref()).await?;
        sqlx::query(
            "INSERT INTO stripe_emulator.objects (id, kind, customer, test_clock, created, data)
             VALUES ($1, 'event', $2, $3, $4, $5)",
        )
        .bind(str_field(&event, "id"))
        .bind(customer)
        .bind(test_clock)
        .bind(now)
        .bind(&event)
        .execute(&mut *self.tx)
        .await?;
        // Deliveries reference the event row, so they go in after it.
        webhooks::insert_deliveries(self, &event, self.events_emitted).await?;
        self.events_emitted += 1;
        Ok(event)
    }

    /// Saves `updated` and emits `<kind>.updated` with the attributes that changed, unless
    /// nothing did.
    pub async fn save_and_emit_update(
        &mut self,
        now: i64,
        event_type: &str,
        before: &Value,
        updated: &Value,
    ) -> Result<(), StripeError> {
        self.save(updated).await?;
        if let Some(previous) = previous_attributes(before, updated) {
            self.emit(now, event_type, updated, Some(previous)).await?;
        }
        Ok(())
    }

    /// Replaces the ids at `paths` (`customer`, `subscription.latest_invoice`, `data.customer`
    /// on lists) with the objects they name, as Stripe's `expand[]` does.
    pub async fn expand(&mut self, value: &mut Value, paths: &[String]) -> Result<(), StripeError> {
        for path in paths {
            let segments: Vec<&str> = path.split('.').collect();
            Box::pin(self.expand_path(value, &segments)).await?;
        }
        Ok(())
    }

    async fn expand_path(
        &mut self,
        value: &mut Value,
        segments: &[&str],
    ) -> Result<(), StripeError> {
        let Some((first, rest)) = segments.split_first() else {
            return Ok(());
        };
        if *first == "data" {
            if let Some(items) = value.get_mut("data").and_then(Value::as_array_mut) {
                for item in items {
                    Box::pin(self.expand_path(item, rest)).await?;
                }
                return Ok(());
            }
        }
        let Some(slot) = value.get_mut(*first) else {
            return Ok(());
        };
        if let Some(id) = slot.as_str().map(str::to_owned) {
            if let Some(object) = self.load(&id).await? {
                *slot = object;
            }
        }
        if !rest.is_empty() {
            Box::pin(self.expand_path(slot, rest)).await?;
        }
        Ok(())
    }
}

/// The top-level attributes of `before` that differ in `after`, with their old values.
pub fn previous_attributes(before: &Value, after: &Value) -> Option<Value> {
    let (Some(before), Some(after)) = (before.as_object(), after.as_object()) else {
        return None;
    };
    let changed: serde_json::Map<String, Value> = before
        .iter()
        .filter(|(k, v)| after.get(*k) != Some(*v))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    (!changed.is_empty()).then_some(Value::Object(changed))
}

pub fn str_field(object: &Value, key: &str) -> String {
    object[key].as_str().unwrap_or_default().to_owned()
}

/// The customer an object belongs to (its own id for customers).
fn customer_of(object: &Value) -> Option<String> {
    if object["object"] == "customer" {
        return object["id"].as_str().map(str::to_owned);
    }
    match &object["customer"] {
        Value::String(id) => Some(id.clone()),
        Value::Object(customer) => customer
            .get("id")
            .and_then(Value::as_str)
            .map(str::to_owned),
        _ => None,
    }
}

/// "checkout.session" → "checkout.session", "customer" → "customer": the name Stripe uses in
/// "No such ..." messages.
fn kind_name(kind: &str) -> String {
    match kind {
        "checkout.session" => "checkout.session".to_owned(),
        "test_helpers.test_clock" => "test clock".to_owned(),
        other => other.replace('_', " "),
    }
}

/// A Stripe list object.
pub fn list_object(url: &str, data: Vec<Value>, has_more: bool) -> Value {
    json!({ "object": "list", "data": data, "has_more": has_more, "url": url })
}

/// Cursor pagination as Stripe does it: `limit` (1–100, default 10), `starting_after`,
/// `ending_before`, over a newest-first list.
pub fn paginate(
    items: Vec<Value>,
    limit: Option<i64>,
    starting_after: Option<&str>,
    ending_before: Option<&str>,
) -> Result<(Vec<Value>, bool), StripeError> {
    let limit = match limit {
        None => 10,
        Some(n @ 1..=100) => n as usize,
        Some(_) => {
            return Err(StripeError::invalid_request(
                "Invalid limit: must be between 1 and 100",
                Some("limit"),
            ))
        }
    };
    let position = |id: &str| items.iter().position(|o| o["id"] == id);
    if let Some(after) = starting_after {
        let start = position(after)
            .ok_or_else(|| StripeError::no_such("object", after, "starting_after"))?
            + 1;
        let page: Vec<Value> = items.iter().skip(start).take(limit).cloned().collect();
        let has_more = items.len() > start + page.len();
        return Ok((page, has_more));
    }
    if let Some(before) = ending_before {
        let end = position(before)
            .ok_or_else(|| StripeError::no_such("object", before, "ending_before"))?;
        let start = end.saturating_sub(limit);
        return Ok((items[start..end].to_vec(), start > 0));
    }
    let has_more = items.len() > limit;
    Ok((items.into_iter().take(limit).collect(), has_more))
}
