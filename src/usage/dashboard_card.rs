//! The usage card on the organization's dashboard: a bar per tier (used of included), the credit
//! balance, when the period renews or the trial ends, the overage and near-the-limit banners,
//! and the latest messages for the owners. The dashboard composes it with the other domains'
//! cards; plain HTML, no JavaScript.

use chrono::Utc;
use leptos::prelude::*;
use uuid::Uuid;

use super::credits;
use super::entitlements::{compute, current_period, Entitlements, MeterView};
use super::repo;
use crate::error::AppError;
use crate::web::format::date;
use crate::web::state::AppState;

/// One tier's bar: used of included, with the numbers and an accessible label.
fn meter_bar(m: &MeterView) -> impl IntoView {
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
    let extra = m.used - m.used_included;
    let state = if m.included.is_some_and(|n| m.used_included >= n) {
        "full"
    } else if percent >= 80.0 {
        "near"
    } else {
        "ok"
    };
    let label = format!("{} actions used this period", m.name);
    let text = format!("{summary} {} actions", m.name);
    view! {
        <div class="meter" data-tier=m.key.clone()>
            <div class="meter-label">
                <span class="meter-name">{m.name.clone()}</span>
                <span class="meter-numbers">{summary.clone()}</span>
            </div>
            <div class=format!("bar {state}") role="progressbar" aria-label=label
                aria-valuemin="0" aria-valuemax=max.to_string() aria-valuenow=m.used_included.to_string()
                aria-valuetext=text>
                // Drawn as SVG, whose sizes are attributes: the page's CSP allows no inline style.
                <svg class="bar-fill" viewBox="0 0 100 1" preserveAspectRatio="none" aria-hidden="true">
                    <rect width=format!("{percent:.1}") height="1"></rect>
                </svg>
            </div>
            {(extra > 0).then(|| view! {
                <p class="meter-extra">{format!("+{extra} beyond the included amount (paid from credits or overage)")}</p>
            })}
        </div>
    }
}

fn banners(e: &Entitlements, soft_limit: u32, slug: &str) -> impl IntoView {
    let credits_link = format!("/orgs/{slug}/credits");
    let owed = e
        .credits
        .as_ref()
        .filter(|c| c.balance_millicredits < 0)
        .map(|c| {
            let refused = c.overage_allowance_remaining == 0;
            let message = if refused {
                format!(
                    "Your credits are used up and so is the overage allowance of {soft_limit} actions: actions beyond the included ones are refused. You owe {} credits, settled from your next purchase. ",
                    credits::format(-c.balance_millicredits)
                )
            } else {
                format!(
                    "Overage: your balance is {} credits. It is settled from your next credit purchase; {} more overage actions are allowed. ",
                    c.balance,
                    c.overage_allowance_remaining
                )
            };
            view! {
                <div class="banner alert" role="alert" data-testid="overage-banner">
                    {message}<a href=credits_link.clone()>"Buy credits"</a>
                </div>
            }
        });
    let near: Vec<String> = e
        .meters
        .iter()
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
        .collect();
    view! {
        {owed}
        {(!near.is_empty()).then(|| view! {
            <div class="banner warn" role="status" data-testid="usage-warning">
                {near.into_iter().map(|line| view! { <p>{line}</p> }).collect_view()}
            </div>
        })}
    }
}

/// The usage block on the organization's dashboard: the period, the balance, a bar per tier,
/// the overage and warning banners, and the latest messages.
pub async fn dashboard_card(
    state: &AppState,
    org_id: Uuid,
    slug: &str,
) -> Result<impl IntoView + use<>, AppError> {
    let now = Utc::now();
    let standing = repo::standing(&state.db, org_id, now).await?;
    let e = compute(&state.catalog, &standing, now);
    let notices = repo::notifications(&state.db, org_id, 5).await?;
    let period = current_period(&standing, now);
    let when = match (&e.trial_ends_at, standing.subscription.as_ref()) {
        (Some(end), _) => format!("Trial ends on {}.", date(*end)),
        (None, Some(s)) if e.status == "active" && s.cancel_at_period_end => {
            format!("The plan ends on {}.", date(period.end))
        }
        (None, Some(_)) if e.status == "active" => format!("Renews on {}.", date(period.end)),
        _ => format!("Included actions restart on {}.", date(period.end)),
    };
    let bars = e.meters.iter().map(meter_bar).collect_view();
    let banners = banners(&e, state.catalog.soft_limit_actions, slug);
    let balance = e.credits.as_ref().map(|c| {
        let link = format!("/orgs/{slug}/credits");
        view! {
            <p class="balance" data-testid="credit-balance">
                "Credit balance: " <strong>{format!("{} credits", c.balance)}</strong> " · " <a href=link>"Credits"</a>
            </p>
        }
    });
    let usage_link = format!("/orgs/{slug}/usage");
    let keys_link = format!("/orgs/{slug}/api-keys");
    Ok(view! {
        {banners}
        <section class="card" aria-labelledby="usage-heading">
            <h2 id="usage-heading">"Usage this period"</h2>
            <p class="muted">{format!("{} – {}. ", date(period.start), date(period.end))}{when}</p>
            {balance}
            {bars}
            <p class="actions"><a href=usage_link>"Usage history"</a>" · "<a href=keys_link>"API keys"</a></p>
        </section>
        {(!notices.is_empty()).then(|| view! {
            <section class="card" aria-labelledby="messages-heading">
                <h2 id="messages-heading">"Messages"</h2>
                <ul class="messages">
                    {notices.into_iter().map(|(at, _, message)| view! {
                        <li><time>{at.format("%Y-%m-%d %H:%M").to_string()}</time>" "{message}</li>
                    }).collect_view()}
                </ul>
            </section>
        })}
    })
}
