//! What the portal tells people: every notification kind, the category a member may turn off,
//! and who receives it. Pure: no I/O.

/// A group of notifications a member turns on or off together.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Category {
    Trial,
    Billing,
    /// A failed payment, its grace period and what follows: always sent, no unsubscribe.
    PaymentFailure,
    Usage,
    Credits,
    /// Being added to an organization: always sent (someone gave you access).
    Security,
    /// Platform admins' alerts.
    Operators,
}

impl Category {
    pub const ALL: [Category; 7] = [
        Category::Trial,
        Category::Billing,
        Category::PaymentFailure,
        Category::Usage,
        Category::Credits,
        Category::Security,
        Category::Operators,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Category::Trial => "trial",
            Category::Billing => "billing",
            Category::PaymentFailure => "payment_failure",
            Category::Usage => "usage",
            Category::Credits => "credits",
            Category::Security => "security",
            Category::Operators => "operators",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == text)
    }

    /// What the settings page calls it.
    pub fn label(self) -> &'static str {
        match self {
            Category::Trial => "Trial: started, ending soon, ended",
            Category::Billing => "Receipts and plan changes",
            Category::PaymentFailure => "Failed payments and grace periods",
            Category::Usage => "Usage warnings (80%, 100%, overage, credits exhausted)",
            Category::Credits => "Credit packs, auto top-up and refunds",
            Category::Security => "Being added to an organization",
            Category::Operators => "Operator alerts (platform admins)",
        }
    }

    /// Whether a member may turn it off (and its mail carries a one-click unsubscribe). Security
    /// and payment-failure mail is always sent: missing it costs the customer their plan.
    pub fn optional(self) -> bool {
        !matches!(self, Category::PaymentFailure | Category::Security)
    }
}

/// Who a notification goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Audience {
    /// The organization's owners and admins.
    Managers,
    /// One user (named by the cause).
    User,
    /// Every platform admin.
    Operators,
}

macro_rules! kinds {
    ($($variant:ident => $name:literal, $category:ident, $audience:ident;)*) => {
        /// One notification the portal sends.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Kind { $($variant,)* }

        impl Kind {
            pub const ALL: &'static [Kind] = &[$(Kind::$variant,)*];

            /// The name stored in the outbox and the stem of its template files.
            pub fn as_str(self) -> &'static str {
                match self { $(Kind::$variant => $name,)* }
            }

            pub fn category(self) -> Category {
                match self { $(Kind::$variant => Category::$category,)* }
            }

            pub fn audience(self) -> Audience {
                match self { $(Kind::$variant => Audience::$audience,)* }
            }
        }
    };
}

kinds! {
    TrialStarted => "trial_started", Trial, Managers;
    TrialEnding => "trial_ending", Trial, Managers;
    TrialConverted => "trial_converted", Trial, Managers;
    TrialEndedFree => "trial_ended_free", Trial, Managers;
    Receipt => "receipt", Billing, Managers;
    PaymentFailed => "payment_failed", PaymentFailure, Managers;
    GraceReminder => "grace_reminder", PaymentFailure, Managers;
    DowngradedFree => "downgraded_free", PaymentFailure, Managers;
    PaymentRecovered => "payment_recovered", Billing, Managers;
    PlanChanged => "plan_changed", Billing, Managers;
    CancelScheduled => "cancel_scheduled", Billing, Managers;
    CancelResumed => "cancel_resumed", Billing, Managers;
    Canceled => "canceled", Billing, Managers;
    Usage80 => "usage_80", Usage, Managers;
    Usage100 => "usage_100", Usage, Managers;
    Overage => "overage", Usage, Managers;
    CreditsExhausted => "credits_exhausted", Usage, Managers;
    PackBought => "pack_bought", Credits, Managers;
    TopUpCharged => "top_up_charged", Credits, Managers;
    TopUpFailed => "top_up_failed", PaymentFailure, Managers;
    TopUpDisabled => "top_up_disabled", PaymentFailure, Managers;
    RefundRemovedCredits => "refund_removed_credits", Credits, Managers;
    MemberAdded => "member_added", Security, User;
    OpsSignatureFailures => "ops_signature_failures", Operators, Operators;
    OpsEventFailed => "ops_event_failed", Operators, Operators;
    OpsBreakerTripped => "ops_breaker_tripped", Operators, Operators;
    OpsDrift => "ops_drift", Operators, Operators;
}

impl Kind {
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|k| k.as_str() == text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_only_payment_and_security_mail_is_compulsory() {
        for kind in Kind::ALL {
            assert_eq!(Kind::parse(kind.as_str()), Some(*kind));
        }
        for c in Category::ALL {
            assert_eq!(Category::parse(c.as_str()), Some(c));
        }
        assert!(!Kind::PaymentFailed.category().optional());
        assert!(!Kind::MemberAdded.category().optional());
        assert!(!Kind::TopUpDisabled.category().optional());
        assert!(Kind::Receipt.category().optional());
        assert!(Kind::Usage80.category().optional());
        assert_eq!(Kind::OpsDrift.audience(), Audience::Operators);
    }
}
