//! The audit pages' reads on the server: an organization's rows for its owners (other members
//! get 403, outsiders 404), everyone's for platform admins with the filter checked first (a bad
//! date or an unknown actor kind is a 400 that says what is wrong).

use chrono::{Duration, NaiveDate, TimeZone, Utc};

use super::pages::{AuditFilter, AuditLine, AuditView, ACTOR_KINDS};
use super::queries::{self, AuditRow, Filter};
use crate::error::AppError;
use crate::orgs::model::Role;
use crate::web::caller::Visitor;
use crate::web::chrome::Page;

fn json(value: Option<serde_json::Value>) -> String {
    value
        .map(|v| serde_json::to_string_pretty(&v).unwrap_or_default())
        .unwrap_or_else(|| "—".to_owned())
}

fn line(r: AuditRow) -> AuditLine {
    let who = match (&r.actor_label, &r.actor_id) {
        (Some(label), _) => format!("{} {label}", r.actor_kind),
        (None, Some(id)) => format!("{} {id}", r.actor_kind),
        (None, None) => r.actor_kind.clone(),
    };
    AuditLine {
        at: r.at.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
        org: r.org_slug.unwrap_or_else(|| "—".to_owned()),
        who,
        action: r.action,
        what: format!("{} {}", r.entity, r.entity_id.unwrap_or_default()),
        reason: r.reason.unwrap_or_default(),
        before: json(r.before),
        after: json(r.after),
    }
}

/// `/orgs/{slug}/audit`: owners only.
pub async fn org_page(slug: &str) -> Result<Page<AuditView>, AppError> {
    let member = Visitor::reading().await?.signed_in().await?.member(slug)?;
    if member.membership.role != Role::Owner {
        return Err(AppError::Forbidden);
    }
    let rows = queries::rows(
        member.signed_in.db(),
        &Filter {
            org_id: Some(member.org_id()),
            ..Filter::default()
        },
    )
    .await?;
    Ok(Page {
        chrome: member.chrome().await?,
        body: AuditView {
            org_name: member.membership.org.name.clone(),
            slug: slug.to_owned(),
            filter: AuditFilter::default(),
            lines: rows.into_iter().map(line).collect(),
        },
    })
}

fn day(typed: &str, name: &str) -> Result<Option<chrono::DateTime<Utc>>, AppError> {
    let typed = typed.trim();
    if typed.is_empty() {
        return Ok(None);
    }
    let date = NaiveDate::parse_from_str(typed, "%Y-%m-%d")
        .map_err(|_| AppError::BadRequest(format!("“{name}” must be a date like 2026-12-01.")))?;
    Ok(date
        .and_hms_opt(0, 0, 0)
        .and_then(|t| Utc.from_local_datetime(&t).single()))
}

/// `/admin/audit?org=&actor=&action=&from=&to=`
pub async fn admin_page(filter: AuditFilter) -> Result<Page<AuditView>, AppError> {
    let admin = Visitor::reading()
        .await?
        .signed_in()
        .await?
        .platform_admin()?;
    let actor = Some(filter.actor.trim()).filter(|a| !a.is_empty());
    if let Some(a) = actor {
        if !ACTOR_KINDS.contains(&a) {
            return Err(AppError::BadRequest(format!(
                "“{a}” is not an actor kind (user, api_key, stripe_event, job, system)."
            )));
        }
    }
    let org = filter.org.trim();
    let org_id = if org.is_empty() {
        None
    } else {
        Some(
            crate::admin::queries::organization(admin.db(), org)
                .await?
                .map(|(id, _)| id)
                .ok_or_else(|| {
                    AppError::BadRequest(format!("There is no organization “{org}”."))
                })?,
        )
    };
    let action = Some(filter.action.trim()).filter(|a| !a.is_empty());
    if action.is_some_and(|a| a.chars().count() > 100) {
        return Err(AppError::BadRequest(
            "The action is at most 100 characters.".into(),
        ));
    }
    let rows = queries::rows(
        admin.db(),
        &Filter {
            org_id,
            actor_kind: actor,
            action,
            from: day(&filter.from, "From")?,
            // The whole of the last day.
            until: day(&filter.to, "To")?.map(|t| t + Duration::days(1)),
        },
    )
    .await?;
    Ok(Page {
        chrome: admin.chrome(None).await?,
        body: AuditView {
            org_name: String::new(),
            slug: String::new(),
            filter,
            lines: rows.into_iter().map(line).collect(),
        },
    })
}
