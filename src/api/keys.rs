//! API keys: created for one organization, shown once, stored as a SHA-256 of the secret (the
//! secret is 40 random characters, so a slow hash would add nothing but latency to every call).
//! [`ApiCaller`] authenticates `Authorization: Bearer KEY`; verified keys are kept in memory
//! ([`crate::db::shared_cache`]): revoking a key or changing its scopes, on any instance or from
//! the command line, sends a notice that drops every instance's copy at once, and while an
//! instance cannot hear notices it asks the database every time. A wrong key costs a read and no
//! write, and wrong keys are throttled per client address ([`super::key_misses`]).
//! Each key holds the scopes it was made with ([`super::scopes`]), kept with it in the cache.

use std::sync::Arc;
use std::time::Duration;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, StatusCode};
use chrono::{DateTime, Utc};
use rand::distr::{Alphanumeric, SampleString};
use sha2::{Digest, Sha256};
use sqlx::PgExecutor;
use subtle::ConstantTimeEq;
use uuid::Uuid;

use super::scopes::Scopes;
use super::ApiError;
use crate::db::shared_cache::{Coherence, Route, SharedCache};
use crate::web::state::AppState;

/// Every key starts with this, so a leaked one is easy to recognise (and to scan for).
pub const KEY_PREFIX: &str = "bpk_";

/// Random characters after the prefix.
const KEY_RANDOM_LEN: usize = 40;

/// How long a verified key is kept before it is looked up again. Revocations do not wait for
/// this (they send a notice); it bounds how stale the key's "last used" time on the keys page is.
const CACHE_TTL: Duration = Duration::from_secs(60);

/// Who is calling the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApiCaller {
    pub key_id: Uuid,
    pub org_id: Uuid,
    /// What the key may do (see [`super::scopes`]).
    pub scopes: Scopes,
}

/// The SHA-256 of a key's secret: what is stored, what the cache is keyed by, and what a
/// change notice names (`api_key:HEX`, see the migration `20261203000002_api_cache_notices.sql`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeyDigest([u8; 32]);

impl std::str::FromStr for KeyDigest {
    type Err = hex::FromHexError;

    fn from_str(hex_digest: &str) -> Result<Self, Self::Err> {
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(hex_digest, &mut bytes)?;
        Ok(Self(bytes))
    }
}

/// Verified keys by the hash of their secret.
#[derive(Clone)]
pub struct KeyCache {
    known: SharedCache<KeyDigest, ApiCaller>,
}

impl KeyCache {
    pub fn new(coherence: Arc<Coherence>) -> Self {
        Self {
            known: SharedCache::expiring(coherence, 100_000, CACHE_TTL),
        }
    }

    /// The notices that drop copies: one key's (`api_key:HEX`).
    pub fn route(&self) -> Route {
        Route::Key("api_key", Arc::new(self.known.clone()))
    }

    pub fn forget_all(&self) {
        self.known.forget_all();
    }
}

fn digest(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

/// A new key's secret (shown once) and what is stored of it.
pub struct NewKey {
    pub secret: String,
    pub prefix: String,
    pub hash: [u8; 32],
}

pub fn generate() -> NewKey {
    let secret = format!(
        "{KEY_PREFIX}{}",
        Alphanumeric.sample_string(&mut rand::rng(), KEY_RANDOM_LEN)
    );
    NewKey {
        prefix: secret[..KEY_PREFIX.len() + 6].to_owned(),
        hash: digest(&secret),
        secret,
    }
}

/// Creates a key for the organization with every scope and returns its secret, which is not
/// stored.
pub async fn create(
    db: impl PgExecutor<'_>,
    org_id: Uuid,
    name: &str,
    created_by: Option<Uuid>,
) -> sqlx::Result<String> {
    create_with_scopes(db, org_id, name, created_by, Scopes::all()).await
}

/// Creates a key that holds only `scopes` and returns its secret, which is not stored.
pub async fn create_with_scopes(
    db: impl PgExecutor<'_>,
    org_id: Uuid,
    name: &str,
    created_by: Option<Uuid>,
    scopes: Scopes,
) -> sqlx::Result<String> {
    let key = generate();
    sqlx::query(
        "INSERT INTO api_keys (id, org_id, name, prefix, secret_hash, created_by, scopes)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(Uuid::new_v4())
    .bind(org_id)
    .bind(name)
    .bind(&key.prefix)
    .bind(&key.hash[..])
    .bind(created_by)
    .bind(scopes.names())
    .execute(db)
    .await?;
    Ok(key.secret)
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct KeyRow {
    pub id: Uuid,
    pub name: String,
    pub prefix: String,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub created_by_email: Option<String>,
    /// The scope names the key holds.
    pub scopes: Vec<String>,
}

pub async fn list(db: impl PgExecutor<'_>, org_id: Uuid) -> sqlx::Result<Vec<KeyRow>> {
    sqlx::query_as(
        "SELECT k.id, k.name, k.prefix, k.created_at, k.last_used_at, k.revoked_at,
                u.email AS created_by_email, k.scopes
         FROM api_keys k LEFT JOIN users u ON u.id = k.created_by
         WHERE k.org_id = $1 ORDER BY k.revoked_at IS NOT NULL, k.created_at DESC",
    )
    .bind(org_id)
    .fetch_all(db)
    .await
}

/// Revokes one of the organization's keys; false when it has no such live key.
pub async fn revoke(db: impl PgExecutor<'_>, org_id: Uuid, key_id: Uuid) -> sqlx::Result<bool> {
    let done = sqlx::query(
        "UPDATE api_keys SET revoked_at = now()
         WHERE id = $1 AND org_id = $2 AND revoked_at IS NULL",
    )
    .bind(key_id)
    .bind(org_id)
    .execute(db)
    .await?;
    Ok(done.rows_affected() == 1)
}

fn unauthorized(message: &str) -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
}

/// The outcome of authenticating a request's key, left in its extensions by the API's guard
/// ([`super::guard`]) so the layers after it and the handler's [`ApiCaller`] share one lookup.
#[derive(Debug, Clone)]
pub struct Authenticated(pub Result<ApiCaller, ApiError>);

impl FromRequestParts<AppState> for ApiCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        if let Some(Authenticated(outcome)) = parts.extensions.get::<Authenticated>() {
            return outcome.clone();
        }
        authenticate(parts, state).await
    }
}

/// Authenticates `Authorization: Bearer KEY`: from this instance's cache, else by one lookup (and
/// the key's `last_used_at` is updated, so at most once per cache TTL).
pub async fn authenticate(parts: &Parts, state: &AppState) -> Result<ApiCaller, ApiError> {
    let header = parts
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| {
            unauthorized("Send your API key as `Authorization: Bearer KEY`. Owners create keys on the organization's API keys page.")
        })?;
    let secret = header
        .strip_prefix("Bearer ")
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| unauthorized("The Authorization header must be `Bearer KEY`."))?;
    let hash = digest(secret);
    let cache = &state.api.keys.known;
    if let Some(caller) = cache.get(&KeyDigest(hash)) {
        return Ok(caller);
    }
    let ticket = cache.start_load();
    // An address that has sent too many wrong keys is refused before any query.
    let ip = client_ip(parts);
    if let Some(wait) = state.api.key_misses.wait(ip) {
        return Err(throttled(wait));
    }
    // Every key is issued in one shape ([`generate`]); anything else is a miss without a query.
    if !looks_like_a_key(secret) {
        state.api.key_misses.missed(ip);
        return Err(unauthorized(
            "This API key is not valid or has been revoked.",
        ));
    }
    // Looked up by the hash, so the lookup's timing tells nothing about the secret; the stored
    // hash is compared again in constant time all the same. The same statement marks a good key
    // used, so last-used costs no second round trip.
    let found: Option<(Uuid, Uuid, Vec<u8>, Vec<String>)> = sqlx::query_as(
        "UPDATE api_keys SET last_used_at = now()
         WHERE secret_hash = $1 AND revoked_at IS NULL
         RETURNING id, org_id, secret_hash, scopes",
    )
    .bind(&hash[..])
    .fetch_optional(&state.db)
    .await?;
    let Some((key_id, org_id, _, scopes)) =
        found.filter(|(_, _, stored, _)| bool::from(stored.as_slice().ct_eq(&hash[..])))
    else {
        // A miss writes nothing (the UPDATE matched no row); it only counts against the address.
        state.api.key_misses.missed(ip);
        return Err(unauthorized(
            "This API key is not valid or has been revoked.",
        ));
    };
    let caller = ApiCaller {
        key_id,
        org_id,
        scopes: Scopes::from_names(&scopes),
    };
    cache.store(KeyDigest(hash), caller, ticket);
    Ok(caller)
}

/// Whether `secret` has the shape of the keys [`generate`] issues.
fn looks_like_a_key(secret: &str) -> bool {
    secret.len() == KEY_PREFIX.len() + KEY_RANDOM_LEN
        && secret.starts_with(KEY_PREFIX)
        && secret[KEY_PREFIX.len()..]
            .bytes()
            .all(|b| b.is_ascii_alphanumeric())
}

/// The peer address of the connection (the portal takes no forwarding headers on trust).
fn client_ip(parts: &Parts) -> IpAddr {
    parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |c| c.0.ip())
}

/// 429 with `Retry-After` (whole seconds, rounded up) and the API's error shape.
fn throttled(wait: std::time::Duration) -> ApiError {
    let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    let mut error = ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "too_many_wrong_keys",
        format!(
            "Too many wrong API keys from this address. Retry in {seconds} s with a valid key."
        ),
    );
    error.retry_after = HeaderValue::from_str(&seconds.max(1).to_string()).ok();
    error
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_long_random_and_hashed() {
        let a = generate();
        let b = generate();
        assert_ne!(a.secret, b.secret);
        assert!(a.secret.starts_with(KEY_PREFIX));
        assert_eq!(a.secret.len(), KEY_PREFIX.len() + 40);
        assert!(a.secret.starts_with(&a.prefix));
        assert_eq!(a.hash, digest(&a.secret));
        assert_ne!(a.hash, b.hash);
        assert!(looks_like_a_key(&a.secret));
        assert!(!looks_like_a_key("bpk_short"));
        assert!(!looks_like_a_key(&format!("xxx_{}", &a.secret[4..])));
        assert!(!looks_like_a_key(&format!(
            "{}\u{0}",
            &a.secret[..a.secret.len() - 1]
        )));
    }
}
