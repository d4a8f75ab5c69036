//! Billing: the catalog in Stripe, and (as it grows) subscriptions end to end.

use billing_portal::billing::catalog;
use billing_portal::stripe_gateway::Gateway;
use stripe_product::price::ListPrice;

use crate::emulator::TestEmulator;

fn hybrid() -> catalog::Catalog {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/plans/hybrid.toml");
    catalog::parse(path, &std::fs::read_to_string(path).expect("catalog")).expect("valid")
}

#[tokio::test]
async fn catalog_sync_creates_missing_prices_once() {
    let emu = TestEmulator::start().await;
    let gateway = Gateway::new("sk_test_sync", Some(&emu.base)).expect("gateway");
    let catalog = hybrid();

    let first = gateway.sync_catalog(&catalog).await.expect("first sync");
    assert_eq!(
        first.created,
        vec![
            "starter_monthly",
            "pro_monthly",
            "max_monthly",
            "credit_pack_500"
        ]
    );
    assert!(first.existing.is_empty() && first.mismatched.is_empty());
    let second = gateway.sync_catalog(&catalog).await.expect("second sync");
    assert!(
        second.created.is_empty(),
        "running it twice creates nothing"
    );
    assert_eq!(second.existing.len(), 4);

    let pro = ListPrice::new()
        .lookup_keys(vec!["pro_monthly".to_owned()])
        .send(&emu.stripe)
        .await
        .expect("list")
        .data
        .remove(0);
    assert_eq!(pro.unit_amount, Some(9900));
    assert_eq!(
        pro.recurring
            .map(|r| r.interval.as_str().to_owned())
            .as_deref(),
        Some("month")
    );
    assert_eq!(pro.metadata.get("plan").map(String::as_str), Some("pro"));

    // A catalog whose price no longer matches Stripe's is reported, not silently changed.
    let mut changed = catalog.clone();
    if let Some(plan) = changed.plans.iter_mut().find(|p| p.key == "pro") {
        plan.price = catalog::Price::Recurring {
            cents: 10900,
            interval: catalog::Interval::Month,
            lookup_key: "pro_monthly".into(),
        };
    }
    let third = gateway.sync_catalog(&changed).await.expect("third sync");
    assert_eq!(third.mismatched, vec!["pro_monthly"]);
}

#[tokio::test]
async fn stripe_sync_from_the_command_line() {
    let emu = TestEmulator::start().await;
    // The emulator runs on this test's runtime, so the command must not block it.
    let run = || {
        let base = emu.base.clone();
        tokio::process::Command::new(env!("CARGO_BIN_EXE_billing-portal"))
            .arg("stripe-sync")
            .env("STRIPE_API_BASE", base)
            .env_remove("STRIPE_SECRET_KEY")
            .output()
    };
    let first = run().await.expect("run");
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    assert!(String::from_utf8_lossy(&first.stdout).contains("created  pro_monthly"));
    let second = run().await.expect("run");
    assert!(String::from_utf8_lossy(&second.stdout).contains("exists   pro_monthly"));
    assert!(!String::from_utf8_lossy(&second.stdout).contains("created"));
}
