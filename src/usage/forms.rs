//! What the usage and credits pages' server functions do on the server: the read of each page,
//! buying packs and saving the auto top-up settings. Each reads its input, calls one use case of
//! [`super::credit_service`] and presents the outcome; a refused field goes back to the credits
//! page through the session (`web::form_state`), never through the URL. Also the ledger lines
//! worded for people, which the admin's organization page shows too.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{NaiveDate, Utc};

use super::chart::{self, Series};
use super::credit_input::{InvalidInput, TopUpForm};
use super::credit_service::{self, CreditError, PackCheckoutOutcome};
use super::credits;
use super::entitlements::current_period;
use super::ledger::Line;
use super::pages::{
    BuyValues, CreditsView, LedgerLine, PackOffer, TopUpValues, UsageDay, UsageView, BUY_FORM,
    TOP_UP_FORM,
};
use super::repo::{self, TopUpSettings};
use crate::billing::catalog::{Catalog, Model};
use crate::error::AppError;
use crate::orgs::model::Role;
use crate::stripe_gateway::Gateway;
use crate::web::caller::{dep, redirect, Member, Visitor};
use crate::web::chrome::{Flash, Page};
use crate::web::form_state::{self, Kept};
use crate::web::format::{date, money};
use crate::web::page_error::{FieldErrors, PageError};
use crate::web::state::{PublicUrl, TopUpSignal};

/// How a credit use case's refusal shows when it is not a form message: the status and
/// sentence the error page renders.
impl From<CreditError> for AppError {
    fn from(e: CreditError) -> Self {
        match e {
            CreditError::Invalid(invalid) => AppError::BadRequest(invalid.message),
            CreditError::NotForSale | CreditError::UnknownOrganization => AppError::NotFound,
            CreditError::NotAllowed => AppError::Forbidden,
            CreditError::Stripe(e) => AppError::Internal(e),
            CreditError::Database(e) => e.into(),
        }
    }
}

/// The refused field and its sentence, as a form shows them.
pub fn field_errors(invalid: InvalidInput) -> FieldErrors {
    FieldErrors::from([(invalid.field.to_owned(), invalid.message)])
}

/// Where a form's kept values wait: per organization, so what was typed for one is never shown
/// on another's page.
fn form_key(form: &str, slug: &str) -> String {
    format!("{form}:{slug}")
}

fn credits_path(slug: &str) -> String {
    format!("/orgs/{slug}/credits")
}

async fn member_reading(slug: &str) -> Result<Member, AppError> {
    Visitor::reading().await?.signed_in().await?.member(slug)
}

/// `/orgs/{slug}/usage`: actions per day and tier over the previous and current periods.
pub async fn usage_page(slug: &str) -> Result<Page<UsageView>, AppError> {
    let member = member_reading(slug).await?;
    let db = member.signed_in.db();
    let catalog = dep::<Arc<Catalog>>()?;
    let org_id = member.org_id();
    let now = Utc::now();
    let standing = repo::standing(db, org_id, now).await?;
    let current = current_period(&standing, now);
    let previous = current.previous();
    let rows = repo::daily_usage(db, org_id, previous.start, current.end).await?;
    let first = previous.start.date_naive();
    let last = now.date_naive().min(current.end.date_naive());
    let days: Vec<NaiveDate> = first.iter_days().take_while(|d| *d <= last).collect();
    let tiers: Vec<(String, String)> = catalog
        .meter_keys()
        .into_iter()
        .map(|k| (k.to_owned(), catalog.meter_name(k).to_owned()))
        .collect();
    let mut counts: BTreeMap<(NaiveDate, String), u64> = BTreeMap::new();
    for (day, tier, n) in rows {
        counts.insert((day, tier), n.max(0) as u64);
    }
    let count =
        |day: NaiveDate, tier: &str| counts.get(&(day, tier.to_owned())).copied().unwrap_or(0);
    let series: Vec<Series> = tiers
        .iter()
        .map(|(key, name)| Series {
            name: name.clone(),
            counts: days.iter().map(|d| count(*d, key)).collect(),
        })
        .collect();
    let boundary = days.iter().position(|d| *d >= current.start.date_naive());
    let label = format!(
        "Actions per day and tier from {} to {}",
        date(previous.start),
        date(now)
    );
    let chart_svg = chart::svg(&days, &series, boundary, &label);
    // The table lists only the days with actions.
    let listed = days
        .iter()
        .rev()
        .filter(|d| {
            tiers
                .iter()
                .any(|(k, _)| counts.contains_key(&(**d, k.clone())))
        })
        .map(|d| UsageDay {
            day: d.format("%Y-%m-%d").to_string(),
            counts: tiers.iter().map(|(k, _)| count(*d, k)).collect(),
        })
        .collect();
    let body = UsageView {
        org_name: member.membership.org.name.clone(),
        periods: format!(
            "previous period from {}, current period from {}",
            date(previous.start),
            date(current.start)
        ),
        chart_svg,
        tiers: tiers.into_iter().map(|(_, name)| name).collect(),
        days: listed,
    };
    Ok(Page {
        chrome: member.chrome().await?,
        body,
    })
}

/// Ledger lines as the credits page and the admin's organization page show them.
pub fn ledger_lines(lines: Vec<Line>) -> Vec<LedgerLine> {
    lines
        .into_iter()
        .map(|l| {
            let what = match l.kind.as_str() {
                "purchase" => "Purchase",
                "top_up" => "Auto top-up",
                "refund" => "Refund",
                "grant" => "Grant",
                "removal" => "Removal",
                _ => "Usage",
            };
            let amount = if l.millicredits > 0 {
                format!("+{}", credits::format(l.millicredits))
            } else {
                credits::format(l.millicredits)
            };
            let details = match (l.actions, l.actor_email) {
                (Some(n), _) => format!("{} ({n} actions)", l.reason.unwrap_or_default()),
                (None, Some(by)) => format!("{} (by {by})", l.reason.unwrap_or_default()),
                (None, None) => l.reason.unwrap_or_default(),
            };
            LedgerLine {
                at: l.at.format("%Y-%m-%d %H:%M").to_string(),
                what: what.to_owned(),
                amount,
                details,
            }
        })
        .collect()
}

/// The auto top-up state in words.
fn top_up_state(s: &TopUpSettings, pack_name: &str) -> String {
    if s.auto_top_up {
        format!(
            "On: below {} credits, {} × {pack_name} is charged to the saved card, at most {} times a month.",
            s.top_up_below_credits, s.top_up_packs, s.top_up_monthly_cap
        )
    } else if s.top_up_failures >= super::top_up::MAX_FAILURES {
        format!(
            "Off: it turned itself off after {} failed charges. Update the card, then turn it on again.",
            s.top_up_failures
        )
    } else {
        "Off.".to_owned()
    }
}

/// `/orgs/{slug}/credits`: only for catalogs that sell credit packs.
pub async fn credits_page(slug: &str) -> Result<Page<CreditsView>, AppError> {
    let member = member_reading(slug).await?;
    let catalog = dep::<Arc<Catalog>>()?;
    if catalog.model != Model::HybridCredits {
        return Err(AppError::NotFound);
    }
    let Some(pack) = catalog.credit_pack.as_ref() else {
        return Err(AppError::NotFound);
    };
    let overview = credit_service::credits_overview(member.signed_in.db(), member.org_id()).await?;
    let session = member.signed_in.session();
    let mut buy: Kept<BuyValues> = form_state::take(session, &form_key(BUY_FORM, slug)).await?;
    if buy.errors.is_empty() {
        buy.values.packs = "1".to_owned();
    }
    let mut top_up: Kept<TopUpValues> =
        form_state::take(session, &form_key(TOP_UP_FORM, slug)).await?;
    let settings = &overview.top_up;
    if top_up.errors.is_empty() {
        top_up.values = TopUpValues {
            enabled: settings.auto_top_up,
            below: settings.top_up_below_credits.to_string(),
            packs: settings.top_up_packs.to_string(),
            monthly_cap: settings.top_up_monthly_cap.to_string(),
        };
    }
    let balance = overview.ledger.balance_millicredits;
    let role = member.membership.role;
    let body = CreditsView {
        slug: slug.to_owned(),
        org_name: member.membership.org.name.clone(),
        balance: credits::format(balance),
        negative: balance < 0,
        pack: role.can_manage().then(|| PackOffer {
            name: pack.name.clone(),
            price: money(pack.price_cents, &catalog.currency),
        }),
        top_up_state: top_up_state(settings, &pack.name),
        owner: role == Role::Owner,
        lines: ledger_lines(overview.ledger.lines),
        buy,
        top_up,
    };
    Ok(Page {
        chrome: member.chrome().await?,
        body,
    })
}

/// Buys packs through a Checkout Session in payment mode (owners and admins), and sends the
/// browser to it; to the one already open, if there is one.
pub async fn buy_credits(visitor: Visitor, slug: &str, packs: String) -> Result<(), PageError> {
    let manager = visitor.signed_in().await?.member(slug)?.manager()?;
    let catalog = dep::<Arc<Catalog>>()?;
    let outcome = credit_service::buy_packs(
        manager.signed_in.db(),
        &dep::<Gateway>()?,
        &catalog,
        &dep::<PublicUrl>()?.0,
        &manager.membership,
        &manager.signed_in.user.email,
        &packs,
    )
    .await;
    match outcome {
        Ok(PackCheckoutOutcome::Opened { url }) => {
            redirect(&url);
            Ok(())
        }
        Ok(PackCheckoutOutcome::AlreadyOpen { url }) => {
            manager
                .signed_in
                .flash(Flash::notice(
                    "A checkout is already open for this organization; finish or cancel it first.",
                ))
                .await?;
            redirect(&url);
            Ok(())
        }
        Err(CreditError::Invalid(invalid)) => {
            form_state::refuse(
                manager.signed_in.session(),
                &form_key(BUY_FORM, slug),
                &credits_path(slug),
                &BuyValues { packs },
                field_errors(invalid),
            )
            .await
        }
        Err(e) => Err(AppError::from(e).into()),
    }
}

/// Saves the auto top-up settings (owners only; other members get 403).
pub async fn save_auto_top_up(
    visitor: Visitor,
    slug: &str,
    typed: TopUpValues,
) -> Result<(), PageError> {
    let member = visitor.signed_in().await?.member(slug)?;
    let form = TopUpForm {
        enabled: typed.enabled.then_some("on"),
        below: &typed.below,
        packs: &typed.packs,
        monthly_cap: &typed.monthly_cap,
    };
    let saved = credit_service::save_auto_top_up(
        member.signed_in.db(),
        &dep::<TopUpSignal>()?.0,
        &member.membership,
        form,
    )
    .await;
    match saved {
        Ok(saved) => {
            let notice = if saved.enabled {
                "Auto top-up is on."
            } else {
                "Auto top-up is off."
            };
            member.signed_in.flash(Flash::notice(notice)).await?;
            redirect(&credits_path(slug));
            Ok(())
        }
        Err(CreditError::Invalid(invalid)) => {
            form_state::refuse(
                member.signed_in.session(),
                &form_key(TOP_UP_FORM, slug),
                &credits_path(slug),
                &typed,
                field_errors(invalid),
            )
            .await
        }
        Err(e) => Err(AppError::from(e).into()),
    }
}
