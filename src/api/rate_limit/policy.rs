//! What the API's rate limits are, as plain values: the route classes, a class's limit as
//! configured (`N/Ws`, or `off`), and the `RateLimit` / `RateLimit-Policy` header values of the
//! IETF httpapi draft (`"usage";q=25000;w=1` and `"usage";r=24990;t=1`). No I/O.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// A group of routes that share one limit per API key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Class {
    /// `POST /api/v1/usage`, `POST /api/v1/usage/batch`, `PUT /api/v1/gauges/{meter}`.
    Usage,
    /// Every `GET` (and `HEAD`).
    Read,
    /// Every other write: Checkout, plan changes, cancel and resume, the card portal.
    Billing,
}

impl Class {
    pub const ALL: [Class; 3] = [Class::Usage, Class::Read, Class::Billing];

    /// The class of a request, from its method and path. Routes added later fall into `read`
    /// (reads) or `billing` (writes) unless they are usage routes.
    pub fn of(method: &str, path: &str) -> Class {
        if matches!(method, "GET" | "HEAD" | "OPTIONS") {
            return Class::Read;
        }
        let path = path.trim_end_matches('/');
        if path == "/api/v1/usage"
            || path == "/api/v1/usage/batch"
            || path.starts_with("/api/v1/gauges/")
        {
            Class::Usage
        } else {
            Class::Billing
        }
    }

    /// The policy's name in the headers.
    pub fn name(self) -> &'static str {
        match self {
            Class::Usage => "usage",
            Class::Read => "read",
            Class::Billing => "billing",
        }
    }

    pub fn index(self) -> usize {
        self as usize
    }
}

/// One class's limit: `quota` requests per `window`, allowed as one burst and refilled evenly
/// over the window (GCRA); or no limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    Off,
    Every { quota: u32, window: Duration },
}

/// The most requests a limit may name, and its longest window.
const MAX_QUOTA: u32 = 100_000_000;
const MAX_WINDOW: Duration = Duration::from_secs(86_400);

impl Limit {
    pub fn every(quota: u32, window_seconds: u64) -> Limit {
        Limit::Every {
            quota,
            window: Duration::from_secs(window_seconds),
        }
    }
}

impl FromStr for Limit {
    type Err = String;

    /// `N/Ws`, `N/Wm` or `N/Wh` (N requests per W seconds, minutes or hours), or `off`.
    fn from_str(text: &str) -> Result<Self, String> {
        let text = text.trim();
        if text.eq_ignore_ascii_case("off") {
            return Ok(Limit::Off);
        }
        let bad = || {
            format!("{text:?} is not a rate limit: write N/Ws (such as 600/60s, 100/1m or 5000/1h) or off")
        };
        let (quota, window) = text.split_once('/').ok_or_else(bad)?;
        let quota: u32 = quota.trim().parse().map_err(|_| bad())?;
        let window = window.trim();
        let (number, unit) = window.split_at(window.len().saturating_sub(1));
        let number: u64 = number.parse().map_err(|_| bad())?;
        let seconds = match unit {
            "s" => number,
            "m" => number.saturating_mul(60),
            "h" => number.saturating_mul(3600),
            _ => return Err(bad()),
        };
        if quota == 0 || quota > MAX_QUOTA {
            return Err(format!(
                "{text:?}: the number of requests must be 1 to {MAX_QUOTA} (or write off)"
            ));
        }
        let window = Duration::from_secs(seconds);
        if window.is_zero() || window > MAX_WINDOW {
            return Err(format!("{text:?}: the window must be 1 second to 24 hours"));
        }
        Ok(Limit::Every { quota, window })
    }
}

impl fmt::Display for Limit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Limit::Off => f.write_str("off"),
            Limit::Every { quota, window } => write!(f, "{quota}/{}s", window.as_secs()),
        }
    }
}

/// Whole seconds, rounded up (a client that waits that long is not refused again for the same
/// reason).
pub fn ceil_seconds(wait: Duration) -> u64 {
    wait.as_secs() + u64::from(wait.subsec_nanos() > 0)
}

/// `RateLimit-Policy`: the class's configured limit (the whole limit, across instances).
pub fn policy_header(class: Class, quota: u32, window: Duration) -> String {
    format!(
        "\"{}\";q={quota};w={}",
        class.name(),
        ceil_seconds(window).max(1)
    )
}

/// `RateLimit`: the requests the answering instance will still accept now (`r`) and the seconds
/// until the whole quota is available again (`t`).
pub fn limit_header(class: Class, remaining: u32, reset: Duration) -> String {
    format!(
        "\"{}\";r={remaining};t={}",
        class.name(),
        ceil_seconds(reset)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_fall_into_their_class() {
        assert_eq!(Class::of("POST", "/api/v1/usage"), Class::Usage);
        assert_eq!(Class::of("POST", "/api/v1/usage/batch"), Class::Usage);
        assert_eq!(Class::of("PUT", "/api/v1/gauges/agents"), Class::Usage);
        assert_eq!(Class::of("GET", "/api/v1/entitlements"), Class::Read);
        assert_eq!(Class::of("GET", "/api/v1/usage/summary"), Class::Read);
        assert_eq!(
            Class::of("POST", "/api/v1/checkout_sessions"),
            Class::Billing
        );
        assert_eq!(
            Class::of("POST", "/api/v1/subscription/cancel"),
            Class::Billing
        );
    }

    #[test]
    fn limits_parse_from_settings_and_refuse_nonsense() {
        assert_eq!("600/60s".parse(), Ok(Limit::every(600, 60)));
        assert_eq!("100/1m".parse(), Ok(Limit::every(100, 60)));
        assert_eq!("5000/1h".parse(), Ok(Limit::every(5000, 3600)));
        assert_eq!("OFF".parse(), Ok(Limit::Off));
        for bad in [
            "", "600", "0/1s", "10/0s", "10/2d", "ten/1s", "10/25h", "-1/1s",
        ] {
            assert!(bad.parse::<Limit>().is_err(), "{bad:?} parsed");
        }
        assert_eq!(Limit::every(25_000, 1).to_string(), "25000/1s");
    }

    #[test]
    fn headers_follow_the_httpapi_draft() {
        assert_eq!(
            policy_header(Class::Usage, 25_000, Duration::from_secs(1)),
            "\"usage\";q=25000;w=1"
        );
        assert_eq!(
            limit_header(Class::Read, 7, Duration::from_millis(1500)),
            "\"read\";r=7;t=2"
        );
    }
}
