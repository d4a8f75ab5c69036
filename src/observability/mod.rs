//! What operators watch the portal with: logs (plain or JSON, with the request id), and the
//! Prometheus metrics at `GET /metrics` (request counts and latencies per route, the webhook
//! inbox, the usage writer, background jobs, the database pool).

pub mod http_metrics;
pub mod logging;
pub mod prometheus;
pub mod scrape;
