//! One throwaway PostgreSQL cluster per test process (started from the local binaries, killed
//! with the process) and a fresh database per test.

use std::path::PathBuf;
use std::sync::OnceLock;

use private_postgres::{ClusterOptions, PrivateCluster};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Connection, PgConnection, PgPool};

static CLUSTER: OnceLock<PrivateCluster> = OnceLock::new();

fn cluster() -> &'static PrivateCluster {
    CLUSTER.get_or_init(|| {
        let root = std::env::temp_dir().join("stripe-emulator-tests");
        remove_stale_clusters(&root);
        let dir = root.join(std::process::id().to_string());
        let _ = std::fs::remove_dir_all(&dir);
        PrivateCluster::start(&dir, &ClusterOptions { durable: false })
            .expect("starting the test PostgreSQL cluster")
    })
}

/// Clusters of earlier test processes that have exited (their postgres died with them).
fn remove_stale_clusters(root: &std::path::Path) {
    let Ok(entries) = std::fs::read_dir(root) else {
        return;
    };
    for entry in entries.flatten() {
        let pid_alive = entry
            .file_name()
            .to_str()
            .and_then(|name| name.parse::<u32>().ok())
            .is_some_and(|pid| PathBuf::from(format!("/proc/{pid}")).exists());
        if !pid_alive {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// A new empty database on the test cluster: its connection options and URL.
pub async fn fresh_database() -> (PgConnectOptions, String) {
    let cluster = cluster();
    let name = format!("test_{}", uuid_like());
    let mut admin = PgConnection::connect_with(&cluster.connect_options("postgres"))
        .await
        .expect("connecting to the test cluster");
    sqlx::query(&format!("CREATE DATABASE \"{name}\""))
        .execute(&mut admin)
        .await
        .expect("creating a test database");
    admin.close().await.ok();
    let socket = cluster.data_dir().join("socket");
    let url = format!(
        "postgres://postgres@localhost:5432/{name}?host={}",
        socket.display()
    );
    (cluster.connect_options(&name), url)
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

fn uuid_like() -> String {
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
