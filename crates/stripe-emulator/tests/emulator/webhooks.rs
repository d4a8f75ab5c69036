//! Events: signed as Stripe signs them (async-stripe's own verifier accepts them and parses them
//! into its typed events), carrying `api_version` and `previous_attributes`, retried until
//! delivered, and with chaos on delivered twice and out of order. State outlives the process.

use std::process::{Command, Stdio};
use std::time::Duration;

use stripe_core::customer::{CreateCustomer, UpdateCustomer};
use stripe_webhook::{EventObject, Webhook};

use super::api::monthly_price;
use super::{Receiver, TestEmulator};

#[tokio::test]
async fn events_are_signed_so_that_async_stripe_verifies_and_parses_them() {
    let emu = TestEmulator::start().await;
    let receiver = Receiver::start(0).await;
    emu.listen(&receiver).await;
    let customer = CreateCustomer::new()
        .email("a@acme.test")
        .send(&emu.stripe)
        .await
        .expect("customer");
    UpdateCustomer::new(customer.id.clone())
        .name("Acme")
        .send(&emu.stripe)
        .await
        .expect("update");
    monthly_price(&emu, "Starter", 999, "starter").await;

    let deliveries = receiver.wait_until("four events", |d| d.len() >= 4).await;
    for delivery in &deliveries {
        let event =
            Webhook::construct_event(&delivery.payload, &delivery.signature, &receiver.secret)
                .unwrap_or_else(|e| panic!("async-stripe refused {}: {e:?}", delivery.payload));
        assert_eq!(
            event.api_version.map(|v| v.as_str().to_owned()),
            Some(stripe_shared::version::VERSION.as_str().to_owned())
        );
        let wrong_secret =
            Webhook::construct_event(&delivery.payload, &delivery.signature, "whsec_other");
        assert!(wrong_secret.is_err());
    }
    let updated = deliveries
        .iter()
        .find(|d| d.json()["type"] == "customer.updated")
        .expect("customer.updated delivered");
    let json = updated.json();
    assert_eq!(
        json["data"]["previous_attributes"]["name"],
        serde_json::Value::Null
    );
    assert!(json["data"]["previous_attributes"]
        .as_object()
        .is_some_and(|p| p.contains_key("name")));
    let event = Webhook::construct_event(&updated.payload, &updated.signature, &receiver.secret)
        .expect("event");
    match event.data.object {
        EventObject::CustomerUpdated(c) => assert_eq!(c.name.as_deref(), Some("Acme")),
        other => panic!("expected a customer, got {other:?}"),
    }
}

#[tokio::test]
async fn the_checkout_flow_emits_what_stripe_emits() {
    let emu = TestEmulator::start().await;
    let receiver = Receiver::start(0).await;
    emu.listen(&receiver).await;
    let price = monthly_price(&emu, "Starter", 999, "starter").await;
    let mut item = stripe_checkout::checkout_session::CreateCheckoutSessionLineItems::new();
    item.price = Some(price.id.as_str().to_owned());
    item.quantity = Some(1);
    let session = stripe_checkout::checkout_session::CreateCheckoutSession::new()
        .mode(stripe_shared::CheckoutSessionMode::Subscription)
        .line_items(vec![item])
        .success_url("http://portal.test/ok?session_id={CHECKOUT_SESSION_ID}")
        .send(&emu.stripe)
        .await
        .expect("session");
    assert_eq!(
        emu.pay(
            session.url.as_deref().expect("url"),
            Some("4242424242424242"),
            &[]
        )
        .await
        .status(),
        303
    );
    let wanted = [
        "checkout.session.completed",
        "customer.created",
        "customer.subscription.created",
        "customer.subscription.updated",
        "invoice.created",
        "invoice.finalized",
        "invoice.paid",
        "invoice.payment_succeeded",
        "payment_intent.succeeded",
        "charge.succeeded",
    ];
    receiver
        .wait_until("the checkout events", |d| {
            wanted
                .iter()
                .all(|w| d.iter().any(|x| x.json()["type"] == *w))
        })
        .await;
    for delivery in receiver.deliveries() {
        Webhook::construct_event(&delivery.payload, &delivery.signature, &receiver.secret)
            .unwrap_or_else(|e| {
                panic!(
                    "refused {}: {e:?}",
                    &delivery.payload[..200.min(delivery.payload.len())]
                )
            });
    }
}

#[tokio::test]
async fn failed_deliveries_are_retried_until_accepted() {
    let emu = TestEmulator::start().await;
    let receiver = Receiver::start(3).await;
    emu.listen(&receiver).await;
    CreateCustomer::new()
        .send(&emu.stripe)
        .await
        .expect("customer");
    let deliveries = receiver
        .wait_until("the retried event", |d| !d.is_empty())
        .await;
    assert_eq!(deliveries.len(), 1);
    assert_eq!(receiver.attempts(), 4, "three refusals, then accepted");
    // The emulator records the delivery after the receiver has answered, so the row may lag
    // the receiver by a moment.
    let mut status: Vec<(i32, bool)> = Vec::new();
    for _ in 0..100 {
        status = sqlx::query_as(
            "SELECT attempts, delivered_at IS NOT NULL FROM stripe_emulator.deliveries",
        )
        .fetch_all(&emu.pool)
        .await
        .expect("deliveries");
        if status == vec![(4, true)] {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(status, vec![(4, true)]);
}

#[tokio::test]
async fn chaos_delivers_every_event_twice_and_out_of_order() {
    let emu = TestEmulator::start().await;
    let receiver = Receiver::start(0).await;
    emu.listen(&receiver).await;
    emu.chaos(true).await;
    // One request that emits several events: product.created then price.created.
    let product = stripe_product::product::CreateProduct::new("Pack")
        .send(&emu.stripe)
        .await
        .expect("product");
    stripe_product::price::CreatePrice::new(stripe_types::Currency::USD)
        .product_data(stripe_product::price::CreatePriceProductData::new("Inline"))
        .unit_amount(100)
        .send(&emu.stripe)
        .await
        .expect("price with inline product");
    let _ = product;
    let deliveries = receiver
        .wait_until("six deliveries", |d| d.len() >= 6)
        .await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    let deliveries_after = receiver.deliveries();
    assert_eq!(
        deliveries_after.len(),
        6,
        "three events, each exactly twice"
    );
    let ids: Vec<String> = deliveries
        .iter()
        .map(|d| d.json()["id"].as_str().unwrap_or_default().to_owned())
        .collect();
    for id in &ids {
        assert_eq!(ids.iter().filter(|x| *x == id).count(), 2);
    }
    // Within the second request, price.created was emitted after its inline product's
    // product.created, and arrives first.
    let types = receiver.types();
    let first_price = types
        .iter()
        .position(|t| t == "price.created")
        .expect("price.created");
    let inline_product = deliveries_after
        .iter()
        .position(|d| d.json()["data"]["object"]["name"] == "Inline")
        .expect("inline product.created");
    assert!(first_price < inline_product, "out of order: {types:?}");
}

#[tokio::test]
async fn state_survives_a_restart() {
    let emu = TestEmulator::start().await;
    let customer = CreateCustomer::new()
        .email("kept@acme.test")
        .send(&emu.stripe)
        .await
        .expect("customer");
    let restarted = TestEmulator::serve(emu.pool.clone()).await;
    let found = stripe_core::customer::RetrieveCustomer::new(customer.id.clone())
        .send(&restarted.stripe)
        .await
        .expect("same customer after restart");
    assert!(
        matches!(found, stripe_core::customer::RetrieveCustomerReturned::Customer(c) if c.email.as_deref() == Some("kept@acme.test"))
    );
}

/// Starts the `stripe-emulator` binary on a free port over `url` with `args`; its standard output
/// is piped so the test can read what it printed.
fn start_binary(url: &str, args: &[&str]) -> (std::process::Child, String) {
    let port = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").expect("probe");
        probe.local_addr().expect("addr").port()
    };
    let child = Command::new(env!("CARGO_BIN_EXE_stripe-emulator"))
        .args(["--port", &port.to_string()])
        .args(args)
        .env("DATABASE_URL", url)
        .env_remove("STRIPE_EMULATOR_SECRET_KEYS")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the emulator");
    (child, format!("http://127.0.0.1:{port}"))
}

/// Retries `CreateCustomer` until the freshly started binary answers.
async fn first_customer(client: &stripe::Client, email: &str) -> stripe_core::Customer {
    for _ in 0..100 {
        if let Ok(c) = CreateCustomer::new().email(email).send(client).await {
            return c;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the standalone emulator never answered")
}

#[tokio::test]
async fn the_standalone_binary_serves_any_client_with_its_key() {
    let (_, url) = crate::harness::fresh_database().await;
    let receiver = Receiver::start(0).await;
    let key = "sk_test_standalone_cli_01";
    let (mut child, base) = start_binary(
        &url,
        &[
            "--secret-key",
            key,
            "--webhook",
            &format!("{}={}", receiver.url, receiver.secret),
        ],
    );
    let client = stripe::ClientBuilder::new(key)
        .url(format!("{base}/"))
        .build()
        .expect("client");
    let created = first_customer(&client, "cli@acme.test").await;
    let delivered = receiver
        .wait_until("customer.created", |d| !d.is_empty())
        .await;
    assert_eq!(
        delivered[0].json()["data"]["object"]["id"],
        created.id.as_str()
    );
    // Any other test key is refused, as Stripe refuses another account's key.
    let other = reqwest::Client::new()
        .get(format!("{base}/v1/customers"))
        .bearer_auth("sk_test_somebody_elses_key")
        .send()
        .await
        .expect("request");
    assert_eq!(other.status(), 401);
    let _ = child.kill();
    let _ = child.wait();
}

#[tokio::test]
async fn without_a_key_the_binary_makes_one_and_prints_it() {
    use std::io::BufRead;
    let (_, url) = crate::harness::fresh_database().await;
    let (mut child, base) = start_binary(&url, &[]);
    let stdout = child.stdout.take().expect("stdout");
    let key = tokio::task::spawn_blocking(move || {
        std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .find_map(|line| {
                line.split_whitespace()
                    .find(|word| word.starts_with("sk_test_"))
                    .map(str::to_owned)
            })
    })
    .await
    .expect("join")
    .expect("the emulator printed its key");
    let client = stripe::ClientBuilder::new(&key)
        .url(format!("{base}/"))
        .build()
        .expect("client");
    first_customer(&client, "printed@acme.test").await;
    let _ = child.kill();
    let _ = child.wait();
}

/// Stripe's official Python library against the emulator. The test command installs it into a
/// virtualenv and names its interpreter in `STRIPE_PYTHON`; without that the test says so and
/// fails, unless `STRIPE_PYTHON=skip` (for a quick local run without Python).
#[tokio::test]
async fn stripes_official_python_library_works_against_it() {
    let python = std::env::var("STRIPE_PYTHON").unwrap_or_else(|_| "python3".to_owned());
    if python == "skip" {
        eprintln!("STRIPE_PYTHON=skip: not checking the official Python client");
        return;
    }
    let emu = TestEmulator::start().await;
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/clients/stripe_python.py"
    );
    let base = emu.base.clone();
    let output = tokio::task::spawn_blocking(move || {
        Command::new(&python)
            .arg(script)
            .arg(&base)
            .arg(crate::KEY)
            .output()
    })
    .await
    .expect("join")
    .expect("python runs (set STRIPE_PYTHON to an interpreter with the `stripe` package)");
    assert!(
        output.status.success(),
        "the official client failed:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&output.stdout).trim(), "ok");
}
