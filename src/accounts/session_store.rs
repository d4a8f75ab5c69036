//! Where sessions are kept: PostgreSQL, with a copy of each live session in memory so a page
//! view does not read its session from the database. The copies agree across instances through
//! [`crate::db::shared_cache`]: signing out on one instance, or any other change to a session's
//! row, drops every instance's copy as soon as it commits.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use time::OffsetDateTime;
use tower_sessions::session::{Id, Record};
use tower_sessions::session_store::{self, SessionStore};
use tower_sessions_sqlx_store::PostgresStore;

use crate::db::shared_cache::{Coherence, SharedCache};

/// Sessions kept in memory at most (about a kilobyte each).
const CAPACITY: u64 = 100_000;

/// An unused copy is let go after this; the session itself lives on in the database.
const IDLE: Duration = Duration::from_secs(15 * 60);

/// tower-sessions' PostgreSQL store with a coherent in-memory copy in front of its reads.
#[derive(Debug, Clone)]
pub struct CachedSessionStore {
    database: PostgresStore,
    copies: SharedCache<Id, Record>,
}

impl CachedSessionStore {
    pub fn new(database: PostgresStore, coherence: Arc<Coherence>) -> Self {
        Self {
            database,
            copies: SharedCache::new(coherence, CAPACITY, IDLE),
        }
    }

    /// The copies, for the listener that drops them when their rows change.
    pub fn copies(&self) -> SharedCache<Id, Record> {
        self.copies.clone()
    }
}

#[async_trait]
impl SessionStore for CachedSessionStore {
    async fn create(&self, record: &mut Record) -> session_store::Result<()> {
        self.database.create(record).await
    }

    async fn save(&self, record: &Record) -> session_store::Result<()> {
        self.database.save(record).await?;
        self.copies.forget(&record.id);
        Ok(())
    }

    async fn load(&self, id: &Id) -> session_store::Result<Option<Record>> {
        if let Some(record) = self.copies.get(id) {
            // The same rule as the database's read: an expired session is no session.
            if record.expiry_date > OffsetDateTime::now_utc() {
                return Ok(Some(record));
            }
            self.copies.forget(id);
            return Ok(None);
        }
        let ticket = self.copies.start_load();
        let record = self.database.load(id).await?;
        if let Some(record) = &record {
            self.copies.store(*id, record.clone(), ticket);
        }
        Ok(record)
    }

    async fn delete(&self, id: &Id) -> session_store::Result<()> {
        self.database.delete(id).await?;
        self.copies.forget(id);
        Ok(())
    }
}
