//! The page shell every page renders inside (navigation, organization switcher, flash message),
//! small shared form pieces, and turning a Leptos view into an HTML document on the server.

use axum::http::StatusCode;
use axum::response::Html;
use leptos::prelude::*;

use crate::web::csrf::FIELD;
use crate::web::flash::{Flash, FlashKind};

/// What the navigation shows for a signed-in user.
#[derive(Debug, Clone)]
pub struct Nav {
    pub email: String,
    pub is_platform_admin: bool,
    pub orgs: Vec<NavOrg>,
    /// For the log-out form in the header.
    pub authenticity_token: String,
}

#[derive(Debug, Clone)]
pub struct NavOrg {
    pub name: String,
    pub slug: String,
    pub current: bool,
}

/// Renders a complete HTML document. Leptos escapes every text node and attribute value, so
/// user-supplied names cannot inject markup.
pub fn render_document(view: impl IntoView + 'static) -> Html<String> {
    let owner = Owner::new();
    let html = owner.with(|| view.into_view().to_html());
    Html(format!("<!DOCTYPE html>{html}"))
}

#[component]
pub fn Shell(
    title: String,
    nav: Option<Nav>,
    flash: Option<Flash>,
    children: Children,
) -> impl IntoView {
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
                <a class="skip-link" href="#main">"Skip to content"</a>
                <header class="site-header">
                    <a class="brand" href="/">"Billing portal"</a>
                    {match nav {
                        Some(nav) => view! { <SignedInNav nav=nav /> }.into_any(),
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
            </body>
        </html>
    }
}

#[component]
fn SignedInNav(nav: Nav) -> impl IntoView {
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
                <li class="whoami">{nav.email}</li>
                <li>
                    <form method="post" action="/logout" class="inline">
                        <CsrfField token=nav.authenticity_token />
                        <button type="submit" class="link">"Log out"</button>
                    </form>
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
    view! { <input type="hidden" name=FIELD value=token /> }
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

/// A whole error page (404, 403, 500, ...).
#[component]
pub fn ErrorPage(status: StatusCode, message: String) -> impl IntoView {
    let title = status.canonical_reason().unwrap_or("Error").to_owned();
    view! {
        <Shell title=title.clone() nav=None flash=None>
            <section class="card narrow">
                <h1>{title}</h1>
                <p>{message}</p>
                <p><a href="/">"Go to the start page"</a></p>
            </section>
        </Shell>
    }
}
