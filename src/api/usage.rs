//! `POST /api/v1/usage` and `POST /api/v1/usage/batch`: record billable actions. Input is
//! checked completely before anything is recorded (a bad field names itself and records
//! nothing); then the actions go to the group-commit writer and are answered once durable.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Duration, SubsecRound, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::keys::ApiCaller;
use super::scopes::Scope;
use super::ApiError;
use crate::billing::catalog::{Catalog, Limit};
use crate::usage::consumption::Refusal;
use crate::usage::credits;
use crate::usage::writer::{NewAction, Outcome, Refused};
use crate::web::hygiene;
use crate::web::state::AppState;

/// Most actions one batch may carry.
pub const MAX_BATCH: usize = 1000;
/// Longest idempotency key.
pub const MAX_KEY_LEN: usize = 255;
/// How far ahead of our clock `occurred_at` may be (clock skew), and how far back.
const FUTURE_TOLERANCE_MINUTES: i64 = 5;
const PAST_LIMIT_DAYS: i64 = 31;
/// Largest `metadata`, serialized.
const MAX_METADATA_BYTES: usize = 4096;

/// One billable action.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ActionRequest {
    /// A tier of the catalog (`small`, `medium`, `large`, `xl` by default).
    pub tier: String,
    /// Your unique id for this action (1 to 255 characters, no control characters). Sending it
    /// again answers the same result and records nothing new.
    pub idempotency_key: String,
    /// When the action happened; defaults to now. At most 5 minutes ahead and 31 days back.
    pub occurred_at: Option<DateTime<Utc>>,
    /// Any JSON object (up to 4 KB), kept with the action. No NUL or other control characters in
    /// its keys, nor in its strings (tab and line breaks aside).
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<Value>,
}

/// Up to 1,000 actions, answered one by one.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BatchRequest {
    pub actions: Vec<ActionRequest>,
}

/// How one action was answered.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ActionAnswer {
    /// The HTTP status this action would have on its own: 200, 402 or 409.
    pub status: u16,
    pub allowed: bool,
    pub tier: String,
    pub idempotency_key: String,
    /// The recorded action's id (absent when refused).
    pub id: Option<i64>,
    /// `included`, `credits` or `overage` (absent when refused).
    pub counted_as: Option<String>,
    /// Credits taken from the balance, as a decimal string ("2.5").
    pub credits_charged: Option<String>,
    pub millicredits_charged: Option<i64>,
    /// Included actions of this tier left this period (`null` when unlimited).
    pub included_remaining: Option<u64>,
    /// The credit balance after this action, in milli-credits (negative while overage is owed).
    pub balance_millicredits: i64,
    pub balance: String,
    pub occurred_at: Option<DateTime<Utc>>,
    /// True when the idempotency key was seen before and nothing new was recorded.
    pub replayed: bool,
    /// Why it was refused, and what to do.
    pub error: Option<super::ErrorBody>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct BatchAnswer {
    pub results: Vec<ActionAnswer>,
}

/// The `Idempotency-Key` header every POST and PUT accepts (see `api::idempotency`).
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Header)]
pub struct IdempotencyHeader {
    /// 1 to 255 visible ASCII characters. A repeat with the same key and body answers the saved
    /// response (`Idempotent-Replayed: true`) and records nothing; kept 24 hours.
    #[serde(rename = "Idempotency-Key")]
    #[param(rename = "Idempotency-Key")]
    pub idempotency_key: Option<String>,
}

/// Parses JSON, telling malformed JSON (400) from a well-formed body with a bad field (422).
pub(crate) fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(&mut deserializer).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if inner.is_syntax() || inner.is_eof() {
            return ApiError::new(
                StatusCode::BAD_REQUEST,
                "malformed_json",
                format!("The body is not valid JSON: {inner}"),
            );
        }
        let message = inner.to_string();
        // A missing field is reported at its parent; name the field itself.
        let field = match message.split('`').nth(1) {
            Some(missing) if message.starts_with("missing field") => {
                if path == "." {
                    missing.to_owned()
                } else {
                    format!("{path}.{missing}")
                }
            }
            _ => path,
        };
        ApiError::invalid(field, format!("The request is not valid: {message}"))
    })
}

fn validate(
    catalog: &Catalog,
    caller: ApiCaller,
    request: ActionRequest,
    at: &str,
    now: DateTime<Utc>,
) -> Result<NewAction, ApiError> {
    let field = |name: &str| {
        if at.is_empty() {
            name.to_owned()
        } else {
            format!("{at}.{name}")
        }
    };
    let tiers = catalog.meter_keys();
    if !tiers.contains(&request.tier.as_str()) {
        return Err(ApiError::invalid(
            field("tier"),
            format!(
                "Unknown tier \"{}\". Known tiers: {}.",
                request.tier,
                tiers.join(", ")
            ),
        ));
    }
    if catalog.gauge(&request.tier).is_some() {
        return Err(ApiError::invalid(
            field("tier"),
            format!(
                "\"{}\" is a gauge, a count now rather than actions: set it with PUT /api/v1/gauges/{}.",
                request.tier, request.tier
            ),
        ));
    }
    let key = request.idempotency_key.trim();
    if key.is_empty() || request.idempotency_key.chars().count() > MAX_KEY_LEN {
        return Err(ApiError::invalid(
            field("idempotency_key"),
            format!("The idempotency key must be 1 to {MAX_KEY_LEN} characters."),
        ));
    }
    // PostgreSQL text cannot hold NUL, and no control character belongs in an id: refused here,
    // the action cannot fail the writer's shared commit for everyone batched with it.
    if hygiene::has_control_chars(&request.idempotency_key) {
        return Err(ApiError::invalid(
            field("idempotency_key"),
            "The idempotency key must not contain control characters (such as NUL or a newline).",
        ));
    }
    // PostgreSQL keeps microseconds: round here so a replay answers exactly the first answer.
    let occurred_at = request.occurred_at.unwrap_or(now).trunc_subsecs(6);
    if occurred_at > now + Duration::minutes(FUTURE_TOLERANCE_MINUTES) {
        return Err(ApiError::invalid(
            field("occurred_at"),
            "occurred_at is in the future. Send the time the action happened (or leave it out for now).",
        ));
    }
    if occurred_at < now - Duration::days(PAST_LIMIT_DAYS) {
        return Err(ApiError::invalid(
            field("occurred_at"),
            format!("occurred_at is more than {PAST_LIMIT_DAYS} days ago."),
        ));
    }
    if let Some(metadata) = &request.metadata {
        if !metadata.is_object() {
            return Err(ApiError::invalid(
                field("metadata"),
                "metadata must be a JSON object.",
            ));
        }
        if metadata.to_string().len() > MAX_METADATA_BYTES {
            return Err(ApiError::invalid(
                field("metadata"),
                format!("metadata is larger than {MAX_METADATA_BYTES} bytes."),
            ));
        }
        // jsonb refuses `\u0000`; other control characters (but tab and line breaks) only hide
        // what is written.
        if let Some(path) = hygiene::json_bad_text(metadata) {
            return Err(ApiError::invalid(
                format!("{}{path}", field("metadata")),
                "metadata must not contain NUL or other control characters (tab and line breaks \
                 are fine in values; keys take none).",
            ));
        }
    }
    Ok(NewAction {
        org_id: caller.org_id,
        api_key_id: Some(caller.key_id),
        tier: request.tier,
        idempotency_key: request.idempotency_key,
        occurred_at,
        metadata: request.metadata,
    })
}

fn refusal_message(catalog: &Catalog, r: &Refused) -> String {
    let name = catalog.meter_name(&r.tier);
    let included = match r.included {
        Limit::Count(n) => n.to_string(),
        Limit::Unlimited => "unlimited".to_owned(),
    };
    match r.refusal {
        Refusal::OutOfCredits => format!(
            "Refused: this period's {included} included {name} actions are used, the credit \
             balance ({} credits) does not cover one action ({} credits), and the overage \
             allowance of {} actions is used up. Buy credits (or turn on auto top-up) on the \
             organization's credits page, or upgrade the plan.",
            credits::format(r.balance_millicredits),
            credits::format(r.weight_millicredits.unwrap_or_default()),
            r.soft_limit_actions,
        ),
        Refusal::LimitReached => format!(
            "Refused: the plan includes {included} {name} per period and they are used. Upgrade \
             the plan or wait for the next period."
        ),
    }
}

fn answer(catalog: &Catalog, action: &NewAction, outcome: Outcome) -> ActionAnswer {
    let base = ActionAnswer {
        status: 200,
        allowed: false,
        tier: action.tier.clone(),
        idempotency_key: action.idempotency_key.clone(),
        id: None,
        counted_as: None,
        credits_charged: None,
        millicredits_charged: None,
        included_remaining: None,
        balance_millicredits: 0,
        balance: "0".to_owned(),
        occurred_at: None,
        replayed: false,
        error: None,
    };
    match outcome {
        Outcome::Recorded(r) => ActionAnswer {
            allowed: true,
            id: Some(r.id),
            counted_as: Some(r.counted_as.as_str().to_owned()),
            credits_charged: Some(credits::format(r.millicredits)),
            millicredits_charged: Some(r.millicredits),
            included_remaining: r.included_remaining,
            balance_millicredits: r.balance_after,
            balance: credits::format(r.balance_after),
            occurred_at: Some(r.occurred_at),
            replayed: r.replayed,
            ..base
        },
        Outcome::Refused(r) => ActionAnswer {
            status: 402,
            included_remaining: match r.included {
                Limit::Count(_) => Some(0),
                Limit::Unlimited => None,
            },
            balance_millicredits: r.balance_millicredits,
            balance: credits::format(r.balance_millicredits),
            error: Some(super::ErrorBody {
                code: r.refusal.code().to_owned(),
                message: refusal_message(catalog, &r),
                field: None,
            }),
            ..base
        },
        Outcome::KeyReused { tier } => ActionAnswer {
            status: 409,
            error: Some(super::ErrorBody {
                code: "idempotency_key_reused".to_owned(),
                message: format!(
                    "This idempotency key was already used for an action of another tier than \
                     \"{tier}\". Use a new key for a new action."
                ),
                field: Some("idempotency_key".to_owned()),
            }),
            ..base
        },
        Outcome::Gone { tier } => ActionAnswer {
            status: 404,
            error: Some(super::ErrorBody {
                code: "not_found".to_owned(),
                message: format!("The organization or the tier \"{tier}\" no longer exists."),
                field: None,
            }),
            ..base
        },
    }
}

#[utoipa::path(
    post,
    path = "/api/v1/usage",
    security(("api_key" = ["usage:write"])),
    request_body = ActionRequest,
    params(IdempotencyHeader),
    responses(
        (status = 200, description = "Allowed and recorded (or a repeated key: the same answer, nothing new recorded). With a repeated Idempotency-Key header: the saved answer, with `Idempotent-Replayed: true`", body = ActionAnswer),
        (status = 402, description = "Refused: included actions, credits and the overage allowance are used up", body = ActionAnswer),
        (status = 409, description = "The action's idempotency key was used for another tier (an action answer), or the Idempotency-Key header was used for another request (`idempotency_key_reused`) or is still in flight (`idempotency_in_progress`, with Retry-After)", body = super::openapi::UsageConflict),
        (status = 400, description = "Malformed JSON", body = super::openapi::ErrorAnswer),
        (status = 401, description = "Missing, wrong or revoked API key", body = super::openapi::ErrorAnswer),
        (status = 403, description = "The key lacks the `usage:write` scope (`missing_scope`)", body = super::openapi::ErrorAnswer),
        (status = 429, description = "The key's `usage` rate limit is used up (`rate_limited`), or too many wrong API keys from this address (`too_many_wrong_keys`); see Retry-After", body = super::openapi::ErrorAnswer),
        (status = 422, description = "A field (or the Idempotency-Key header) is invalid; nothing was recorded", body = super::openapi::ErrorAnswer),
    )
)]
pub async fn record_one(
    State(state): State<AppState>,
    caller: ApiCaller,
    body: Bytes,
) -> Result<Response, ApiError> {
    caller.require(Scope::UsageWrite)?;
    let request: ActionRequest = parse(&body)?;
    let action = validate(&state.catalog, caller, request, "", Utc::now())?;
    let mut outcomes = state
        .usage
        .record(caller.org_id, vec![action.clone()])
        .await
        .map_err(|_| ApiError::unavailable())?;
    let outcome = outcomes.pop().ok_or_else(ApiError::unavailable)?;
    let answer = answer(&state.catalog, &action, outcome);
    let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::OK);
    Ok((status, Json(answer)).into_response())
}

#[utoipa::path(
    post,
    path = "/api/v1/usage/batch",
    security(("api_key" = ["usage:write"])),
    request_body = BatchRequest,
    params(IdempotencyHeader),
    responses(
        (status = 200, description = "Each action answered on its own, in order. With a repeated Idempotency-Key header: the saved answer, with `Idempotent-Replayed: true`", body = BatchAnswer),
        (status = 400, description = "Malformed JSON", body = super::openapi::ErrorAnswer),
        (status = 401, description = "Missing, wrong or revoked API key", body = super::openapi::ErrorAnswer),
        (status = 403, description = "The key lacks the `usage:write` scope (`missing_scope`)", body = super::openapi::ErrorAnswer),
        (status = 409, description = "The Idempotency-Key header was used for another request (`idempotency_key_reused`) or is still in flight (`idempotency_in_progress`, with Retry-After)", body = super::openapi::ErrorAnswer),
        (status = 429, description = "The key's `usage` rate limit is used up (`rate_limited`), or too many wrong API keys from this address (`too_many_wrong_keys`); see Retry-After", body = super::openapi::ErrorAnswer),
        (status = 422, description = "An action (or the Idempotency-Key header) is invalid or the batch is too large; nothing was recorded", body = super::openapi::ErrorAnswer),
    )
)]
pub async fn record_batch(
    State(state): State<AppState>,
    caller: ApiCaller,
    body: Bytes,
) -> Result<Response, ApiError> {
    caller.require(Scope::UsageWrite)?;
    let request: BatchRequest = parse(&body)?;
    if request.actions.is_empty() || request.actions.len() > MAX_BATCH {
        return Err(ApiError::invalid(
            "actions",
            format!(
                "A batch carries 1 to {MAX_BATCH} actions; this one has {}.",
                request.actions.len()
            ),
        ));
    }
    let now = Utc::now();
    let actions = request
        .actions
        .into_iter()
        .enumerate()
        .map(|(i, a)| validate(&state.catalog, caller, a, &format!("actions[{i}]"), now))
        .collect::<Result<Vec<_>, _>>()?;
    let outcomes = state
        .usage
        .record(caller.org_id, actions.clone())
        .await
        .map_err(|_| ApiError::unavailable())?;
    let results = actions
        .iter()
        .zip(outcomes)
        .map(|(action, outcome)| answer(&state.catalog, action, outcome))
        .collect();
    Ok(Json(BatchAnswer { results }).into_response())
}
