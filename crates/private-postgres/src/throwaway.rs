//! A throwaway cluster for a test process: one per process under a shared folder, started on
//! first use, with a fresh database per test. Clusters left by earlier processes that have exited
//! (their postgres died with them) are removed first.

use std::path::{Path, PathBuf};

use anyhow::Context;
use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection, PgConnection};

use crate::{ClusterOptions, PrivateCluster};

/// Starts this process's cluster under `TMPDIR/{folder}/{pid}`, not durable (tests need speed,
/// not crash safety).
pub fn start_for_this_process(folder: &str) -> anyhow::Result<PrivateCluster> {
    let root = std::env::temp_dir().join(folder);
    remove_stale_clusters(&root);
    let dir = root.join(std::process::id().to_string());
    let _ = std::fs::remove_dir_all(&dir);
    PrivateCluster::start(&dir, &ClusterOptions { durable: false })
}

fn remove_stale_clusters(root: &Path) {
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

/// Creates the empty database `name` (letters, digits and `_` only) on `cluster`; returns its
/// connection options and a URL for programs started by the test.
pub async fn create_database(
    cluster: &PrivateCluster,
    name: &str,
) -> anyhow::Result<(PgConnectOptions, String)> {
    anyhow::ensure!(
        !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'),
        "a test database name is letters, digits and _ only"
    );
    let mut admin = PgConnection::connect_with(&cluster.connect_options("postgres"))
        .await
        .context("connecting to the test cluster")?;
    sqlx::query(&format!("CREATE DATABASE \"{name}\""))
        .execute(&mut admin)
        .await
        .context("creating a test database")?;
    admin.close().await.ok();
    let socket = cluster.data_dir().join("socket");
    let url = format!(
        "postgres://postgres@localhost:5432/{name}?host={}",
        socket.display()
    );
    Ok((cluster.connect_options(name), url))
}
