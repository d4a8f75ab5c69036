//! `stripe-emulator`: the offline Stripe on its own port, for any program that speaks to Stripe.
//! State goes to `DATABASE_URL`, or, without one, to a private PostgreSQL started from the
//! binaries on the machine under `--data-dir`.

use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::str::FromStr;

use anyhow::Context;
use clap::Parser;
use private_postgres::{ClusterOptions, PrivateCluster};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

#[derive(Debug, Parser)]
#[command(
    name = "stripe-emulator",
    version,
    about = "An offline, stateful Stripe"
)]
struct Cli {
    #[command(flatten)]
    emulator: stripe_emulator::serve::Args,
    /// Interface to listen on.
    #[arg(long, env = "STRIPE_EMULATOR_HOST", default_value = "127.0.0.1")]
    host: IpAddr,
    /// PostgreSQL to keep the state in. Unset: a private cluster under --data-dir.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    database_url: Option<String>,
    /// Folder for the private PostgreSQL cluster when DATABASE_URL is unset.
    #[arg(
        long,
        env = "STRIPE_EMULATOR_DATA_DIR",
        default_value = ".data/stripe-emulator"
    )]
    data_dir: PathBuf,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn"));
    tracing_subscriber::fmt().with_env_filter(filter).init();
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    const DATABASE: &str = "stripe_emulator";
    let (options, cluster) = match &cli.database_url {
        Some(url) => (
            PgConnectOptions::from_str(url)
                .context("DATABASE_URL is not a valid PostgreSQL URL")?,
            None,
        ),
        None => {
            let dir = cli.data_dir.join("postgres");
            let cluster = tokio::task::spawn_blocking(move || {
                PrivateCluster::start(&dir, &ClusterOptions { durable: true })
            })
            .await??;
            private_postgres::ensure_database(&cluster.connect_options("postgres"), DATABASE)
                .await?;
            (cluster.connect_options(DATABASE), Some(cluster))
        }
    };
    let pool = PgPoolOptions::new()
        .max_connections(16)
        .connect_with(options)
        .await
        .context("connecting to PostgreSQL")?;
    let served =
        stripe_emulator::serve::run_until_stopped(pool.clone(), cli.host, cli.emulator).await;
    pool.close().await;
    if let Some(cluster) = cluster {
        tokio::task::spawn_blocking(move || cluster.stop()).await??;
    }
    served
}
