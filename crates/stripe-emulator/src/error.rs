//! Stripe's error body (`{"error": {"type", "code", "decline_code", "message", "param"}}`) with
//! Stripe's status codes.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Map, Value};

#[derive(Debug, Clone)]
pub struct StripeError {
    pub status: StatusCode,
    pub kind: &'static str,
    pub code: Option<String>,
    pub decline_code: Option<String>,
    pub message: String,
    pub param: Option<String>,
    /// Extra fields Stripe puts in card errors (`payment_intent`, `charge`, ...).
    pub extra: Map<String, Value>,
}

impl StripeError {
    pub fn invalid_request(message: impl Into<String>, param: Option<&str>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            kind: "invalid_request_error",
            code: None,
            decline_code: None,
            message: message.into(),
            param: param.map(str::to_owned),
            extra: Map::new(),
        }
    }

    pub fn missing_param(param: &str) -> Self {
        Self::invalid_request(format!("Missing required param: {param}."), Some(param))
            .with_code("parameter_missing")
    }

    /// `No such customer: 'cus_123'`, 404.
    pub fn no_such(what: &str, id: &str, param: &str) -> Self {
        Self {
            status: StatusCode::NOT_FOUND,
            ..Self::invalid_request(format!("No such {what}: '{id}'"), Some(param))
        }
        .with_code("resource_missing")
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::UNAUTHORIZED,
            ..Self::invalid_request(message, None)
        }
    }

    pub fn idempotency(key: &str) -> Self {
        Self {
            kind: "idempotency_error",
            ..Self::invalid_request(
                format!(
                    "Keys for idempotent requests can only be used with the same parameters they \
                     were first used with. Try using a key other than '{key}' if you meant to \
                     execute a different request."
                ),
                None,
            )
        }
    }

    /// A declined card: 402 `card_error`.
    pub fn card(code: &str, decline_code: Option<&str>, message: &str) -> Self {
        Self {
            status: StatusCode::PAYMENT_REQUIRED,
            kind: "card_error",
            code: Some(code.to_owned()),
            decline_code: decline_code.map(str::to_owned),
            message: message.to_owned(),
            param: None,
            extra: Map::new(),
        }
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            kind: "api_error",
            ..Self::invalid_request(message, None)
        }
    }

    pub fn with_code(mut self, code: &str) -> Self {
        self.code = Some(code.to_owned());
        self
    }

    pub fn with_extra(mut self, key: &str, value: Value) -> Self {
        self.extra.insert(key.to_owned(), value);
        self
    }

    pub fn body(&self) -> Value {
        let mut error = Map::new();
        error.insert("type".into(), json!(self.kind));
        error.insert("message".into(), json!(self.message));
        if let Some(code) = &self.code {
            error.insert("code".into(), json!(code));
        }
        if let Some(decline_code) = &self.decline_code {
            error.insert("decline_code".into(), json!(decline_code));
        }
        if let Some(param) = &self.param {
            error.insert("param".into(), json!(param));
        }
        for (k, v) in &self.extra {
            error.insert(k.clone(), v.clone());
        }
        json!({ "error": error })
    }
}

impl From<sqlx::Error> for StripeError {
    fn from(e: sqlx::Error) -> Self {
        tracing::error!(error = %e, "emulator database error");
        Self::internal("An error occurred with our connection to Stripe.")
    }
}

impl From<serde_json::Error> for StripeError {
    fn from(e: serde_json::Error) -> Self {
        tracing::error!(error = %e, "emulator stored an unreadable object");
        Self::internal("An error occurred with our connection to Stripe.")
    }
}

impl IntoResponse for StripeError {
    fn into_response(self) -> Response {
        (self.status, Json(self.body())).into_response()
    }
}
