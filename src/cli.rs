//! The command line: `serve` (the default), `migrate`, `create-admin EMAIL`, `stripe-emulator`,
//! `stripe-sync`, `api-key create ORG_SLUG [--scope S]...` and `reconcile`.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::accounts::model::Email;
use crate::accounts::{password, repo as users};
use crate::config::{load_catalog, Settings};
use crate::seed;
use crate::startup::{Application, Database};
use crate::stripe_gateway::Gateway;

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
    /// Serve the offline Stripe emulator on its own port, for any Stripe client (the same as the
    /// `stripe-emulator` binary, over the portal's database settings).
    StripeEmulator(stripe_emulator::serve::Args),
    /// Create the catalog's products and prices in Stripe where missing (found by lookup_key).
    StripeSync,
    /// Manage an organization's API keys.
    #[command(subcommand)]
    ApiKey(ApiKeyCommand),
    /// Check every credit balance against its ledger and every usage counter against its
    /// actions; with --repair, fix any drift. Exits non-zero when drift is left unrepaired.
    Reconcile {
        #[arg(long)]
        repair: bool,
    },
}

#[derive(Debug, Subcommand)]
enum ApiKeyCommand {
    /// Create a key for the organization with this slug and print its secret (shown once).
    Create {
        org_slug: String,
        #[arg(long, default_value = "Created from the command line")]
        name: String,
        /// A scope the key holds (usage:write, entitlements:read, billing:read, billing:write);
        /// repeat it for several. Without it the key holds all of them.
        #[arg(long = "scope", value_name = "SCOPE")]
        scopes: Vec<String>,
    },
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
    crate::observability::logging::init(cli.settings.log_format);
    let outcome = match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(cli.settings).await,
        Command::Migrate => migrate(cli.settings).await,
        Command::CreateAdmin { email } => create_admin(cli.settings, &email).await,
        Command::StripeEmulator(args) => stripe_emulator(cli.settings, args).await,
        Command::StripeSync => stripe_sync(cli.settings).await,
        Command::ApiKey(ApiKeyCommand::Create {
            org_slug,
            name,
            scopes,
        }) => create_api_key(cli.settings, &org_slug, &name, &scopes).await,
        Command::Reconcile { repair } => reconcile(cli.settings, repair).await,
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
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
    match app.local_stripe() {
        Some(local) => println!(
            "Stripe: the offline emulator at {}/v1, its pages beside it (set STRIPE_SECRET_KEY to use Stripe)",
            local.base_url()
        ),
        None => println!("Stripe: using STRIPE_SECRET_KEY"),
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

async fn create_api_key(
    settings: Settings,
    slug: &str,
    name: &str,
    scope_names: &[String],
) -> anyhow::Result<()> {
    use crate::api::scopes::{Scope, Scopes};
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        anyhow::bail!("--name must be 1 to 100 characters");
    }
    let picked = scope_names
        .iter()
        .map(|n| {
            Scope::parse(n.trim()).ok_or_else(|| {
                let known: Vec<_> = Scope::ALL.iter().map(|s| s.name()).collect();
                anyhow::anyhow!("unknown scope {n:?}; known scopes: {}", known.join(", "))
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let scopes = Scopes::chosen(picked);
    let database = Database::open(&settings).await?;
    let outcome = async {
        let org: Option<(uuid::Uuid,)> =
            sqlx::query_as("SELECT id FROM organizations WHERE slug = $1")
                .bind(slug)
                .fetch_optional(&database.pool)
                .await?;
        let (org_id,) =
            org.ok_or_else(|| anyhow::anyhow!("no organization has the slug {slug:?}"))?;
        let secret =
            crate::api::keys::create_with_scopes(&database.pool, org_id, name, None, scopes)
                .await?;
        println!("{secret}");
        eprintln!(
            "API key \"{name}\" for {slug} with {}. It is shown only now; store it safely.",
            scopes.names().join(", ")
        );
        anyhow::Ok(())
    }
    .await;
    database.close().await?;
    outcome
}

async fn reconcile(settings: Settings, repair: bool) -> anyhow::Result<()> {
    let database = Database::open(&settings).await?;
    let report = crate::usage::reconcile::run(&database.pool, repair).await;
    database.close().await?;
    let report = report?;
    println!("Checked {} organizations.", report.organizations);
    for d in &report.balances {
        println!(
            "balance drift  {}: cached {} expected {} (milli-credits)",
            d.slug, d.cached, d.expected
        );
    }
    for d in &report.counters {
        println!(
            "counter drift  {} {} {}: cached {:?} expected {:?} (included, credits, overage)",
            d.org_id, d.period_start, d.tier, d.cached, d.expected
        );
    }
    for d in &report.daily {
        println!(
            "daily drift    {} {} (occurred {}) {}: cached {:?} expected {:?} (included, credits, overage, milli-credits, debits)",
            d.org_id, d.recorded_day, d.occurred_day, d.tier, d.cached, d.expected
        );
    }
    if report.clean() {
        println!("No drift: every balance equals its ledger.");
        Ok(())
    } else if report.repaired {
        println!("Repaired.");
        Ok(())
    } else {
        anyhow::bail!("drift found; run again with --repair to fix it")
    }
}

async fn stripe_emulator(
    settings: Settings,
    args: stripe_emulator::serve::Args,
) -> anyhow::Result<()> {
    let database = Database::open(&settings).await?;
    let host = settings
        .host
        .unwrap_or(std::net::IpAddr::from([127, 0, 0, 1]));
    let served = stripe_emulator::serve::run_until_stopped(database.pool.clone(), host, args).await;
    database.close().await?;
    served
}

async fn stripe_sync(settings: Settings) -> anyhow::Result<()> {
    let catalog = load_catalog(&settings.plans_file)?;
    let gateway = match (&settings.stripe_secret_key, &settings.stripe_api_base) {
        (Some(key), base) => Gateway::new(key.expose(), base.as_deref())?,
        (None, _) => anyhow::bail!(
            "set STRIPE_SECRET_KEY (with STRIPE_API_BASE for a standalone emulator); the demo \
             server syncs its own emulator by itself"
        ),
    };
    let report = gateway.sync_catalog(&catalog).await?;
    for key in &report.created {
        println!("created  {key}");
    }
    for key in &report.existing {
        println!("exists   {key}");
    }
    for key in &report.mismatched {
        println!("DIFFERS  {key}  (the Stripe price does not match the catalog)");
    }
    if report.mismatched.is_empty() {
        Ok(())
    } else {
        anyhow::bail!(
            "{} price(s) differ from the catalog",
            report.mismatched.len()
        )
    }
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
