//! What an API key may do. A key carries a set of scopes; each endpoint names the one it needs
//! and a call outside the key's scopes is refused with 403 naming the missing scope. A key made
//! without naming scopes has all of them.

use axum::http::StatusCode;

use super::keys::ApiCaller;
use super::ApiError;

/// One permission an API key can hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Scope {
    /// Record billable actions and set gauges.
    #[serde(rename = "usage:write")]
    UsageWrite,
    /// Read entitlements, features and limits.
    #[serde(rename = "entitlements:read")]
    EntitlementsRead,
    /// Read the plan, subscription, invoices and usage summaries.
    #[serde(rename = "billing:read")]
    BillingRead,
    /// Start Checkout, change, cancel or resume the plan, open the card portal.
    #[serde(rename = "billing:write")]
    BillingWrite,
}

impl Scope {
    pub const ALL: [Scope; 4] = [
        Scope::UsageWrite,
        Scope::EntitlementsRead,
        Scope::BillingRead,
        Scope::BillingWrite,
    ];

    /// The name keys, pages, the CLI and error messages use.
    pub fn name(self) -> &'static str {
        match self {
            Scope::UsageWrite => "usage:write",
            Scope::EntitlementsRead => "entitlements:read",
            Scope::BillingRead => "billing:read",
            Scope::BillingWrite => "billing:write",
        }
    }

    /// What the scope allows, as the keys page labels its checkbox.
    pub fn label(self) -> &'static str {
        match self {
            Scope::UsageWrite => "Record usage and set gauges",
            Scope::EntitlementsRead => "Read entitlements, features and limits",
            Scope::BillingRead => "Read the plan, subscription, invoices and usage summaries",
            Scope::BillingWrite => {
                "Start Checkout, change, cancel or resume the plan, open the card portal"
            }
        }
    }

    pub fn parse(name: &str) -> Option<Scope> {
        Scope::ALL.into_iter().find(|scope| scope.name() == name)
    }

    fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

/// A set of scopes, small enough to copy with the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scopes(u8);

impl Scopes {
    pub const fn all() -> Self {
        Scopes(0b1111)
    }

    pub fn of(scopes: impl IntoIterator<Item = Scope>) -> Self {
        Scopes(scopes.into_iter().fold(0, |bits, scope| bits | scope.bit()))
    }

    pub fn contains(self, scope: Scope) -> bool {
        self.0 & scope.bit() != 0
    }

    pub fn iter(self) -> impl Iterator<Item = Scope> {
        Scope::ALL.into_iter().filter(move |s| self.contains(*s))
    }

    pub fn is_all(self) -> bool {
        self == Self::all()
    }

    /// The names, as stored (`api_keys.scopes`) and shown.
    pub fn names(self) -> Vec<&'static str> {
        self.iter().map(Scope::name).collect()
    }

    /// The scopes named in `names`; names this version does not know are left out (the table
    /// refuses them, so there are none but from a newer version).
    pub fn from_names<S: AsRef<str>>(names: &[S]) -> Self {
        Self::of(names.iter().filter_map(|n| Scope::parse(n.as_ref())))
    }

    /// What a key made with these choices holds: none picked means all.
    pub fn chosen(scopes: impl IntoIterator<Item = Scope>) -> Self {
        let picked = Self::of(scopes);
        if picked.0 == 0 {
            Self::all()
        } else {
            picked
        }
    }
}

impl ApiCaller {
    /// Refuses the call with 403 unless the key holds `scope`.
    pub fn require(&self, scope: Scope) -> Result<(), ApiError> {
        if self.scopes.contains(scope) {
            return Ok(());
        }
        let error = ApiError::new(
            StatusCode::FORBIDDEN,
            "missing_scope",
            format!(
                "This API key lacks the `{}` scope. An owner can create a key with it on the organization's API keys page.",
                scope.name()
            ),
        );
        Err(error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_parse_by_name_and_sets_hold_what_they_were_made_of() {
        for scope in Scope::ALL {
            assert_eq!(Scope::parse(scope.name()), Some(scope));
        }
        assert_eq!(Scope::parse("billing:admin"), None);
        let read_only = Scopes::of([Scope::BillingRead, Scope::EntitlementsRead]);
        assert!(read_only.contains(Scope::BillingRead));
        assert!(!read_only.contains(Scope::BillingWrite));
        assert_eq!(read_only.iter().count(), 2);
        assert!(Scope::ALL.iter().all(|s| Scopes::all().contains(*s)));
    }

    #[test]
    fn a_key_made_without_choosing_holds_every_scope_and_names_round_trip() {
        assert!(Scopes::chosen([]).is_all());
        let usage = Scopes::chosen([Scope::UsageWrite]);
        assert!(!usage.is_all());
        assert_eq!(usage.names(), vec!["usage:write"]);
        assert_eq!(Scopes::from_names(&usage.names()), usage);
        assert_eq!(Scopes::from_names(&Scopes::all().names()), Scopes::all());
        assert_eq!(
            Scopes::from_names(&["billing:read", "future:thing"]),
            Scopes::of([Scope::BillingRead])
        );
    }
}
