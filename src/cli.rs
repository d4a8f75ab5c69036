//! The command line: `serve` (the default), `migrate` and `create-admin EMAIL`.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::accounts::model::Email;
use crate::accounts::{password, repo as users};
use crate::config::Settings;
use crate::seed;
use crate::startup::{Application, Database};

#[derive(Debug, Parser)]
#[command(
    name = "billing-portal",
    version,
    about = "A self-hosted billing portal"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    settings: Settings,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the portal (the default).
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// Give an account the platform admin flag, creating the account (with a printed random
    /// password) if there is none with this email.
    CreateAdmin { email: String },
}

pub async fn run() -> ExitCode {
    // A missing .env is normal; a broken one is worth saying.
    if let Err(e) = dotenvy::dotenv() {
        if !e.not_found() {
            eprintln!("error: reading .env: {e}");
            return ExitCode::FAILURE;
        }
    }
    let cli = Cli::parse();
    init_tracing();
    let outcome = match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(cli.settings).await,
        Command::Migrate => migrate(cli.settings).await,
        Command::CreateAdmin { email } => create_admin(cli.settings, &email).await,
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_tracing() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,tower_sessions=warn"));
    tracing_subscriber::fmt().with_env_filter(filter).init();
}

async fn serve(settings: Settings) -> anyhow::Result<()> {
    let data_dir = settings.data_dir.clone();
    let seeds = settings.seeds_demo();
    let app = Application::build(settings).await?;
    println!("\nBilling portal listening on {}", app.public_url());
    if seeds {
        match std::fs::read_to_string(seed::logins_file(&data_dir)) {
            Ok(logins) => println!("Log in at {}/login with\n{logins}", app.public_url()),
            Err(_) => println!("The database already had users; no demo logins were created."),
        }
    }
    println!("Press Ctrl-C to stop.\n");
    app.run_until(shutdown_signal()).await
}

async fn migrate(settings: Settings) -> anyhow::Result<()> {
    let database = Database::open(&settings).await?;
    println!("Migrations are up to date.");
    database.close().await
}

async fn create_admin(settings: Settings, email: &str) -> anyhow::Result<()> {
    let email = Email::parse(email)?;
    let database = Database::open(&settings).await?;
    let outcome = async {
        if users::make_platform_admin(&database.pool, &email).await? {
            println!("{email} is now a platform admin.");
        } else {
            let password = seed::random_password()?;
            let hash = password::hash(&password).await?;
            users::insert_user(&database.pool, &email, &hash, true).await?;
            println!(
                "Created platform admin {email} with password: {}\nIt is shown only now.",
                password.expose()
            );
        }
        anyhow::Ok(())
    }
    .await;
    database.close().await?;
    outcome
}

/// Completes on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
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
    tracing::info!("shutting down: finishing requests in flight");
}
