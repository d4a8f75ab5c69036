//! Load generator for `scripts/bench-mail`: how many messages per second the notification worker
//! sends to a local SMTP sink (aiosmtpd), against a baseline in the same run: the same messages
//! sent straight through lettre with the same concurrency, without the outbox.
//!
//! It starts a durable private PostgreSQL in DATA_DIR, migrates it, writes one owner and one
//! organization, and in interleaved rounds (1) sends N messages through lettre directly and (2)
//! writes N outbox rows (untimed) and times the worker (`notify::worker::send_due`, as
//! `work_forever` runs it) until every row is sent.
//!
//! Usage: mail_bench DATA_DIR SMTP_PORT [messages] [rounds]

use std::sync::Arc;
use std::time::{Duration, Instant};

use billing_portal::notify::kinds::Kind;
use billing_portal::notify::mailer::Mailer;
use billing_portal::notify::templates::Templates;
use billing_portal::notify::worker::{self, SenderConfig};
use lettre::message::{Mailbox, MultiPart};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use private_postgres::{ClusterOptions, PrivateCluster};
use uuid::Uuid;

type Failure = Box<dyn std::error::Error + Send + Sync>;

/// Messages in flight in the baseline, as many as the worker's SMTP connections.
const CONCURRENCY: usize = 16;

async fn baseline(url: &str, n: usize) -> Result<f64, Failure> {
    let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)?
        .pool_config(lettre::transport::smtp::PoolConfig::new().max_size(CONCURRENCY as u32))
        .build();
    let from: Mailbox = "Bench <bench@portal.test>".parse()?;
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..n {
        while tasks.len() >= CONCURRENCY {
            tasks.join_next().await.ok_or("no task")???;
        }
        let (transport, from) = (transport.clone(), from.clone());
        tasks.spawn(async move {
            let message = Message::builder()
                .from(from)
                .to("owner@bench.test".parse()?)
                .subject(format!("Baseline {i}"))
                .date_now()
                .multipart(MultiPart::alternative_plain_html(
                    "500 credits were added.".to_owned(),
                    "<p>500 credits were added.</p>".to_owned(),
                ))?;
            transport.send(message).await?;
            Ok::<(), Failure>(())
        });
    }
    while let Some(done) = tasks.join_next().await {
        done??;
    }
    Ok(n as f64 / started.elapsed().as_secs_f64())
}

async fn outbox(
    pool: &sqlx::PgPool,
    config: &SenderConfig,
    org: Uuid,
    round: usize,
    n: usize,
) -> Result<f64, Failure> {
    let mut tx = pool.begin().await?;
    for i in 0..n {
        billing_portal::notify::about_org(
            &mut tx,
            Kind::PackBought,
            org,
            &format!("bench-{round}-{i}"),
            serde_json::json!({ "credits": "500", "amount": "$20.00", "packs": 1 }),
        )
        .await?;
    }
    tx.commit().await?;
    let started = Instant::now();
    while worker::send_due(pool, config).await? > 0 {}
    let elapsed = started.elapsed().as_secs_f64();
    let sent: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM notification_outbox WHERE status = 'sent' AND dedupe_key LIKE $1",
    )
    .bind(format!("%:bench-{round}-%"))
    .fetch_one(pool)
    .await?;
    if sent as usize != n {
        return Err(format!("round {round}: {sent} of {n} sent").into());
    }
    Ok(n as f64 / elapsed)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

#[tokio::main]
async fn main() -> Result<(), Failure> {
    let args: Vec<String> = std::env::args().collect();
    let data_dir = args
        .get(1)
        .ok_or("usage: mail_bench DATA_DIR SMTP_PORT [messages] [rounds]")?
        .clone();
    let port: u16 = args.get(2).ok_or("SMTP_PORT")?.parse()?;
    let n: usize = args.get(3).map_or(Ok(2000), |a| a.parse())?;
    let rounds: usize = args.get(4).map_or(Ok(3), |a| a.parse())?;
    let dir = std::path::PathBuf::from(&data_dir).join("postgres");
    let cluster = tokio::task::spawn_blocking(move || {
        PrivateCluster::start(&dir, &ClusterOptions { durable: true })
    })
    .await??;
    private_postgres::ensure_database(&cluster.connect_options("postgres"), "bench").await?;
    let pool = billing_portal::db::connect(
        cluster.connect_options("bench"),
        8,
        billing_portal::db::Timeouts::default(),
    )
    .await?;
    billing_portal::db::migrate(&pool).await?;
    let (user, org) = (Uuid::new_v4(), Uuid::new_v4());
    sqlx::query(
        "INSERT INTO users (id, email, password_hash) VALUES ($1, 'owner@bench.test', 'x')",
    )
    .bind(user)
    .execute(&pool)
    .await?;
    sqlx::query("INSERT INTO organizations (id, name, slug) VALUES ($1, 'Bench', 'bench')")
        .bind(org)
        .execute(&pool)
        .await?;
    sqlx::query("INSERT INTO memberships (user_id, org_id, role) VALUES ($1, $2, 'owner')")
        .bind(user)
        .bind(org)
        .execute(&pool)
        .await?;
    let url = format!("smtp://127.0.0.1:{port}");
    let config = SenderConfig {
        mailer: Mailer::smtp(&url)?,
        templates: Arc::new(Templates::load(None)?),
        from: "Bench <bench@portal.test>".parse()?,
        public_url: "http://127.0.0.1:3000".to_owned(),
        key: billing_portal::web::csrf::CsrfKey::random()?,
        retry_base: Duration::from_secs(30),
        max_attempts: 8,
    };
    let (mut base, mut portal, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..rounds {
        let b = baseline(&url, n).await?;
        let p = outbox(&pool, &config, org, round, n).await?;
        println!(
            "round {}: baseline {b:.0} msg/s, outbox worker {p:.0} msg/s, ratio {:.2}",
            round + 1,
            p / b
        );
        base.push(b);
        portal.push(p);
        ratios.push(p / b);
    }
    let min = ratios.iter().copied().fold(f64::INFINITY, f64::min);
    let max = ratios.iter().copied().fold(0.0, f64::max);
    println!(
        "{n} messages × {rounds} rounds: outbox worker median {:.0} msg/s (target ≥ 200), lettre baseline median {:.0} msg/s, ratio median {:.2} (min {min:.2}, max {max:.2})",
        median(portal),
        median(base),
        median(ratios)
    );
    pool.close().await;
    tokio::task::spawn_blocking(move || cluster.stop()).await??;
    Ok(())
}
