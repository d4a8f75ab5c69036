//! How a Stripe call went wrong, in the terms the rest of the portal acts on: the card was
//! declined (the customer can fix it), Stripe could not be reached, or the call failed otherwise.
//! async-stripe's error type stays in here.

/// A failed Stripe call. `action` says what we were doing ("changing the plan"), `detail` what
/// Stripe or the network said; neither holds a secret, so both may be logged.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// Stripe refused because of the card (`card_error`, HTTP 402): a decline.
    #[error("{action}: the card was declined: {detail}")]
    Declined { action: String, detail: String },
    /// No answer from Stripe: the connection failed or timed out.
    #[error("{action}: Stripe could not be reached: {detail}")]
    Unreachable { action: String, detail: String },
    /// Stripe answered with another error, or with something we cannot use.
    #[error("{action}: {detail}")]
    Failed { action: String, detail: String },
}

impl GatewayError {
    /// Sorts an async-stripe error.
    pub(crate) fn from_stripe(action: impl Into<String>, e: &stripe::StripeError) -> Self {
        let action = action.into();
        let detail = super::describe(e);
        match e {
            stripe::StripeError::Stripe(err, status)
                if *status == 402 || err.type_ == stripe_shared::ApiErrorsType::CardError =>
            {
                Self::Declined { action, detail }
            }
            stripe::StripeError::ClientError(_) | stripe::StripeError::Timeout => {
                Self::Unreachable { action, detail }
            }
            _ => Self::Failed { action, detail },
        }
    }

    /// A call that Stripe answered, but not with what we need (say, a price that does not exist).
    pub(crate) fn failed(action: impl Into<String>, detail: impl Into<String>) -> Self {
        Self::Failed {
            action: action.into(),
            detail: detail.into(),
        }
    }

    pub fn is_declined(&self) -> bool {
        matches!(self, Self::Declined { .. })
    }
}

#[cfg(test)]
mod tests {
    use super::GatewayError;

    #[test]
    fn network_trouble_is_unreachable_and_other_failures_are_failed() {
        let e = GatewayError::from_stripe(
            "changing the plan",
            &stripe::StripeError::ClientError("connection refused".into()),
        );
        assert!(matches!(e, GatewayError::Unreachable { .. }), "{e:?}");
        assert!(!e.is_declined());
        assert!(e.to_string().starts_with("changing the plan: "), "{e}");
        let e = GatewayError::from_stripe("changing the plan", &stripe::StripeError::Timeout);
        assert!(matches!(e, GatewayError::Unreachable { .. }), "{e:?}");
        let e = GatewayError::from_stripe(
            "changing the plan",
            &stripe::StripeError::JSONDeserialize("bad".into()),
        );
        assert!(matches!(e, GatewayError::Failed { .. }), "{e:?}");
        assert!(!GatewayError::failed("finding price", "none").is_declined());
    }
}
