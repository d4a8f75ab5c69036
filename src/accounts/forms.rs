//! What the account pages' server functions do on the server: the read of each page, and
//! signing up, logging in and out. Messages for wrong fields go back through the session
//! (`web::form_state`), never through the URL.

use super::model::{Email, NewPassword};
use super::pages::{LoginValues, SignupValues, BAD_CREDENTIALS, LOGIN_FORM, SIGNUP_FORM};
use super::rate_limit::LoginLimiter;
use super::repo::{self, SignupError};
use super::{password, session};
use crate::billing::catalog::{Catalog, Plan};
use crate::billing::use_cases::{paid_plan, start_trial, BillingDeps, BillingError, Manager};
use crate::error::{url_escape, AppError};
use crate::orgs::model::OrgName;
use crate::orgs::model::Role;
use crate::orgs::repo::Membership;
use crate::stripe_gateway::Gateway;
use crate::web::caller::{client_ip, dep, redirect, Visitor};
use crate::web::chrome::{Flash, Page};
use crate::web::form_state::{self, Kept};
use crate::web::page_error::{FieldErrors, PageError, WHOLE_FORM};
use crate::web::redirect as targets;
use crate::web::state::PublicUrl;
use crate::web::throttle::{wait_in_words, Throttles};

/// The welcome page for visitors; signed-in users go to their current (or first) organization.
pub async fn home_page() -> Result<Page<()>, AppError> {
    let visitor = Visitor::reading().await?;
    if visitor.user.is_some() {
        let signed_in = visitor.signed_in().await?;
        let target = match signed_in.current_org().await? {
            Some(m) => format!("/orgs/{}", m.org.slug),
            None => match signed_in.memberships.first() {
                Some(m) => format!("/orgs/{}", m.org.slug),
                None => "/orgs/new".to_owned(),
            },
        };
        redirect(&target);
        return Ok(Page {
            chrome: signed_in.chrome(None).await?,
            body: (),
        });
    }
    Ok(Page {
        chrome: visitor.chrome().await?,
        body: (),
    })
}

/// A signed-in visitor has nothing to do on the sign-up and log-in pages.
fn away_if_signed_in(visitor: &Visitor) {
    if visitor.user.is_some() {
        redirect("/");
    }
}

pub async fn signup_page(next: &str, plan: &str) -> Result<Page<Kept<SignupValues>>, AppError> {
    let visitor = Visitor::reading().await?;
    away_if_signed_in(&visitor);
    let mut kept: Kept<SignupValues> = form_state::take(&visitor.session, SIGNUP_FORM).await?;
    if kept.errors.is_empty() {
        kept.values.next = targets::local_path(next).unwrap_or_default().to_owned();
        kept.values.plan = plan.to_owned();
    }
    // A plan from the address is shown only when the catalog offers its trial; otherwise the
    // form signs up without one.
    let catalog = dep::<std::sync::Arc<Catalog>>()?;
    match trial_plan(&catalog, &kept.values.plan) {
        Some(plan) => {
            kept.values.trial_note = format!(
                "Your {}-day free trial of {} starts as soon as your account is created. No card needed.",
                catalog.trial_days, plan.name
            );
        }
        None => kept.values.plan.clear(),
    }
    Ok(Page {
        chrome: visitor.chrome_for_form().await?,
        body: kept,
    })
}

pub async fn login_page(next: &str) -> Result<Page<Kept<LoginValues>>, AppError> {
    let visitor = Visitor::reading().await?;
    away_if_signed_in(&visitor);
    let mut kept: Kept<LoginValues> = form_state::take(&visitor.session, LOGIN_FORM).await?;
    if kept.errors.is_empty() {
        kept.values.next = targets::local_path(next).unwrap_or_default().to_owned();
    }
    Ok(Page {
        chrome: visitor.chrome_for_form().await?,
        body: kept,
    })
}

pub struct SignupInput {
    pub email: String,
    pub password: String,
    pub org_name: String,
    pub next: String,
    /// A plan whose trial starts after sign-up (from the pricing page), or empty.
    pub plan: String,
}

/// The plan `key` names if the catalog offers a trial of it (a paid plan, trial days set).
fn trial_plan<'a>(catalog: &'a Catalog, key: &str) -> Option<&'a Plan> {
    (catalog.trial_days > 0 && !key.is_empty())
        .then(|| paid_plan(catalog, key).ok())
        .flatten()
}

/// Starts the trial chosen on the pricing page for the organization just created, and says
/// where to go: its billing page, or its plans page with the reason when the trial could not
/// start (the account and organization exist either way).
async fn start_chosen_trial(
    visitor: &Visitor,
    user: &super::repo::User,
    org: &crate::orgs::repo::Org,
    plan: &Plan,
) -> Result<String, PageError> {
    let owner = Membership {
        org: org.clone(),
        role: Role::Owner,
    };
    let who = Manager::new(owner, user.id, user.email.as_str()).map_err(|e| {
        AppError::Internal(anyhow::anyhow!("the new owner cannot manage billing: {e}"))
    })?;
    let (db, stripe, catalog, public_url) = (
        dep::<sqlx::PgPool>()?,
        dep::<Gateway>()?,
        dep::<std::sync::Arc<Catalog>>()?,
        dep::<PublicUrl>()?,
    );
    let deps = BillingDeps {
        db: &db,
        stripe: &stripe,
        catalog: &catalog,
        public_url: &public_url.0,
    };
    match start_trial(deps, &who, &plan.key).await {
        Ok(trial) => {
            let message = format!(
                "Welcome! Your {}-day trial of {} has started for {}.",
                trial.days, trial.plan_name, org.name
            );
            visitor.flash(Flash::notice(message)).await?;
            Ok(format!("/orgs/{}/billing", org.slug))
        }
        Err(e) => {
            tracing::warn!(org_id = %org.id, error = %e, "trial after sign-up did not start");
            let reason = match e {
                BillingError::TrialRefused(rule) => rule.to_string(),
                _ => "Stripe could not be reached.".to_owned(),
            };
            let message = format!(
                "Welcome! {} is ready, but the trial of {} did not start: {reason} You can start it from this page.",
                org.name, plan.name
            );
            visitor.flash(Flash::alert(message)).await?;
            Ok(format!("/orgs/{}/plans", org.slug))
        }
    }
}

/// Sends a refused form back to its page with what was typed and what is wrong.
async fn refuse<V: serde::Serialize>(
    visitor: &Visitor,
    form: &str,
    page: &str,
    values: &V,
    errors: FieldErrors,
) -> Result<(), PageError> {
    form_state::refuse(&visitor.session, form, page, values, errors).await
}

fn with_next(page: &str, next: &str) -> String {
    if next.is_empty() {
        page.to_owned()
    } else {
        format!("{page}?next={}", url_escape(next))
    }
}

pub async fn sign_up(visitor: Visitor, input: SignupInput) -> Result<(), PageError> {
    let next = targets::local_path(&input.next)
        .unwrap_or_default()
        .to_owned();
    let catalog = dep::<std::sync::Arc<Catalog>>()?;
    // Checked again: the hidden field comes back from the browser, not from us.
    let plan = trial_plan(&catalog, &input.plan);
    let values = SignupValues {
        email: input.email.clone(),
        org_name: input.org_name.clone(),
        next: next.clone(),
        plan: plan.map(|p| p.key.clone()).unwrap_or_default(),
        trial_note: String::new(),
    };
    let page = match plan {
        Some(plan) => format!("/signup?plan={}", url_escape(&plan.key)),
        None => with_next("/signup", &next),
    };
    if plan.is_none() && !input.plan.is_empty() {
        let errors = FieldErrors::from([(
            WHOLE_FORM.to_owned(),
            "That plan has no trial to start here. Choose one on the pricing page (/pricing), or sign up without one.".to_owned(),
        )]);
        return refuse(&visitor, SIGNUP_FORM, &page, &values, errors).await;
    }
    let email = Email::parse(&input.email);
    let new_password = NewPassword::parse(&input.password);
    let org_name = OrgName::parse(&input.org_name);
    let (email, new_password, org_name) = match (email, new_password, org_name) {
        (Ok(e), Ok(p), Ok(o)) => (e, p, o),
        (e, p, o) => {
            let errors = [
                ("email", e.err().map(|e| e.to_string())),
                ("password", p.err().map(|e| e.to_string())),
                ("org_name", o.err().map(|e| e.to_string())),
            ]
            .into_iter()
            .filter_map(|(field, message)| Some((field.to_owned(), message?)))
            .collect();
            return refuse(&visitor, SIGNUP_FORM, &page, &values, errors).await;
        }
    };
    // Counted before the (deliberately slow) hashing: a flood of sign-ups from one address is
    // refused cheaply, and one person cannot mint accounts (and their trials) without limit.
    let ip = client_ip().await?;
    if let Err(throttled) = dep::<std::sync::Arc<Throttles>>()?
        .signups_per_ip
        .check(&ip)
    {
        tracing::warn!(%ip, "sign-up throttled");
        return Err(AppError::Throttled {
            message: format!(
                "Too many sign-ups from your network. Try again in {}.",
                wait_in_words(throttled.retry_after)
            ),
            retry_after: throttled.retry_after,
        }
        .into());
    }
    let hash = password::hash(&new_password).await?;
    let (user, org) = match repo::sign_up(&visitor.db, &email, &hash, &org_name).await {
        Ok(created) => created,
        Err(SignupError::EmailTaken) => {
            let errors =
                FieldErrors::from([("email".to_owned(), SignupError::EmailTaken.to_string())]);
            return refuse(&visitor, SIGNUP_FORM, &page, &values, errors).await;
        }
        Err(SignupError::Database(e)) => return Err(AppError::from(e).into()),
    };
    tracing::info!(user_id = %user.id, org_id = %org.id, "signed up");
    session::sign_in(&visitor.session, user.id).await?;
    session::remember_org(&visitor.session, org.id).await?;
    let target = if let Some(plan) = plan {
        start_chosen_trial(&visitor, &user, &org, plan).await?
    } else {
        visitor
            .flash(Flash::notice(format!("Welcome! {} is ready.", org.name)))
            .await?;
        if next.is_empty() {
            format!("/orgs/{}", org.slug)
        } else {
            next
        }
    };
    redirect(&target);
    Ok(())
}

pub async fn log_in(
    visitor: Visitor,
    typed_email: String,
    password: String,
    next: String,
) -> Result<(), PageError> {
    // Checked again: the hidden field comes back from the browser, not from us.
    let next = targets::local_path(&next).unwrap_or_default().to_owned();
    let page = with_next("/login", &next);
    let values = LoginValues {
        email: typed_email.clone(),
        next: next.clone(),
    };
    let email = match Email::parse(&typed_email) {
        Ok(email) => email,
        Err(e) => {
            let errors = FieldErrors::from([("email".to_owned(), e.to_string())]);
            return refuse(&visitor, LOGIN_FORM, &page, &values, errors).await;
        }
    };
    let limiter = dep::<std::sync::Arc<LoginLimiter>>()?;
    let ip = client_ip().await?;
    if let Err(throttled) = limiter.check(ip, &email.normalized()) {
        tracing::warn!(%ip, "login throttled");
        let seconds = throttled.retry_after.as_secs().max(1);
        return Err(AppError::Throttled {
            message: format!("Too many login attempts. Try again in {seconds} seconds."),
            retry_after: throttled.retry_after,
        }
        .into());
    }
    let found = repo::credentials(&visitor.db, &email).await?;
    let (user_id, stored) = match found {
        Some((id, hash)) => (Some(id), Some(hash)),
        None => (None, None),
    };
    let matches = password::verify(&password, stored).await?;
    if matches {
        limiter.succeeded(ip, &email.normalized());
    } else {
        limiter.failed(ip, &email.normalized());
    }
    let Some(user_id) = user_id.filter(|_| matches) else {
        let errors = FieldErrors::from([(WHOLE_FORM.to_owned(), BAD_CREDENTIALS.to_owned())]);
        return refuse(&visitor, LOGIN_FORM, &page, &values, errors).await;
    };
    session::sign_in(&visitor.session, user_id).await?;
    tracing::info!(%user_id, "logged in");
    redirect(targets::local_path_or_home(Some(&next)));
    Ok(())
}

pub async fn log_out(visitor: Visitor) -> Result<(), AppError> {
    session::sign_out(&visitor.session).await?;
    visitor
        .flash(Flash::notice("You have been logged out."))
        .await?;
    redirect("/login");
    Ok(())
}
