//! Stopping cleanly. A shutdown (SIGTERM, Ctrl-C) first lets the requests in flight finish, then
//! asks the workers to stop: each finishes the batch it holds (commits it) and takes no other.
//! Everything has one deadline, `SHUTDOWN_TIMEOUT_SECONDS` after the signal; what still runs
//! then is cut off, which is safe too (every batch is one transaction), only slower to redo.

use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// What a worker watches to know it should stop after its current batch.
#[derive(Clone, Debug)]
pub struct Stop(watch::Receiver<bool>);

/// The switch that tells every [`Stop`] to stop.
#[derive(Debug)]
pub struct StopSwitch(watch::Sender<bool>);

/// A switch and the stop its workers watch.
pub fn stop_switch() -> (StopSwitch, Stop) {
    let (switch, stop) = watch::channel(false);
    (StopSwitch(switch), Stop(stop))
}

impl StopSwitch {
    pub fn stop(&self) {
        self.0.send_replace(true);
    }
}

impl Stop {
    /// A stop that never comes, for workers run outside a server (tests, commands).
    pub fn never() -> Self {
        let (switch, stop) = watch::channel(false);
        // Kept alive for the process, so the receiver never sees the switch go away.
        std::mem::forget(switch);
        Self(stop)
    }

    /// Whether the worker should stop now (between batches).
    pub fn requested(&self) -> bool {
        *self.0.borrow()
    }

    /// Resolves once a stop is requested.
    pub async fn requested_now(&mut self) {
        // An error means the switch is gone, which only happens when the server is gone.
        let _ = self.0.wait_for(|stop| *stop).await;
    }

    /// Waits `idle`, or less if `wake` fires or a stop is requested. Returns whether to stop.
    pub async fn idle(&mut self, idle: Duration, wake: Option<&tokio::sync::Notify>) -> bool {
        let woken = async {
            match wake {
                Some(wake) => wake.notified().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = tokio::time::sleep(idle) => {}
            () = woken => {}
            () = self.requested_now() => {}
        }
        self.requested()
    }
}

/// Waits for `tasks` to end by `deadline`; aborts the ones still running then. Returns how many
/// had to be aborted.
pub async fn join_by(tasks: Vec<JoinHandle<()>>, deadline: Instant) -> usize {
    let mut aborted = 0;
    for mut task in tasks {
        if tokio::time::timeout_at(deadline, &mut task).await.is_err() {
            task.abort();
            aborted += 1;
        }
    }
    aborted
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn workers_see_the_stop_and_idle_waits_end_early() {
        let (switch, mut stop) = stop_switch();
        assert!(!stop.requested());
        let started = Instant::now();
        assert!(!stop.idle(Duration::from_millis(10), None).await);
        switch.stop();
        assert!(stop.idle(Duration::from_secs(60), None).await);
        assert!(started.elapsed() < Duration::from_secs(5));
        assert!(!Stop::never().requested());
    }

    #[tokio::test]
    async fn tasks_past_the_deadline_are_cut_off() {
        let quick = tokio::spawn(async {});
        let stuck = tokio::spawn(std::future::pending::<()>());
        let deadline = Instant::now() + Duration::from_millis(100);
        assert_eq!(join_by(vec![quick, stuck], deadline).await, 1);
    }
}
