//! `GET /metrics` in Prometheus' text format, for a scraper holding `METRICS_TOKEN` (unset: the
//! route does not exist). Counters and histograms are recorded where things happen, through the
//! `metrics` facade; figures that live in the database (inbox depth, apply lag, job runs) are
//! read when scraped ([`super::scrape`]), so they are right whichever instance did the work.

use std::sync::{Arc, OnceLock};

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use sqlx::PgPool;
use subtle::ConstantTimeEq;

/// Latency buckets, in seconds: from a cached API answer to a slow Stripe call.
const SECONDS_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
/// Actions per group commit of the usage writer.
const BATCH_BUCKETS: &[f64] = &[
    1.0, 2.0, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0,
];

static RECORDER: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// The process's recorder, installed on first use. One per process: several applications in one
/// process (the tests) share it.
pub fn recorder() -> Option<&'static PrometheusHandle> {
    RECORDER
        .get_or_init(|| {
            let built = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".to_owned()), SECONDS_BUCKETS)
                .and_then(|b| {
                    b.set_buckets_for_metric(
                        Matcher::Full("usage_writer_batch_actions".to_owned()),
                        BATCH_BUCKETS,
                    )
                })
                .and_then(|b| b.install_recorder());
            match built {
                Ok(handle) => Some(handle),
                Err(e) => {
                    tracing::warn!(error = %e, "metrics are off: the recorder could not be installed");
                    None
                }
            }
        })
        .as_ref()
}

#[derive(Clone)]
struct Scraper {
    token: Arc<str>,
    pool: PgPool,
}

/// The `/metrics` route, or nothing when no token is set.
pub fn routes(token: Option<&str>, pool: PgPool) -> Router {
    let Some(token) = token.filter(|t| !t.is_empty()) else {
        return Router::new();
    };
    // Installed now, so counters recorded before the first scrape are kept.
    recorder();
    Router::new()
        .route("/metrics", get(scrape))
        .with_state(Scraper {
            token: Arc::from(token),
            pool,
        })
}

async fn scrape(State(scraper): State<Scraper>, headers: HeaderMap) -> Response {
    let offered = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    if !bool::from(offered.as_bytes().ct_eq(scraper.token.as_bytes())) {
        return (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer")],
            "Send the metrics token as `Authorization: Bearer METRICS_TOKEN`.\n",
        )
            .into_response();
    }
    let Some(recorder) = recorder() else {
        return (StatusCode::SERVICE_UNAVAILABLE, "metrics are off\n").into_response();
    };
    if let Err(e) = super::scrape::read_database_figures(&scraper.pool).await {
        // The recorded counters still go out; the database figures keep their last values.
        tracing::warn!(error = %e, "reading the database figures for /metrics failed");
        metrics::counter!("metrics_scrape_errors_total").increment(1);
    }
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        recorder.render(),
    )
        .into_response()
}
