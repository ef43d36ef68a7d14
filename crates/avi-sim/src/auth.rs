//! Authentication as the controller does it: HTTP basic (switchable), session login with the
//! `csrftoken`, `avi-sessionid` and `sessionid` cookies, idle and absolute session expiry on
//! the simulated clock, CSRF checks on writes, logout.

use std::collections::HashMap;

use base64::Engine as _;

use crate::http::{Request, Response};
use crate::scenario::User;

/// The body of every "who are you?" 401 (missing, unknown or expired session), as Django REST
/// framework words it.
pub(crate) const NOT_AUTHENTICATED: &str = "Authentication credentials were not provided.";
/// The body of a failed login or failed basic auth.
pub(crate) const INVALID_CREDENTIALS: &str = "Invalid credentials";
/// The (bare string) body of a CSRF failure, as recorded from a 20.1 controller.
pub(crate) const CSRF_FAILED: &str = "CSRF token missing or incorrect.";

/// The auth settings that can change at run time.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct AuthSettings {
    pub basic_auth: bool,
    pub basic_auth_disabled_status: u16,
    pub idle_timeout: f64,
    pub max_age: f64,
    pub require_referer: bool,
}

/// A logged-in session.
#[derive(Clone)]
struct Session {
    username: String,
    csrf: String,
    created: f64,
    last_seen: f64,
}

/// Who a request is, once authenticated.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Principal {
    pub username: String,
    /// Tenants the user may use (`None`: all); the first is the default.
    pub tenants: Option<Vec<String>>,
    /// Whether basic auth (rather than a session) authenticated it.
    pub basic: bool,
    /// The session id, for logout.
    pub session: Option<String>,
}

/// Users and sessions.
pub(crate) struct AuthState {
    users: Vec<User>,
    sessions: HashMap<String, Session>,
}

impl std::fmt::Debug for AuthState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthState")
            .field("users", &self.users)
            .field("sessions", &self.sessions.len())
            .finish()
    }
}

/// A fresh random token (session id, CSRF token): 32 hex characters.
fn token() -> String {
    let bytes: [u8; 16] = rand::random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Compares without an early exit, so a timing side channel tells nothing about a password.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

impl AuthState {
    pub fn new(users: Vec<User>) -> Self {
        Self {
            users,
            sessions: HashMap::new(),
        }
    }

    fn check(&self, username: &str, secret: &str) -> Option<&User> {
        self.users.iter().find(|u| {
            u.username == username
                && (same(&u.password, secret) || u.tokens.iter().any(|t| same(t, secret)))
        })
    }

    /// Adds or replaces a user (a password change leaves existing sessions alone, as on the
    /// controller).
    pub fn set_user(&mut self, user: User) {
        match self.users.iter_mut().find(|u| u.username == user.username) {
            Some(u) => *u = user,
            None => self.users.push(user),
        }
    }

    /// Removes a user and their sessions; `false` if there was none.
    pub fn remove_user(&mut self, username: &str) -> bool {
        let before = self.users.len();
        self.users.retain(|u| u.username != username);
        self.sessions.retain(|_, s| s.username != username);
        before != self.users.len()
    }

    /// User names, for the admin state.
    pub fn usernames(&self) -> Vec<String> {
        self.users.iter().map(|u| u.username.clone()).collect()
    }

    /// Logs in; returns the session id and CSRF token, or `None` for bad credentials.
    pub fn login(&mut self, username: &str, secret: &str, now: f64) -> Option<(String, String)> {
        self.check(username, secret)?;
        let (sid, csrf) = (token(), token());
        self.sessions.insert(
            sid.clone(),
            Session {
                username: username.to_string(),
                csrf: csrf.clone(),
                created: now,
                last_seen: now,
            },
        );
        Some((sid, csrf))
    }

    /// Ends a session.
    pub fn logout(&mut self, sid: &str) {
        self.sessions.remove(sid);
    }

    /// Ends every session; returns how many there were.
    pub fn expire_all(&mut self) -> usize {
        let n = self.sessions.len();
        self.sessions.clear();
        n
    }

    /// Live sessions.
    pub fn session_count(&self) -> usize {
        self.sessions.len()
    }

    /// The principal of a known user.
    pub fn principal(&self, username: &str, basic: bool, session: Option<String>) -> Principal {
        let tenants = self
            .users
            .iter()
            .find(|u| u.username == username)
            .and_then(|u| u.tenants.clone());
        Principal {
            username: username.to_string(),
            tenants,
            basic,
            session,
        }
    }

    /// Authenticates a request by basic auth or session cookie (and CSRF token on writes).
    pub fn authenticate(
        &mut self,
        req: &Request,
        now: f64,
        settings: &AuthSettings,
    ) -> Result<Principal, Box<Response>> {
        if let Some(auth) = req.header("authorization") {
            let Some(encoded) = auth
                .strip_prefix("Basic ")
                .or_else(|| auth.strip_prefix("basic "))
            else {
                // Only basic credentials travel in this header; tokens go through /login.
                return Err(Box::new(Response::error(401, NOT_AUTHENTICATED)));
            };
            if !settings.basic_auth {
                return Err(Box::new(Response::error(
                    settings.basic_auth_disabled_status,
                    "Basic authentication is not enabled",
                )));
            }
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(encoded.trim())
                .ok()
                .and_then(|b| String::from_utf8(b).ok());
            let Some((user, password)) = decoded.as_deref().and_then(|d| d.split_once(':')) else {
                return Err(Box::new(Response::error(401, INVALID_CREDENTIALS)));
            };
            return match self.check(user, password) {
                Some(u) => {
                    let name = u.username.clone();
                    Ok(self.principal(&name, true, None))
                }
                None => Err(Box::new(Response::error(401, INVALID_CREDENTIALS))),
            };
        }
        let sid = req
            .cookie("avi-sessionid")
            .or_else(|| req.cookie("sessionid"))
            .filter(|s| *s != "None")
            .ok_or_else(|| Box::new(Response::error(401, NOT_AUTHENTICATED)))?
            .to_string();
        let Some(session) = self.sessions.get_mut(&sid) else {
            return Err(Box::new(Response::error(401, NOT_AUTHENTICATED)));
        };
        let idle = settings.idle_timeout > 0.0 && now - session.last_seen > settings.idle_timeout;
        let old = settings.max_age > 0.0 && now - session.created > settings.max_age;
        if idle || old {
            self.sessions.remove(&sid);
            return Err(Box::new(Response::error(401, NOT_AUTHENTICATED)));
        }
        if req.is_unsafe() {
            let token_ok = req
                .header("x-csrftoken")
                .is_some_and(|t| same(t, &session.csrf));
            let referer_ok = !settings.require_referer || req.header("referer").is_some();
            if !token_ok || !referer_ok {
                return Err(Box::new(Response::new(
                    http::StatusCode::UNAUTHORIZED,
                    "text/html; charset=utf-8",
                    CSRF_FAILED,
                )));
            }
        }
        session.last_seen = now;
        let username = session.username.clone();
        Ok(self.principal(&username, false, Some(sid)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn settings() -> AuthSettings {
        AuthSettings {
            basic_auth: true,
            basic_auth_disabled_status: 401,
            idle_timeout: 900.0,
            max_age: 86400.0,
            require_referer: true,
        }
    }

    fn req(method: &str, headers: &[(&str, &str)]) -> Request {
        let mut b = http::Request::builder().method(method).uri("/api/pool");
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        Request::new(b.body(()).unwrap().into_parts().0, Bytes::new(), 0)
    }

    #[test]
    fn sessions_expire_when_idle_and_when_old() {
        let mut auth = AuthState::new(vec![User::new("admin", "pw")]);
        assert!(auth.login("admin", "nope", 0.0).is_none());
        let (sid, _) = auth.login("admin", "pw", 0.0).unwrap();
        let cookie = format!("avi-sessionid={sid}");
        let r = req("GET", &[("cookie", &cookie)]);
        assert!(auth.authenticate(&r, 800.0, &settings()).is_ok());
        assert!(auth.authenticate(&r, 1600.0, &settings()).is_ok());
        assert!(auth.authenticate(&r, 2501.0, &settings()).is_err());
        let (sid, _) = auth.login("admin", "pw", 0.0).unwrap();
        let cookie = format!("sessionid={sid}");
        let r = req("GET", &[("cookie", &cookie)]);
        let mut t = 0.0;
        while t < 87_000.0 {
            t += 600.0;
            let ok = auth.authenticate(&r, t, &settings()).is_ok();
            assert_eq!(ok, t <= 86400.0, "at {t}");
        }
    }

    #[test]
    fn writes_need_the_csrf_token_and_a_referer() {
        let mut auth = AuthState::new(vec![User::new("admin", "pw")]);
        let (sid, csrf) = auth.login("admin", "pw", 0.0).unwrap();
        let cookie = format!("avi-sessionid={sid}; csrftoken={csrf}");
        let s = settings();
        let no_token = req("POST", &[("cookie", &cookie), ("referer", "https://x/")]);
        assert_eq!(
            auth.authenticate(&no_token, 1.0, &s).unwrap_err().body,
            CSRF_FAILED
        );
        let no_referer = req("POST", &[("cookie", &cookie), ("x-csrftoken", &csrf)]);
        assert!(auth.authenticate(&no_referer, 1.0, &s).is_err());
        let good = req(
            "POST",
            &[
                ("cookie", &cookie),
                ("x-csrftoken", &csrf),
                ("referer", "https://x/"),
            ],
        );
        assert!(auth.authenticate(&good, 1.0, &s).is_ok());
    }

    #[test]
    fn basic_auth_can_be_switched_off() {
        let mut auth = AuthState::new(vec![User::new("admin", "pw")]);
        let good = req("GET", &[("authorization", "Basic YWRtaW46cHc=")]);
        let bad = req("GET", &[("authorization", "Basic YWRtaW46eA==")]);
        let mut s = settings();
        assert!(auth.authenticate(&good, 0.0, &s).unwrap().basic);
        assert_eq!(auth.authenticate(&bad, 0.0, &s).unwrap_err().status, 401);
        s.basic_auth = false;
        s.basic_auth_disabled_status = 403;
        assert_eq!(auth.authenticate(&good, 0.0, &s).unwrap_err().status, 403);
    }

    #[test]
    fn debug_output_has_no_secrets() {
        let mut user = User::new("admin", "hunter2");
        user.tokens.push("tok-123".into());
        let auth = AuthState::new(vec![user]);
        let text = format!("{auth:?}");
        assert!(
            !text.contains("hunter2") && !text.contains("tok-123"),
            "{text}"
        );
    }
}
