//! Who is viewing: a signed-in user and their memberships, read for every page and kept in
//! memory between views. The copies agree across instances through [`crate::db::shared_cache`]:
//! a change to the user, to one of their memberships or to an organization's name drops the
//! copies it concerns on every instance as soon as it commits.

use std::sync::Arc;
use std::time::Duration;

use sqlx::PgExecutor;
use uuid::Uuid;

use super::repo::{self, Membership};
use crate::accounts::repo::User;
use crate::db::shared_cache::{Coherence, SharedCache};

/// Users kept in memory at most.
const CAPACITY: u64 = 100_000;

/// An unused copy is let go after this.
const IDLE: Duration = Duration::from_secs(15 * 60);

/// A user and their memberships, as one page view sees them.
pub type Viewer = Arc<(User, Vec<Membership>)>;

#[derive(Debug, Clone)]
pub struct Viewers {
    copies: SharedCache<Uuid, Viewer>,
}

impl Viewers {
    pub fn new(coherence: Arc<Coherence>) -> Self {
        Self {
            copies: SharedCache::new(coherence, CAPACITY, IDLE),
        }
    }

    /// The copies, for the listener that drops them when their rows change.
    pub fn copies(&self) -> SharedCache<Uuid, Viewer> {
        self.copies.clone()
    }

    /// Drops this instance's copy at once after its own change to the user's memberships, so
    /// the very next page sees it (other instances drop theirs when the notice arrives).
    pub fn forget(&self, user_id: Uuid) {
        self.copies.forget(&user_id);
    }

    /// The user and their memberships, or `None` when the user no longer exists.
    pub async fn of(&self, db: impl PgExecutor<'_>, user_id: Uuid) -> sqlx::Result<Option<Viewer>> {
        if let Some(viewer) = self.copies.get(&user_id) {
            return Ok(Some(viewer));
        }
        let ticket = self.copies.start_load();
        let Some(viewer) = repo::viewer(db, user_id).await? else {
            return Ok(None);
        };
        let viewer = Arc::new(viewer);
        self.copies.store(user_id, viewer.clone(), ticket);
        Ok(Some(viewer))
    }
}
