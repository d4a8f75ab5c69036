//! The demo seed's calls to the portal's own offline Stripe: a test clock started months ago,
//! customers on it with Stripe's test cards, subscriptions, a cancellation and the clock moved
//! forward, so the demo's history is made of real Stripe objects whose every event reaches the
//! portal through its webhook. Plain form posts in Stripe's wire format; only the demo uses them.

use anyhow::Context;
use serde_json::Value;
use uuid::Uuid;

pub struct DemoStripe {
    http: reqwest::Client,
    base: String,
    key: String,
}

impl DemoStripe {
    /// `base` is the emulator's address (without `/v1`).
    pub fn new(base: &str, key: &str) -> anyhow::Result<Self> {
        Ok(Self {
            http: reqwest::Client::builder()
                .timeout(std::time::Duration::from_secs(60))
                .build()?,
            base: base.trim_end_matches('/').to_owned(),
            key: key.to_owned(),
        })
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        form: &[(&str, String)],
    ) -> anyhow::Result<Value> {
        let request = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.key);
        let request = if form.is_empty() {
            request
        } else {
            request.form(form)
        };
        let answer = request
            .send()
            .await
            .with_context(|| format!("Stripe {path}"))?;
        let status = answer.status();
        let body: Value = answer
            .json()
            .await
            .with_context(|| format!("Stripe {path}"))?;
        anyhow::ensure!(status.is_success(), "Stripe {path}: {status} {body}");
        Ok(body)
    }

    fn id(v: &Value) -> anyhow::Result<String> {
        v["id"]
            .as_str()
            .map(str::to_owned)
            .context("a Stripe object without an id")
    }

    /// The price of a catalog plan, once the catalog sync has created it.
    pub async fn price(&self, lookup_key: &str) -> anyhow::Result<Option<String>> {
        let path = format!("/v1/prices?lookup_keys[]={lookup_key}");
        let found = self.call(reqwest::Method::GET, &path, &[]).await?;
        Ok(found["data"][0]["id"].as_str().map(str::to_owned))
    }

    pub async fn test_clock(&self, frozen_time: i64) -> anyhow::Result<String> {
        let clock = self
            .call(
                reqwest::Method::POST,
                "/v1/test_helpers/test_clocks",
                &[
                    ("frozen_time", frozen_time.to_string()),
                    ("name", "Demo history".to_owned()),
                ],
            )
            .await?;
        Self::id(&clock)
    }

    /// Moves the clock to `to`, running the renewals and trial ends that fall due.
    pub async fn advance(&self, clock: &str, to: i64) -> anyhow::Result<()> {
        let path = format!("/v1/test_helpers/test_clocks/{clock}/advance");
        self.call(
            reqwest::Method::POST,
            &path,
            &[("frozen_time", to.to_string())],
        )
        .await?;
        Ok(())
    }

    /// A customer on the clock, for the organization `org`.
    pub async fn customer(&self, clock: &str, email: &str, org: Uuid) -> anyhow::Result<String> {
        let customer = self
            .call(
                reqwest::Method::POST,
                "/v1/customers",
                &[
                    ("email", email.to_owned()),
                    ("test_clock", clock.to_owned()),
                    ("metadata[org_id]", org.to_string()),
                ],
            )
            .await?;
        Self::id(&customer)
    }

    /// Saves one of Stripe's test cards (`pm_card_visa`, `pm_card_chargeCustomerFail`) as the
    /// customer's default.
    pub async fn default_card(&self, customer: &str, token: &str) -> anyhow::Result<()> {
        let pm = self
            .call(
                reqwest::Method::POST,
                &format!("/v1/payment_methods/{token}/attach"),
                &[("customer", customer.to_owned())],
            )
            .await?;
        self.call(
            reqwest::Method::POST,
            &format!("/v1/customers/{customer}"),
            &[("invoice_settings[default_payment_method]", Self::id(&pm)?)],
        )
        .await?;
        Ok(())
    }

    /// Subscribes the customer to `price`, with a trial of `trial_days` (ended by cancelling when
    /// no card is on file, as the portal's own trials are).
    pub async fn subscribe(
        &self,
        customer: &str,
        price: &str,
        trial_days: Option<u32>,
        org: Uuid,
    ) -> anyhow::Result<String> {
        let mut form = vec![
            ("customer", customer.to_owned()),
            ("items[0][price]", price.to_owned()),
            ("metadata[org_id]", org.to_string()),
        ];
        if let Some(days) = trial_days {
            form.push(("trial_period_days", days.to_string()));
            form.push((
                "trial_settings[end_behavior][missing_payment_method]",
                "cancel".to_owned(),
            ));
        }
        let sub = self
            .call(reqwest::Method::POST, "/v1/subscriptions", &form)
            .await?;
        Self::id(&sub)
    }

    /// Cancels a subscription now.
    pub async fn cancel(&self, subscription: &str) -> anyhow::Result<()> {
        self.call(
            reqwest::Method::DELETE,
            &format!("/v1/subscriptions/{subscription}"),
            &[],
        )
        .await?;
        Ok(())
    }
}
