//! Who is acting, for the audit log's triggers. The edge that knows (the browser guard for a
//! signed-in user, the API layer for a key, the webhook worker for an event, a job, an admin
//! action with its reason) names the actor; code that writes billing rows calls [`stamp`] in its
//! transaction, which hands the actor to PostgreSQL as transaction-local settings that the
//! triggers read. Between the edge and the write the actor rides in a task-local, so the
//! services in between need no extra parameter.

use std::cell::RefCell;
use std::future::Future;

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use sqlx::PgConnection;
use uuid::Uuid;

/// Who acted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    User(Uuid),
    ApiKey(Uuid),
    StripeEvent(String),
    Job(&'static str),
}

impl Actor {
    fn kind(&self) -> &'static str {
        match self {
            Actor::User(_) => "user",
            Actor::ApiKey(_) => "api_key",
            Actor::StripeEvent(_) => "stripe_event",
            Actor::Job(_) => "job",
        }
    }

    fn id(&self) -> String {
        match self {
            Actor::User(id) | Actor::ApiKey(id) => id.to_string(),
            Actor::StripeEvent(id) => id.clone(),
            Actor::Job(name) => (*name).to_owned(),
        }
    }
}

/// An actor with, for deliberate actions, what they did and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stamp {
    pub actor: Actor,
    /// Recorded as the action instead of `table.operation` (`admin.extend_trial`, an event type).
    pub action: Option<String>,
    pub reason: Option<String>,
}

impl Stamp {
    pub fn of(actor: Actor) -> Self {
        Self {
            actor,
            action: None,
            reason: None,
        }
    }

    pub fn action(mut self, action: impl Into<String>) -> Self {
        self.action = Some(action.into());
        self
    }

    pub fn reason(mut self, reason: impl Into<String>) -> Self {
        self.reason = Some(reason.into());
        self
    }
}

tokio::task_local! {
    static CURRENT: RefCell<Option<Stamp>>;
}

/// A layer giving each request an empty slot that its guard fills ([`identify`]).
pub async fn per_request(request: Request, next: Next) -> Response {
    CURRENT.scope(RefCell::new(None), next.run(request)).await
}

/// Names the request's actor (the first one named wins: an explicit [`acting`] is not undone).
/// Outside a request or a job it does nothing.
pub fn identify(actor: Actor) {
    let _ = CURRENT.try_with(|slot| {
        let mut slot = slot.borrow_mut();
        if slot.is_none() {
            *slot = Some(Stamp::of(actor));
        }
    });
}

/// Runs `work` with `stamp` as the actor of every billing change it makes.
pub async fn acting<F: Future>(stamp: Stamp, work: F) -> F::Output {
    CURRENT.scope(RefCell::new(Some(stamp)), work).await
}

/// The actor named for this task, if any.
pub fn current() -> Option<Stamp> {
    CURRENT
        .try_with(|slot| slot.borrow().clone())
        .ok()
        .flatten()
}

/// Hands the task's actor to the triggers for the rest of the transaction `db` is in. Without
/// one it leaves what is set (the webhook worker sets each event itself).
pub async fn stamp(db: &mut PgConnection) -> sqlx::Result<()> {
    match current() {
        Some(stamp) => write(db, &stamp).await,
        None => Ok(()),
    }
}

/// Sets `stamp` for the rest of the transaction `db` is in.
pub async fn write(db: &mut PgConnection, stamp: &Stamp) -> sqlx::Result<()> {
    sqlx::query(
        "SELECT set_config('audit.actor_kind', $1, true), set_config('audit.actor_id', $2, true),
                set_config('audit.action', $3, true), set_config('audit.reason', $4, true)",
    )
    .bind(stamp.actor.kind())
    .bind(stamp.actor.id())
    .bind(stamp.action.as_deref().unwrap_or_default())
    .bind(stamp.reason.as_deref().unwrap_or_default())
    .execute(db)
    .await?;
    Ok(())
}

/// For invoice events applied together in one statement: which event each invoice came from.
pub async fn invoice_events(db: &mut PgConnection, pairs: &[(&str, &str)]) -> sqlx::Result<()> {
    let map: serde_json::Map<String, serde_json::Value> = pairs
        .iter()
        .map(|(invoice, event)| ((*invoice).to_owned(), serde_json::json!(event)))
        .collect();
    sqlx::query("SELECT set_config('audit.invoice_events', $1, true)")
        .bind(serde_json::Value::Object(map).to_string())
        .execute(db)
        .await?;
    Ok(())
}

/// Writes one row by hand, for a change to something that is not a billing table (replaying a
/// webhook event), in the caller's transaction.
pub async fn record(
    db: &mut PgConnection,
    stamp: &Stamp,
    org_id: Option<Uuid>,
    (entity, entity_id): (&str, &str),
    before: serde_json::Value,
    after: serde_json::Value,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO audit_log (org_id, actor_kind, actor_id, action, entity, entity_id, reason, before, after)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(org_id)
    .bind(stamp.actor.kind())
    .bind(stamp.actor.id())
    .bind(stamp.action.as_deref().unwrap_or(entity))
    .bind(entity)
    .bind(entity_id)
    .bind(stamp.reason.as_deref())
    .bind(before)
    .bind(after)
    .execute(db)
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_first_actor_named_wins_and_nothing_leaks_out_of_a_scope() {
        assert_eq!(current(), None);
        let user = Uuid::new_v4();
        let seen = acting(Stamp::of(Actor::Job("drift-check")), async {
            identify(Actor::User(user));
            current()
        })
        .await;
        assert_eq!(seen.map(|s| s.actor), Some(Actor::Job("drift-check")));
        let seen = CURRENT
            .scope(RefCell::new(None), async {
                identify(Actor::User(user));
                current()
            })
            .await;
        assert_eq!(seen.map(|s| s.actor), Some(Actor::User(user)));
        assert_eq!(current(), None);
    }
}
