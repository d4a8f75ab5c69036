//! Pure organization types: a valid name, the URL slug derived from it, and membership roles.

use std::fmt;
use std::str::FromStr;

/// Longest organization name we accept (the database checks it too).
pub const MAX_ORG_NAME_LEN: usize = 100;
/// Slugs are cut to this many characters before any uniqueness suffix.
const MAX_SLUG_BASE_LEN: usize = 40;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OrgNameError {
    #[error("Enter an organization name.")]
    Missing,
    #[error("The organization name is too long (at most {MAX_ORG_NAME_LEN} characters).")]
    TooLong,
    #[error(
        "The organization name cannot contain invisible or control characters (such as \
         zero-width spaces or text-direction marks)."
    )]
    ControlCharacters,
}

/// An organization's display name: trimmed, 1 to 100 characters, none of the characters
/// [`crate::text`] refuses (controls, bidi overrides, zero-width characters).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrgName(String);

impl OrgName {
    pub fn parse(input: &str) -> Result<Self, OrgNameError> {
        let trimmed = input.trim();
        if trimmed.is_empty() {
            return Err(OrgNameError::Missing);
        }
        if trimmed.chars().count() > MAX_ORG_NAME_LEN {
            return Err(OrgNameError::TooLong);
        }
        if !crate::text::is_clean(trimmed) {
            return Err(OrgNameError::ControlCharacters);
        }
        Ok(Self(trimmed.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The readable part of the URL slug: lowercase ASCII letters and digits joined by single
    /// hyphens. Names with nothing usable (say, only emoji) get "org".
    pub fn slug_base(&self) -> String {
        let mut slug = String::new();
        for c in self.0.chars() {
            let c = c.to_ascii_lowercase();
            if c.is_ascii_alphanumeric() {
                if slug.len() >= MAX_SLUG_BASE_LEN {
                    break;
                }
                slug.push(c);
            } else if !slug.is_empty() && !slug.ends_with('-') {
                slug.push('-');
            }
        }
        let slug = slug.trim_end_matches('-');
        if slug.is_empty() {
            "org".to_owned()
        } else {
            slug.to_owned()
        }
    }
}

impl fmt::Display for OrgName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What a member may do in an organization. Owners and admins manage it; members read it.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Member,
    Admin,
    Owner,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Owner, Role::Admin, Role::Member];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Admin => "admin",
            Role::Member => "member",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Role::Owner => "Owner",
            Role::Admin => "Admin",
            Role::Member => "Member",
        }
    }

    /// Owners and admins manage members (and, later, billing).
    pub fn can_manage(self) -> bool {
        self >= Role::Admin
    }

    /// Whether someone with this role may give `other` to a member. Nobody hands out more power
    /// than they hold.
    pub fn can_grant(self, other: Role) -> bool {
        self.can_manage() && other <= self
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("“{0}” is not a role (owner, admin or member).")]
pub struct UnknownRole(pub String);

impl FromStr for Role {
    type Err = UnknownRole;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "owner" => Ok(Role::Owner),
            "admin" => Ok(Role::Admin),
            "member" => Ok(Role::Member),
            other => Err(UnknownRole(other.to_owned())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(OrgName::parse("  Acme  ").map(|n| n.0), Ok("Acme".into()));
        assert_eq!(OrgName::parse(" "), Err(OrgNameError::Missing));
        assert!(OrgName::parse(&"é".repeat(100)).is_ok());
        assert_eq!(OrgName::parse(&"é".repeat(101)), Err(OrgNameError::TooLong));
        assert_eq!(
            OrgName::parse("Acme\u{0}Corp"),
            Err(OrgNameError::ControlCharacters)
        );
    }

    #[test]
    fn names_with_invisible_or_direction_changing_characters_are_refused() {
        for bad in [
            "Acme\u{202E}gnp.exe",
            "\u{2066}Acme\u{2069}",
            "Ac\u{200B}me",
            "Acme\u{200D}",
            "\u{FEFF}Acme",
            "Acme\u{2060}Corp",
            "Acme\u{200F}",
            "Acme\tCorp",
            "Acme\u{85}Corp",
        ] {
            assert_eq!(
                OrgName::parse(bad),
                Err(OrgNameError::ControlCharacters),
                "{bad:?} should be refused"
            );
        }
        assert!(OrgName::parse("Acme – Ünïcode 株式会社 🚀").is_ok());
    }

    #[test]
    fn slugs_are_lowercase_words_joined_by_hyphens() {
        let slug = |s: &str| OrgName::parse(s).map(|n| n.slug_base());
        assert_eq!(slug("Acme Rockets, Inc."), Ok("acme-rockets-inc".into()));
        assert_eq!(slug("--Über  Tools--"), Ok("ber-tools".into()));
        assert_eq!(slug("🚀🚀"), Ok("org".into()));
        assert_eq!(slug(&"a".repeat(100)).map(|s| s.len()), Ok(40));
    }

    #[test]
    fn roles_round_trip_and_order_by_power() {
        for role in Role::ALL {
            assert_eq!(role.as_str().parse::<Role>(), Ok(role));
        }
        assert!("root".parse::<Role>().is_err());
        assert!(Role::Owner.can_grant(Role::Owner));
        assert!(Role::Admin.can_grant(Role::Member));
        assert!(!Role::Admin.can_grant(Role::Owner));
        assert!(!Role::Member.can_grant(Role::Member));
    }
}
