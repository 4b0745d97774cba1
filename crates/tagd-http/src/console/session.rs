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

/// A signed-in operator's session. No `Debug`: it holds the CSRF token and, for a moment, a
/// secret.
#[derive(Clone)]
pub struct Session {
    /// Carried by every form and htmx request of the session, compared with what it sends.
    pub csrf: String,
    expires: Instant,
    /// What an action left for the page it redirected to (so a reload neither repeats the
    /// action nor shows a secret again).
    flash: Option<Flash>,
}

/// What an action leaves for one page, shown there once: a notice and maybe a secret it
/// made. Another page (another organization's, in another tab) does not take it.
#[derive(Clone)]
pub struct Flash {
    /// The path of the page it is for.
    pub path: String,
    pub notice: String,
    pub secret: Option<Secret>,
}

/// A secret shown once.
#[derive(Clone)]
pub struct Secret {
    pub label: &'static str,
    pub value: String,
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

    /// The live session of the cookie value `id` (an expired one is dropped, with anything
    /// it still held).
    pub fn find(&self, id: &str) -> Option<Session> {
        let mut live = self.live.lock().ok()?;
        let key = sha256_hex(id);
        if live.get(&key)?.expires <= Instant::now() {
            live.remove(&key);
            return None;
        }
        live.get(&key).cloned()
    }

    /// Keeps `flash` for the session's next page.
    pub fn set_flash(&self, id: &str, flash: Flash) {
        if let Ok(mut live) = self.live.lock() {
            if let Some(session) = live.get_mut(&sha256_hex(id)) {
                session.flash = Some(flash);
            }
        }
    }

    /// The session's flash for the page at `path`, taken (shown once).
    pub fn take_flash(&self, id: &str, path: &str) -> Option<Flash> {
        let mut live = self.live.lock().ok()?;
        let flash = &mut live.get_mut(&sha256_hex(id))?.flash;
        if flash.as_ref()?.path == path {
            flash.take()
        } else {
            None
        }
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

    #[test]
    fn a_flash_is_taken_once_and_only_by_the_page_it_is_for() {
        let sessions = Sessions::default();
        let (id, _) = sessions.open();
        let flash = Flash {
            path: "/console/orgs/a".into(),
            notice: "made".into(),
            secret: None,
        };
        sessions.set_flash(&id, flash);
        assert!(sessions.take_flash(&id, "/console/orgs/b").is_none());
        let taken = sessions.take_flash(&id, "/console/orgs/a");
        assert_eq!(taken.map(|f| f.notice), Some("made".to_owned()));
        assert!(sessions.take_flash(&id, "/console/orgs/a").is_none());
    }
}
