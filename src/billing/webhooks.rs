//! `POST /webhooks/stripe`: verify the signature on the raw body, store the event in the inbox
//! (keyed by event id, so a duplicate delivery changes nothing), answer 200 once it is durable.
//! A worker applies stored events; several workers and instances share the inbox through
//! `SKIP LOCKED`, each event is applied once, and failures are retried with backoff until they
//! end in a visible `failed` state. Stripe's JSON is read in `stripe_gateway::events`: the worker
//! sees only our [`StripeEvent`].

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::Utc;
use serde_json::json;
use sqlx::PgPool;
use tokio::sync::Notify;
use uuid::Uuid;

use super::catalog::Catalog;
use super::inbox_writer::{InboxWriter, NewEvent};
use super::repo;
use super::service::{apply_snapshot, lock_org, org_for};
use super::subscription::{ordering, Ordering};
use crate::audit::context as audit;
use crate::stripe_gateway::events::{
    parse_event, read_head, CompletedPurchase, EventHead as Head, InvoiceSnapshot, StripeEvent,
    SubscriptionChange,
};
use crate::stripe_gateway::signature;
use crate::stripe_gateway::Gateway;
use crate::usage::ledger;
use crate::web::hygiene::{has_control_chars, json_text_has_nul};
use crate::web::state::AppState;

/// After this many failed attempts an event is marked `failed` (replayable from the admin pages).
const MAX_ATTEMPTS: i32 = 8;

/// Most events one pass claims and applies in one transaction.
const CLAIM_LIMIT: usize = 100;

/// How long a worker that found only a few events waits for more before its next pass.
const GATHER: Duration = Duration::from_millis(10);

/// The inbox's side of the webhook: where to store events and whom to wake.
#[derive(Clone)]
pub struct Inbox {
    pub secrets: Arc<Vec<String>>,
    pub wake: Arc<Notify>,
    pub writer: InboxWriter,
    /// Refused signatures, for the operators' alert.
    pub refused: Arc<crate::notify::alerts::SignatureFailures>,
}

fn refuse(message: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(json!({ "error": { "code": "bad_webhook", "message": message } })),
    )
        .into_response()
}

pub async fn receive(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let secrets: Vec<&str> = state.inbox.secrets.iter().map(String::as_str).collect();
    let header = headers.get(signature::HEADER).and_then(|v| v.to_str().ok());
    if let Err(e) = signature::verify(header, &body, &secrets, Utc::now().timestamp()) {
        tracing::warn!(reason = %e, "webhook refused");
        state.inbox.refused.refused(Utc::now());
        return refuse("The Stripe-Signature header does not verify.");
    }
    // Read only what the inbox needs (the rest is read later, leniently) and store the body as
    // it came: PostgreSQL parses it into jsonb, so it is not built and serialized again here.
    let (Ok(text), Ok(head)) = (std::str::from_utf8(&body), read_head(&body)) else {
        return refuse("The body is not an event: it needs an id, a type and created.");
    };
    // Refused here, a bad event cannot fail the inbox's shared commit for the deliveries
    // batched with it (the writer isolates failures too, but only after a wasted commit).
    if let Err(message) = check_head(&head, &body) {
        tracing::warn!(reason = message, "webhook refused");
        return refuse(message);
    }
    let stored = state
        .inbox
        .writer
        .store(NewEvent {
            id: head.id.into_owned(),
            kind: head.kind.into_owned(),
            api_version: head.api_version.map(Cow::into_owned),
            created: head.created,
            payload: text.to_owned(),
        })
        .await;
    match stored {
        Ok(_) => {
            state.inbox.wake.notify_one();
            (StatusCode::OK, Json(json!({ "received": true }))).into_response()
        }
        Err(e) => {
            tracing::error!(error = %e, "storing a webhook event failed");
            // Stripe retries non-2xx answers, so nothing is lost.
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({ "error": { "code": "unavailable", "message": "Try again." } })),
            )
                .into_response()
        }
    }
}

/// Longest event id, type and API version the inbox takes. Stripe's are far shorter
/// (`evt_` and 24 characters, `customer.subscription.updated`, `2026-09-30.endive`).
const MAX_EVENT_ID_LEN: usize = 255;
const MAX_EVENT_TYPE_LEN: usize = 255;
const MAX_API_VERSION_LEN: usize = 64;

/// What the inbox refuses to store: ids, types and versions that are empty, too long or hold
/// control characters, and bodies with NUL in a string (`jsonb` cannot hold it).
fn check_head(head: &Head<'_>, body: &[u8]) -> Result<(), &'static str> {
    let bad = |s: &str, max: usize| s.is_empty() || s.chars().count() > max || has_control_chars(s);
    if bad(&head.id, MAX_EVENT_ID_LEN) {
        return Err("The event id must be 1 to 255 characters without control characters.");
    }
    if bad(&head.kind, MAX_EVENT_TYPE_LEN) {
        return Err("The event type must be 1 to 255 characters without control characters.");
    }
    if head
        .api_version
        .as_deref()
        .is_some_and(|v| bad(v, MAX_API_VERSION_LEN))
    {
        return Err("The API version must be 1 to 64 characters without control characters.");
    }
    if json_text_has_nul(body) {
        return Err(
            "The event holds a NUL character (\\u0000) or an invalid escape, which cannot be stored.",
        );
    }
    Ok(())
}

/// What applying one event did.
enum Outcome {
    Applied(Option<Uuid>),
    Ignored(Option<Uuid>),
    /// Not applied, for the reason given: it ends `ignored` with the reason as its last error,
    /// visible on the admin pages.
    Refused(String),
}

/// Applies due events until `stop` is requested; a pass in progress (one transaction) is
/// finished and committed first.
pub async fn work_forever(
    pool: PgPool,
    gateway: Gateway,
    catalog: Arc<Catalog>,
    wake: Arc<Notify>,
    mut stop: crate::shutdown::Stop,
) {
    while !stop.requested() {
        let wait = match apply_due(&pool, &gateway, &catalog).await {
            Ok(0) => Duration::from_millis(500),
            // Events are arriving: let a few more commits land so the next pass applies them
            // together instead of one small transaction each.
            Ok(claimed) if claimed < CLAIM_LIMIT => GATHER,
            Ok(_) => Duration::ZERO,
            Err(e) => {
                // The database (or Stripe) is out of reach: try again shortly, by ourselves.
                tracing::warn!(error = format!("{e:#}"), "webhook worker pass failed");
                Duration::from_secs(1)
            }
        };
        if !wait.is_zero() {
            stop.idle(wait, Some(&wake)).await;
        }
    }
    tracing::info!("webhook worker stopped between batches");
}

/// Claimed events: id, type, the payload's JSON text (parsed once, by the gateway) and created.
type Due = Vec<(String, String, String, i64)>;

async fn claim(tx: &mut sqlx::PgConnection) -> sqlx::Result<Due> {
    sqlx::query_as(
        "SELECT id, type, payload::text, created FROM webhook_events
         WHERE status = 'pending' AND next_attempt_at <= now()
         ORDER BY created, received_at LIMIT $1
         FOR UPDATE SKIP LOCKED",
    )
    .bind(CLAIM_LIMIT as i64)
    .fetch_all(tx)
    .await
}

/// Begins a transaction that applies events. Its commit does not wait for the disk: the events
/// it applies are already durable in the inbox, and the transaction holds both their effects and
/// their `applied` mark, so a crash can only lose the two together, leaving the events pending to
/// be applied again. Anything durable that builds on its effects is committed later in the same
/// write-ahead log and so makes them durable first. Waiting would only hold up the inbox's own
/// commits, which do answer Stripe.
async fn begin_applying(pool: &PgPool) -> sqlx::Result<sqlx::Transaction<'static, sqlx::Postgres>> {
    let mut tx = pool.begin().await?;
    sqlx::query("SET LOCAL synchronous_commit = off")
        .execute(&mut *tx)
        .await?;
    Ok(tx)
}

/// One pass: claims up to [`CLAIM_LIMIT`] due events and applies them in one transaction.
/// `SKIP LOCKED` gives each event to one worker; if a worker dies its transaction rolls back and
/// the events are due again. Should any event fail, the batch is rolled back and redone
/// with a savepoint per event, so the failing one is retried alone. Returns how many it claimed.
pub async fn apply_due(
    pool: &PgPool,
    gateway: &Gateway,
    catalog: &Catalog,
) -> anyhow::Result<usize> {
    let mut tx = begin_applying(pool).await?;
    let due = claim(&mut tx).await?;
    if due.is_empty() {
        return Ok(0);
    }
    if let Ok(outcomes) = apply_batch(&mut tx, gateway, catalog, &due).await {
        let ids: Vec<&str> = due.iter().map(|(id, ..)| id.as_str()).collect();
        record_outcomes(&mut tx, &ids, &outcomes).await?;
        tx.commit().await?;
        return Ok(due.len());
    }
    tx.rollback().await?;
    apply_isolated(pool, gateway, catalog).await
}

/// Applies a claimed batch in the caller's transaction; the outcomes are in the batch's order.
/// Invoice events only touch their own invoice, and an invoice's status never moves back, so
/// they are stored together with a few set-based statements; every other event is applied
/// alone, in order.
async fn apply_batch(
    tx: &mut sqlx::PgConnection,
    gateway: &Gateway,
    catalog: &Catalog,
    due: &Due,
) -> anyhow::Result<Vec<Outcome>> {
    let mut invoices = Vec::new();
    let mut others = Vec::new();
    let mut outcomes: Vec<Option<Outcome>> = due.iter().map(|_| None).collect();
    for (index, (_, kind, payload, _)) in due.iter().enumerate() {
        match parse_event(kind, payload)? {
            StripeEvent::Refused { reason } => outcomes[index] = Some(Outcome::Refused(reason)),
            StripeEvent::InvoiceChanged(read) => invoices.push((index, read)),
            event => others.push((index, event)),
        }
    }
    let customers: Vec<&str> = invoices.iter().map(|(_, i)| i.customer.as_str()).collect();
    let orgs = repo::orgs_of_customers(&mut *tx, &customers).await?;
    let mut known = Vec::with_capacity(invoices.len());
    let mut sources = Vec::with_capacity(invoices.len());
    for (index, read) in &invoices {
        let org = orgs.get(&read.customer).copied();
        outcomes[*index] = Some(match org {
            Some(org) => {
                known.push((org, &read.invoice));
                sources.push((
                    read.invoice.stripe_invoice_id.as_str(),
                    due[*index].0.as_str(),
                ));
                Outcome::Applied(Some(org))
            }
            None => Outcome::Ignored(None),
        });
    }
    if !known.is_empty() {
        audit::invoice_events(&mut *tx, &sources).await?;
        repo::upsert_invoices(&mut *tx, &known).await?;
        super::lifecycle_mail::receipts(&mut *tx, &known).await?;
    }
    for (index, event) in others {
        let (id, kind, _, created) = &due[index];
        audit::write(&mut *tx, &event_stamp(id, kind)).await?;
        outcomes[index] =
            Some(apply_event(&mut *tx, gateway, catalog, kind, event, *created).await?);
    }
    Ok(outcomes.into_iter().flatten().collect())
}

/// The audit log's actor for what applying event `id` changes: the event, its type as the action.
fn event_stamp(id: &str, kind: &str) -> audit::Stamp {
    audit::Stamp::of(audit::Actor::StripeEvent(id.to_owned())).action(kind)
}

/// Marks a batch's events applied or ignored in one statement.
async fn record_outcomes(
    tx: &mut sqlx::PgConnection,
    ids: &[&str],
    outcomes: &[Outcome],
) -> sqlx::Result<()> {
    let mut statuses = Vec::with_capacity(outcomes.len());
    let mut orgs = Vec::with_capacity(outcomes.len());
    let mut notes = Vec::with_capacity(outcomes.len());
    for outcome in outcomes {
        let (status, org, note) = match outcome {
            Outcome::Applied(org) => ("applied", *org, None),
            Outcome::Ignored(org) => ("ignored", *org, None),
            Outcome::Refused(reason) => ("ignored", None, Some(reason.as_str())),
        };
        statuses.push(status);
        orgs.push(org);
        notes.push(note);
    }
    sqlx::query(
        "UPDATE webhook_events AS w
         SET status = u.status, org_id = u.org_id, applied_at = now(), last_error = u.note,
             attempts = w.attempts + 1
         FROM UNNEST($1::text[], $2::text[], $3::uuid[], $4::text[]) AS u(id, status, org_id, note)
         WHERE w.id = u.id",
    )
    .bind(ids)
    .bind(statuses)
    .bind(orgs)
    .bind(notes)
    .execute(tx)
    .await?;
    Ok(())
}

/// The careful path: each event in its own savepoint; failures are recorded and retried later
/// with backoff, ending as `failed` after [`MAX_ATTEMPTS`].
async fn apply_isolated(
    pool: &PgPool,
    gateway: &Gateway,
    catalog: &Catalog,
) -> anyhow::Result<usize> {
    let mut tx = begin_applying(pool).await?;
    let due = claim(&mut tx).await?;
    for (id, kind, payload, created) in &due {
        sqlx::query("SAVEPOINT event").execute(&mut *tx).await?;
        let applied = match parse_event(kind, payload) {
            Ok(event) => match audit::write(&mut tx, &event_stamp(id, kind)).await {
                Ok(()) => apply_event(&mut tx, gateway, catalog, kind, event, *created).await,
                Err(e) => Err(e.into()),
            },
            Err(e) => Err(e.into()),
        };
        match applied {
            Ok(outcome) => {
                sqlx::query("RELEASE SAVEPOINT event")
                    .execute(&mut *tx)
                    .await?;
                record_outcomes(&mut tx, &[id.as_str()], &[outcome]).await?;
            }
            Err(e) => {
                sqlx::query("ROLLBACK TO SAVEPOINT event")
                    .execute(&mut *tx)
                    .await?;
                let message = format!("{e:#}");
                tracing::warn!(event = %id, error = %message, "applying a webhook event failed");
                let status: String = sqlx::query_scalar(
                    "UPDATE webhook_events SET attempts = attempts + 1, last_error = $2,
                         status = CASE WHEN attempts + 1 >= $3 THEN 'failed' ELSE 'pending' END,
                         next_attempt_at = now() + make_interval(secs => power(2, least(attempts, 12)))
                     WHERE id = $1 RETURNING status",
                )
                .bind(id)
                .bind(&message)
                .bind(MAX_ATTEMPTS)
                .fetch_one(&mut *tx)
                .await?;
                if status == "failed" {
                    // The operators hear of it in the same transaction (once per event).
                    crate::notify::enqueue(
                        &mut tx,
                        crate::notify::Notice {
                            kind: crate::notify::kinds::Kind::OpsEventFailed,
                            org_id: None,
                            user_id: None,
                            cause: id,
                            values: serde_json::json!({
                                "event_id": id, "event_type": kind, "error": message,
                            }),
                        },
                    )
                    .await?;
                }
            }
        }
    }
    tx.commit().await?;
    Ok(due.len())
}

/// Applies one event's effect inside the caller's transaction.
async fn apply_event(
    tx: &mut sqlx::PgConnection,
    gateway: &Gateway,
    catalog: &Catalog,
    kind: &str,
    event: StripeEvent,
    created: i64,
) -> anyhow::Result<Outcome> {
    let outcome = match event {
        StripeEvent::Refused { reason } => Outcome::Refused(reason),
        StripeEvent::Ignored { .. } => Outcome::Ignored(None),
        StripeEvent::SubscriptionChanged(change) => {
            let snapshot = match change {
                SubscriptionChange::Snapshot(snapshot) => snapshot,
                // The event's shape lacks what we read: ask Stripe for the object.
                SubscriptionChange::Refetch { subscription_id } => {
                    gateway.retrieve_subscription(&subscription_id).await?
                }
            };
            let org = org_for(&mut *tx, &snapshot).await?;
            let stored = match org {
                Some(org) => {
                    // Decide the order under the same lock the other appliers take.
                    lock_org(&mut *tx, org).await?;
                    repo::subscription_for_update(&mut *tx, org).await?
                }
                None => None,
            };
            let applied = stored
                .filter(|(s, _)| s.stripe_subscription_id == snapshot.id)
                .map(|(_, version)| version);
            match ordering(applied, created) {
                Ordering::Stale => Outcome::Ignored(org),
                Ordering::Apply => Outcome::Applied(
                    apply_snapshot(
                        &mut *tx,
                        catalog,
                        &snapshot,
                        Some(created),
                        kind,
                        Utc::now(),
                    )
                    .await?,
                ),
                Ordering::Fetch => {
                    // Same second as what we applied: only Stripe knows which is newer.
                    let current = gateway.retrieve_subscription(&snapshot.id).await?;
                    Outcome::Applied(
                        apply_snapshot(
                            &mut *tx,
                            catalog,
                            &current,
                            Some(created),
                            kind,
                            Utc::now(),
                        )
                        .await?,
                    )
                }
            }
        }
        StripeEvent::CheckoutCompleted(checkout) => {
            repo::close_checkout(&mut *tx, &checkout.session_id, "complete").await?;
            match checkout.purchase {
                CompletedPurchase::Subscription { subscription_id } => {
                    let current = gateway.retrieve_subscription(&subscription_id).await?;
                    Outcome::Applied(
                        apply_snapshot(&mut *tx, catalog, &current, None, kind, Utc::now()).await?,
                    )
                }
                CompletedPurchase::PaidCredits {
                    payment_intent_id,
                    org_reference,
                } => {
                    let paid = ledger::PaidCheckout {
                        session_id: &checkout.session_id,
                        payment_intent_id: payment_intent_id.as_deref(),
                    };
                    ledger::settle_checkout(&mut *tx, paid).await?;
                    Outcome::Applied(org_reference)
                }
                CompletedPurchase::Nothing => Outcome::Ignored(None),
            }
        }
        StripeEvent::CheckoutExpired(checkout) => {
            repo::close_checkout(&mut *tx, &checkout.session_id, "expired").await?;
            if checkout.payment_mode {
                ledger::expire_checkout(&mut *tx, &checkout.session_id).await?;
                Outcome::Applied(None)
            } else {
                Outcome::Ignored(None)
            }
        }
        StripeEvent::ChargeRefunded(refund) => match ledger::apply_refund(&mut *tx, &refund).await?
        {
            Some(org) => Outcome::Applied(Some(org)),
            None => Outcome::Ignored(None),
        },
        StripeEvent::InvoiceChanged(InvoiceSnapshot { customer, invoice }) => {
            match repo::org_of_customer(&mut *tx, &customer).await? {
                Some(org) => {
                    repo::upsert_invoices(&mut *tx, &[(org, &invoice)]).await?;
                    super::lifecycle_mail::receipts(&mut *tx, &[(org, &invoice)]).await?;
                    Outcome::Applied(Some(org))
                }
                None => Outcome::Ignored(None),
            }
        }
    };
    Ok(outcome)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_heads_are_bounded_and_printable() {
        let head = |id: &'static str, kind: &'static str| Head {
            id: Cow::Borrowed(id),
            kind: Cow::Borrowed(kind),
            created: 1,
            api_version: None,
        };
        assert!(check_head(&head("evt_1", "invoice.paid"), b"{}").is_ok());
        assert!(check_head(&head("", "invoice.paid"), b"{}").is_err());
        assert!(check_head(&head("evt\u{0}", "invoice.paid"), b"{}").is_err());
        assert!(check_head(&head("evt_1", "invoice.paid\n"), b"{}").is_err());
        let long: &'static str = Box::leak("e".repeat(256).into_boxed_str());
        assert!(check_head(&head(long, "invoice.paid"), b"{}").is_err());
        assert!(check_head(&head("evt_1", "invoice.paid"), br#"{"a":"\u0000"}"#).is_err());
    }
}
