//! The billing use cases called directly, without HTTP, as the command line or a job would: the
//! service against the test app's database and its offline Stripe.

use billing_portal::accounts::model::Email;
use billing_portal::accounts::repo as accounts;
use billing_portal::billing::use_cases::{
    self, BillingDeps, BillingError, Manager, TrialRule, Unchanged,
};
use billing_portal::orgs::repo as orgs;
use billing_portal::stripe_gateway::{Gateway, GatewayError};

use crate::harness::{hybrid_catalog as hybrid, TestApp};

/// The signed-up owner of Acme, as a [`Manager`], read from the database.
async fn owner(app: &TestApp) -> Manager {
    let email = Email::parse("owner@acme.test").expect("email");
    let user = accounts::find_by_email(&app.pool, &email)
        .await
        .expect("query")
        .expect("the owner");
    let membership = orgs::memberships_of(&app.pool, user.id)
        .await
        .expect("query")
        .into_iter()
        .find(|m| m.org.slug == "acme")
        .expect("a member of acme");
    Manager::new(membership, user.id, &user.email).expect("the owner manages billing")
}

#[tokio::test]
async fn a_trial_started_through_the_service_follows_the_rules_and_can_be_canceled() {
    let app = TestApp::spawn().await;
    app.signed_up_owner().await;
    let who = owner(&app).await;
    let gateway = app.gateway();
    let catalog = hybrid();
    let deps = BillingDeps {
        db: &app.pool,
        stripe: &gateway,
        catalog: &catalog,
        public_url: &app.base,
    };

    // Not for sale: the free plan and plans that do not exist.
    for key in ["free", "platinum"] {
        let refused = use_cases::start_trial(deps, &who, key).await;
        assert!(
            matches!(&refused, Err(BillingError::NotForSale(k)) if k == key),
            "{refused:?}"
        );
    }
    // Nothing to change before there is a subscription.
    let nothing = use_cases::change_plan(deps, &who, "max").await;
    assert!(
        matches!(
            nothing,
            Err(BillingError::NothingToChange(Unchanged::NoSubscription))
        ),
        "{nothing:?}"
    );

    let trial = use_cases::start_trial(deps, &who, "pro")
        .await
        .expect("the trial starts");
    assert_eq!(trial.plan_name, "Pro");
    assert_eq!(trial.days, 7);
    let status: String = sqlx::query_scalar("SELECT status FROM subscriptions")
        .fetch_one(&app.pool)
        .await
        .expect("a subscription");
    assert_eq!(status, "trialing");
    assert_eq!(app.count("SELECT count(*) FROM trial_grants").await, 1);

    // One per organization.
    let again = use_cases::start_trial(deps, &who, "max").await;
    assert!(
        matches!(
            again,
            Err(BillingError::TrialRefused(TrialRule::Organization))
        ),
        "{again:?}"
    );
    assert_eq!(app.count("SELECT count(*) FROM subscriptions").await, 1);
    // Already on that plan.
    let same = use_cases::change_plan(deps, &who, "pro").await;
    assert!(
        matches!(&same, Err(BillingError::NothingToChange(Unchanged::AlreadyOn { plan })) if plan == "Pro"),
        "{same:?}"
    );

    // Cancel at the end of the trial, then resume.
    let scheduled = use_cases::cancel_at_period_end(deps, &who)
        .await
        .expect("cancel");
    assert!(scheduled.ends.is_some());
    let canceling: bool = sqlx::query_scalar("SELECT cancel_at_period_end FROM subscriptions")
        .fetch_one(&app.pool)
        .await
        .expect("row");
    assert!(canceling);
    use_cases::resume(deps, &who).await.expect("resume");
    let canceling: bool = sqlx::query_scalar("SELECT cancel_at_period_end FROM subscriptions")
        .fetch_one(&app.pool)
        .await
        .expect("row");
    assert!(!canceling);

    // The card portal opens on the emulator and comes back to the billing page.
    let portal = use_cases::open_card_portal(deps, &who)
        .await
        .expect("portal");
    assert!(
        portal.starts_with(&app.stripe_url("/portal/bps_")),
        "{portal}"
    );
}

#[tokio::test]
async fn stripe_out_of_reach_is_told_apart_and_writes_nothing() {
    let app = TestApp::spawn().await;
    app.signed_up_owner().await;
    let who = owner(&app).await;
    // Nothing listens there.
    let gone = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        drop(listener);
        format!("http://{addr}")
    };
    let gateway = Gateway::new(app.stripe_key(), Some(&gone)).expect("gateway");
    let catalog = hybrid();
    let deps = BillingDeps {
        db: &app.pool,
        stripe: &gateway,
        catalog: &catalog,
        public_url: &app.base,
    };
    for attempt in [
        use_cases::start_checkout(deps, &who, "pro")
            .await
            .map(|_| ()),
        use_cases::start_trial(deps, &who, "pro").await.map(|_| ()),
    ] {
        assert!(
            matches!(
                attempt,
                Err(BillingError::Stripe(GatewayError::Unreachable { .. }))
            ),
            "{attempt:?}"
        );
    }
    for table in [
        "billing_customers",
        "checkout_sessions",
        "trial_grants",
        "subscriptions",
    ] {
        assert_eq!(
            app.count(&format!("SELECT count(*) FROM {table}")).await,
            0,
            "{table}"
        );
    }
}
