//! Pure account types: a parsed email address and a password that meets the rules.
//! Parsing here is the only validation; the rest of the code receives these types.

use std::fmt;

/// The shortest password we accept for a new account.
pub const MIN_PASSWORD_LEN: usize = 10;
/// Longer inputs are refused before hashing so nobody can make us hash megabytes. Counted in
/// characters, like the minimum and like the message says (at most 4 KiB of UTF-8).
pub const MAX_PASSWORD_LEN: usize = 1024;
/// RFC 5321 limits a forward path to 254 characters.
pub const MAX_EMAIL_LEN: usize = 254;

/// Why a user's input was refused, phrased for the person who typed it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InputError {
    #[error("Enter your email address.")]
    EmailMissing,
    #[error("“{0}” is not a valid email address.")]
    EmailMalformed(String),
    #[error("The email address is too long (at most 254 characters).")]
    EmailTooLong,
    #[error("Choose a password of at least {MIN_PASSWORD_LEN} characters.")]
    PasswordTooShort,
    #[error("The password is too long (at most {MAX_PASSWORD_LEN} characters).")]
    PasswordTooLong,
    #[error("Choose a password that is not only spaces.")]
    PasswordBlank,
}

/// An email address in its one normalized form, known to be well formed. The same form is
/// stored, looked up by equality and made unique by the database, so `ÄDA@…` and `äda@…` are one
/// account whatever the database's locale folds (see [`normalize_email`]).
#[derive(Clone, PartialEq, Eq)]
pub struct Email(String);

/// The one normalization of an address: trimmed, Unicode NFC, then full (not only ASCII)
/// lowercase of the whole address, then NFC again (lowercasing can decompose). Done here, in Rust,
/// because the private PostgreSQL runs without a locale and its `lower()` folds only ASCII.
pub fn normalize_email(input: &str) -> String {
    use unicode_normalization::UnicodeNormalization;
    let composed: String = input.trim().nfc().collect();
    composed.to_lowercase().nfc().collect()
}

impl Email {
    pub fn parse(input: &str) -> Result<Self, InputError> {
        if input.trim().is_empty() {
            return Err(InputError::EmailMissing);
        }
        let trimmed = normalize_email(input);
        let trimmed = trimmed.as_str();
        if trimmed.len() > MAX_EMAIL_LEN {
            return Err(InputError::EmailTooLong);
        }
        // email_address accepts quoted local parts and IP literals; a billing portal that sends mail
        // to people wants an ordinary address with a dotted domain.
        let well_formed = email_address::EmailAddress::is_valid(trimmed)
            && !trimmed.contains(['"', '[', ' '])
            && trimmed
                .rsplit_once('@')
                .is_some_and(|(_, domain)| domain.contains('.') && !domain.ends_with('.'));
        if !well_formed {
            return Err(InputError::EmailMalformed(trimmed.to_owned()));
        }
        Ok(Self(trimmed.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The key used for uniqueness, rate limiting and look-ups: the address itself, which is
    /// kept normalized.
    pub fn normalized(&self) -> String {
        self.0.clone()
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Email({})", self.0)
    }
}

/// A password chosen for a new account. Never printed, not even by `Debug`.
#[derive(Clone)]
pub struct NewPassword(String);

impl NewPassword {
    pub fn parse(input: &str) -> Result<Self, InputError> {
        let length = input.chars().count();
        if length < MIN_PASSWORD_LEN {
            return Err(InputError::PasswordTooShort);
        }
        if length > MAX_PASSWORD_LEN {
            return Err(InputError::PasswordTooLong);
        }
        // Spaces count towards the length (passphrases), but a password of nothing else is one
        // anybody guesses.
        if input.chars().all(char::is_whitespace) {
            return Err(InputError::PasswordBlank);
        }
        Ok(Self(input.to_owned()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for NewPassword {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("NewPassword([redacted])")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ordinary_addresses_trims_and_normalizes_them() {
        let email = Email::parse("  Ada.Lovelace+billing@Example.com ").expect("valid");
        assert_eq!(email.as_str(), "ada.lovelace+billing@example.com");
        assert_eq!(email.normalized(), "ada.lovelace+billing@example.com");
    }

    #[test]
    fn non_ascii_letters_fold_like_ascii_ones() {
        let upper = Email::parse("ÄDA@example.com").expect("valid");
        let lower = Email::parse("äda@example.com").expect("valid");
        assert_eq!(upper, lower);
        assert_eq!(upper.as_str(), "äda@example.com");
        // A decomposed "a" + combining diaeresis is the same address as the composed "ä".
        let decomposed = Email::parse("A\u{308}DA@EXAMPLE.COM").expect("valid");
        assert_eq!(decomposed, lower);
        assert_eq!(
            Email::parse("ÖSTRÖM@ÉXAMPLE.com").map(|e| e.0),
            Ok("öström@éxample.com".into())
        );
    }

    #[test]
    fn normalizing_is_idempotent() {
        for input in [
            "ÄDA@example.com",
            "  Ǆemal@Example.com",
            "İstanbul@example.com",
            "ß@example.com",
        ] {
            let once = normalize_email(input);
            assert_eq!(normalize_email(&once), once, "{input}");
        }
    }

    #[test]
    fn refuses_empty_and_malformed_addresses() {
        assert_eq!(Email::parse("   "), Err(InputError::EmailMissing));
        for bad in [
            "plainaddress",
            "@example.com",
            "ada@",
            "ada@localhost",
            "ada@example.",
            "a b@example.com",
            "\"ada\"@example.com",
            "ada@[127.0.0.1]",
        ] {
            assert!(
                matches!(Email::parse(bad), Err(InputError::EmailMalformed(_))),
                "{bad} should be refused"
            );
        }
    }

    #[test]
    fn refuses_overlong_addresses() {
        let long = format!("{}@example.com", "a".repeat(250));
        assert_eq!(Email::parse(&long), Err(InputError::EmailTooLong));
    }

    #[test]
    fn password_length_is_counted_in_characters() {
        assert_eq!(
            NewPassword::parse("short").err(),
            Some(InputError::PasswordTooShort)
        );
        assert!(NewPassword::parse("ten chars!").is_ok());
        // Nine characters but more than ten bytes: still too short.
        assert_eq!(
            NewPassword::parse("ééééééééé").err(),
            Some(InputError::PasswordTooShort)
        );
        assert_eq!(
            NewPassword::parse(&"x".repeat(MAX_PASSWORD_LEN + 1)).err(),
            Some(InputError::PasswordTooLong)
        );
    }

    #[test]
    fn the_maximum_is_counted_in_characters_too() {
        // 1,024 two-byte characters: 2,048 bytes, but within the limit the message states.
        assert!(NewPassword::parse(&"é".repeat(MAX_PASSWORD_LEN)).is_ok());
        assert_eq!(
            NewPassword::parse(&"é".repeat(MAX_PASSWORD_LEN + 1)).err(),
            Some(InputError::PasswordTooLong)
        );
        assert!(NewPassword::parse(&"x".repeat(MAX_PASSWORD_LEN)).is_ok());
        assert!(InputError::PasswordTooLong
            .to_string()
            .contains(&format!("{MAX_PASSWORD_LEN} characters")));
    }

    #[test]
    fn passwords_of_only_whitespace_are_refused() {
        for blank in [
            " ".repeat(10),
            "\t".repeat(12),
            " \n ".repeat(5),
            "\u{3000}".repeat(10),
            "\u{A0}".repeat(10),
        ] {
            assert_eq!(
                NewPassword::parse(&blank).err(),
                Some(InputError::PasswordBlank),
                "{blank:?}"
            );
        }
        // Spaces inside a passphrase are fine.
        assert!(NewPassword::parse("  correct horse  ").is_ok());
    }

    #[test]
    fn debug_never_shows_the_password() {
        let password = NewPassword::parse("correct horse battery").expect("valid");
        assert!(!format!("{password:?}").contains("horse"));
    }
}
