//! `/v1/test_helpers/test_clocks`: customers created on a clock live on its time; advancing it
//! runs every trial end, renewal and retry that falls due, in order.

use serde_json::{json, Value};

use crate::api::Call;
use crate::billing::Engine;
use crate::error::StripeError;
use crate::objects;
use crate::store::Work;
use crate::Emulator;

pub async fn create(w: &mut Work, _: &Emulator, call: &mut Call) -> Result<Value, StripeError> {
    let frozen_time = call
        .params
        .integer("frozen_time")?
        .ok_or_else(|| StripeError::missing_param("frozen_time"))?;
    let name = call.params.string("name")?;
    let now = w.global_now();
    let clock = objects::test_clock(now, frozen_time, name);
    w.insert(&clock).await?;
    w.emit(now, "test_helpers.test_clock.created", &clock, None)
        .await?;
    Ok(clock)
}

pub async fn retrieve(w: &mut Work, _: &Emulator, call: &mut Call) -> Result<Value, StripeError> {
    w.fetch("test_helpers.test_clock", &call.id("id"), "test_clock")
        .await
}

pub async fn list(w: &mut Work, _: &Emulator, call: &mut Call) -> Result<Value, StripeError> {
    let items = w.all("test_helpers.test_clock", Default::default()).await?;
    call.list(items.into_iter().filter(|c| c["deleted"] != true).collect())
}

pub async fn delete(w: &mut Work, _: &Emulator, call: &mut Call) -> Result<Value, StripeError> {
    let id = call.id("id");
    let mut clock = w
        .fetch("test_helpers.test_clock", &id, "test_clock")
        .await?;
    clock["deleted"] = json!(true);
    w.save(&clock).await?;
    Ok(json!({ "id": id, "object": "test_helpers.test_clock", "deleted": true }))
}

pub async fn advance(
    w: &mut Work,
    emulator: &Emulator,
    call: &mut Call,
) -> Result<Value, StripeError> {
    let id = call.id("id");
    let before = w
        .fetch("test_helpers.test_clock", &id, "test_clock")
        .await?;
    let target = call
        .params
        .integer("frozen_time")?
        .ok_or_else(|| StripeError::missing_param("frozen_time"))?;
    let current = before["frozen_time"].as_i64().unwrap_or_default();
    if target <= current {
        return Err(StripeError::invalid_request(
            "The frozen_time must be after the test clock's current frozen time.",
            Some("frozen_time"),
        ));
    }
    let mut engine = Engine {
        w,
        base: &emulator.base,
    };
    engine.run_due(Some(&id), target).await?;
    let mut after = before.clone();
    after["frozen_time"] = json!(target);
    after["status"] = json!("ready");
    engine.w.save(&after).await?;
    engine
        .w
        .emit(target, "test_helpers.test_clock.ready", &after, None)
        .await?;
    Ok(after)
}
