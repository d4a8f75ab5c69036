//! The notification pages: a member's settings (`/settings/notifications`), the unsubscribe page
//! a message links to (`/unsubscribe/{token}`, no session needed), an organization's history
//! (`/orgs/{slug}/notifications`, owners and platform admins) and the platform admins' mail
//! catcher (`/admin/mail`, `/admin/mail/{id}`). What the server functions do is in `forms`.

use leptos::prelude::*;
use leptos_router::hooks::use_params_map;
use serde::{Deserialize, Serialize};

use crate::web::chrome::Page;
use crate::web::layout::{show_page, CsrfField};
use crate::web::page_error::PageError;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CategoryRow {
    pub key: String,
    pub label: String,
    /// Whether it may be turned off.
    pub optional: bool,
    pub on: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SettingsView {
    pub email: String,
    pub categories: Vec<CategoryRow>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnsubscribeView {
    /// `None` for a link that is not genuine.
    pub label: Option<String>,
    pub token: String,
    /// Already turned off.
    pub done: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryRow {
    pub id: i64,
    pub created: String,
    pub kind: String,
    pub recipient: String,
    pub subject: String,
    pub status: String,
    pub attempts: i32,
    pub error: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryView {
    pub org_name: String,
    pub slug: String,
    /// Whether the viewer may resend messages (platform admins).
    pub can_resend: bool,
    pub rows: Vec<HistoryRow>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaughtRow {
    pub id: i64,
    pub caught: String,
    pub recipient: String,
    pub subject: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MailView {
    pub caught: Vec<CaughtRow>,
    /// Outbox rows that ended failed, from every organization.
    pub failed: Vec<HistoryRow>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageView {
    pub subject: String,
    pub recipient: String,
    pub headers: String,
    pub text: String,
    pub html: String,
}

#[server(prefix = "/forms", endpoint = "read/notification-settings")]
pub async fn notification_settings_page() -> Result<Page<SettingsView>, PageError> {
    Ok(super::forms::settings_page().await?)
}

/// Saves which categories the signed-in member receives (a ticked box is on).
#[server(prefix = "/forms", endpoint = "notifications/preferences")]
pub async fn save_preferences(
    #[server(default)] authenticity_token: String,
    #[server(default)] trial: String,
    #[server(default)] billing: String,
    #[server(default)] usage: String,
    #[server(default)] credits: String,
    #[server(default)] operators: String,
) -> Result<(), PageError> {
    let visitor = crate::web::caller::Visitor::posting(&authenticity_token).await?;
    let ticked = [
        ("trial", trial),
        ("billing", billing),
        ("usage", usage),
        ("credits", credits),
        ("operators", operators),
    ];
    Ok(super::forms::save_preferences(visitor, &ticked).await?)
}

#[server(prefix = "/forms", endpoint = "read/unsubscribe")]
pub async fn unsubscribe_page(
    #[server(default)] token: String,
) -> Result<Page<UnsubscribeView>, PageError> {
    Ok(super::forms::unsubscribe_page(&token).await?)
}

/// Turns off the category the token names, for the person it names (no session needed).
#[server(prefix = "/forms", endpoint = "notifications/unsubscribe")]
pub async fn unsubscribe(
    #[server(default)] authenticity_token: String,
    #[server(default)] token: String,
) -> Result<(), PageError> {
    let visitor = crate::web::caller::Visitor::posting(&authenticity_token).await?;
    Ok(super::forms::unsubscribe(visitor, &token).await?)
}

#[server(prefix = "/forms", endpoint = "read/org-notifications")]
pub async fn org_notifications_page(
    #[server(default)] slug: String,
) -> Result<Page<HistoryView>, PageError> {
    Ok(super::forms::history_page(&slug).await?)
}

#[server(prefix = "/forms", endpoint = "read/admin-mail")]
pub async fn admin_mail_page() -> Result<Page<MailView>, PageError> {
    Ok(super::forms::mail_page().await?)
}

#[server(prefix = "/forms", endpoint = "read/admin-mail-message")]
pub async fn admin_mail_message_page(
    #[server(default)] id: String,
) -> Result<Page<MessageView>, PageError> {
    Ok(super::forms::message_page(&id).await?)
}

#[component]
pub fn NotificationSettingsPage() -> impl IntoView {
    let page = Resource::new(|| (), |_| notification_settings_page());
    show_page(page, |_| "Notification settings".to_owned(), settings_view)
}

fn settings_view(page: SettingsView, token: String) -> impl IntoView {
    let action = ServerAction::<SavePreferences>::new();
    view! {
        <section class="page-heading">
            <h1>"Notification settings"</h1>
            <p class="muted">"E-mail to " {page.email.clone()} ". Failed payments and being added to an organization are always sent."</p>
        </section>
        <section class="card">
            <ActionForm action=action>
                <CsrfField token=token />
                <fieldset>
                    <legend>"Send me e-mail about"</legend>
                    {page.categories.into_iter().map(|c| view! {
                        <div class="field checkbox">
                            <input type="checkbox" id=c.key.clone() name=c.key.clone() value="on"
                                checked=c.on disabled=!c.optional />
                            <label for=c.key.clone()>{c.label.clone()}{(!c.optional).then_some(" (always sent)")}</label>
                        </div>
                    }).collect_view()}
                </fieldset>
                <button type="submit">"Save"</button>
            </ActionForm>
        </section>
    }
}

#[component]
pub fn UnsubscribePage() -> impl IntoView {
    let params = use_params_map();
    let page = Resource::new(
        move || params.read().get("token").unwrap_or_default(),
        unsubscribe_page,
    );
    show_page(page, |_| "Unsubscribe".to_owned(), unsubscribe_view)
}

fn unsubscribe_view(page: UnsubscribeView, csrf: String) -> impl IntoView {
    let action = ServerAction::<Unsubscribe>::new();
    let body = match (page.label, page.done) {
        (None, _) => view! { <p>"This unsubscribe link is not valid. Log in to change your notification settings."</p> }.into_any(),
        (Some(label), true) => view! {
            <p>"You will no longer receive e-mail about: " {label} "."</p>
            <p><a href="/settings/notifications">"Notification settings"</a></p>
        }.into_any(),
        (Some(label), false) => view! {
            <p>"Stop e-mail about: " {label} "? Other notifications are not affected."</p>
            <ActionForm action=action>
                <CsrfField token=csrf />
                <input type="hidden" name="token" value=page.token />
                <button type="submit">"Unsubscribe"</button>
            </ActionForm>
        }.into_any(),
    };
    view! {
        <section class="page-heading"><h1>"Unsubscribe"</h1></section>
        <section class="card">{body}</section>
    }
}

/// Writes one of the organization's messages to the outbox again (platform admins, with a reason).
#[server(prefix = "/forms", endpoint = "notifications/resend")]
pub async fn resend_notification(
    #[server(default)] authenticity_token: String,
    #[server(default)] slug: String,
    #[server(default)] id: String,
    #[server(default)] reason: String,
) -> Result<(), PageError> {
    let visitor = crate::web::caller::Visitor::posting(&authenticity_token).await?;
    Ok(super::forms::resend(visitor, &slug, &id, &reason).await?)
}

fn resend_form(slug: String, id: i64, token: String) -> impl IntoView {
    let action = ServerAction::<ResendNotification>::new();
    let field = format!("resend-reason-{id}");
    view! {
        <ActionForm action=action>
            <CsrfField token=token />
            <input type="hidden" name="slug" value=slug />
            <input type="hidden" name="id" value=id.to_string() />
            <label for=field.clone()>"Reason"</label>
            <input id=field name="reason" required maxlength="500" />
            <button type="submit">"Resend"</button>
        </ActionForm>
    }
}

#[component]
fn HistoryTable(
    rows: Vec<HistoryRow>,
    /// The organization's slug and the form token, when the viewer may resend.
    #[prop(default = None)]
    resend: Option<(String, String)>,
) -> impl IntoView {
    let with_resend = resend.is_some();
    view! {
        <table>
            <thead><tr>
                <th scope="col">"Written"</th><th scope="col">"Kind"</th><th scope="col">"To"</th>
                <th scope="col">"Subject"</th><th scope="col">"Status"</th><th scope="col">"Attempts"</th>
                <th scope="col">"Last error"</th>
                {with_resend.then(|| view! { <th scope="col">"Resend"</th> })}
            </tr></thead>
            <tbody>
                {rows.into_iter().map(|r| {
                    let status = r.status.clone();
                    let form = resend.clone().map(|(slug, token)| {
                        let form = (r.status != "suppressed").then(|| resend_form(slug, r.id, token));
                        view! { <td>{form}</td> }
                    });
                    view! {
                        <tr data-status=status>
                            <td>{r.created}</td><td>{r.kind}</td><td>{r.recipient}</td><td>{r.subject}</td>
                            <td>{r.status}</td><td>{r.attempts}</td><td>{r.error}</td>
                            {form}
                        </tr>
                    }
                }).collect_view()}
            </tbody>
        </table>
    }
}

#[component]
pub fn OrgNotificationsPage() -> impl IntoView {
    let params = use_params_map();
    let page = Resource::new(
        move || params.read().get("slug").unwrap_or_default(),
        org_notifications_page,
    );
    show_page(
        page,
        |p| format!("{} · Notifications", p.org_name),
        |page: HistoryView, token| {
            let resend = page.can_resend.then(|| (page.slug.clone(), token));
            view! {
                <section class="page-heading"><h1>"Notifications of " {page.org_name}</h1></section>
                <section class="card"><HistoryTable rows=page.rows resend=resend /></section>
            }
        },
    )
}

#[component]
pub fn AdminMailPage() -> impl IntoView {
    let page = Resource::new(|| (), |_| admin_mail_page());
    show_page(
        page,
        |_| "Admin · Mail catcher".to_owned(),
        |page: MailView, _| {
            view! {
                <section class="page-heading">
                    <h1>"Mail catcher"</h1>
                    <p class="muted">"Without SMTP_URL every message lands here instead of being sent."</p>
                </section>
                <section class="card" aria-labelledby="caught-heading">
                    <h2 id="caught-heading">"Messages"</h2>
                    <table>
                        <thead><tr><th scope="col">"Caught"</th><th scope="col">"To"</th><th scope="col">"Subject"</th></tr></thead>
                        <tbody>
                            {page.caught.into_iter().map(|m| view! {
                                <tr><td>{m.caught}</td><td>{m.recipient}</td>
                                <td><a href=format!("/admin/mail/{}", m.id)>{m.subject}</a></td></tr>
                            }).collect_view()}
                        </tbody>
                    </table>
                </section>
                <section class="card" aria-labelledby="failed-heading">
                    <h2 id="failed-heading">"Failed messages"</h2>
                    <HistoryTable rows=page.failed />
                </section>
            }
        },
    )
}

#[component]
pub fn AdminMailMessagePage() -> impl IntoView {
    let params = use_params_map();
    let page = Resource::new(
        move || params.read().get("id").unwrap_or_default(),
        admin_mail_message_page,
    );
    show_page(
        page,
        |m| format!("Admin · {}", m.subject),
        |m: MessageView, _| {
            view! {
                <section class="page-heading">
                    <h1>{m.subject.clone()}</h1>
                    <p class="muted">"To " {m.recipient} " · " <a href="/admin/mail">"All messages"</a></p>
                </section>
                <section class="card" aria-labelledby="html-heading">
                    <h2 id="html-heading">"HTML"</h2>
                    // Rendered with no scripts, forms or same-origin access.
                    <iframe title="The message's HTML part" sandbox="" srcdoc=m.html.clone()
                        style="width:100%;min-height:24rem;border:1px solid #ccc"></iframe>
                    <details><summary>"HTML source"</summary><pre>{m.html}</pre></details>
                </section>
                <section class="card" aria-labelledby="text-heading">
                    <h2 id="text-heading">"Text"</h2>
                    <pre data-testid="mail-text">{m.text}</pre>
                </section>
                <section class="card" aria-labelledby="headers-heading">
                    <h2 id="headers-heading">"Headers"</h2>
                    <pre>{m.headers}</pre>
                </section>
            }
        },
    )
}
