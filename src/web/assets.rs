//! Static files. The stylesheet is compiled into the binary and served where cargo-leptos would put
//! it (`/pkg/<output-name>.css`), so the server works from any folder; `public/` is served as is.

use std::path::PathBuf;

use axum::http::header;
use axum::response::IntoResponse;

const STYLESHEET: &str = include_str!("../../style/main.css");

pub async fn stylesheet() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        STYLESHEET,
    )
}

/// `public/` (the `assets-dir` of the Leptos metadata): relative to the working directory when it
/// exists there, else in the source tree the binary was built from.
pub fn public_dir() -> PathBuf {
    let assets_dir = "public";
    let here = PathBuf::from(assets_dir);
    if here.is_dir() {
        here
    } else {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(assets_dir)
    }
}
