//! Dashboard sessions: made by logging in with an API key, kept in server
//! memory (a restart logs everyone out), named by a random id the browser
//! holds in an `HttpOnly`, `SameSite=Strict` cookie. Each use re-authenticates
//! the session's key, so a revoked or expired key or a suspended tenant ends
//! the session at once. Each session has a CSRF token that every state
//! change must present; the dashboard's pages and the API (for the
//! dashboard's scripts) both check it.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use subtle::ConstantTimeEq;

use crate::error::{CoreError, Result};
use crate::service::Service;
use crate::tenancy::Caller;

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "ss_session";
/// The header a script sends the CSRF token in.
pub const CSRF_HEADER: &str = "x-csrf-token";
/// A session unused this long ends.
const IDLE: Duration = Duration::from_secs(2 * 3600);
/// A session ends this long after login, used or not.
pub const MAX_AGE: Duration = Duration::from_secs(12 * 3600);
/// Sessions kept at most (the least recently used go first).
const MAX_SESSIONS: usize = 10_000;

struct Session {
    key: String,
    csrf: String,
    created: Instant,
    last_seen: Instant,
}

/// Every live session.
#[derive(Default)]
pub struct Sessions {
    by_id: Mutex<HashMap<String, Session>>,
}

/// 32 random bytes, hex.
pub fn random_token() -> String {
    let mut b = [0u8; 32];
    // The OS random source failing is not something to go on through.
    getrandom::getrandom(&mut b).expect("the OS random source works");
    hex::encode(b)
}

/// Constant-time comparison of two tokens.
pub fn same_token(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

impl Sessions {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Session>> {
        self.by_id.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn create(&self, key: String) -> String {
        let id = random_token();
        let now = Instant::now();
        let mut all = self.lock();
        all.retain(|_, s| now.duration_since(s.last_seen) < IDLE && now.duration_since(s.created) < MAX_AGE);
        if all.len() >= MAX_SESSIONS {
            if let Some(oldest) = all.iter().min_by_key(|(_, s)| s.last_seen).map(|(k, _)| k.clone()) {
                all.remove(&oldest);
            }
        }
        all.insert(id.clone(), Session { key, csrf: random_token(), created: now, last_seen: now });
        id
    }

    /// The key and CSRF token of a live session, marking it used.
    fn touch(&self, id: &str) -> Option<(String, String)> {
        let now = Instant::now();
        let mut all = self.lock();
        let s = all.get_mut(id)?;
        if now.duration_since(s.last_seen) >= IDLE || now.duration_since(s.created) >= MAX_AGE {
            all.remove(id);
            return None;
        }
        s.last_seen = now;
        Some((s.key.clone(), s.csrf.clone()))
    }

    fn remove(&self, id: &str) {
        self.lock().remove(id);
    }
}

/// A session in use: who it authenticates as, and its CSRF token.
pub struct SessionCaller {
    pub caller: Caller,
    pub csrf: String,
}

impl Service {
    /// Logs in with `key`: a new session's id, if the key authenticates and
    /// its tenant's plan includes the dashboard.
    pub fn login(&self, key: &str, remote: Option<String>) -> Result<String> {
        let caller = self.authenticate(Some(&format!("Bearer {key}")), remote)?;
        dashboard_allowed(&caller)?;
        Ok(self.inner.sessions.create(key.to_string()))
    }

    /// Ends a session.
    pub fn logout(&self, session: &str) {
        self.inner.sessions.remove(session);
    }

    /// The caller a session authenticates as. With `csrf` given (a state
    /// change), it must be the session's token.
    pub fn authenticate_session(
        &self,
        session: &str,
        csrf: Option<Option<&str>>,
        remote: Option<String>,
    ) -> Result<SessionCaller> {
        let (key, token) = self
            .inner
            .sessions
            .touch(session)
            .ok_or_else(|| CoreError::Unauthenticated("the dashboard session has ended; log in again".into()))?;
        if let Some(presented) = csrf {
            if !presented.is_some_and(|p| same_token(p, &token)) {
                return Err(CoreError::Forbidden(
                    "this request did not carry the page's security token (CSRF); reload the page and try again".into(),
                ));
            }
        }
        match self.authenticate(Some(&format!("Bearer {key}")), remote).and_then(|c| dashboard_allowed(&c).map(|_| c)) {
            Ok(caller) => Ok(SessionCaller { caller, csrf: token }),
            Err(e) => {
                self.inner.sessions.remove(session);
                Err(e)
            }
        }
    }
}

/// The plan's `dashboard` feature (a tenant moved to a plan without it is
/// logged out on its next page).
fn dashboard_allowed(caller: &Caller) -> Result<()> {
    caller.require_feature(caller.tenant.limits()?.dashboard, "the web dashboard")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_are_created_found_and_removed() {
        let s = Sessions::default();
        let id = s.create("ssk_x".into());
        assert_eq!(id.len(), 64);
        let (key, csrf) = s.touch(&id).unwrap();
        assert_eq!(key, "ssk_x");
        assert_eq!(csrf.len(), 64);
        assert!(s.touch("nope").is_none());
        s.remove(&id);
        assert!(s.touch(&id).is_none());
    }

    #[test]
    fn tokens_compare_in_full() {
        assert!(same_token("abc", "abc"));
        assert!(!same_token("abc", "abd"));
        assert!(!same_token("abc", "ab"));
    }
}
