//! The browser session of the hosted pages: an encrypted (AES-GCM), HttpOnly,
//! SameSite=Strict cookie holding a random handle, a CSRF token, the time the session
//! began and the id of the browser's verification. No personal data: the number stays on
//! the server, and the cookie's contents are unreadable to anyone but this service.
//!
//! A verification started on the pages is bound to the session's handle (the store keeps
//! only a keyed hash of it), so a browser reaches only the verification it started. The
//! session ends `session_ttl` after it began, whatever the cookie's own expiry says, and
//! success renews it with a new handle: an older copy of the cookie then matches nothing.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use actix_web::HttpRequest;
use actix_web::cookie::{Cookie, CookieJar, Key, SameSite};
use hmac::{KeyInit, Mac};

use crate::code::{credential_matches, random_hex, to_hex};

/// How the session cookie is named, sealed and bounded.
#[derive(Clone)]
pub struct SessionConfig {
    key: Key,
    binding_key: [u8; 32],
    name: &'static str,
    secure: bool,
    ttl: Duration,
}

impl SessionConfig {
    /// `secure` (https): the cookie is `Secure` and `__Host-` prefixed. `binding_key`
    /// keys the hashes that bind verifications to sessions.
    pub fn new(key: [u8; 32], binding_key: [u8; 32], secure: bool, ttl: Duration) -> Self {
        Self {
            key: Key::derive_from(&key),
            binding_key,
            name: if secure {
                "__Host-pv_session"
            } else {
                "pv_session"
            },
            secure,
            ttl,
        }
    }

    /// The session the request carries, if its cookie is present, decrypts, and the
    /// session has not outlived `ttl` at `now`.
    pub fn read(&self, req: &HttpRequest, now: SystemTime) -> Option<Session> {
        let cookie = req.cookie(self.name)?;
        let mut jar = CookieJar::new();
        jar.add_original(cookie.into_owned());
        let opened = jar.private(&self.key).get(self.name)?;
        let session = Session::decode(opened.value())?;
        let ends = UNIX_EPOCH + Duration::from_secs(session.issued_at) + self.ttl;
        (now < ends).then_some(session)
    }

    /// A `Set-Cookie` for `session`.
    pub fn cookie(&self, session: &Session) -> Cookie<'static> {
        let mut jar = CookieJar::new();
        let max_age = actix_web::cookie::time::Duration::seconds(
            i64::try_from(self.ttl.as_secs()).unwrap_or(i64::MAX),
        );
        jar.private_mut(&self.key).add(
            Cookie::build(self.name, session.encode())
                .path("/")
                .http_only(true)
                .secure(self.secure)
                .same_site(SameSite::Strict)
                .max_age(max_age)
                .finish(),
        );
        jar.delta().next().expect("cookie just added").clone()
    }

    /// What a verification started by `session` is bound to: a keyed hash of its handle,
    /// so the store never holds anything that would open the session.
    pub fn binding(&self, session: &Session) -> String {
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&self.binding_key)
            .expect("HMAC takes any key length");
        mac.update(session.handle.as_bytes());
        to_hex(&mac.finalize().into_bytes()[..16])
    }
}

/// What the cookie holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// 128 random bits, known only to this browser.
    handle: String,
    pub csrf_token: String,
    /// When the session began, in whole seconds since the Unix epoch.
    issued_at: u64,
    pub verification_id: Option<String>,
    /// The OpenID Connect sign-in this session runs, if it came through `/oidc/authorize`.
    pub sign_in: Option<String>,
}

fn unix_secs(at: SystemTime) -> u64 {
    at.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

impl Session {
    /// A new session beginning at `now`, with no verification.
    pub fn fresh(now: SystemTime) -> Self {
        Self {
            handle: random_hex(16),
            csrf_token: random_hex(16),
            issued_at: unix_secs(now),
            verification_id: None,
            sign_in: None,
        }
    }

    /// A new session for the sign-in `request_id`.
    pub fn for_sign_in(request_id: &str, now: SystemTime) -> Self {
        Self {
            sign_in: Some(request_id.to_string()),
            ..Self::fresh(now)
        }
    }

    /// The same browser session bound to `id`, with a new CSRF token (the session changes
    /// meaning) and its lifetime counted again from `now`.
    pub fn bound_to(&self, id: &str, now: SystemTime) -> Self {
        Self {
            handle: self.handle.clone(),
            csrf_token: random_hex(16),
            issued_at: unix_secs(now),
            verification_id: Some(id.to_string()),
            sign_in: self.sign_in.clone(),
        }
    }

    /// A new session (new handle, new token) for verification `id`: what a browser gets
    /// once it has typed the right code, so no earlier copy of its cookie means anything.
    /// A sign-in it ran is over by then.
    pub fn renewed(id: &str, now: SystemTime) -> Self {
        Self {
            verification_id: Some(id.to_string()),
            ..Self::fresh(now)
        }
    }

    /// Whether `submitted` is this session's CSRF token (constant time).
    pub fn csrf_matches(&self, submitted: &str) -> bool {
        credential_matches(&self.csrf_token, submitted)
    }

    fn encode(&self) -> String {
        format!(
            "{}.{}.{}.{}.{}",
            self.handle,
            self.csrf_token,
            self.issued_at,
            self.verification_id.as_deref().unwrap_or(""),
            self.sign_in.as_deref().unwrap_or("")
        )
    }

    fn decode(raw: &str) -> Option<Self> {
        let mut parts = raw.splitn(5, '.');
        let handle = parts.next().filter(|h| !h.is_empty())?.to_string();
        let csrf_token = parts.next().filter(|c| !c.is_empty())?.to_string();
        let issued_at = parts.next()?.parse().ok()?;
        let some = |part: &str| (!part.is_empty()).then(|| part.to_string());
        let id = some(parts.next()?);
        let sign_in = some(parts.next()?);
        Some(Self {
            handle,
            csrf_token,
            issued_at,
            verification_id: id,
            sign_in,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    const HOUR: Duration = Duration::from_secs(3600);

    fn sessions(key: u8) -> SessionConfig {
        SessionConfig::new([key; 32], [key; 32], false, HOUR)
    }

    fn now() -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_800_000_000)
    }

    #[test]
    fn a_sign_in_survives_binding_and_ends_with_renewal() {
        let config = sessions(1);
        let session = Session::for_sign_in("req1", now()).bound_to("abc", now());
        let req = TestRequest::default()
            .cookie(config.cookie(&session))
            .to_http_request();
        let read = config.read(&req, now()).unwrap();
        assert_eq!(read.sign_in.as_deref(), Some("req1"));
        assert_eq!(Session::renewed("abc", now()).sign_in, None);
    }

    #[test]
    fn a_session_survives_the_round_trip_through_its_cookie() {
        let config = sessions(1);
        let session = Session::fresh(now()).bound_to("abc", now());
        let cookie = config.cookie(&session);
        let req = TestRequest::default().cookie(cookie).to_http_request();
        assert_eq!(config.read(&req, now()), Some(session));
    }

    #[test]
    fn the_cookie_reveals_nothing_of_what_it_holds() {
        let config = sessions(1);
        let session = Session::fresh(now()).bound_to("0123456789abcdef0123456789abcdef", now());
        let value = config.cookie(&session).value().to_string();
        for secret in [
            "0123456789abcdef0123456789abcdef",
            &session.csrf_token,
            &session.handle,
        ] {
            assert!(!value.contains(secret), "{value} shows {secret}");
        }
    }

    #[test]
    fn a_tampered_or_foreign_cookie_is_ignored() {
        let config = sessions(1);
        let cookie = config.cookie(&Session::fresh(now()).bound_to("abc", now()));
        let mut bytes = cookie.value().as_bytes().to_vec();
        let middle = bytes.len() / 2;
        bytes[middle] = if bytes[middle] == b'A' { b'B' } else { b'A' };
        let tampered = Cookie::new("pv_session", String::from_utf8(bytes).unwrap());
        let req = TestRequest::default().cookie(tampered).to_http_request();
        assert_eq!(config.read(&req, now()), None);
        let req = TestRequest::default().cookie(cookie).to_http_request();
        assert_eq!(sessions(2).read(&req, now()), None);
    }

    #[test]
    fn a_cookie_written_without_the_key_is_ignored() {
        // What a forger could write: a well-formed session, in the clear.
        let config = sessions(1);
        let forged = Session::fresh(now()).bound_to("abc", now());
        let cookie = Cookie::new("pv_session", forged.encode());
        let req = TestRequest::default().cookie(cookie).to_http_request();
        assert_eq!(config.read(&req, now()), None);
    }

    #[test]
    fn a_session_ends_after_its_lifetime_whatever_the_cookie_says() {
        let config = sessions(1);
        let cookie = config.cookie(&Session::fresh(now()));
        let req = TestRequest::default().cookie(cookie).to_http_request();
        assert!(
            config
                .read(&req, now() + HOUR - Duration::from_secs(1))
                .is_some()
        );
        assert_eq!(config.read(&req, now() + HOUR), None);
    }

    #[test]
    fn a_renewed_session_has_another_binding_and_a_bound_one_keeps_it() {
        let config = sessions(1);
        let first = Session::fresh(now());
        let bound = first.bound_to("abc", now());
        assert_eq!(config.binding(&first), config.binding(&bound));
        assert_ne!(bound.csrf_token, first.csrf_token);
        let renewed = Session::renewed("abc", now());
        assert_ne!(config.binding(&renewed), config.binding(&bound));
        assert_ne!(
            config.binding(&first),
            sessions(2).binding(&first),
            "keyed by the secret"
        );
    }

    #[test]
    fn https_cookies_are_secure_and_host_prefixed() {
        let cookie =
            SessionConfig::new([1; 32], [1; 32], true, HOUR).cookie(&Session::fresh(now()));
        assert_eq!(cookie.name(), "__Host-pv_session");
        assert_eq!(cookie.secure(), Some(true));
        assert_eq!(cookie.http_only(), Some(true));
        assert_eq!(cookie.same_site(), Some(SameSite::Strict));
        assert_eq!(cookie.path(), Some("/"));
    }
}
