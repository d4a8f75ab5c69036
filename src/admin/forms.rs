//! What the admin pages' server functions do on the server, each behind the platform admin
//! guard: the reads of the pages, the grant or removal of credits (through the credit service;
//! a refused field goes back to the page through the session), and replaying a webhook event.

use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::pages::{
    AdjustValues, EventLine, HistoryLine, InvoiceLine, OrgLine, OrgView, OrgsView,
    SubscriptionFacts, WebhookView, WebhooksView, ADJUST_FORM, STATUSES,
};
use super::queries::{self, EventRow, OrgRow};
use crate::api::ApiState;
use crate::audit::context::{acting, Actor, Stamp};
use crate::billing::catalog::Catalog;
use crate::billing::repo as billing;
use crate::billing::subscription::{grace_ends, GRACE_DAYS};
use crate::billing::webhooks::Inbox;
use crate::error::AppError;
use crate::usage::credit_input::AdjustmentForm;
use crate::usage::credit_service::{self, CreditError};
use crate::usage::credits;
use crate::usage::forms::{field_errors, ledger_lines};
use crate::web::caller::{dep, redirect, PlatformAdmin, Visitor};
use crate::web::chrome::{Flash, Page};
use crate::web::form_state::{self, Kept};
use crate::web::format::money;
use crate::web::page_error::PageError;

/// Ledger lines the admin's organization page lists.
const LEDGER_LINES: i64 = 50;

fn when(at: Option<DateTime<Utc>>) -> String {
    at.map(|d| d.format("%Y-%m-%d %H:%M").to_string())
        .unwrap_or_else(|| "—".to_owned())
}

async fn admin_reading() -> Result<PlatformAdmin, AppError> {
    Visitor::reading()
        .await?
        .signed_in()
        .await?
        .platform_admin()
}

fn org_page_path(slug: &str) -> String {
    format!("/admin/orgs/{slug}")
}

/// Kept values are per organization, so what was typed for one is never shown on another's page.
fn form_key(slug: &str) -> String {
    format!("{ADJUST_FORM}:{slug}")
}

fn org_line(catalog: &Catalog, o: OrgRow) -> OrgLine {
    let plan = o
        .plan_key
        .as_deref()
        .and_then(|k| catalog.plan(k))
        .map_or_else(|| catalog.free().name.clone(), |p| p.name.clone());
    let status = o.status.clone().unwrap_or_else(|| "free".to_owned());
    let ends = match status.as_str() {
        "trialing" => when(o.trial_end),
        "past_due" | "unpaid" => when(
            o.past_due_since
                .map(|s| s + chrono::Duration::days(GRACE_DAYS)),
        ),
        _ => "—".to_owned(),
    };
    OrgLine {
        name: o.name,
        slug: o.slug,
        owners: o.owner_emails.join(", "),
        plan,
        status,
        ends,
        created: o.created_at.format("%Y-%m-%d").to_string(),
    }
}

fn event_line(e: EventRow) -> EventLine {
    EventLine {
        id: e.id,
        kind: e.kind,
        status: e.status,
        attempts: e.attempts,
        received: when(Some(e.received_at)),
        last_error: e.last_error.unwrap_or_default(),
    }
}

/// `/admin?q=...`
pub async fn orgs_page(query: &str) -> Result<Page<OrgsView>, AppError> {
    let admin = admin_reading().await?;
    let catalog = dep::<Arc<Catalog>>()?;
    let orgs = queries::organizations(admin.db(), query)
        .await?
        .into_iter()
        .map(|o| org_line(&catalog, o))
        .collect();
    Ok(Page {
        chrome: admin.chrome(None).await?,
        body: OrgsView {
            query: query.to_owned(),
            orgs,
        },
    })
}

/// `/admin/orgs/{slug}`
pub async fn org_page(slug: &str) -> Result<Page<OrgView>, AppError> {
    let admin = admin_reading().await?;
    let db = admin.db();
    let (org_id, name) = queries::organization(db, slug)
        .await?
        .ok_or(AppError::NotFound)?;
    let subscription = billing::subscription(db, org_id)
        .await?
        .map(|(s, _)| SubscriptionFacts {
            grace_ends: when(grace_ends(&s)),
            id: s.stripe_subscription_id,
            plan: s.plan_key,
            status: s.status,
            trial_ends: when(s.trial_end),
            period_ends: when(s.current_period_end),
            cancels_at_period_end: s.cancel_at_period_end,
        });
    let history = billing::history(db, org_id)
        .await?
        .into_iter()
        .map(|h| HistoryLine {
            at: when(Some(h.at)),
            plan: h.plan_key,
            status: h.status,
            source: h.source,
        })
        .collect();
    let currency = dep::<Arc<Catalog>>()?.currency.clone();
    let invoices = billing::invoices(db, org_id)
        .await?
        .into_iter()
        .map(|i| InvoiceLine {
            number: i.number.unwrap_or_else(|| "—".into()),
            amount: money(i.amount_due.max(i.amount_paid), &currency),
            status: i.status,
            created: when(Some(i.created)),
        })
        .collect();
    let events = queries::events(db, None, None, Some(org_id))
        .await?
        .into_iter()
        .map(event_line)
        .collect();
    let customer = billing::customer_of(db, org_id)
        .await?
        .unwrap_or_else(|| "none yet".into());
    let credit_service::LedgerSummary {
        balance_millicredits,
        lines,
    } = credit_service::ledger_summary(db, org_id, LEDGER_LINES).await?;
    let mut adjust: Kept<AdjustValues> = form_state::take(admin.session(), &form_key(slug)).await?;
    if adjust.errors.is_empty() {
        adjust.values.change = "grant".to_owned();
    }
    let body = OrgView {
        slug: slug.to_owned(),
        name,
        customer,
        subscription,
        balance: credits::format(balance_millicredits),
        ledger: ledger_lines(lines),
        adjust,
        history,
        invoices,
        events,
    };
    Ok(Page {
        chrome: admin.chrome(None).await?,
        body,
    })
}

/// `/admin/webhooks?type=...&status=...`
pub async fn webhooks_page(kind: &str, status: &str) -> Result<Page<WebhooksView>, AppError> {
    let admin = admin_reading().await?;
    let wanted_status = Some(status).filter(|s| !s.is_empty());
    if let Some(s) = wanted_status {
        if !STATUSES.contains(&s) {
            return Err(AppError::BadRequest(format!(
                "“{s}” is not an event status (pending, applied, ignored, failed)."
            )));
        }
    }
    let wanted_kind = Some(kind.trim()).filter(|k| !k.is_empty());
    let events = queries::events(admin.db(), wanted_kind, wanted_status, None)
        .await?
        .into_iter()
        .map(event_line)
        .collect();
    Ok(Page {
        chrome: admin.chrome(None).await?,
        body: WebhooksView {
            kind: kind.to_owned(),
            status: status.to_owned(),
            events,
            catch_up: crate::sync::forms::catch_up_summary(admin.db()).await?,
        },
    })
}

/// `/admin/webhooks/{id}`: one event with its raw payload.
pub async fn webhook_page(id: &str) -> Result<Page<WebhookView>, AppError> {
    let admin = admin_reading().await?;
    let (event, payload) = queries::event(admin.db(), id)
        .await?
        .ok_or(AppError::NotFound)?;
    let mut event = event_line(event);
    if event.last_error.is_empty() {
        event.last_error = "—".to_owned();
    }
    Ok(Page {
        chrome: admin.chrome(None).await?,
        body: WebhookView {
            event,
            payload: serde_json::to_string_pretty(&payload).unwrap_or_default(),
        },
    })
}

/// Grants or removes credits of the organization `slug`, with the admin as the ledger's author.
pub async fn adjust_credits(
    visitor: Visitor,
    slug: &str,
    typed: AdjustValues,
) -> Result<(), PageError> {
    let admin = visitor.signed_in().await?.platform_admin()?;
    let action = if typed.change == "remove" {
        "admin.remove_credits"
    } else {
        "admin.grant_credits"
    };
    let stamp = Stamp::of(Actor::User(admin.user.id))
        .action(action)
        .reason(typed.reason.trim());
    let entitlements = dep::<ApiState>()?.entitlements;
    let adjusted = acting(
        stamp,
        credit_service::adjust_credits(
            admin.db(),
            &entitlements,
            &admin.user,
            slug,
            AdjustmentForm {
                change: &typed.change,
                credits: &typed.credits,
                reason: &typed.reason,
            },
        ),
    )
    .await;
    match adjusted {
        Ok(adjusted) => {
            let verb = if adjusted.millicredits > 0 {
                "Granted"
            } else {
                "Removed"
            };
            admin
                .flash(Flash::notice(format!(
                    "{verb} {} credits.",
                    credits::format(adjusted.millicredits.abs())
                )))
                .await?;
            redirect(&org_page_path(slug));
            Ok(())
        }
        // Only for an organization that exists: the service looks it up first.
        Err(CreditError::Invalid(invalid)) => {
            form_state::refuse(
                admin.session(),
                &form_key(slug),
                &org_page_path(slug),
                &typed,
                field_errors(invalid),
            )
            .await
        }
        Err(e) => Err(AppError::from(e).into()),
    }
}

/// Queues the stored event `id` to be applied again, through the same code as a fresh delivery;
/// the reason goes to the audit log. Without a reason nothing happens and the page says why.
pub async fn replay(visitor: Visitor, id: &str, reason: &str) -> Result<(), AppError> {
    let admin = visitor.signed_in().await?.platform_admin()?;
    let reason = match crate::sync::repair::reason(reason) {
        Ok(reason) => reason,
        Err(e) => {
            admin
                .flash(Flash::alert(format!("Nothing changed: {e}")))
                .await?;
            redirect(&format!("/admin/webhooks/{id}"));
            return Ok(());
        }
    };
    let stamp = Stamp::of(Actor::User(admin.user.id))
        .action("admin.replay_event")
        .reason(reason);
    if !queries::replay(admin.db(), id, &stamp).await? {
        return Err(AppError::NotFound);
    }
    dep::<Inbox>()?.wake.notify_one();
    admin
        .flash(Flash::notice("The event is queued to be applied again."))
        .await?;
    redirect(&format!("/admin/webhooks/{id}"));
    Ok(())
}
