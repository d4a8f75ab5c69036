//! The consumption decision for one billable action (DESIGN.md section 3): included actions
//! first, then prepaid credits, then the soft-limit buffer, then refusal. Amounts are integer
//! milli-credits so a 2.5-credit action is exact. Pure: the writer calls it with what it read
//! under the organization's row lock and writes what it returns.

use crate::billing::catalog::Limit;

/// How an allowed action was counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CountedAs {
    /// Inside the plan's included actions for this period.
    Included,
    /// Paid from the prepaid credit balance.
    Credits,
    /// Allowed inside the soft-limit buffer; its weight is owed and settled from the next
    /// credit purchase (the balance goes below zero).
    Overage,
}

impl CountedAs {
    pub fn as_str(self) -> &'static str {
        match self {
            CountedAs::Included => "included",
            CountedAs::Credits => "credits",
            CountedAs::Overage => "overage",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "included" => Some(CountedAs::Included),
            "credits" => Some(CountedAs::Credits),
            "overage" => Some(CountedAs::Overage),
            _ => None,
        }
    }
}

/// Why an action was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Included actions, credits and the soft-limit buffer are all used up.
    OutOfCredits,
    /// A plan without credits (the seat and feature models) reached its limit.
    LimitReached,
}

impl Refusal {
    pub fn code(self) -> &'static str {
        match self {
            Refusal::OutOfCredits => "credits_exhausted",
            Refusal::LimitReached => "limit_reached",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Allowed {
        counted_as: CountedAs,
        /// Taken from the balance: zero for included actions.
        millicredits: i64,
    },
    Refused(Refusal),
}

/// The organization's credit standing: the cached balance and the overage not yet paid back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Account {
    pub balance_millicredits: i64,
    /// Overage actions since the balance was last at or above zero.
    pub unsettled_overage: u32,
}

impl Account {
    /// Applies an allowed action's debit.
    pub fn consume(&mut self, decision: Decision) {
        if let Decision::Allowed {
            counted_as,
            millicredits,
        } = decision
        {
            self.balance_millicredits -= millicredits;
            if counted_as == CountedAs::Overage {
                self.unsettled_overage += 1;
            }
        }
    }

    /// Adds (or, negative, removes) credits: a purchase, top-up, grant, removal or refund. Owed
    /// overage is settled once the balance is back at or above zero.
    pub fn adjust(&mut self, millicredits: i64) {
        self.balance_millicredits += millicredits;
        if self.balance_millicredits >= 0 {
            self.unsettled_overage = 0;
        }
    }
}

/// What a tier costs and how much of it the plan includes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TierTerms {
    pub included: Limit,
    /// `None` in catalog models without credits: the included amount is a hard limit.
    pub weight_millicredits: Option<i64>,
    /// Overage actions allowed past the credits (the soft-limit buffer).
    pub soft_limit_actions: u32,
}

/// Decides one action of a tier given the included actions of that tier already used this
/// period and the organization's account.
pub fn decide(terms: TierTerms, used_included: u64, account: &Account) -> Decision {
    let within_plan = match terms.included {
        Limit::Unlimited => true,
        Limit::Count(n) => used_included < n,
    };
    if within_plan {
        return Decision::Allowed {
            counted_as: CountedAs::Included,
            millicredits: 0,
        };
    }
    let Some(weight) = terms.weight_millicredits else {
        return Decision::Refused(Refusal::LimitReached);
    };
    if account.balance_millicredits >= weight {
        Decision::Allowed {
            counted_as: CountedAs::Credits,
            millicredits: weight,
        }
    } else if account.unsettled_overage < terms.soft_limit_actions {
        Decision::Allowed {
            counted_as: CountedAs::Overage,
            millicredits: weight,
        }
    } else {
        Decision::Refused(Refusal::OutOfCredits)
    }
}

/// Included actions left this period; `None` when unlimited.
pub fn included_remaining(included: Limit, used_included: u64) -> Option<u64> {
    match included {
        Limit::Unlimited => None,
        Limit::Count(n) => Some(n.saturating_sub(used_included)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const SMALL: TierTerms = TierTerms {
        included: Limit::Count(2),
        weight_millicredits: Some(1000),
        soft_limit_actions: 3,
    };

    fn allowed(counted_as: CountedAs, millicredits: i64) -> Decision {
        Decision::Allowed {
            counted_as,
            millicredits,
        }
    }

    #[test]
    fn included_then_credits_then_overage_then_refusal() {
        let mut account = Account {
            balance_millicredits: 1500,
            unsettled_overage: 0,
        };
        let mut used = 0;
        let mut seen = Vec::new();
        for _ in 0..8 {
            let d = decide(SMALL, used, &account);
            if let Decision::Allowed {
                counted_as: CountedAs::Included,
                ..
            } = d
            {
                used += 1;
            }
            account.consume(d);
            seen.push(d);
        }
        assert_eq!(
            seen,
            vec![
                allowed(CountedAs::Included, 0),
                allowed(CountedAs::Included, 0),
                allowed(CountedAs::Credits, 1000),
                // 0.5 credits left: not enough for a 1-credit action, so it is overage.
                allowed(CountedAs::Overage, 1000),
                allowed(CountedAs::Overage, 1000),
                allowed(CountedAs::Overage, 1000),
                Decision::Refused(Refusal::OutOfCredits),
                Decision::Refused(Refusal::OutOfCredits),
            ]
        );
        assert_eq!(account.balance_millicredits, -2500);
        // A purchase settles what is owed and reopens the buffer.
        account.adjust(500_000);
        assert_eq!(account.balance_millicredits, 497_500);
        assert_eq!(account.unsettled_overage, 0);
        assert_eq!(
            decide(SMALL, used, &account),
            allowed(CountedAs::Credits, 1000)
        );
    }

    #[test]
    fn a_grant_too_small_to_clear_the_debt_leaves_the_buffer_used() {
        let mut account = Account {
            balance_millicredits: -3000,
            unsettled_overage: 3,
        };
        account.adjust(1000);
        assert_eq!(account.unsettled_overage, 3);
        assert_eq!(
            decide(SMALL, 2, &account),
            Decision::Refused(Refusal::OutOfCredits)
        );
    }

    #[test]
    fn plans_without_credits_stop_at_the_limit_and_unlimited_never_does() {
        let hard = TierTerms {
            included: Limit::Count(1),
            weight_millicredits: None,
            soft_limit_actions: 10,
        };
        let account = Account::default();
        assert_eq!(decide(hard, 0, &account), allowed(CountedAs::Included, 0));
        assert_eq!(
            decide(hard, 1, &account),
            Decision::Refused(Refusal::LimitReached)
        );
        let unlimited = TierTerms {
            included: Limit::Unlimited,
            ..hard
        };
        assert_eq!(
            decide(unlimited, u64::MAX - 1, &account),
            allowed(CountedAs::Included, 0)
        );
        assert_eq!(included_remaining(Limit::Count(5), 7), Some(0));
        assert_eq!(included_remaining(Limit::Unlimited, 7), None);
    }

    /// Something that can happen to an organization's credits.
    #[derive(Debug, Clone)]
    enum Step {
        Action { tier: usize },
        Purchase { packs: i64 },
        Refund { millicredits: i64 },
        Grant { millicredits: i64 },
        Rollover,
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            6 => (0usize..4).prop_map(|tier| Step::Action { tier }),
            1 => (1i64..4).prop_map(|packs| Step::Purchase { packs }),
            1 => (0i64..600_000).prop_map(|millicredits| Step::Refund { millicredits }),
            1 => (-50_000i64..50_000).prop_map(|millicredits| Step::Grant { millicredits }),
            1 => Just(Step::Rollover),
        ]
    }

    proptest! {
        /// No sequence of actions, purchases, refunds, grants and rollovers creates or loses a
        /// milli-credit: the balance is always what came in minus what the actions took, and
        /// the rules hold at every step.
        #[test]
        fn no_sequence_creates_or_loses_a_millicredit(
            steps in proptest::collection::vec(step(), 1..200),
            included in proptest::collection::vec(0u64..5, 4),
        ) {
            let weights = [1000i64, 2500, 5000, 15000];
            let buffer = 10u32;
            let mut account = Account::default();
            let mut used = [0u64; 4];
            let mut credited = 0i64;
            let mut debited = 0i64;
            for step in steps {
                match step {
                    Step::Action { tier } => {
                        let terms = TierTerms {
                            included: Limit::Count(included[tier]),
                            weight_millicredits: Some(weights[tier]),
                            soft_limit_actions: buffer,
                        };
                        let before = account;
                        let d = decide(terms, used[tier], &account);
                        match d {
                            Decision::Allowed { counted_as: CountedAs::Included, millicredits } => {
                                prop_assert!(used[tier] < included[tier]);
                                prop_assert_eq!(millicredits, 0);
                                used[tier] += 1;
                            }
                            Decision::Allowed { counted_as: CountedAs::Credits, millicredits } => {
                                prop_assert!(used[tier] >= included[tier]);
                                prop_assert_eq!(millicredits, weights[tier]);
                                prop_assert!(before.balance_millicredits >= weights[tier]);
                            }
                            Decision::Allowed { counted_as: CountedAs::Overage, millicredits } => {
                                prop_assert_eq!(millicredits, weights[tier]);
                                prop_assert!(before.balance_millicredits < weights[tier]);
                                prop_assert!(before.unsettled_overage < buffer);
                            }
                            Decision::Refused(_) => {
                                prop_assert!(used[tier] >= included[tier]);
                                prop_assert!(before.balance_millicredits < weights[tier]);
                                prop_assert_eq!(before.unsettled_overage, buffer);
                            }
                        }
                        if let Decision::Allowed { millicredits, .. } = d {
                            debited += millicredits;
                        }
                        account.consume(d);
                        prop_assert!(account.unsettled_overage <= buffer);
                    }
                    Step::Purchase { packs } => {
                        credited += packs * 500_000;
                        account.adjust(packs * 500_000);
                    }
                    Step::Refund { millicredits } => {
                        credited -= millicredits;
                        account.adjust(-millicredits);
                    }
                    Step::Grant { millicredits } => {
                        credited += millicredits;
                        account.adjust(millicredits);
                    }
                    // Used counters restart; purchased credits stay.
                    Step::Rollover => used = [0; 4],
                }
                prop_assert_eq!(account.balance_millicredits, credited - debited);
                if account.balance_millicredits >= 0 {
                    prop_assert_eq!(account.unsettled_overage, 0);
                }
            }
        }
    }
}
