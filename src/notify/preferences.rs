//! Who turned which category off: the settings page and the unsubscribe link change the same
//! rows. Compulsory categories (payment failures, security) cannot be turned off.

use sqlx::PgPool;
use uuid::Uuid;

use super::kinds::Category;

/// Why a change was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PreferenceError {
    #[error("{0} cannot be turned off")]
    Compulsory(&'static str),
}

/// The categories `user` turned off.
pub async fn turned_off(pool: &PgPool, user: Uuid) -> sqlx::Result<Vec<Category>> {
    let names: Vec<String> =
        sqlx::query_scalar("SELECT category FROM notification_opt_outs WHERE user_id = $1")
            .bind(user)
            .fetch_all(pool)
            .await?;
    Ok(names.iter().filter_map(|n| Category::parse(n)).collect())
}

/// Sets which optional categories `user` receives: every optional category not in `on` is
/// turned off, in one transaction.
pub async fn set_received(pool: &PgPool, user: Uuid, on: &[Category]) -> sqlx::Result<()> {
    let off: Vec<&str> = Category::ALL
        .into_iter()
        .filter(|c| c.optional() && !on.contains(c))
        .map(Category::as_str)
        .collect();
    let mut tx = pool.begin().await?;
    sqlx::query("DELETE FROM notification_opt_outs WHERE user_id = $1")
        .bind(user)
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "INSERT INTO notification_opt_outs (user_id, category) SELECT $1, unnest($2::text[])",
    )
    .bind(user)
    .bind(&off)
    .execute(&mut *tx)
    .await?;
    tx.commit().await
}

/// Turns one category off for `user` (the unsubscribe link); repeating it changes nothing.
pub async fn turn_off(pool: &PgPool, user: Uuid, category: Category) -> Result<(), anyhow::Error> {
    if !category.optional() {
        return Err(PreferenceError::Compulsory(category.label()).into());
    }
    sqlx::query(
        "INSERT INTO notification_opt_outs (user_id, category) VALUES ($1, $2)
         ON CONFLICT DO NOTHING",
    )
    .bind(user)
    .bind(category.as_str())
    .execute(pool)
    .await?;
    Ok(())
}
