//! What people type into the credit forms, read into typed values: the number of packs to buy,
//! the auto top-up settings, and an admin's grant or removal of credits with its reason. Each
//! parser returns the value or the field at fault with the sentence the form shows. Pure.

use super::credits::parse_positive;

/// Most packs one purchase may buy.
pub const MAX_PACKS: i64 = 20;

/// A form field that was refused, and the sentence that says why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct InvalidInput {
    /// The form field's name (`packs`, `below`, `reason`, ...).
    pub field: &'static str,
    pub message: String,
}

impl InvalidInput {
    pub fn new(field: &'static str, message: impl Into<String>) -> Self {
        Self {
            field,
            message: message.into(),
        }
    }
}

/// How many credit packs to buy at once: 1 to [`MAX_PACKS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PackCount(i64);

impl PackCount {
    pub fn parse(text: &str) -> Result<Self, InvalidInput> {
        match text.trim().parse::<i64>() {
            Ok(n) if (1..=MAX_PACKS).contains(&n) => Ok(Self(n)),
            _ => Err(InvalidInput::new(
                "packs",
                format!("Choose 1 to {MAX_PACKS} packs."),
            )),
        }
    }

    pub fn get(self) -> i64 {
        self.0
    }
}

/// The auto top-up form as typed.
#[derive(Debug, Clone, Copy, Default)]
pub struct TopUpForm<'a> {
    /// The checkbox: `Some("on")` when ticked.
    pub enabled: Option<&'a str>,
    pub below: &'a str,
    pub packs: &'a str,
    pub monthly_cap: &'a str,
}

/// Auto top-up settings an owner chose: when the balance falls below `below_credits`, buy
/// `packs` packs, at most `monthly_cap` times a month.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AutoTopUp {
    pub enabled: bool,
    pub below_credits: i64,
    pub packs: i32,
    pub monthly_cap: i32,
}

impl AutoTopUp {
    /// Reads the form; the first field at fault (threshold, packs, cap) is reported.
    pub fn parse(form: TopUpForm<'_>) -> Result<Self, InvalidInput> {
        Ok(Self {
            enabled: form.enabled == Some("on"),
            below_credits: whole_number(form.below, 0, 1_000_000, "below", "The threshold")?,
            packs: whole_number(form.packs, 1, 100, "packs", "Packs per top-up")? as i32,
            monthly_cap: whole_number(form.monthly_cap, 1, 100, "monthly_cap", "The monthly cap")?
                as i32,
        })
    }
}

fn whole_number(
    text: &str,
    low: i64,
    high: i64,
    field: &'static str,
    what: &str,
) -> Result<i64, InvalidInput> {
    text.trim()
        .parse::<i64>()
        .ok()
        .filter(|n| (low..=high).contains(n))
        .ok_or_else(|| {
            InvalidInput::new(
                field,
                format!("{what} must be a whole number from {low} to {high}."),
            )
        })
}

/// Whether an admin adds or takes away credits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    Grant,
    Removal,
}

/// The admin's adjustment form as typed.
#[derive(Debug, Clone, Copy, Default)]
pub struct AdjustmentForm<'a> {
    /// `grant` or `remove`.
    pub change: &'a str,
    pub credits: &'a str,
    pub reason: &'a str,
}

/// A checked grant or removal of credits, with the reason the ledger shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreditAdjustment {
    pub change: Change,
    /// Signed: negative for a removal.
    pub millicredits: i64,
    /// Trimmed, 1 to 200 clean characters.
    pub reason: String,
}

impl CreditAdjustment {
    /// Reads the form. The amount is checked first, then the reason, then the kind of change.
    pub fn parse(form: AdjustmentForm<'_>) -> Result<Self, InvalidInput> {
        let amount = parse_positive(form.credits).map_err(|m| InvalidInput::new("credits", m))?;
        let reason = form.reason.trim();
        if reason.is_empty() || reason.chars().count() > 200 {
            return Err(InvalidInput::new(
                "reason",
                "Give a reason of 1 to 200 characters; the ledger shows it.",
            ));
        }
        if !crate::text::is_clean(reason) {
            return Err(InvalidInput::new(
                "reason",
                "The reason cannot contain invisible or control characters (such as zero-width \
                 spaces or text-direction marks).",
            ));
        }
        let (change, millicredits) = match form.change {
            "grant" => (Change::Grant, amount),
            "remove" => (Change::Removal, -amount),
            _ => {
                return Err(InvalidInput::new(
                    "change",
                    "Choose to grant or to remove credits.",
                ))
            }
        };
        Ok(Self {
            change,
            millicredits,
            reason: reason.to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pack_counts_are_one_to_twenty() {
        assert_eq!(PackCount::parse("1").map(PackCount::get), Ok(1));
        assert_eq!(PackCount::parse(" 20 ").map(PackCount::get), Ok(20));
        for bad in ["0", "21", "-1", "", "two", "1.5"] {
            let refused = PackCount::parse(bad).expect_err(bad);
            assert_eq!(refused.field, "packs");
            assert_eq!(refused.message, "Choose 1 to 20 packs.");
        }
    }

    fn top_up<'a>(
        enabled: Option<&'a str>,
        below: &'a str,
        packs: &'a str,
        cap: &'a str,
    ) -> TopUpForm<'a> {
        TopUpForm {
            enabled,
            below,
            packs,
            monthly_cap: cap,
        }
    }

    #[test]
    fn top_up_settings_read_into_typed_values() {
        assert_eq!(
            AutoTopUp::parse(top_up(Some("on"), " 600 ", "2", "1")),
            Ok(AutoTopUp {
                enabled: true,
                below_credits: 600,
                packs: 2,
                monthly_cap: 1,
            })
        );
        let off = AutoTopUp::parse(top_up(None, "0", "100", "100")).expect("valid");
        assert!(!off.enabled);
        assert!(
            !AutoTopUp::parse(top_up(Some("yes"), "0", "1", "1"))
                .expect("valid")
                .enabled
        );
    }

    #[test]
    fn top_up_refusals_name_the_first_bad_field_with_todays_sentences() {
        let refused = AutoTopUp::parse(top_up(Some("on"), "lots", "0", "0")).expect_err("bad");
        assert_eq!(
            refused,
            InvalidInput::new(
                "below",
                "The threshold must be a whole number from 0 to 1000000."
            )
        );
        let refused = AutoTopUp::parse(top_up(None, "1000001", "1", "1")).expect_err("bad");
        assert_eq!(refused.field, "below");
        let refused = AutoTopUp::parse(top_up(None, "5", "101", "1")).expect_err("bad");
        assert_eq!(
            refused,
            InvalidInput::new(
                "packs",
                "Packs per top-up must be a whole number from 1 to 100."
            )
        );
        let refused = AutoTopUp::parse(top_up(None, "5", "1", "")).expect_err("bad");
        assert_eq!(
            refused,
            InvalidInput::new(
                "monthly_cap",
                "The monthly cap must be a whole number from 1 to 100."
            )
        );
    }

    fn adjustment<'a>(change: &'a str, credits: &'a str, reason: &'a str) -> AdjustmentForm<'a> {
        AdjustmentForm {
            change,
            credits,
            reason,
        }
    }

    #[test]
    fn adjustments_are_signed_and_keep_a_trimmed_reason() {
        assert_eq!(
            CreditAdjustment::parse(adjustment("grant", "12.5", " Sorry about the outage ")),
            Ok(CreditAdjustment {
                change: Change::Grant,
                millicredits: 12_500,
                reason: "Sorry about the outage".to_owned(),
            })
        );
        let removal = CreditAdjustment::parse(adjustment("remove", "2", "Correction")).expect("ok");
        assert_eq!(
            (removal.change, removal.millicredits),
            (Change::Removal, -2000)
        );
    }

    #[test]
    fn adjustment_refusals_check_the_amount_then_the_reason_then_the_change() {
        fn field(form: AdjustmentForm<'_>) -> &'static str {
            CreditAdjustment::parse(form).expect_err("refused").field
        }
        assert_eq!(field(adjustment("nonsense", "abc", "")), "credits");
        assert_eq!(field(adjustment("grant", "-3", "r")), "credits");
        assert_eq!(field(adjustment("grant", "1.23456", "r")), "credits");
        assert_eq!(field(adjustment("nonsense", "5", "  ")), "reason");
        assert_eq!(field(adjustment("grant", "5", &"x".repeat(201))), "reason");
        assert_eq!(field(adjustment("grant", "5", "a\u{200B}b")), "reason");
        let refused = CreditAdjustment::parse(adjustment("gift", "5", "r")).expect_err("refused");
        assert_eq!(
            refused,
            InvalidInput::new("change", "Choose to grant or to remove credits.")
        );
        assert_eq!(
            CreditAdjustment::parse(adjustment("grant", "5", ""))
                .expect_err("refused")
                .message,
            "Give a reason of 1 to 200 characters; the ledger shows it."
        );
    }
}
