//! Pure rules of invitations: what state one is in, and whether a signed-in person may accept it.
//! The SQL is in `invitation_repo`, the pages in `invitation_pages`.

use chrono::{DateTime, Utc};
use uuid::Uuid;

/// Where an invitation stands at a given moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InvitationState {
    Pending,
    Accepted { by: Option<Uuid> },
    Revoked,
    Expired,
}

/// The stored facts about an invitation that decide its state.
#[derive(Debug, Clone, Copy)]
pub struct Lifecycle {
    pub expires_at: DateTime<Utc>,
    pub accepted_at: Option<DateTime<Utc>>,
    pub accepted_by: Option<Uuid>,
    pub revoked_at: Option<DateTime<Utc>>,
}

impl Lifecycle {
    /// An accepted invitation stays accepted (even after its expiry); a revoked one stays
    /// revoked; otherwise it is pending until it expires.
    pub fn state(&self, now: DateTime<Utc>) -> InvitationState {
        if self.accepted_at.is_some() {
            InvitationState::Accepted {
                by: self.accepted_by,
            }
        } else if self.revoked_at.is_some() {
            InvitationState::Revoked
        } else if now >= self.expires_at {
            InvitationState::Expired
        } else {
            InvitationState::Pending
        }
    }
}

/// Why an invitation cannot be accepted, phrased for the person trying.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("This invitation was revoked. Ask the organization for a new one.")]
    Revoked,
    #[error("This invitation has expired. Ask the organization for a new one.")]
    Expired,
    #[error("This invitation has already been used.")]
    Used,
    #[error(
        "This invitation was sent to another e-mail address than the one you are logged in with. \
         Log out, then log in or sign up with the invited address."
    )]
    WrongAccount,
}

/// What accepting does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Add the membership and mark the invitation accepted.
    Join,
    /// This person accepted it already: nothing to do (a double click, a reload).
    AlreadyJoined,
    Refuse(Refusal),
}

/// Whether `user` (id and normalized e-mail) may accept an invitation sent to `invited_email`.
pub fn decide(
    state: InvitationState,
    invited_email: &str,
    user_id: Uuid,
    user_email: &str,
) -> Decision {
    match state {
        InvitationState::Accepted { by } if by == Some(user_id) => Decision::AlreadyJoined,
        InvitationState::Accepted { .. } => Decision::Refuse(Refusal::Used),
        // The address is checked first: someone else holding the link learns nothing more.
        _ if invited_email != user_email => Decision::Refuse(Refusal::WrongAccount),
        InvitationState::Revoked => Decision::Refuse(Refusal::Revoked),
        InvitationState::Expired => Decision::Refuse(Refusal::Expired),
        InvitationState::Pending => Decision::Join,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    fn lifecycle(now: DateTime<Utc>) -> Lifecycle {
        Lifecycle {
            expires_at: now + Duration::days(7),
            accepted_at: None,
            accepted_by: None,
            revoked_at: None,
        }
    }

    #[test]
    fn states_follow_acceptance_revocation_and_expiry() {
        let now = Utc::now();
        let pending = lifecycle(now);
        assert_eq!(pending.state(now), InvitationState::Pending);
        assert_eq!(
            pending.state(now + Duration::days(7)),
            InvitationState::Expired
        );
        let revoked = Lifecycle {
            revoked_at: Some(now),
            ..pending
        };
        assert_eq!(revoked.state(now), InvitationState::Revoked);
        let someone = Uuid::new_v4();
        let accepted = Lifecycle {
            accepted_at: Some(now),
            accepted_by: Some(someone),
            ..pending
        };
        assert_eq!(
            accepted.state(now + Duration::days(30)),
            InvitationState::Accepted { by: Some(someone) }
        );
    }

    #[test]
    fn only_the_invited_address_joins_and_only_once() {
        let bob = Uuid::new_v4();
        let mallory = Uuid::new_v4();
        let email = "bob@example.com";
        assert_eq!(
            decide(InvitationState::Pending, email, bob, email),
            Decision::Join
        );
        assert_eq!(
            decide(
                InvitationState::Pending,
                email,
                mallory,
                "mallory@example.com"
            ),
            Decision::Refuse(Refusal::WrongAccount)
        );
        let accepted = InvitationState::Accepted { by: Some(bob) };
        assert_eq!(decide(accepted, email, bob, email), Decision::AlreadyJoined);
        assert_eq!(
            decide(accepted, email, mallory, "mallory@example.com"),
            Decision::Refuse(Refusal::Used)
        );
        assert_eq!(
            decide(InvitationState::Expired, email, bob, email),
            Decision::Refuse(Refusal::Expired)
        );
        assert_eq!(
            decide(InvitationState::Revoked, email, bob, email),
            Decision::Refuse(Refusal::Revoked)
        );
    }
}
