//! In-process caches that agree across portal instances sharing one database.
//!
//! A row that a cache copies (a session, a user and their memberships) has a trigger that sends
//! `pg_notify('portal_cache', 'KIND:KEY')` when it changes (see the migration
//! `20261202000901_cache_invalidation.sql`), so every instance's listener ([`listen`]) drops its
//! copy as soon as the change commits, whichever instance, CLI or job made it.
//!
//! Two races are closed here rather than by a time limit:
//! - A copy read from the database just before a change, and stored after that change's notice
//!   was handled, would outlive the notice. Each load remembers its cache's epoch when it
//!   started; every notice moves that epoch on, and a copy whose load overlapped a notice is
//!   dropped. Each cache has its own epoch, so a busy cache's notices never stop another from
//!   keeping what it loads.
//! - Notices sent while the listener is disconnected are lost. While it is not listening, every
//!   cache is bypassed (each read goes to the database) and holds nothing; it is emptied again
//!   when listening resumes.

use std::hash::Hash;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use moka::sync::Cache;
use sqlx::postgres::PgListener;
use sqlx::PgPool;

/// The notification channel the triggers send to.
pub const CHANNEL: &str = "portal_cache";

/// Whether this instance hears changes.
#[derive(Debug, Default)]
pub struct Coherence {
    listening: AtomicBool,
}

impl Coherence {
    pub fn is_listening(&self) -> bool {
        self.listening.load(Ordering::SeqCst)
    }
}

/// A load in progress: the epoch it started in.
#[derive(Debug, Clone, Copy)]
pub struct LoadTicket(u64);

/// Copies of database rows, trusted only while this instance hears every change to them.
#[derive(Debug, Clone)]
pub struct SharedCache<K, V>
where
    K: Hash + Eq + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    entries: Cache<K, V>,
    coherence: Arc<Coherence>,
    /// How many changes this cache has heard of.
    epoch: Arc<AtomicU64>,
}

impl<K, V> SharedCache<K, V>
where
    K: Hash + Eq + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    /// `idle` bounds how long an unused copy takes memory; freshness comes from the notices.
    pub fn new(coherence: Arc<Coherence>, capacity: u64, idle: Duration) -> Self {
        Self {
            entries: Cache::builder()
                .max_capacity(capacity)
                .time_to_idle(idle)
                .build(),
            coherence,
            epoch: Arc::default(),
        }
    }

    /// For copies that also go stale with time or with changes that send no notice (usage
    /// recorded by another instance): each copy is kept at most `ttl`.
    pub fn expiring(coherence: Arc<Coherence>, capacity: u64, ttl: Duration) -> Self {
        Self {
            entries: Cache::builder()
                .max_capacity(capacity)
                .time_to_live(ttl)
                .build(),
            coherence,
            epoch: Arc::default(),
        }
    }

    pub fn get(&self, key: &K) -> Option<V> {
        if !self.coherence.is_listening() {
            return None;
        }
        self.entries.get(key)
    }

    /// Call before reading the row from the database.
    pub fn start_load(&self) -> LoadTicket {
        LoadTicket(self.epoch())
    }

    fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::SeqCst)
    }

    fn moved(&self) {
        self.epoch.fetch_add(1, Ordering::SeqCst);
    }

    /// Keeps what a load read, unless a change was heard since it started. The epoch is checked
    /// after storing: a notice handled between the check and the store would otherwise leave a
    /// stale copy behind (a notice moves the epoch before it drops entries).
    pub fn store(&self, key: K, value: V, ticket: LoadTicket)
    where
        K: Clone,
    {
        if !self.coherence.is_listening() || self.epoch() != ticket.0 {
            return;
        }
        self.entries.insert(key.clone(), value);
        if self.epoch() != ticket.0 {
            self.entries.invalidate(&key);
        }
    }

    /// Drops the copy of one row (this instance changed it, or heard that another did).
    pub fn forget(&self, key: &K) {
        self.moved();
        self.entries.invalidate(key);
    }

    /// Drops the copy of one row without distrusting loads in flight: for frequent changes whose
    /// staleness an [`expiring`](Self::expiring) cache's time limit already bounds (this
    /// instance's own usage writes), where moving the epoch at every change would keep the
    /// cache from ever keeping a copy under load.
    pub fn drop_copy(&self, key: &K) {
        self.entries.invalidate(key);
    }

    pub fn forget_all(&self) {
        self.moved();
        self.entries.invalidate_all();
    }
}

/// What a cache does with the notices of one kind.
pub trait Forgets: Send + Sync {
    /// A notice `KIND:key` arrived. A key that does not parse drops everything, to be safe.
    fn forget_named(&self, key: &str);
    fn forget_everything(&self);
}

impl<K, V> Forgets for SharedCache<K, V>
where
    K: Hash + Eq + Send + Sync + std::str::FromStr + 'static,
    V: Clone + Send + Sync + 'static,
{
    fn forget_named(&self, key: &str) {
        match key.parse::<K>() {
            Ok(key) => self.forget(&key),
            Err(_) => self.forget_all(),
        }
    }

    fn forget_everything(&self) {
        self.forget_all();
    }
}

/// Who hears the notices of one kind, and whether one notice concerns one key or all of them.
pub enum Route {
    /// `KIND:KEY` drops the copy of `KEY`.
    Key(&'static str, Arc<dyn Forgets>),
    /// `KIND:...` drops every copy (rare changes that touch many copies).
    All(&'static str, Arc<dyn Forgets>),
}

impl Route {
    fn target(&self) -> &Arc<dyn Forgets> {
        match self {
            Route::Key(_, target) | Route::All(_, target) => target,
        }
    }
}

/// Hands one notice to the caches it concerns.
fn deliver(routes: &[Route], payload: &str) {
    let Some((kind, key)) = payload.split_once(':') else {
        return;
    };
    for route in routes {
        match route {
            Route::Key(name, target) if *name == kind => target.forget_named(key),
            Route::All(name, target) if *name == kind => target.forget_everything(),
            _ => {}
        }
    }
}

fn forget_everything(routes: &[Route]) {
    for route in routes {
        route.target().forget_everything();
    }
}

/// Listens for changes until the process ends, reconnecting after a lost connection.
pub async fn listen(pool: PgPool, coherence: Arc<Coherence>, routes: Vec<Route>) {
    let mut backoff = Duration::from_millis(200);
    loop {
        match subscribe(&pool).await {
            Ok(mut listener) => {
                // Copies made before the connection (or during an outage) are not trusted.
                forget_everything(&routes);
                coherence.listening.store(true, Ordering::SeqCst);
                backoff = Duration::from_millis(200);
                loop {
                    match listener.try_recv().await {
                        Ok(Some(notice)) => deliver(&routes, notice.payload()),
                        Ok(None) => break,
                        Err(e) => {
                            tracing::warn!(error = %e, "cache notices interrupted");
                            break;
                        }
                    }
                }
                // Notices may be lost from here on: stop trusting copies at once.
                coherence.listening.store(false, Ordering::SeqCst);
                forget_everything(&routes);
            }
            Err(e) => tracing::warn!(error = %e, "cannot listen for cache notices yet"),
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

async fn subscribe(pool: &PgPool) -> sqlx::Result<PgListener> {
    let mut listener = PgListener::connect_with(pool).await?;
    listener.listen(CHANNEL).await?;
    Ok(listener)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cache() -> (Arc<Coherence>, SharedCache<u32, &'static str>) {
        let coherence = Arc::new(Coherence::default());
        let cache = SharedCache::new(coherence.clone(), 100, Duration::from_secs(60));
        (coherence, cache)
    }

    #[test]
    fn nothing_is_kept_or_served_while_not_listening() {
        let (coherence, cache) = cache();
        let ticket = cache.start_load();
        cache.store(1, "one", ticket);
        assert_eq!(cache.get(&1), None);
        coherence.listening.store(true, Ordering::SeqCst);
        assert_eq!(cache.get(&1), None);
        let ticket = cache.start_load();
        cache.store(1, "one", ticket);
        assert_eq!(cache.get(&1), Some("one"));
        coherence.listening.store(false, Ordering::SeqCst);
        assert_eq!(cache.get(&1), None);
    }

    #[test]
    fn a_load_that_overlapped_a_change_is_not_kept() {
        let (coherence, cache) = cache();
        coherence.listening.store(true, Ordering::SeqCst);
        let ticket = cache.start_load();
        // Another key changed while this load was reading: the read may predate its own change's
        // notice too, so it is not kept.
        cache.forget(&2);
        cache.store(1, "stale?", ticket);
        assert_eq!(cache.get(&1), None);
    }

    #[test]
    fn notices_drop_the_copies_they_name() {
        let (coherence, cache) = cache();
        coherence.listening.store(true, Ordering::SeqCst);
        for key in [1, 2] {
            let ticket = cache.start_load();
            cache.store(key, "v", ticket);
        }
        let cache = Arc::new(cache);
        let routes = vec![
            Route::Key("n", cache.clone() as Arc<dyn Forgets>),
            Route::All("all", cache.clone() as Arc<dyn Forgets>),
        ];
        deliver(&routes, "n:1");
        assert_eq!(cache.get(&1), None);
        assert_eq!(cache.get(&2), Some("v"));
        deliver(&routes, "other:2");
        deliver(&routes, "no colon");
        assert_eq!(cache.get(&2), Some("v"));
        deliver(&routes, "n:not-a-number");
        assert_eq!(cache.get(&2), None, "an unreadable key drops everything");
        let ticket = cache.start_load();
        cache.store(3, "v", ticket);
        deliver(&routes, "all:x");
        assert_eq!(cache.get(&3), None);
    }
}
