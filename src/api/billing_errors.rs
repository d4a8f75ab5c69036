//! How the billing use cases' refusals read to an API client: each typed error gets its own
//! status and stable code, with a message a developer can act on and the request field at fault
//! where there is one. The words for people are the pages' (`billing::forms`); these are for
//! programs.

use axum::http::StatusCode;

use super::ApiError;
use crate::billing::catalog::Catalog;
use crate::billing::use_cases::{BillingError, Unchanged};
use crate::stripe_gateway::GatewayError;

/// The API's answer for a refused billing use case. `catalog` tells a plan nobody has heard of
/// (404) from one that exists but is not sold through Checkout (422).
pub fn billing_error(catalog: &Catalog, e: BillingError) -> ApiError {
    let field = |mut error: ApiError, field: &str| {
        error.field = Some(field.to_owned());
        error
    };
    match e {
        BillingError::NotForSale(key) if catalog.plan(&key).is_none() => field(
            ApiError::new(
                StatusCode::NOT_FOUND,
                "unknown_plan",
                format!("There is no plan \u{201c}{key}\u{201d}. GET /api/v1/plans lists them."),
            ),
            "plan",
        ),
        BillingError::NotForSale(key) => field(
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "plan_not_for_sale",
                format!(
                    "The plan \u{201c}{key}\u{201d} is not sold through Checkout (it is free or sold by contacting sales)."
                ),
            ),
            "plan",
        ),
        BillingError::NothingToChange(Unchanged::NoSubscription) => ApiError::new(
            StatusCode::CONFLICT,
            "no_subscription",
            "The organization has no active subscription. Start one with POST /api/v1/checkout_sessions.",
        ),
        BillingError::NothingToChange(Unchanged::AlreadyOn { plan }) => field(
            ApiError::new(
                StatusCode::CONFLICT,
                "already_on_plan",
                format!("The organization is already on {plan}."),
            ),
            "plan",
        ),
        BillingError::OverGaugeLimits(over) => field(
            ApiError::new(
                StatusCode::CONFLICT,
                "over_gauge_limits",
                over.to_string(),
            ),
            "plan",
        ),
        BillingError::Declined(_) => ApiError::new(
            StatusCode::PAYMENT_REQUIRED,
            "card_declined",
            "The card on file was declined; nothing changed. Update the card (POST /api/v1/portal_sessions) and try again.",
        ),
        BillingError::Stripe(GatewayError::Unreachable { .. }) => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "stripe_unavailable",
            "Stripe could not be reached; nothing changed. Retry later.",
        ),
        BillingError::Stripe(e) => {
            tracing::error!(error = %e, "Stripe refused an API billing call");
            ApiError::new(
                StatusCode::BAD_GATEWAY,
                "stripe_error",
                "Stripe refused the request; nothing changed here. Retry later, or contact the portal's operators.",
            )
        }
        BillingError::NotAllowed => ApiError::new(
            StatusCode::FORBIDDEN,
            "no_billing_owner",
            "The organization has no owner to bill, so its billing cannot be changed through the API.",
        ),
        BillingError::TrialRefused(rule) => {
            ApiError::new(StatusCode::CONFLICT, "trial_refused", rule.to_string())
        }
        BillingError::NotACheckoutSession | BillingError::UnknownCheckout => ApiError::new(
            StatusCode::NOT_FOUND,
            "unknown_checkout",
            "No such Checkout Session for this organization.",
        ),
        BillingError::UnknownCurrentPlan(key) => {
            tracing::error!(plan = %key, "the subscription's plan is not in the catalog");
            internal()
        }
        BillingError::Database(e) => e.into(),
        BillingError::Internal(e) => {
            tracing::error!(error = format!("{e:#}"), "API billing call failed");
            internal()
        }
    }
}

/// 409 when the organization's open Checkout sells something else than was asked for: one open
/// Checkout per organization, as on the pages.
/// The message names the open one's address, so the customer can be sent there.
pub fn checkout_open(open_plan: Option<&str>, url: &str) -> ApiError {
    let what = match open_plan {
        Some(plan) => format!("the plan \u{201c}{plan}\u{201d}"),
        None => "credits".to_owned(),
    };
    ApiError::new(
        StatusCode::CONFLICT,
        "checkout_open",
        format!(
            "The organization already has an open Checkout for {what} ({url}). Send the customer there to finish it, or let it expire."
        ),
    )
}

fn internal() -> ApiError {
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal_error",
        "Something went wrong on our side; nothing was changed.",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hybrid() -> Catalog {
        crate::billing::catalog::shipped("hybrid.toml")
    }

    #[test]
    fn each_refusal_has_its_own_status_and_code() {
        let catalog = hybrid();
        let cases = [
            (
                BillingError::NotForSale("platinum".into()),
                404,
                "unknown_plan",
                Some("plan"),
            ),
            (
                BillingError::NotForSale("free".into()),
                422,
                "plan_not_for_sale",
                Some("plan"),
            ),
            (
                BillingError::NothingToChange(Unchanged::NoSubscription),
                409,
                "no_subscription",
                None,
            ),
            (
                BillingError::NothingToChange(Unchanged::AlreadyOn { plan: "Pro".into() }),
                409,
                "already_on_plan",
                Some("plan"),
            ),
            (
                BillingError::Declined(GatewayError::Declined {
                    action: "changing the plan".into(),
                    detail: "declined".into(),
                }),
                402,
                "card_declined",
                None,
            ),
            (
                BillingError::Stripe(GatewayError::Unreachable {
                    action: "creating the customer".into(),
                    detail: "connection refused".into(),
                }),
                503,
                "stripe_unavailable",
                None,
            ),
            (
                BillingError::Stripe(GatewayError::failed("finding the price", "no such price")),
                502,
                "stripe_error",
                None,
            ),
            (
                BillingError::Database(sqlx::Error::PoolTimedOut),
                503,
                "unavailable",
                None,
            ),
        ];
        for (error, status, code, field) in cases {
            let answer = billing_error(&catalog, error);
            assert_eq!(answer.status.as_u16(), status, "{code}");
            assert_eq!(answer.code, code);
            assert_eq!(answer.field.as_deref(), field, "{code}");
        }
        let open = checkout_open(Some("starter"), "https://checkout.example/cs_1");
        assert_eq!((open.status.as_u16(), open.code), (409, "checkout_open"));
        assert!(open
            .message
            .contains("\u{201c}starter\u{201d} (https://checkout.example/cs_1)"));
        assert!(checkout_open(None, "u").message.contains("for credits"));
    }
}
