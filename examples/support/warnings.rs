//! The warnings part of `scripts/bench-usage` (`usage_load warnings ...`): does a usage call
//! that raises a warning (and so writes a dashboard message and an e-mail to the outbox) answer
//! as fast as one that does not?
//!
//! Every measured call goes to its own fresh organization on the Free plan (10 included `small`
//! actions) whose owner receives mail. Unmeasured calls first bring a *warned* organization to 7
//! actions and a *plain* one to 4: the warned one's 8th action crosses 80% of the included ones
//! (a `usage_80` warning, its dashboard message and its e-mail), the plain one's 5th crosses
//! nothing. Both are counted as included, so the two calls differ only in the warning.
//!
//! Three runs of the same size per round, in rotating order:
//! - *mixed*: one call in ten raises a warning, as warnings come among ordinary traffic; the
//!   warned calls' latencies against the others' in the same run answer "as fast";
//! - *none*: no call raises one (the mixed run's rate against this one's is the cost);
//! - *all*: every call raises one, the worst case, shown for what it costs.
//!
//! Afterwards it checks that every warned organization got exactly one warning e-mail and the
//! plain ones none, and waits for the mail worker to send them all (to the mail catcher when no
//! SMTP is configured).

use std::sync::Arc;
use std::time::{Duration, Instant};

use sqlx::postgres::PgPoolOptions;
use sqlx::PgPool;
use uuid::Uuid;

use super::support::{percentile, spread};
use super::{drive, organizations, portal_usage, row, single_tables, Failure, Run};

/// Included `small` actions already used before the measured call.
const WARNED_BEFORE: usize = 7;
const PLAIN_BEFORE: usize = 4;
/// In the mixed run, call `i` raises a warning when `i % WARNED_EVERY == 0`.
const WARNED_EVERY: usize = 10;

/// Gives each organization an owner with an address (the warning e-mail's recipient).
async fn owners(pool: &PgPool, orgs: &[Uuid], tag: &str) -> Result<(), Failure> {
    let users: Vec<Uuid> = orgs.iter().map(|_| Uuid::new_v4()).collect();
    let emails: Vec<String> = users
        .iter()
        .map(|u| format!("owner-{tag}-{}@bench.example", u.simple()))
        .collect();
    // Nobody logs in: the hash is never checked.
    sqlx::query(
        "INSERT INTO users (id, email, password_hash)
         SELECT id, email, 'benchmark' FROM UNNEST($1::uuid[], $2::text[]) AS t(id, email)",
    )
    .bind(&users)
    .bind(&emails)
    .execute(pool)
    .await?;
    sqlx::query(
        "INSERT INTO memberships (user_id, org_id, role)
         SELECT u, o, 'owner' FROM UNNEST($1::uuid[], $2::uuid[]) AS t(u, o)",
    )
    .bind(&users)
    .bind(orgs)
    .execute(pool)
    .await?;
    Ok(())
}

/// A set of fresh organizations with owners and `before` included actions used.
async fn prepared(
    pool: &PgPool,
    client: &reqwest::Client,
    url: &str,
    n: usize,
    concurrency: usize,
    tag: &str,
    before: usize,
) -> Result<(Vec<Uuid>, Arc<Vec<String>>), Failure> {
    let (ids, keys) = organizations(pool, n, tag).await?;
    owners(pool, &ids, tag).await?;
    let keys = Arc::new(keys);
    drive(
        n * before,
        concurrency,
        portal_usage(
            client.clone(),
            url.to_string(),
            keys.clone(),
            format!("{tag}-before"),
        ),
    )
    .await?;
    Ok((ids, keys))
}

/// How many warning e-mails of `kind` the organizations got, and how many of them are sent.
async fn mailed(pool: &PgPool, orgs: &[Uuid], kind: &str) -> Result<(i64, i64), Failure> {
    Ok(sqlx::query_as(
        "SELECT count(*), count(*) FILTER (WHERE status = 'sent')
         FROM notification_outbox WHERE org_id = ANY($1) AND kind = $2",
    )
    .bind(orgs)
    .bind(kind)
    .fetch_one(pool)
    .await?)
}

/// Latency percentiles of the calls of `run` that `pick` selects.
struct Latencies {
    p50_ms: f64,
    p99_ms: f64,
}

fn part(run: &Run, pick: impl Fn(usize) -> bool) -> Latencies {
    let mut picked: Vec<Duration> = run
        .latencies
        .iter()
        .filter(|(i, _)| pick(*i))
        .map(|(_, d)| *d)
        .collect();
    picked.sort();
    Latencies {
        p50_ms: percentile(&picked, 0.50),
        p99_ms: percentile(&picked, 0.99),
    }
}

/// Organizations for one round's three runs: each run's keys in call order, and the warned ones.
struct Round {
    mixed: Arc<Vec<String>>,
    none: Arc<Vec<String>>,
    all: Arc<Vec<String>>,
    warned: Vec<Uuid>,
    plain: Vec<Uuid>,
}

async fn round_orgs(
    pool: &PgPool,
    client: &reqwest::Client,
    url: &str,
    calls: usize,
    concurrency: usize,
    round: usize,
) -> Result<Round, Failure> {
    let few = calls.div_ceil(WARNED_EVERY);
    let prepare = |n, tag: String, before| async move {
        prepared(pool, client, url, n, concurrency, &tag, before).await
    };
    let (mixed_warned, mixed_warned_keys) =
        prepare(few, format!("mw{round}"), WARNED_BEFORE).await?;
    let (mixed_plain, mixed_plain_keys) =
        prepare(calls - few, format!("mp{round}"), PLAIN_BEFORE).await?;
    let (none, none_keys) = prepare(calls, format!("n{round}"), PLAIN_BEFORE).await?;
    let (all, all_keys) = prepare(calls, format!("a{round}"), WARNED_BEFORE).await?;
    let (mut w, mut p) = (mixed_warned_keys.iter(), mixed_plain_keys.iter());
    let mixed = (0..calls)
        .filter_map(|i| {
            if i % WARNED_EVERY == 0 {
                w.next()
            } else {
                p.next()
            }
        })
        .cloned()
        .collect();
    Ok(Round {
        mixed: Arc::new(mixed),
        none: none_keys,
        all: all_keys,
        warned: mixed_warned.into_iter().chain(all).collect(),
        plain: mixed_plain.into_iter().chain(none).collect(),
    })
}

/// Waits until the mail worker has nothing left to send (at most a minute).
async fn drained(pool: &PgPool) -> Result<(), Failure> {
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(60) {
        let pending: i64 =
            sqlx::query_scalar("SELECT count(*) FROM notification_outbox WHERE status = 'pending'")
                .fetch_one(pool)
                .await?;
        if pending == 0 {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err("the mail worker did not catch up within a minute".into())
}

/// `usage_load warnings PORTAL_URL DATABASE_URL [calls] [concurrency] [rounds]`
pub async fn main(args: &[String]) -> Result<(), Failure> {
    if args.len() < 4 {
        return Err(
            "usage: usage_load warnings PORTAL_URL DATABASE_URL [calls] [concurrency] [rounds]"
                .into(),
        );
    }
    let (portal, database_url) = (&args[2], &args[3]);
    let calls: usize = args.get(4).map_or(Ok(2000), |a| a.parse())?;
    let concurrency: usize = args.get(5).map_or(Ok(64), |a| a.parse())?;
    let rounds: usize = args.get(6).map_or(Ok(3), |a| a.parse())?;
    let pool = PgPoolOptions::new()
        .max_connections(8)
        .connect(database_url)
        .await?;
    single_tables(&pool).await?;
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .build()?;
    let url = format!("{portal}/api/v1/usage");
    println!(
        "{calls} calls per run, each to its own organization, {concurrency} concurrent clients, {rounds} interleaved rounds\n"
    );
    println!("round  run                      per sec   p50 ms   p99 ms  CPU µs per call");
    let (mut cost, mut worst, mut p50s, mut p99s) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let (mut warned_orgs, mut plain_orgs) = (Vec::new(), Vec::new());
    for round in 0..rounds {
        let orgs = round_orgs(&pool, &client, &url, calls, concurrency, round).await?;
        let run = |keys: Arc<Vec<String>>, tag: &'static str| {
            drive(
                calls,
                concurrency,
                portal_usage(client.clone(), url.clone(), keys, format!("{tag}{round}")),
            )
        };
        let mut runs: Vec<(&str, Option<Run>)> =
            vec![("mixed", None), ("none", None), ("all", None)];
        runs.rotate_left(round % 3);
        for (tag, slot) in &mut runs {
            // Each run pays for the mail it causes, not for the last run's.
            drained(&pool).await?;
            let keys = match *tag {
                "mixed" => orgs.mixed.clone(),
                "none" => orgs.none.clone(),
                _ => orgs.all.clone(),
            };
            *slot = Some(run(keys, tag).await?);
        }
        let take = |name: &str| {
            runs.iter()
                .find(|(t, _)| *t == name)
                .and_then(|(_, r)| r.as_ref())
        };
        let (Some(mixed), Some(none), Some(all)) = (take("mixed"), take("none"), take("all"))
        else {
            return Err("a run is missing".into());
        };
        row(round, "1 in 10 raises one", mixed);
        row(round, "none raises one", none);
        row(round, "every call raises one", all);
        let warned = part(mixed, |i| i % WARNED_EVERY == 0);
        let others = part(mixed, |i| i % WARNED_EVERY != 0);
        println!(
            "       in the mixed run: the calls that raise one p50 {:.2} ms, p99 {:.2} ms; the others p50 {:.2} ms, p99 {:.2} ms",
            warned.p50_ms, warned.p99_ms, others.p50_ms, others.p99_ms
        );
        p50s.push(warned.p50_ms / others.p50_ms);
        p99s.push(warned.p99_ms / others.p99_ms);
        cost.push(mixed.figures.per_second / none.figures.per_second);
        worst.push(all.figures.per_second / none.figures.per_second);
        warned_orgs.extend(orgs.warned);
        plain_orgs.extend(orgs.plain);
    }

    let (queued, _) = mailed(&pool, &warned_orgs, "usage_80").await?;
    let (stray, _) = mailed(&pool, &plain_orgs, "usage_80").await?;
    let expected = warned_orgs.len() as i64;
    let waited = Instant::now();
    let mut sent = 0;
    while waited.elapsed() < Duration::from_secs(120) {
        sent = mailed(&pool, &warned_orgs, "usage_80").await?.1;
        if sent >= expected {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (p50, p50_lo, p50_hi) = spread(&p50s);
    let (p99, p99_lo, p99_hi) = spread(&p99s);
    let (c, c_lo, c_hi) = spread(&cost);
    let (w, w_lo, w_hi) = spread(&worst);
    println!();
    println!(
        "a call that raises a warning / one that raises none, in the same mixed run: p50 median {p50:.2} (min {p50_lo:.2}, max {p50_hi:.2}), p99 median {p99:.2} (min {p99_lo:.2}, max {p99_hi:.2}); target: p50 and p99 at most 1.1"
    );
    println!(
        "rate, 1 in 10 raising one / none raising one (what warnings cost the stream, no target): median {c:.2} (min {c_lo:.2}, max {c_hi:.2})"
    );
    println!(
        "rate, every call raising one / none raising one (worst case, no target): median {w:.2} (min {w_lo:.2}, max {w_hi:.2})"
    );
    println!(
        "warning e-mails: {queued} queued for {expected} warned organizations, {stray} for the plain ones; {sent} sent by the worker, the last {:.1} s after the last run",
        waited.elapsed().as_secs_f64()
    );
    if queued != expected || stray != 0 || sent != expected {
        return Err("a warning e-mail is missing, doubled, unsent or sent for no warning".into());
    }
    let met = p50 <= 1.1 && p99 <= 1.1;
    println!("{}", if met { "TARGETS MET" } else { "TARGETS MISSED" });
    Ok(())
}
