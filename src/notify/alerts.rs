//! Operators' alert on webhook signature failures. The webhook receiver only counts a refusal in
//! memory (no I/O on its path, and a bad signature still writes nothing); when the refusals of
//! the last [`WINDOW_MINUTES`] reach [`THRESHOLD`], the count wakes a writer that records one
//! alert for the window. The cause is the window's number, so instances that cross the threshold
//! in the same window send one alert between them.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};

use sqlx::PgPool;
use tokio::sync::Notify;

use super::kinds::Kind;

/// Refusals in the window that raise an alert.
pub const THRESHOLD: u64 = 20;
pub const WINDOW_MINUTES: i64 = 10;

/// The per-minute counts of the last window; pure.
#[derive(Debug, Default)]
pub struct Window(VecDeque<(i64, u64)>);

impl Window {
    /// Counts one refusal in `minute` (minutes since the epoch); returns the window's total when
    /// it is at or above the threshold.
    pub fn refused(&mut self, minute: i64) -> Option<u64> {
        match self.0.back_mut() {
            Some((last, count)) if *last == minute => *count += 1,
            _ => self.0.push_back((minute, 1)),
        }
        while self
            .0
            .front()
            .is_some_and(|(first, _)| *first <= minute - WINDOW_MINUTES)
        {
            self.0.pop_front();
        }
        let total: u64 = self.0.iter().map(|(_, count)| count).sum();
        (total >= THRESHOLD).then_some(total)
    }
}

/// One instance's refused signatures, shared by the webhook receiver and the alert writer.
#[derive(Debug, Default)]
pub struct SignatureFailures {
    window: Mutex<Window>,
    /// The window slot and total waiting to be written.
    due: Mutex<Option<(i64, u64)>>,
    /// The last slot this instance alerted for, so one window writes once.
    alerted: AtomicI64,
    wake: Notify,
}

impl SignatureFailures {
    /// Counts one refused signature at `now` (called by the webhook receiver; never blocks on I/O).
    pub fn refused(&self, now: chrono::DateTime<chrono::Utc>) {
        let minute = now.timestamp().div_euclid(60);
        let total = match self.window.lock() {
            Ok(mut window) => window.refused(minute),
            Err(poisoned) => poisoned.into_inner().refused(minute),
        };
        let Some(total) = total else {
            return;
        };
        let slot = minute.div_euclid(WINDOW_MINUTES);
        if self.alerted.swap(slot, Ordering::Relaxed) == slot {
            return;
        }
        if let Ok(mut due) = self.due.lock() {
            *due = Some((slot, total));
        }
        self.wake.notify_one();
    }

    fn take_due(&self) -> Option<(i64, u64)> {
        self.due.lock().ok().and_then(|mut due| due.take())
    }
}

/// Writes an alert each time the receiver finds the threshold crossed, until aborted.
pub async fn write_signature_alerts(pool: PgPool, failures: Arc<SignatureFailures>) {
    loop {
        failures.wake.notified().await;
        let Some((slot, total)) = failures.take_due() else {
            continue;
        };
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
        for _ in 0..10 {
            assert_eq!(w.refused(0), None);
        }
        for _ in 0..9 {
            assert_eq!(w.refused(5), None);
        }
        // Ten minutes on, minute 0 has dropped out: ten in the window.
        let mut later = Window(w.0.clone());
        assert_eq!(later.refused(10), None);
        // Still inside the window, the twentieth raises it.
        assert_eq!(w.refused(9), Some(20));
    }

    #[test]
    fn crossing_the_threshold_wakes_the_writer_once_per_window() {
        let failures = SignatureFailures::default();
        let at = chrono::DateTime::from_timestamp(1_800_000_000, 0).expect("time");
        for _ in 0..THRESHOLD - 1 {
            failures.refused(at);
        }
        assert_eq!(failures.take_due(), None);
        failures.refused(at);
        let slot = (1_800_000_000 / 60) / WINDOW_MINUTES;
        assert_eq!(failures.take_due(), Some((slot, THRESHOLD)));
        failures.refused(at);
        assert_eq!(failures.take_due(), None, "one alert per window");
    }
}
