//! What a form's server function accepts as a body: url-encoded fields, as a browser's form post
//! and Leptos' own client send them. Anything else is refused with a clear 400 before the
//! function runs, instead of being read as a form with every field missing.

use axum::extract::Request;
use axum::http::{header, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::{AppError, FORMS_PREFIX};

pub const FORM_CONTENT_TYPE: &str = "application/x-www-form-urlencoded";

/// Whether a request to `path` with this method and content type is a form post we read.
pub fn acceptable(method: &Method, path: &str, content_type: Option<&str>) -> bool {
    if method != Method::POST || !path.starts_with(FORMS_PREFIX) {
        return true;
    }
    content_type.is_some_and(|value| {
        value
            .split(';')
            .next()
            .is_some_and(|mime| mime.trim().eq_ignore_ascii_case(FORM_CONTENT_TYPE))
    })
}

/// Middleware: answers 400 to a post to a server function whose body is not a form.
pub async fn only_form_bodies(request: Request, next: Next) -> Response {
    let content_type = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    if acceptable(request.method(), request.uri().path(), content_type) {
        next.run(request).await
    } else {
        AppError::BadRequest(format!(
            "Forms are sent as {FORM_CONTENT_TYPE} (the Content-Type header)."
        ))
        .into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_url_encoded_posts_reach_a_server_function() {
        let post = Method::POST;
        assert!(acceptable(&post, "/forms/signup", Some(FORM_CONTENT_TYPE)));
        assert!(acceptable(
            &post,
            "/forms/signup",
            Some("Application/X-WWW-Form-Urlencoded; charset=UTF-8")
        ));
        assert!(!acceptable(
            &post,
            "/forms/signup",
            Some("application/json")
        ));
        assert!(!acceptable(
            &post,
            "/forms/signup",
            Some("multipart/form-data")
        ));
        assert!(!acceptable(&post, "/forms/signup", None));
        // Other routes keep their own rules (the JSON API, webhooks, pages).
        assert!(acceptable(&post, "/api/v1/usage", Some("application/json")));
        assert!(acceptable(&Method::GET, "/forms/signup", None));
    }
}
