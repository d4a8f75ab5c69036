//! The start page, sign-up and log-in pages, and their forms as server functions (sign up, log
//! in, log out). Each form is an `<ActionForm>`: without JavaScript it posts, and the answer
//! redirects (Post/Redirect/Get), back to the form with its messages when a field is wrong.

use leptos::prelude::*;
use leptos_router::hooks::use_query_map;
use serde::{Deserialize, Serialize};

use crate::web::chrome::Page;
use crate::web::layout::{show_page, CsrfField, Field, FormError};
use crate::web::page_error::{Kept, PageError, WHOLE_FORM};

/// The one answer for an unknown email and for a wrong password, so the form does not reveal
/// who has an account.
pub const BAD_CREDENTIALS: &str = "The email or password is incorrect.";

/// The form names their kept values are stored under (see `web::form_state`).
pub const SIGNUP_FORM: &str = "signup";
pub const LOGIN_FORM: &str = "login";

/// What the sign-up form shows again after a refused post (never the password).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignupValues {
    pub email: String,
    pub org_name: String,
    /// Where to go after signing up (an invitation link); only same-site paths are kept.
    pub next: String,
    /// A plan from the pricing page whose trial starts once the organization exists; only a
    /// key the catalog offers for a trial is kept.
    #[serde(default)]
    pub plan: String,
    /// What the page says about that trial ("Your 7-day trial of Pro starts ..."), from the
    /// catalog on every view.
    #[serde(default)]
    pub trial_note: String,
}

/// What the log-in form shows again after a refused post (never the password).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoginValues {
    pub email: String,
    pub next: String,
}

/// `/`: the welcome page; signed-in users are sent to their current (or first) organization.
#[server(prefix = "/forms", endpoint = "read/home")]
pub async fn home_page() -> Result<Page<()>, PageError> {
    Ok(super::forms::home_page().await?)
}

#[server(prefix = "/forms", endpoint = "read/signup")]
pub async fn signup_page(
    next: String,
    #[server(default)] plan: String,
) -> Result<Page<Kept<SignupValues>>, PageError> {
    Ok(super::forms::signup_page(&next, &plan).await?)
}

#[server(prefix = "/forms", endpoint = "read/login")]
pub async fn login_page(next: String) -> Result<Page<Kept<LoginValues>>, PageError> {
    Ok(super::forms::login_page(&next).await?)
}

#[server(prefix = "/forms", endpoint = "signup")]
pub async fn sign_up(
    #[server(default)] authenticity_token: String,
    #[server(default)] email: String,
    #[server(default)] password: String,
    #[server(default)] org_name: String,
    #[server(default)] next: String,
    #[server(default)] plan: String,
) -> Result<(), PageError> {
    let visitor = crate::web::caller::Visitor::posting(&authenticity_token).await?;
    let input = super::forms::SignupInput {
        email,
        password,
        org_name,
        next,
        plan,
    };
    super::forms::sign_up(visitor, input).await
}

#[server(prefix = "/forms", endpoint = "login")]
pub async fn log_in(
    #[server(default)] authenticity_token: String,
    #[server(default)] email: String,
    #[server(default)] password: String,
    #[server(default)] next: String,
) -> Result<(), PageError> {
    let visitor = crate::web::caller::Visitor::posting(&authenticity_token).await?;
    super::forms::log_in(visitor, email, password, next).await
}

#[server(prefix = "/forms", endpoint = "logout")]
pub async fn log_out(#[server(default)] authenticity_token: String) -> Result<(), PageError> {
    let visitor = crate::web::caller::Visitor::posting(&authenticity_token).await?;
    Ok(super::forms::log_out(visitor).await?)
}

/// The `next` query parameter of the page being rendered.
fn next_param() -> impl Fn() -> String + Send + Sync + Clone + 'static {
    let query = use_query_map();
    move || query.read().get("next").unwrap_or_default()
}

#[component]
pub fn HomePage() -> impl IntoView {
    let page = Resource::new(|| (), |_| home_page());
    show_page(
        page,
        |_| "Welcome".to_owned(),
        |_, _| {
            view! {
                <section class="hero">
                    <h1>"Plans, trials, credits and invoices in one place"</h1>
                    <p>"Sign up to create your organization, or log in to see its billing."</p>
                    <p class="actions">
                        <a class="button" href="/signup">"Create an account"</a>
                        <a class="button secondary" href="/login">"Log in"</a>
                    </p>
                    <p><a href="/pricing">"See plans and pricing"</a></p>
                </section>
            }
        },
    )
}

#[component]
pub fn SignupPage() -> impl IntoView {
    let query = use_query_map();
    let params = move || {
        let query = query.read();
        (
            query.get("next").unwrap_or_default(),
            query.get("plan").unwrap_or_default(),
        )
    };
    let page = Resource::new(params, |(next, plan)| signup_page(next, plan));
    show_page(page, |_| "Sign up".to_owned(), signup_view)
}

fn signup_view(kept: Kept<SignupValues>, token: String) -> impl IntoView {
    let action = ServerAction::<SignUp>::new();
    let values = kept.values.clone();
    let login = if values.next.is_empty() {
        "/login".to_owned()
    } else {
        format!("/login?next={}", crate::text::url_escape(&values.next))
    };
    view! {
        <section class="card narrow">
            <h1>"Create your account"</h1>
            <ActionForm action=action attr:novalidate=true>
                <CsrfField token=token />
                <input type="hidden" name="next" value=values.next />
                <input type="hidden" name="plan" value=values.plan />
                {(!values.trial_note.is_empty()).then(|| view! { <p class="trial">{values.trial_note.clone()}</p> })}
                <FormError message=kept.error(WHOLE_FORM) />
                <Field label="Email" name="email" kind="email" value=values.email
                    error=kept.error("email") autocomplete="email" />
                <Field label="Password" name="password" kind="password"
                    error=kept.error("password") autocomplete="new-password"
                    hint="At least 10 characters." />
                <Field label="Organization name" name="org_name" value=values.org_name
                    error=kept.error("org_name") autocomplete="organization"
                    hint="Your company or team; you can add more later." />
                <button type="submit">"Sign up"</button>
            </ActionForm>
            <p>"Already have an account? " <a href=login>"Log in"</a></p>
        </section>
    }
}

#[component]
pub fn LoginPage() -> impl IntoView {
    let page = Resource::new(next_param(), login_page);
    show_page(page, |_| "Log in".to_owned(), login_view)
}

fn login_view(kept: Kept<LoginValues>, token: String) -> impl IntoView {
    let action = ServerAction::<LogIn>::new();
    let values = kept.values.clone();
    // An invitation link passes through sign-up as well as log-in.
    let signup = if values.next.is_empty() {
        "/signup".to_owned()
    } else {
        format!("/signup?next={}", crate::text::url_escape(&values.next))
    };
    view! {
        <section class="card narrow">
            <h1>"Log in"</h1>
            <ActionForm action=action attr:novalidate=true>
                <CsrfField token=token />
                <input type="hidden" name="next" value=values.next />
                <FormError message=kept.error(WHOLE_FORM) />
                <Field label="Email" name="email" kind="email" value=values.email
                    error=kept.error("email") autocomplete="email" />
                <Field label="Password" name="password" kind="password"
                    autocomplete="current-password" />
                <button type="submit">"Log in"</button>
            </ActionForm>
            <p>"New here? " <a href=signup>"Create an account"</a></p>
        </section>
    }
}
