//! Who is asking a page's read function or a form's server function, and what they may do.
//!
//! Every server function is a public endpoint, so each starts from [`Visitor::reading`] (a read:
//! the session and the signed-in user) or [`Visitor::posting`] (a form: the same, after its
//! anti-forgery token was checked against the session), then narrows with a guard whose type says
//! what was checked: [`SignedIn`], [`Member`] of an organization (outsiders get the 404 of an
//! organization that does not exist), [`Manager`] of it (members get 403), or [`PlatformAdmin`].
//!
//! Dependencies come from the request's Leptos context, one type each ([`dep`]), provided by the
//! server for every page and server function.
//!
//! A failure the whole page is about is recorded for the response ([`ErrorSlot`]), and the error
//! middleware (`crate::error::render_errors`) answers it as it answers any page: the error page
//! with its status, or the log-in page for a signed-out browser.

use std::sync::{Arc, Mutex};

use axum::http::request::Parts;
use leptos::prelude::*;
use sqlx::PgPool;
use tower_sessions::Session;
use uuid::Uuid;

use crate::accounts::repo::User;
use crate::accounts::session;
use crate::error::{AppError, ErrorReport};
use crate::orgs::repo::Membership;
use crate::orgs::viewers::Viewers;
use crate::web::chrome::{Chrome, Flash, Nav, NavOrg};
use crate::web::csrf::{self, CsrfKey, CsrfToken};
use crate::web::flash;
use crate::web::page_error::PageError;

/// A dependency from the request's context (the database, the catalog, Stripe, ...).
pub fn dep<T: Clone + Send + Sync + 'static>() -> Result<T, AppError> {
    use_context::<T>().ok_or_else(|| {
        AppError::Internal(anyhow::anyhow!(
            "{} is missing from the request context",
            std::any::type_name::<T>()
        ))
    })
}

/// The request being answered (headers, extensions, the client's address).
pub fn request_parts() -> Result<Parts, AppError> {
    dep::<Parts>()
}

/// Where a server function leaves the failure its response must show. The error middleware puts
/// one into every request it passes on; server functions see it through the request's parts.
#[derive(Clone, Default)]
pub struct ErrorSlot(Arc<Mutex<Option<ErrorReport>>>);

impl ErrorSlot {
    fn put(&self, report: ErrorReport) {
        if let Ok(mut slot) = self.0.lock() {
            // The first failure is the one that matters.
            slot.get_or_insert(report);
        }
    }

    /// The failure recorded while answering, if any.
    pub fn take(&self) -> Option<ErrorReport> {
        self.0.lock().ok().and_then(|mut slot| slot.take())
    }
}

/// Records `error` for the response, and answers the client's copy of it.
pub fn record(error: AppError) -> PageError {
    let page_error = PageError::from_app(&error);
    let report = error.into_report();
    if let Some(slot) =
        use_context::<Parts>().and_then(|p| p.extensions.get::<ErrorSlot>().cloned())
    {
        slot.put(report);
    }
    page_error
}

impl From<AppError> for PageError {
    fn from(error: AppError) -> Self {
        record(error)
    }
}

/// Failures of the layers below, answered as internal errors (logged, never shown).
macro_rules! internal_page_errors {
    ($($source:ty),*) => {$(
        impl From<$source> for PageError {
            fn from(error: $source) -> Self {
                record(AppError::from(error))
            }
        }
    )*};
}
internal_page_errors!(
    sqlx::Error,
    anyhow::Error,
    tower_sessions::session::Error,
    crate::stripe_gateway::GatewayError
);

impl PageError {
    fn from_app(error: &AppError) -> Self {
        match error {
            AppError::NotFound => PageError::NotFound,
            AppError::Forbidden => PageError::Forbidden,
            AppError::Unauthenticated => PageError::SignedOut,
            AppError::CsrfRejected => PageError::Expired,
            AppError::RateLimited { .. } | AppError::Throttled { .. } | AppError::BadRequest(_) => {
                let report = error.report();
                PageError::Refused {
                    status: report.status.as_u16(),
                    message: report.message,
                }
            }
            // Out of reach (the database, Stripe): the message says so and that nothing changed.
            AppError::Internal(e) if crate::error::Outage::of(e).is_some() => {
                let report = error.report();
                PageError::Refused {
                    status: report.status.as_u16(),
                    message: report.message,
                }
            }
            AppError::Internal(_) => PageError::Internal,
        }
    }
}

/// Anyone, signed in or not.
pub struct Visitor {
    pub session: Session,
    pub csrf: CsrfToken,
    pub user: Option<User>,
    pub db: PgPool,
    /// The signed-in user's memberships, read with the user (one statement per page view).
    memberships: Vec<Membership>,
}

impl Visitor {
    /// Who is asking a read function.
    pub async fn reading() -> Result<Self, AppError> {
        let session = session_of_request().await?;
        Self::with_session(session).await
    }

    /// Who is posting a form, once its anti-forgery `token` matched the session. A missing,
    /// foreign or expired token is refused before anything else happens.
    pub async fn posting(token: &str) -> Result<Self, AppError> {
        let session = session_of_request().await?;
        csrf::verify(&session, &dep::<CsrfKey>()?, token).await?;
        Self::with_session(session).await
    }

    async fn with_session(session: Session) -> Result<Self, AppError> {
        let db = dep::<PgPool>()?;
        let csrf = CsrfToken::of_session(&session, &dep::<CsrfKey>()?).await?;
        let (user, memberships) = match session::user_id(&session).await? {
            Some(user_id) => match dep::<Viewers>()?.of(&db, user_id).await? {
                Some(viewer) => (Some(viewer.0.clone()), viewer.1.clone()),
                None => {
                    // The session names a user who no longer exists.
                    session::sign_out(&session).await?;
                    (None, Vec::new())
                }
            },
            None => (None, Vec::new()),
        };
        session::keep_alive(&session, chrono::Utc::now().date_naive()).await?;
        Ok(Self {
            session,
            csrf,
            user,
            db,
            memberships,
        })
    }

    /// The signed-in user, or [`AppError::Unauthenticated`] (a browser is sent to log in).
    pub async fn signed_in(mut self) -> Result<SignedIn, AppError> {
        let user = self.user.clone().ok_or(AppError::Unauthenticated)?;
        crate::audit::context::identify(crate::audit::context::Actor::User(user.id));
        let memberships = std::mem::take(&mut self.memberships);
        Ok(SignedIn {
            visitor: self,
            user,
            memberships,
        })
    }

    /// The frame of a page without a form, for someone not signed in. It issues no token, so
    /// viewing it stores nothing: a visitor's first page does not create a session.
    pub async fn chrome(&self) -> Result<Chrome, AppError> {
        chrome(&self.session, &self.csrf, None, false).await
    }

    /// The frame of a page with a form (signing up, logging in), for someone not signed in.
    pub async fn chrome_for_form(&self) -> Result<Chrome, AppError> {
        chrome(&self.session, &self.csrf, None, true).await
    }

    /// Sets the message the next page shows.
    pub async fn flash(&self, flash: Flash) -> Result<(), AppError> {
        flash::set(&self.session, flash).await?;
        Ok(())
    }

    /// Call after changing the signed-in user's own memberships: the next page reads them anew.
    pub fn memberships_changed(&self) -> Result<(), AppError> {
        if let Some(user) = &self.user {
            dep::<Viewers>()?.forget(user.id);
        }
        Ok(())
    }
}

/// A signed-in user with their memberships.
pub struct SignedIn {
    pub visitor: Visitor,
    pub user: User,
    pub memberships: Vec<Membership>,
}

impl SignedIn {
    pub fn session(&self) -> &Session {
        &self.visitor.session
    }

    pub fn db(&self) -> &PgPool {
        &self.visitor.db
    }

    /// The user as a member of the organization `slug`; outsiders get the same 404 as for an
    /// organization that does not exist.
    pub fn member(self, slug: &str) -> Result<Member, AppError> {
        let membership = self
            .memberships
            .iter()
            .find(|m| m.org.slug == slug)
            .cloned()
            .ok_or(AppError::NotFound)?;
        Ok(Member {
            signed_in: self,
            membership,
        })
    }

    /// The user as a platform admin; anyone else gets 403.
    pub fn platform_admin(self) -> Result<PlatformAdmin, AppError> {
        if self.user.is_platform_admin {
            Ok(PlatformAdmin(self))
        } else {
            Err(AppError::Forbidden)
        }
    }

    /// The organization remembered as current in this session, if the user still belongs to it.
    pub async fn current_org(&self) -> Result<Option<&Membership>, AppError> {
        let current: Option<Uuid> = session::current_org(self.session()).await?;
        Ok(current.and_then(|id| self.memberships.iter().find(|m| m.org.id == id)))
    }

    /// The frame of a page, with `current_org` (or the session's) highlighted in the switcher.
    pub async fn chrome(&self, current_org: Option<Uuid>) -> Result<Chrome, AppError> {
        let current_org = match current_org {
            Some(id) => Some(id),
            None => session::current_org(self.session()).await?,
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
        // The navigation holds the log-out form.
        chrome(self.session(), &self.visitor.csrf, Some(nav), true).await
    }

    pub async fn flash(&self, flash: Flash) -> Result<(), AppError> {
        self.visitor.flash(flash).await
    }
}

/// A member of one organization.
pub struct Member {
    pub signed_in: SignedIn,
    pub membership: Membership,
}

impl Member {
    /// The member as one who may manage the organization's billing, members and keys; other
    /// members get 403.
    pub fn manager(self) -> Result<Manager, AppError> {
        if self.membership.role.can_manage() {
            Ok(Manager(self))
        } else {
            Err(AppError::Forbidden)
        }
    }

    pub fn org_id(&self) -> Uuid {
        self.membership.org.id
    }

    pub fn slug(&self) -> &str {
        &self.membership.org.slug
    }

    /// The frame of a page about this organization (highlighted in the switcher).
    pub async fn chrome(&self) -> Result<Chrome, AppError> {
        self.signed_in.chrome(Some(self.membership.org.id)).await
    }
}

/// An owner or admin of one organization.
pub struct Manager(pub Member);

impl std::ops::Deref for Manager {
    type Target = Member;
    fn deref(&self) -> &Member {
        &self.0
    }
}

/// A platform operator.
pub struct PlatformAdmin(pub SignedIn);

impl std::ops::Deref for PlatformAdmin {
    type Target = SignedIn;
    fn deref(&self) -> &SignedIn {
        &self.0
    }
}

/// The frame of a page: takes the pending flash message and, for a page with a form, issues its
/// token (which stores the session's secret the first time).
async fn chrome(
    session: &Session,
    csrf: &CsrfToken,
    nav: Option<Nav>,
    with_form: bool,
) -> Result<Chrome, AppError> {
    let flash = flash::take(session).await?;
    let token = if with_form {
        let token = csrf.authenticity_token();
        csrf.save(session).await?;
        token
    } else {
        String::new()
    };
    Ok(Chrome { nav, flash, token })
}

/// The address the request came from.
pub async fn client_ip() -> Result<std::net::IpAddr, AppError> {
    let axum::extract::ConnectInfo(peer) =
        leptos_axum::extract::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
            .await
            .map_err(|e| AppError::Internal(anyhow::anyhow!("client address: {e}")))?;
    Ok(peer.ip())
}

/// Sends the browser to `path` when the function returns (a local path or a Stripe URL).
pub fn redirect(path: &str) {
    leptos_axum::redirect(path);
    // leptos_axum answers 302 only to clients that accept HTML, so that a server function called
    // by script can return its value; a page asked for by any client (a crawler, curl) redirects.
    if let (Some(parts), Some(response)) = (
        use_context::<Parts>(),
        use_context::<leptos_axum::ResponseOptions>(),
    ) {
        if !parts.uri.path().starts_with(crate::error::FORMS_PREFIX) {
            response.set_status(axum::http::StatusCode::FOUND);
        }
    }
}

async fn session_of_request() -> Result<Session, AppError> {
    leptos_axum::extract::<Session>()
        .await
        .map_err(|e| AppError::Internal(anyhow::anyhow!("session layer: {e}")))
}
