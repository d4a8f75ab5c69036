//! The organization's API keys page: owners and admins create (named) keys, see each secret
//! once, and revoke keys. Members see the list only.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use leptos::prelude::*;
use serde::Deserialize;
use uuid::Uuid;

use super::keys::{self, KeyRow};
use crate::error::AppError;
use crate::orgs::repo::Membership;
use crate::web::context::{Page, SignedIn};
use crate::web::csrf::{CsrfForm, NoFields};
use crate::web::flash::{self, Flash};
use crate::web::layout::{CsrfField, Field};
use crate::web::state::AppState;

fn when(at: Option<chrono::DateTime<chrono::Utc>>) -> String {
    at.map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_else(|| "never".to_owned())
}

struct Shown {
    secret: Option<(String, String)>,
    name: String,
    error: Option<String>,
}

fn keys_view(m: &Membership, rows: Vec<KeyRow>, token: String, shown: Shown) -> impl IntoView {
    let slug = m.org.slug.clone();
    let manage = m.role.can_manage();
    let create = format!("/orgs/{slug}/api-keys");
    let secret = shown.secret.map(|(name, secret)| {
        view! {
            <section class="card notice-card" aria-labelledby="secret-heading">
                <h2 id="secret-heading">{format!("Your new key \u{201c}{name}\u{201d}")}</h2>
                <p>"Copy it now: it is shown only once. Send it as " <code>"Authorization: Bearer KEY"</code> "."</p>
                <p><code class="secret" data-testid="new-api-key">{secret}</code></p>
            </section>
        }
    });
    let form = manage.then(|| {
        let token = token.clone();
        view! {
            <section class="card" aria-labelledby="new-key-heading">
                <h2 id="new-key-heading">"Create a key"</h2>
                <form method="post" action=create.clone() novalidate>
                    <CsrfField token=token />
                    <Field label="Name" name="name" value=shown.name error=shown.error />
                    <button type="submit">"Create key"</button>
                </form>
            </section>
        }
    });
    let rows_view = rows
        .into_iter()
        .map(|k| {
            let revoke = format!("/orgs/{slug}/api-keys/{}/revoke", k.id);
            let token = token.clone();
            let state = if k.revoked_at.is_some() { "Revoked" } else { "Active" };
            let button = (manage && k.revoked_at.is_none()).then(|| {
                view! {
                    <form method="post" action=revoke class="inline">
                        <CsrfField token=token />
                        <button type="submit" class="secondary">{format!("Revoke {}", k.name)}</button>
                    </form>
                }
            });
            view! {
                <tr>
                    <td>{k.name.clone()}</td>
                    <td><code>{format!("{}…", k.prefix)}</code></td>
                    <td>{state}</td>
                    <td>{when(Some(k.created_at))}</td>
                    <td>{when(k.last_used_at)}</td>
                    <td>{k.created_by_email.unwrap_or_default()}</td>
                    <td>{button}</td>
                </tr>
            }
        })
        .collect_view();
    view! {
        <section class="page-heading">
            <h1>"API keys"</h1>
            <p class="muted">
                "Your product records billable actions and reads entitlements with these keys. "
                <a href="/api/v1/openapi.json">"API reference (OpenAPI)"</a>
            </p>
        </section>
        {secret}
        {form}
        <section class="card" aria-labelledby="keys-heading">
            <h2 id="keys-heading">"Keys"</h2>
            <table>
                <thead><tr>
                    <th scope="col">"Name"</th><th scope="col">"Key"</th><th scope="col">"Status"</th>
                    <th scope="col">"Created"</th><th scope="col">"Last used"</th>
                    <th scope="col">"Created by"</th><th scope="col"><span class="visually-hidden">"Actions"</span></th>
                </tr></thead>
                <tbody>{rows_view}</tbody>
            </table>
        </section>
    }
}

async fn render(
    state: &AppState,
    signed_in: SignedIn,
    m: Membership,
    status: StatusCode,
    shown: Shown,
) -> Result<Page, AppError> {
    let rows = keys::list(&state.db, m.org.id).await?;
    let token = signed_in.authenticity_token()?;
    let title = format!("API keys · {}", m.org.name);
    let body = keys_view(&m, rows, token, shown);
    signed_in.page(status, &title, Some(m.org.id), body).await
}

/// Where a new key's name and secret wait, in the session, for the one page that shows them.
const NEW_KEY: &str = "new_api_key";

/// `GET /orgs/{slug}/api-keys`: shows a just-created secret once (it is removed as it is read).
pub async fn index(
    State(state): State<AppState>,
    Path(slug): Path<String>,
    signed_in: SignedIn,
) -> Result<Page, AppError> {
    let m = signed_in.membership(&slug)?;
    let secret: Option<(String, String)> = flash::take_once(&signed_in.session, NEW_KEY).await?;
    let shown = Shown {
        secret,
        name: String::new(),
        error: None,
    };
    render(&state, signed_in, m, StatusCode::OK, shown).await
}

#[derive(Debug, Deserialize)]
pub struct NewKeyFields {
    #[serde(default)]
    name: String,
}

/// `POST /orgs/{slug}/api-keys`: creates a key and redirects to the page that shows its secret
/// once (so reloading that page never creates another key).
pub async fn create(
    State(state): State<AppState>,
    Path(slug): Path<String>,
    signed_in: SignedIn,
    form: CsrfForm<NewKeyFields>,
) -> Result<Response, AppError> {
    let m = signed_in.membership(&slug)?;
    if !m.role.can_manage() {
        return Err(AppError::Forbidden);
    }
    let name = form.fields.name.trim().to_owned();
    if name.is_empty() || name.chars().count() > 100 {
        let shown = Shown {
            secret: None,
            name,
            error: Some("Give the key a name of 1 to 100 characters.".to_owned()),
        };
        return Ok(render(
            &state,
            signed_in,
            m,
            StatusCode::UNPROCESSABLE_ENTITY,
            shown,
        )
        .await?
        .into_response());
    }
    let secret = keys::create(&state.db, m.org.id, &name, Some(signed_in.user.id)).await?;
    signed_in.session.insert(NEW_KEY, (name, secret)).await?;
    Ok(Redirect::to(&format!("/orgs/{slug}/api-keys")).into_response())
}

/// `POST /orgs/{slug}/api-keys/{id}/revoke`
pub async fn revoke(
    State(state): State<AppState>,
    Path((slug, id)): Path<(String, Uuid)>,
    signed_in: SignedIn,
    _: CsrfForm<NoFields>,
) -> Result<Response, AppError> {
    let m = signed_in.membership(&slug)?;
    if !m.role.can_manage() {
        return Err(AppError::Forbidden);
    }
    if !keys::revoke(&state.db, m.org.id, id).await? {
        return Err(AppError::NotFound);
    }
    // This instance stops accepting it at once; others within the cache's few seconds.
    state.api.keys.forget_all();
    flash::set(&signed_in.session, Flash::notice("The key was revoked.")).await?;
    Ok(Redirect::to(&format!("/orgs/{slug}/api-keys")).into_response())
}
