//! The REST surface's plumbing: authentication with one of the configured secret keys, Stripe's form encoding,
//! `expand[]`, idempotency keys, unknown-parameter refusal, one transaction per request, and
//! Stripe's error bodies.

use std::collections::HashMap;
use std::future::Future;

use axum::body::Bytes;
use axum::extract::{FromRequest, RawPathParams, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::error::StripeError;
use super::params::{self, Params};
use super::store::{paginate, Work};
use super::{ApiKeys, Emulator};

/// An API request, read but not yet acted on.
pub struct ApiRequest {
    method: Method,
    path: String,
    headers: HeaderMap,
    path_params: HashMap<String, String>,
    encoded: String,
}

impl FromRequest<Emulator> for ApiRequest {
    type Rejection = Response;

    async fn from_request(request: Request, state: &Emulator) -> Result<Self, Self::Rejection> {
        let (mut parts, body) = request.into_parts();
        let path_params = match RawPathParams::from_request_parts(&mut parts, state).await {
            Ok(raw) => raw
                .iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
            Err(_) => HashMap::new(),
        };
        let method = parts.method.clone();
        let path = parts.uri.path().to_owned();
        let query = parts.uri.query().unwrap_or_default().to_owned();
        let headers = parts.headers.clone();
        let body = Bytes::from_request(Request::from_parts(parts, body), state)
            .await
            .map_err(IntoResponse::into_response)?;
        let body = String::from_utf8_lossy(&body).into_owned();
        // Stripe reads GET and DELETE parameters from the query string, POST ones from the body.
        let encoded = if method == Method::POST { body } else { query };
        Ok(Self {
            method,
            path,
            headers,
            path_params,
            encoded,
        })
    }
}

use axum::extract::FromRequestParts;

/// What a resource handler gets: the parameters to take, the path's ids, the emulator.
pub struct Call {
    pub params: Params,
    pub path_params: HashMap<String, String>,
    pub url: String,
}

impl Call {
    pub fn id(&self, name: &str) -> String {
        self.path_params.get(name).cloned().unwrap_or_default()
    }

    /// Stripe's list answer over `items` (newest first), with `limit` and cursors.
    pub fn list(&mut self, items: Vec<Value>) -> Result<Value, StripeError> {
        let limit = self.params.integer("limit")?;
        let after = self.params.string("starting_after")?;
        let before = self.params.string("ending_before")?;
        let (page, has_more) = paginate(items, limit, after.as_deref(), before.as_deref())?;
        Ok(super::store::list_object(&self.url, page, has_more))
    }
}

/// The key a request presents: `Authorization: Bearer KEY`, or Basic auth with the key as the
/// user name (as Stripe's curl examples send it).
fn presented_key(headers: &HeaderMap) -> Option<String> {
    let value = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())?;
    if let Some(bearer) = value.strip_prefix("Bearer ") {
        return Some(bearer.trim().to_owned());
    }
    let basic = value.strip_prefix("Basic ")?;
    use base64::Engine as _;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(basic.trim())
        .ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    Some(decoded.split(':').next().unwrap_or_default().to_owned())
}

/// Refuses a call without one of the emulator's keys, in Stripe's words and with its 401.
fn authenticate(headers: &HeaderMap, keys: &ApiKeys) -> Result<(), StripeError> {
    let Some(key) = presented_key(headers).filter(|k| !k.is_empty()) else {
        return Err(StripeError::unauthorized(
            "You did not provide an API key. You need to provide your API key in the Authorization \
             header, using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY').",
        ));
    };
    if keys.accepts(&key) {
        return Ok(());
    }
    // Stripe shows the key's start and its last four characters; a short guess shows less.
    let shown: String = key.chars().take(8).collect();
    let tail: String = if key.chars().count() > 16 {
        key.chars().skip(key.chars().count() - 4).collect()
    } else {
        String::new()
    };
    Err(StripeError::unauthorized(format!(
        "Invalid API Key provided: {shown}{}{tail}",
        "*".repeat(8)
    ))
    .with_code("api_key_invalid"))
}

fn respond(status: StatusCode, body: Value, request_id: &str, replayed: bool) -> Response {
    let mut response = (status, Json(body)).into_response();
    if let Ok(id) = HeaderValue::from_str(request_id) {
        response.headers_mut().insert("request-id", id);
    }
    if replayed {
        response
            .headers_mut()
            .insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    response
}

/// Runs one API call: authenticate, parse, replay or refuse a reused idempotency key, run the
/// handler in a transaction, refuse unknown parameters, expand, save the idempotent answer,
/// commit, and wake the webhook sender.
pub async fn run<F, Fut>(emulator: Emulator, request: ApiRequest, handler: F) -> Response
where
    F: FnOnce(Work, Emulator, Call) -> Fut,
    Fut: Future<Output = (Work, Call, Result<Value, StripeError>)>,
{
    if let Err(e) = authenticate(&request.headers, &emulator.keys) {
        return e.into_response();
    }
    let parsed = match params::parse(&request.encoded) {
        Ok(map) => map,
        Err(e) => return e.into_response(),
    };
    // Stripe compares the parameters, not their encoding: hash the parsed (sorted) tree.
    let request_hash = hex::encode(Sha256::digest(
        format!("{} {} {parsed:?}", request.method, request.path).as_bytes(),
    ));
    let mut params = Params::new(parsed);
    let expand = match params.strings("expand") {
        Ok(expand) => expand,
        Err(e) => return e.into_response(),
    };
    let idempotency_key = (request.method == Method::POST)
        .then(|| request.headers.get("idempotency-key"))
        .flatten()
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let mut work = match Work::begin(&emulator.pool, idempotency_key.clone()).await {
        Ok(work) => work,
        Err(e) => return e.into_response(),
    };
    if let Some(key) = &idempotency_key {
        let saved: Result<Option<(String, i32, Value)>, sqlx::Error> = sqlx::query_as(
            "SELECT request_hash, status, response FROM stripe_emulator.idempotency WHERE key = $1",
        )
        .bind(key)
        .fetch_optional(work.tx())
        .await;
        match saved {
            Err(e) => return StripeError::from(e).into_response(),
            Ok(Some((hash, status, body))) if hash == request_hash => {
                let status = StatusCode::from_u16(u16::try_from(status).unwrap_or(200))
                    .unwrap_or(StatusCode::OK);
                return respond(status, body, &work.request_id.clone(), true);
            }
            Ok(Some(_)) => return StripeError::idempotency(key).into_response(),
            Ok(None) => {}
        }
    }
    let call = Call {
        params,
        path_params: request.path_params,
        url: request.path.clone(),
    };
    let (mut work, call, result) = handler(work, emulator.clone(), call).await;
    let result = match result {
        Ok(value) => call.params.finish().map(|()| value),
        Err(e) => Err(e),
    };
    let (status, body) = match result {
        Ok(mut value) => match work.expand(&mut value, &expand).await {
            Ok(()) => (StatusCode::OK, value),
            Err(e) => (e.status, e.body()),
        },
        Err(e) => (e.status, e.body()),
    };
    // Successes and card declines happened (a failed payment is a fact Stripe keeps); anything
    // else changes nothing.
    let keep = status == StatusCode::OK || status == StatusCode::PAYMENT_REQUIRED;
    if !keep {
        return respond(status, body, &work.request_id, false);
    }
    if let Some(key) = &idempotency_key {
        let saved = sqlx::query(
            "INSERT INTO stripe_emulator.idempotency (key, request_hash, status, response)
             VALUES ($1, $2, $3, $4)",
        )
        .bind(key)
        .bind(&request_hash)
        .bind(i32::from(status.as_u16()))
        .bind(&body)
        .execute(work.tx())
        .await;
        if let Err(e) = saved {
            return StripeError::from(e).into_response();
        }
    }
    let request_id = work.request_id.clone();
    match work.commit().await {
        Ok(emitted) => {
            if emitted {
                emulator.wake.notify_one();
            }
            respond(status, body, &request_id, false)
        }
        Err(e) => e.into_response(),
    }
}

/// Wraps `resource::handler(&mut Work, &Emulator, &mut Call)` as an axum handler.
macro_rules! endpoint {
    ($handler:path) => {
        |axum::extract::State(emulator): axum::extract::State<$crate::Emulator>,
         request: $crate::api::ApiRequest| async move {
            $crate::api::run(
                emulator,
                request,
                |mut work, emulator, mut call| async move {
                    let result = $handler(&mut work, &emulator, &mut call).await;
                    (work, call, result)
                },
            )
            .await
        }
    };
}
pub(crate) use endpoint;

/// `404` for paths the API does not have, in Stripe's words.
pub async fn unknown_route(
    State(_): State<Emulator>,
    method: Method,
    uri: axum::http::Uri,
) -> Response {
    let mut error = StripeError::invalid_request(
        format!("Unrecognized request URL ({method}: {}).", uri.path()),
        None,
    );
    error.status = StatusCode::NOT_FOUND;
    error.into_response()
}
