//! Putting the server together: the database (given, or a private cluster), migrations, the demo
//! seed, sessions, anti-forgery, the router, and serving until told to stop.

use std::future::{Future, IntoFuture};
use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::http::{HeaderName, Request};
use axum::routing::{get, post};
use axum::serve::ListenerExt;
use axum::Router;
use private_postgres::{ClusterOptions, PrivateCluster};
use sqlx::postgres::PgConnectOptions;
use sqlx::PgPool;
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::services::ServeDir;
use tower_http::trace::TraceLayer;
use tower_sessions::cookie::SameSite;
use tower_sessions::session_store::ExpiredDeletion;
use tower_sessions::{Expiry, SessionManagerLayer};
use tower_sessions_sqlx_store::PostgresStore;

use crate::accounts::session_store::CachedSessionStore;
use crate::db::shared_cache::{self, Coherence, Route};
use crate::orgs::viewers::Viewers;

use crate::accounts::rate_limit::LoginLimiter;
use crate::api::key_misses::KeyMissLimiter;
use crate::billing::catalog::Catalog;
use crate::billing::inbox_writer::InboxWriter;
use crate::billing::service;
use crate::billing::webhooks::{self as billing_webhooks, Inbox};
use crate::config::{cookies_must_be_secure, leptos_options, load_catalog, Settings};
use crate::error::render_errors;
use crate::local_stripe::{self, LocalStripe};
use crate::seed;
use crate::stripe_gateway::Gateway;
use crate::usage::reconcile;
use crate::usage::top_up::{self, TopUpConfig};
use crate::usage::writer::{Signals, UsageWriter, WriterConfig};
use crate::web::csrf::CsrfKey;
use crate::web::origin::{refuse_cross_site, SameOrigin};
use crate::web::state::AppState;
use crate::web::throttle::Throttles;
use crate::web::{assets, headers, health};

/// The longest a page or form may take before it is answered 503: whatever hangs below (a
/// database or Stripe that stopped answering) never holds a browser and a connection forever.
const PAGE_TIMEOUT: Duration = Duration::from_secs(60);

/// Webhook appliers per instance.
const WEBHOOK_WORKERS: usize = 4;

/// The database the private cluster serves the portal from.
const PRIVATE_DATABASE: &str = "billing_portal";

/// A connected, migrated database, and the private cluster behind it if we started one.
pub struct Database {
    pub pool: PgPool,
    cluster: Option<PrivateCluster>,
}

impl Database {
    /// Connects to `DATABASE_URL`, or starts the private cluster under `DATA_DIR/postgres`, then
    /// applies migrations.
    pub async fn open(settings: &Settings) -> anyhow::Result<Self> {
        let (options, cluster) = match &settings.database_url {
            Some(url) => (
                PgConnectOptions::from_str(url.expose())
                    .context("DATABASE_URL is not a valid PostgreSQL URL")?,
                None,
            ),
            None => {
                let data_dir = settings.data_dir.join("postgres");
                let cluster = tokio::task::spawn_blocking(move || {
                    PrivateCluster::start(&data_dir, &ClusterOptions { durable: true })
                })
                .await??;
                private_postgres::ensure_database(
                    &cluster.connect_options("postgres"),
                    PRIVATE_DATABASE,
                )
                .await?;
                (cluster.connect_options(PRIVATE_DATABASE), Some(cluster))
            }
        };
        let pool = crate::db::connect(
            options,
            settings.database_max_connections,
            settings.database_timeouts(),
        )
        .await?;
        crate::db::migrate(&pool).await?;
        let normalized = crate::accounts::repo::normalize_stored_emails(&pool).await?;
        if normalized > 0 {
            tracing::info!(normalized, "stored e-mail addresses normalized");
        }
        Ok(Self { pool, cluster })
    }

    /// Closes the pool and stops the private cluster if we started it.
    pub async fn close(self) -> anyhow::Result<()> {
        // Closing waits for connections in use to come back; one held by a task that never
        // ends must not hold up the exit.
        if tokio::time::timeout(Duration::from_secs(5), self.pool.close())
            .await
            .is_err()
        {
            tracing::warn!("database connections still in use after 5 s; closing anyway");
        }
        if let Some(cluster) = self.cluster {
            tokio::task::spawn_blocking(move || cluster.stop()).await??;
        }
        Ok(())
    }
}

/// A server bound to its address, ready to run.
pub struct Application {
    listener: TcpListener,
    router: Router,
    database: Database,
    public_url: String,
    background: Vec<JoinHandle<()>>,
    local_stripe: Option<LocalStripe>,
    /// This instance's row in `portal_instances`.
    instance: uuid::Uuid,
    /// Workers that finish their batch when stopped (writers, appliers, top-up), waited for at
    /// shutdown rather than cut off.
    drained: Vec<JoinHandle<()>>,
    stop: crate::shutdown::StopSwitch,
    shutdown_timeout: Duration,
}

impl Application {
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let leptos = leptos_options()?;
        // A broken catalog stops start-up before anything else happens.
        let catalog = Arc::new(load_catalog(&settings.plans_file)?);
        let database = Database::open(&settings).await?;
        let seeded = settings.seeds_demo()
            && seed::seed_demo_if_empty(&database.pool, &settings.data_dir).await?;

        let listener = TcpListener::bind(settings.bind_addr(&leptos))
            .await
            .with_context(|| format!("listening on {}", settings.bind_addr(&leptos)))?;
        let public_url = settings.public_url(listener.local_addr()?);
        let own_url = format!("http://{}", listener.local_addr()?);
        let csrf = csrf_key(&settings)?;
        // Mail templates, MAIL_FROM and SMTP_URL: a broken template stops start-up here.
        let mail =
            crate::notify::sender_config(&settings, &database.pool, &public_url, csrf.clone())?;
        let secure = cookies_must_be_secure(&public_url);

        let store = PostgresStore::new(database.pool.clone());
        // Sessions and who-belongs-where are copied in memory; notices from the database keep
        // every instance's copies true.
        let coherence = Arc::new(Coherence::default());
        let cached_sessions = CachedSessionStore::new(store.clone(), coherence.clone());
        let viewers = Viewers::new(coherence.clone());
        let api_keys = crate::api::keys::KeyCache::new(coherence.clone());
        let api_entitlements = Arc::new(crate::api::entitlements::EntitlementsCache::new(
            coherence.clone(),
            Duration::from_millis(settings.entitlements_cache_milliseconds),
        ));
        let cache_routes = vec![
            Route::Key("session", Arc::new(cached_sessions.copies())),
            Route::Key("user", Arc::new(viewers.copies())),
            Route::All("organization", Arc::new(viewers.copies())),
            api_keys.route(),
            api_entitlements.route(),
        ];
        let sessions = SessionManagerLayer::new(cached_sessions)
            .with_name("portal_session")
            .with_http_only(true)
            .with_same_site(SameSite::Lax)
            .with_secure(secure)
            .with_expiry(Expiry::OnInactivity(time::Duration::days(i64::from(
                settings.session_days,
            ))));
        let login_limiter = LoginLimiter::new(
            settings.login_attempts_per_account,
            settings.login_attempts_per_ip,
        );
        let throttles = Arc::new(Throttles::new(&settings));
        let bound = listener.local_addr()?;
        let webhook_secrets = configured_webhook_secrets(&settings);
        // Without a Stripe key the portal brings its own Stripe, on its own port.
        let (local_stripe, webhook_secrets) = match &settings.stripe_secret_key {
            Some(_) => {
                if webhook_secrets.is_empty() {
                    tracing::warn!("STRIPE_WEBHOOK_SECRET is unset: every webhook will be refused");
                }
                (None, webhook_secrets)
            }
            None => {
                let mut secrets = webhook_secrets;
                if secrets.is_empty() {
                    secrets.push(random_webhook_secret());
                }
                let local = local_stripe::start(
                    database.pool.clone(),
                    &settings.data_dir,
                    std::net::SocketAddr::new(bound.ip(), settings.stripe_emulator_port),
                    &public_url,
                    bound,
                    &secrets[0],
                )
                .await?;
                (Some(local), secrets)
            }
        };
        let stripe = match &local_stripe {
            Some(local) => Gateway::with_timeout(
                &local.secret_key,
                Some(&local.api_base()),
                Duration::from_secs(settings.stripe_timeout_seconds),
            )?,
            None => stripe_gateway(&settings)?,
        };
        let (writer, writers) =
            InboxWriter::start(database.pool.clone(), settings.webhook_writers.clamp(1, 64));
        let inbox = Inbox {
            writer,
            secrets: Arc::new(webhook_secrets),
            wake: Arc::new(Notify::new()),
            refused: Arc::default(),
        };
        let limits = Arc::new(crate::api::rate_limit::RateLimits::new(
            crate::api::rate_limit::Limits {
                usage: settings.api_rate_limit_usage,
                read: settings.api_rate_limit_read,
                billing: settings.api_rate_limit_billing,
            },
        ));
        // This instance announces itself before it serves, so its first answers already take
        // its share of the rate limits.
        let instance = uuid::Uuid::new_v4();
        let heartbeat = Duration::from_secs(settings.instance_heartbeat_seconds.clamp(1, 300));
        let live = crate::api::rate_limit::instances::beat(&database.pool, instance, heartbeat)
            .await
            .context("announcing this instance in portal_instances")?;
        limits
            .instances()
            .store(live, std::sync::atomic::Ordering::Relaxed);
        let api = crate::api::ApiState {
            key_misses: Arc::new(KeyMissLimiter::new(settings.api_key_misses_per_ip)),
            limits: limits.clone(),
            keys: api_keys,
            entitlements: api_entitlements,
        };
        let key_misses = api.key_misses.clone();
        let top_up = Arc::new(Notify::new());
        let entitlements = api.entitlements.clone();
        let (usage, usage_writers) = UsageWriter::start(
            database.pool.clone(),
            catalog.clone(),
            WriterConfig {
                writers: settings.usage_writers.clamp(1, 64),
                warning_cooldown: chrono::Duration::hours(i64::from(
                    settings.warning_cooldown_hours,
                )),
            },
            Signals {
                top_up: top_up.clone(),
                changed: Some(Arc::new(move |orgs: &[uuid::Uuid]| {
                    entitlements.forget(orgs)
                })),
            },
        );
        let state = AppState::new(crate::web::state::Parts {
            leptos: leptos.clone(),
            db: database.pool.clone(),
            csrf,
            login_limiter: login_limiter.clone(),
            throttles: throttles.clone(),
            invitation_days: settings.invitation_days.max(1),
            catalog: catalog.clone(),
            stripe: stripe.clone(),
            inbox: inbox.clone(),
            public_url: Arc::from(public_url.as_str()),
            usage,
            api,
            top_up: top_up.clone(),
            viewers,
        });
        // Stripe's webhooks skip the browser layers (sessions, page errors): they are the hot
        // path, and Stripe has no cookies.
        let webhooks = Router::new()
            .route("/webhooks/stripe", post(billing_webhooks::receive))
            .route(
                "/unsubscribe/one-click/{token}",
                post(crate::notify::unsubscribe::one_click),
            )
            .with_state(state.clone());
        // The JSON API too: API keys, no cookies.
        let api_routes = crate::api::service(state.clone());
        let browser = Browser {
            same_origin: SameOrigin::new(&public_url, settings.app_url.is_some())?,
            https: public_url.starts_with("https://"),
            http_stripe: http_stripe_origin(
                local_stripe
                    .as_ref()
                    .map(LocalStripe::base_url)
                    .or(settings.stripe_api_base.as_deref()),
            ),
        };
        let metrics = crate::observability::prometheus::routes(
            settings
                .metrics_token
                .as_ref()
                .map(crate::config::Secret::expose),
            database.pool.clone(),
        );
        let router = router(state, &browser)
            .layer(sessions)
            .merge(webhooks)
            .merge(api_routes)
            .merge(metrics)
            .layer(axum::middleware::from_fn(
                crate::audit::context::per_request,
            ))
            .layer(axum::middleware::from_fn(
                crate::observability::http_metrics::track,
            ));

        let mut background = vec![
            tokio::spawn(shared_cache::listen(
                database.pool.clone(),
                coherence,
                cache_routes,
            )),
            tokio::spawn(async move {
                if let Err(e) = store
                    .continuously_delete_expired(Duration::from_secs(3600))
                    .await
                {
                    tracing::error!(error = %e, "deleting expired sessions stopped");
                }
            }),
            tokio::spawn(forget_idle_limits(login_limiter, key_misses, throttles)),
            tokio::spawn(as_job(
                "grace-periods",
                end_grace_periods(database.pool.clone(), stripe.clone(), catalog.clone()),
            )),
            tokio::spawn(as_job(
                "trial-cards",
                check_trial_cards(database.pool.clone(), stripe.clone(), catalog.clone()),
            )),
        ];
        background.push(tokio::spawn(
            crate::api::rate_limit::instances::beat_forever(
                database.pool.clone(),
                instance,
                heartbeat,
                limits.instances(),
                limits,
            ),
        ));
        background.push(tokio::spawn(
            crate::api::idempotency::store::delete_expired_forever(database.pool.clone()),
        ));
        // The writers end by themselves once the last request that could queue work is gone;
        // the appliers and the top-up worker when told to stop, after the batch they hold.
        let (stop, stopping) = crate::shutdown::stop_switch();
        let mut drained: Vec<JoinHandle<()>> = writers.into_iter().chain(usage_writers).collect();
        let top_up_signal = top_up.clone();
        drained.push(tokio::spawn(as_job(
            "auto-top-up",
            top_up::work_forever(
                database.pool.clone(),
                stripe.clone(),
                catalog.clone(),
                top_up,
                TopUpConfig {
                    retry_after: Duration::from_secs(settings.top_up_retry_seconds),
                },
                stopping.clone(),
            ),
        )));
        background.push(tokio::spawn(crate::revenue::snapshots::work_forever(
            database.pool.clone(),
            catalog.clone(),
        )));
        background.push(tokio::spawn(reconcile::work_forever(
            database.pool.clone(),
            Duration::from_secs(settings.reconcile_every_minutes.max(1) * 60),
        )));
        background.extend(crate::sync::jobs::spawn(crate::sync::jobs::Sync {
            pool: database.pool.clone(),
            gateway: stripe.clone(),
            catalog: catalog.clone(),
            wake: inbox.wake.clone(),
            catch_up_every: Duration::from_secs(settings.catch_up_every_minutes * 60),
            drift_every: Duration::from_secs(settings.drift_check_every_minutes * 60),
        }));
        // The notification sender: SKIP LOCKED shares the outbox between instances.
        background.push(tokio::spawn(crate::notify::alerts::write_signature_alerts(
            database.pool.clone(),
            inbox.refused.clone(),
        )));
        background.push(tokio::spawn(crate::notify::worker::work_forever(
            database.pool.clone(),
            mail,
        )));
        // Partitions ahead and months past the retention dropped: at start, then hourly.
        background.push(tokio::spawn(crate::usage::retention::work_forever(
            database.pool.clone(),
            settings.usage_retention_months,
            Duration::from_secs(3600),
        )));
        // Several appliers: SKIP LOCKED hands each event to one of them, and while one waits on
        // a commit the others work.
        for _ in 0..WEBHOOK_WORKERS {
            drained.push(tokio::spawn(billing_webhooks::work_forever(
                database.pool.clone(),
                stripe.clone(),
                catalog.clone(),
                inbox.wake.clone(),
                stopping.clone(),
            )));
        }
        if let Some(local) = local_stripe.as_ref().filter(|_| seeded) {
            // A fresh demo gets months of history through its own Stripe, while it serves.
            background.push(tokio::spawn(crate::seed_history::play(
                crate::seed_history::Stage {
                    pool: database.pool.clone(),
                    catalog: catalog.clone(),
                    stripe: crate::stripe_gateway::demo_calls::DemoStripe::new(
                        local.base_url(),
                        &local.secret_key,
                    )?,
                    portal_url: own_url,
                    top_up: top_up_signal.clone(),
                },
            )));
        }
        if local_stripe.is_some() {
            // The demo's Stripe gets the catalog's products and prices as soon as it serves.
            background.push(tokio::spawn(async move {
                match stripe.sync_catalog(&catalog).await {
                    Ok(report) => tracing::info!(
                        created = ?report.created,
                        existing = ?report.existing,
                        "catalog synced to the offline Stripe emulator"
                    ),
                    Err(e) => tracing::error!(
                        error = format!("{e:#}"),
                        "syncing the catalog to the offline Stripe emulator failed"
                    ),
                }
            }));
        }
        Ok(Self {
            listener,
            router,
            database,
            public_url,
            background,
            local_stripe,
            instance,
            drained,
            stop,
            shutdown_timeout: Duration::from_secs(settings.shutdown_timeout_seconds.max(1)),
        })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    pub fn public_url(&self) -> &str {
        &self.public_url
    }

    pub fn pool(&self) -> &PgPool {
        &self.database.pool
    }

    /// The offline Stripe the portal started, when no Stripe key is configured.
    pub fn local_stripe(&self) -> Option<&LocalStripe> {
        self.local_stripe.as_ref()
    }

    /// Serves until `shutdown` completes, lets in-flight requests finish, has the workers
    /// finish their batches, then closes the database (stopping the private cluster last), all
    /// within `SHUTDOWN_TIMEOUT_SECONDS` of the signal (see [`crate::shutdown`]).
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let service = self
            .router
            .into_make_service_with_connect_info::<SocketAddr>();
        // Small answers go out at once rather than waiting to be coalesced (Nagle).
        let listener = self.listener.tap_io(|stream| {
            if let Err(e) = stream.set_nodelay(true) {
                tracing::debug!(error = %e, "could not set TCP_NODELAY");
            }
        });
        let grace = self.shutdown_timeout;
        let (signalled, mut deadline) = tokio::sync::watch::channel(None);
        let shutdown = async move {
            shutdown.await;
            signalled.send_replace(Some(tokio::time::Instant::now() + grace));
        };
        let mut serving = Box::pin(
            axum::serve(listener, service)
                .with_graceful_shutdown(shutdown)
                .into_future(),
        );
        let signal = async {
            match deadline
                .wait_for(Option::is_some)
                .await
                .ok()
                .and_then(|at| *at)
            {
                Some(at) => at,
                None => std::future::pending().await,
            }
        };
        let served = tokio::select! {
            served = &mut serving => served,
            // Signalled: the requests in flight get until the deadline.
            at = signal => match tokio::time::timeout_at(at, &mut serving).await {
                Ok(served) => served,
                Err(_) => {
                    tracing::warn!(
                        seconds = grace.as_secs(),
                        "requests still running at the shutdown deadline; stopping anyway"
                    );
                    Ok(())
                }
            },
        };
        let deadline = deadline
            .borrow()
            .unwrap_or_else(|| tokio::time::Instant::now() + grace);
        // The router (and with it every handle that could queue work) goes first, so the
        // writers drain their queues and end.
        drop(serving);
        self.stop.stop();
        for task in self.background {
            task.abort();
        }
        let cut = crate::shutdown::join_by(self.drained, deadline).await;
        if cut > 0 {
            tracing::warn!(
                workers = cut,
                "workers still busy at the shutdown deadline were stopped"
            );
        }
        // The others take this instance's share of the rate limits at their next heartbeat.
        if let Err(e) =
            crate::api::rate_limit::instances::leave(&self.database.pool, self.instance).await
        {
            tracing::warn!(error = %e, "removing this instance from portal_instances failed");
        }
        drop(self.local_stripe);
        let closed = self.database.close().await;
        served.context("serving HTTP")?;
        closed
    }
}

/// What the browser routes are protected with.
struct Browser {
    /// Which origins may send state-changing requests.
    same_origin: SameOrigin,
    /// Whether the public address is https (then HSTS is sent).
    https: bool,
    /// The origin of a Stripe reached over plain http (the offline emulator), whose Checkout
    /// pages forms are redirected to.
    http_stripe: Option<String>,
}

fn router(state: AppState, browser: &Browser) -> Router {
    let output_name = state.leptos.output_name.clone();
    let pages = leptos_pages(&state, browser);
    let request_id = HeaderName::from_static("x-request-id");
    // The portal's own pages and forms: cross-site posts refused before any handler, errors
    // rendered as pages, every answer (404s too) with the security headers. One route a line.
    #[rustfmt::skip]
    let portal = Router::new()
        .route("/healthz", get(health::healthz))
        .route("/admin/metrics/csv/{table}", get(crate::revenue::download::table_csv))
        .route(&format!("/pkg/{output_name}.css"), get(assets::stylesheet))
        .merge(pages)
        .with_state(state)
        .layer(axum::middleware::from_fn(crate::web::form_body::only_form_bodies))
        .layer(axum::middleware::from_fn_with_state(
            browser.same_origin.clone(),
            refuse_cross_site,
        ))
        .fallback_service(ServeDir::new(assets::public_dir()))
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            PAGE_TIMEOUT,
        ))
        .layer(axum::middleware::from_fn(render_errors))
        .layer(axum::middleware::from_fn(crate::web::whole_page::in_one_piece));
    headers::with_headers(
        portal,
        headers::for_pages(browser.https, browser.http_stripe.as_deref()),
    )
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(
            TraceLayer::new_for_http().make_span_with(|request: &Request<_>| {
                let id = request
                    .headers()
                    .get("x-request-id")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default();
                // The path only: query strings can carry tokens (and see `logged_path`).
                tracing::info_span!("request", method = %request.method(), path = logged_path(request.uri().path()), id)
            }),
        )
        .layer(SetRequestIdLayer::new(request_id, MakeRequestUuid))
}

/// Every page of the application and every server function, through leptos_axum.
fn leptos_pages(state: &AppState, browser: &Browser) -> Router<AppState> {
    use leptos_axum::LeptosRoutes;
    let routes = route_list();
    let context_state = state.clone();
    let http_stripe = crate::app::page_policy::HttpStripe(browser.http_stripe.clone());
    let options = state.leptos.clone();
    Router::new().leptos_routes_with_context(
        state,
        routes,
        move || {
            context_state.provide();
            leptos::prelude::provide_context(http_stripe.clone());
        },
        move || crate::app::shell(options.clone()),
    )
}

/// The application's routes, generated once per process. While Leptos generates them it stops
/// every resource of the process from loading (leptos_server's process-wide
/// `SuppressResourceLoad`), and a page whose data started loading meanwhile never finishes: with
/// several instances in one process (the tests start one per test) that hung a page now and then.
fn route_list() -> Vec<leptos_axum::AxumRouteListing> {
    static ROUTES: std::sync::OnceLock<Vec<leptos_axum::AxumRouteListing>> =
        std::sync::OnceLock::new();
    ROUTES
        .get_or_init(|| leptos_axum::generate_route_list(crate::app::App))
        .clone()
}

/// The request path as logged: invitation links carry their token in the path, so that part is
/// left out.
fn logged_path(path: &str) -> &str {
    if path.starts_with("/invitations/") {
        "/invitations/…"
    } else {
        path
    }
}

/// `scheme://host:port` of a Stripe base URL served over plain http.
fn http_stripe_origin(base: Option<&str>) -> Option<String> {
    let url = url::Url::parse(base?).ok()?;
    (url.scheme() == "http").then(|| url.origin().ascii_serialization())
}

/// The webhook signing secrets from the configuration, trimmed, empty ones dropped.
fn configured_webhook_secrets(settings: &Settings) -> Vec<String> {
    settings
        .stripe_webhook_secret
        .iter()
        .map(|s| s.expose().trim().to_owned())
        .filter(|s| !s.is_empty())
        .collect()
}

/// A signing secret for the portal's endpoint at its own emulator, when none is configured.
fn random_webhook_secret() -> String {
    use rand::distr::{Alphanumeric, SampleString};
    format!("whsec_{}", Alphanumeric.sample_string(&mut rand::rng(), 32))
}

/// Ends trials whose card already had a trial elsewhere (see `service::check_trial_cards`).
async fn check_trial_cards(pool: PgPool, gateway: Gateway, catalog: Arc<Catalog>) {
    let mut tick = tokio::time::interval(Duration::from_secs(60));
    loop {
        tick.tick().await;
        if let Err(e) =
            service::check_trial_cards(&pool, &gateway, &catalog, chrono::Utc::now()).await
        {
            tracing::warn!(error = format!("{e:#}"), "checking trial cards failed");
        }
    }
}

/// Runs a background job with the job as the audit log's actor of the billing changes it makes.
fn as_job<F: Future<Output = ()>>(name: &'static str, job: F) -> impl Future<Output = ()> {
    use crate::audit::context::{acting, Actor, Stamp};
    acting(Stamp::of(Actor::Job(name)), job)
}

async fn end_grace_periods(pool: PgPool, gateway: Gateway, catalog: Arc<Catalog>) {
    let mut tick = tokio::time::interval(Duration::from_secs(600));
    loop {
        tick.tick().await;
        if let Err(e) =
            service::end_expired_grace_periods(&pool, &gateway, &catalog, chrono::Utc::now()).await
        {
            tracing::warn!(
                error = format!("{e:#}"),
                "ending expired grace periods failed"
            );
        }
    }
}

/// Stripe with the configured key (at Stripe, or at `STRIPE_API_BASE`).
fn stripe_gateway(settings: &Settings) -> anyhow::Result<Gateway> {
    let key = settings
        .stripe_secret_key
        .as_ref()
        .context("a Stripe secret key is needed")?;
    Gateway::with_timeout(
        key.expose(),
        settings.stripe_api_base.as_deref(),
        Duration::from_secs(settings.stripe_timeout_seconds),
    )
}

/// The key anti-forgery tokens are signed with: SECRET_KEY, or a random one for this process.
fn csrf_key(settings: &Settings) -> anyhow::Result<CsrfKey> {
    match &settings.secret_key {
        Some(secret) => {
            let secret = secret.expose().as_bytes();
            if secret.len() < 64 {
                anyhow::bail!("SECRET_KEY must be at least 64 characters long");
            }
            CsrfKey::new(secret)
        }
        None => {
            if settings.database_url.is_some() {
                tracing::warn!(
                    "SECRET_KEY is unset: using a random key, so forms opened before a restart \
                     must be reloaded and instances behind one address will refuse each other's forms"
                );
            }
            CsrfKey::random()
        }
    }
}

async fn forget_idle_limits(
    limiter: Arc<LoginLimiter>,
    key_misses: Arc<KeyMissLimiter>,
    throttles: Arc<Throttles>,
) {
    let mut tick = tokio::time::interval(Duration::from_secs(60));
    loop {
        tick.tick().await;
        limiter.forget_idle();
        key_misses.forget_idle();
        throttles.forget_idle();
    }
}

#[cfg(test)]
mod tests {
    use super::logged_path;

    #[test]
    fn invitation_tokens_stay_out_of_request_logs() {
        assert_eq!(logged_path("/invitations/abc123"), "/invitations/…");
        assert_eq!(logged_path("/invitations/abc123/accept"), "/invitations/…");
        assert_eq!(logged_path("/orgs/acme"), "/orgs/acme");
    }
}
