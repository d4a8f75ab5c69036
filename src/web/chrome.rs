//! What surrounds every page's content, as data a read function returns with the page: who is
//! signed in (for the navigation and the organization switcher), the one-shot flash message, and
//! the anti-forgery token the page's forms carry. Plain data, for the server and the browser.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum FlashKind {
    Notice,
    Alert,
}

/// A message shown once, on the next page a user sees (after a redirect).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Flash {
    pub kind: FlashKind,
    pub message: String,
}

impl Flash {
    pub fn notice(message: impl Into<String>) -> Self {
        Self {
            kind: FlashKind::Notice,
            message: message.into(),
        }
    }

    pub fn alert(message: impl Into<String>) -> Self {
        Self {
            kind: FlashKind::Alert,
            message: message.into(),
        }
    }
}

/// What the navigation shows for a signed-in user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Nav {
    pub email: String,
    pub is_platform_admin: bool,
    pub orgs: Vec<NavOrg>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NavOrg {
    pub name: String,
    pub slug: String,
    pub current: bool,
}

/// The frame of one page view.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Chrome {
    /// `None` for a visitor who is not signed in.
    pub nav: Option<Nav>,
    pub flash: Option<Flash>,
    /// The anti-forgery token for every form on the page, bound to the session.
    pub token: String,
}

/// A page's data: its frame and its own content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Page<T> {
    pub chrome: Chrome,
    pub body: T,
}
