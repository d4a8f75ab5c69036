//! The organization's API keys page, with its read function and its forms as server functions:
//! owners and admins create (named) keys with the scopes they pick (none picked: all), see each
//! secret once (on the page the creation redirects to), and revoke keys; members see the list,
//! with each key's scopes and when it was last used. What the functions do on the
//! server is in [`super::keys_forms`].

use leptos::prelude::*;
use leptos_router::hooks::use_params_map;
use serde::{Deserialize, Serialize};

use crate::web::chrome::Page;
use crate::web::layout::{show_page, CsrfField, Field, FormError};
use crate::web::page_error::{Kept, PageError, WHOLE_FORM};

/// The form name its kept values are stored under (see `web::form_state`).
pub const NEW_KEY_FORM: &str = "api-key";

/// The API keys page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApiKeysView {
    pub slug: String,
    pub org_name: String,
    /// Whether the viewer may create and revoke keys (owners and admins).
    pub manage: bool,
    /// The key just created, shown this once.
    pub new_key: Option<NewKeyShown>,
    pub keys: Vec<KeyLine>,
    /// The scopes a new key may be given, in order.
    pub scope_choices: Vec<ScopeChoice>,
    pub form: Kept<NewKeyValues>,
}

/// One scope checkbox of the new key form.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScopeChoice {
    /// The form field (`usage_write`).
    pub field: String,
    /// The scope's name (`usage:write`).
    pub name: String,
    /// What it allows.
    pub label: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewKeyShown {
    pub name: String,
    pub secret: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyLine {
    pub id: String,
    pub name: String,
    pub prefix: String,
    pub revoked: bool,
    /// `YYYY-MM-DD HH:MM UTC`.
    pub created: String,
    /// `YYYY-MM-DD HH:MM UTC`, or `never`.
    pub last_used: String,
    pub created_by: String,
    /// The scope names the key holds, or `all scopes`.
    pub scopes: String,
}

/// The new key form as typed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewKeyValues {
    pub name: String,
    /// The scope names ticked.
    pub scopes: Vec<String>,
}

#[server(prefix = "/forms", endpoint = "read/api-keys")]
pub async fn api_keys_page(
    #[server(default)] slug: String,
) -> Result<Page<ApiKeysView>, PageError> {
    Ok(super::keys_forms::api_keys_page(&slug).await?)
}

/// Creates a key and redirects to the page that shows its secret once (so reloading that page
/// never creates another key).
#[server(prefix = "/forms", endpoint = "api-keys/create")]
pub async fn create_api_key(
    #[server(default)] authenticity_token: String,
    #[server(default)] slug: String,
    #[server(default)] name: String,
    // The scope checkboxes: `on` when ticked, absent otherwise.
    #[server(default)] usage_write: String,
    #[server(default)] entitlements_read: String,
    #[server(default)] billing_read: String,
    #[server(default)] billing_write: String,
) -> Result<(), PageError> {
    let visitor = crate::web::caller::Visitor::posting(&authenticity_token).await?;
    let ticked = [
        ("usage:write", usage_write),
        ("entitlements:read", entitlements_read),
        ("billing:read", billing_read),
        ("billing:write", billing_write),
    ]
    .into_iter()
    .filter(|(_, ticked)| ticked == "on")
    .map(|(name, _)| name.to_owned())
    .collect();
    super::keys_forms::create(
        visitor,
        &slug,
        NewKeyValues {
            name,
            scopes: ticked,
        },
    )
    .await
}

#[server(prefix = "/forms", endpoint = "api-keys/revoke")]
pub async fn revoke_api_key(
    #[server(default)] authenticity_token: String,
    #[server(default)] slug: String,
    #[server(default)] id: String,
) -> Result<(), PageError> {
    let visitor = crate::web::caller::Visitor::posting(&authenticity_token).await?;
    Ok(super::keys_forms::revoke(visitor, &slug, &id).await?)
}

#[component]
pub fn ApiKeysPage() -> impl IntoView {
    let params = use_params_map();
    let page = Resource::new(
        move || params.read().get("slug").unwrap_or_default(),
        api_keys_page,
    );
    show_page(page, |k| format!("API keys · {}", k.org_name), keys_view)
}

fn keys_view(page: ApiKeysView, token: String) -> impl IntoView {
    let ApiKeysView {
        slug,
        manage,
        new_key,
        keys,
        scope_choices,
        form,
        ..
    } = page;
    let secret = new_key.map(|NewKeyShown { name, secret }| {
        view! {
            <section class="card notice-card" aria-labelledby="secret-heading">
                <h2 id="secret-heading">{format!("Your new key \u{201c}{name}\u{201d}")}</h2>
                <p>"Copy it now: it is shown only once. Send it as " <code>"Authorization: Bearer KEY"</code> "."</p>
                <p><code class="secret" data-testid="new-api-key">{secret}</code></p>
            </section>
        }
    });
    let create = manage.then(|| {
        let action = ServerAction::<CreateApiKey>::new();
        let (token, slug) = (token.clone(), slug.clone());
        view! {
            <section class="card" aria-labelledby="new-key-heading">
                <h2 id="new-key-heading">"Create a key"</h2>
                <ActionForm action=action attr:novalidate=true>
                    <CsrfField token=token />
                    <input type="hidden" name="slug" value=slug />
                    <FormError message=form.error(WHOLE_FORM) />
                    <Field label="Name" name="name" value=form.values.name.clone()
                        error=form.error("name") />
                    <fieldset class="scopes">
                        <legend>"Scopes"</legend>
                        <p class="muted" id="scopes-hint">"Pick what the key may do. None picked: the key may do everything."</p>
                        {scope_choices.into_iter().map(|choice| {
                            let id = format!("scope-{}", choice.field);
                            let checked = form.values.scopes.contains(&choice.name);
                            view! {
                                <div class="field checkbox">
                                    <input type="checkbox" id=id.clone() name=choice.field value="on"
                                        checked=checked aria-describedby="scopes-hint" />
                                    <label for=id><code>{choice.name}</code>" \u{2014} "{choice.label}</label>
                                </div>
                            }
                        }).collect_view()}
                    </fieldset>
                    <button type="submit">"Create key"</button>
                </ActionForm>
            </section>
        }
    });
    let rows = keys
        .into_iter()
        .map(|k| {
            let button = (manage && !k.revoked).then(|| {
                let action = ServerAction::<RevokeApiKey>::new();
                let (token, slug, name) = (token.clone(), slug.clone(), k.name.clone());
                view! {
                    <ActionForm action=action attr:class="inline">
                        <CsrfField token=token />
                        <input type="hidden" name="slug" value=slug />
                        <input type="hidden" name="id" value=k.id.clone() />
                        <button type="submit" class="secondary">{format!("Revoke {name}")}</button>
                    </ActionForm>
                }
            });
            view! {
                <tr>
                    <td>{k.name.clone()}</td>
                    <td><code>{format!("{}…", k.prefix)}</code></td>
                    <td>{if k.revoked { "Revoked" } else { "Active" }}</td>
                    <td>{k.scopes}</td>
                    <td>{k.created}</td>
                    <td>{k.last_used}</td>
                    <td>{k.created_by}</td>
                    <td>{button}</td>
                </tr>
            }
        })
        .collect_view();
    view! {
        <section class="page-heading">
            <h1>"API keys"</h1>
            <p class="muted">
                "Your product records billable actions, reads entitlements and runs its billing with these keys. "
                <a href="/docs/api">"API reference"</a>" ("<a href="/api/v1/openapi.json">"OpenAPI document"</a>")"
            </p>
        </section>
        {secret}
        <crate::usage::gauge_usage::GaugeUsage slug=slug.clone() />
        {create}
        <section class="card" aria-labelledby="keys-heading">
            <h2 id="keys-heading">"Keys"</h2>
            <table>
                <thead><tr>
                    <th scope="col">"Name"</th><th scope="col">"Key"</th><th scope="col">"Status"</th>
                    <th scope="col">"Scopes"</th>
                    <th scope="col">"Created"</th><th scope="col">"Last used"</th>
                    <th scope="col">"Created by"</th><th scope="col"><span class="visually-hidden">"Actions"</span></th>
                </tr></thead>
                <tbody>{rows}</tbody>
            </table>
        </section>
    }
}
