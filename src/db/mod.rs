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

/// Whether `e` means the database is out of reach (down, restarting, refusing connections, or
/// too slow: no connection within the acquire timeout, a statement over its timeout), as opposed
/// to refusing what a statement asked. Pages, the API and webhooks answer these with 503.
pub fn unreachable(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_) => true,
        sqlx::Error::Database(d) => d.code().is_some_and(|code| {
            // Class 08: connection exceptions; 57P01-03: the server is shutting down or
            // starting; 57014: cancelled (statement_timeout); 53300: too many connections.
            code.starts_with("08")
                || matches!(&*code, "57P01" | "57P02" | "57P03" | "57014" | "53300")
        }),
        _ => false,
    }
}

/// The same test on an error that only kept sqlx's message (tower-sessions' store turns
/// database errors into text): the messages sqlx gives the kinds [`unreachable`] accepts.
pub fn unreachable_message(message: &str) -> bool {
    [
        "pool timed out while waiting for an open connection",
        "attempted to acquire a connection on a closed pool",
        "error communicating with database",
        "terminating connection due to administrator command",
        "the database system is shutting down",
        "the database system is starting up",
        "canceling statement due to statement timeout",
    ]
    .iter()
    .any(|m| message.contains(m))
}

/// How long the portal waits on its database before it gives up and answers 503.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    /// Waiting for a connection from the pool (including connecting while the database is down).
    pub acquire: Duration,
    /// One statement (PostgreSQL's `statement_timeout`); migrations run without it.
    pub statement: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            acquire: Duration::from_secs(5),
            statement: Duration::from_secs(30),
        }
    }
}

/// A connection idle for longer than this is checked with a round trip before it is handed out.
const CHECK_AFTER_IDLE: Duration = Duration::from_secs(1);

/// Opens a pool. Statement logging is kept at debug level so query text stays out of normal logs.
///
/// sqlx checks every connection with a round trip before handing it out (`test_before_acquire`),
/// which on a busy page costs as much as its statement. A connection in steady use has just
/// proved itself, so only one that sat idle (across a database restart, say) is checked.
pub async fn connect(
    options: PgConnectOptions,
    max_connections: u32,
    timeouts: Timeouts,
) -> anyhow::Result<PgPool> {
    let statement_timeout = format!("{}ms", timeouts.statement.as_millis().max(1));
    let options = options
        .log_statements(tracing::log::LevelFilter::Debug)
        // Every connection starts with it, so a statement that hangs (a stalled disk, a lock
        // held by a stuck session) fails instead of holding its request forever.
        // JIT is off: the portal's statements touch a handful of rows, and on tables not yet
        // analyzed (a new install, a new partition) the planner's inflated estimates made
        // PostgreSQL compile a batch's outbox insert for 200 ms to run it in 1 ms
        // (scripts/bench-usage's warnings part found it).
        .options([
            ("statement_timeout", statement_timeout.as_str()),
            ("jit", "off"),
        ]);
    PgPoolOptions::new()
        .max_connections(max_connections.max(2))
        .acquire_timeout(timeouts.acquire)
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
    // A migration may rightly run longer than any request's statement (an index on a big
    // table), so it runs on a connection without the statement timeout.
    let mut connection = pool.acquire().await.context("connecting to migrate")?;
    sqlx::query("SET statement_timeout = 0")
        .execute(&mut *connection)
        .await?;
    let migrated = MIGRATOR
        .run(&mut *connection)
        .await
        .context("applying database migrations");
    // Back to the timeout the connection started with, before the pool hands it out again.
    sqlx::query("RESET statement_timeout")
        .execute(&mut *connection)
        .await?;
    migrated
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
