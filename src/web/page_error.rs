//! The errors server functions answer, for the server and the browser.
//!
//! A function that fails for a reason the whole page is about (not found, not allowed, signed
//! out, an expired form, Stripe out of reach) records the failure for the response on the server
//! (see `caller::record`), so a browser without JavaScript gets the same error page, status and
//! redirect as from any page; a JavaScript client gets the same error as data. A form whose fields
//! are wrong answers [`PageError::Invalid`], with one message per field; without JavaScript the
//! typed values and messages wait in the session for the form page (see `form_state`), never in
//! the URL.

use std::collections::BTreeMap;

use leptos::server_fn::codec::JsonEncoding;
use leptos::server_fn::error::{FromServerFnError, ServerFnErrorErr};
use serde::{Deserialize, Serialize};

/// Messages per field name; the empty name is for the form as a whole.
pub type FieldErrors = BTreeMap<String, String>;

/// The key of a message about the whole form rather than one field.
pub const WHOLE_FORM: &str = "";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum PageError {
    #[error("not found")]
    NotFound,
    #[error("forbidden")]
    Forbidden,
    #[error("not signed in")]
    SignedOut,
    #[error("the form has expired or came from another site")]
    Expired,
    #[error("{message}")]
    Refused { status: u16, message: String },
    #[error("some fields need another look")]
    Invalid(FieldErrors),
    #[error("something went wrong on our side")]
    Internal,
    /// The request itself could not be read (arguments missing or of the wrong type).
    #[error("{0}")]
    Request(String),
}

impl FromServerFnError for PageError {
    type Encoder = JsonEncoding;

    fn from_server_fn_error(value: ServerFnErrorErr) -> Self {
        PageError::Request(value.to_string())
    }
}

impl PageError {
    /// A form error with one message for `field`.
    pub fn field(field: &str, message: impl Into<String>) -> Self {
        PageError::Invalid(BTreeMap::from([(field.to_owned(), message.into())]))
    }
}

/// A form's typed values and its messages, as a page shows them again after a refused post.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Kept<V> {
    pub values: V,
    pub errors: FieldErrors,
}

impl<V> Kept<V> {
    /// The message for `field`, if any.
    pub fn error(&self, field: &str) -> Option<String> {
        self.errors.get(field).cloned()
    }
}
