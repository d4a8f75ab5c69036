//! The e-mail a subscription change causes: trial started, converted or ended, payment failed and
//! recovered, plan changed, cancel scheduled or withdrawn, canceled, downgraded when grace ran
//! out. [`transitions`] is pure; [`enqueue`] writes them in the applier's transaction. Each
//! cause names the subscription and what changed, so applying the same state twice (a duplicate
//! webhook, the success page racing the webhook) finds no transition and writes nothing.

use chrono::Duration;
use sqlx::PgConnection;
use uuid::Uuid;

use super::catalog::Catalog;
use super::subscription::{Stored, GRACE_DAYS};
use crate::notify::kinds::Kind;

fn live(status: &str) -> bool {
    matches!(
        status,
        "trialing" | "active" | "past_due" | "unpaid" | "incomplete"
    )
}

/// What changed from `before` to `after`, each with what makes its cause unique.
/// `source` is the Stripe event type (Stripe's `trial_will_end` says the trial ends in 3 days).
pub fn transitions(before: Option<&Stored>, after: &Stored, source: &str) -> Vec<(Kind, String)> {
    let sub = &after.stripe_subscription_id;
    let same = before.filter(|b| b.stripe_subscription_id == *sub);
    let mut out = Vec::new();
    if source == "customer.subscription.trial_will_end" && after.status == "trialing" {
        let end = after.trial_end.map_or(0, |t| t.timestamp());
        out.push((Kind::TrialEnding, format!("{sub}:{end}")));
    }
    let Some(b) = same else {
        if after.status == "trialing" {
            out.push((Kind::TrialStarted, sub.clone()));
        } else if live(&after.status) && after.status != "incomplete" {
            // A new paid subscription: from Free (or a previous subscription) to this plan.
            out.push((Kind::PlanChanged, format!("{sub}:new")));
        }
        return out;
    };
    let stamp = |at: Option<chrono::DateTime<chrono::Utc>>| at.map_or(0, |t| t.timestamp());
    if b.status == "incomplete" && after.status == "active" {
        // The first payment of a new subscription went through.
        out.push((Kind::PlanChanged, format!("{sub}:new")));
    }
    if b.status == "trialing" && after.status == "active" {
        out.push((Kind::TrialConverted, sub.clone()));
    }
    if b.status == "trialing" && !live(&after.status) {
        out.push((Kind::TrialEndedFree, sub.clone()));
        return out;
    }
    if b.past_due_since.is_none() && after.past_due_since.is_some() {
        out.push((
            Kind::PaymentFailed,
            format!("{sub}:{}", stamp(after.past_due_since)),
        ));
    }
    if b.past_due_since.is_some() && after.past_due_since.is_none() && live(&after.status) {
        out.push((
            Kind::PaymentRecovered,
            format!("{sub}:{}", stamp(b.past_due_since)),
        ));
    }
    if live(&b.status) && live(&after.status) && b.plan_key != after.plan_key {
        out.push((
            Kind::PlanChanged,
            format!(
                "{sub}:{}:{}:{}",
                b.plan_key,
                after.plan_key,
                chrono::Utc::now().timestamp()
            ),
        ));
    }
    if live(&after.status) && !b.cancel_at_period_end && after.cancel_at_period_end {
        // The time too (to the microsecond): canceling again after a resume is news again. A
        // duplicate of the same change finds no transition, so it still sends nothing.
        out.push((
            Kind::CancelScheduled,
            format!(
                "{sub}:{}:{}",
                stamp(after.current_period_end),
                chrono::Utc::now().timestamp_micros()
            ),
        ));
    }
    if live(&after.status) && b.cancel_at_period_end && !after.cancel_at_period_end {
        out.push((
            Kind::CancelResumed,
            format!("{sub}:{}", chrono::Utc::now().timestamp_micros()),
        ));
    }
    if live(&b.status) && !live(&after.status) {
        let kind = if b.past_due_since.is_some() {
            Kind::DowngradedFree
        } else {
            Kind::Canceled
        };
        out.push((kind, sub.clone()));
    }
    out
}

/// The free plan's name, for "from Free to …".
fn free_name(catalog: &Catalog) -> String {
    catalog
        .plan("free")
        .map_or_else(|| "Free".to_owned(), |p| p.name.clone())
}

/// Writes the e-mail of every transition from `before` to `after` for `org_id`.
pub async fn enqueue(
    db: &mut PgConnection,
    catalog: &Catalog,
    org_id: Uuid,
    before: Option<&Stored>,
    after: &Stored,
    source: &str,
) -> sqlx::Result<()> {
    let name = |key: &str| catalog.plan(key).map_or(key.to_owned(), |p| p.name.clone());
    let date = |at: Option<chrono::DateTime<chrono::Utc>>| {
        at.map(crate::web::format::date).unwrap_or_default()
    };
    for (kind, cause) in transitions(before, after, source) {
        let plan = match kind {
            // What ended is the plan they had.
            Kind::DowngradedFree | Kind::Canceled | Kind::TrialEndedFree => before
                .map(|b| name(&b.plan_key))
                .unwrap_or_else(|| name(&after.plan_key)),
            _ => name(&after.plan_key),
        };
        let values = serde_json::json!({
            "plan": plan,
            "old_plan": before
                .filter(|b| live(&b.status) && b.status != "incomplete")
                .map_or_else(|| free_name(catalog), |b| name(&b.plan_key)),
            "trial_end": date(after.trial_end),
            "period_end": date(after.current_period_end),
            "grace_end": date(after.past_due_since.map(|s| s + Duration::days(GRACE_DAYS))),
        });
        crate::notify::about_org(db, kind, org_id, &cause, values).await?;
    }
    Ok(())
}

/// A receipt for each paid invoice (once per invoice, whichever event says it was paid).
pub async fn receipts(
    db: &mut PgConnection,
    invoices: &[(Uuid, &super::repo::Invoice)],
) -> sqlx::Result<()> {
    use crate::web::links::safe_external_url_owned;
    for (org, invoice) in invoices {
        if invoice.status != "paid" || invoice.amount_paid <= 0 {
            continue;
        }
        let period = match (invoice.period_start, invoice.period_end) {
            (Some(start), Some(end)) => format!(
                "{} to {}",
                crate::web::format::date(start),
                crate::web::format::date(end)
            ),
            _ => crate::web::format::date(invoice.created),
        };
        let values = serde_json::json!({
            "amount": crate::web::format::money(invoice.amount_paid, &invoice.currency),
            "period": period,
            "invoice_url": safe_external_url_owned(invoice.hosted_invoice_url.clone()).unwrap_or_default(),
            "invoice_pdf": safe_external_url_owned(invoice.invoice_pdf.clone()).unwrap_or_default(),
        });
        crate::notify::about_org(db, Kind::Receipt, *org, &invoice.stripe_invoice_id, values)
            .await?;
    }
    Ok(())
}

/// Reminds organizations whose grace period ends within two days (once per failed payment).
pub async fn remind_grace_ending(
    pool: &sqlx::PgPool,
    catalog: &Catalog,
    now: chrono::DateTime<chrono::Utc>,
) -> sqlx::Result<usize> {
    let due: Vec<(Uuid, String, String, chrono::DateTime<chrono::Utc>)> = sqlx::query_as(
        "SELECT org_id, stripe_subscription_id, plan_key, past_due_since FROM subscriptions
         WHERE past_due_since IS NOT NULL
           AND past_due_since + make_interval(days => $1) > $2
           AND past_due_since + make_interval(days => $1) <= $2 + interval '2 days'",
    )
    .bind(GRACE_DAYS as i32)
    .bind(now)
    .fetch_all(pool)
    .await?;
    let mut tx = pool.begin().await?;
    for (org, sub, plan, since) in &due {
        let values = serde_json::json!({
            "plan": catalog.plan(plan).map_or(plan.clone(), |p| p.name.clone()),
            "grace_end": crate::web::format::date(*since + Duration::days(GRACE_DAYS)),
        });
        let cause = format!("{sub}:{}", since.timestamp());
        crate::notify::about_org(&mut tx, Kind::GraceReminder, *org, &cause, values).await?;
    }
    tx.commit().await?;
    Ok(due.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(status: &str, plan: &str) -> Stored {
        Stored {
            stripe_subscription_id: "sub_1".to_owned(),
            plan_key: plan.to_owned(),
            status: status.to_owned(),
            trial_end: None,
            current_period_start: None,
            current_period_end: None,
            cancel_at_period_end: false,
            past_due_since: None,
            kept: None,
        }
    }

    fn kinds(before: Option<&Stored>, after: &Stored) -> Vec<Kind> {
        transitions(before, after, "customer.subscription.updated")
            .into_iter()
            .map(|(k, _)| k)
            .collect()
    }

    #[test]
    fn each_change_is_one_notification_and_the_same_state_none() {
        let active = stored("active", "starter");
        assert_eq!(
            kinds(None, &stored("trialing", "pro")),
            [Kind::TrialStarted]
        );
        assert_eq!(kinds(None, &active), [Kind::PlanChanged]);
        assert_eq!(
            kinds(Some(&stored("incomplete", "starter")), &active),
            [Kind::PlanChanged]
        );
        assert_eq!(kinds(Some(&active), &active), []);
        assert_eq!(
            kinds(Some(&stored("trialing", "pro")), &stored("active", "pro")),
            [Kind::TrialConverted]
        );
        assert_eq!(
            kinds(Some(&stored("trialing", "pro")), &stored("canceled", "pro")),
            [Kind::TrialEndedFree]
        );
        assert_eq!(
            kinds(Some(&active), &stored("active", "pro")),
            [Kind::PlanChanged]
        );
        let mut failing = stored("past_due", "starter");
        failing.past_due_since = Some(chrono::Utc::now());
        assert_eq!(kinds(Some(&active), &failing), [Kind::PaymentFailed]);
        assert_eq!(kinds(Some(&failing), &active), [Kind::PaymentRecovered]);
        assert_eq!(
            kinds(Some(&failing), &stored("canceled", "starter")),
            [Kind::DowngradedFree]
        );
        assert_eq!(
            kinds(Some(&active), &stored("canceled", "starter")),
            [Kind::Canceled]
        );
        let mut ending = active.clone();
        ending.cancel_at_period_end = true;
        assert_eq!(kinds(Some(&active), &ending), [Kind::CancelScheduled]);
        assert_eq!(kinds(Some(&ending), &active), [Kind::CancelResumed]);
        let will_end = transitions(
            Some(&stored("trialing", "pro")),
            &stored("trialing", "pro"),
            "customer.subscription.trial_will_end",
        );
        assert_eq!(will_end.len(), 1);
        assert_eq!(will_end[0].0, Kind::TrialEnding);
    }
}
