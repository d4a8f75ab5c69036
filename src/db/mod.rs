//! The database: connecting, migrating, and (when no `DATABASE_URL` is given) running a private
//! PostgreSQL cluster from the binaries on the machine.

pub mod cluster;

use std::time::Duration;

use anyhow::Context;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, PgPool};

/// The migrations in `migrations/`, compiled into the binary.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Whether PostgreSQL (or encoding for it) refused something a statement carried, as opposed to
/// being unreachable or timing out: only then can a group commit's items, written again one by
/// one, single out the bad one.
pub fn refused_by_database(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(_) | sqlx::Error::Encode(_))
}

/// Opens a pool. Statement logging is kept at debug level so query text stays out of normal logs.
pub async fn connect(options: PgConnectOptions, max_connections: u32) -> anyhow::Result<PgPool> {
    let options = options.log_statements(tracing::log::LevelFilter::Debug);
    PgPoolOptions::new()
        .max_connections(max_connections.max(2))
        .acquire_timeout(Duration::from_secs(5))
        .connect_with(options)
        .await
        .context("connecting to PostgreSQL")
}

/// Applies pending migrations. sqlx holds a PostgreSQL advisory lock while it migrates, so
/// instances that start together take turns and the later ones find nothing to do.
pub async fn migrate(pool: &PgPool) -> anyhow::Result<()> {
    MIGRATOR
        .run(pool)
        .await
        .context("applying database migrations")
}

/// Creates `name` on the server `admin` points at, unless it exists.
pub async fn ensure_database(admin: &PgConnectOptions, name: &str) -> anyhow::Result<()> {
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .connect_with(admin.clone())
        .await
        .context("connecting to PostgreSQL to create the database")?;
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
            .bind(name)
            .fetch_one(&pool)
            .await?;
    if !exists {
        // Identifiers cannot be bound as parameters; quote it as PostgreSQL does.
        let quoted = format!("\"{}\"", name.replace('"', "\"\""));
        let created = sqlx::query(&format!("CREATE DATABASE {quoted}"))
            .execute(&pool)
            .await;
        match created {
            Ok(_) => {}
            // Another instance created it in the meantime.
            Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("42P04") => {}
            Err(e) => return Err(e).context("creating the database"),
        }
    }
    pool.close().await;
    Ok(())
}
