//! Sends a rendered page in one piece. Leptos hands the page over as a stream of chunks (the
//! document, then each script of page data); with small answers and Nagle off, each chunk would
//! be a write and a packet of its own. A page is collected first and sent with its length.

use axum::body::Body;
use axum::extract::Request;
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// More than any page of the portal; a body beyond it is answered as an error, not cut.
const LIMIT: usize = 4 * 1024 * 1024;

/// Middleware: collects an HTML answer's body before sending it.
pub async fn in_one_piece(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    let is_html = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"));
    if !is_html {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    match axum::body::to_bytes(body, LIMIT).await {
        Ok(bytes) => {
            parts.headers.remove(header::TRANSFER_ENCODING);
            parts
                .headers
                .insert(header::CONTENT_LENGTH, bytes.len().into());
            Response::from_parts(parts, Body::from(bytes))
        }
        Err(e) => {
            tracing::error!(error = %e, "a page could not be collected");
            axum::http::StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}
