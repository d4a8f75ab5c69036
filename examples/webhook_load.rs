//! Load generator for `scripts/bench-webhooks`: posts signed Stripe events to the portal from
//! many concurrent clients, then does the raw durable insert of the same payloads straight into
//! PostgreSQL at the same concurrency (the baseline), in interleaved rounds. Reports events per
//! second and answer latencies for both, how fast the portal applied the events, and checks that
//! no event was lost or applied twice.
//!
//! Usage: webhook_load URL SECRET DATABASE_URL [events_per_round] [concurrency] [rounds]

use std::sync::Arc;
use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use sha2::Sha256;
use sqlx::postgres::PgPoolOptions;
use sqlx::PgPool;
use tokio::sync::Semaphore;

#[path = "support/figures.rs"]
mod support;
use support::{figures, median, spread, CpuTime, Figures};

type Failure = Box<dyn std::error::Error + Send + Sync>;

fn sign(secret: &str, payload: &str) -> String {
    let t = chrono::Utc::now().timestamp();
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length works");
    mac.update(format!("{t}.{payload}").as_bytes());
    format!("t={t},v1={}", hex::encode(mac.finalize().into_bytes()))
}

/// An `invoice.paid` event for the benchmark's customer, unique per (round, n).
fn event(round: usize, n: usize, customer: &str) -> (String, String) {
    let id = format!("evt_bench_{round}_{n}");
    let created = chrono::Utc::now().timestamp();
    let payload = serde_json::json!({
        "id": id, "object": "event", "api_version": "2026-09-30.endive", "created": created,
        "type": "invoice.paid", "livemode": false, "pending_webhooks": 1,
        "data": { "object": {
            "id": format!("in_bench_{round}_{n}"), "object": "invoice", "customer": customer,
            "status": "paid", "currency": "usd", "amount_due": 999, "amount_paid": 999,
            "number": format!("BENCH-{round}-{n}"), "created": created,
            "period_start": created, "period_end": created + 2_592_000,
            "hosted_invoice_url": null, "invoice_pdf": null,
        } },
    });
    (id, payload.to_string())
}

async fn portal_round(
    url: &str,
    secret: &str,
    payloads: &[(String, String)],
    concurrency: usize,
) -> Result<Figures, Failure> {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .build()?;
    let gate = Arc::new(Semaphore::new(concurrency));
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(payloads.len());
    for (_, payload) in payloads {
        let permit = gate.clone().acquire_owned().await?;
        let client = client.clone();
        let url = url.to_owned();
        let signature = sign(secret, payload);
        let payload = payload.clone();
        tasks.push(tokio::spawn(async move {
            let _permit = permit;
            let sent = Instant::now();
            let answer = client
                .post(&url)
                .header("content-type", "application/json")
                .header("stripe-signature", signature)
                .body(payload)
                .send()
                .await;
            match answer {
                Ok(r) if r.status().is_success() => Ok(sent.elapsed()),
                Ok(r) => Err(format!("status {}", r.status())),
                Err(e) => Err(e.to_string()),
            }
        }));
    }
    let mut latencies = Vec::with_capacity(tasks.len());
    for task in tasks {
        latencies.push(
            task.await?
                .map_err(|e| format!("a webhook was refused: {e}"))?,
        );
    }
    Ok(figures(latencies, started.elapsed()))
}

async fn baseline_round(
    pool: &PgPool,
    payloads: &[(String, String)],
    concurrency: usize,
) -> Result<Figures, Failure> {
    let gate = Arc::new(Semaphore::new(concurrency));
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(payloads.len());
    for (id, payload) in payloads {
        let permit = gate.clone().acquire_owned().await?;
        let pool = pool.clone();
        let id = id.clone();
        let payload: serde_json::Value = serde_json::from_str(payload)?;
        tasks.push(tokio::spawn(async move {
            let _permit = permit;
            let sent = Instant::now();
            // One durable commit per event, as the webhook does.
            sqlx::query("INSERT INTO bench_raw_events (id, payload) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING")
                .bind(id)
                .bind(payload)
                .execute(&pool)
                .await
                .map(|_| sent.elapsed())
        }));
    }
    let mut latencies = Vec::with_capacity(tasks.len());
    for task in tasks {
        latencies.push(task.await??);
    }
    Ok(figures(latencies, started.elapsed()))
}

/// Waits until no event is pending (the round's events are the only ones sent); returns when
/// the last one was applied. Polls through the index of pending events, so waiting costs little.
async fn applied_after(pool: &PgPool, started: Instant) -> Result<Duration, Failure> {
    loop {
        let (pending, retried): (i64, i64) = sqlx::query_as(
            "SELECT count(*), count(*) FILTER (WHERE attempts > 0)
             FROM webhook_events WHERE status = 'pending'",
        )
        .fetch_one(pool)
        .await?;
        if retried > 0 {
            return Err(format!("{retried} events failed to apply and wait for a retry").into());
        }
        if pending == 0 {
            return Ok(started.elapsed());
        }
        if started.elapsed() > Duration::from_secs(600) {
            return Err(format!("{pending} events still pending after 10 minutes").into());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::main]
async fn main() -> Result<(), Failure> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 4 {
        return Err(
            "usage: webhook_load URL SECRET DATABASE_URL [events_per_round] [concurrency] [rounds]"
                .into(),
        );
    }
    let (url, secret, database_url) = (&args[1], &args[2], &args[3]);
    let events: usize = args.get(4).map_or(Ok(2000), |a| a.parse())?;
    let concurrency: usize = args.get(5).map_or(Ok(32), |a| a.parse())?;
    let rounds: usize = args.get(6).map_or(Ok(3), |a| a.parse())?;
    let pool = PgPoolOptions::new()
        .max_connections(concurrency as u32 + 2)
        .connect(database_url)
        .await?;

    // A customer of a real organization, so the worker applies every event (an invoice upsert).
    sqlx::query(
        "CREATE TABLE IF NOT EXISTS bench_raw_events (id text PRIMARY KEY, payload jsonb NOT NULL)",
    )
    .execute(&pool)
    .await?;
    sqlx::query("TRUNCATE bench_raw_events")
        .execute(&pool)
        .await?;
    let org: uuid::Uuid = sqlx::query_scalar(
        "INSERT INTO organizations (id, name, slug) VALUES (gen_random_uuid(), 'Bench', 'bench-' || substr(md5(random()::text), 1, 8)) RETURNING id",
    )
    .fetch_one(&pool)
    .await?;
    let customer = format!("cus_bench_{}", &org.simple().to_string()[..12]);
    sqlx::query("INSERT INTO billing_customers (org_id, stripe_customer_id) VALUES ($1, $2)")
        .bind(org)
        .bind(&customer)
        .execute(&pool)
        .await?;

    println!("{events} events per round, {concurrency} concurrent clients, {rounds} interleaved rounds\n");
    // CPU: microseconds of the whole machine's busy time per event (load generator, portal and
    // PostgreSQL together, accepting and applying); stolen: time the hypervisor gave elsewhere.
    println!("round  side      events/s   p50 ms   p99 ms   applied/s  CPU µs/event  stolen µs");
    let mut portal_cpus = Vec::new();
    let mut baseline_cpus = Vec::new();
    let mut ratios = Vec::new();
    let mut portal_rates = Vec::new();
    let mut applied_rates = Vec::new();
    let mut baseline_rates = Vec::new();
    for round in 0..rounds {
        let payloads: Vec<(String, String)> =
            (0..events).map(|n| event(round, n, &customer)).collect();
        let started = Instant::now();
        let cpu = CpuTime::now();
        let portal = portal_round(url, secret, &payloads, concurrency).await?;
        let applied_in = applied_after(&pool, started).await?;
        let portal_cpu = CpuTime::now().since(&cpu);
        let applied_per_second = events as f64 / applied_in.as_secs_f64();
        let cpu = CpuTime::now();
        let baseline = baseline_round(&pool, &payloads, concurrency).await?;
        let baseline_cpu = CpuTime::now().since(&cpu);
        let per_event = |t: f64| t * 1e6 / events as f64;
        println!(
            "{round:>5}  portal   {:>9.0}  {:>7.2}  {:>7.2}   {:>9.0}  {:>11.0}  {:>9.0}",
            portal.per_second,
            portal.p50_ms,
            portal.p99_ms,
            applied_per_second,
            per_event(portal_cpu.busy),
            per_event(portal_cpu.stolen)
        );
        println!(
            "{round:>5}  baseline {:>9.0}  {:>7.2}  {:>7.2}   {:>9}  {:>11.0}  {:>9.0}",
            baseline.per_second,
            baseline.p50_ms,
            baseline.p99_ms,
            "",
            per_event(baseline_cpu.busy),
            per_event(baseline_cpu.stolen)
        );
        let programs = ["billing-portal", "postgres", "webhook_load"];
        println!(
            "       CPU µs per event, portal: {}",
            portal_cpu.per_unit(events, &programs)
        );
        println!(
            "       CPU µs per event, baseline: {}",
            baseline_cpu.per_unit(events, &programs)
        );
        portal_cpus.push(per_event(portal_cpu.busy));
        baseline_cpus.push(per_event(baseline_cpu.busy));
        ratios.push(portal.per_second / baseline.per_second);
        portal_rates.push(portal.per_second);
        applied_rates.push(applied_per_second);
        baseline_rates.push(baseline.per_second);
    }

    // Nothing lost, nothing applied twice: one stored event and one invoice per event sent, each
    // applied in exactly one attempt.
    let sent = (events * rounds) as i64;
    let (stored, once, invoices): (i64, i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM webhook_events WHERE id LIKE 'evt_bench_%'),
                (SELECT count(*) FROM webhook_events WHERE id LIKE 'evt_bench_%' AND status = 'applied' AND attempts = 1),
                (SELECT count(*) FROM invoices WHERE org_id = $1)",
    )
    .bind(org)
    .fetch_one(&pool)
    .await?;
    let (ratio, low, high) = spread(&ratios);
    println!(
        "\nportal accepted, median: {:.0} events/s; applied, median: {:.0} events/s",
        median(portal_rates),
        median(applied_rates)
    );
    println!("baseline, median: {:.0} events/s", median(baseline_rates));
    println!(
        "CPU per event, median: portal {:.0} µs (accepting and applying), baseline {:.0} µs",
        median(portal_cpus),
        median(baseline_cpus)
    );
    println!(
        "portal / baseline: median {:.2} (min {:.2}, max {:.2}); target at least 0.70",
        ratio, low, high
    );
    println!(
        "events sent {sent}, stored {stored}, applied exactly once {once}, invoices {invoices}"
    );
    if stored != sent || once != sent || invoices != sent {
        return Err("events were lost or applied more than once".into());
    }
    println!(
        "{}",
        if ratio >= 0.70 {
            "TARGET MET"
        } else {
            "TARGET MISSED"
        }
    );
    Ok(())
}
