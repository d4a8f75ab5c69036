//! What the notification pages' server functions do on the server: the settings of the signed-in
//! member, the unsubscribe page (by signed token, no session), an organization's history (its
//! owners and platform admins) and the mail catcher (platform admins).

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

use super::kinds::Category;
use super::pages::{
    CategoryRow, CaughtRow, HistoryRow, HistoryView, MailView, MessageView, SettingsView,
    UnsubscribeView,
};
use super::{preferences, token};
use crate::error::AppError;
use crate::orgs::model::Role;
use crate::web::caller::{dep, redirect, Visitor};
use crate::web::chrome::{Flash, Page};
use crate::web::csrf::CsrfKey;

const SETTINGS: &str = "/settings/notifications";
/// Rows the history and the catcher list.
const ROWS: i64 = 200;

fn when(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M:%S").to_string()
}

pub async fn settings_page() -> Result<Page<SettingsView>, AppError> {
    let signed_in = Visitor::reading().await?.signed_in().await?;
    let off = preferences::turned_off(signed_in.db(), signed_in.user.id).await?;
    let categories = Category::ALL
        .into_iter()
        .filter(|c| *c != Category::Operators || signed_in.user.is_platform_admin)
        .map(|c| CategoryRow {
            key: c.as_str().to_owned(),
            label: c.label().to_owned(),
            optional: c.optional(),
            on: !c.optional() || !off.contains(&c),
        })
        .collect();
    Ok(Page {
        chrome: signed_in.chrome(None).await?,
        body: SettingsView {
            email: signed_in.user.email.clone(),
            categories,
        },
    })
}

/// `ticked` pairs a category's name with its checkbox ("on" when ticked).
pub async fn save_preferences(visitor: Visitor, ticked: &[(&str, String)]) -> Result<(), AppError> {
    let signed_in = visitor.signed_in().await?;
    let on: Vec<Category> = ticked
        .iter()
        .filter(|(_, v)| v == "on")
        .filter_map(|(k, _)| Category::parse(k))
        .collect();
    preferences::set_received(signed_in.db(), signed_in.user.id, &on).await?;
    signed_in
        .flash(Flash::notice("Your notification settings were saved."))
        .await?;
    redirect(SETTINGS);
    Ok(())
}

pub async fn unsubscribe_page(raw: &str) -> Result<Page<UnsubscribeView>, AppError> {
    let visitor = Visitor::reading().await?;
    let found = token::verify(&dep::<CsrfKey>()?, raw);
    let done = match found {
        Some((user, category)) => preferences::turned_off(&visitor.db, user)
            .await?
            .contains(&category),
        None => false,
    };
    Ok(Page {
        chrome: visitor.chrome_for_form().await?,
        body: UnsubscribeView {
            label: found.map(|(_, c)| c.label().to_owned()),
            token: raw.to_owned(),
            done,
        },
    })
}

pub async fn unsubscribe(visitor: Visitor, raw: &str) -> Result<(), AppError> {
    let (user, category) = token::verify(&dep::<CsrfKey>()?, raw)
        .ok_or_else(|| AppError::BadRequest("This unsubscribe link is not valid.".to_owned()))?;
    preferences::turn_off(&visitor.db, user, category)
        .await
        .map_err(|e| AppError::BadRequest(e.to_string()))?;
    visitor
        .flash(Flash::notice(format!(
            "Unsubscribed from: {}.",
            category.label()
        )))
        .await?;
    redirect(&format!("/unsubscribe/{raw}"));
    Ok(())
}

#[derive(sqlx::FromRow)]
struct Row {
    id: i64,
    created_at: DateTime<Utc>,
    kind: String,
    recipient: String,
    subject: Option<String>,
    status: String,
    attempts: i32,
    last_error: Option<String>,
}

fn history_row(r: Row) -> HistoryRow {
    HistoryRow {
        id: r.id,
        created: when(r.created_at),
        kind: r.kind,
        recipient: r.recipient,
        subject: r.subject.unwrap_or_default(),
        status: r.status,
        attempts: r.attempts,
        error: r.last_error.unwrap_or_default(),
    }
}

async fn history(
    db: &PgPool,
    org: Option<Uuid>,
    only_failed: bool,
) -> sqlx::Result<Vec<HistoryRow>> {
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT id, created_at, kind, recipient, subject, status, attempts, last_error
         FROM notification_outbox
         WHERE ($1::uuid IS NULL OR org_id = $1) AND (NOT $2 OR status = 'failed')
         ORDER BY created_at DESC, id DESC LIMIT $3",
    )
    .bind(org)
    .bind(only_failed)
    .bind(ROWS)
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().map(history_row).collect())
}

/// `/orgs/{slug}/notifications`: for the organization's owners and platform admins.
pub async fn history_page(slug: &str) -> Result<Page<HistoryView>, AppError> {
    let signed_in = Visitor::reading().await?.signed_in().await?;
    let own = signed_in
        .memberships
        .iter()
        .find(|m| m.org.slug == slug)
        .map(|m| (m.org.id, m.org.name.clone(), m.role));
    let (org_id, org_name) = match own {
        Some((id, name, Role::Owner)) => (id, name),
        _ if signed_in.user.is_platform_admin => sqlx::query_as::<_, (Uuid, String)>(
            "SELECT id, name FROM organizations WHERE slug = $1",
        )
        .bind(slug)
        .fetch_optional(signed_in.db())
        .await?
        .ok_or(AppError::NotFound)?,
        Some(_) => return Err(AppError::Forbidden),
        None => return Err(AppError::NotFound),
    };
    let rows = history(signed_in.db(), Some(org_id), false).await?;
    Ok(Page {
        chrome: signed_in.chrome(Some(org_id)).await?,
        body: HistoryView {
            org_name,
            slug: slug.to_owned(),
            can_resend: signed_in.user.is_platform_admin,
            rows,
        },
    })
}

/// Resends one of the organization's messages (platform admins, with a reason), then back to the
/// history with what happened.
pub async fn resend(visitor: Visitor, slug: &str, id: &str, reason: &str) -> Result<(), AppError> {
    use super::resend::ResendError;
    let admin = visitor.signed_in().await?.platform_admin()?;
    let org_id = crate::admin::queries::organization(admin.db(), slug)
        .await?
        .map(|(id, _)| id)
        .ok_or(AppError::NotFound)?;
    let id: i64 = id.parse().map_err(|_| AppError::NotFound)?;
    let flash = match super::resend::resend(admin.db(), admin.user.id, org_id, id, reason).await {
        Ok(_) => Flash::notice("The message was written again and will be sent shortly."),
        Err(ResendError::Database(e)) => return Err(e.into()),
        Err(e) => Flash::alert(format!("Nothing was resent: {e}")),
    };
    admin.flash(flash).await?;
    crate::web::caller::redirect(&format!("/orgs/{slug}/notifications"));
    Ok(())
}

pub async fn mail_page() -> Result<Page<MailView>, AppError> {
    let admin = Visitor::reading()
        .await?
        .signed_in()
        .await?
        .platform_admin()?;
    let caught: Vec<(i64, DateTime<Utc>, String, String)> = sqlx::query_as(
        "SELECT id, caught_at, recipient, subject FROM caught_mail ORDER BY id DESC LIMIT $1",
    )
    .bind(ROWS)
    .fetch_all(admin.db())
    .await?;
    let failed = history(admin.db(), None, true).await?;
    Ok(Page {
        chrome: admin.chrome(None).await?,
        body: MailView {
            caught: caught
                .into_iter()
                .map(|(id, at, recipient, subject)| CaughtRow {
                    id,
                    caught: when(at),
                    recipient,
                    subject,
                })
                .collect(),
            failed,
        },
    })
}

pub async fn message_page(id: &str) -> Result<Page<MessageView>, AppError> {
    let admin = Visitor::reading()
        .await?
        .signed_in()
        .await?
        .platform_admin()?;
    let id: i64 = id.parse().map_err(|_| AppError::NotFound)?;
    let (subject, recipient, headers, text, html): (String, String, String, String, String) =
        sqlx::query_as(
            "SELECT subject, recipient, headers, text_body, html_body FROM caught_mail WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(admin.db())
        .await?
        .ok_or(AppError::NotFound)?;
    Ok(Page {
        chrome: admin.chrome(None).await?,
        body: MessageView {
            subject,
            recipient,
            headers,
            text,
            html,
        },
    })
}
