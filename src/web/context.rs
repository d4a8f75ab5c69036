//! Who is asking, and what every page needs to render for them: the session, the signed-in user
//! and their organizations, the session's anti-forgery secret (for the tokens of the page's forms)
//! and any flash message. Also [`Page`], the response every HTML handler returns.

use axum::extract::{FromRequestParts, OptionalFromRequestParts};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use leptos::prelude::*;
use tower_sessions::Session;
use uuid::Uuid;

use crate::accounts::repo::User;
use crate::accounts::session;
use crate::error::AppError;
use crate::orgs::repo::{self as orgs, Membership};
use crate::web::chrome::{Chrome, Nav, NavOrg};
use crate::web::csrf::CsrfToken;
use crate::web::flash;
use crate::web::layout::{render_document, Shell};
use crate::web::state::AppState;

/// An HTML response, never cached, since pages show account data.
pub struct Page {
    pub status: StatusCode,
    pub html: Html<String>,
}

impl IntoResponse for Page {
    fn into_response(self) -> Response {
        (
            self.status,
            [(header::CACHE_CONTROL, "no-store")],
            self.html,
        )
            .into_response()
    }
}

/// Anyone, signed in or not. For the public pages (landing, log in, sign up).
pub struct Visitor {
    pub session: Session,
    pub csrf: CsrfToken,
    pub user: Option<User>,
}

impl FromRequestParts<AppState> for Visitor {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        let session = session_of(parts, state).await?;
        let csrf = CsrfToken::of_session(&session, &state.csrf).await?;
        let user = session::current_user(&session, &state.db).await?;
        session::keep_alive(&session, chrono::Utc::now().date_naive()).await?;
        Ok(Self {
            session,
            csrf,
            user,
        })
    }
}

impl Visitor {
    /// Renders `body` in the shell, showing and clearing any pending flash message.
    pub async fn page(
        self,
        status: StatusCode,
        title: &str,
        body: impl IntoView + 'static,
    ) -> Result<Page, AppError> {
        let chrome = Chrome {
            nav: None,
            flash: flash::take(&self.session).await?,
            token: self.authenticity_token()?,
        };
        let title = title.to_owned();
        let html =
            render_document(move || view! { <Shell title=title chrome=chrome>{body}</Shell> });
        self.csrf.save(&self.session).await?;
        Ok(Page { status, html })
    }

    /// A token for a form on this visitor's page, bound to their session.
    pub fn authenticity_token(&self) -> Result<String, AppError> {
        Ok(self.csrf.authenticity_token())
    }
}

/// A signed-in user with their memberships. Extracting it when nobody is signed in fails with
/// [`AppError::Unauthenticated`], which sends browsers to the login page.
pub struct SignedIn {
    pub session: Session,
    pub csrf: CsrfToken,
    pub user: User,
    pub memberships: Vec<Membership>,
}

impl FromRequestParts<AppState> for SignedIn {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        let visitor = Visitor::from_request_parts(parts, state).await?;
        let user = visitor.user.ok_or(AppError::Unauthenticated)?;
        let memberships = orgs::memberships_of(&state.db, user.id).await?;
        Ok(Self {
            session: visitor.session,
            csrf: visitor.csrf,
            user,
            memberships,
        })
    }
}

impl OptionalFromRequestParts<AppState> for SignedIn {
    type Rejection = AppError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Option<Self>, AppError> {
        match <SignedIn as FromRequestParts<AppState>>::from_request_parts(parts, state).await {
            Ok(signed_in) => Ok(Some(signed_in)),
            Err(AppError::Unauthenticated) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

impl SignedIn {
    /// A token for a form on this user's page, bound to their session.
    pub fn authenticity_token(&self) -> Result<String, AppError> {
        Ok(self.csrf.authenticity_token())
    }

    /// The organization with this slug, seen through the user's membership of it. Outsiders get
    /// the same 404 as for an organization that does not exist.
    pub fn membership(&self, slug: &str) -> Result<Membership, AppError> {
        self.memberships
            .iter()
            .find(|m| m.org.slug == slug)
            .cloned()
            .ok_or(AppError::NotFound)
    }

    /// The organization remembered as current in this session, if the user still belongs to it.
    pub async fn current_org(&self) -> Result<Option<&Membership>, AppError> {
        let current: Option<Uuid> = session::current_org(&self.session).await?;
        Ok(current.and_then(|id| self.memberships.iter().find(|m| m.org.id == id)))
    }

    /// Renders `body` in the shell with the navigation; `current_org` is highlighted in the
    /// organization switcher.
    pub async fn page(
        self,
        status: StatusCode,
        title: &str,
        current_org: Option<Uuid>,
        body: impl IntoView + 'static,
    ) -> Result<Page, AppError> {
        let flash = flash::take(&self.session).await?;
        let current_org = match current_org {
            Some(id) => Some(id),
            None => session::current_org(&self.session).await?,
        };
        let nav = Nav {
            email: self.user.email.clone(),
            is_platform_admin: self.user.is_platform_admin,
            orgs: self
                .memberships
                .iter()
                .map(|m| NavOrg {
                    name: m.org.name.clone(),
                    slug: m.org.slug.clone(),
                    current: Some(m.org.id) == current_org,
                })
                .collect(),
        };
        let chrome = Chrome {
            nav: Some(nav),
            flash,
            token: self.authenticity_token()?,
        };
        let title = title.to_owned();
        let html =
            render_document(move || view! { <Shell title=title chrome=chrome>{body}</Shell> });
        self.csrf.save(&self.session).await?;
        Ok(Page { status, html })
    }
}

async fn session_of(parts: &mut Parts, state: &AppState) -> Result<Session, AppError> {
    Session::from_request_parts(parts, state)
        .await
        .map_err(|(_, message)| AppError::Internal(anyhow::anyhow!("session layer: {message}")))
}
