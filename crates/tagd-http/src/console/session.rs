//! Console sessions: after a sign-in with the admin token, a random session id in an HttpOnly,
//! SameSite=Strict cookie, and a CSRF token of the session that every form carries.
//!
//! Sessions live in this process's memory: a restart, or another tagd server, asks for the
//! admin token again. Nothing derived from the database can forge one (a key kept in the
//! database would let anyone who can read it sign in).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use tagd_core::secrets::{generate_secret, sha256_hex};

/// The cookie's name.
pub const COOKIE: &str = "tagd_console";

/// How long a session lasts after sign-in.
pub const LIFETIME: Duration = Duration::from_secs(8 * 60 * 60);

/// Most sessions kept at once; past it the oldest go first.
const MAX_SESSIONS: usize = 1_000;

/// A signed-in operator's session.
#[derive(Clone, Debug)]
pub struct Session {
    /// Carried by every form and htmx request of the session, compared with what it sends.
    pub csrf: String,
    expires: Instant,
    /// A secret to show on the next page only (after an action that made one, the browser
    /// is redirected, so a reload neither repeats the action nor shows the secret again).
    flash: Option<Flash>,
}

/// A secret made by an action, shown once.
#[derive(Clone, Debug)]
pub struct Flash {
    pub what: &'static str,
    pub label: &'static str,
    pub secret: String,
    pub app_id: Option<String>,
}

/// The sessions of this process, keyed by the SHA-256 of their ids (a memory dump shows no
/// usable cookie).
#[derive(Default)]
pub struct Sessions {
    live: Mutex<HashMap<String, Session>>,
}

impl Sessions {
    /// A new session; answers its id (the cookie's value) and the session.
    pub fn open(&self) -> (String, Session) {
        let id = generate_secret();
        let session = Session {
            csrf: generate_secret(),
            expires: Instant::now() + LIFETIME,
            flash: None,
        };
        if let Ok(mut live) = self.live.lock() {
            let now = Instant::now();
            live.retain(|_, s| s.expires > now);
            if live.len() >= MAX_SESSIONS {
                let oldest = live
                    .iter()
                    .min_by_key(|(_, s)| s.expires)
                    .map(|(k, _)| k.clone());
                if let Some(oldest) = oldest {
                    live.remove(&oldest);
                }
            }
            live.insert(sha256_hex(&id), session.clone());
        }
        (id, session)
    }

    /// The live session of the cookie value `id`.
    pub fn find(&self, id: &str) -> Option<Session> {
        let live = self.live.lock().ok()?;
        live.get(&sha256_hex(id))
            .filter(|s| s.expires > Instant::now())
            .cloned()
    }

    /// Keeps `flash` for the session's next page.
    pub fn set_flash(&self, id: &str, flash: Flash) {
        if let Ok(mut live) = self.live.lock() {
            if let Some(session) = live.get_mut(&sha256_hex(id)) {
                session.flash = Some(flash);
            }
        }
    }

    /// The session's flash, taken (shown once).
    pub fn take_flash(&self, id: &str) -> Option<Flash> {
        let mut live = self.live.lock().ok()?;
        live.get_mut(&sha256_hex(id))?.flash.take()
    }

    /// Ends the session `id` (sign-out).
    pub fn close(&self, id: &str) {
        if let Ok(mut live) = self.live.lock() {
            live.remove(&sha256_hex(id));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_is_found_by_its_id_until_it_is_closed() {
        let sessions = Sessions::default();
        let (id, session) = sessions.open();
        assert_eq!(sessions.find(&id).map(|s| s.csrf), Some(session.csrf));
        assert!(sessions.find("another id").is_none());
        sessions.close(&id);
        assert!(sessions.find(&id).is_none());
    }
}
