//! Anti-forgery for every state-changing form, with axum_csrf's signed double-submit cookie:
//! pages embed [`CsrfField`](crate::web::layout::CsrfField) and handlers take [`CsrfForm`], which
//! refuses the request before the handler runs when the token does not match the cookie.

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::Form;
use axum_csrf::CsrfToken;
use serde::de::DeserializeOwned;
use serde::Deserialize;

use crate::error::AppError;
use crate::web::state::AppState;

/// The hidden field's name in every form.
pub const FIELD: &str = "authenticity_token";

#[derive(Deserialize)]
struct Guarded<T> {
    #[serde(default)]
    authenticity_token: String,
    #[serde(flatten)]
    fields: T,
}

/// The body of a form that is only a button.
#[derive(Debug, Deserialize)]
pub struct NoFields {}

/// A form body whose anti-forgery token has been checked. Also hands back the token so a page
/// re-rendered with errors can embed it again.
pub struct CsrfForm<T> {
    pub fields: T,
    pub token: CsrfToken,
}

impl<T> FromRequest<AppState> for CsrfForm<T>
where
    T: DeserializeOwned + Send,
{
    type Rejection = AppError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let (mut parts, body) = request.into_parts();
        let token = CsrfToken::from_request_parts(&mut parts, state)
            .await
            .map_err(|_| AppError::CsrfRejected)?;
        let request = Request::from_parts(parts, body);
        let Form(guarded) = Form::<Guarded<T>>::from_request(request, state)
            .await
            .map_err(|rejection| AppError::BadRequest(rejection.body_text()))?;
        token
            .verify(&guarded.authenticity_token)
            .map_err(|_| AppError::CsrfRejected)?;
        Ok(Self {
            fields: guarded.fields,
            token,
        })
    }
}

/// The form's token for a page that shows forms.
pub fn authenticity_token(token: &CsrfToken) -> Result<String, AppError> {
    token
        .authenticity_token()
        .map_err(|e| AppError::Internal(anyhow::anyhow!("making an anti-forgery token: {e}")))
}
