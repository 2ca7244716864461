//! Who is calling: bearer keys (`Authorization: Bearer <key>`, or
//! `x-api-key`), what each kind may do, and the rate limits (public minting
//! per address; wrong recovery codes per project).
//!
//! Producer keys only ingest; agent keys only read and diagnose. A refused
//! key gets 401 (missing, malformed, unknown, revoked) or 403 (the wrong
//! kind), always with a `nextAction`.

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::ConnectInfo;
use axum::http::{HeaderMap, StatusCode, header};

use crate::loopkit::keys::{self, KeyKind};
use crate::serve::AppState;
use crate::serve::error::ApiError;
use crate::serve::store::{KeyRow, Project};

/// The key a request presents, if any.
pub fn presented_key(headers: &HeaderMap) -> Option<String> {
    if let Some(v) = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) {
        let v = v.trim();
        if let Some((scheme, key)) = v.split_once(' ') {
            if scheme.eq_ignore_ascii_case("bearer") {
                return Some(key.trim().to_string());
            }
        }
        return Some(v.to_string());
    }
    headers.get("x-api-key").and_then(|v| v.to_str().ok()).map(|v| v.trim().to_string())
}

/// Looks a presented key up (format, digest, revocation); any kind.
pub async fn lookup(state: &AppState, key: &str) -> Result<KeyRow, ApiError> {
    if let Err(e) = keys::parse(key) {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "INVALID_KEY",
            format!("the presented key is not a LoopKit key: {e}"),
            "send the producer_key or agent_key exactly as the signup/provision response gave it, as 'Authorization: Bearer <key>'",
        ));
    }
    let digest = keys::digest(key);
    let store = state.store.clone();
    let row = crate::serve::blocking(move || store.key(&digest)).await?;
    let Some(row) = row.filter(|r| keys::ct_eq(&r.digest, &digest)) else {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "UNKNOWN_KEY",
            "no project has this key",
            "check that the key belongs to this server; if you lost your keys, rotate them with POST /v1/recover",
        ));
    };
    if row.revoked {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "KEY_REVOKED",
            format!("this {} key of project {} was revoked by a recovery", row.kind.as_str(), row.project.public_id),
            "use the keys returned by the latest POST /v1/recover",
        ));
    }
    Ok(row)
}

/// Authenticates a request that needs a key of `kind`; returns its project.
pub async fn require(state: &AppState, headers: &HeaderMap, kind: KeyKind, action: &str) -> Result<Project, ApiError> {
    let Some(key) = presented_key(headers) else {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "AUTH_REQUIRED",
            format!("{action} needs the project's {} key", kind.as_str()),
            format!(
                "send 'Authorization: Bearer <{}_key>'; no key yet? POST /v1/provision or POST /v1/signup",
                kind.as_str()
            ),
        ));
    };
    let row = lookup(state, &key).await?;
    if row.kind != kind {
        let (can, use_) = match row.kind {
            KeyKind::Producer => ("producer keys can only ingest (POST /v1/traces)", "agent_key"),
            KeyKind::Agent => ("agent keys can only read and diagnose", "producer_key"),
        };
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "WRONG_KEY_KIND",
            format!("{action} needs the {} key, and {can}", kind.as_str()),
            format!("send the project's {use_} for this request"),
        ));
    }
    Ok(row.project)
}

/// The client address of a request, when the server knows it (it does not
/// under `oneshot` in tests, where every caller shares one bucket).
pub struct ClientIp(pub Option<IpAddr>);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(ClientIp(parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip())))
    }
}

/// A sliding-window rate limit per key: at most `limit` events per
/// `period` for each key. Used twice, with separate buckets: public minting
/// per client address ([`AppState::mint`]) and wrong recovery codes per
/// project ([`AppState::recovery`]), so that exhausting one never blocks
/// the other.
///
/// Memory is bounded: past [`Limiter::MAX_KEYS`] keys, keys whose events
/// have all expired are dropped, and then the key idle longest.
pub struct Limiter<K> {
    limit: usize,
    period: Duration,
    seen: Mutex<HashMap<K, VecDeque<Instant>>>,
}

impl<K: std::hash::Hash + Eq + Clone> Limiter<K> {
    pub const MAX_KEYS: usize = 10_000;

    pub fn new(limit: usize, period: Duration) -> Limiter<K> {
        Limiter { limit, period, seen: Mutex::new(HashMap::new()) }
    }

    /// Counts one event for `key`, or says how many seconds to wait.
    pub fn check(&self, key: &K) -> Result<(), u64> {
        self.would_allow(key)?;
        let now = Instant::now();
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        if !seen.contains_key(key) && seen.len() >= Self::MAX_KEYS {
            seen.retain(|_, q| q.back().is_some_and(|t| now.duration_since(*t) < self.period));
            if seen.len() >= Self::MAX_KEYS {
                let oldest = seen.iter().min_by_key(|(_, q)| q.back().copied()).map(|(k, _)| k.clone());
                if let Some(k) = oldest {
                    seen.remove(&k);
                }
            }
        }
        seen.entry(key.clone()).or_default().push_back(now);
        Ok(())
    }

    /// Whether one more event for `key` is allowed now, without counting it.
    pub fn would_allow(&self, key: &K) -> Result<(), u64> {
        let now = Instant::now();
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        let Some(q) = seen.get_mut(key) else { return Ok(()) };
        while q.front().is_some_and(|t| now.duration_since(*t) >= self.period) {
            q.pop_front();
        }
        if q.len() >= self.limit {
            let oldest = q.front().copied().unwrap_or(now);
            let wait = self.period.saturating_sub(now.duration_since(oldest));
            return Err(wait.as_secs().max(1));
        }
        Ok(())
    }
}

pub fn rate_limited(retry_after: u64) -> ApiError {
    ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "RATE_LIMITED",
        "too many projects minted from this address",
        format!("wait {retry_after} s and retry, or re-run POST /v1/provision with your existing key to resume instead of minting"),
    )
    .retry_after(retry_after)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mint_limit_is_per_address() {
        let l = Limiter::new(2, Duration::from_secs(60));
        let a = Some(IpAddr::from([127, 0, 0, 1]));
        let b = Some(IpAddr::from([127, 0, 0, 2]));
        assert!(l.check(&a).is_ok());
        assert!(l.would_allow(&a).is_ok());
        assert!(l.check(&a).is_ok());
        let wait = l.check(&a).unwrap_err();
        assert!((1..=60).contains(&wait));
        assert_eq!(l.would_allow(&a), Err(wait));
        assert!(l.check(&b).is_ok());
    }

    #[test]
    fn the_limiter_keeps_a_bounded_number_of_keys() {
        let l = Limiter::new(1, Duration::from_secs(60));
        for i in 0..(Limiter::<u32>::MAX_KEYS as u32 + 50) {
            assert!(l.check(&i).is_ok());
        }
        assert!(l.seen.lock().unwrap().len() <= Limiter::<u32>::MAX_KEYS);
    }

    #[test]
    fn keys_come_from_bearer_or_x_api_key() {
        let mut h = HeaderMap::new();
        assert_eq!(presented_key(&h), None);
        h.insert("x-api-key", "k1".parse().unwrap());
        assert_eq!(presented_key(&h).as_deref(), Some("k1"));
        h.insert(header::AUTHORIZATION, "bearer  k2".parse().unwrap());
        assert_eq!(presented_key(&h).as_deref(), Some("k2"));
    }
}
