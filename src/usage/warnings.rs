//! Usage warnings: an organization is told when it has used 80% and 100% of any included
//! meter, and when it goes into overage. Each kind is sent at most once per cooldown. Pure.

use crate::billing::catalog::Limit;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Warning {
    /// 80% of a meter's included amount is used.
    NearLimit,
    /// All of a meter's included amount is used.
    LimitReached,
    /// An action was allowed as overage (owed until the next credit purchase).
    Overage,
    /// An action was refused: no included actions, credits or overage allowance left.
    Exhausted,
}

impl Warning {
    pub fn as_str(self) -> &'static str {
        match self {
            Warning::NearLimit => "usage_80",
            Warning::LimitReached => "usage_100",
            Warning::Overage => "overage",
            Warning::Exhausted => "credits_exhausted",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "usage_80" => Some(Warning::NearLimit),
            "usage_100" => Some(Warning::LimitReached),
            "overage" => Some(Warning::Overage),
            "credits_exhausted" => Some(Warning::Exhausted),
            _ => None,
        }
    }

    /// What the owners read.
    pub fn message(self, meter_name: &str, included: u64, has_credits: bool) -> String {
        match self {
            Warning::NearLimit => format!(
                "You have used 80% of the {included} {meter_name} actions your plan includes this period."
            ),
            Warning::LimitReached if has_credits => format!(
                "You have used all {included} {meter_name} actions your plan includes this period. \
                 Further actions are paid from your credits."
            ),
            Warning::LimitReached => format!(
                "You have used all {included} {meter_name} actions your plan includes this period. \
                 Further actions are refused until the next period or an upgrade."
            ),
            Warning::Overage => format!(
                "Your credits ran out and {meter_name} actions are now allowed as overage. Buy \
                 credits before the overage allowance is used up, or actions will be refused."
            ),
            Warning::Exhausted => format!(
                "{meter_name} actions are being refused: the included actions, credits and \
                 overage allowance are used up. Buy credits or upgrade to go on."
            ),
        }
    }
}

/// The thresholds crossed when a meter's included use goes from `before` to `after`.
pub fn crossed(included: Limit, before: u64, after: u64) -> Vec<Warning> {
    let Limit::Count(n) = included else {
        return Vec::new();
    };
    if n == 0 || after <= before {
        return Vec::new();
    }
    // 80% of n, rounded up: with 10 included the warning comes at the 8th action.
    let near = (n * 8).div_ceil(10);
    let mut out = Vec::new();
    if before < near && after >= near {
        out.push(Warning::NearLimit);
    }
    if before < n && after >= n {
        out.push(Warning::LimitReached);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_threshold_is_crossed_once() {
        assert_eq!(crossed(Limit::Count(10), 6, 7), vec![]);
        assert_eq!(crossed(Limit::Count(10), 7, 8), vec![Warning::NearLimit]);
        assert_eq!(crossed(Limit::Count(10), 8, 9), vec![]);
        assert_eq!(
            crossed(Limit::Count(10), 9, 10),
            vec![Warning::LimitReached]
        );
        assert_eq!(
            crossed(Limit::Count(10), 0, 10),
            vec![Warning::NearLimit, Warning::LimitReached]
        );
        assert_eq!(
            crossed(Limit::Count(1), 0, 1),
            vec![Warning::NearLimit, Warning::LimitReached]
        );
        assert_eq!(crossed(Limit::Unlimited, 0, 1_000), vec![]);
        assert_eq!(crossed(Limit::Count(0), 0, 0), vec![]);
        for w in [
            Warning::NearLimit,
            Warning::LimitReached,
            Warning::Overage,
            Warning::Exhausted,
        ] {
            assert_eq!(Warning::parse(w.as_str()), Some(w));
        }
    }
}
