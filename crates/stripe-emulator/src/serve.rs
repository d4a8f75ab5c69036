//! Running the emulator: its migrations (in its own schema, with their own record), the keys and
//! webhook endpoints it starts with, its background work, and serving on a listener of its own.
//! Both its binary and programs that embed it (a demo, a test harness) start it through here.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use axum::serve::ListenerExt;
use sqlx::PgPool;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::webhooks::{self, EndpointConfig};
use crate::{ApiKeys, Emulator, Timing, SCHEMA};

/// The emulator's migrations, compiled into the binary.
static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// How an emulator starts.
#[derive(Debug, Clone)]
pub struct Config {
    /// The secret keys it accepts (at least one).
    pub secret_keys: ApiKeys,
    /// Endpoints to deliver every event to, registered (or, for a known URL, given the new
    /// secret) at start.
    pub webhooks: Vec<EndpointConfig>,
    /// Deliver every event twice and out of order, as Stripe may.
    pub chaos: bool,
    pub timing: Timing,
}

/// A serving emulator. Dropping it stops serving and its background work.
pub struct Running {
    pub emulator: Emulator,
    addr: SocketAddr,
    tasks: Vec<JoinHandle<()>>,
}

impl Running {
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Where people and programs reach it, without a trailing slash.
    pub fn base_url(&self) -> &str {
        &self.emulator.base
    }

    /// The API base URL to give a Stripe client (async-stripe appends `v1/...`).
    pub fn api_base(&self) -> String {
        self.emulator.api_base()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// Creates or updates the emulator's tables. The record of what ran lives in the emulator's own
/// schema, so it never mixes with the migrations of a program sharing the database.
pub async fn migrate(pool: &PgPool) -> anyhow::Result<()> {
    let mut conn = pool.acquire().await.context("connecting to PostgreSQL")?;
    sqlx::query(&format!("CREATE SCHEMA IF NOT EXISTS {SCHEMA}"))
        .execute(&mut *conn)
        .await
        .context("creating the emulator's schema")?;
    // sqlx keeps its record in `_sqlx_migrations` on the search path: put ours in our schema.
    sqlx::query(&format!("SET search_path TO {SCHEMA}"))
        .execute(&mut *conn)
        .await?;
    let migrated = MIGRATOR
        .run(&mut *conn)
        .await
        .context("applying the Stripe emulator's migrations");
    // The connection goes back to the pool: give it the default search path again.
    sqlx::query("RESET search_path").execute(&mut *conn).await?;
    migrated
}

/// Migrates, applies `config`, and serves on `listener` until the returned [`Running`] is
/// dropped. `base` is the address people reach it at (links in hosted pages and objects); `None`
/// means `http://` + the listener's own address.
pub async fn start(
    pool: PgPool,
    listener: TcpListener,
    base: Option<&str>,
    config: Config,
) -> anyhow::Result<Running> {
    migrate(&pool).await?;
    let addr = listener.local_addr()?;
    let base = base
        .map(str::to_owned)
        .unwrap_or_else(|| format!("http://{addr}"));
    let emulator = Emulator::new(pool.clone(), &base, config.secret_keys);
    for endpoint in &config.webhooks {
        webhooks::register(&pool, endpoint)
            .await
            .map_err(|e| anyhow::anyhow!("registering {}: {}", endpoint.url, e.message))?;
    }
    emulator
        .set_chaos(config.chaos)
        .await
        .map_err(|e| anyhow::anyhow!("setting chaos mode: {}", e.message))?;
    let mut tasks = emulator.start_background(config.timing);
    let router = emulator.router();
    // Small answers go out at once rather than waiting to be coalesced (Nagle).
    let listener = listener.tap_io(|stream| {
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!(error = %e, "could not set TCP_NODELAY");
        }
    });
    tasks.push(tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, router).await {
            tracing::error!(error = %e, "the Stripe emulator stopped serving");
        }
    }));
    Ok(Running {
        emulator,
        addr,
        tasks,
    })
}

/// The emulator's command-line settings, shared by its own binary and by programs that offer it
/// as a subcommand.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Port for the API (http://HOST:PORT/v1/...) and the hosted pages.
    #[arg(long, env = "STRIPE_EMULATOR_PORT", default_value_t = 12111)]
    pub port: u16,
    /// A secret key the emulator accepts (sk_test_...); repeat the flag, or separate keys with
    /// commas in the environment variable. None: a random key is made and printed.
    #[arg(
        long = "secret-key",
        value_name = "KEY",
        env = "STRIPE_EMULATOR_SECRET_KEYS",
        value_delimiter = ',',
        hide_env_values = true
    )]
    pub secret_keys: Vec<String>,
    /// Deliver events to URL, signed with SECRET; repeat the flag (or separate with commas in
    /// the environment variable) for several endpoints.
    #[arg(
        long = "webhook",
        value_name = "URL=SECRET",
        env = "STRIPE_EMULATOR_WEBHOOKS",
        value_delimiter = ',',
        hide_env_values = true
    )]
    pub webhooks: Vec<EndpointConfig>,
    /// Deliver every event twice and out of order, as real Stripe may.
    #[arg(long, env = "STRIPE_EMULATOR_CHAOS")]
    pub chaos: bool,
}

impl Args {
    /// The keys given, or one generated key (returned so the caller can print it once).
    pub fn keys(&self) -> anyhow::Result<(ApiKeys, Option<String>)> {
        if self.secret_keys.iter().all(|k| k.trim().is_empty()) {
            let key = ApiKeys::generate();
            let keys = ApiKeys::new([key.clone()]).map_err(anyhow::Error::msg)?;
            return Ok((keys, Some(key)));
        }
        let keys = ApiKeys::new(self.secret_keys.clone()).map_err(anyhow::Error::msg)?;
        Ok((keys, None))
    }
}

/// Serves the emulator from the command line over `pool` until Ctrl-C or SIGTERM.
pub async fn run_until_stopped(
    pool: PgPool,
    host: std::net::IpAddr,
    args: Args,
) -> anyhow::Result<()> {
    let (keys, generated) = args.keys()?;
    let listener = TcpListener::bind((host, args.port))
        .await
        .with_context(|| format!("listening on {host}:{} (set --port)", args.port))?;
    let running = start(
        pool,
        listener,
        None,
        Config {
            secret_keys: keys,
            webhooks: args.webhooks.clone(),
            chaos: args.chaos,
            timing: Timing::default(),
        },
    )
    .await?;
    println!("\nStripe emulator listening on {}/v1", running.base_url());
    match generated {
        Some(key) => {
            println!("Secret key (made for this run; pass --secret-key to keep one): {key}")
        }
        None => println!("Accepting the secret key(s) it was given."),
    }
    for endpoint in &args.webhooks {
        println!("Delivering events to {}", endpoint.url);
    }
    println!("Press Ctrl-C to stop.\n");
    shutdown_signal().await;
    drop(running);
    // Let aborted tasks let go of their connections before the pool closes.
    tokio::time::sleep(Duration::from_millis(50)).await;
    Ok(())
}

/// Completes on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "listening for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "listening for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}
