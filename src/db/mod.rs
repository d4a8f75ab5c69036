//! The database: connecting and migrating. (The private cluster the demo runs when no
//! `DATABASE_URL` is given is the `private-postgres` crate.)

pub mod lease;
pub mod shared_cache;

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

/// A connection idle for longer than this is checked with a round trip before it is handed out.
const CHECK_AFTER_IDLE: Duration = Duration::from_secs(1);

/// Opens a pool. Statement logging is kept at debug level so query text stays out of normal logs.
///
/// sqlx checks every connection with a round trip before handing it out (`test_before_acquire`),
/// which on a busy page costs as much as its statement. A connection in steady use has just
/// proved itself, so only one that sat idle (across a database restart, say) is checked.
pub async fn connect(options: PgConnectOptions, max_connections: u32) -> anyhow::Result<PgPool> {
    let options = options.log_statements(tracing::log::LevelFilter::Debug);
    PgPoolOptions::new()
        .max_connections(max_connections.max(2))
        .acquire_timeout(Duration::from_secs(5))
        .test_before_acquire(false)
        .before_acquire(|connection, meta| {
            Box::pin(async move {
                if meta.idle_for > CHECK_AFTER_IDLE {
                    use sqlx::Connection;
                    connection.ping().await?;
                }
                Ok(true)
            })
        })
        .connect_with(options)
        .await
        .context("connecting to PostgreSQL")
}

/// Applies pending migrations. sqlx holds a PostgreSQL advisory lock while it migrates, so
/// instances that start together take turns and the later ones find nothing to do.
pub async fn migrate(pool: &PgPool) -> anyhow::Result<()> {
    forget_moved_migrations(pool).await?;
    MIGRATOR
        .run(pool)
        .await
        .context("applying database migrations")
}

/// The Stripe emulator's tables were once created by the portal's own migration
/// `20261121000002_stripe_emulator`; the emulator now has migrations of its own, which adopt those
/// tables. The portal's record of that migration would make sqlx refuse to start ("applied but
/// missing"), so it is forgotten first; the tables themselves stay.
async fn forget_moved_migrations(pool: &PgPool) -> anyhow::Result<()> {
    let recorded: bool =
        sqlx::query_scalar("SELECT to_regclass('public._sqlx_migrations') IS NOT NULL")
            .fetch_one(pool)
            .await
            .context("looking for earlier migrations")?;
    if recorded {
        sqlx::query(
            "DELETE FROM public._sqlx_migrations
             WHERE version = 20261121000002 AND description = 'stripe emulator'",
        )
        .execute(pool)
        .await
        .context("forgetting the emulator's old migration")?;
    }
    Ok(())
}
