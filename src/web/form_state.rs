//! What a form post leaves for the page it redirects to when its fields need another look: the
//! values as typed (never a password or a secret) and one message per field, kept in the session
//! under the form's name and taken once by the page's read function. Nothing of it travels in the
//! URL, so a forged query string can show nothing, and a reload shows a clean form.

use serde::de::DeserializeOwned;
use serde::Serialize;
use tower_sessions::Session;

use crate::error::AppError;
use crate::web::flash::take_once;
pub use crate::web::page_error::Kept;
use crate::web::page_error::{FieldErrors, PageError};

fn key(form: &str) -> String {
    format!("form:{form}")
}

/// Keeps `values` and `errors` of the form named `form` for the next view of its page.
pub async fn keep<V: Serialize>(
    session: &Session,
    form: &str,
    values: &V,
    errors: &FieldErrors,
) -> Result<(), AppError> {
    session
        .insert(
            &key(form),
            Kept {
                values,
                errors: errors.clone(),
            },
        )
        .await?;
    Ok(())
}

/// The values and messages left for the form named `form`, removed; or an empty form.
pub async fn take<V: DeserializeOwned + Default>(
    session: &Session,
    form: &str,
) -> Result<Kept<V>, AppError> {
    Ok(take_once::<Kept<V>>(session, &key(form))
        .await?
        .unwrap_or_default())
}

/// Sends a refused form back to its `page` with what was typed and what is wrong: keeps them for
/// the page, redirects there, and answers the messages (for a form sent by script).
pub async fn refuse<V: Serialize>(
    session: &Session,
    form: &str,
    page: &str,
    values: &V,
    errors: FieldErrors,
) -> Result<(), PageError> {
    keep(session, form, values, &errors).await?;
    crate::web::caller::redirect(page);
    Err(PageError::Invalid(errors))
}
