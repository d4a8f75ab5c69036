//! The billing use cases, one function each: start a trial, start Checkout for a plan, settle a
//! Checkout that came back to the success page, preview and change the plan, cancel at period end
//! and resume, open the card portal. Each takes its dependencies explicitly ([`BillingDeps`], and a
//! [`Manager`] for who is asking) and answers a typed outcome or a [`BillingError`]. Nothing here
//! knows about HTTP, sessions or markup, so a page, a server function, the command line or a job
//! can call it; the words people read are chosen by the caller.
//!
//! Applying a subscription state to our projection stays in [`super::service`]; these functions
//! call it, so the success page and plan changes run the same apply path as the webhook.

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

use super::catalog::{Catalog, Plan};
use super::limits::{check_plan_change, OverOnChange};
use super::repo::{self, TrialRefusal};
use super::service::{apply_snapshot, ensure_customer, refresh};
use super::subscription::Stored;
use crate::orgs::repo::{Membership, Org};
use crate::stripe_gateway::{Gateway, GatewayError};

/// What the billing use cases work with.
#[derive(Clone, Copy)]
pub struct BillingDeps<'a> {
    pub db: &'a PgPool,
    pub stripe: &'a Gateway,
    pub catalog: &'a Catalog,
    /// The address people use, for the pages Stripe sends them back to (no trailing slash).
    pub public_url: &'a str,
}

/// Someone who may change an organization's billing (an owner or admin of it), and who they are.
/// Only [`Manager::new`] makes one, so holding one is the permission.
#[derive(Debug, Clone)]
pub struct Manager {
    pub org: Org,
    pub user_id: Uuid,
    pub email: String,
}

impl Manager {
    /// The member, if their role lets them manage billing; else [`BillingError::NotAllowed`].
    pub fn new(membership: Membership, user_id: Uuid, email: &str) -> Result<Self, BillingError> {
        if !membership.role.can_manage() {
            return Err(BillingError::NotAllowed);
        }
        Ok(Self {
            org: membership.org,
            user_id,
            email: email.to_owned(),
        })
    }

    /// The organization's billing as its API key acts on it. An API key is issued by an owner or
    /// admin and holds the organization's billing scopes, so holding a verified key is the
    /// permission; Stripe's customer (when one has to be made) gets the first owner's e-mail, as
    /// if that owner had clicked. [`BillingError::NotAllowed`] when the organization has no owner.
    pub async fn for_api_key(db: &PgPool, org_id: Uuid) -> Result<Self, BillingError> {
        let (org, user_id, email) = crate::orgs::repo::first_owner(db, org_id)
            .await?
            .ok_or(BillingError::NotAllowed)?;
        Ok(Self {
            org,
            user_id,
            email,
        })
    }
}

/// Which trial rule refused a trial. The `Display` is the sentence shown to the customer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TrialRule {
    /// One trial per organization, and none after a subscription.
    #[error("This organization has already had a trial or a subscription.")]
    Organization,
    /// One trial per person, in any organization.
    #[error(
        "You have already had a trial, so this organization can subscribe but not start another one."
    )]
    Person,
    /// One trial per card: the card on file already had one elsewhere.
    #[error(
        "The card on file has already been used for a trial, so this organization can subscribe but not start a trial."
    )]
    Card,
}

impl From<TrialRefusal> for TrialRule {
    fn from(refusal: TrialRefusal) -> Self {
        match refusal {
            TrialRefusal::Person => TrialRule::Person,
            TrialRefusal::Organization => TrialRule::Organization,
        }
    }
}

/// Why there is nothing to change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unchanged {
    #[error("the organization has no active subscription")]
    NoSubscription,
    /// `plan` is the plan's name.
    #[error("the organization is already on {plan}")]
    AlreadyOn { plan: String },
}

/// Why a billing use case did not happen.
#[derive(Debug, thiserror::Error)]
pub enum BillingError {
    /// The member's role does not let them manage billing.
    #[error("only owners and admins may change billing")]
    NotAllowed,
    /// Not a plan anyone can buy: unknown, free or sold by contact. Holds the key asked for.
    #[error("“{0}” is not a plan you can buy")]
    NotForSale(String),
    #[error("nothing to change: {0}")]
    NothingToChange(Unchanged),
    /// A trial rule refused the trial.
    #[error("trial refused: {0}")]
    TrialRefused(TrialRule),
    /// The new plan's gauge limits are below what the organization has (members, agents).
    #[error("{0}")]
    OverGaugeLimits(OverOnChange),
    /// The subscription's plan is not in the catalog (any more).
    #[error("the current plan “{0}” is not in the catalog")]
    UnknownCurrentPlan(String),
    /// The id given is not a Checkout Session id.
    #[error("not a Checkout Session id")]
    NotACheckoutSession,
    /// Stripe does not know the session, or it belongs to none of the caller's organizations.
    #[error("no such Checkout Session for this person")]
    UnknownCheckout,
    /// Stripe refused the card.
    #[error(transparent)]
    Declined(GatewayError),
    /// Stripe could not be reached, or failed otherwise.
    #[error(transparent)]
    Stripe(GatewayError),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    /// Anything else (say, a subscription whose price is not in the catalog).
    #[error(transparent)]
    Internal(anyhow::Error),
}

impl From<GatewayError> for BillingError {
    fn from(e: GatewayError) -> Self {
        if e.is_declined() {
            BillingError::Declined(e)
        } else {
            BillingError::Stripe(e)
        }
    }
}

/// The projection's functions answer `anyhow`; what they carry inside is sorted back out.
impl From<anyhow::Error> for BillingError {
    fn from(e: anyhow::Error) -> Self {
        let e = match e.downcast::<GatewayError>() {
            Ok(gateway) => return gateway.into(),
            Err(e) => e,
        };
        match e.downcast::<sqlx::Error>() {
            Ok(db) => BillingError::Database(db),
            Err(e) => BillingError::Internal(e),
        }
    }
}

/// A plan that can be bought: in the catalog with a recurring price.
pub fn paid_plan<'a>(catalog: &'a Catalog, key: &str) -> Result<&'a Plan, BillingError> {
    catalog
        .plan(key)
        .filter(|p| p.is_paid())
        .ok_or_else(|| BillingError::NotForSale(key.to_owned()))
}

/// Moving to a dearer plan is an upgrade (now, prorated); anything else waits for period end.
pub fn is_upgrade(current: &Plan, target: &Plan) -> bool {
    target.cents() > current.cents()
}

/// The plan kept until the period ends after a downgrade; an upgrade keeps nothing.
fn kept_after_change(
    upgrade: bool,
    current_key: &str,
    period_end: Option<DateTime<Utc>>,
) -> Option<(&str, DateTime<Utc>)> {
    (!upgrade)
        .then_some(())
        .and(period_end)
        .map(|until| (current_key, until))
}

/// A path on the portal's own site (`/orgs/acme/usage`), checked as every redirect target is
/// ([`crate::web::redirect::local_path`]): only [`LocalPath::parse`] makes one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalPath(String);

impl LocalPath {
    pub fn parse(raw: &str) -> Option<Self> {
        crate::web::redirect::local_path(raw).map(|p| Self(p.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Where a Checkout's customer lands instead of the billing pages, when the caller says so.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReturnPaths {
    /// After paying: the success page still settles the Checkout first, then redirects here.
    pub success: Option<LocalPath>,
    /// After going back from Checkout (nothing to settle).
    pub cancel: Option<LocalPath>,
}

/// Where Stripe sends the customer after Checkout: (success, cancel). The success address is
/// always the portal's success page, so the plan is applied at once even if the webhook is late.
fn checkout_return_urls(public_url: &str, slug: &str, returns: &ReturnPaths) -> (String, String) {
    let mut success = format!("{public_url}/billing/success?session_id={{CHECKOUT_SESSION_ID}}");
    if let Some(next) = &returns.success {
        success.push_str("&next=");
        success.extend(url::form_urlencoded::byte_serialize(
            next.as_str().as_bytes(),
        ));
    }
    let cancel = match &returns.cancel {
        Some(path) => format!("{public_url}{}", path.as_str()),
        None => format!("{public_url}/billing/cancel?org={slug}"),
    };
    (success, cancel)
}

async fn live_subscription(db: &PgPool, org_id: Uuid) -> Result<Stored, BillingError> {
    repo::subscription(db, org_id)
        .await?
        .map(|(s, _)| s)
        .filter(|s| matches!(s.status.as_str(), "trialing" | "active" | "past_due"))
        .ok_or(BillingError::NothingToChange(Unchanged::NoSubscription))
}

fn current_plan(catalog: &Catalog, stored: &Stored) -> Result<Plan, BillingError> {
    catalog
        .plan(&stored.plan_key)
        .cloned()
        .ok_or_else(|| BillingError::UnknownCurrentPlan(stored.plan_key.clone()))
}

/// A change that would leave the organization over a gauge limit of `target` is refused: the
/// portal never removes members or agents by itself, so they are lowered first.
async fn within_gauge_limits(
    deps: BillingDeps<'_>,
    org_id: Uuid,
    target: &Plan,
) -> Result<(), BillingError> {
    if deps.catalog.gauges().next().is_none() {
        return Ok(());
    }
    let values = crate::usage::gauges::values(deps.db, org_id).await?;
    check_plan_change(deps.catalog, target, &values).map_err(BillingError::OverGaugeLimits)
}

async fn customer(deps: BillingDeps<'_>, who: &Manager) -> Result<String, BillingError> {
    Ok(ensure_customer(deps.db, deps.stripe, who.org.id, &who.org.name, &who.email).await?)
}

async fn price_of(deps: BillingDeps<'_>, plan: &Plan) -> Result<String, BillingError> {
    Ok(deps
        .stripe
        .price_id(plan.lookup_key().unwrap_or_default())
        .await?)
}

/// A trial that started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrialStarted {
    pub plan_name: String,
    pub days: u32,
}

/// Starts a trial of a paid plan without a card. One per organization, one per person and one
/// per card: the grant is written in the transaction that starts the trial, and that transaction
/// stays open across the Stripe call, so if Stripe fails the grant is undone with it, and a
/// parallel start waits on the grant's unique keys and is then refused.
pub async fn start_trial(
    deps: BillingDeps<'_>,
    who: &Manager,
    plan_key: &str,
) -> Result<TrialStarted, BillingError> {
    let plan = paid_plan(deps.catalog, plan_key)?;
    if repo::subscription(deps.db, who.org.id).await?.is_some() {
        return Err(BillingError::TrialRefused(TrialRule::Organization));
    }
    if repo::user_had_trial(deps.db, who.user_id).await? {
        return Err(BillingError::TrialRefused(TrialRule::Person));
    }
    let customer = customer(deps, who).await?;
    // A card already on file (say, from a credit pack) that had a trial elsewhere: no trial.
    let card = deps
        .stripe
        .default_card_fingerprint(&customer)
        .await
        .map_err(|e| {
            BillingError::Stripe(GatewayError::failed(
                "reading the card on file",
                format!("{e:#}"),
            ))
        })?;
    if let Some(card) = &card {
        if repo::card_had_trial(deps.db, card, None).await? {
            return Err(BillingError::TrialRefused(TrialRule::Card));
        }
    }
    let price = price_of(deps, plan).await?;
    let mut tx = deps.db.begin().await?;
    if let Err(refusal) =
        repo::grant_trial(&mut tx, who.org.id, who.user_id, &plan.key, card.as_deref()).await?
    {
        return Err(BillingError::TrialRefused(refusal.into()));
    }
    let snapshot = deps
        .stripe
        .start_trial(who.org.id, &customer, &price, deps.catalog.trial_days)
        .await?;
    apply_snapshot(
        &mut tx,
        deps.catalog,
        &snapshot,
        None,
        "trial started",
        Utc::now(),
    )
    .await?;
    tx.commit().await?;
    Ok(TrialStarted {
        plan_name: plan.name.clone(),
        days: deps.catalog.trial_days,
    })
}

/// Where to send the customer to pay: a new Checkout Session, or the one already open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckoutStarted {
    pub url: String,
    /// The organization's open Checkout was reused rather than a new one created.
    pub reused: bool,
    /// The plan the Checkout sells (a reused one may sell another plan than asked for, or a
    /// credit pack: `None`).
    pub plan_key: Option<String>,
}

/// Starts Stripe Checkout for a paid plan. One open Checkout per organization: a second attempt
/// gets the first one's link, and parallel attempts take turns on a per-organization lock so
/// only the first creates a session in Stripe.
pub async fn start_checkout(
    deps: BillingDeps<'_>,
    who: &Manager,
    plan_key: &str,
) -> Result<CheckoutStarted, BillingError> {
    start_checkout_returning(deps, who, plan_key, &ReturnPaths::default()).await
}

/// [`start_checkout`], with the customer sent back to `returns` rather than the billing pages. A
/// reused Checkout keeps the return paths it was opened with.
pub async fn start_checkout_returning(
    deps: BillingDeps<'_>,
    who: &Manager,
    plan_key: &str,
    returns: &ReturnPaths,
) -> Result<CheckoutStarted, BillingError> {
    let plan = paid_plan(deps.catalog, plan_key)?;
    let reused = |(_, url, plan_key): (String, String, Option<String>)| CheckoutStarted {
        url,
        reused: true,
        plan_key,
    };
    if let Some(open) = repo::open_checkout_with_plan(deps.db, who.org.id).await? {
        return Ok(reused(open));
    }
    let customer = customer(deps, who).await?;
    let price = price_of(deps, plan).await?;
    let (success, cancel) = checkout_return_urls(deps.public_url, &who.org.slug, returns);
    let mut tx = deps.db.begin().await?;
    repo::lock_checkouts(&mut tx, who.org.id).await?;
    if let Some(open) = repo::open_checkout_with_plan(&mut *tx, who.org.id).await? {
        return Ok(reused(open));
    }
    let link = deps
        .stripe
        .create_checkout(
            who.org.id,
            &customer,
            &price,
            &success,
            &cancel,
            Uuid::new_v4(),
        )
        .await?;
    repo::insert_checkout(&mut tx, who.org.id, &link.id, &link.url, Some(&plan.key)).await?;
    tx.commit().await?;
    Ok(CheckoutStarted {
        url: link.url,
        reused: false,
        plan_key: Some(plan.key.clone()),
    })
}

/// What a Checkout that came back to the success page turned out to be.
#[derive(Debug, Clone)]
pub enum CheckoutReturn {
    /// A credit pack (a one-time payment). Billing does not settle it: when `paid`, the caller
    /// credits it through usage with these ids.
    CreditPack {
        membership: Membership,
        paid: bool,
        session_id: String,
        payment_intent_id: Option<String>,
    },
    /// A subscription Checkout that is not complete: nothing was applied.
    Unfinished { membership: Membership },
    /// A subscription Checkout that completed and was applied; `plan_name` is the plan the
    /// organization is now on (empty if it has none).
    Subscribed {
        membership: Membership,
        plan_name: String,
    },
}

/// Settles a Checkout the customer came back from: fetches the session from Stripe and, for a
/// subscription, closes it and applies the subscription through the same path as the webhook, so
/// the new plan shows even if the webhook is late. Only sessions of the caller's organizations
/// (`memberships`) are settled; any other, or one Stripe does not know, is
/// [`BillingError::UnknownCheckout`].
pub async fn settle_checkout_return(
    deps: BillingDeps<'_>,
    memberships: &[Membership],
    session_id: &str,
) -> Result<CheckoutReturn, BillingError> {
    if !session_id.starts_with("cs_") {
        return Err(BillingError::NotACheckoutSession);
    }
    let session = deps
        .stripe
        .retrieve_checkout(session_id)
        .await
        .map_err(|_| BillingError::UnknownCheckout)?;
    let org_id: Option<Uuid> = session
        .org_reference
        .as_deref()
        .and_then(|r| r.parse().ok());
    let membership = memberships
        .iter()
        .find(|m| Some(m.org.id) == org_id)
        .cloned()
        .ok_or(BillingError::UnknownCheckout)?;
    if session.payment_mode {
        return Ok(CheckoutReturn::CreditPack {
            membership,
            paid: session.complete && session.paid,
            session_id: session.id,
            payment_intent_id: session.payment_intent_id,
        });
    }
    if !session.complete {
        return Ok(CheckoutReturn::Unfinished { membership });
    }
    repo::close_checkout(deps.db, &session.id, "complete").await?;
    if let Some(sub) = &session.subscription_id {
        refresh(
            deps.db,
            deps.stripe,
            deps.catalog,
            sub,
            "checkout success page",
        )
        .await?;
    }
    let plan_name = repo::subscription(deps.db, membership.org.id)
        .await?
        .and_then(|(s, _)| deps.catalog.plan(&s.plan_key).map(|p| p.name.clone()))
        .unwrap_or_default();
    Ok(CheckoutReturn::Subscribed {
        membership,
        plan_name,
    })
}

/// What switching plans would do.
#[derive(Debug, Clone)]
pub struct ChangePreview {
    pub current: Plan,
    pub target: Plan,
    pub effect: ChangeEffect,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChangeEffect {
    /// Now, prorated: `due_cents` (in `currency`) is charged today (Stripe's invoice preview).
    UpgradeNow { due_cents: i64, currency: String },
    /// The current plan lasts `until` the period ends, then the target's price applies.
    DowngradeAtPeriodEnd { until: Option<DateTime<Utc>> },
}

impl ChangePreview {
    pub fn is_upgrade(&self) -> bool {
        matches!(self.effect, ChangeEffect::UpgradeNow { .. })
    }
}

/// What switching to `plan_key` costs, before the customer confirms. Changes nothing. The plan
/// the organization is already on has nothing to preview ([`Unchanged::AlreadyOn`], as
/// [`change_plan`] answers).
pub async fn preview_plan_change(
    deps: BillingDeps<'_>,
    who: &Manager,
    plan_key: &str,
) -> Result<ChangePreview, BillingError> {
    let target = paid_plan(deps.catalog, plan_key)?.clone();
    let stored = live_subscription(deps.db, who.org.id).await?;
    let current = current_plan(deps.catalog, &stored)?;
    if target.key == current.key {
        return Err(BillingError::NothingToChange(Unchanged::AlreadyOn {
            plan: target.name,
        }));
    }
    within_gauge_limits(deps, who.org.id, &target).await?;
    let effect = if is_upgrade(&current, &target) {
        let price = price_of(deps, &target).await?;
        let (due_cents, currency) = deps
            .stripe
            .preview_upgrade(&stored.stripe_subscription_id, &price)
            .await?;
        ChangeEffect::UpgradeNow {
            due_cents,
            currency,
        }
    } else {
        ChangeEffect::DowngradeAtPeriodEnd {
            until: stored.current_period_end,
        }
    };
    Ok(ChangePreview {
        current,
        target,
        effect,
    })
}

/// A plan change that Stripe accepted and we applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlanChanged {
    /// On the new plan now.
    Upgraded { plan_name: String },
    /// Moves to the new plan `on` the end of the period; the current plan is kept until then.
    Downgraded {
        plan_name: String,
        on: Option<DateTime<Utc>>,
    },
}

/// Changes the plan: an upgrade takes effect now with Stripe's proration charged at once (a
/// declined card changes nothing: [`BillingError::Declined`]); a downgrade takes effect at the
/// end of the period, and the current plan is kept until then.
pub async fn change_plan(
    deps: BillingDeps<'_>,
    who: &Manager,
    plan_key: &str,
) -> Result<PlanChanged, BillingError> {
    let target = paid_plan(deps.catalog, plan_key)?.clone();
    let stored = live_subscription(deps.db, who.org.id).await?;
    let current = current_plan(deps.catalog, &stored)?;
    if target.key == current.key {
        return Err(BillingError::NothingToChange(Unchanged::AlreadyOn {
            plan: target.name,
        }));
    }
    within_gauge_limits(deps, who.org.id, &target).await?;
    let upgrade = is_upgrade(&current, &target);
    let price = price_of(deps, &target).await?;
    let snapshot = deps
        .stripe
        .change_price(
            &stored.stripe_subscription_id,
            &price,
            upgrade,
            Uuid::new_v4(),
        )
        .await
        .inspect_err(|e| tracing::warn!(error = format!("{e:#}"), "plan change refused"))?;
    let mut tx = deps.db.begin().await?;
    apply_snapshot(
        &mut tx,
        deps.catalog,
        &snapshot,
        None,
        if upgrade { "upgraded" } else { "downgraded" },
        Utc::now(),
    )
    .await?;
    let kept = kept_after_change(upgrade, &current.key, stored.current_period_end);
    repo::set_kept_plan(&mut tx, who.org.id, kept).await?;
    tx.commit().await?;
    Ok(if upgrade {
        PlanChanged::Upgraded {
            plan_name: target.name,
        }
    } else {
        PlanChanged::Downgraded {
            plan_name: target.name,
            on: stored.current_period_end,
        }
    })
}

/// A scheduled cancellation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CancelScheduled {
    /// When the subscription ends: the end of the period (or of the trial).
    pub ends: Option<DateTime<Utc>>,
}

/// Cancels the subscription at the end of the period (or of the trial).
pub async fn cancel_at_period_end(
    deps: BillingDeps<'_>,
    who: &Manager,
) -> Result<CancelScheduled, BillingError> {
    let stored = set_cancel(deps, who, true).await?;
    Ok(CancelScheduled {
        ends: stored.current_period_end.or(stored.trial_end),
    })
}

/// Undoes a scheduled cancellation: the subscription renews.
pub async fn resume(deps: BillingDeps<'_>, who: &Manager) -> Result<(), BillingError> {
    set_cancel(deps, who, false).await.map(|_| ())
}

/// Sets the flag in Stripe and applies the answer; returns the subscription as it was before.
async fn set_cancel(
    deps: BillingDeps<'_>,
    who: &Manager,
    cancel: bool,
) -> Result<Stored, BillingError> {
    let stored = live_subscription(deps.db, who.org.id).await?;
    let snapshot = deps
        .stripe
        .set_cancel_at_period_end(&stored.stripe_subscription_id, cancel)
        .await?;
    let mut tx = deps.db.begin().await?;
    apply_snapshot(
        &mut tx,
        deps.catalog,
        &snapshot,
        None,
        if cancel {
            "cancel requested"
        } else {
            "resumed"
        },
        Utc::now(),
    )
    .await?;
    tx.commit().await?;
    Ok(stored)
}

/// The address of Stripe's customer portal for the organization (to change the card), which
/// returns to the organization's billing page.
pub async fn open_card_portal(
    deps: BillingDeps<'_>,
    who: &Manager,
) -> Result<String, BillingError> {
    let customer = customer(deps, who).await?;
    let back = format!("{}/orgs/{}/billing", deps.public_url, who.org.slug);
    Ok(deps.stripe.portal_url(&customer, &back).await?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::orgs::model::Role;
    use chrono::TimeZone;

    fn hybrid() -> Catalog {
        crate::billing::catalog::shipped("hybrid.toml")
    }

    fn membership(role: Role) -> Membership {
        Membership {
            org: Org {
                id: Uuid::new_v4(),
                name: "Acme".into(),
                slug: "acme".into(),
                created_at: Utc::now(),
            },
            role,
        }
    }

    #[test]
    fn only_owners_and_admins_manage_billing() {
        for role in [Role::Owner, Role::Admin] {
            let m = Manager::new(membership(role), Uuid::new_v4(), "a@example.com");
            assert!(m.is_ok_and(|m| m.email == "a@example.com" && m.org.slug == "acme"));
        }
        assert!(matches!(
            Manager::new(membership(Role::Member), Uuid::new_v4(), "m@example.com"),
            Err(BillingError::NotAllowed)
        ));
    }

    #[test]
    fn only_paid_plans_are_for_sale() {
        let catalog = hybrid();
        assert_eq!(
            paid_plan(&catalog, "pro").map(|p| p.key.as_str()).ok(),
            Some("pro")
        );
        for key in ["free", "platinum", ""] {
            match paid_plan(&catalog, key) {
                Err(BillingError::NotForSale(asked)) => assert_eq!(asked, key),
                other => panic!("{key}: {other:?}"),
            }
        }
    }

    #[test]
    fn dearer_is_an_upgrade_and_a_downgrade_keeps_the_plan_until_period_end() {
        let catalog = hybrid();
        let plan = |k: &str| catalog.plan(k).cloned().expect("plan");
        assert!(is_upgrade(&plan("starter"), &plan("pro")));
        assert!(!is_upgrade(&plan("max"), &plan("pro")));
        assert!(!is_upgrade(&plan("pro"), &plan("pro")));
        let end = Utc.with_ymd_and_hms(2026, 12, 31, 0, 0, 0).single();
        assert_eq!(kept_after_change(true, "max", end), None);
        assert_eq!(kept_after_change(false, "max", None), None);
        assert_eq!(
            kept_after_change(false, "max", end),
            end.map(|e| ("max", e))
        );
    }

    #[test]
    fn checkout_comes_back_to_the_success_page_with_the_session_and_to_the_org_on_cancel() {
        let base = "https://billing.example.com";
        let (success, cancel) = checkout_return_urls(base, "acme", &ReturnPaths::default());
        assert_eq!(
            success,
            "https://billing.example.com/billing/success?session_id={CHECKOUT_SESSION_ID}"
        );
        assert_eq!(
            cancel,
            "https://billing.example.com/billing/cancel?org=acme"
        );
        // A caller's own paths: the success page still settles first, then goes on.
        let returns = ReturnPaths {
            success: LocalPath::parse("/orgs/acme/usage?from=api&x=1"),
            cancel: LocalPath::parse("/orgs/acme/plans"),
        };
        let (success, cancel) = checkout_return_urls(base, "acme", &returns);
        assert_eq!(
            success,
            "https://billing.example.com/billing/success?session_id={CHECKOUT_SESSION_ID}&next=%2Forgs%2Facme%2Fusage%3Ffrom%3Dapi%26x%3D1"
        );
        assert_eq!(cancel, "https://billing.example.com/orgs/acme/plans");
    }

    #[test]
    fn return_paths_stay_on_the_portal() {
        assert!(LocalPath::parse("/orgs/acme/billing").is_some());
        for foreign in [
            "https://evil.example/",
            "//evil.example/x",
            "/\\evil.example",
            "/%2F%2Fevil.example",
            "javascript:alert(1)",
            "orgs/acme",
            "",
        ] {
            assert_eq!(LocalPath::parse(foreign), None, "{foreign}");
        }
    }

    #[test]
    fn trial_rules_say_which_rule_refused() {
        assert_eq!(TrialRule::from(TrialRefusal::Person), TrialRule::Person);
        assert_eq!(
            TrialRule::from(TrialRefusal::Organization),
            TrialRule::Organization
        );
        assert_eq!(
            TrialRule::Organization.to_string(),
            "This organization has already had a trial or a subscription."
        );
        assert!(TrialRule::Card
            .to_string()
            .starts_with("The card on file has already been used for a trial"));
        assert!(TrialRule::Person
            .to_string()
            .starts_with("You have already had a trial"));
    }

    #[test]
    fn errors_from_the_projection_are_sorted_by_what_they_carry() {
        let declined = anyhow::Error::new(GatewayError::Declined {
            action: "changing the plan".into(),
            detail: "Stripe answered 402".into(),
        });
        assert!(matches!(
            BillingError::from(declined),
            BillingError::Declined(_)
        ));
        let down = anyhow::Error::new(GatewayError::Unreachable {
            action: "creating the Stripe customer".into(),
            detail: "connection refused".into(),
        });
        assert!(matches!(BillingError::from(down), BillingError::Stripe(_)));
        let db = anyhow::Error::new(sqlx::Error::PoolTimedOut);
        assert!(matches!(BillingError::from(db), BillingError::Database(_)));
        let other = anyhow::anyhow!("price lookup key x is not in the plan catalog");
        assert!(matches!(
            BillingError::from(other),
            BillingError::Internal(_)
        ));
    }
}
