//! The browser session of the hosted pages: a signed, HttpOnly, SameSite=Strict cookie
//! holding a CSRF token and the id of the browser's verification. Nothing else, and no
//! personal data: the number stays on the server.

use actix_web::HttpRequest;
use actix_web::cookie::{Cookie, CookieJar, Key, SameSite};

use crate::code::{constant_time_eq, random_hex};

/// How the session cookie is named and signed.
#[derive(Clone)]
pub struct SessionConfig {
    key: Key,
    name: &'static str,
    secure: bool,
}

impl SessionConfig {
    /// `secure` (https): the cookie is `Secure` and `__Host-` prefixed.
    pub fn new(key: [u8; 32], secure: bool) -> Self {
        Self {
            key: Key::derive_from(&key),
            name: if secure {
                "__Host-pv_session"
            } else {
                "pv_session"
            },
            secure,
        }
    }

    pub fn cookie_name(&self) -> &'static str {
        self.name
    }

    /// The session the request carries, if its cookie is present and its signature holds.
    pub fn read(&self, req: &HttpRequest) -> Option<Session> {
        let cookie = req.cookie(self.name)?;
        let mut jar = CookieJar::new();
        jar.add_original(cookie.into_owned());
        let verified = jar.signed(&self.key).get(self.name)?;
        Session::decode(verified.value())
    }

    /// A `Set-Cookie` for `session`.
    pub fn cookie(&self, session: &Session) -> Cookie<'static> {
        let mut jar = CookieJar::new();
        jar.signed_mut(&self.key).add(
            Cookie::build(self.name, session.encode())
                .path("/")
                .http_only(true)
                .secure(self.secure)
                .same_site(SameSite::Strict)
                .max_age(actix_web::cookie::time::Duration::hours(1))
                .finish(),
        );
        jar.delta().next().expect("cookie just added").clone()
    }
}

/// What the cookie holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub csrf_token: String,
    pub verification_id: Option<String>,
}

impl Session {
    /// A new session with a fresh CSRF token and no verification.
    pub fn fresh() -> Self {
        Self {
            csrf_token: random_hex(16),
            verification_id: None,
        }
    }

    /// The same browser bound to `id`, with a new token (the session changes meaning).
    pub fn bound_to(id: &str) -> Self {
        Self {
            csrf_token: random_hex(16),
            verification_id: Some(id.to_string()),
        }
    }

    /// Whether `submitted` is this session's CSRF token (constant time).
    pub fn csrf_matches(&self, submitted: &str) -> bool {
        constant_time_eq(&self.csrf_token, submitted)
    }

    fn encode(&self) -> String {
        format!(
            "{}.{}",
            self.csrf_token,
            self.verification_id.as_deref().unwrap_or("")
        )
    }

    fn decode(raw: &str) -> Option<Self> {
        let (csrf, id) = raw.split_once('.')?;
        Some(Self {
            csrf_token: csrf.to_string(),
            verification_id: (!id.is_empty()).then(|| id.to_string()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    #[test]
    fn a_session_survives_the_round_trip_through_its_cookie() {
        let config = SessionConfig::new([1; 32], false);
        let session = Session::bound_to("abc");
        let cookie = config.cookie(&session);
        let req = TestRequest::default().cookie(cookie).to_http_request();
        assert_eq!(config.read(&req), Some(session));
    }

    #[test]
    fn a_tampered_or_foreign_cookie_is_ignored() {
        let config = SessionConfig::new([1; 32], false);
        let cookie = config.cookie(&Session::bound_to("abc"));
        let tampered = Cookie::new("pv_session", cookie.value().replace("abc", "abd"));
        let req = TestRequest::default().cookie(tampered).to_http_request();
        assert_eq!(config.read(&req), None);
        let other_key = SessionConfig::new([2; 32], false);
        let req = TestRequest::default().cookie(cookie).to_http_request();
        assert_eq!(other_key.read(&req), None);
    }

    #[test]
    fn https_cookies_are_secure_and_host_prefixed() {
        let cookie = SessionConfig::new([1; 32], true).cookie(&Session::fresh());
        assert_eq!(cookie.name(), "__Host-pv_session");
        assert_eq!(cookie.secure(), Some(true));
        assert_eq!(cookie.http_only(), Some(true));
        assert_eq!(cookie.same_site(), Some(SameSite::Strict));
        assert_eq!(cookie.path(), Some("/"));
    }
}
