//! Operators' alert on webhook signature failures: the webhook receiver only counts a refusal (no
//! I/O on its path, and a bad signature still writes nothing); a watcher adds up the last
//! [`WINDOW_MINUTES`] and, above [`THRESHOLD`], writes one alert per window. The cause is the
//! window's number, so instances that cross the threshold in the same window send one alert.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use sqlx::PgPool;

use super::kinds::Kind;

/// Refusals in the window that raise an alert.
pub const THRESHOLD: u64 = 20;
pub const WINDOW_MINUTES: u64 = 10;

static REFUSED: AtomicU64 = AtomicU64::new(0);

/// Counts one refused signature (called by the webhook receiver).
pub fn signature_failed() {
    REFUSED.fetch_add(1, Ordering::Relaxed);
}

/// The per-minute counts of the last window; pure.
#[derive(Debug, Default)]
pub struct Window(VecDeque<u64>);

impl Window {
    /// Adds a minute's count; returns the window's total when it is at or above the threshold.
    pub fn push(&mut self, count: u64) -> Option<u64> {
        self.0.push_back(count);
        while self.0.len() > WINDOW_MINUTES as usize {
            self.0.pop_front();
        }
        let total: u64 = self.0.iter().sum();
        (total >= THRESHOLD).then_some(total)
    }
}

/// Checks every minute until the task is aborted.
pub async fn watch_signature_failures(pool: PgPool) {
    let mut window = Window::default();
    let mut tick = tokio::time::interval(Duration::from_secs(60));
    tick.tick().await;
    loop {
        tick.tick().await;
        let Some(total) = window.push(REFUSED.swap(0, Ordering::Relaxed)) else {
            continue;
        };
        let slot = chrono::Utc::now().timestamp() / (WINDOW_MINUTES as i64 * 60);
        let written = async {
            let mut tx = pool.begin().await?;
            super::enqueue(
                &mut tx,
                super::Notice {
                    kind: Kind::OpsSignatureFailures,
                    org_id: None,
                    user_id: None,
                    cause: &format!("signatures-{slot}"),
                    values: serde_json::json!({ "count": total, "window_minutes": WINDOW_MINUTES }),
                },
            )
            .await?;
            tx.commit().await
        };
        if let Err(e) = written.await {
            tracing::warn!(error = %e, "writing the signature failure alert failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_alert_needs_the_threshold_within_the_window() {
        let mut w = Window::default();
        for _ in 0..9 {
            assert_eq!(w.push(2), None);
        }
        assert_eq!(w.push(2), Some(20));
        // The oldest minute drops out.
        assert_eq!(w.push(0), None);
    }
}
