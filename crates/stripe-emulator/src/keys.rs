//! The secret keys the emulator accepts, as Stripe accepts only an account's own keys: every API
//! and control call must present one of them (Bearer or Basic auth), compared in constant time.

use rand::distr::{Alphanumeric, SampleString};
use subtle::ConstantTimeEq;

/// The accepted secret keys. Never empty: [`ApiKeys::new`] refuses an empty list.
#[derive(Clone)]
pub struct ApiKeys(Vec<String>);

impl std::fmt::Debug for ApiKeys {
    // Keys are secrets: say how many there are, never what they are.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ApiKeys({} key(s))", self.0.len())
    }
}

impl ApiKeys {
    /// The keys given, each a test secret key (`sk_test_...` or a restricted `rk_test_...`) of a
    /// sensible length.
    pub fn new(keys: impl IntoIterator<Item = String>) -> Result<Self, String> {
        let keys: Vec<String> = keys
            .into_iter()
            .map(|k| k.trim().to_owned())
            .filter(|k| !k.is_empty())
            .collect();
        if keys.is_empty() {
            return Err("give the emulator at least one secret key (sk_test_...)".into());
        }
        for key in &keys {
            let test_key = key.starts_with("sk_test_") || key.starts_with("rk_test_");
            let sensible = (16..=255).contains(&key.len())
                && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
            if !test_key || !sensible {
                return Err(format!(
                    "a secret key must look like sk_test_ followed by at least 8 letters or digits \
                     (got one starting {:?})",
                    key.chars().take(8).collect::<String>()
                ));
            }
        }
        Ok(Self(keys))
    }

    /// A fresh random key, for a program that was given none (it prints it once).
    pub fn generate() -> String {
        format!(
            "sk_test_{}",
            Alphanumeric.sample_string(&mut rand::rng(), 32)
        )
    }

    /// Whether `presented` is one of the keys. Every key is compared, each in constant time, so
    /// the answer's timing says nothing about how close a guess was.
    pub fn accepts(&self, presented: &str) -> bool {
        self.0.iter().fold(false, |found, key| {
            found | bool::from(key.as_bytes().ct_eq(presented.as_bytes()))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_only_its_own_keys() {
        let keys = ApiKeys::new([
            "sk_test_aaaaaaaaaaaa".to_owned(),
            "sk_test_bbbbbbbbbbbb".to_owned(),
        ])
        .expect("keys");
        assert!(keys.accepts("sk_test_aaaaaaaaaaaa"));
        assert!(keys.accepts("sk_test_bbbbbbbbbbbb"));
        assert!(!keys.accepts("sk_test_aaaaaaaaaaab"));
        assert!(!keys.accepts("sk_test_"));
        assert!(!keys.accepts(""));
    }

    #[test]
    fn refuses_no_keys_live_keys_and_odd_ones() {
        assert!(ApiKeys::new(Vec::<String>::new()).is_err());
        assert!(ApiKeys::new([" ".to_owned()]).is_err());
        assert!(ApiKeys::new(["sk_live_aaaaaaaaaaaa".to_owned()]).is_err());
        assert!(ApiKeys::new(["sk_test_x".to_owned()]).is_err());
        assert!(ApiKeys::new(["sk_test_aaaa aaaaaaaa".to_owned()]).is_err());
    }

    #[test]
    fn generated_keys_are_accepted_and_differ() {
        let a = ApiKeys::generate();
        let b = ApiKeys::generate();
        assert_ne!(a, b);
        assert!(ApiKeys::new([a.clone()]).expect("valid").accepts(&a));
    }

    #[test]
    fn debug_hides_the_keys() {
        let keys = ApiKeys::new(["sk_test_secretsecret".to_owned()]).expect("keys");
        assert!(!format!("{keys:?}").contains("secret"));
    }
}
