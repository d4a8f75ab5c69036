//! The demo's months of history, played once after a fresh seed (in the background, so the demo
//! listens at once): the story organizations of `seed` get Stripe customers on a test clock that
//! starts three months ago, with subscriptions on each paid plan; the clock moves forward month by
//! month (renewals and their invoices), one organization cancels after a month, one's card starts
//! failing before the last renewal (its grace period runs now), one starts a trial two days ago,
//! and one buys credit packs by auto top-up. Every object is real and every event reaches the
//! portal through its webhook; usage of the last four weeks goes through the JSON API.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::{Months, Utc};
use serde_json::json;
use sqlx::PgPool;
use tokio::sync::Notify;
use uuid::Uuid;

use crate::billing::catalog::Catalog;
use crate::billing::repo as billing;
use crate::seed::STORY_ORGS;
use crate::stripe_gateway::demo_calls::DemoStripe;
use crate::usage::repo::{save_top_up_settings, TopUpSettings};

/// Where the history is played: the emulator, and the portal's own address for the API.
pub struct Stage {
    pub pool: PgPool,
    pub catalog: Arc<Catalog>,
    pub stripe: DemoStripe,
    pub portal_url: String,
    pub top_up: Arc<Notify>,
}

/// What each story organization pays for: plan and test card.
fn plan_of(name: &str) -> Option<(&'static str, &'static str)> {
    match name {
        "Starter Studio" | "Credits Co" => Some(("starter", "pm_card_visa")),
        "Pro Labs" | "Churned Ltd" => Some(("pro", "pm_card_visa")),
        "Max Industries" => Some(("max", "pm_card_visa")),
        "Grace Period Inc" => Some(("starter", "pm_card_visa")),
        _ => None,
    }
}

async fn org_id(pool: &PgPool, name: &str) -> anyhow::Result<Uuid> {
    sqlx::query_scalar("SELECT id FROM organizations WHERE name = $1")
        .bind(name)
        .fetch_one(pool)
        .await
        .with_context(|| format!("the demo organization {name}"))
}

/// Plays the history; logs and gives up on the first failure (the demo still runs).
pub async fn play(stage: Stage) {
    let started = Instant::now();
    match play_all(&stage).await {
        Ok(()) => tracing::info!(
            seconds = started.elapsed().as_secs_f64(),
            "the demo's history is in place"
        ),
        Err(e) => tracing::error!(
            error = format!("{e:#}"),
            "seeding the demo's history failed"
        ),
    }
}

async fn price(stage: &Stage, plan: &str) -> anyhow::Result<String> {
    let lookup = stage
        .catalog
        .plan(plan)
        .and_then(|p| p.lookup_key())
        .with_context(|| format!("no price for {plan}"))?;
    // The catalog sync runs at start-up beside this.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(id) = stage.stripe.price(lookup).await? {
            return Ok(id);
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "the catalog never reached Stripe"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn play_all(stage: &Stage) -> anyhow::Result<()> {
    let now = Utc::now();
    let start = now
        .checked_sub_months(Months::new(3))
        .context("three months ago")?
        - chrono::Duration::days(2);
    let hour = 3600;
    let clock = stage.stripe.test_clock(start.timestamp()).await?;
    let mut subscriptions = Vec::new();
    for (name, email) in STORY_ORGS {
        let org = org_id(&stage.pool, name).await?;
        let customer = stage.stripe.customer(&clock, email, org).await?;
        let mut conn = stage.pool.acquire().await?;
        billing::save_customer(&mut conn, org, &customer).await?;
        if let Some((plan, card)) = plan_of(name) {
            stage.stripe.default_card(&customer, card).await?;
            let sub = stage
                .stripe
                .subscribe(&customer, &price(stage, plan).await?, None, org)
                .await?;
            subscriptions.push((name, customer, sub));
        } else {
            subscriptions.push((name, customer, String::new()));
        }
    }
    let find = |wanted: &str| {
        subscriptions
            .iter()
            .find(|(name, _, _)| *name == wanted)
            .map(|(_, customer, sub)| (customer.clone(), sub.clone()))
            .with_context(|| format!("no {wanted}"))
    };
    let month = |n: u32| -> anyhow::Result<i64> {
        Ok(start
            .checked_add_months(Months::new(n))
            .context("a month on")?
            .timestamp())
    };
    stage.stripe.advance(&clock, month(1)? + hour).await?;
    stage.stripe.cancel(&find("Churned Ltd")?.1).await?;
    stage.stripe.advance(&clock, month(2)? + hour).await?;
    let (grace, _) = find("Grace Period Inc")?;
    stage
        .stripe
        .default_card(&grace, "pm_card_chargeCustomerFail")
        .await?;
    stage.stripe.advance(&clock, month(3)? + hour).await?;
    let (trial, _) = find("Trial Works")?;
    let trial_org = org_id(&stage.pool, "Trial Works").await?;
    stage
        .stripe
        .subscribe(&trial, &price(stage, "pro").await?, Some(7), trial_org)
        .await?;
    stage
        .stripe
        .advance(&clock, Utc::now().timestamp() - 60)
        .await?;
    usage(stage).await
}

/// Four weeks of actions for every paying organization (and Demo Company), through the API;
/// Credits Co uses more than its plan includes, paid by packs auto top-up buys.
async fn usage(stage: &Stage) -> anyhow::Result<()> {
    let http = reqwest::Client::new();
    let credits_org = org_id(&stage.pool, "Credits Co").await?;
    save_top_up_settings(
        &stage.pool,
        credits_org,
        &TopUpSettings {
            auto_top_up: true,
            top_up_below_credits: 100,
            top_up_packs: 1,
            top_up_monthly_cap: 4,
            top_up_failures: 0,
        },
    )
    .await?;
    stage.top_up.notify_one();
    wait_for_credits(&stage.pool, credits_org).await?;
    let names = [
        "Demo Company",
        "Starter Studio",
        "Pro Labs",
        "Max Industries",
        "Grace Period Inc",
        "Credits Co",
    ];
    for (n, name) in names.into_iter().enumerate() {
        let org = org_id(&stage.pool, name).await?;
        let key = crate::api::keys::create(&stage.pool, org, "Demo history", None).await?;
        let now = Utc::now();
        let mut actions = Vec::new();
        // Demo Company is on Free: a few small actions, within what it includes.
        let free = name == "Demo Company";
        let days = if free { 1..9 } else { 1..28i64 };
        for day in days {
            // A working-week rhythm, heavier for bigger plans.
            let weekday = (day % 7) < 5;
            let count = if weekday && !free {
                3 + (n as i64) * 2 + day % 4
            } else {
                1
            };
            for i in 0..count {
                let tier = match (i + day) % 10 {
                    _ if free => "small",
                    0 => "large",
                    1 | 2 => "medium",
                    _ => "small",
                };
                let tier = if name == "Credits Co" && i % 2 == 0 {
                    "large"
                } else {
                    tier
                };
                let at = now - chrono::Duration::days(day) + chrono::Duration::minutes(i * 17);
                actions.push(json!({
                    "tier": tier,
                    "idempotency_key": format!("demo-{day}-{i}"),
                    "occurred_at": at.to_rfc3339(),
                }));
            }
        }
        for chunk in actions.chunks(200) {
            let answer = http
                .post(format!("{}/api/v1/usage/batch", stage.portal_url))
                .bearer_auth(&key)
                .json(&json!({ "actions": chunk }))
                .send()
                .await?;
            anyhow::ensure!(
                answer.status().is_success(),
                "usage for {name}: {}",
                answer.status()
            );
            if name == "Credits Co" {
                // Let auto top-up buy the next pack before the next batch needs it.
                stage.top_up.notify_one();
                wait_for_credits(&stage.pool, org).await?;
            }
        }
    }
    Ok(())
}

/// Waits (at most 20 s) until the organization's balance is above zero.
async fn wait_for_credits(pool: &PgPool, org: Uuid) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let balance = crate::usage::ledger::balance(pool, org).await?;
        if balance > 0 {
            return Ok(());
        }
        anyhow::ensure!(Instant::now() < deadline, "auto top-up bought no credits");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
