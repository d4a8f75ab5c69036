//! What the drift page and the repair forms do on the server, behind the platform admin guard:
//! read the drifts, run the check now, and the repair actions (through [`super::repair`]). A
//! refused input or a refusal from Stripe comes back as an alert on the page it came from and
//! changes nothing.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::pages::{DriftLine, DriftView};
use super::repair::{self, CancelWhen, RepairDeps, RepairError, Request};
use crate::billing::catalog::Catalog;
use crate::error::AppError;
use crate::stripe_gateway::Gateway;
use crate::web::caller::{dep, redirect, PlatformAdmin, Visitor};
use crate::web::chrome::{Flash, Page};

type Row = (
    String,
    String,
    String,
    String,
    String,
    String,
    String,
    DateTime<Utc>,
    Option<String>,
);

fn line(row: Row) -> DriftLine {
    let (org_name, slug, field, object_id, ours, stripe, cause, found, resolution) = row;
    DriftLine {
        org_name,
        slug,
        field,
        object_id,
        ours,
        stripe,
        cause,
        found: found.format("%Y-%m-%d %H:%M").to_string(),
        state: resolution.unwrap_or_else(|| "open".to_owned()),
    }
}

/// `/admin/drift`
pub async fn drift_page() -> Result<Page<DriftView>, AppError> {
    let admin = Visitor::reading()
        .await?
        .signed_in()
        .await?
        .platform_admin()?;
    let open: Vec<Row> = sqlx::query_as(
        "SELECT o.name, o.slug, d.field, d.object_id, d.ours, d.stripe, d.cause, d.found_at, d.resolution
         FROM billing_drifts d JOIN organizations o ON o.id = d.org_id
         WHERE d.resolved_at IS NULL ORDER BY d.found_at DESC, d.id LIMIT 500",
    )
    .fetch_all(admin.db())
    .await?;
    let closed: Vec<Row> = sqlx::query_as(
        "SELECT o.name, o.slug, d.field, d.object_id, d.ours, d.stripe, d.cause, d.found_at, d.resolution
         FROM billing_drifts d JOIN organizations o ON o.id = d.org_id
         WHERE d.resolved_at IS NOT NULL ORDER BY d.resolved_at DESC, d.id LIMIT 50",
    )
    .fetch_all(admin.db())
    .await?;
    Ok(Page {
        chrome: admin.chrome(None).await?,
        body: DriftView {
            open: open.into_iter().map(line).collect(),
            closed: closed.into_iter().map(line).collect(),
        },
    })
}

fn deps<'a>(admin: &'a PlatformAdmin, stripe: &'a Gateway, catalog: &'a Catalog) -> RepairDeps<'a> {
    RepairDeps {
        db: admin.db(),
        stripe,
        catalog,
    }
}

async fn org_id(admin: &PlatformAdmin, slug: &str) -> Result<Uuid, AppError> {
    crate::admin::queries::organization(admin.db(), slug)
        .await?
        .map(|(id, _)| id)
        .ok_or(AppError::NotFound)
}

/// Tells the admin how it went and sends them back to `path`. A refusal is an alert (nothing
/// changed); anything else unexpected is the error page.
async fn finish(
    admin: &PlatformAdmin,
    path: &str,
    done: Result<String, RepairError>,
) -> Result<(), AppError> {
    let flash = match done {
        Ok(message) => Flash::notice(message),
        Err(
            e @ (RepairError::Invalid { .. }
            | RepairError::NoCustomer
            | RepairError::NoSubscription
            | RepairError::NotTrialing(_)
            | RepairError::Ended
            | RepairError::Stripe(_)),
        ) => Flash::alert(format!("Nothing changed: {e}")),
        Err(e) => return Err(AppError::Internal(anyhow::anyhow!(e))),
    };
    admin.flash(flash).await?;
    redirect(path);
    Ok(())
}

/// Runs the drift check of every organization now (unless another instance is running it).
pub async fn check_now(visitor: Visitor) -> Result<(), AppError> {
    let admin = visitor.signed_in().await?.platform_admin()?;
    let stripe = dep::<Gateway>()?;
    let catalog = dep::<Arc<Catalog>>()?;
    let ran = super::jobs::drift_once(admin.db(), &stripe, &catalog)
        .await
        .map_err(AppError::Internal)?;
    let message = match ran {
        Some(report) => format!(
            "Checked {} organizations: {} open drifts, {} cleared.",
            report.organizations, report.open, report.closed
        ),
        None => {
            "A drift check is running on another instance; its results will show here.".to_owned()
        }
    };
    admin.flash(Flash::notice(message)).await?;
    redirect("/admin/drift");
    Ok(())
}

pub async fn resync(
    visitor: Visitor,
    slug: &str,
    reason: &str,
    back: &str,
) -> Result<(), AppError> {
    let admin = visitor.signed_in().await?.platform_admin()?;
    let org_id = org_id(&admin, slug).await?;
    let (stripe, catalog) = (dep::<Gateway>()?, dep::<Arc<Catalog>>()?);
    let path = if back == "drift" {
        "/admin/drift".to_owned()
    } else {
        format!("/admin/orgs/{slug}")
    };
    let done = async {
        let request = Request {
            admin: admin.user.id,
            org_id,
            reason: repair::reason(reason)?,
        };
        let left = repair::resync(deps(&admin, &stripe, &catalog), &request).await?;
        Ok(match left {
            0 => "Resynced from Stripe: no drift left.".to_owned(),
            n => format!("Resynced from Stripe; {n} differences remain (see the drift page)."),
        })
    }
    .await;
    finish(&admin, &path, done).await
}

pub async fn extend_trial(
    visitor: Visitor,
    slug: &str,
    days: &str,
    reason: &str,
) -> Result<(), AppError> {
    let admin = visitor.signed_in().await?.platform_admin()?;
    let org_id = org_id(&admin, slug).await?;
    let (stripe, catalog) = (dep::<Gateway>()?, dep::<Arc<Catalog>>()?);
    let done = async {
        let days = repair::trial_days(days)?;
        let request = Request {
            admin: admin.user.id,
            org_id,
            reason: repair::reason(reason)?,
        };
        let snapshot = repair::extend_trial(
            deps(&admin, &stripe, &catalog),
            &request,
            days,
            Uuid::new_v4(),
        )
        .await?;
        Ok(format!(
            "The trial now ends {}.",
            snapshot
                .trial_end
                .map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string())
                .unwrap_or_default()
        ))
    }
    .await;
    finish(&admin, &format!("/admin/orgs/{slug}"), done).await
}

pub async fn cancel(
    visitor: Visitor,
    slug: &str,
    when: &str,
    reason: &str,
) -> Result<(), AppError> {
    let admin = visitor.signed_in().await?.platform_admin()?;
    let org_id = org_id(&admin, slug).await?;
    let (stripe, catalog) = (dep::<Gateway>()?, dep::<Arc<Catalog>>()?);
    let done = async {
        let when = match when {
            "now" => CancelWhen::Now,
            "period_end" => CancelWhen::AtPeriodEnd,
            _ => {
                return Err(RepairError::Invalid {
                    field: "when",
                    message: "Choose to cancel now or at the end of the period.".to_owned(),
                })
            }
        };
        let request = Request {
            admin: admin.user.id,
            org_id,
            reason: repair::reason(reason)?,
        };
        repair::cancel(deps(&admin, &stripe, &catalog), &request, when).await?;
        Ok(match when {
            CancelWhen::Now => "The subscription is canceled.".to_owned(),
            CancelWhen::AtPeriodEnd => {
                "The subscription cancels at the end of its period.".to_owned()
            }
        })
    }
    .await;
    finish(&admin, &format!("/admin/orgs/{slug}"), done).await
}

/// The catch-up's state for the admin webhook page: cursor, last run, events caught up.
pub async fn catch_up_summary(db: &sqlx::PgPool) -> Result<String, AppError> {
    let s = super::catch_up::state(db).await?;
    let cursor = s
        .cursor
        .and_then(|t| DateTime::<Utc>::from_timestamp(t, 0))
        .map_or("not yet".to_owned(), |t| {
            t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
        });
    let last = s.last_run_at.map_or("never".to_owned(), |t| {
        t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
    });
    Ok(format!(
        "Catch-up cursor: {cursor} · last run {last}: {} listed, {} caught up · caught up in all: {} events",
        s.last_listed, s.last_inserted, s.caught_up_events
    ))
}
