//! `/v1/billing_portal/sessions`: a link to the hosted customer portal.

use serde_json::Value;

use crate::api::Call;
use crate::error::StripeError;
use crate::objects;
use crate::store::Work;
use crate::Emulator;

pub async fn create(
    w: &mut Work,
    emulator: &Emulator,
    call: &mut Call,
) -> Result<Value, StripeError> {
    let p = &mut call.params;
    let customer = p.required_string("customer")?;
    w.fetch("customer", &customer, "customer").await?;
    let return_url = p.url("return_url")?;
    let _configuration = p.string("configuration")?;
    let _locale = p.string("locale")?;
    let now = w.now_for_customer(Some(&customer)).await?;
    let session = objects::portal_session(now, &customer, return_url, &emulator.base);
    w.insert(&session).await?;
    Ok(session)
}
