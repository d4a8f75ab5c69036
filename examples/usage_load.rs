//! Load generator for `scripts/bench-usage`. In interleaved rounds it drives, at one
//! concurrency:
//! - `POST /api/v1/usage` over many organizations, and its baseline: the raw per-action
//!   transaction (insert the action, update the balance, commit) straight into PostgreSQL;
//! - the same for one hot organization;
//! - `GET /api/v1/entitlements` against a minimal axum handler (`usage_load minimal PORT`, run
//!   as its own process like the portal).
//!
//! Every action must be answered 200 (the organizations have plenty of credits); afterwards it
//! checks that each answered action is stored once and that the ledger reconciles with no drift.
//!
//! `usage_load batch ...` runs the batch part instead (`support/batch.rs`), and
//! `usage_load warnings ...` the warnings part (`support/warnings.rs`).
//!
//! Usage: usage_load minimal PORT
//!        usage_load batch PORTAL_URL DATABASE_URL [batches] [concurrency] [rounds] [orgs]
//!        usage_load warnings PORTAL_URL DATABASE_URL [calls] [concurrency] [rounds]
//!        usage_load PORTAL_URL MINIMAL_URL DATABASE_URL [actions] [concurrency] [rounds] [orgs]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use billing_portal::usage::ledger::{self, Entry, Kind};
use serde_json::json;
use sqlx::postgres::PgPoolOptions;
use sqlx::PgPool;
use uuid::Uuid;

#[path = "support/batch.rs"]
mod batch;
#[path = "support/figures.rs"]
mod support;
#[path = "support/warnings.rs"]
mod warnings;
use support::{figures, median, spread, CpuTime, Figures};

type Failure = Box<dyn std::error::Error + Send + Sync>;

/// One request (or transaction) of a run.
type Call = std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), String>> + Send>>;

/// The smallest axum server: one handler answering a constant JSON body.
async fn minimal(port: u16) -> Result<(), Failure> {
    use axum::routing::get;
    let app = axum::Router::new().route(
        "/entitlements",
        get(|| async { axum::Json(json!({ "ok": true })) }),
    );
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    axum::serve(listener, app).await?;
    Ok(())
}

/// The figures of one run, and the CPU it cost.
struct Run {
    figures: Figures,
    cpu: CpuTime,
    calls: usize,
    /// Each call's latency, by its index.
    latencies: Vec<(usize, std::time::Duration)>,
}

/// Programs whose CPU time the report shows (`usage_load` is the load generator, and the
/// minimal axum server too).
const PROGRAMS: [&str; 3] = ["billing-portal", "postgres", "usage_load"];

/// Runs `total` calls of `one(i)` from `concurrency` closed-loop workers; returns the figures.
async fn drive<F, Fut>(total: usize, concurrency: usize, one: F) -> Result<Run, Failure>
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<(), String>> + Send,
{
    let next = Arc::new(AtomicUsize::new(0));
    let one = Arc::new(one);
    let cpu = CpuTime::now();
    let started = Instant::now();
    let workers: Vec<_> = (0..concurrency)
        .map(|_| {
            let next = next.clone();
            let one = one.clone();
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= total {
                        return Ok::<_, String>(latencies);
                    }
                    let sent = Instant::now();
                    one(i).await?;
                    latencies.push((i, sent.elapsed()));
                }
            })
        })
        .collect();
    let mut all = Vec::with_capacity(total);
    for worker in workers {
        all.extend(worker.await??);
    }
    let figures = figures(all.iter().map(|(_, d)| *d).collect(), started.elapsed());
    Ok(Run {
        figures,
        cpu: CpuTime::now().since(&cpu),
        calls: total,
        latencies: all,
    })
}

fn portal_usage(
    client: reqwest::Client,
    url: String,
    keys: Arc<Vec<String>>,
    prefix: String,
) -> impl Fn(usize) -> Call + Send + Sync {
    move |i| {
        let client = client.clone();
        let url = url.clone();
        let key = keys[i % keys.len()].clone();
        let body =
            json!({ "tier": "small", "idempotency_key": format!("{prefix}-{i}") }).to_string();
        Box::pin(async move {
            let answer = client
                .post(url)
                .bearer_auth(key)
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .map_err(|e| e.to_string())?;
            if answer.status() != reqwest::StatusCode::OK {
                return Err(format!("usage answered {}", answer.status()));
            }
            Ok(())
        })
    }
}

fn baseline_usage(
    pool: PgPool,
    orgs: Arc<Vec<Uuid>>,
    prefix: String,
) -> impl Fn(usize) -> Call + Send + Sync {
    move |i| {
        let pool = pool.clone();
        let org = orgs[i % orgs.len()];
        let key = format!("{prefix}-{i}");
        Box::pin(async move {
            // The raw per-action transaction, one durable commit each.
            let run = async {
                let mut tx = pool.begin().await?;
                sqlx::query(
                    "INSERT INTO bench_usage_actions (org_id, idempotency_key, millicredits) VALUES ($1, $2, 1000)",
                )
                .bind(org)
                .bind(&key)
                .execute(&mut *tx)
                .await?;
                sqlx::query(
                    "UPDATE bench_usage_balances SET balance = balance - 1000 WHERE org_id = $1",
                )
                .bind(org)
                .execute(&mut *tx)
                .await?;
                tx.commit().await
            };
            run.await.map_err(|e: sqlx::Error| e.to_string())
        })
    }
}

fn get_json(
    client: reqwest::Client,
    url: String,
    keys: Arc<Vec<String>>,
) -> impl Fn(usize) -> Call + Send + Sync {
    move |i| {
        let client = client.clone();
        let url = url.clone();
        let key = keys[i % keys.len()].clone();
        Box::pin(async move {
            let answer = client
                .get(url)
                .bearer_auth(key)
                .send()
                .await
                .map_err(|e| e.to_string())?;
            if answer.status() != reqwest::StatusCode::OK {
                return Err(format!("GET answered {}", answer.status()));
            }
            answer.bytes().await.map_err(|e| e.to_string())?;
            Ok(())
        })
    }
}

/// The single-action baseline's tables (`organizations` fills its balances).
async fn single_tables(pool: &PgPool) -> Result<(), Failure> {
    sqlx::query(
        "CREATE TABLE IF NOT EXISTS bench_usage_actions (
             id bigserial PRIMARY KEY, org_id uuid NOT NULL, idempotency_key text NOT NULL,
             millicredits bigint NOT NULL, recorded_at timestamptz NOT NULL DEFAULT now(),
             UNIQUE (org_id, idempotency_key))",
    )
    .execute(pool)
    .await?;
    sqlx::query(
        "CREATE TABLE IF NOT EXISTS bench_usage_balances (org_id uuid PRIMARY KEY, balance bigint NOT NULL)",
    )
    .execute(pool)
    .await?;
    Ok(())
}

/// Organizations with API keys and a large credit balance; returns their ids and keys.
async fn organizations(
    pool: &PgPool,
    n: usize,
    tag: &str,
) -> Result<(Vec<Uuid>, Vec<String>), Failure> {
    let mut ids = Vec::with_capacity(n);
    let mut keys = Vec::with_capacity(n);
    for i in 0..n {
        let id = Uuid::new_v4();
        sqlx::query("INSERT INTO organizations (id, name, slug) VALUES ($1, $2, $3)")
            .bind(id)
            .bind(format!("Bench {tag} {i}"))
            .bind(format!("bench-{tag}-{i}-{}", &id.simple().to_string()[..6]))
            .execute(pool)
            .await?;
        let mut tx = pool.begin().await?;
        ledger::adjust(
            &mut tx,
            Entry {
                org_id: id,
                kind: Kind::Grant,
                millicredits: 100_000_000_000,
                reason: Some("benchmark"),
                reference: None,
                actor_id: None,
            },
        )
        .await?;
        tx.commit().await?;
        keys.push(billing_portal::api::keys::create(pool, id, "bench", None).await?);
        sqlx::query("INSERT INTO bench_usage_balances (org_id, balance) VALUES ($1, 100000000000)")
            .bind(id)
            .execute(pool)
            .await?;
        ids.push(id);
    }
    Ok((ids, keys))
}

fn row(round: usize, side: &str, run: &Run) {
    let f = &run.figures;
    println!(
        "{round:>5}  {side:<22} {:>9.0}  {:>7.2}  {:>7.2}  {}",
        f.per_second,
        f.p50_ms,
        f.p99_ms,
        run.cpu.per_unit(run.calls, &PROGRAMS)
    );
}

#[tokio::main]
async fn main() -> Result<(), Failure> {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("minimal") {
        let port = args
            .get(2)
            .ok_or("usage: usage_load minimal PORT")?
            .parse()?;
        return minimal(port).await;
    }
    if args.get(1).map(String::as_str) == Some("batch") {
        return batch::main(&args).await;
    }
    if args.get(1).map(String::as_str) == Some("warnings") {
        return warnings::main(&args).await;
    }
    if args.len() < 4 {
        return Err("usage: usage_load PORTAL_URL MINIMAL_URL DATABASE_URL [actions] [concurrency] [rounds] [orgs]".into());
    }
    let (portal, minimal_url, database_url) = (&args[1], &args[2], &args[3]);
    let actions: usize = args.get(4).map_or(Ok(4000), |a| a.parse())?;
    let concurrency: usize = args.get(5).map_or(Ok(64), |a| a.parse())?;
    let rounds: usize = args.get(6).map_or(Ok(3), |a| a.parse())?;
    let org_count: usize = args.get(7).map_or(Ok(200), |a| a.parse())?;
    let pool = PgPoolOptions::new()
        .max_connections(concurrency as u32 + 2)
        .connect(database_url)
        .await?;
    single_tables(&pool).await?;
    let (many_ids, many_keys) = organizations(&pool, org_count, "many").await?;
    let (hot_ids, hot_keys) = organizations(&pool, 1, "hot").await?;
    let (many_ids, many_keys) = (Arc::new(many_ids), Arc::new(many_keys));
    let (hot_ids, hot_keys) = (Arc::new(hot_ids), Arc::new(hot_keys));
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .build()?;
    let usage_url = format!("{portal}/api/v1/usage");
    let entitlements_url = format!("{portal}/api/v1/entitlements");
    let minimal_url = format!("{minimal_url}/entitlements");

    println!(
        "{actions} actions per run, {concurrency} concurrent clients, {org_count} organizations (+1 hot), {rounds} interleaved rounds\n"
    );
    println!("round  run                      per sec   p50 ms   p99 ms  CPU µs per call");
    let (mut many, mut hot, mut reads) = (Vec::new(), Vec::new(), Vec::new());
    let (mut rates_many, mut rates_hot, mut rates_read) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..rounds {
        let portal_many = drive(
            actions,
            concurrency,
            portal_usage(
                client.clone(),
                usage_url.clone(),
                many_keys.clone(),
                format!("m{round}"),
            ),
        )
        .await?;
        let base_many = drive(
            actions,
            concurrency,
            baseline_usage(pool.clone(), many_ids.clone(), format!("m{round}")),
        )
        .await?;
        let portal_hot = drive(
            actions,
            concurrency,
            portal_usage(
                client.clone(),
                usage_url.clone(),
                hot_keys.clone(),
                format!("h{round}"),
            ),
        )
        .await?;
        let base_hot = drive(
            actions,
            concurrency,
            baseline_usage(pool.clone(), hot_ids.clone(), format!("h{round}")),
        )
        .await?;
        let reads_total = actions * 4;
        let ent = drive(
            reads_total,
            concurrency,
            get_json(client.clone(), entitlements_url.clone(), many_keys.clone()),
        )
        .await?;
        let min = drive(
            reads_total,
            concurrency,
            get_json(client.clone(), minimal_url.clone(), many_keys.clone()),
        )
        .await?;
        row(round, "usage, many orgs", &portal_many);
        row(round, "baseline, many orgs", &base_many);
        row(round, "usage, hot org", &portal_hot);
        row(round, "baseline, hot org", &base_hot);
        row(round, "entitlements", &ent);
        row(round, "minimal axum handler", &min);
        let rate = |r: &Run| r.figures.per_second;
        many.push(rate(&portal_many) / rate(&base_many));
        hot.push(rate(&portal_hot) / rate(&base_hot));
        reads.push(rate(&ent) / rate(&min));
        rates_many.push(rate(&portal_many));
        rates_hot.push(rate(&portal_hot));
        rates_read.push(rate(&ent));
    }

    let answered = (actions * rounds * 2) as i64;
    let mine: Vec<Uuid> = many_ids.iter().chain(hot_ids.iter()).copied().collect();
    let (stored, distinct): (i64, i64) = sqlx::query_as(
        "SELECT count(*), count(DISTINCT (org_id, idempotency_key)) FROM usage_actions
         WHERE org_id = ANY($1)",
    )
    .bind(&mine)
    .fetch_one(&pool)
    .await?;
    let report = billing_portal::usage::reconcile::run(&pool, false).await?;
    let (m, m_lo, m_hi) = spread(&many);
    let (h, h_lo, h_hi) = spread(&hot);
    let (r, r_lo, r_hi) = spread(&reads);
    println!();
    println!(
        "usage, many orgs: median {:.0} actions/s; / baseline: median {m:.2} (min {m_lo:.2}, max {m_hi:.2}); target at least 5",
        median(rates_many)
    );
    println!(
        "usage, hot org:   median {:.0} actions/s; / baseline: median {h:.2} (min {h_lo:.2}, max {h_hi:.2}); target at least 2",
        median(rates_hot)
    );
    println!(
        "entitlements:     median {:.0} reads/s; / minimal handler: median {r:.2} (min {r_lo:.2}, max {r_hi:.2}); target at least 0.5",
        median(rates_read)
    );
    println!(
        "answered 200: {answered}; stored: {stored} ({distinct} distinct); reconciliation drift: {} balances, {} counters",
        report.balances.len(),
        report.counters.len()
    );
    if stored != answered || distinct != answered || !report.clean() {
        return Err("an answered action is missing or doubled, or the ledger drifted".into());
    }
    let met = m >= 5.0 && h >= 2.0 && r >= 0.5;
    println!("{}", if met { "TARGETS MET" } else { "TARGETS MISSED" });
    Ok(())
}
