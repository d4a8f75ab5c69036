//! The billing half of the JSON API: the subscription, Checkout, plan changes, cancel and resume,
//! the card portal. Each handler checks the key's scope, reads its input, calls one use case of
//! [`crate::billing::use_cases`] (the same ones the pages call, so the rules are theirs) and
//! presents the outcome; [`super::billing_errors`] says how a refusal reads.
//!
//! Return addresses (`success_url`, `cancel_url`) must stay on the portal's own site: a path
//! (`/orgs/acme/usage`) or an absolute URL on the portal's address (`APP_URL`), checked as every
//! redirect target is, so the API can never be made into an open redirect. The Checkout still
//! comes back through the portal's success page, which settles it at once (as on the pages) and
//! then goes on to `success_url`.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::billing_errors::{billing_error, checkout_open};
use super::keys::ApiCaller;
use super::scopes::Scope;
use super::usage::parse;
use super::ApiError;
use crate::billing::catalog::Catalog;
use crate::billing::reads;
use crate::billing::subscription::{effective_plan, grace_ends, Stored};
use crate::billing::use_cases::{
    self, BillingDeps, ChangeEffect, LocalPath, Manager, PlanChanged, ReturnPaths,
};
use crate::web::links::safe_external_url;
use crate::web::state::AppState;

/// Longest plan key taken (catalog keys are short words).
const MAX_PLAN_LEN: usize = 64;

/// A plan, by key and name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct PlanName {
    pub key: String,
    pub name: String,
}

/// A downgrade waiting for the end of the paid period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ScheduledChange {
    /// The plan the organization moves to.
    pub plan: PlanName,
    pub on: DateTime<Utc>,
}

/// The organization's subscription as the portal holds it (a projection of Stripe's).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct SubscriptionAnswer {
    /// The plan in effect now (Free when no subscription grants one).
    pub plan: PlanName,
    /// Stripe's status (`trialing`, `active`, `past_due`, `canceled`, ...), or `free` when the
    /// organization never subscribed.
    pub status: String,
    /// Whether a subscription is live (trialing, active or past due): plan changes, cancel and
    /// resume apply to it; otherwise start one with `POST /api/v1/checkout_sessions`.
    pub live: bool,
    pub trial_ends_at: Option<DateTime<Utc>>,
    pub current_period_start: Option<DateTime<Utc>>,
    pub current_period_end: Option<DateTime<Utc>>,
    /// The subscription ends at the end of the period (resume undoes it).
    pub cancel_at_period_end: bool,
    /// Set while a failed renewal's grace period runs: the plan is kept until then.
    pub grace_ends_at: Option<DateTime<Utc>>,
    /// A downgrade that takes effect at the end of the period.
    pub scheduled_change: Option<ScheduledChange>,
}

/// The subscription in the API's words. Pure.
pub fn subscription_answer(
    catalog: &Catalog,
    stored: Option<&Stored>,
    now: DateTime<Utc>,
) -> SubscriptionAnswer {
    let named = |key: &str| PlanName {
        key: key.to_owned(),
        name: catalog
            .plan(key)
            .map_or_else(|| key.to_owned(), |p| p.name.clone()),
    };
    let plan = effective_plan(catalog, stored, now);
    let scheduled_change = stored.and_then(|s| {
        s.kept
            .as_ref()
            .filter(|(_, until)| *until > now)
            .map(|(_, until)| ScheduledChange {
                plan: named(&s.plan_key),
                on: *until,
            })
    });
    SubscriptionAnswer {
        plan: named(&plan.key),
        status: stored.map_or_else(|| "free".to_owned(), |s| s.status.clone()),
        live: stored
            .is_some_and(|s| matches!(s.status.as_str(), "trialing" | "active" | "past_due")),
        trial_ends_at: stored.and_then(|s| s.trial_end),
        current_period_start: stored.and_then(|s| s.current_period_start),
        current_period_end: stored.and_then(|s| s.current_period_end),
        cancel_at_period_end: stored.is_some_and(|s| s.cancel_at_period_end),
        grace_ends_at: stored.and_then(grace_ends),
        scheduled_change,
    }
}

fn deps(state: &AppState) -> BillingDeps<'_> {
    BillingDeps {
        db: &state.db,
        stripe: &state.stripe,
        catalog: &state.catalog,
        public_url: &state.public_url,
    }
}

/// Who acts for the organization: its API key, standing in for its owner.
async fn manager(state: &AppState, caller: &ApiCaller) -> Result<Manager, ApiError> {
    Manager::for_api_key(&state.db, caller.org_id)
        .await
        .map_err(|e| billing_error(&state.catalog, e))
}

/// A plan key as sent: present, short, printable.
fn plan_key(raw: &str) -> Result<&str, ApiError> {
    let key = raw.trim();
    if key.is_empty() || key.chars().count() > MAX_PLAN_LEN {
        return Err(ApiError::invalid(
            "plan",
            format!("plan must be a plan key of 1 to {MAX_PLAN_LEN} characters (GET /api/v1/plans lists them)."),
        ));
    }
    if !crate::text::is_clean(key) {
        return Err(ApiError::invalid(
            "plan",
            "plan must not contain control or invisible characters.",
        ));
    }
    Ok(key)
}

/// The organization's subscription.
///
/// The plan in effect, Stripe's status, the period, a scheduled cancellation or downgrade and a
/// grace period after a failed renewal.
#[utoipa::path(
    get,
    path = "/api/v1/subscription",
    operation_id = "get_subscription",
    tag = "billing",
    security(("api_key" = ["billing:read"])),
    responses(
        (status = 200, description = "The organization's subscription and the plan in effect", body = SubscriptionAnswer),
        (status = 401, description = "Missing, wrong or revoked API key", body = super::openapi::ErrorAnswer),
        (status = 403, description = "The key lacks the `billing:read` scope", body = super::openapi::ErrorAnswer),
        (status = 429, description = "The key's `read` rate limit is used up (`rate_limited`), or too many wrong API keys from this address (`too_many_wrong_keys`); see Retry-After", body = super::openapi::ErrorAnswer),
        (status = 503, description = "The portal's database could not answer; retry", body = super::openapi::ErrorAnswer),
    )
)]
pub async fn show(
    State(state): State<AppState>,
    caller: ApiCaller,
) -> Result<Json<SubscriptionAnswer>, ApiError> {
    caller.require(Scope::BillingRead)?;
    let stored = reads::subscription(&state.db, caller.org_id).await?;
    Ok(Json(subscription_answer(
        &state.catalog,
        stored.as_ref(),
        Utc::now(),
    )))
}

/// Start Checkout for a plan.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckoutRequest {
    /// A self-serve plan's key (`GET /api/v1/plans`).
    pub plan: String,
    /// Where the customer lands after paying: a path of the portal (`/orgs/acme/usage`) or an
    /// absolute URL on the portal's own address. The portal's success page settles the Checkout
    /// first, then redirects there. Default: the organization's billing page.
    pub success_url: Option<String>,
    /// Where the customer lands on going back from Checkout, with the same rule. Default: the
    /// portal's "Checkout canceled" page.
    pub cancel_url: Option<String>,
}

/// Where to send the customer to pay.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CheckoutAnswer {
    /// The hosted Checkout page.
    pub url: String,
    /// The plan it sells.
    pub plan: String,
    /// True when the organization's open Checkout for this plan was answered rather than a new
    /// one created (one open Checkout per organization; it keeps the return addresses it was
    /// opened with).
    pub reused: bool,
}

/// A return address the caller gave, as a path of the portal; 422 naming `field` otherwise.
fn return_path(
    public_url: &str,
    raw: Option<&str>,
    field: &str,
) -> Result<Option<LocalPath>, ApiError> {
    let Some(raw) = raw else {
        return Ok(None);
    };
    let refused = || {
        ApiError::invalid(
            field,
            format!(
                "{field} must be a path of the portal (such as /orgs/acme/billing) or an absolute URL on {public_url}."
            ),
        )
    };
    let path = match raw.strip_prefix(public_url) {
        // An absolute URL on the portal's own address: its path (a bare origin is its root).
        Some("") => "/",
        Some(rest) if rest.starts_with('/') => rest,
        Some(_) => return Err(refused()),
        None => raw,
    };
    LocalPath::parse(path).map(Some).ok_or_else(refused)
}

/// Start Stripe Checkout for a plan.
///
/// Answers the hosted Checkout page to send the customer to. One open Checkout per organization:
/// asking again for the same plan answers the open one (200); another plan while one is open is
/// 409. `success_url` and `cancel_url` must be on the portal's own address.
#[utoipa::path(
    post,
    path = "/api/v1/checkout_sessions",
    operation_id = "create_checkout_session",
    tag = "billing",
    security(("api_key" = ["billing:write"])),
    request_body = CheckoutRequest,
    params(super::usage::IdempotencyHeader),
    responses(
        (status = 201, description = "A new Checkout was opened", body = CheckoutAnswer),
        (status = 200, description = "The organization's open Checkout for this plan", body = CheckoutAnswer),
        (status = 400, description = "The body is not JSON", body = super::openapi::ErrorAnswer),
        (status = 401, description = "Missing, wrong or revoked API key", body = super::openapi::ErrorAnswer),
        (status = 403, description = "The key lacks the `billing:write` scope", body = super::openapi::ErrorAnswer),
        (status = 404, description = "No such plan (`unknown_plan`)", body = super::openapi::ErrorAnswer),
        (status = 409, description = "An open Checkout sells something else (`checkout_open`), or the Idempotency-Key header was used for another request (`idempotency_key_reused`) or is still in flight (`idempotency_in_progress`, with Retry-After)", body = super::openapi::ErrorAnswer),
        (status = 422, description = "A field is invalid (`invalid_field`, with `field`), or the plan is not sold through Checkout (`plan_not_for_sale`)", body = super::openapi::ErrorAnswer),
        (status = 429, description = "The key's `billing` rate limit is used up (`rate_limited`), or too many wrong API keys from this address (`too_many_wrong_keys`); see Retry-After", body = super::openapi::ErrorAnswer),
        (status = 502, description = "Stripe refused the call (`stripe_error`)", body = super::openapi::ErrorAnswer),
        (status = 503, description = "Stripe or the database could not be reached (`stripe_unavailable`, `unavailable`)", body = super::openapi::ErrorAnswer),
    )
)]
pub async fn start_checkout(
    State(state): State<AppState>,
    caller: ApiCaller,
    body: Bytes,
) -> Result<Response, ApiError> {
    caller.require(Scope::BillingWrite)?;
    let request: CheckoutRequest = parse(&body)?;
    let plan = plan_key(&request.plan)?;
    let returns = ReturnPaths {
        success: return_path(
            &state.public_url,
            request.success_url.as_deref(),
            "success_url",
        )?,
        cancel: return_path(
            &state.public_url,
            request.cancel_url.as_deref(),
            "cancel_url",
        )?,
    };
    let who = manager(&state, &caller).await?;
    let started = use_cases::start_checkout_returning(deps(&state), &who, plan, &returns)
        .await
        .map_err(|e| billing_error(&state.catalog, e))?;
    let url = safe_external_url(&started.url)
        .ok_or_else(|| {
            tracing::error!("Stripe answered a Checkout link that is not https");
            ApiError::new(
                StatusCode::BAD_GATEWAY,
                "stripe_error",
                "Stripe answered an unusable Checkout link.",
            )
        })?
        .to_owned();
    // One open Checkout per organization: answering one that sells something else would
    // charge for what was not asked.
    if started.plan_key.as_deref() != Some(plan) {
        return Err(checkout_open(started.plan_key.as_deref(), &url));
    }
    let status = if started.reused {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    let answer = CheckoutAnswer {
        url,
        plan: plan.to_owned(),
        reused: started.reused,
    };
    Ok((status, Json(answer)).into_response())
}

/// Switch to another plan.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PlanChangeRequest {
    /// A self-serve plan's key.
    pub plan: String,
    /// Only say what the change would do and cost; nothing changes.
    #[serde(default)]
    pub preview: bool,
}

/// What a plan change did (or, with `preview`, would do).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PlanChangeAnswer {
    pub preview: bool,
    /// The plan switched to.
    pub plan: PlanName,
    /// `now` (an upgrade, prorated) or `period_end` (a downgrade: the current plan is kept until
    /// then).
    pub takes_effect: String,
    /// When a downgrade takes effect; `null` for an upgrade.
    pub effective_at: Option<DateTime<Utc>>,
    /// With `preview` and an upgrade: charged today for the rest of the period (Stripe's
    /// proration), in the currency's minor unit.
    pub amount_due_cents: Option<i64>,
    pub currency: Option<String>,
}

/// Change the plan.
///
/// An upgrade takes effect now, with Stripe's proration charged at once; a downgrade at the end
/// of the period. With `preview: true` it answers what the change would do and cost, and changes
/// nothing.
#[utoipa::path(
    post,
    path = "/api/v1/subscription/change",
    operation_id = "change_plan",
    tag = "billing",
    security(("api_key" = ["billing:write"])),
    request_body = PlanChangeRequest,
    params(super::usage::IdempotencyHeader),
    responses(
        (status = 200, description = "The plan changed (an upgrade now with proration, a downgrade at period end), or with `preview` what it would do", body = PlanChangeAnswer),
        (status = 400, description = "The body is not JSON", body = super::openapi::ErrorAnswer),
        (status = 401, description = "Missing, wrong or revoked API key", body = super::openapi::ErrorAnswer),
        (status = 402, description = "The card was declined; nothing changed (`card_declined`)", body = super::openapi::ErrorAnswer),
        (status = 403, description = "The key lacks the `billing:write` scope", body = super::openapi::ErrorAnswer),
        (status = 404, description = "No such plan (`unknown_plan`)", body = super::openapi::ErrorAnswer),
        (status = 409, description = "No live subscription (`no_subscription`), already on that plan (`already_on_plan`), the plan's gauge limits are below what the organization has (`over_gauge_limits`), or the Idempotency-Key header was used for another request (`idempotency_key_reused`) or is still in flight (`idempotency_in_progress`, with Retry-After)", body = super::openapi::ErrorAnswer),
        (status = 422, description = "A field is invalid (`invalid_field`), or the plan is not sold through Checkout (`plan_not_for_sale`)", body = super::openapi::ErrorAnswer),
        (status = 429, description = "The key's `billing` rate limit is used up (`rate_limited`), or too many wrong API keys from this address (`too_many_wrong_keys`); see Retry-After", body = super::openapi::ErrorAnswer),
        (status = 502, description = "Stripe refused the call (`stripe_error`)", body = super::openapi::ErrorAnswer),
        (status = 503, description = "Stripe or the database could not be reached", body = super::openapi::ErrorAnswer),
    )
)]
pub async fn change_plan(
    State(state): State<AppState>,
    caller: ApiCaller,
    body: Bytes,
) -> Result<Json<PlanChangeAnswer>, ApiError> {
    caller.require(Scope::BillingWrite)?;
    let request: PlanChangeRequest = parse(&body)?;
    let plan = plan_key(&request.plan)?;
    let who = manager(&state, &caller).await?;
    let refused = |e| billing_error(&state.catalog, e);
    let named = |key: &str, name: String| PlanName {
        key: key.to_owned(),
        name,
    };
    let answer = if request.preview {
        let preview = use_cases::preview_plan_change(deps(&state), &who, plan)
            .await
            .map_err(refused)?;
        let target = named(&preview.target.key, preview.target.name);
        match preview.effect {
            ChangeEffect::UpgradeNow {
                due_cents,
                currency,
            } => PlanChangeAnswer {
                preview: true,
                plan: target,
                takes_effect: "now".into(),
                effective_at: None,
                amount_due_cents: Some(due_cents),
                currency: Some(currency),
            },
            ChangeEffect::DowngradeAtPeriodEnd { until } => PlanChangeAnswer {
                preview: true,
                plan: target,
                takes_effect: "period_end".into(),
                effective_at: until,
                amount_due_cents: None,
                currency: None,
            },
        }
    } else {
        let changed = use_cases::change_plan(deps(&state), &who, plan)
            .await
            .map_err(refused)?;
        let (plan_name, takes_effect, effective_at) = match changed {
            PlanChanged::Upgraded { plan_name } => (plan_name, "now", None),
            PlanChanged::Downgraded { plan_name, on } => (plan_name, "period_end", on),
        };
        PlanChangeAnswer {
            preview: false,
            plan: named(plan, plan_name),
            takes_effect: takes_effect.into(),
            effective_at,
            amount_due_cents: None,
            currency: None,
        }
    };
    Ok(Json(answer))
}

/// Cancel at the end of the period.
///
/// The plan is kept until the period (or the trial) ends; resume undoes it.
#[utoipa::path(
    post,
    path = "/api/v1/subscription/cancel",
    operation_id = "cancel_subscription",
    tag = "billing",
    security(("api_key" = ["billing:write"])),
    params(super::usage::IdempotencyHeader),
    responses(
        (status = 200, description = "The subscription ends at the end of the period (or trial); the subscription as it is now", body = SubscriptionAnswer),
        (status = 401, description = "Missing, wrong or revoked API key", body = super::openapi::ErrorAnswer),
        (status = 403, description = "The key lacks the `billing:write` scope", body = super::openapi::ErrorAnswer),
        (status = 409, description = "No live subscription (`no_subscription`), or the Idempotency-Key header was used for another request (`idempotency_key_reused`) or is still in flight (`idempotency_in_progress`, with Retry-After)", body = super::openapi::ErrorAnswer),
        (status = 429, description = "The key's `billing` rate limit is used up (`rate_limited`), or too many wrong API keys from this address (`too_many_wrong_keys`); see Retry-After", body = super::openapi::ErrorAnswer),
        (status = 502, description = "Stripe refused the call (`stripe_error`)", body = super::openapi::ErrorAnswer),
        (status = 503, description = "Stripe or the database could not be reached", body = super::openapi::ErrorAnswer),
    )
)]
pub async fn cancel(
    State(state): State<AppState>,
    caller: ApiCaller,
) -> Result<Json<SubscriptionAnswer>, ApiError> {
    caller.require(Scope::BillingWrite)?;
    let who = manager(&state, &caller).await?;
    use_cases::cancel_at_period_end(deps(&state), &who)
        .await
        .map_err(|e| billing_error(&state.catalog, e))?;
    show_now(&state, &caller).await
}

/// Resume a subscription set to cancel.
///
/// The subscription renews at the end of the period again.
#[utoipa::path(
    post,
    path = "/api/v1/subscription/resume",
    operation_id = "resume_subscription",
    tag = "billing",
    security(("api_key" = ["billing:write"])),
    params(super::usage::IdempotencyHeader),
    responses(
        (status = 200, description = "A scheduled cancellation is undone: the subscription renews; the subscription as it is now", body = SubscriptionAnswer),
        (status = 401, description = "Missing, wrong or revoked API key", body = super::openapi::ErrorAnswer),
        (status = 403, description = "The key lacks the `billing:write` scope", body = super::openapi::ErrorAnswer),
        (status = 409, description = "No live subscription (`no_subscription`), or the Idempotency-Key header was used for another request (`idempotency_key_reused`) or is still in flight (`idempotency_in_progress`, with Retry-After)", body = super::openapi::ErrorAnswer),
        (status = 429, description = "The key's `billing` rate limit is used up (`rate_limited`), or too many wrong API keys from this address (`too_many_wrong_keys`); see Retry-After", body = super::openapi::ErrorAnswer),
        (status = 502, description = "Stripe refused the call (`stripe_error`)", body = super::openapi::ErrorAnswer),
        (status = 503, description = "Stripe or the database could not be reached", body = super::openapi::ErrorAnswer),
    )
)]
pub async fn resume(
    State(state): State<AppState>,
    caller: ApiCaller,
) -> Result<Json<SubscriptionAnswer>, ApiError> {
    caller.require(Scope::BillingWrite)?;
    let who = manager(&state, &caller).await?;
    use_cases::resume(deps(&state), &who)
        .await
        .map_err(|e| billing_error(&state.catalog, e))?;
    show_now(&state, &caller).await
}

/// The subscription after a change, as `GET /api/v1/subscription` answers it.
async fn show_now(
    state: &AppState,
    caller: &ApiCaller,
) -> Result<Json<SubscriptionAnswer>, ApiError> {
    let stored = reads::subscription(&state.db, caller.org_id).await?;
    Ok(Json(subscription_answer(
        &state.catalog,
        stored.as_ref(),
        Utc::now(),
    )))
}

/// Where the customer changes their card.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PortalAnswer {
    /// Stripe's customer portal for the organization; it returns to the organization's billing
    /// page.
    pub url: String,
}

/// Open Stripe's customer portal.
///
/// Answers the portal's address, where the customer changes their card; it returns to the
/// organization's billing page.
#[utoipa::path(
    post,
    path = "/api/v1/portal_sessions",
    operation_id = "create_portal_session",
    tag = "billing",
    security(("api_key" = ["billing:write"])),
    params(super::usage::IdempotencyHeader),
    responses(
        (status = 201, description = "A card portal session to send the customer to", body = PortalAnswer),
        (status = 401, description = "Missing, wrong or revoked API key", body = super::openapi::ErrorAnswer),
        (status = 403, description = "The key lacks the `billing:write` scope", body = super::openapi::ErrorAnswer),
        (status = 409, description = "The Idempotency-Key header was used for another request (`idempotency_key_reused`) or is still in flight (`idempotency_in_progress`, with Retry-After)", body = super::openapi::ErrorAnswer),
        (status = 429, description = "The key's `billing` rate limit is used up (`rate_limited`), or too many wrong API keys from this address (`too_many_wrong_keys`); see Retry-After", body = super::openapi::ErrorAnswer),
        (status = 502, description = "Stripe refused the call (`stripe_error`)", body = super::openapi::ErrorAnswer),
        (status = 503, description = "Stripe or the database could not be reached", body = super::openapi::ErrorAnswer),
    )
)]
pub async fn open_portal(
    State(state): State<AppState>,
    caller: ApiCaller,
) -> Result<Response, ApiError> {
    caller.require(Scope::BillingWrite)?;
    let who = manager(&state, &caller).await?;
    let url = use_cases::open_card_portal(deps(&state), &who)
        .await
        .map_err(|e| billing_error(&state.catalog, e))?;
    let url = safe_external_url(&url).ok_or_else(|| {
        tracing::error!("Stripe answered a portal link that is not https");
        ApiError::new(
            StatusCode::BAD_GATEWAY,
            "stripe_error",
            "Stripe answered an unusable portal link.",
        )
    })?;
    Ok((
        StatusCode::CREATED,
        Json(PortalAnswer {
            url: url.to_owned(),
        }),
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn hybrid() -> Catalog {
        crate::billing::catalog::shipped("hybrid.toml")
    }

    #[test]
    fn return_addresses_stay_on_the_portal() {
        let base = "https://billing.example.com";
        let ok = |raw: &str| {
            return_path(base, Some(raw), "success_url").map(|p| p.map(|p| p.as_str().to_owned()))
        };
        assert_eq!(
            ok("/orgs/acme/usage").ok().flatten().as_deref(),
            Some("/orgs/acme/usage")
        );
        assert_eq!(
            ok("https://billing.example.com/orgs/acme?x=1")
                .ok()
                .flatten()
                .as_deref(),
            Some("/orgs/acme?x=1")
        );
        assert_eq!(
            ok("https://billing.example.com").ok().flatten().as_deref(),
            Some("/")
        );
        assert!(matches!(return_path(base, None, "cancel_url"), Ok(None)));
        for foreign in [
            "https://evil.example/",
            "https://billing.example.com.evil.example/",
            "https://billing.example.com@evil.example/",
            "//evil.example/",
            "/\\evil.example",
            "http://billing.example.com/orgs",
            "javascript:alert(1)",
            "",
        ] {
            let refused = return_path(base, Some(foreign), "cancel_url");
            assert!(
                matches!(&refused, Err(e) if e.field.as_deref() == Some("cancel_url") && e.status == StatusCode::UNPROCESSABLE_ENTITY),
                "{foreign}"
            );
        }
    }

    #[test]
    fn plan_keys_are_short_and_printable() {
        assert_eq!(plan_key(" pro ").ok(), Some("pro"));
        for bad in ["", "   ", "pro\u{0}", "p\u{200b}ro", &"x".repeat(65)] {
            assert!(
                matches!(plan_key(bad), Err(e) if e.field.as_deref() == Some("plan")),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn the_subscription_names_the_plan_in_effect_and_a_scheduled_downgrade() {
        let catalog = hybrid();
        let now = Utc
            .with_ymd_and_hms(2026, 12, 2, 0, 0, 0)
            .single()
            .expect("now");
        let free = subscription_answer(&catalog, None, now);
        assert_eq!(
            (free.plan.key.as_str(), free.status.as_str()),
            ("free", "free")
        );
        assert!(!free.live && free.scheduled_change.is_none());
        let end = now + chrono::Duration::days(20);
        let stored = Stored {
            stripe_subscription_id: "sub_1".into(),
            plan_key: "starter".into(),
            status: "active".into(),
            trial_end: None,
            current_period_start: Some(now - chrono::Duration::days(10)),
            current_period_end: Some(end),
            cancel_at_period_end: false,
            past_due_since: None,
            kept: Some(("max".into(), end)),
        };
        let answer = subscription_answer(&catalog, Some(&stored), now);
        assert_eq!(answer.plan.name, "Max", "kept until the period ends");
        assert!(answer.live);
        let change = answer.scheduled_change.expect("a downgrade");
        assert_eq!((change.plan.key.as_str(), change.on), ("starter", end));
        let past_due = Stored {
            status: "past_due".into(),
            past_due_since: Some(now),
            kept: None,
            ..stored
        };
        let answer = subscription_answer(&catalog, Some(&past_due), now);
        assert_eq!(answer.grace_ends_at, Some(now + chrono::Duration::days(7)));
        assert_eq!(answer.plan.key, "starter");
    }
}
