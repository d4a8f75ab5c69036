//! The frame every page renders inside (skip link, navigation with the organization switcher,
//! flash message, footer), the form pieces pages share, and [`show_page`], which renders a page
//! from its read function's resource. On the server also the bare documents for error pages.

use leptos::prelude::*;
use leptos_meta::Title;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::accounts::pages::LogOut;
use crate::web::chrome::{Chrome, Flash, FlashKind, Nav, Page};
use crate::web::page_error::PageError;

/// The name of the anti-forgery field every form carries.
pub const TOKEN_FIELD: &str = "authenticity_token";

/// A page of the application: its `<title>` and its content in the frame.
#[component]
pub fn PageLayout(chrome: Chrome, title: String, children: Children) -> impl IntoView {
    let title = format!("{title} · Billing portal");
    // leptos_meta writes the title into the server's HTML as it is, so a name holding
    // `</title><script>` would end the element: escaped on the server only (in the browser it
    // becomes `document.title`, which is text).
    #[cfg(feature = "ssr")]
    let title = escape_text(&title);
    view! {
        <Title text=title />
        <PageBody chrome=chrome>{children()}</PageBody>
    }
}

/// `text` as HTML text (for the one place Leptos does not escape it, the server's `<title>`).
#[cfg(feature = "ssr")]
fn escape_text(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Renders the page whose data `page` loads: nothing until it is there (the server renders
/// pages whole, see `SsrMode::Async` in `crate::app`), then `body` in the frame under the title
/// `title` gives. A failed read renders nothing here: the server answers the recorded failure
/// with the error page and its status (see `crate::web::caller`).
pub fn show_page<T, V>(
    page: Resource<Result<Page<T>, PageError>>,
    title: impl Fn(&T) -> String + Clone + Send + Sync + 'static,
    body: impl Fn(T, String) -> V + Clone + Send + Sync + 'static,
) -> impl IntoView
where
    T: Clone + Serialize + DeserializeOwned + Send + Sync + 'static,
    V: IntoView + 'static,
{
    view! {
        <Suspense fallback=|| ()>
            {move || {
                let (title, body) = (title.clone(), body.clone());
                Suspend::new(async move {
                    page.await.ok().map(|Page { chrome, body: data }| {
                        let heading = title(&data);
                        let token = chrome.token.clone();
                        let content = body(data, token);
                        view! { <PageLayout chrome=chrome title=heading>{content}</PageLayout> }
                    })
                })
            }}
        </Suspense>
    }
}

/// Everything inside `<body>`.
#[component]
pub fn PageBody(chrome: Chrome, children: Children) -> impl IntoView {
    let Chrome { nav, flash, token } = chrome;
    view! {
        <a class="skip-link" href="#main">"Skip to content"</a>
        <header class="site-header">
            <a class="brand" href="/">"Billing portal"</a>
            {match nav {
                Some(nav) => view! { <SignedInNav nav=nav token=token /> }.into_any(),
                None => view! {
                    <nav aria-label="Account">
                        <ul class="nav-links">
                            <li><a href="/login">"Log in"</a></li>
                            <li><a class="button" href="/signup">"Sign up"</a></li>
                        </ul>
                    </nav>
                }.into_any(),
            }}
        </header>
        <main id="main">
            {flash.map(|flash| view! { <FlashMessage flash=flash /> })}
            {children()}
        </main>
        <footer class="site-footer">
            <p>"Self-hosted billing portal"</p>
        </footer>
    }
}

#[component]
fn SignedInNav(nav: Nav, token: String) -> impl IntoView {
    let log_out = ServerAction::<LogOut>::new();
    let current = nav
        .orgs
        .iter()
        .find(|o| o.current)
        .map(|o| o.name.clone())
        .unwrap_or_else(|| "Organizations".to_owned());
    view! {
        <nav aria-label="Main">
            <ul class="nav-links">
                <li>
                    <details class="org-switcher">
                        <summary aria-label="Switch organization">{current}</summary>
                        <ul>
                            {nav.orgs.into_iter().map(|org| {
                                let href = format!("/orgs/{}", org.slug);
                                view! {
                                    <li>
                                        <a href=href aria-current=org.current.then_some("page")>
                                            {org.name}
                                        </a>
                                    </li>
                                }
                            }).collect_view()}
                            <li class="separator"><a href="/orgs/new">"New organization…"</a></li>
                        </ul>
                    </details>
                </li>
                {nav.is_platform_admin.then(|| view! { <li><a href="/admin">"Admin"</a></li> })}
                <li><a href="/settings/notifications">"Notification settings"</a></li>
                <li class="whoami">{nav.email}</li>
                <li>
                    <ActionForm action=log_out attr:class="inline">
                        <CsrfField token=token />
                        <button type="submit" class="link">"Log out"</button>
                    </ActionForm>
                </li>
            </ul>
        </nav>
    }
}

#[component]
fn FlashMessage(flash: Flash) -> impl IntoView {
    let class = match flash.kind {
        FlashKind::Notice => "flash notice",
        FlashKind::Alert => "flash alert",
    };
    view! { <div class=class role="status">{flash.message}</div> }
}

/// The hidden anti-forgery field every state-changing form carries.
#[component]
pub fn CsrfField(token: String) -> impl IntoView {
    view! { <input type="hidden" name=TOKEN_FIELD value=token /> }
}

/// A labelled input with its error message linked for screen readers.
#[component]
pub fn Field(
    label: &'static str,
    name: &'static str,
    #[prop(default = "text")] kind: &'static str,
    #[prop(optional)] value: String,
    #[prop(default = None)] error: Option<String>,
    #[prop(optional)] autocomplete: Option<&'static str>,
    #[prop(optional)] hint: Option<&'static str>,
) -> impl IntoView {
    let error_id = format!("{name}-error");
    let hint_id = format!("{name}-hint");
    let described_by = match (&error, hint) {
        (Some(_), Some(_)) => Some(format!("{error_id} {hint_id}")),
        (Some(_), None) => Some(error_id.clone()),
        (None, Some(_)) => Some(hint_id.clone()),
        (None, None) => None,
    };
    let invalid = error.is_some().then_some("true");
    let has_error = error.is_some();
    view! {
        <div class="field" class:has-error=has_error>
            <label for=name>{label}</label>
            {hint.map(|hint| view! { <p class="hint" id=hint_id>{hint}</p> })}
            {error.map(|message| view! { <p class="error" id=error_id>{message}</p> })}
            <input
                id=name
                name=name
                type=kind
                value=value
                autocomplete=autocomplete
                aria-invalid=invalid
                aria-describedby=described_by
            />
        </div>
    }
}

/// A form-wide error (one not tied to a single field).
#[component]
pub fn FormError(message: Option<String>) -> impl IntoView {
    message.map(|message| view! { <div class="form-error" role="alert">{message}</div> })
}

#[cfg(feature = "ssr")]
pub use documents::*;

/// Whole documents rendered outside the application's router: error pages, and the pages not
/// yet served through it.
#[cfg(feature = "ssr")]
mod documents {
    use axum::http::StatusCode;
    use axum::response::Html;
    use leptos::prelude::*;

    use super::PageBody;
    use crate::web::chrome::Chrome;

    /// Renders a complete HTML document. Leptos escapes every text node and attribute value, so
    /// user-supplied names cannot inject markup.
    pub fn render_document<V: IntoView + 'static>(view: impl FnOnce() -> V) -> Html<String> {
        // Components run as the view is built, so it is built inside the owner.
        let owner = Owner::new();
        let html = owner.with(|| view().into_view().to_html());
        Html(format!("<!DOCTYPE html>{html}"))
    }

    #[component]
    pub fn Shell(title: String, chrome: Chrome, children: Children) -> impl IntoView {
        view! {
            <html lang="en">
                <head>
                    <meta charset="utf-8" />
                    <meta name="viewport" content="width=device-width, initial-scale=1" />
                    <title>{format!("{title} · Billing portal")}</title>
                    <link rel="stylesheet" href="/pkg/billing-portal.css" />
                    <link rel="icon" href="/favicon.svg" type="image/svg+xml" />
                </head>
                <body>
                    <PageBody chrome=chrome>{children()}</PageBody>
                </body>
            </html>
        }
    }

    /// A whole error page (404, 403, 500, ...).
    #[component]
    pub fn ErrorPage(status: StatusCode, message: String) -> impl IntoView {
        let title = status.canonical_reason().unwrap_or("Error").to_owned();
        let chrome = Chrome {
            nav: None,
            flash: None,
            token: String::new(),
        };
        view! {
            <Shell title=title.clone() chrome=chrome>
                <section class="card narrow">
                    <h1>{title}</h1>
                    <p>{message}</p>
                    <p><a href="/">"Go to the start page"</a></p>
                </section>
            </Shell>
        }
    }
}
