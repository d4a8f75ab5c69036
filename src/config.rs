//! Typed settings, read from the command line, the environment and an optional `.env` file.
//! Defaults for the address come from the Leptos site configuration in `Leptos.toml`
//! (`[package.metadata.leptos]`; cargo-leptos reads the same table from `Cargo.toml`). Secrets never reach `Debug`.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use leptos::config::LeptosOptions;

/// The site configuration, read at start-up with `LEPTOS_*` environment overrides: from the file
/// `LEPTOS_CONFIG` names, else `Leptos.toml` in the working folder, else the copy compiled into
/// the binary (so it starts from any folder).
pub fn leptos_options() -> anyhow::Result<LeptosOptions> {
    let named = std::env::var_os("LEPTOS_CONFIG").map(PathBuf::from);
    let file = named
        .clone()
        .unwrap_or_else(|| PathBuf::from("Leptos.toml"));
    let text = match std::fs::read_to_string(&file) {
        Ok(text) => text,
        Err(e) if named.is_some() => {
            anyhow::bail!("reading LEPTOS_CONFIG {}: {e}", file.display())
        }
        Err(_) => LEPTOS_TOML.to_owned(),
    };
    leptos::config::get_config_from_str(&text).map_err(|e| {
        anyhow::anyhow!(
            "reading [package.metadata.leptos] in {}: {e}",
            file.display()
        )
    })
}

/// `Leptos.toml` as it was when the binary was built.
pub const LEPTOS_TOML: &str = include_str!("../Leptos.toml");

/// A value that must not be printed: logs and `Debug` show `[redacted]`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl std::str::FromStr for Secret {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Self(s.to_owned()))
    }
}

/// Everything the server needs to start. Built by clap from flags and environment variables,
/// or directly (tests do).
#[derive(Debug, Clone, clap::Args)]
pub struct Settings {
    /// PostgreSQL to use. Unset: start a private PostgreSQL from the local binaries, with its data
    /// under DATA_DIR.
    #[arg(long, global = true, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<Secret>,

    /// Connections the portal keeps to PostgreSQL (webhooks and usage commit concurrently, and
    /// PostgreSQL groups concurrent commits).
    #[arg(
        long,
        global = true,
        env = "DATABASE_MAX_CONNECTIONS",
        default_value_t = 32
    )]
    pub database_max_connections: u32,

    /// Interface to listen on [default: the host of site-addr in Cargo.toml, 127.0.0.1]
    #[arg(long, global = true, env = "HOST")]
    pub host: Option<IpAddr>,

    /// Port to listen on; 0 picks a free one [default: the port of site-addr, 3000]
    #[arg(long, global = true, env = "PORT")]
    pub port: Option<u16>,

    /// The address people use to reach the portal, used in links and to decide whether cookies
    /// are marked Secure [default: http://HOST:PORT]
    #[arg(long, global = true, env = "APP_URL")]
    pub app_url: Option<String>,

    /// Folder for local state: the private PostgreSQL cluster and the demo logins.
    #[arg(long, global = true, env = "DATA_DIR", default_value = ".data")]
    pub data_dir: PathBuf,

    /// Key for the anti-forgery cookie, at least 64 characters; every instance behind one address
    /// must share it. Unset: a random key per process (forms open across a restart must be
    /// reloaded).
    #[arg(long, global = true, env = "SECRET_KEY", hide_env_values = true)]
    pub secret_key: Option<Secret>,

    /// Seed the demo organization and logins when the database has no users.
    /// [default: true with the private PostgreSQL, false with DATABASE_URL]
    #[arg(long, global = true, env = "SEED_DEMO")]
    pub seed_demo: Option<bool>,

    /// Login attempts allowed per minute for one account from one client IP address (an
    /// attacker's address never uses up the owner's). Failures in a row also back off.
    #[arg(
        long,
        global = true,
        env = "LOGIN_ATTEMPTS_PER_ACCOUNT",
        default_value_t = 5
    )]
    pub login_attempts_per_account: u32,

    /// Login attempts allowed per client IP address per minute.
    #[arg(
        long,
        global = true,
        env = "LOGIN_ATTEMPTS_PER_IP",
        default_value_t = 20
    )]
    pub login_attempts_per_ip: u32,

    /// Wrong API keys allowed per client IP address per minute; beyond that the address gets 429
    /// (without a database query) until a miss is forgiven.
    #[arg(
        long,
        global = true,
        env = "API_KEY_MISSES_PER_IP",
        default_value_t = 30
    )]
    pub api_key_misses_per_ip: u32,

    /// API requests per key to `POST /api/v1/usage`, `/usage/batch` and `PUT /api/v1/gauges/*`:
    /// `N/Ws` (N per W seconds; `m` and `h` also work) or `off`. Shared by all instances.
    #[arg(
        long,
        global = true,
        env = "API_RATE_LIMIT_USAGE",
        default_value = "25000/1s"
    )]
    pub api_rate_limit_usage: crate::api::rate_limit::Limit,

    /// API read requests (`GET`) per key (or per address without a key): `N/Ws` or `off`.
    #[arg(
        long,
        global = true,
        env = "API_RATE_LIMIT_READ",
        default_value = "2000/1s"
    )]
    pub api_rate_limit_read: crate::api::rate_limit::Limit,

    /// Other API writes per key (Checkout, plan changes, the card portal): `N/Ws` or `off`.
    #[arg(
        long,
        global = true,
        env = "API_RATE_LIMIT_BILLING",
        default_value = "100/60s"
    )]
    pub api_rate_limit_billing: crate::api::rate_limit::Limit,

    /// Seconds between an instance's heartbeats in `portal_instances`; each instance enforces
    /// its share of the API's rate limits (limit / live instances).
    #[arg(
        long,
        global = true,
        env = "INSTANCE_HEARTBEAT_SECONDS",
        default_value_t = 5
    )]
    pub instance_heartbeat_seconds: u64,

    /// Milliseconds an entitlements answer may be reused. Purchases, plan and gauge changes on
    /// any instance drop it at once; this bounds only how long usage recorded by another
    /// instance takes to show.
    #[arg(
        long,
        global = true,
        env = "ENTITLEMENTS_CACHE_MILLISECONDS",
        default_value_t = 1000,
        value_parser = clap::value_parser!(u64).range(0..=60_000)
    )]
    pub entitlements_cache_milliseconds: u64,

    /// The bearer token a Prometheus scraper sends to `GET /metrics`; unset, `/metrics` is off.
    #[arg(long, global = true, env = "METRICS_TOKEN", hide_env_values = true)]
    pub metrics_token: Option<Secret>,

    /// Log lines as `text` (for people) or `json` (one object per line, for log collectors).
    #[arg(long, global = true, env = "LOG_FORMAT", value_enum, default_value_t = crate::observability::logging::LogFormat::Text)]
    pub log_format: crate::observability::logging::LogFormat,

    /// Sign-ups allowed per client IP address per hour.
    #[arg(
        long,
        global = true,
        env = "SIGNUPS_PER_IP_PER_HOUR",
        default_value_t = 20
    )]
    pub signups_per_ip_per_hour: u32,

    /// New organizations (after the one made at sign-up) allowed per account per day.
    #[arg(
        long,
        global = true,
        env = "ORGS_PER_ACCOUNT_PER_DAY",
        default_value_t = 10
    )]
    pub orgs_per_account_per_day: u32,

    /// New organizations allowed per client IP address per hour.
    #[arg(
        long,
        global = true,
        env = "ORGS_PER_IP_PER_HOUR",
        default_value_t = 20
    )]
    pub orgs_per_ip_per_hour: u32,

    /// Invitations one person may send per organization per hour.
    #[arg(
        long,
        global = true,
        env = "INVITATIONS_PER_HOUR",
        default_value_t = 20
    )]
    pub invitations_per_hour: u32,

    /// Days an invitation stays valid.
    #[arg(long, global = true, env = "INVITATION_DAYS", default_value_t = 7)]
    pub invitation_days: u32,

    /// Days a session lasts without activity.
    #[arg(long, global = true, env = "SESSION_DAYS", default_value_t = 14)]
    pub session_days: u32,

    /// The plan catalog (TOML). Relative paths are looked up in the working directory, then in
    /// the source tree the binary was built from.
    #[arg(
        long,
        global = true,
        env = "PLANS_FILE",
        default_value = "plans/hybrid.toml"
    )]
    pub plans_file: PathBuf,

    /// Stripe secret key (sk_test_... or sk_live_...). Unset: the portal starts the offline
    /// Stripe emulator on its own port (STRIPE_EMULATOR_PORT) and talks to it.
    #[arg(long, global = true, env = "STRIPE_SECRET_KEY", hide_env_values = true)]
    pub stripe_secret_key: Option<Secret>,

    /// Send Stripe API calls to this Stripe-compatible server instead of Stripe (for example a
    /// standalone emulator: http://127.0.0.1:12111).
    #[arg(long, global = true, env = "STRIPE_API_BASE")]
    pub stripe_api_base: Option<String>,

    /// Webhook signing secret(s), comma-separated to accept several during rotation.
    #[arg(
        long,
        global = true,
        env = "STRIPE_WEBHOOK_SECRET",
        hide_env_values = true,
        value_delimiter = ','
    )]
    pub stripe_webhook_secret: Vec<Secret>,

    /// Port of the offline Stripe emulator the portal starts when STRIPE_SECRET_KEY is unset
    /// (its API and hosted pages live on their own origin, as Stripe's do). `0` picks a free one.
    #[arg(
        long,
        global = true,
        env = "STRIPE_EMULATOR_PORT",
        default_value_t = 12111
    )]
    pub stripe_emulator_port: u16,

    /// Hours before the same usage warning (80%, 100%, overage) is sent to an organization again.
    #[arg(
        long,
        global = true,
        env = "WARNING_COOLDOWN_HOURS",
        default_value_t = 24
    )]
    pub warning_cooldown_hours: u32,

    /// Seconds after a failed auto top-up before the next charge is tried.
    #[arg(
        long,
        global = true,
        env = "TOP_UP_RETRY_SECONDS",
        default_value_t = 3600
    )]
    pub top_up_retry_seconds: u64,

    /// Usage writer tasks per instance; organizations are sharded over them, and each commits
    /// its queued actions together.
    #[arg(long, global = true, env = "USAGE_WRITERS", default_value_t = 2)]
    pub usage_writers: usize,

    /// Webhook inbox writer tasks per instance; each stores the deliveries queued while it (or
    /// the others) committed, with one commit. One measured best on a 2-core machine.
    #[arg(long, global = true, env = "WEBHOOK_WRITERS", default_value_t = 1)]
    pub webhook_writers: usize,

    /// Minutes between reconciliations of every balance with its ledger.
    #[arg(
        long,
        global = true,
        env = "RECONCILE_EVERY_MINUTES",
        default_value_t = 10
    )]
    pub reconcile_every_minutes: u64,

    /// Minutes between catch-ups with Stripe's Events API (one also runs at start-up), 1 to 1440.
    #[arg(
        long,
        global = true,
        env = "CATCH_UP_EVERY_MINUTES",
        default_value_t = 5,
        value_parser = clap::value_parser!(u64).range(1..=1440)
    )]
    pub catch_up_every_minutes: u64,

    /// Minutes between drift checks of every organization against Stripe, 1 to 10080.
    #[arg(
        long,
        global = true,
        env = "DRIFT_CHECK_EVERY_MINUTES",
        default_value_t = 60,
        value_parser = clap::value_parser!(u64).range(1..=10080)
    )]
    pub drift_check_every_minutes: u64,
    /// Where e-mail goes: `smtp://host:25`, `smtp://host:587?tls=required`,
    /// `smtps://user:pass@host:465`. Unset: the mail catcher at /admin/mail (the demo).
    #[arg(long, global = true, env = "SMTP_URL", hide_env_values = true)]
    pub smtp_url: Option<Secret>,

    /// The sender of every notification, `Name <address>` or an address.
    #[arg(
        long,
        global = true,
        env = "MAIL_FROM",
        default_value = "Billing portal <billing@localhost>"
    )]
    pub mail_from: String,

    /// A folder of mail templates that replace the shipped ones of the same name
    /// (templates/mail/); each is checked at start-up.
    #[arg(long, global = true, env = "TEMPLATES_DIR")]
    pub templates_dir: Option<PathBuf>,

    /// Seconds before the first retry of a message the SMTP server did not take; each later retry
    /// waits twice as long.
    #[arg(long, global = true, env = "MAIL_RETRY_SECONDS", default_value_t = 30)]
    pub mail_retry_seconds: u64,

    /// Attempts before a message that keeps failing temporarily ends as failed.
    #[arg(long, global = true, env = "MAIL_MAX_ATTEMPTS", default_value_t = 8)]
    pub mail_max_attempts: u32,

    /// Seconds a request waits for a database connection (also while the database is down)
    /// before it is answered 503.
    #[arg(long, global = true, env = "DATABASE_TIMEOUT_SECONDS", default_value_t = 5,
          value_parser = clap::value_parser!(u64).range(1..=600))]
    pub database_timeout_seconds: u64,

    /// Seconds one SQL statement may run (PostgreSQL's statement_timeout) before it is cancelled
    /// and its request answered 503. Migrations run without it.
    #[arg(long, global = true, env = "DATABASE_STATEMENT_TIMEOUT_SECONDS", default_value_t = 30,
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub database_statement_timeout_seconds: u64,

    /// Seconds one call to Stripe may take (connecting, sending, answering) before it counts as
    /// Stripe being out of reach.
    #[arg(long, global = true, env = "STRIPE_TIMEOUT_SECONDS", default_value_t = 10,
          value_parser = clap::value_parser!(u64).range(1..=300))]
    pub stripe_timeout_seconds: u64,

    /// Seconds a shutdown (SIGTERM, Ctrl-C) waits for requests in flight and workers to finish
    /// before the process exits anyway.
    #[arg(long, global = true, env = "SHUTDOWN_TIMEOUT_SECONDS", default_value_t = 30,
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub shutdown_timeout_seconds: u64,
    /// Months of raw usage actions kept (whole months past the current one, 1 to 1200); older
    /// months are dropped with their idempotency keys, per-day totals are kept forever.
    #[arg(
        long,
        global = true,
        env = "USAGE_RETENTION_MONTHS",
        default_value_t = 13,
        value_parser = clap::value_parser!(u32).range(1..=1200)
    )]
    pub usage_retention_months: u32,
}

impl Settings {
    /// Settings for a server on 127.0.0.1 with everything else at its default; tests start here.
    pub fn local(database_url: Option<String>, data_dir: PathBuf) -> Self {
        Self {
            database_url: database_url.map(Secret),
            database_max_connections: 32,
            host: Some(IpAddr::from([127, 0, 0, 1])),
            port: Some(0),
            app_url: None,
            data_dir,
            secret_key: None,
            seed_demo: Some(false),
            login_attempts_per_account: 5,
            login_attempts_per_ip: 20,
            api_key_misses_per_ip: 30,
            api_rate_limit_usage: crate::api::rate_limit::Limits::default().usage,
            api_rate_limit_read: crate::api::rate_limit::Limits::default().read,
            api_rate_limit_billing: crate::api::rate_limit::Limits::default().billing,
            instance_heartbeat_seconds: 5,
            entitlements_cache_milliseconds: 1000,
            metrics_token: None,
            log_format: crate::observability::logging::LogFormat::Text,
            signups_per_ip_per_hour: 20,
            orgs_per_account_per_day: 10,
            orgs_per_ip_per_hour: 20,
            invitations_per_hour: 20,
            invitation_days: 7,
            session_days: 14,
            stripe_secret_key: None,
            plans_file: PathBuf::from("plans/hybrid.toml"),
            stripe_api_base: None,
            stripe_webhook_secret: Vec::new(),
            stripe_emulator_port: 0,
            warning_cooldown_hours: 24,
            top_up_retry_seconds: 3600,
            reconcile_every_minutes: 10,
            catch_up_every_minutes: 5,
            drift_check_every_minutes: 60,
            usage_retention_months: 13,
            usage_writers: 2,
            webhook_writers: 1,
            smtp_url: None,
            mail_from: "Billing portal <billing@localhost>".to_owned(),
            templates_dir: None,
            mail_retry_seconds: 30,
            mail_max_attempts: 8,
            database_timeout_seconds: 5,
            database_statement_timeout_seconds: 30,
            stripe_timeout_seconds: 10,
            shutdown_timeout_seconds: 30,
        }
    }

    /// How long the portal waits on its database (DATABASE_TIMEOUT_SECONDS and
    /// DATABASE_STATEMENT_TIMEOUT_SECONDS).
    pub fn database_timeouts(&self) -> crate::db::Timeouts {
        crate::db::Timeouts {
            acquire: std::time::Duration::from_secs(self.database_timeout_seconds.max(1)),
            statement: std::time::Duration::from_secs(
                self.database_statement_timeout_seconds.max(1),
            ),
        }
    }

    /// The address to bind: HOST/PORT over the Leptos site-addr.
    pub fn bind_addr(&self, leptos: &LeptosOptions) -> SocketAddr {
        let site = leptos.site_addr;
        SocketAddr::new(
            self.host.unwrap_or(site.ip()),
            self.port.unwrap_or(site.port()),
        )
    }

    /// The public base URL, without a trailing slash.
    pub fn public_url(&self, bound: SocketAddr) -> String {
        match &self.app_url {
            Some(url) => url.trim_end_matches('/').to_owned(),
            None => format!("http://{bound}"),
        }
    }

    pub fn seeds_demo(&self) -> bool {
        self.seed_demo.unwrap_or(self.database_url.is_none())
    }
}

/// Reads and validates the plan catalog named by `PLANS_FILE`.
pub fn load_catalog(path: &std::path::Path) -> anyhow::Result<crate::billing::catalog::Catalog> {
    let resolved = if path.is_absolute() || path.exists() {
        path.to_path_buf()
    } else {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(path)
    };
    let text = std::fs::read_to_string(&resolved)
        .map_err(|e| anyhow::anyhow!("reading the plan catalog {}: {e}", resolved.display()))?;
    Ok(crate::billing::catalog::parse(
        &path.display().to_string(),
        &text,
    )?)
}

/// Cookies are `Secure` unless the portal is served over plain HTTP on a loopback address, where
/// browsers would otherwise drop them during local development.
pub fn cookies_must_be_secure(public_url: &str) -> bool {
    let Some(rest) = public_url.strip_prefix("http://") else {
        return true;
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => authority.rsplit_once(':').map_or(authority, |(h, _)| h),
    };
    let loopback = host == "localhost"
        || host
            .parse::<IpAddr>()
            .is_ok_and(|ip: IpAddr| ip.is_loopback());
    !loopback
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sync_job_intervals_refuse_zero_and_take_minutes() {
        use clap::Parser;
        #[derive(Parser)]
        struct Cli {
            #[command(flatten)]
            settings: Settings,
        }
        let parsed = Cli::try_parse_from(["billing-portal", "--catch-up-every-minutes", "0"]);
        assert!(parsed.is_err(), "0 minutes is refused");
        let parsed = Cli::try_parse_from(["billing-portal", "--drift-check-every-minutes", "soon"]);
        assert!(parsed.is_err());
        let parsed = Cli::try_parse_from(["billing-portal", "--catch-up-every-minutes", "2"])
            .expect("parses");
        assert_eq!(parsed.settings.catch_up_every_minutes, 2);
        assert_eq!(parsed.settings.drift_check_every_minutes, 60);
    }

    #[test]
    fn timeouts_are_read_and_a_bad_one_is_refused_with_its_name() {
        use clap::Parser;
        #[derive(Parser)]
        struct Cli {
            #[command(flatten)]
            settings: Settings,
        }
        let parsed = Cli::try_parse_from([
            "billing-portal",
            "--stripe-timeout-seconds",
            "3",
            "--database-timeout-seconds",
            "2",
        ])
        .expect("valid timeouts");
        assert_eq!(parsed.settings.stripe_timeout_seconds, 3);
        assert_eq!(parsed.settings.shutdown_timeout_seconds, 30);
        let timeouts = parsed.settings.database_timeouts();
        assert_eq!(timeouts.acquire, std::time::Duration::from_secs(2));
        assert_eq!(timeouts.statement, std::time::Duration::from_secs(30));
        for (flag, value) in [
            ("--stripe-timeout-seconds", "0"),
            ("--database-timeout-seconds", "soon"),
            ("--shutdown-timeout-seconds", "1.5"),
            ("--database-statement-timeout-seconds", "0"),
        ] {
            let refused = Cli::try_parse_from(["billing-portal", flag, value])
                .err()
                .unwrap_or_else(|| panic!("{flag} {value} is refused"));
            assert!(refused.to_string().contains(flag), "{refused}");
        }
    }

    #[test]
    fn secure_cookies_everywhere_but_local_http() {
        assert!(!cookies_must_be_secure("http://127.0.0.1:3000"));
        assert!(!cookies_must_be_secure("http://localhost:3000/"));
        assert!(!cookies_must_be_secure("http://[::1]:3000"));
        assert!(cookies_must_be_secure("https://127.0.0.1:3000"));
        assert!(cookies_must_be_secure("https://billing.example.com"));
        assert!(cookies_must_be_secure("http://billing.example.com"));
        assert!(cookies_must_be_secure("http://10.0.0.5:3000"));
    }

    #[test]
    fn site_addr_comes_from_the_leptos_metadata() {
        let leptos = leptos_options().expect("Leptos.toml parses");
        assert_eq!(leptos.output_name.as_ref(), "billing-portal");
        let settings = Settings {
            host: None,
            port: None,
            ..Settings::local(None, ".data".into())
        };
        assert_eq!(
            settings.bind_addr(&leptos),
            "127.0.0.1:3000".parse::<SocketAddr>().expect("addr")
        );
    }

    #[test]
    fn leptos_toml_and_cargo_toml_hold_the_same_site_configuration() {
        fn leptos_table(text: &str, file: &str) -> toml::Value {
            let parsed: toml::Value =
                toml::from_str(text).unwrap_or_else(|e| panic!("{file} is not valid TOML: {e}"));
            parsed
                .get("package")
                .and_then(|p| p.get("metadata"))
                .and_then(|m| m.get("leptos"))
                .cloned()
                .unwrap_or_else(|| panic!("{file} has no [package.metadata.leptos]"))
        }
        let server = leptos_table(LEPTOS_TOML, "Leptos.toml");
        let cargo_leptos = leptos_table(include_str!("../Cargo.toml"), "Cargo.toml");
        assert_eq!(
            server, cargo_leptos,
            "Leptos.toml (read by the server) and Cargo.toml (read by cargo-leptos) disagree"
        );
    }

    #[test]
    fn the_rate_limit_defaults_of_the_command_line_are_the_documented_ones() {
        use clap::Parser;
        #[derive(Parser)]
        struct Line {
            #[command(flatten)]
            settings: Settings,
        }
        let parsed = Line::try_parse_from(["billing-portal"]).expect("defaults parse");
        let defaults = crate::api::rate_limit::Limits::default();
        assert_eq!(parsed.settings.api_rate_limit_usage, defaults.usage);
        assert_eq!(parsed.settings.api_rate_limit_read, defaults.read);
        assert_eq!(parsed.settings.api_rate_limit_billing, defaults.billing);
    }

    #[test]
    fn usage_retention_defaults_to_13_months_and_a_bad_value_names_the_setting() {
        use clap::Parser;
        #[derive(Parser)]
        struct Line {
            #[command(flatten)]
            settings: Settings,
        }
        let parsed = Line::try_parse_from(["billing-portal"]).expect("defaults parse");
        assert_eq!(parsed.settings.usage_retention_months, 13);
        let six = Line::try_parse_from(["billing-portal", "--usage-retention-months", "6"])
            .expect("6 parses");
        assert_eq!(six.settings.usage_retention_months, 6);
        for bad in ["0", "-1", "twelve", "1201"] {
            let flag = format!("--usage-retention-months={bad}");
            let error = Line::try_parse_from(["billing-portal", flag.as_str()])
                .err()
                .map(|e| e.to_string())
                .unwrap_or_else(|| panic!("{bad} is refused"));
            assert!(
                error.contains("USAGE_RETENTION_MONTHS") && error.contains(bad),
                "{bad}: {error}"
            );
        }
    }

    #[test]
    fn debug_output_hides_secrets() {
        let mut settings = Settings::local(
            Some("postgres://app:hunter2@db/billing".into()),
            ".data".into(),
        );
        settings.secret_key = Some(Secret::new("k".repeat(64)));
        let printed = format!("{settings:?}");
        assert!(!printed.contains("hunter2"));
        assert!(!printed.contains(&"k".repeat(64)));
    }
}
