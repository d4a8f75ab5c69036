//! Sign up, log in, log out, and the start page that sends signed-in users to their organization.
//! Plain HTML forms posting to these routes, then a redirect: everything works without JavaScript.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use leptos::prelude::*;
use serde::Deserialize;

use super::model::{Email, NewPassword};
use super::repo::{self, SignupError};
use super::{password, session};
use crate::error::{url_escape, AppError};
use crate::orgs::model::OrgName;
use crate::web::context::{SignedIn, Visitor};
use crate::web::csrf::{CsrfForm, NoFields};
use crate::web::flash::{self, Flash};
use crate::web::layout::{CsrfField, Field, FormError};
use crate::web::redirect;
use crate::web::state::AppState;
use crate::web::throttle::{wait_in_words, with_retry_after};

/// The one answer for an unknown email and for a wrong password, so the form does not reveal
/// who has an account.
pub const BAD_CREDENTIALS: &str = "The email or password is incorrect.";

/// `GET /`: signed-in users go to their current (or first) organization.
pub async fn home(signed_in: Option<SignedIn>, visitor: Visitor) -> Result<Response, AppError> {
    if let Some(signed_in) = signed_in {
        let target = match signed_in.current_org().await? {
            Some(m) => format!("/orgs/{}", m.org.slug),
            None => match signed_in.memberships.first() {
                Some(m) => format!("/orgs/{}", m.org.slug),
                None => "/orgs/new".to_owned(),
            },
        };
        return Ok(Redirect::to(&target).into_response());
    }
    let body = view! {
        <section class="hero">
            <h1>"Plans, trials, credits and invoices in one place"</h1>
            <p>"Sign up to create your organization, or log in to see its billing."</p>
            <p class="actions">
                <a class="button" href="/signup">"Create an account"</a>
                <a class="button secondary" href="/login">"Log in"</a>
            </p>
        </section>
    };
    Ok(visitor
        .page(StatusCode::OK, "Welcome", body)
        .await?
        .into_response())
}

#[derive(Debug, Default, Deserialize)]
pub struct SignupFields {
    #[serde(default)]
    pub email: String,
    #[serde(default)]
    pub password: String,
    #[serde(default)]
    pub org_name: String,
    /// Where to go after signing up (an invitation link); only same-site paths are followed.
    #[serde(default)]
    pub next: String,
}

#[derive(Debug, Default)]
struct SignupErrors {
    form: Option<String>,
    email: Option<String>,
    password: Option<String>,
    org_name: Option<String>,
}

pub async fn signup_form(
    visitor: Visitor,
    Query(query): Query<LoginQuery>,
) -> Result<Response, AppError> {
    if visitor.user.is_some() {
        return Ok(Redirect::to("/").into_response());
    }
    let token = visitor.authenticity_token()?;
    let fields = SignupFields {
        next: query
            .next
            .as_deref()
            .and_then(redirect::local_path)
            .unwrap_or_default()
            .to_owned(),
        ..SignupFields::default()
    };
    let body = signup_view(token, fields, SignupErrors::default());
    Ok(visitor
        .page(StatusCode::OK, "Sign up", body)
        .await?
        .into_response())
}

pub async fn signup(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    visitor: Visitor,
    form: CsrfForm<SignupFields>,
) -> Result<Response, AppError> {
    let mut fields = form.fields;
    if redirect::local_path(&fields.next).is_none() {
        fields.next.clear();
    }
    let email = Email::parse(&fields.email);
    let password = NewPassword::parse(&fields.password);
    let org_name = OrgName::parse(&fields.org_name);
    let (email, password, org_name) = match (email, password, org_name) {
        (Ok(e), Ok(p), Ok(o)) => (e, p, o),
        (e, p, o) => {
            let errors = SignupErrors {
                form: None,
                email: e.err().map(|e| e.to_string()),
                password: p.err().map(|e| e.to_string()),
                org_name: o.err().map(|e| e.to_string()),
            };
            return render_signup_again(visitor, fields, errors).await;
        }
    };
    // Counted before the (deliberately slow) hashing: a flood of sign-ups from one address is
    // refused cheaply, and one person cannot mint accounts (and their trials) without limit.
    if let Err(throttled) = state.throttles.signups_per_ip.check(&peer.ip()) {
        tracing::warn!(ip = %peer.ip(), "sign-up throttled");
        let errors = SignupErrors {
            form: Some(format!(
                "Too many sign-ups from your network. Try again in {}.",
                wait_in_words(throttled.retry_after)
            )),
            ..SignupErrors::default()
        };
        let page =
            render_signup_status(visitor, fields, errors, StatusCode::TOO_MANY_REQUESTS).await?;
        return Ok(with_retry_after(page, throttled.retry_after));
    }
    let hash = password::hash(&password).await?;
    let (user, org) = match repo::sign_up(&state.db, &email, &hash, &org_name).await {
        Ok(created) => created,
        Err(SignupError::EmailTaken) => {
            let errors = SignupErrors {
                email: Some(SignupError::EmailTaken.to_string()),
                ..SignupErrors::default()
            };
            return render_signup_again(visitor, fields, errors).await;
        }
        Err(SignupError::Database(e)) => return Err(e.into()),
    };
    tracing::info!(user_id = %user.id, org_id = %org.id, "signed up");
    session::sign_in(&visitor.session, user.id).await?;
    session::remember_org(&visitor.session, org.id).await?;
    flash::set(
        &visitor.session,
        Flash::notice(format!("Welcome! {} is ready.", org.name)),
    )
    .await?;
    let target = if fields.next.is_empty() {
        format!("/orgs/{}", org.slug)
    } else {
        fields.next
    };
    Ok(Redirect::to(&target).into_response())
}

async fn render_signup_again(
    visitor: Visitor,
    fields: SignupFields,
    errors: SignupErrors,
) -> Result<Response, AppError> {
    render_signup_status(visitor, fields, errors, StatusCode::UNPROCESSABLE_ENTITY).await
}

async fn render_signup_status(
    visitor: Visitor,
    mut fields: SignupFields,
    errors: SignupErrors,
    status: StatusCode,
) -> Result<Response, AppError> {
    // Never send a password back to the browser.
    fields.password.clear();
    let token = visitor.authenticity_token()?;
    let body = signup_view(token, fields, errors);
    Ok(visitor.page(status, "Sign up", body).await?.into_response())
}

fn signup_view(token: String, fields: SignupFields, errors: SignupErrors) -> impl IntoView {
    let login = if fields.next.is_empty() {
        "/login".to_owned()
    } else {
        format!("/login?next={}", url_escape(&fields.next))
    };
    view! {
        <section class="card narrow">
            <h1>"Create your account"</h1>
            <form method="post" action="/signup" novalidate>
                <CsrfField token=token />
                <input type="hidden" name="next" value=fields.next />
                <FormError message=errors.form />
                <Field label="Email" name="email" kind="email" value=fields.email
                    error=errors.email autocomplete="email" />
                <Field label="Password" name="password" kind="password"
                    error=errors.password autocomplete="new-password"
                    hint="At least 10 characters." />
                <Field label="Organization name" name="org_name" value=fields.org_name
                    error=errors.org_name autocomplete="organization"
                    hint="Your company or team; you can add more later." />
                <button type="submit">"Sign up"</button>
            </form>
            <p>"Already have an account? " <a href=login>"Log in"</a></p>
        </section>
    }
}

#[derive(Debug, Default, Deserialize)]
pub struct LoginQuery {
    #[serde(default)]
    pub next: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct LoginFields {
    #[serde(default)]
    pub email: String,
    #[serde(default)]
    pub password: String,
    #[serde(default)]
    pub next: String,
}

pub async fn login_form(
    visitor: Visitor,
    Query(query): Query<LoginQuery>,
) -> Result<Response, AppError> {
    if visitor.user.is_some() {
        return Ok(Redirect::to("/").into_response());
    }
    let token = visitor.authenticity_token()?;
    let next = query
        .next
        .as_deref()
        .and_then(redirect::local_path)
        .unwrap_or_default()
        .to_owned();
    let body = login_view(token, String::new(), next, None);
    Ok(visitor
        .page(StatusCode::OK, "Log in", body)
        .await?
        .into_response())
}

pub async fn login(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    visitor: Visitor,
    form: CsrfForm<LoginFields>,
) -> Result<Response, AppError> {
    let LoginFields {
        email: typed_email,
        password,
        next,
    } = form.fields;
    // Checked again: the hidden field comes back from the browser, not from us.
    let next = redirect::local_path(&next).unwrap_or_default().to_owned();
    let email = match Email::parse(&typed_email) {
        Ok(email) => email,
        Err(e) => {
            return render_login_again(
                visitor,
                StatusCode::UNPROCESSABLE_ENTITY,
                typed_email,
                next,
                e.to_string(),
            )
            .await;
        }
    };
    if let Err(throttled) = state.login_limiter.check(peer.ip(), &email.normalized()) {
        tracing::warn!(ip = %peer.ip(), "login throttled");
        let seconds = throttled.retry_after.as_secs().max(1);
        let text = format!("Too many login attempts. Try again in {seconds} seconds.");
        let mut response = render_login_again(
            visitor,
            StatusCode::TOO_MANY_REQUESTS,
            typed_email,
            next,
            text,
        )
        .await?;
        if let Ok(value) = seconds.to_string().parse() {
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, value);
        }
        return Ok(response);
    }
    let found = repo::credentials(&state.db, &email).await?;
    let (user_id, stored) = match found {
        Some((id, hash)) => (Some(id), Some(hash)),
        None => (None, None),
    };
    let matches = password::verify(&password, stored).await?;
    if matches {
        state
            .login_limiter
            .succeeded(peer.ip(), &email.normalized());
    } else {
        state.login_limiter.failed(peer.ip(), &email.normalized());
    }
    let Some(user_id) = user_id.filter(|_| matches) else {
        return render_login_again(
            visitor,
            StatusCode::UNAUTHORIZED,
            typed_email,
            next,
            BAD_CREDENTIALS.to_owned(),
        )
        .await;
    };
    session::sign_in(&visitor.session, user_id).await?;
    tracing::info!(%user_id, "logged in");
    Ok(Redirect::to(redirect::local_path_or_home(Some(&next))).into_response())
}

async fn render_login_again(
    visitor: Visitor,
    status: StatusCode,
    email: String,
    next: String,
    message: String,
) -> Result<Response, AppError> {
    let token = visitor.authenticity_token()?;
    let body = login_view(token, email, next, Some(message));
    Ok(visitor.page(status, "Log in", body).await?.into_response())
}

fn login_view(token: String, email: String, next: String, error: Option<String>) -> impl IntoView {
    // An invitation link passes through sign-up as well as log-in.
    let signup = if next.is_empty() {
        "/signup".to_owned()
    } else {
        format!("/signup?next={}", url_escape(&next))
    };
    view! {
        <section class="card narrow">
            <h1>"Log in"</h1>
            <form method="post" action="/login" novalidate>
                <CsrfField token=token />
                <input type="hidden" name="next" value=next />
                <FormError message=error />
                <Field label="Email" name="email" kind="email" value=email autocomplete="email" />
                <Field label="Password" name="password" kind="password"
                    autocomplete="current-password" />
                <button type="submit">"Log in"</button>
            </form>
            <p>"New here? " <a href=signup>"Create an account"</a></p>
        </section>
    }
}

pub async fn logout(visitor: Visitor, _form: CsrfForm<NoFields>) -> Result<Response, AppError> {
    session::sign_out(&visitor.session).await?;
    flash::set(&visitor.session, Flash::notice("You have been logged out.")).await?;
    Ok(Redirect::to("/login").into_response())
}
