//! Stripe's test cards and what each does when charged.

/// A card as typed into a hosted page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Card {
    pub number: String,
    pub brand: &'static str,
    pub exp_month: i64,
    pub exp_year: i64,
}

/// What happens when a card is charged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behaviour {
    Succeeds,
    /// 4000 0000 0000 0002
    Declined,
    /// 4000 0000 0000 9995
    InsufficientFunds,
    /// 4000 0025 0000 3155: asks for authentication on the page; off-session charges fail.
    RequiresAuthentication,
    /// 4000 0000 0000 0341: can be saved, but every charge fails.
    AttachesButFails,
}

/// A refused charge: Stripe's `code`, `decline_code` and message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decline {
    pub code: &'static str,
    pub decline_code: Option<&'static str>,
    pub message: &'static str,
}

impl Card {
    /// Parses what a person typed: spaces allowed, Luhn-checked, expiry `MM / YY` in the future
    /// relative to `now_year`/`now_month`.
    pub fn parse(
        number: &str,
        expiry: &str,
        cvc: &str,
        now_year: i64,
        now_month: i64,
    ) -> Result<Self, &'static str> {
        let digits: String = number.chars().filter(|c| !c.is_whitespace()).collect();
        if digits.len() < 12
            || digits.len() > 19
            || !digits.chars().all(|c| c.is_ascii_digit())
            || !luhn(&digits)
        {
            return Err("Your card number is invalid.");
        }
        let (month, year) =
            parse_expiry(expiry).ok_or("Your card's expiration date is incomplete.")?;
        if year < now_year || (year == now_year && month < now_month) {
            return Err("Your card's expiration year is in the past.");
        }
        let cvc = cvc.trim();
        if cvc.len() < 3 || cvc.len() > 4 || !cvc.chars().all(|c| c.is_ascii_digit()) {
            return Err("Your card's security code is incomplete.");
        }
        Ok(Self {
            brand: brand_of(&digits),
            number: digits,
            exp_month: month,
            exp_year: year,
        })
    }

    /// One of Stripe's test payment method tokens (`pm_card_visa`, ...), as the real API accepts.
    pub fn from_test_token(token: &str) -> Option<Self> {
        let number = match token {
            "pm_card_visa" | "tok_visa" => "4242424242424242",
            "pm_card_mastercard" | "tok_mastercard" => "5555555555554444",
            "pm_card_chargeDeclined" | "tok_chargeDeclined" => "4000000000000002",
            "pm_card_chargeDeclinedInsufficientFunds" | "tok_chargeDeclinedInsufficientFunds" => {
                "4000000000009995"
            }
            "pm_card_authenticationRequired" | "pm_card_threeDSecure2Required" => {
                "4000002500003155"
            }
            "pm_card_chargeCustomerFail" | "tok_chargeCustomerFail" => "4000000000000341",
            _ => return None,
        };
        Some(Self {
            number: number.to_owned(),
            brand: brand_of(number),
            exp_month: 12,
            exp_year: 2099,
        })
    }

    pub fn last4(&self) -> String {
        self.number[self.number.len() - 4..].to_owned()
    }

    /// Stable per card number (Stripe's fingerprint identifies a card across customers).
    pub fn fingerprint(&self) -> String {
        let hash = self.number.bytes().fold(0xcbf29ce484222325u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x100000001b3)
        });
        format!("{hash:016x}")
    }

    pub fn behaviour(&self) -> Behaviour {
        behaviour_of_number(&self.number)
    }
}

/// The behaviour of a card (also of a saved payment method, from its stored number). Any other
/// valid number succeeds, as in Stripe's test mode.
pub fn behaviour_of_number(number: &str) -> Behaviour {
    match number {
        "4000000000000002" => Behaviour::Declined,
        "4000000000009995" => Behaviour::InsufficientFunds,
        "4000002500003155" => Behaviour::RequiresAuthentication,
        "4000000000000341" => Behaviour::AttachesButFails,
        _ => Behaviour::Succeeds,
    }
}

impl Behaviour {
    /// The outcome of charging this card. On-session charges of an authentication card need the
    /// extra step (handled by the hosted page); off-session ones fail as Stripe's do.
    pub fn charge(self, off_session: bool) -> Result<(), Decline> {
        match self {
            Behaviour::Succeeds => Ok(()),
            Behaviour::Declined | Behaviour::AttachesButFails => Err(Decline {
                code: "card_declined",
                decline_code: Some("generic_decline"),
                message: "Your card was declined.",
            }),
            Behaviour::InsufficientFunds => Err(Decline {
                code: "card_declined",
                decline_code: Some("insufficient_funds"),
                message: "Your card has insufficient funds.",
            }),
            Behaviour::RequiresAuthentication if off_session => Err(Decline {
                code: "authentication_required",
                decline_code: Some("authentication_required"),
                message: "Your card was declined. This transaction requires authentication.",
            }),
            Behaviour::RequiresAuthentication => Ok(()),
        }
    }

    /// Whether attaching (saving) the card already fails, as Stripe checks cards when saving.
    pub fn refuses_attach(self) -> Option<Decline> {
        match self {
            Behaviour::Declined | Behaviour::InsufficientFunds => self.charge(true).err(),
            _ => None,
        }
    }
}

fn parse_expiry(expiry: &str) -> Option<(i64, i64)> {
    let cleaned: String = expiry.chars().filter(|c| !c.is_whitespace()).collect();
    let (month, year) = cleaned.split_once('/')?;
    let month: i64 = month.parse().ok()?;
    let year: i64 = year.parse().ok()?;
    let year = if year < 100 { 2000 + year } else { year };
    (1..=12).contains(&month).then_some((month, year))
}

fn brand_of(digits: &str) -> &'static str {
    match digits.as_bytes().first() {
        Some(b'4') => "visa",
        Some(b'5') => "mastercard",
        Some(b'3') => "amex",
        _ => "unknown",
    }
}

fn luhn(digits: &str) -> bool {
    let sum: u32 = digits
        .chars()
        .rev()
        .filter_map(|c| c.to_digit(10))
        .enumerate()
        .map(|(i, d)| {
            if i % 2 == 1 {
                let doubled = d * 2;
                if doubled > 9 {
                    doubled - 9
                } else {
                    doubled
                }
            } else {
                d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn card(number: &str) -> Card {
        Card::parse(number, "12 / 34", "123", 2026, 11).expect("valid test card")
    }

    #[test]
    fn stripes_test_cards_behave_as_documented() {
        assert_eq!(card("4242 4242 4242 4242").behaviour(), Behaviour::Succeeds);
        assert_eq!(card("4000 0000 0000 0002").behaviour(), Behaviour::Declined);
        assert_eq!(
            card("4000 0000 0000 9995").behaviour(),
            Behaviour::InsufficientFunds
        );
        assert_eq!(
            card("4000 0025 0000 3155").behaviour(),
            Behaviour::RequiresAuthentication
        );
        assert_eq!(
            card("4000 0000 0000 0341").behaviour(),
            Behaviour::AttachesButFails
        );
        assert_eq!(
            Behaviour::InsufficientFunds
                .charge(false)
                .err()
                .and_then(|d| d.decline_code),
            Some("insufficient_funds")
        );
        assert!(Behaviour::RequiresAuthentication.charge(false).is_ok());
        assert!(Behaviour::RequiresAuthentication.charge(true).is_err());
    }

    #[test]
    fn typing_mistakes_are_refused() {
        assert!(Card::parse("4242 4242 4242 4241", "12/34", "123", 2026, 11).is_err());
        assert!(Card::parse("4242 4242 4242 4242", "13/34", "123", 2026, 11).is_err());
        assert!(Card::parse("4242 4242 4242 4242", "10/26", "123", 2026, 11).is_err());
        assert!(Card::parse("4242 4242 4242 4242", "12/34", "1", 2026, 11).is_err());
        let visa = card("4242424242424242");
        assert_eq!(
            (visa.brand, visa.last4().as_str(), visa.exp_year),
            ("visa", "4242", 2034)
        );
    }
}
