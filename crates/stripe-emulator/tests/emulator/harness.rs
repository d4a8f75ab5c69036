//! One throwaway PostgreSQL cluster per test process (started from the local binaries, killed
//! with the process) and a fresh database per test.

use std::sync::OnceLock;

use private_postgres::PrivateCluster;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::PgPool;

static CLUSTER: OnceLock<PrivateCluster> = OnceLock::new();

fn cluster() -> &'static PrivateCluster {
    CLUSTER.get_or_init(|| {
        private_postgres::throwaway::start_for_this_process("stripe-emulator-tests")
            .expect("starting the test PostgreSQL cluster")
    })
}

/// A new empty database on the test cluster: its connection options and URL.
pub async fn fresh_database() -> (PgConnectOptions, String) {
    let name = format!("test_{}", unique_suffix());
    private_postgres::throwaway::create_database(cluster(), &name)
        .await
        .expect("a fresh test database")
}

/// A pool on a fresh database.
pub async fn fresh_pool() -> PgPool {
    let (options, _) = fresh_database().await;
    PgPoolOptions::new()
        .max_connections(8)
        .connect_with(options)
        .await
        .expect("pool")
}

fn unique_suffix() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!(
        "{}_{nanos}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}
