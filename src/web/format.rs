//! How money and dates read on every page: pure functions, no I/O.

use chrono::{DateTime, Utc};

/// An amount in minor units of `currency`: `$9.99` for US dollars, `EUR 9.99` otherwise, with a
/// leading minus for refunds and credits.
pub fn money(cents: i64, currency: &str) -> String {
    let symbol = if currency == "usd" {
        "$".to_owned()
    } else {
        format!("{} ", currency.to_uppercase())
    };
    let sign = if cents < 0 { "-" } else { "" };
    let abs = cents.unsigned_abs();
    format!("{sign}{symbol}{}.{:02}", abs / 100, abs % 100)
}

/// A day as people write it: `1 December 2026`.
pub fn date(at: DateTime<Utc>) -> String {
    at.format("%-d %B %Y").to_string()
}

/// A day that may be unknown: [`date`], or a dash.
pub fn date_or_dash(at: Option<DateTime<Utc>>) -> String {
    at.map(date).unwrap_or_else(|| "—".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn dollars_get_a_symbol_and_two_decimals() {
        assert_eq!(money(999, "usd"), "$9.99");
        assert_eq!(money(49_999, "usd"), "$499.99");
        assert_eq!(money(0, "usd"), "$0.00");
        assert_eq!(money(5, "usd"), "$0.05");
        assert_eq!(money(2_000, "usd"), "$20.00");
    }

    #[test]
    fn other_currencies_are_named_and_negatives_keep_their_sign() {
        assert_eq!(money(1_050, "eur"), "EUR 10.50");
        assert_eq!(money(-250, "usd"), "-$2.50");
        assert_eq!(money(-1, "gbp"), "-GBP 0.01");
        assert_eq!(money(i64::MIN, "usd"), "-$92233720368547758.08");
    }

    #[test]
    fn dates_read_as_day_month_year() {
        let at = Utc.with_ymd_and_hms(2026, 12, 1, 23, 59, 0).single();
        assert_eq!(at.map(date).as_deref(), Some("1 December 2026"));
        assert_eq!(date_or_dash(at), "1 December 2026");
        assert_eq!(date_or_dash(None), "—");
    }
}
