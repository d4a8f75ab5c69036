//! The batch part of `scripts/bench-usage`: `POST /api/v1/usage/batch` with 1,000 actions per
//! request, over many organizations and over one hot organization, against the physical limit
//! measured in the same run: the same rows written straight into tables of the same shape
//! (`usage_actions`' columns, constraints, indexes and foreign keys, partitioned the same way,
//! and `usage_action_keys`, where each action's idempotency key is unique) with one multi-row
//! `INSERT ... SELECT FROM unnest(...)` per batch, one balance update per organization and a
//! durable commit. The baseline writes into copies so the portal's own tables still reconcile
//! afterwards. Not in the baseline: deciding each action, the replay lookup, counters, per-day
//! totals, warnings, HTTP and JSON.
//!
//! Usage: usage_load batch PORTAL_URL DATABASE_URL [batches] [concurrency] [rounds] [orgs]

use std::sync::Arc;

use chrono::Utc;
use sqlx::PgPool;
use uuid::Uuid;

use super::{drive, median, organizations, spread, Call, Failure, Run, PROGRAMS};

/// Actions per request (the API's largest batch).
const BATCH: usize = 1000;

/// The baseline's tables: copies of `usage_actions` (with its partitioning, defaults, checks,
/// indexes and foreign keys) and of `credit_accounts`.
async fn baseline_tables(pool: &PgPool, orgs: &[Uuid]) -> Result<(), Failure> {
    sqlx::raw_sql(
        "CREATE TABLE IF NOT EXISTS bench_batch_actions (LIKE usage_actions INCLUDING ALL)
             PARTITION BY RANGE (recorded_at);
         CREATE TABLE IF NOT EXISTS bench_batch_actions_all PARTITION OF bench_batch_actions
             DEFAULT;
         ALTER TABLE bench_batch_actions DROP CONSTRAINT IF EXISTS bench_batch_org_fk;
         ALTER TABLE bench_batch_actions ADD CONSTRAINT bench_batch_org_fk
             FOREIGN KEY (org_id) REFERENCES organizations (id) ON DELETE CASCADE;
         ALTER TABLE bench_batch_actions DROP CONSTRAINT IF EXISTS bench_batch_key_fk;
         ALTER TABLE bench_batch_actions ADD CONSTRAINT bench_batch_key_fk
             FOREIGN KEY (api_key_id) REFERENCES api_keys (id) ON DELETE SET NULL;
         CREATE TABLE IF NOT EXISTS bench_batch_keys (LIKE usage_action_keys INCLUDING ALL);
         ALTER TABLE bench_batch_keys DROP CONSTRAINT IF EXISTS bench_batch_keys_org_fk;
         ALTER TABLE bench_batch_keys ADD CONSTRAINT bench_batch_keys_org_fk
             FOREIGN KEY (org_id) REFERENCES organizations (id) ON DELETE CASCADE;
         CREATE TABLE IF NOT EXISTS bench_batch_balances (LIKE credit_accounts INCLUDING ALL);",
    )
    .execute(pool)
    .await?;
    sqlx::query(
        "INSERT INTO bench_batch_balances (org_id, balance_millicredits)
         SELECT id, 100000000000 FROM unnest($1::uuid[]) AS o(id) ON CONFLICT DO NOTHING",
    )
    .bind(orgs)
    .execute(pool)
    .await?;
    Ok(())
}

fn keys_of(prefix: &str, i: usize) -> Vec<String> {
    (0..BATCH).map(|n| format!("{prefix}-{i}-{n}")).collect()
}

fn portal_batch(
    client: reqwest::Client,
    url: String,
    keys: Arc<Vec<String>>,
    prefix: String,
) -> impl Fn(usize) -> Call + Send + Sync {
    move |i| {
        let client = client.clone();
        let url = url.clone();
        let key = keys[i % keys.len()].clone();
        let actions: Vec<serde_json::Value> = keys_of(&prefix, i)
            .into_iter()
            .map(|k| serde_json::json!({ "tier": "small", "idempotency_key": k }))
            .collect();
        let body = serde_json::json!({ "actions": actions }).to_string();
        Box::pin(async move {
            let answer = client
                .post(url)
                .bearer_auth(key)
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .map_err(|e| e.to_string())?;
            let status = answer.status();
            let text = answer.text().await.map_err(|e| e.to_string())?;
            if status != reqwest::StatusCode::OK {
                return Err(format!("the batch answered {status}: {text}"));
            }
            let allowed = text.matches(r#""status":200"#).count();
            if allowed != BATCH {
                return Err(format!("{allowed} of {BATCH} actions were allowed"));
            }
            Ok(())
        })
    }
}

/// One batch written straight into PostgreSQL: the rows the portal would write for it (every
/// column as an array, as the portal sends them), one balance update, one durable commit.
fn baseline_batch(
    pool: PgPool,
    orgs: Arc<Vec<Uuid>>,
    api_keys: Arc<Vec<Uuid>>,
    prefix: String,
) -> impl Fn(usize) -> Call + Send + Sync {
    move |i| {
        let pool = pool.clone();
        let org = orgs[i % orgs.len()];
        let api_key = api_keys[i % api_keys.len()];
        let keys = keys_of(&prefix, i);
        Box::pin(async move {
            let run = async {
                let now = Utc::now();
                let period = billing_portal::usage::retention::month_start(now);
                let n = keys.len();
                let mut tx = pool.begin().await?;
                // The one balance update, which also says what each row's balance_after is.
                let after: i64 = sqlx::query_scalar(
                    "UPDATE bench_batch_balances
                     SET balance_millicredits = balance_millicredits - $2, updated_at = now()
                     WHERE org_id = $1 RETURNING balance_millicredits",
                )
                .bind(org)
                .bind(1000 * n as i64)
                .fetch_one(&mut *tx)
                .await?;
                let balance = after + 1000 * n as i64;
                let balances: Vec<i64> = (1..=n as i64).map(|k| balance - 1000 * k).collect();
                sqlx::query(
                    "WITH t AS (
                         SELECT nextval('usage_actions_id_seq') AS id, *
                         FROM UNNEST($1::uuid[], $2::text[], $3::text[], $4::text[], $5::bigint[],
                                     $6::timestamptz[], $7::timestamptz[], $8::bigint[],
                                     $9::bigint[], $10::text[], $11::uuid[])
                              AS u(org_id, key, tier, counted, amount, period, occurred,
                                   remaining, balance, meta, api_key)
                     ), actions AS (
                         INSERT INTO bench_batch_actions (id, org_id, idempotency_key, tier,
                             counted_as, millicredits, period_start, occurred_at, recorded_at,
                             included_remaining, balance_after, metadata, api_key_id)
                         SELECT id, org_id, key, tier, counted, amount, period, occurred, $12,
                                remaining, balance, meta::jsonb, api_key
                         FROM t
                     )
                     INSERT INTO bench_batch_keys (org_id, idempotency_key, action_id, recorded_at)
                     SELECT org_id, key, id, $12 FROM t",
                )
                .bind(vec![org; n])
                .bind(&keys)
                .bind(vec!["small"; n])
                .bind(vec!["credits"; n])
                .bind(vec![1000_i64; n])
                .bind(vec![period; n])
                .bind(vec![now; n])
                .bind(vec![Some(0_i64); n])
                .bind(&balances)
                .bind(vec![None::<String>; n])
                .bind(vec![Some(api_key); n])
                .bind(now)
                .execute(&mut *tx)
                .await?;
                tx.commit().await
            };
            run.await.map_err(|e: sqlx::Error| e.to_string())
        })
    }
}

/// A run's figures with its CPU counted per action rather than per request.
fn row(round: usize, side: &str, run: &Run) {
    let f = &run.figures;
    println!(
        "{round:>5}  {side:<24} {:>9.0}  {:>7.1}  {:>7.1}  {}",
        f.per_second * BATCH as f64,
        f.p50_ms,
        f.p99_ms,
        run.cpu.per_unit(run.calls * BATCH, &PROGRAMS)
    );
}

async fn api_key_ids(pool: &PgPool, orgs: &[Uuid]) -> Result<Vec<Uuid>, Failure> {
    let mut ids = Vec::with_capacity(orgs.len());
    for org in orgs {
        ids.push(
            sqlx::query_scalar("SELECT id FROM api_keys WHERE org_id = $1 LIMIT 1")
                .bind(org)
                .fetch_one(pool)
                .await?,
        );
    }
    Ok(ids)
}

pub async fn main(args: &[String]) -> Result<(), Failure> {
    if args.len() < 4 {
        return Err(
            "usage: usage_load batch PORTAL_URL DATABASE_URL [batches] [concurrency] [rounds] [orgs]"
                .into(),
        );
    }
    let (portal, database_url) = (&args[2], &args[3]);
    let batches: usize = args.get(4).map_or(Ok(60), |a| a.parse())?;
    let concurrency: usize = args.get(5).map_or(Ok(4), |a| a.parse())?;
    let rounds: usize = args.get(6).map_or(Ok(3), |a| a.parse())?;
    let org_count: usize = args.get(7).map_or(Ok(200), |a| a.parse())?;
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(concurrency as u32 + 2)
        .connect(database_url)
        .await?;
    super::single_tables(&pool).await?;
    let (many_ids, many_keys) = organizations(&pool, org_count, "batch-many").await?;
    let (hot_ids, hot_keys) = organizations(&pool, 1, "batch-hot").await?;
    let all: Vec<Uuid> = many_ids.iter().chain(&hot_ids).copied().collect();
    baseline_tables(&pool, &all).await?;
    let many_api = Arc::new(api_key_ids(&pool, &many_ids).await?);
    let hot_api = Arc::new(api_key_ids(&pool, &hot_ids).await?);
    let (many_ids, many_keys) = (Arc::new(many_ids), Arc::new(many_keys));
    let (hot_ids, hot_keys) = (Arc::new(hot_ids), Arc::new(hot_keys));
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .build()?;
    let url = format!("{portal}/api/v1/usage/batch");

    println!(
        "{batches} batches of {BATCH} actions per run, {concurrency} concurrent clients, {org_count} organizations (+1 hot), {rounds} interleaved rounds\n"
    );
    println!("round  run                        actions/s  p50 ms   p99 ms  CPU µs per action");
    let (mut many, mut hot, mut rates_many, mut rates_hot) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for round in 0..rounds {
        let portal_many = drive(
            batches,
            concurrency,
            portal_batch(
                client.clone(),
                url.clone(),
                many_keys.clone(),
                format!("bm{round}"),
            ),
        )
        .await?;
        let base_many = drive(
            batches,
            concurrency,
            baseline_batch(
                pool.clone(),
                many_ids.clone(),
                many_api.clone(),
                format!("bm{round}"),
            ),
        )
        .await?;
        let portal_hot = drive(
            batches,
            concurrency,
            portal_batch(
                client.clone(),
                url.clone(),
                hot_keys.clone(),
                format!("bh{round}"),
            ),
        )
        .await?;
        let base_hot = drive(
            batches,
            concurrency,
            baseline_batch(
                pool.clone(),
                hot_ids.clone(),
                hot_api.clone(),
                format!("bh{round}"),
            ),
        )
        .await?;
        row(round, "batch, many orgs", &portal_many);
        row(round, "baseline, many orgs", &base_many);
        row(round, "batch, hot org", &portal_hot);
        row(round, "baseline, hot org", &base_hot);
        let rate = |r: &Run| r.figures.per_second * BATCH as f64;
        many.push(rate(&portal_many) / rate(&base_many));
        hot.push(rate(&portal_hot) / rate(&base_hot));
        rates_many.push(rate(&portal_many));
        rates_hot.push(rate(&portal_hot));
    }

    let answered = (batches * BATCH * rounds * 2) as i64;
    let (stored, distinct): (i64, i64) = sqlx::query_as(
        "SELECT count(*), count(DISTINCT (org_id, idempotency_key)) FROM usage_actions
         WHERE org_id = ANY($1)",
    )
    .bind(&all)
    .fetch_one(&pool)
    .await?;
    let report = billing_portal::usage::reconcile::run(&pool, false).await?;
    let (m, m_lo, m_hi) = spread(&many);
    let (h, h_lo, h_hi) = spread(&hot);
    println!();
    println!(
        "batch, many orgs: median {:.0} actions/s; / baseline: median {m:.2} (min {m_lo:.2}, max {m_hi:.2}); target at least 0.6",
        median(rates_many)
    );
    println!(
        "batch, hot org:   median {:.0} actions/s; / baseline: median {h:.2} (min {h_lo:.2}, max {h_hi:.2}); target at least 0.6",
        median(rates_hot)
    );
    println!(
        "answered 200: {answered}; stored: {stored} ({distinct} distinct); reconciliation drift: {} balances, {} counters, {} daily",
        report.balances.len(),
        report.counters.len(),
        report.daily.len()
    );
    if stored != answered || distinct != answered || !report.clean() {
        return Err("an answered action is missing or doubled, or the ledger drifted".into());
    }
    println!(
        "{}",
        if m >= 0.6 && h >= 0.6 {
            "BATCH TARGETS MET"
        } else {
            "BATCH TARGETS MISSED"
        }
    );
    Ok(())
}
