//! What the API keys page's server functions do on the server: the page's read (with the secret
//! of a key just created, taken from the session as it is shown), creating a key and revoking
//! one. A refused name goes back to the page through the session (`web::form_state`).

use uuid::Uuid;

use super::keys;
use super::keys_page::{
    ApiKeysView, KeyLine, NewKeyShown, NewKeyValues, ScopeChoice, NEW_KEY_FORM,
};
use super::scopes::{Scope, Scopes};
use super::ApiState;
use crate::error::AppError;
use crate::web::caller::{dep, redirect, Visitor};
use crate::web::chrome::{Flash, Page};
use crate::web::flash::take_once;
use crate::web::form_state::{self, Kept};
use crate::web::page_error::{FieldErrors, PageError};

/// Where a new key's name and secret wait, in the session, for the one page that shows them.
const NEW_KEY: &str = "new_api_key";

fn when(at: Option<chrono::DateTime<chrono::Utc>>) -> String {
    at.map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_else(|| "never".to_owned())
}

fn keys_path(slug: &str) -> String {
    format!("/orgs/{slug}/api-keys")
}

/// Kept values are per organization, so what was typed for one is never shown on another's page.
fn form_key(slug: &str) -> String {
    format!("{NEW_KEY_FORM}:{slug}")
}

/// `/orgs/{slug}/api-keys`: shows a just-created secret once (it is removed as it is read).
pub async fn api_keys_page(slug: &str) -> Result<Page<ApiKeysView>, AppError> {
    let member = Visitor::reading().await?.signed_in().await?.member(slug)?;
    let session = member.signed_in.session();
    let new_key = take_once::<(String, String)>(session, NEW_KEY)
        .await?
        .map(|(name, secret)| NewKeyShown { name, secret });
    let form: Kept<NewKeyValues> = form_state::take(session, &form_key(slug)).await?;
    let keys = keys::list(member.signed_in.db(), member.org_id())
        .await?
        .into_iter()
        .map(|k| KeyLine {
            id: k.id.to_string(),
            revoked: k.revoked_at.is_some(),
            created: when(Some(k.created_at)),
            last_used: when(k.last_used_at),
            created_by: k.created_by_email.unwrap_or_default(),
            scopes: scopes_shown(Scopes::from_names(&k.scopes)),
            name: k.name,
            prefix: k.prefix,
        })
        .collect();
    let body = ApiKeysView {
        slug: slug.to_owned(),
        org_name: member.membership.org.name.clone(),
        manage: member.membership.role.can_manage(),
        new_key,
        keys,
        scope_choices: Scope::ALL
            .into_iter()
            .map(|scope| ScopeChoice {
                field: scope.name().replace(':', "_"),
                name: scope.name().to_owned(),
                label: scope.label().to_owned(),
            })
            .collect(),
        form,
    };
    Ok(Page {
        chrome: member.chrome().await?,
        body,
    })
}

/// How a key's scopes read in the list.
fn scopes_shown(scopes: Scopes) -> String {
    if scopes.is_all() {
        "all scopes".to_owned()
    } else {
        scopes.names().join(", ")
    }
}

/// Creates a named key with the scopes ticked (none ticked: all) for owners and admins, and
/// leaves its secret for the page.
pub async fn create(visitor: Visitor, slug: &str, typed: NewKeyValues) -> Result<(), PageError> {
    let manager = visitor.signed_in().await?.member(slug)?.manager()?;
    let name = typed.name.trim().to_owned();
    let mut errors = FieldErrors::new();
    if name.is_empty() || name.chars().count() > 100 {
        errors.insert(
            "name".to_owned(),
            "Give the key a name of 1 to 100 characters.".to_owned(),
        );
    }
    // The boxes name only known scopes; anything else is a forged form.
    let picked: Option<Vec<Scope>> = typed.scopes.iter().map(|n| Scope::parse(n)).collect();
    let (Some(picked), true) = (picked, errors.is_empty()) else {
        return form_state::refuse(
            manager.signed_in.session(),
            &form_key(slug),
            &keys_path(slug),
            &typed,
            errors,
        )
        .await;
    };
    let secret = keys::create_with_scopes(
        manager.signed_in.db(),
        manager.org_id(),
        &name,
        Some(manager.signed_in.user.id),
        Scopes::chosen(picked),
    )
    .await?;
    manager
        .signed_in
        .session()
        .insert(NEW_KEY, (name, secret))
        .await?;
    redirect(&keys_path(slug));
    Ok(())
}

/// Revokes one of the organization's keys (owners and admins).
pub async fn revoke(visitor: Visitor, slug: &str, id: &str) -> Result<(), AppError> {
    let manager = visitor.signed_in().await?.member(slug)?.manager()?;
    let id = Uuid::parse_str(id).map_err(|_| AppError::NotFound)?;
    if !keys::revoke(manager.signed_in.db(), manager.org_id(), id).await? {
        return Err(AppError::NotFound);
    }
    // This instance stops accepting it before its own notice arrives; the notice (see the
    // migration `20261203000002_api_cache_notices.sql`) tells every other instance.
    dep::<ApiState>()?.keys.forget_all();
    manager
        .signed_in
        .flash(Flash::notice("The key was revoked."))
        .await?;
    redirect(&keys_path(slug));
    Ok(())
}
