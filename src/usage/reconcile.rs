//! Reconciliation: proves that every cached balance equals its ledger (entries minus the credits
//! actions took), every usage counter equals the actions behind it, and every per-day aggregate
//! equals the raw actions it sums up while those are kept; reports any drift and, when asked,
//! repairs it under the same row locks the writers take. Each check is one statement, so it
//! sees one consistent snapshot even while actions are being recorded (or a month dropped).
//!
//! The per-day aggregates (`usage_daily`) are kept forever and the raw actions only for the
//! retention (`usage::retention`), so balances and counters are checked against the aggregates,
//! and the aggregates against the raw actions from where those begin.

use serde::Serialize;
use sqlx::PgPool;
use uuid::Uuid;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct BalanceDrift {
    pub org_id: Uuid,
    pub slug: String,
    pub cached: i64,
    pub expected: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct CounterDrift {
    pub org_id: Uuid,
    pub period_start: chrono::DateTime<chrono::Utc>,
    pub tier: String,
    pub cached: Vec<i64>,
    pub expected: Vec<i64>,
}

/// A per-day aggregate that does not match its raw actions: (included, credits, overage,
/// millicredits, debits).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct DailyDrift {
    pub org_id: Uuid,
    pub recorded_day: chrono::NaiveDate,
    pub occurred_day: chrono::NaiveDate,
    pub period_start: chrono::DateTime<chrono::Utc>,
    pub tier: String,
    pub cached: Vec<i64>,
    pub expected: Vec<i64>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    pub organizations: i64,
    pub balances: Vec<BalanceDrift>,
    pub counters: Vec<CounterDrift>,
    pub daily: Vec<DailyDrift>,
    pub repaired: bool,
}

impl Report {
    pub fn clean(&self) -> bool {
        self.balances.is_empty() && self.counters.is_empty() && self.daily.is_empty()
    }
}

const EXPECTED_BALANCES: &str = "
    SELECT c.org_id, o.slug, c.balance_millicredits AS cached,
           (coalesce((SELECT sum(l.millicredits) FROM credit_ledger l WHERE l.org_id = c.org_id), 0)
            - coalesce((SELECT sum(d.millicredits) FROM usage_daily d WHERE d.org_id = c.org_id), 0)
           )::bigint AS expected
    FROM credit_accounts c JOIN organizations o ON o.id = c.org_id";

const EXPECTED_COUNTERS: &str = "
    WITH actual AS (
        SELECT org_id, period_start, tier, sum(included)::bigint AS included,
               sum(credits)::bigint AS credits, sum(overage)::bigint AS overage
        FROM usage_daily GROUP BY 1, 2, 3
    )
    SELECT coalesce(a.org_id, c.org_id) AS org_id,
           coalesce(a.period_start, c.period_start) AS period_start,
           coalesce(a.tier, c.tier) AS tier,
           ARRAY[coalesce(c.included, 0), coalesce(c.credits, 0), coalesce(c.overage, 0)] AS cached,
           ARRAY[coalesce(a.included, 0), coalesce(a.credits, 0), coalesce(a.overage, 0)] AS expected
    FROM actual a FULL JOIN usage_counters c
      ON c.org_id = a.org_id AND c.period_start = a.period_start AND c.tier = a.tier";

/// Only the days whose raw actions are all still kept (partitions are whole UTC months, so a
/// day is either wholly kept or wholly gone).
const EXPECTED_DAILY: &str = "
    WITH kept AS (SELECT raw_kept_from FROM usage_retention),
    actual AS (
        SELECT org_id, (recorded_at AT TIME ZONE 'UTC')::date AS recorded_day,
               (occurred_at AT TIME ZONE 'UTC')::date AS occurred_day, period_start, tier,
               count(*) FILTER (WHERE counted_as = 'included') AS included,
               count(*) FILTER (WHERE counted_as = 'credits') AS credits,
               count(*) FILTER (WHERE counted_as = 'overage') AS overage,
               sum(millicredits)::bigint AS millicredits,
               count(*) FILTER (WHERE millicredits > 0) AS debits,
               max(recorded_at) AS last_recorded_at
        FROM usage_actions WHERE recorded_at >= (SELECT raw_kept_from FROM kept)
        GROUP BY 1, 2, 3, 4, 5
    ),
    cached AS (
        SELECT * FROM usage_daily
        WHERE recorded_day >= ((SELECT raw_kept_from FROM kept) AT TIME ZONE 'UTC')::date
    )
    SELECT coalesce(a.org_id, c.org_id) AS org_id,
           coalesce(a.recorded_day, c.recorded_day) AS recorded_day,
           coalesce(a.occurred_day, c.occurred_day) AS occurred_day,
           coalesce(a.period_start, c.period_start) AS period_start,
           coalesce(a.tier, c.tier) AS tier,
           ARRAY[coalesce(c.included, 0), coalesce(c.credits, 0), coalesce(c.overage, 0),
                 coalesce(c.millicredits, 0), coalesce(c.debits, 0)] AS cached,
           ARRAY[coalesce(a.included, 0), coalesce(a.credits, 0), coalesce(a.overage, 0),
                 coalesce(a.millicredits, 0), coalesce(a.debits, 0)] AS expected,
           coalesce(a.last_recorded_at, c.last_recorded_at) AS last_recorded_at
    FROM actual a FULL JOIN cached c
      ON c.org_id = a.org_id AND c.recorded_day = a.recorded_day
     AND c.occurred_day = a.occurred_day AND c.period_start = a.period_start AND c.tier = a.tier";

/// Checks every organization; with `repair`, sets drifted balances and counters to what the
/// ledger and the actions say.
pub async fn run(pool: &PgPool, repair: bool) -> sqlx::Result<Report> {
    let (organizations,): (i64,) = sqlx::query_as("SELECT count(*) FROM credit_accounts")
        .fetch_one(pool)
        .await?;
    let balances: Vec<BalanceDrift> = sqlx::query_as(&format!(
        "SELECT * FROM ({EXPECTED_BALANCES}) b WHERE cached <> expected ORDER BY slug"
    ))
    .fetch_all(pool)
    .await?;
    let counters: Vec<CounterDrift> = sqlx::query_as(&format!(
        "SELECT * FROM ({EXPECTED_COUNTERS}) d WHERE cached <> expected
         ORDER BY org_id, period_start, tier"
    ))
    .fetch_all(pool)
    .await?;
    let daily: Vec<DailyDrift> = sqlx::query_as(&format!(
        "SELECT * FROM ({EXPECTED_DAILY}) d WHERE cached <> expected
         ORDER BY org_id, recorded_day, occurred_day, period_start, tier"
    ))
    .fetch_all(pool)
    .await?;
    let mut report = Report {
        organizations,
        balances,
        counters,
        daily,
        repaired: false,
    };
    if repair && !report.clean() {
        let mut orgs: Vec<Uuid> = report
            .balances
            .iter()
            .map(|d| d.org_id)
            .chain(report.counters.iter().map(|d| d.org_id))
            .chain(report.daily.iter().map(|d| d.org_id))
            .collect();
        orgs.sort();
        orgs.dedup();
        let mut tx = pool.begin().await?;
        // The writers' lock: nothing changes these organizations until the repair commits.
        sqlx::query(
            "SELECT 1 FROM credit_accounts WHERE org_id = ANY($1) ORDER BY org_id FOR UPDATE",
        )
        .bind(&orgs)
        .execute(&mut *tx)
        .await?;
        // The aggregates first (the raw actions are the truth where kept), then what is
        // checked against them.
        sqlx::query(&format!(
            "INSERT INTO usage_daily AS c (org_id, recorded_day, occurred_day, period_start, tier,
                 included, credits, overage, millicredits, debits, last_recorded_at)
             SELECT org_id, recorded_day, occurred_day, period_start, tier, expected[1],
                    expected[2], expected[3], expected[4], expected[5], last_recorded_at
             FROM ({EXPECTED_DAILY}) d
             WHERE d.org_id = ANY($1) AND d.cached <> d.expected
             ON CONFLICT (org_id, recorded_day, occurred_day, period_start, tier) DO UPDATE SET
                 included = EXCLUDED.included, credits = EXCLUDED.credits,
                 overage = EXCLUDED.overage, millicredits = EXCLUDED.millicredits,
                 debits = EXCLUDED.debits"
        ))
        .bind(&orgs)
        .execute(&mut *tx)
        .await?;
        sqlx::query(&format!(
            "UPDATE credit_accounts c SET balance_millicredits = e.expected, updated_at = now()
             FROM ({EXPECTED_BALANCES}) e
             WHERE e.org_id = c.org_id AND c.org_id = ANY($1) AND e.cached <> e.expected"
        ))
        .bind(&orgs)
        .execute(&mut *tx)
        .await?;
        sqlx::query(&format!(
            "INSERT INTO usage_counters AS c (org_id, period_start, tier, included, credits, overage)
             SELECT org_id, period_start, tier, expected[1], expected[2], expected[3]
             FROM ({EXPECTED_COUNTERS}) d
             WHERE d.org_id = ANY($1) AND d.cached <> d.expected
             ON CONFLICT (org_id, period_start, tier) DO UPDATE SET
                 included = EXCLUDED.included, credits = EXCLUDED.credits,
                 overage = EXCLUDED.overage"
        ))
        .bind(&orgs)
        .execute(&mut *tx)
        .await?;
        // The operators hear of it with the repair (one message per run that found drift).
        let detail = format!(
            "{} balance(s) and {} usage counter(s) differed from the ledger and were repaired",
            report.balances.len(),
            report.counters.len()
        );
        crate::notify::enqueue(
            &mut tx,
            crate::notify::Notice {
                kind: crate::notify::kinds::Kind::OpsDrift,
                org_id: None,
                user_id: None,
                cause: &format!("drift-{}", uuid::Uuid::new_v4()),
                values: serde_json::json!({ "detail": detail }),
            },
        )
        .await?;
        tx.commit().await?;
        report.repaired = true;
    }
    Ok(report)
}

/// The periodic job: repairs and logs drift.
pub async fn work_forever(pool: PgPool, every: std::time::Duration) {
    loop {
        tokio::time::sleep(every).await;
        // One instance at a time: two would repair the same drift twice over.
        let turn = crate::db::lease::run_exclusive(&pool, "reconcile", async {
            Ok(run(&pool, true).await?)
        })
        .await;
        match turn {
            Ok(None) => tracing::debug!("reconciliation is running on another instance"),
            Ok(Some(report)) if report.clean() => {
                tracing::debug!(organizations = report.organizations, "credits reconcile")
            }
            Ok(Some(report)) => tracing::warn!(
                balances = report.balances.len(),
                counters = report.counters.len(),
                daily = report.daily.len(),
                "credit drift found and repaired"
            ),
            Err(e) => tracing::warn!(error = %e, "reconciliation failed"),
        }
    }
}
