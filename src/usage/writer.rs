//! Group commit for billable actions. Requests hand their actions to a writer task; the writer
//! takes everything queued, decides each action in arrival order under the organizations' row
//! locks, writes all of them with a handful of multi-row statements and one durable commit, and
//! only then answers. Organizations are sharded over the writers, so one organization's actions
//! always meet in the same queue (a hot organization batches instead of queueing on its lock);
//! the row lock still keeps several app instances correct.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use serde_json::Value;
use sqlx::{PgConnection, PgPool};
use tokio::sync::{mpsc, oneshot, Notify};
use tokio::task::JoinHandle;
use uuid::Uuid;

use super::consumption::{decide, included_remaining, Account, CountedAs, Decision, Refusal};
use super::entitlements::{terms, Counter};
use super::period::{self, Period};
use super::warnings::{crossed, Warning};
use crate::billing::catalog::{Catalog, Limit, Plan};
use crate::billing::subscription::{effective_plan, Stored};
use crate::db::refused_by_database;

/// Most actions one commit carries.
const MAX_BATCH_ACTIONS: usize = 2000;

/// One billable action, validated.
#[derive(Debug, Clone)]
pub struct NewAction {
    pub org_id: Uuid,
    pub api_key_id: Option<Uuid>,
    pub tier: String,
    pub idempotency_key: String,
    pub occurred_at: DateTime<Utc>,
    pub metadata: Option<Value>,
}

/// An action that was allowed (now, or the first time its key was seen).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    pub id: i64,
    pub tier: String,
    pub counted_as: CountedAs,
    pub millicredits: i64,
    pub included_remaining: Option<u64>,
    pub balance_after: i64,
    pub occurred_at: DateTime<Utc>,
    /// The key was seen before: nothing new was recorded.
    pub replayed: bool,
}

/// Why an action was not recorded, with what the answer needs to explain it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    pub refusal: Refusal,
    pub tier: String,
    pub included: Limit,
    pub weight_millicredits: Option<i64>,
    pub balance_millicredits: i64,
    pub soft_limit_actions: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Recorded(Recorded),
    Refused(Refused),
    /// The idempotency key was already used for an action of another tier.
    KeyReused {
        tier: String,
    },
    /// The organization or tier went away while the request waited.
    Gone {
        tier: String,
    },
}

struct Job {
    actions: Vec<NewAction>,
    done: oneshot::Sender<Result<Vec<Outcome>, String>>,
}

/// Told which organizations' balance or counters a commit changed.
pub type ChangedHook = Arc<dyn Fn(&[Uuid]) + Send + Sync>;

/// What the writer tells the rest of the portal after a commit.
#[derive(Clone, Default)]
pub struct Signals {
    /// Woken when an organization with auto top-up falls below its threshold.
    pub top_up: Arc<Notify>,
    /// Organizations whose balance or counters changed (the entitlements cache drops them).
    pub changed: Option<ChangedHook>,
}

#[derive(Clone)]
pub struct UsageWriter {
    shards: Arc<Vec<mpsc::Sender<Job>>>,
}

/// Settings of the writer.
#[derive(Clone)]
pub struct WriterConfig {
    pub writers: usize,
    pub warning_cooldown: Duration,
}

impl UsageWriter {
    pub fn start(
        pool: PgPool,
        catalog: Arc<Catalog>,
        config: WriterConfig,
        signals: Signals,
    ) -> (Self, Vec<JoinHandle<()>>) {
        let mut shards = Vec::new();
        let mut handles = Vec::new();
        for _ in 0..config.writers.max(1) {
            let (jobs, queue) = mpsc::channel::<Job>(8192);
            shards.push(jobs);
            handles.push(tokio::spawn(write_forever(
                pool.clone(),
                catalog.clone(),
                config.clone(),
                signals.clone(),
                queue,
            )));
        }
        (
            Self {
                shards: Arc::new(shards),
            },
            handles,
        )
    }

    /// Records the actions of one organization (one request) durably; the outcomes are in the
    /// same order.
    pub async fn record(
        &self,
        org_id: Uuid,
        actions: Vec<NewAction>,
    ) -> Result<Vec<Outcome>, String> {
        let shard = (org_id.as_u128() % self.shards.len() as u128) as usize;
        let (done, answer) = oneshot::channel();
        self.shards[shard]
            .send(Job { actions, done })
            .await
            .map_err(|_| "the usage writer stopped".to_owned())?;
        answer
            .await
            .map_err(|_| "the usage writer stopped".to_owned())?
    }
}

async fn write_forever(
    pool: PgPool,
    catalog: Arc<Catalog>,
    config: WriterConfig,
    signals: Signals,
    mut queue: mpsc::Receiver<Job>,
) {
    while let Some(first) = queue.recv().await {
        let mut count = first.actions.len();
        let mut jobs = vec![first];
        while count < MAX_BATCH_ACTIONS {
            match queue.try_recv() {
                Ok(job) => {
                    count += job.actions.len();
                    jobs.push(job);
                }
                Err(_) => break,
            }
        }
        let actions: Vec<&NewAction> = jobs.iter().flat_map(|j| j.actions.iter()).collect();
        let started = std::time::Instant::now();
        let written = write_batch_in_a_partition(&pool, &catalog, &config, &actions).await;
        metrics::histogram!("usage_writer_batch_actions").record(actions.len() as f64);
        metrics::histogram!("usage_writer_commit_seconds").record(started.elapsed().as_secs_f64());
        match written {
            Ok(written) => {
                signal(&signals, &written);
                let mut outcomes = written.outcomes.into_iter();
                for job in jobs {
                    let mine = outcomes.by_ref().take(job.actions.len()).collect();
                    let _ = job.done.send(Ok(mine));
                }
            }
            Err(e) if jobs.len() == 1 || !refused_by_database(&e) => {
                // Alone, or the database is unreachable: writing each again would only wait on
                // it once per request.
                tracing::error!(error = %e, actions = actions.len(), "recording usage failed");
                for job in jobs {
                    let _ = job.done.send(Err("recording usage failed".to_owned()));
                }
            }
            Err(e) => {
                // One request's bad action must not fail every request batched with it: the
                // batch rolled back as a whole, so each request is written again on its own
                // (decided afresh, so the answers stay exact) and only the failing ones fail.
                tracing::warn!(error = %e, requests = jobs.len(),
                    "a group commit of usage failed; writing its requests one by one");
                drop(actions);
                for job in jobs {
                    let mine: Vec<&NewAction> = job.actions.iter().collect();
                    let answer = match write_batch_in_a_partition(&pool, &catalog, &config, &mine)
                        .await
                    {
                        Ok(written) => {
                            signal(&signals, &written);
                            Ok(written.outcomes)
                        }
                        Err(e) => {
                            tracing::error!(error = %e, actions = mine.len(), org = ?job.actions.first().map(|a| a.org_id),
                                "recording usage failed");
                            Err("recording usage failed".to_owned())
                        }
                    };
                    let _ = job.done.send(answer);
                }
            }
        }
    }
}

/// Writes a batch; when this month has no partition yet (the upkeep job has not run, or its
/// clock is ahead of ours), makes it and writes the batch again.
async fn write_batch_in_a_partition(
    pool: &PgPool,
    catalog: &Catalog,
    config: &WriterConfig,
    actions: &[&NewAction],
) -> sqlx::Result<Written> {
    let now = Utc::now();
    match write_batch(pool, catalog, config, actions, now).await {
        Err(e) if super::retention::no_partition(&e) => {
            tracing::warn!(month = %now, "no usage partition for this month; making it now");
            super::retention::ensure_partition(pool, now).await?;
            write_batch(pool, catalog, config, actions, now).await
        }
        other => other,
    }
}

/// Tells the rest of the portal what a commit changed.
fn signal(signals: &Signals, written: &Written) {
    if let Some(changed) = &signals.changed {
        changed(&written.orgs);
    }
    if written.top_up_due {
        signals.top_up.notify_one();
    }
}

/// An organization's terms for this batch, read under its row lock.
struct OrgState<'c> {
    plan: &'c Plan,
    period: Period,
    account: Account,
    auto_top_up_below: Option<i64>,
}

struct Written {
    outcomes: Vec<Outcome>,
    orgs: Vec<Uuid>,
    top_up_due: bool,
}

#[derive(sqlx::FromRow)]
struct TermsRow {
    org_id: Uuid,
    balance_millicredits: i64,
    unsettled_overage: i32,
    auto_top_up: bool,
    top_up_below_credits: i64,
    #[sqlx(flatten)]
    subscription: SubscriptionColumns,
}

/// A subscription row read through a LEFT JOIN (every column may be null).
#[derive(sqlx::FromRow, Default)]
pub struct SubscriptionColumns {
    pub stripe_subscription_id: Option<String>,
    pub plan_key: Option<String>,
    pub status: Option<String>,
    pub trial_end: Option<DateTime<Utc>>,
    pub current_period_start: Option<DateTime<Utc>>,
    pub current_period_end: Option<DateTime<Utc>>,
    pub cancel_at_period_end: Option<bool>,
    pub past_due_since: Option<DateTime<Utc>>,
    pub kept_plan_key: Option<String>,
    pub kept_until: Option<DateTime<Utc>>,
}

impl SubscriptionColumns {
    pub fn into_stored(self) -> Option<Stored> {
        Some(Stored {
            stripe_subscription_id: self.stripe_subscription_id?,
            plan_key: self.plan_key?,
            status: self.status?,
            trial_end: self.trial_end,
            current_period_start: self.current_period_start,
            current_period_end: self.current_period_end,
            cancel_at_period_end: self.cancel_at_period_end.unwrap_or(false),
            past_due_since: self.past_due_since,
            kept: self.kept_plan_key.zip(self.kept_until),
        })
    }
}

/// The subscription columns for a query joining `subscriptions AS s`.
pub const SUBSCRIPTION_COLUMNS: &str = "s.stripe_subscription_id, s.plan_key, s.status, \
    s.trial_end, s.current_period_start, s.current_period_end, s.cancel_at_period_end, \
    s.past_due_since, s.kept_plan_key, s.kept_until";

async fn write_batch(
    pool: &PgPool,
    catalog: &Catalog,
    config: &WriterConfig,
    actions: &[&NewAction],
    now: DateTime<Utc>,
) -> sqlx::Result<Written> {
    let mut orgs: Vec<Uuid> = actions.iter().map(|a| a.org_id).collect();
    orgs.sort();
    orgs.dedup();
    let mut tx = pool.begin().await?;
    // In id order, so two writers (or instances) never wait on each other in a cycle.
    let rows: Vec<TermsRow> = sqlx::query_as(&format!(
        "SELECT c.org_id, c.balance_millicredits, c.unsettled_overage,
                c.auto_top_up, c.top_up_below_credits, {SUBSCRIPTION_COLUMNS}
         FROM credit_accounts c LEFT JOIN subscriptions s ON s.org_id = c.org_id
         WHERE c.org_id = ANY($1) ORDER BY c.org_id FOR UPDATE OF c"
    ))
    .bind(&orgs)
    .fetch_all(&mut *tx)
    .await?;
    let mut states: HashMap<Uuid, OrgState<'_>> = rows
        .into_iter()
        .map(|r| {
            let stored = r.subscription.into_stored();
            let state = OrgState {
                plan: effective_plan(catalog, stored.as_ref(), now),
                period: period::current(stored.as_ref(), now),
                account: Account {
                    balance_millicredits: r.balance_millicredits,
                    unsettled_overage: r.unsettled_overage.max(0) as u32,
                },
                auto_top_up_below: r
                    .auto_top_up
                    .then_some(r.top_up_below_credits * super::credits::MILLI),
            };
            (r.org_id, state)
        })
        .collect();

    let earlier = earlier_actions(&mut tx, actions).await?;
    let mut counters = current_counters(&mut tx, &states).await?;
    let base_counters = counters.clone();
    let balances_before: HashMap<Uuid, Account> =
        states.iter().map(|(id, s)| (*id, s.account)).collect();

    let mut outcomes: Vec<Outcome> = Vec::with_capacity(actions.len());
    let mut seen: HashMap<(Uuid, &str), usize> = HashMap::new();
    let mut fresh: Vec<(usize, &NewAction)> = Vec::new();
    let mut copies: Vec<(usize, usize)> = Vec::new();
    let mut warnings: BTreeMap<(Uuid, Warning, String), ()> = BTreeMap::new();
    for action in actions {
        let key = (action.org_id, action.idempotency_key.as_str());
        if let Some(first) = seen.get(&key) {
            // Its id is known once the first one is inserted.
            copies.push((outcomes.len(), *first));
            outcomes.push(replay(outcomes[*first].clone(), &action.tier));
            continue;
        }
        if let Some(previous) = earlier
            .get(&(action.org_id, action.idempotency_key.clone()))
            .cloned()
        {
            outcomes.push(replay(previous, &action.tier));
            continue;
        }
        let Some(state) = states.get_mut(&action.org_id) else {
            // The organization was deleted while the request waited.
            outcomes.push(Outcome::Gone {
                tier: action.tier.clone(),
            });
            continue;
        };
        let Some(t) = terms(catalog, state.plan, &action.tier) else {
            outcomes.push(Outcome::Gone {
                tier: action.tier.clone(),
            });
            continue;
        };
        let counter = counters
            .entry((action.org_id, action.tier.clone()))
            .or_default();
        let decision = decide(t, counter.included, &state.account);
        match decision {
            Decision::Allowed {
                counted_as,
                millicredits,
            } => {
                let before = counter.included;
                match counted_as {
                    CountedAs::Included => counter.included += 1,
                    CountedAs::Credits => counter.credits += 1,
                    CountedAs::Overage => counter.overage += 1,
                }
                for w in crossed(t.included, before, counter.included) {
                    warnings.insert((action.org_id, w, action.tier.clone()), ());
                }
                if counted_as == CountedAs::Overage {
                    warnings.insert((action.org_id, Warning::Overage, action.tier.clone()), ());
                }
                state.account.consume(decision);
                seen.insert(key, outcomes.len());
                fresh.push((outcomes.len(), action));
                outcomes.push(Outcome::Recorded(Recorded {
                    id: 0,
                    tier: action.tier.clone(),
                    counted_as,
                    millicredits,
                    included_remaining: included_remaining(t.included, counter.included),
                    balance_after: state.account.balance_millicredits,
                    occurred_at: action.occurred_at,
                    replayed: false,
                }));
            }
            Decision::Refused(refusal) => {
                if refusal == Refusal::OutOfCredits {
                    warnings.insert((action.org_id, Warning::Exhausted, action.tier.clone()), ());
                }
                outcomes.push(Outcome::Refused(Refused {
                    refusal,
                    tier: action.tier.clone(),
                    included: t.included,
                    weight_millicredits: t.weight_millicredits,
                    balance_millicredits: state.account.balance_millicredits,
                    soft_limit_actions: t.soft_limit_actions,
                }))
            }
        }
    }

    if !fresh.is_empty() {
        let ids = insert_actions(&mut tx, &states, &fresh, &outcomes, now).await?;
        for ((index, _), id) in fresh.iter().zip(ids) {
            if let Outcome::Recorded(r) = &mut outcomes[*index] {
                r.id = id;
            }
        }
        for (copy, first) in copies {
            if let (Outcome::Recorded(original), Outcome::Recorded(r)) =
                (outcomes[first].clone(), &mut outcomes[copy])
            {
                r.id = original.id;
            }
        }
        save_counters(&mut tx, &states, &base_counters, &counters).await?;
        save_accounts(&mut tx, &states, &balances_before).await?;
    }
    // Refusals record no action but may raise "credits exhausted".
    if !warnings.is_empty() {
        raise_warnings(
            &mut tx,
            catalog,
            &states,
            warnings.into_keys().collect(),
            config,
        )
        .await?;
    }
    tx.commit().await?;
    let top_up_due = states.values().any(|s| {
        s.auto_top_up_below
            .is_some_and(|below| s.account.balance_millicredits < below)
    });
    Ok(Written {
        outcomes,
        orgs,
        top_up_due,
    })
}

/// The answer for a key seen before: the same result, marked as a replay, unless the key was
/// used for another tier.
fn replay(previous: Outcome, tier: &str) -> Outcome {
    match previous {
        Outcome::Recorded(r) if r.tier == tier => Outcome::Recorded(Recorded {
            replayed: true,
            ..r
        }),
        Outcome::Recorded(_) => Outcome::KeyReused {
            tier: tier.to_owned(),
        },
        other => other,
    }
}

type Earlier = HashMap<(Uuid, String), Outcome>;

#[derive(sqlx::FromRow)]
struct EarlierRow {
    org_id: Uuid,
    idempotency_key: String,
    id: i64,
    tier: String,
    counted_as: String,
    millicredits: i64,
    included_remaining: Option<i64>,
    balance_after: i64,
    occurred_at: DateTime<Utc>,
}

async fn earlier_actions(tx: &mut PgConnection, actions: &[&NewAction]) -> sqlx::Result<Earlier> {
    let orgs: Vec<Uuid> = actions.iter().map(|a| a.org_id).collect();
    let keys: Vec<&str> = actions.iter().map(|a| a.idempotency_key.as_str()).collect();
    // The keys first (one index probe each); usually none was seen, and the partitions are
    // not touched at all.
    let seen: Vec<(i64, DateTime<Utc>)> = sqlx::query_as(
        "SELECT k.action_id, k.recorded_at FROM usage_action_keys k
         JOIN UNNEST($1::uuid[], $2::text[]) AS q(org_id, idempotency_key)
           ON k.org_id = q.org_id AND k.idempotency_key = q.idempotency_key",
    )
    .bind(&orgs)
    .bind(&keys)
    .fetch_all(&mut *tx)
    .await?;
    if seen.is_empty() {
        return Ok(Earlier::new());
    }
    let (ids, times): (Vec<i64>, Vec<DateTime<Utc>>) = seen.into_iter().unzip();
    let rows: Vec<EarlierRow> = sqlx::query_as(
        "SELECT a.org_id, a.idempotency_key, a.id, a.tier, a.counted_as, a.millicredits,
                a.included_remaining, a.balance_after, a.occurred_at
         FROM usage_actions a
         JOIN UNNEST($1::bigint[], $2::timestamptz[]) AS k(id, recorded_at)
           ON a.id = k.id AND a.recorded_at = k.recorded_at",
    )
    .bind(&ids)
    .bind(&times)
    .fetch_all(tx)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| {
            let outcome = Outcome::Recorded(Recorded {
                id: r.id,
                tier: r.tier,
                counted_as: CountedAs::parse(&r.counted_as).unwrap_or(CountedAs::Included),
                millicredits: r.millicredits,
                included_remaining: r.included_remaining.map(|n| n.max(0) as u64),
                balance_after: r.balance_after,
                occurred_at: r.occurred_at,
                replayed: true,
            });
            ((r.org_id, r.idempotency_key), outcome)
        })
        .collect())
}

type Counters = HashMap<(Uuid, String), Counter>;

async fn current_counters(
    tx: &mut PgConnection,
    states: &HashMap<Uuid, OrgState<'_>>,
) -> sqlx::Result<Counters> {
    let (orgs, starts): (Vec<Uuid>, Vec<DateTime<Utc>>) =
        states.iter().map(|(id, s)| (*id, s.period.start)).unzip();
    let rows: Vec<(Uuid, String, i64, i64, i64)> = sqlx::query_as(
        "SELECT c.org_id, c.tier, c.included, c.credits, c.overage
         FROM usage_counters c
         JOIN UNNEST($1::uuid[], $2::timestamptz[]) AS p(org_id, period_start)
           ON c.org_id = p.org_id AND c.period_start = p.period_start",
    )
    .bind(&orgs)
    .bind(&starts)
    .fetch_all(tx)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(org, tier, included, credits, overage)| {
            let counter = Counter {
                included: included.max(0) as u64,
                credits: credits.max(0) as u64,
                overage: overage.max(0) as u64,
            };
            ((org, tier), counter)
        })
        .collect())
}

async fn insert_actions(
    tx: &mut PgConnection,
    states: &HashMap<Uuid, OrgState<'_>>,
    fresh: &[(usize, &NewAction)],
    outcomes: &[Outcome],
    now: DateTime<Utc>,
) -> sqlx::Result<Vec<i64>> {
    let n = fresh.len();
    let mut orgs = Vec::with_capacity(n);
    let mut keys = Vec::with_capacity(n);
    let mut tiers = Vec::with_capacity(n);
    let mut counted = Vec::with_capacity(n);
    let mut amounts = Vec::with_capacity(n);
    let mut periods = Vec::with_capacity(n);
    let mut occurred = Vec::with_capacity(n);
    let mut remaining = Vec::with_capacity(n);
    let mut balances = Vec::with_capacity(n);
    let mut metadata = Vec::with_capacity(n);
    let mut api_keys = Vec::with_capacity(n);
    for (index, action) in fresh {
        let Outcome::Recorded(r) = &outcomes[*index] else {
            continue;
        };
        orgs.push(action.org_id);
        keys.push(action.idempotency_key.as_str());
        tiers.push(action.tier.as_str());
        counted.push(r.counted_as.as_str());
        amounts.push(r.millicredits);
        periods.push(states.get(&action.org_id).map(|s| s.period.start));
        occurred.push(action.occurred_at);
        remaining.push(r.included_remaining.map(|n| n as i64));
        balances.push(r.balance_after);
        metadata.push(action.metadata.as_ref().map(Value::to_string));
        api_keys.push(action.api_key_id);
    }
    // One statement: the actions, their idempotency keys (unique across every partition) and
    // the per-day aggregates that outlive the raw rows. Each row takes its id in `t` (a CTE
    // used three times is computed once), so the keys need no RETURNING joined back; ordinality
    // keeps the ids in the order of the arrays.
    let ids: Vec<(i64,)> = sqlx::query_as(
        "WITH t AS (
             SELECT nextval('usage_actions_id_seq') AS id, *
             FROM UNNEST($1::uuid[], $2::text[], $3::text[], $4::text[], $5::bigint[],
                         $6::timestamptz[], $7::timestamptz[], $8::bigint[], $9::bigint[],
                         $10::text[], $11::uuid[]) WITH ORDINALITY
                  AS u(org_id, key, tier, counted, amount, period, occurred, remaining, balance,
                       meta, api_key, n)
         ), inserted AS (
             INSERT INTO usage_actions (id, org_id, idempotency_key, tier, counted_as,
                 millicredits, period_start, occurred_at, recorded_at, included_remaining,
                 balance_after, metadata, api_key_id)
             SELECT id, org_id, key, tier, counted, amount, period, occurred, $12::timestamptz,
                    remaining, balance, meta::jsonb, api_key
             FROM t
         ), keys AS (
             INSERT INTO usage_action_keys (org_id, idempotency_key, action_id, recorded_at)
             SELECT org_id, key, id, $12::timestamptz FROM t
         ), daily AS (
             INSERT INTO usage_daily AS d (org_id, recorded_day, occurred_day, period_start, tier,
                 included, credits, overage, millicredits, debits, last_recorded_at)
             SELECT org_id, ($12::timestamptz AT TIME ZONE 'UTC')::date,
                    (occurred AT TIME ZONE 'UTC')::date, period, tier,
                    count(*) FILTER (WHERE counted = 'included'),
                    count(*) FILTER (WHERE counted = 'credits'),
                    count(*) FILTER (WHERE counted = 'overage'),
                    sum(amount), count(*) FILTER (WHERE amount > 0), $12::timestamptz
             FROM t GROUP BY 1, 2, 3, 4, 5
             ON CONFLICT (org_id, recorded_day, occurred_day, period_start, tier) DO UPDATE SET
                 included = d.included + EXCLUDED.included,
                 credits = d.credits + EXCLUDED.credits,
                 overage = d.overage + EXCLUDED.overage,
                 millicredits = d.millicredits + EXCLUDED.millicredits,
                 debits = d.debits + EXCLUDED.debits,
                 last_recorded_at = greatest(d.last_recorded_at, EXCLUDED.last_recorded_at)
         )
         SELECT id FROM t ORDER BY n",
    )
    .bind(&orgs)
    .bind(&keys)
    .bind(&tiers)
    .bind(&counted)
    .bind(&amounts)
    .bind(&periods)
    .bind(&occurred)
    .bind(&remaining)
    .bind(&balances)
    .bind(&metadata)
    .bind(&api_keys)
    .bind(now)
    .fetch_all(tx)
    .await?;
    Ok(ids.into_iter().map(|(id,)| id).collect())
}

async fn save_counters(
    tx: &mut PgConnection,
    states: &HashMap<Uuid, OrgState<'_>>,
    before: &Counters,
    after: &Counters,
) -> sqlx::Result<()> {
    let mut orgs = Vec::new();
    let mut periods = Vec::new();
    let mut tiers = Vec::new();
    let (mut included, mut credits, mut overage) = (Vec::new(), Vec::new(), Vec::new());
    for ((org, tier), counter) in after {
        let old = before
            .get(&(*org, tier.clone()))
            .copied()
            .unwrap_or_default();
        if *counter == old {
            continue;
        }
        let Some(state) = states.get(org) else {
            continue;
        };
        orgs.push(*org);
        periods.push(state.period.start);
        tiers.push(tier.as_str());
        included.push((counter.included - old.included) as i64);
        credits.push((counter.credits - old.credits) as i64);
        overage.push((counter.overage - old.overage) as i64);
    }
    sqlx::query(
        "INSERT INTO usage_counters AS c (org_id, period_start, tier, included, credits, overage)
         SELECT * FROM UNNEST($1::uuid[], $2::timestamptz[], $3::text[], $4::bigint[],
                              $5::bigint[], $6::bigint[])
         ON CONFLICT (org_id, period_start, tier) DO UPDATE SET
             included = c.included + EXCLUDED.included,
             credits = c.credits + EXCLUDED.credits,
             overage = c.overage + EXCLUDED.overage",
    )
    .bind(&orgs)
    .bind(&periods)
    .bind(&tiers)
    .bind(&included)
    .bind(&credits)
    .bind(&overage)
    .execute(tx)
    .await?;
    Ok(())
}

async fn save_accounts(
    tx: &mut PgConnection,
    states: &HashMap<Uuid, OrgState<'_>>,
    before: &HashMap<Uuid, Account>,
) -> sqlx::Result<()> {
    let changed: Vec<(Uuid, &Account)> = states
        .iter()
        .filter(|(id, s)| before.get(id) != Some(&s.account))
        .map(|(id, s)| (*id, &s.account))
        .collect();
    if changed.is_empty() {
        return Ok(());
    }
    let orgs: Vec<Uuid> = changed.iter().map(|(id, _)| *id).collect();
    let balances: Vec<i64> = changed
        .iter()
        .map(|(_, a)| a.balance_millicredits)
        .collect();
    let overage: Vec<i32> = changed
        .iter()
        .map(|(_, a)| a.unsettled_overage as i32)
        .collect();
    sqlx::query(
        "UPDATE credit_accounts AS c
         SET balance_millicredits = u.balance, unsettled_overage = u.overage, updated_at = now()
         FROM UNNEST($1::uuid[], $2::bigint[], $3::integer[]) AS u(org_id, balance, overage)
         WHERE c.org_id = u.org_id",
    )
    .bind(&orgs)
    .bind(&balances)
    .bind(&overage)
    .execute(tx)
    .await?;
    Ok(())
}

/// Records the crossed warnings whose cooldown has passed and leaves the owners a message for
/// each (the mailer sends them).
async fn raise_warnings(
    tx: &mut PgConnection,
    catalog: &Catalog,
    states: &HashMap<Uuid, OrgState<'_>>,
    warnings: Vec<(Uuid, Warning, String)>,
    config: &WriterConfig,
) -> sqlx::Result<()> {
    let orgs: Vec<Uuid> = warnings.iter().map(|w| w.0).collect();
    let kinds: Vec<&str> = warnings.iter().map(|w| w.1.as_str()).collect();
    let tiers: Vec<&str> = warnings.iter().map(|w| w.2.as_str()).collect();
    let messages: Vec<String> = warnings
        .iter()
        .map(|(org, kind, tier)| {
            let included = included_of(states, org, tier);
            kind.message(
                catalog.meter_name(tier),
                included,
                catalog.credit_pack.is_some(),
            )
        })
        .collect();
    let raised = sqlx::query_as(
        "WITH due AS (
             INSERT INTO usage_warnings AS w (org_id, kind, tier, last_sent_at)
             SELECT org_id, kind, tier, now()
             FROM UNNEST($1::uuid[], $2::text[], $3::text[]) AS t(org_id, kind, tier)
             ON CONFLICT (org_id, kind, tier) DO UPDATE SET last_sent_at = now()
                 WHERE w.last_sent_at <= now() - make_interval(secs => $5)
             RETURNING org_id, kind, tier
         )
         , shown AS (
             INSERT INTO notifications (org_id, kind, message)
             SELECT t.org_id, t.kind, t.message
             FROM UNNEST($1::uuid[], $2::text[], $3::text[], $4::text[]) AS t(org_id, kind, tier, message)
             JOIN due d ON d.org_id = t.org_id AND d.kind = t.kind AND d.tier = t.tier
             RETURNING id, org_id, kind, message
         )
         -- Which tier each message was for (its text names the meter).
         SELECT DISTINCT ON (s.id) s.id, s.org_id, s.kind, t.tier
         FROM shown s
         JOIN UNNEST($1::uuid[], $2::text[], $3::text[], $4::text[]) AS t(org_id, kind, tier, message)
           ON t.org_id = s.org_id AND t.kind = s.kind AND t.message = s.message",
    )
    .bind(&orgs)
    .bind(&kinds)
    .bind(&tiers)
    .bind(&messages)
    .bind(config.warning_cooldown.num_seconds() as f64)
    .fetch_all(&mut *tx)
    .await?;
    // The e-mail of each warning raised, in the same transaction; the dashboard message's id is
    // the cause (one per cooldown window).
    let raised: Vec<(i64, Uuid, String, String)> = raised;
    let causes: Vec<String> = raised.iter().map(|r| format!("warning-{}", r.0)).collect();
    let notices: Vec<crate::notify::Notice> = raised
        .iter()
        .zip(&causes)
        .filter_map(|((_, org, kind, tier), cause)| {
            let kind = Warning::parse(kind).map(notice_kind)?;
            let included = included_of(states, org, tier);
            Some(crate::notify::Notice {
                kind,
                org_id: Some(*org),
                user_id: None,
                cause,
                values: serde_json::json!({
                    "meter": catalog.meter_name(tier),
                    "included": included,
                }),
            })
        })
        .collect();
    crate::notify::enqueue_all(&mut *tx, &notices).await?;
    Ok(())
}

/// The included count of `tier` on the organization's plan (0 when unlimited or absent), as the
/// warning's text and e-mail show it.
fn included_of(states: &HashMap<Uuid, OrgState<'_>>, org: &Uuid, tier: &str) -> u64 {
    states
        .get(org)
        .and_then(|s| s.plan.limits.get(tier))
        .map_or(0, |l| match l {
            Limit::Count(n) => *n,
            Limit::Unlimited => 0,
        })
}

/// The e-mail sent for a usage warning.
fn notice_kind(w: Warning) -> crate::notify::kinds::Kind {
    use crate::notify::kinds::Kind;
    match w {
        Warning::NearLimit => Kind::Usage80,
        Warning::LimitReached => Kind::Usage100,
        Warning::Overage => Kind::Overage,
        Warning::Exhausted => Kind::CreditsExhausted,
    }
}
