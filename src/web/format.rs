//! Formatting shared by the pages of every domain: amounts of money and dates.

use chrono::{DateTime, Utc};

/// "$9.99", "-$1.00", "EUR 20.00": integer minor units and a currency, as people read them.
pub fn money(cents: i64, currency: &str) -> String {
    let symbol = if currency == "usd" {
        "$".to_owned()
    } else {
        format!("{} ", currency.to_uppercase())
    };
    let sign = if cents < 0 { "-" } else { "" };
    format!(
        "{sign}{symbol}{}.{:02}",
        cents.abs() / 100,
        cents.abs() % 100
    )
}

/// "1 March 2026".
pub fn date(at: DateTime<Utc>) -> String {
    at.format("%-d %B %Y").to_string()
}
