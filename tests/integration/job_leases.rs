//! Jobs that must run on one instance at a time: a second caller skips while the first runs, the
//! next run after it goes ahead, a crashed holder (its connection gone) frees the job, and every
//! run is recorded for the operators.

use std::time::Duration;

use billing_portal::db::lease::{last_runs, run_exclusive};
use tokio::sync::oneshot;

use crate::harness::TestApp;

#[tokio::test]
async fn a_job_runs_on_one_caller_at_a_time_and_each_run_is_recorded() {
    let app = TestApp::spawn().await;
    let (started_tx, started_rx) = oneshot::channel();
    let (finish_tx, finish_rx) = oneshot::channel::<()>();
    let pool = app.pool.clone();
    let first = tokio::spawn(async move {
        run_exclusive(&pool, "test-job", async move {
            let _ = started_tx.send(());
            let _ = finish_rx.await;
            Ok(1)
        })
        .await
    });
    started_rx.await.expect("the first run started");

    let second = run_exclusive(&app.pool, "test-job", async { Ok(2) })
        .await
        .expect("a skipped turn is not an error");
    assert_eq!(
        second, None,
        "a second caller must not run the job meanwhile"
    );
    let other_job = run_exclusive(&app.pool, "another-job", async { Ok(3) })
        .await
        .expect("another job");
    assert_eq!(other_job, Some(3), "another job's lease is its own");

    finish_tx.send(()).expect("the first run is waiting");
    assert_eq!(first.await.expect("joined").expect("ran"), Some(1));
    let after = run_exclusive(&app.pool, "test-job", async {
        Err::<(), _>(anyhow::anyhow!("the job failed on purpose"))
    })
    .await;
    assert!(after.is_err(), "the body's error is returned");

    let runs = last_runs(&app.pool).await.expect("runs");
    let test_job = runs.iter().find(|r| r.job == "test-job").expect("recorded");
    assert_eq!((test_job.runs, test_job.failures), (2, 1));
    assert_eq!(test_job.ok, Some(false));
    assert!(test_job
        .error
        .as_deref()
        .is_some_and(|e| e.contains("failed on purpose")));
}

#[tokio::test]
async fn a_holder_that_dies_frees_the_job() {
    let app = TestApp::spawn().await;
    let pool = app.pool.clone();
    let (started_tx, started_rx) = oneshot::channel();
    let holder = tokio::spawn(async move {
        run_exclusive(&pool, "crashing-job", async move {
            let _ = started_tx.send(());
            tokio::time::sleep(Duration::from_secs(3600)).await;
            Ok(())
        })
        .await
    });
    started_rx.await.expect("started");
    assert_eq!(
        run_exclusive(&app.pool, "crashing-job", async { Ok(()) })
            .await
            .expect("skipped"),
        None
    );
    // The instance dies: its task is gone and its connection closes with it.
    holder.abort();
    let _ = holder.await;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let ran = run_exclusive(&app.pool, "crashing-job", async { Ok(()) })
            .await
            .expect("a run");
        if ran.is_some() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the dead holder's lease was never freed"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
