//! Credit arithmetic: milli-credits shown as decimal credits and read back from what an admin
//! types, what a pack purchase adds, and how much of a purchase a (partial) refund takes back.
//! Pure.

/// Milli-credits in one credit.
pub const MILLI: i64 = 1000;

/// "12.5", "-0.25", "500": credits with no trailing zeros.
pub fn format(millicredits: i64) -> String {
    let sign = if millicredits < 0 { "-" } else { "" };
    let whole = millicredits.unsigned_abs() / MILLI as u64;
    let fraction = millicredits.unsigned_abs() % MILLI as u64;
    if fraction == 0 {
        format!("{sign}{whole}")
    } else {
        let digits = format!("{fraction:03}");
        format!("{sign}{whole}.{}", digits.trim_end_matches('0'))
    }
}

/// Reads a positive amount of credits with at most three decimals ("20", "2.5").
pub fn parse_positive(text: &str) -> Result<i64, String> {
    let text = text.trim();
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    let digits = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_digit());
    if !digits(whole) || !(fraction.is_empty() || digits(fraction)) {
        return Err("Enter a number of credits, such as 20 or 2.5.".to_owned());
    }
    if fraction.len() > 3 {
        return Err("Credits have at most three decimals.".to_owned());
    }
    let whole: i64 = whole
        .parse()
        .ok()
        .filter(|w| *w <= 1_000_000_000)
        .ok_or_else(|| "That is more credits than one change may move.".to_owned())?;
    let fraction: i64 = format!("{fraction:0<3}").parse().unwrap_or(0);
    let total = whole * MILLI + fraction;
    if total == 0 {
        return Err("Enter more than zero credits.".to_owned());
    }
    Ok(total)
}

/// Milli-credits that `packs` packs of `credits_per_pack` credits add.
pub fn pack_millicredits(credits_per_pack: i64, packs: i64) -> i64 {
    credits_per_pack * packs * MILLI
}

/// How many of a purchase's milli-credits a refund of `refunded_cents` out of `paid_cents` takes
/// back, in proportion, rounded down (the customer keeps any fraction of a milli-credit).
pub fn refunded_share(purchased: i64, paid_cents: i64, refunded_cents: i64) -> i64 {
    if paid_cents <= 0 {
        return 0;
    }
    let refunded = refunded_cents.clamp(0, paid_cents);
    // i128: a large purchase times a large amount must not overflow.
    ((purchased as i128 * refunded as i128) / paid_cents as i128) as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credits_read_and_print_exactly() {
        assert_eq!(format(2500), "2.5");
        assert_eq!(format(500_000), "500");
        assert_eq!(format(-250), "-0.25");
        assert_eq!(format(1), "0.001");
        assert_eq!(parse_positive("2.5"), Ok(2500));
        assert_eq!(parse_positive(" 20 "), Ok(20_000));
        assert_eq!(parse_positive("0.001"), Ok(1));
        assert!(parse_positive("0").is_err());
        assert!(parse_positive("-3").is_err());
        assert!(parse_positive("1.2345").is_err());
        assert!(parse_positive("abc").is_err());
        assert!(parse_positive("1e3").is_err());
        assert!(parse_positive("99999999999").is_err());
    }

    #[test]
    fn refunds_take_back_their_share() {
        assert_eq!(pack_millicredits(500, 2), 1_000_000);
        assert_eq!(refunded_share(1_000_000, 4000, 4000), 1_000_000);
        assert_eq!(refunded_share(1_000_000, 4000, 1000), 250_000);
        assert_eq!(refunded_share(500_000, 2000, 1), 250);
        assert_eq!(refunded_share(500_000, 2000, 9999), 500_000);
        assert_eq!(refunded_share(500_000, 0, 10), 0);
    }
}
