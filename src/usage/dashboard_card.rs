//! The usage card on the organization's dashboard: a bar per tier (used of included), the credit
//! balance, when the period renews or the trial ends, the overage and near-the-limit banners,
//! and the latest messages for the owners. The dashboard composes it with the other domains'
//! cards; plain HTML, no JavaScript.
//!
//! [`UsageCard`] is what the card shows (plain data, worded on the server, in the page's data),
//! [`UsageCardView`] lays it out. On the server, [`load`] reads it on its own, and [`FACTS`] lets
//! the dashboard read it inside its one statement together with the other cards.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

/// What the usage card shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsageCard {
    pub slug: String,
    /// "1 December 2026 – 1 January 2027. "
    pub period: String,
    /// When the included actions restart, the plan renews or the trial ends.
    pub when: String,
    /// The credit balance in credits ("12.5"), in the credits model.
    pub balance: Option<String>,
    pub meters: Vec<MeterBar>,
    /// The overage banner: what is owed and what happens next.
    pub owed: Option<String>,
    /// One line per tier near or at its included amount.
    pub near: Vec<String>,
    /// The latest messages for the owners, newest first.
    pub messages: Vec<Message>,
}

/// One tier's bar: used of included.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MeterBar {
    pub key: String,
    pub name: String,
    /// "3 of 100 included used", or "3 used (unlimited)".
    pub summary: String,
    /// The bar's scale and value.
    pub max: u64,
    pub used_included: u64,
    /// How much of the bar is filled, in percent with one decimal ("42.0").
    pub percent: String,
    /// "ok", "near" or "full".
    pub state: String,
    /// Actions beyond the included amount.
    pub extra: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    /// "2026-12-01 21:37" (UTC).
    pub at: String,
    pub text: String,
}

#[component]
fn MeterBarView(bar: MeterBar) -> impl IntoView {
    let label = format!("{} actions used this period", bar.name);
    let text = format!("{} {} actions", bar.summary, bar.name);
    let extra = bar.extra;
    view! {
        <div class="meter" data-tier=bar.key>
            <div class="meter-label">
                <span class="meter-name">{bar.name}</span>
                <span class="meter-numbers">{bar.summary}</span>
            </div>
            <div class=format!("bar {}", bar.state) role="progressbar" aria-label=label
                aria-valuemin="0" aria-valuemax=bar.max.to_string() aria-valuenow=bar.used_included.to_string()
                aria-valuetext=text>
                // Drawn as SVG, whose sizes are attributes: the page's CSP allows no inline style.
                <svg class="bar-fill" viewBox="0 0 100 1" preserveAspectRatio="none" aria-hidden="true">
                    <rect width=bar.percent height="1"></rect>
                </svg>
            </div>
            {(extra > 0).then(|| view! {
                <p class="meter-extra">{format!("+{extra} beyond the included amount (paid from credits or overage)")}</p>
            })}
        </div>
    }
}

/// The usage block on the organization's dashboard: the period, the balance, a bar per tier,
/// the overage and warning banners, and the latest messages.
#[component]
pub fn UsageCardView(card: UsageCard) -> impl IntoView {
    let UsageCard {
        slug,
        period,
        when,
        balance,
        meters,
        owed,
        near,
        messages,
    } = card;
    let credits_link = format!("/orgs/{slug}/credits");
    let owed = owed.map(|message| {
        view! {
            <div class="banner alert" role="alert" data-testid="overage-banner">
                {message}<a href=credits_link.clone()>"Buy credits"</a>
            </div>
        }
    });
    let near = (!near.is_empty()).then(|| {
        view! {
            <div class="banner warn" role="status" data-testid="usage-warning">
                {near.into_iter().map(|line| view! { <p>{line}</p> }).collect_view()}
            </div>
        }
    });
    let balance = balance.map(|balance| {
        view! {
            <p class="balance" data-testid="credit-balance">
                "Credit balance: " <strong>{format!("{balance} credits")}</strong> " · " <a href=credits_link.clone()>"Credits"</a>
            </p>
        }
    });
    let usage_link = format!("/orgs/{slug}/usage");
    let keys_link = format!("/orgs/{slug}/api-keys");
    view! {
        {owed}
        {near}
        <section class="card" aria-labelledby="usage-heading">
            <h2 id="usage-heading">"Usage this period"</h2>
            <p class="muted">{period}{when}</p>
            {balance}
            {meters.into_iter().map(|bar| view! { <MeterBarView bar=bar /> }).collect_view()}
            <p class="actions"><a href=usage_link>"Usage history"</a>" · "<a href=keys_link>"API keys"</a></p>
        </section>
        {(!messages.is_empty()).then(|| view! {
            <section class="card" aria-labelledby="messages-heading">
                <h2 id="messages-heading">"Messages"</h2>
                <ul class="messages">
                    {messages.into_iter().map(|m| view! {
                        <li><time>{m.at}</time>" "{m.text}</li>
                    }).collect_view()}
                </ul>
            </section>
        })}
    }
}

#[cfg(feature = "ssr")]
pub use server::*;

#[cfg(feature = "ssr")]
mod server {
    use chrono::{DateTime, Utc};
    use serde::Deserialize;
    use sqlx::PgPool;
    use uuid::Uuid;

    use super::{Message, MeterBar, UsageCard};
    use crate::billing::catalog::Catalog;
    use crate::billing::subscription::Stored;
    use crate::error::AppError;
    use crate::usage::consumption::Account;
    use crate::usage::credits;
    use crate::usage::entitlements::{
        compute, current_period, Counter, Entitlements, MeterView, Standing,
    };
    use crate::usage::period::calendar_month;
    use crate::web::format::date;

    /// The card's facts as one JSON value (null without a credit account), for a statement in
    /// which the organization is the row `org`, with its `id` and `month_start`, the calendar
    /// month (UTC) holding now. The counters are those of the two periods the current one can
    /// be (the subscription's, or the calendar month), of which [`card`] picks one; the messages are
    /// the latest five. A fragment rather than
    /// queries, so the dashboard reads every card in one statement.
    pub const FACTS: &str = "(SELECT json_build_object(
        'balance_millicredits', c.balance_millicredits,
        'unsettled_overage', c.unsettled_overage,
        'counters', (SELECT coalesce(json_agg(u), '[]') FROM (
            SELECT period_start, tier, included, credits, overage FROM usage_counters
            WHERE org_id = c.org_id AND period_start IN (
                org.month_start,
                (SELECT current_period_start FROM subscriptions WHERE org_id = c.org_id))) u),
        'notifications', (SELECT coalesce(json_agg(n ORDER BY n.created_at DESC, n.id DESC), '[]')
            FROM (SELECT id, created_at, message FROM notifications WHERE org_id = c.org_id
                  ORDER BY created_at DESC, id DESC LIMIT 5) n))
        FROM credit_accounts c WHERE c.org_id = org.id)";

    /// The credit account, counters and messages as [`FACTS`] gives them.
    #[derive(Debug, Clone, Deserialize)]
    pub struct Facts {
        balance_millicredits: i64,
        unsettled_overage: i32,
        counters: Vec<CounterFacts>,
        notifications: Vec<MessageFacts>,
    }

    #[derive(Debug, Clone, Deserialize)]
    struct CounterFacts {
        period_start: DateTime<Utc>,
        tier: String,
        included: i64,
        credits: i64,
        overage: i64,
    }

    #[derive(Debug, Clone, Deserialize)]
    struct MessageFacts {
        created_at: DateTime<Utc>,
        message: String,
    }

    /// The card of an organization with this subscription and these facts, at `now`.
    pub fn card(
        catalog: &Catalog,
        stored: Option<Stored>,
        facts: Option<Facts>,
        slug: &str,
        now: DateTime<Utc>,
    ) -> UsageCard {
        // As `usage::repo::standing`: without a credit account (every organization gets one
        // when it is created) the organization stands as a new one.
        let (standing, messages) = match facts {
            None => (Standing::default(), Vec::new()),
            Some(f) => {
                let mut standing = Standing {
                    subscription: stored,
                    account: Account {
                        balance_millicredits: f.balance_millicredits,
                        unsettled_overage: f.unsettled_overage.max(0) as u32,
                    },
                    ..Default::default()
                };
                let period = current_period(&standing, now);
                for c in f
                    .counters
                    .into_iter()
                    .filter(|c| c.period_start == period.start)
                {
                    standing.counters.insert(
                        (c.period_start, c.tier),
                        Counter {
                            included: c.included.max(0) as u64,
                            credits: c.credits.max(0) as u64,
                            overage: c.overage.max(0) as u64,
                        },
                    );
                }
                (standing, f.notifications)
            }
        };
        let e = compute(catalog, &standing, now);
        let period = current_period(&standing, now);
        let when = match (&e.trial_ends_at, standing.subscription.as_ref()) {
            (Some(end), _) => format!("Trial ends on {}.", date(*end)),
            (None, Some(s)) if e.status == "active" && s.cancel_at_period_end => {
                format!("The plan ends on {}.", date(period.end))
            }
            (None, Some(_)) if e.status == "active" => format!("Renews on {}.", date(period.end)),
            _ => format!("Included actions restart on {}.", date(period.end)),
        };
        UsageCard {
            slug: slug.to_owned(),
            period: format!("{} – {}. ", date(period.start), date(period.end)),
            when,
            balance: e.credits.as_ref().map(|c| c.balance.clone()),
            // Gauges (counts now, not this period's sums) have their own lines on the page,
            // `usage::gauge_usage`, from their own read.
            meters: e
                .meters
                .iter()
                .filter(|m| !m.gauge)
                .map(meter_bar)
                .collect(),
            owed: owed(&e, catalog.soft_limit_actions),
            near: near(&e),
            messages: messages
                .into_iter()
                .map(|m| Message {
                    at: m.created_at.format("%Y-%m-%d %H:%M").to_string(),
                    text: m.message,
                })
                .collect(),
        }
    }

    fn meter_bar(m: &MeterView) -> MeterBar {
        let (max, summary) = match m.included {
            Some(n) => (n, format!("{} of {n} included used", m.used_included)),
            None => (
                m.used_included.max(1),
                format!("{} used (unlimited)", m.used),
            ),
        };
        let percent = if max == 0 {
            100.0
        } else {
            (m.used_included as f64 * 100.0 / max as f64).min(100.0)
        };
        let state = if m.included.is_some_and(|n| m.used_included >= n) {
            "full"
        } else if percent >= 80.0 {
            "near"
        } else {
            "ok"
        };
        MeterBar {
            key: m.key.clone(),
            name: m.name.clone(),
            summary,
            max,
            used_included: m.used_included,
            percent: format!("{percent:.1}"),
            state: state.to_owned(),
            extra: m.used - m.used_included,
        }
    }

    /// The overage banner's words, when the balance is below zero.
    fn owed(e: &Entitlements, soft_limit: u32) -> Option<String> {
        let c = e.credits.as_ref().filter(|c| c.balance_millicredits < 0)?;
        Some(if c.overage_allowance_remaining == 0 {
            format!(
                "Your credits are used up and so is the overage allowance of {soft_limit} actions: actions beyond the included ones are refused. You owe {} credits, settled from your next purchase. ",
                credits::format(-c.balance_millicredits)
            )
        } else {
            format!(
                "Overage: your balance is {} credits. It is settled from your next credit purchase; {} more overage actions are allowed. ",
                c.balance, c.overage_allowance_remaining
            )
        })
    }

    /// A line for each tier at 80% of its included amount or more.
    fn near(e: &Entitlements) -> Vec<String> {
        e.meters
            .iter()
            .filter(|m| !m.gauge)
            .filter_map(|m| {
                let n = m.included?;
                (n > 0 && m.used_included * 10 >= n * 8).then(|| {
                    if m.used_included >= n {
                        format!("All {n} included {} actions are used this period.", m.name)
                    } else {
                        format!(
                            "{} of {n} included {} actions are used this period.",
                            m.used_included, m.name
                        )
                    }
                })
            })
            .collect()
    }

    /// The first of the calendar month (UTC) holding `now`, as [`FACTS`] takes it.
    pub fn month_start(now: DateTime<Utc>) -> DateTime<Utc> {
        calendar_month(now).start
    }

    /// The card of the organization `org_id`, read on its own (one statement).
    pub async fn load(
        db: &PgPool,
        catalog: &Catalog,
        org_id: Uuid,
        slug: &str,
        now: DateTime<Utc>,
    ) -> Result<UsageCard, AppError> {
        #[derive(Deserialize)]
        struct Both {
            subscription: Option<crate::billing::dashboard_card::Facts>,
            usage: Option<Facts>,
        }
        let json: String = sqlx::query_scalar(&format!(
            "SELECT json_build_object('subscription', {}, 'usage', {FACTS})::text
             FROM (SELECT $1::uuid AS id, $2::timestamptz AS month_start) org",
            crate::billing::dashboard_card::FACTS
        ))
        .bind(org_id)
        .bind(month_start(now))
        .fetch_one(db)
        .await?;
        let both: Both = serde_json::from_str(&json).map_err(anyhow::Error::from)?;
        Ok(card(
            catalog,
            both.subscription.map(Stored::from),
            both.usage,
            slug,
            now,
        ))
    }
}
