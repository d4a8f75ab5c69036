//! Makes Stripe's products and prices match the plan catalog: every paid plan and the credit pack
//! has a price found by its `lookup_key`. Missing ones are created; running it again creates
//! nothing.

use std::collections::HashMap;

use stripe::StripeRequest;
use stripe_product::price::{
    CreatePrice, CreatePriceRecurring, CreatePriceRecurringInterval, ListPrice,
};
use stripe_product::product::CreateProduct;

use super::{describe, idempotent, Gateway};
use crate::billing::catalog::{Catalog, Interval, Price};

/// What a sync found and did, by lookup key.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct SyncReport {
    pub existing: Vec<String>,
    pub created: Vec<String>,
    /// Prices that exist under the lookup key but differ from the catalog (amount, currency or
    /// interval). Stripe prices cannot change amount; fix the catalog or move the lookup key.
    pub mismatched: Vec<String>,
}

struct Wanted<'a> {
    lookup_key: &'a str,
    name: &'a str,
    cents: i64,
    interval: Option<Interval>,
    metadata: HashMap<String, String>,
}

impl Gateway {
    pub async fn sync_catalog(&self, catalog: &Catalog) -> anyhow::Result<SyncReport> {
        let mut wanted: Vec<Wanted<'_>> = catalog
            .plans
            .iter()
            .filter_map(|plan| match &plan.price {
                Price::Recurring {
                    cents,
                    interval,
                    lookup_key,
                } => Some(Wanted {
                    lookup_key,
                    name: &plan.name,
                    cents: *cents,
                    interval: Some(*interval),
                    metadata: HashMap::from([("plan".to_owned(), plan.key.clone())]),
                }),
                _ => None,
            })
            .collect();
        if let Some(pack) = &catalog.credit_pack {
            wanted.push(Wanted {
                lookup_key: &pack.lookup_key,
                name: &pack.name,
                cents: pack.price_cents,
                interval: None,
                metadata: HashMap::from([("credits".to_owned(), pack.credits.to_string())]),
            });
        }
        let mut report = SyncReport::default();
        for item in wanted {
            let found = ListPrice::new()
                .lookup_keys(vec![item.lookup_key.to_owned()])
                .send(self.client())
                .await
                .map_err(|e| {
                    anyhow::anyhow!("looking up price {}: {}", item.lookup_key, describe(&e))
                })?;
            if let Some(price) = found.data.first() {
                let interval = price
                    .recurring
                    .as_ref()
                    .map(|r| r.interval.as_str().to_owned());
                let same = price.unit_amount == Some(item.cents)
                    && price.currency.to_string() == catalog.currency
                    && interval.as_deref() == item.interval.map(Interval::as_str);
                if same {
                    report.existing.push(item.lookup_key.to_owned());
                } else {
                    report.mismatched.push(item.lookup_key.to_owned());
                }
                continue;
            }
            // Keys derived from the catalog entry: a retried sync reuses the same product.
            let key = format!(
                "catalog:{}:{}:{}",
                item.lookup_key,
                item.cents,
                item.interval.map_or("once", Interval::as_str)
            );
            let product = CreateProduct::new(item.name)
                .metadata(item.metadata.clone())
                .customize()
                .request_strategy(idempotent(&format!("{key}:product")))
                .send(self.client())
                .await
                .map_err(|e| anyhow::anyhow!("creating product {}: {}", item.name, describe(&e)))?;
            let currency: stripe_types::Currency = catalog
                .currency
                .parse()
                .map_err(|_| anyhow::anyhow!("unknown currency {}", catalog.currency))?;
            let mut price = CreatePrice::new(currency)
                .product(product.id.as_str())
                .unit_amount(item.cents)
                .nickname(item.name)
                .lookup_key(item.lookup_key)
                .metadata(item.metadata);
            if let Some(interval) = item.interval {
                price = price.recurring(CreatePriceRecurring::new(match interval {
                    Interval::Month => CreatePriceRecurringInterval::Month,
                    Interval::Year => CreatePriceRecurringInterval::Year,
                }));
            }
            price
                .customize()
                .request_strategy(idempotent(&format!("{key}:price")))
                .send(self.client())
                .await
                .map_err(|e| {
                    anyhow::anyhow!("creating price {}: {}", item.lookup_key, describe(&e))
                })?;
            report.created.push(item.lookup_key.to_owned());
        }
        Ok(report)
    }
}
