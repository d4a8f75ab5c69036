//! What counts as drift: the differences between our projection of one organization and what
//! Stripe says, field by field. Pure: the drift check (`drift_check`) fetches both sides and
//! records what this finds.

use chrono::{DateTime, Utc};

use crate::billing::repo::Invoice;
use crate::billing::subscription::{Snapshot, Stored};

/// One difference: which field of which Stripe object, our value and Stripe's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Difference {
    /// `customer`, `subscription`, `status`, `plan`, `period_end`, `cancel_at_period_end`,
    /// `invoice`.
    pub field: &'static str,
    pub object_id: String,
    pub ours: String,
    pub stripe: String,
}

/// Both sides for one organization. `plan_of` maps a price's lookup key to our plan key.
pub struct Sides<'a> {
    pub customer: &'a str,
    pub customer_exists: bool,
    pub ours: Option<&'a Stored>,
    /// Stripe's subscriptions of the customer, newest first.
    pub stripe: &'a [Snapshot],
    pub our_invoices: &'a [Invoice],
    pub stripe_invoices: &'a [Invoice],
}

const NONE: &str = "none";

/// Statuses in which a subscription still serves (or may still serve) the organization.
pub fn is_live(status: &str) -> bool {
    matches!(
        status,
        "trialing" | "active" | "past_due" | "unpaid" | "incomplete" | "paused"
    )
}

fn when(at: Option<DateTime<Utc>>) -> String {
    at.map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
        .unwrap_or_else(|| NONE.to_owned())
}

fn invoice_text(i: &Invoice) -> String {
    format!("{}, paid {} of {}", i.status, i.amount_paid, i.amount_due)
}

/// The subscription Stripe has that our row should mirror: the one we hold if Stripe has it and
/// nothing newer is live, else the newest live one, else none.
pub fn current<'a>(ours: Option<&Stored>, stripe: &'a [Snapshot]) -> Option<&'a Snapshot> {
    let newest_live = stripe.iter().find(|s| is_live(&s.status));
    let held = ours.and_then(|o| stripe.iter().find(|s| s.id == o.stripe_subscription_id));
    match (held, newest_live) {
        (Some(h), Some(l)) if h.id != l.id && !is_live(&h.status) => Some(l),
        (Some(h), _) => Some(h),
        (None, l) => l,
    }
}

/// Every difference between the two sides.
pub fn compare(sides: &Sides<'_>, plan_of: impl Fn(&str) -> Option<String>) -> Vec<Difference> {
    let mut found = Vec::new();
    let mut differ = |field, object_id: &str, ours: String, stripe: String| {
        if ours != stripe {
            found.push(Difference {
                field,
                object_id: object_id.to_owned(),
                ours,
                stripe,
            });
        }
    };
    if !sides.customer_exists {
        differ(
            "customer",
            sides.customer,
            "exists".to_owned(),
            "missing or deleted".to_owned(),
        );
        return found;
    }
    let theirs = current(sides.ours, sides.stripe);
    match (sides.ours, theirs) {
        (None, None) => {}
        (ours, theirs) if ours.map(|o| &o.stripe_subscription_id) != theirs.map(|t| &t.id) => {
            let id = theirs
                .map(|t| t.id.clone())
                .or(ours.map(|o| o.stripe_subscription_id.clone()))
                .unwrap_or_default();
            differ(
                "subscription",
                &id,
                ours.map_or(NONE.to_owned(), |o| o.stripe_subscription_id.clone()),
                theirs.map_or(NONE.to_owned(), |t| t.id.clone()),
            );
        }
        (Some(ours), Some(theirs)) => {
            let id = theirs.id.as_str();
            differ("status", id, ours.status.clone(), theirs.status.clone());
            let plan = theirs
                .price_lookup_key
                .as_deref()
                .and_then(&plan_of)
                .unwrap_or_else(|| NONE.to_owned());
            differ("plan", id, ours.plan_key.clone(), plan);
            differ(
                "period_end",
                id,
                when(ours.current_period_end),
                when(theirs.current_period_end),
            );
            differ(
                "cancel_at_period_end",
                id,
                ours.cancel_at_period_end.to_string(),
                theirs.cancel_at_period_end.to_string(),
            );
        }
        _ => {}
    }
    for theirs in sides.stripe_invoices {
        let ours = sides
            .our_invoices
            .iter()
            .find(|i| i.stripe_invoice_id == theirs.stripe_invoice_id);
        differ(
            "invoice",
            &theirs.stripe_invoice_id,
            ours.map_or("missing".to_owned(), invoice_text),
            invoice_text(theirs),
        );
    }
    found
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn at(t: i64) -> Option<DateTime<Utc>> {
        Utc.timestamp_opt(t, 0).single()
    }

    fn stored(id: &str, status: &str, plan: &str) -> Stored {
        Stored {
            stripe_subscription_id: id.into(),
            plan_key: plan.into(),
            status: status.into(),
            trial_end: None,
            current_period_start: at(0),
            current_period_end: at(100),
            cancel_at_period_end: false,
            past_due_since: None,
            kept: None,
        }
    }

    fn snapshot(id: &str, status: &str, key: &str) -> Snapshot {
        Snapshot {
            id: id.into(),
            customer: "cus_1".into(),
            status: status.into(),
            price_lookup_key: Some(key.into()),
            trial_end: None,
            current_period_start: at(0),
            current_period_end: at(100),
            cancel_at_period_end: false,
            org_hint: None,
        }
    }

    fn invoice(id: &str, status: &str, paid: i64) -> Invoice {
        Invoice {
            stripe_invoice_id: id.into(),
            number: None,
            status: status.into(),
            currency: "usd".into(),
            amount_due: 999,
            amount_paid: paid,
            period_start: None,
            period_end: None,
            hosted_invoice_url: None,
            invoice_pdf: None,
            created: Utc::now(),
        }
    }

    fn plan_of(key: &str) -> Option<String> {
        key.strip_suffix("_monthly").map(str::to_owned)
    }

    fn diff(
        ours: Option<&Stored>,
        stripe: &[Snapshot],
        inv: (&[Invoice], &[Invoice]),
    ) -> Vec<Difference> {
        compare(
            &Sides {
                customer: "cus_1",
                customer_exists: true,
                ours,
                stripe,
                our_invoices: inv.0,
                stripe_invoices: inv.1,
            },
            plan_of,
        )
    }

    #[test]
    fn agreeing_sides_have_no_drift() {
        let ours = stored("sub_1", "active", "pro");
        let paid = [invoice("in_1", "paid", 999)];
        assert!(diff(
            Some(&ours),
            &[snapshot("sub_1", "active", "pro_monthly")],
            (&paid, &paid)
        )
        .is_empty());
        assert!(diff(None, &[], (&[], &[])).is_empty());
    }

    #[test]
    fn each_field_that_differs_is_one_difference() {
        let ours = stored("sub_1", "trialing", "starter");
        let mut theirs = snapshot("sub_1", "active", "pro_monthly");
        theirs.cancel_at_period_end = true;
        theirs.current_period_end = at(200);
        let found = diff(Some(&ours), &[theirs], (&[], &[]));
        let fields: Vec<&str> = found.iter().map(|d| d.field).collect();
        assert_eq!(
            fields,
            ["status", "plan", "period_end", "cancel_at_period_end"]
        );
        assert_eq!(found[0].ours, "trialing");
        assert_eq!(found[0].stripe, "active");
        assert_eq!(found[1].stripe, "pro");
    }

    #[test]
    fn a_newer_live_subscription_or_a_missing_one_is_a_subscription_drift() {
        let ours = stored("sub_old", "canceled", "pro");
        let found = diff(
            Some(&ours),
            &[
                snapshot("sub_new", "active", "pro_monthly"),
                snapshot("sub_old", "canceled", "pro_monthly"),
            ],
            (&[], &[]),
        );
        assert_eq!(found.len(), 1);
        assert_eq!(
            (found[0].ours.as_str(), found[0].stripe.as_str()),
            ("sub_old", "sub_new")
        );
        let found = diff(
            None,
            &[snapshot("sub_new", "trialing", "pro_monthly")],
            (&[], &[]),
        );
        assert_eq!(
            (found[0].field, found[0].ours.as_str()),
            ("subscription", "none")
        );
        // An ended subscription we never heard of is no drift: the organization is on Free.
        assert!(diff(
            None,
            &[snapshot("sub_x", "canceled", "pro_monthly")],
            (&[], &[])
        )
        .is_empty());
    }

    #[test]
    fn invoices_missing_or_in_another_state_are_drift() {
        let ours = [invoice("in_1", "open", 0)];
        let theirs = [invoice("in_1", "paid", 999), invoice("in_2", "open", 0)];
        let found = diff(None, &[], (&ours, &theirs));
        assert_eq!(found.len(), 2);
        assert_eq!(found[0].ours, "open, paid 0 of 999");
        assert_eq!(found[0].stripe, "paid, paid 999 of 999");
        assert_eq!(found[1].ours, "missing");
    }

    #[test]
    fn a_customer_stripe_lost_is_the_only_drift_reported() {
        let ours = stored("sub_1", "active", "pro");
        let found = compare(
            &Sides {
                customer: "cus_1",
                customer_exists: false,
                ours: Some(&ours),
                stripe: &[],
                our_invoices: &[],
                stripe_invoices: &[],
            },
            plan_of,
        );
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].field, "customer");
    }
}
