//! The range the metrics page shows: the last 30, 90 or 365 days, today included. Pure.

/// The ranges offered, in days.
pub const RANGES: [u32; 3] = [30, 90, 365];

/// Reads `?days=`: empty means 30; anything but 30, 90 or 365 is refused with a message.
pub fn parse(raw: &str) -> Result<u32, String> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Ok(RANGES[0]);
    }
    raw.parse::<u32>()
        .ok()
        .filter(|d| RANGES.contains(d))
        .ok_or_else(|| "The range must be 30, 90 or 365 days.".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_offered_ranges_are_accepted() {
        assert_eq!(parse(""), Ok(30));
        assert_eq!(parse("90"), Ok(90));
        assert_eq!(parse(" 365 "), Ok(365));
        for bad in ["7", "-30", "abc", "30.0", "99999999999"] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
