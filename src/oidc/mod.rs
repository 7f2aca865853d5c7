//! phone-verify as an OpenID Connect provider: the authorization code flow with PKCE,
//! whose login UI is the hosted pages and whose result is a signed ID token carrying the
//! verified `phone_number`.
//!
//! Authorization requests, codes and access tokens are records in the store (with TTLs),
//! so a browser may start on one instance and the application fetch its token, or ask
//! userinfo, on another. A code is taken from the store atomically: it works once.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use hmac::{KeyInit, Mac};
use serde::{Deserialize, Serialize};
use sha2::Digest;

use crate::code::{credential_matches, random_hex};
use crate::config::{OidcClientConfig, OidcConfig};
use crate::domain::{Channel, Verification};
use crate::store::{StoreError, VerificationStore};
use crate::verification::Clock;

pub mod keys;

pub use keys::SigningKey;

const REQUEST: &str = "oidc-request";
const CODE: &str = "oidc-code";
const TOKEN: &str = "oidc-token";

fn b64url(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn unix_secs(at: SystemTime) -> u64 {
    at.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// The parameters of `GET /oidc/authorize`, as sent.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct AuthorizeParams {
    pub response_type: Option<String>,
    pub client_id: Option<String>,
    pub redirect_uri: Option<String>,
    pub scope: Option<String>,
    pub state: Option<String>,
    pub nonce: Option<String>,
    pub code_challenge: Option<String>,
    pub code_challenge_method: Option<String>,
    pub login_hint: Option<String>,
}

/// An authorization request on its way through the pages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthRequest {
    pub client_id: String,
    pub redirect_uri: String,
    pub scope: String,
    pub state: Option<String>,
    pub nonce: Option<String>,
    pub code_challenge: Option<String>,
}

/// An issued authorization code.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct AuthCode {
    client_id: String,
    redirect_uri: String,
    scope: String,
    nonce: Option<String>,
    code_challenge: Option<String>,
    phone_number: String,
    amr: String,
    auth_time: u64,
}

/// An issued access token.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct AccessToken {
    client_id: String,
    sub: String,
    phone_number: String,
}

/// A sign-in the pages now run: the request's id, and what to show.
#[derive(Debug, Clone)]
pub struct Started {
    pub request_id: String,
    pub client_name: Option<String>,
    pub login_hint: Option<String>,
}

/// Why an authorization request is refused.
#[derive(Debug)]
pub enum AuthorizeRefusal {
    /// An unknown client or an unregistered redirect URI: shown on a page, never
    /// redirected. The message is named by its key in the page catalogs (`locales/`).
    Unredirectable(&'static str),
    /// Anything else: sent back to the client with an `error` (RFC 6749 §4.1.2.1).
    Redirect(String),
    Store(StoreError),
}

/// A refusal of the token or userinfo endpoints (RFC 6749 §5.2, RFC 6750 §3).
#[derive(Debug, PartialEq, Eq)]
pub struct TokenError {
    pub status: u16,
    pub error: &'static str,
    pub description: &'static str,
}

impl TokenError {
    pub fn new(status: u16, error: &'static str, description: &'static str) -> Self {
        Self {
            status,
            error,
            description,
        }
    }

    fn grant(description: &'static str) -> Self {
        Self::new(400, "invalid_grant", description)
    }
}

/// How the caller of `/oidc/token` says who it is.
#[derive(Debug, Clone, Default)]
pub struct ClientAuth {
    /// From `Authorization: Basic`: id and secret.
    pub basic: Option<(String, String)>,
    /// From the form: `client_id` and `client_secret`.
    pub form_id: Option<String>,
    pub form_secret: Option<String>,
}

/// A token request's form.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct TokenRequest {
    pub grant_type: Option<String>,
    pub code: Option<String>,
    pub redirect_uri: Option<String>,
    pub code_verifier: Option<String>,
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
}

/// What `/oidc/token` answers.
#[derive(Debug, Serialize)]
pub struct TokenResponse {
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_in: u64,
    pub id_token: String,
    pub scope: String,
}

/// The ID token's claims.
#[derive(Debug, Serialize)]
struct IdTokenClaims<'a> {
    iss: &'a str,
    aud: &'a str,
    sub: &'a str,
    iat: u64,
    exp: u64,
    auth_time: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    nonce: Option<&'a str>,
    phone_number: &'a str,
    phone_number_verified: bool,
    amr: [&'a str; 1],
}

/// Whether `raw` is a PKCE S256 challenge: the base64url of a SHA-256 (43 characters).
fn challenge_valid(raw: &str) -> bool {
    raw.len() == 43
        && raw
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Whether `verifier` is a PKCE code verifier (RFC 7636 §4.1) whose S256 is `challenge`.
fn verifier_matches(verifier: &str, challenge: &str) -> bool {
    let well_formed = (43..=128).contains(&verifier.len())
        && verifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b));
    well_formed && credential_matches(challenge, &b64url(&sha2::Sha256::digest(verifier)))
}

/// The OpenID Connect provider.
pub struct Provider {
    issuer: String,
    clients: Vec<OidcClientConfig>,
    key: SigningKey,
    subject_key: [u8; 32],
    id_token_ttl: Duration,
    code_ttl: Duration,
    /// How long a sign-in may take on the pages (the session's lifetime).
    request_ttl: Duration,
    store: Arc<dyn VerificationStore>,
    clock: Arc<dyn Clock>,
}

impl Provider {
    pub fn new(
        config: &OidcConfig,
        key: SigningKey,
        subject_key: [u8; 32],
        request_ttl: Duration,
        store: Arc<dyn VerificationStore>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            issuer: config.issuer.clone(),
            clients: config.clients.clone(),
            key,
            subject_key,
            id_token_ttl: config.id_token_ttl,
            code_ttl: config.code_ttl,
            request_ttl,
            store,
            clock,
        }
    }

    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    fn client(&self, id: &str) -> Option<&OidcClientConfig> {
        self.clients.iter().find(|c| c.client_id == id)
    }

    /// Whether `origin` is the origin of a registered redirect URI (a browser application
    /// calling the token or userinfo endpoint).
    pub fn allows_origin(&self, origin: &str) -> bool {
        self.clients
            .iter()
            .flat_map(|c| &c.redirect_uris)
            .filter_map(|uri| url::Url::parse(uri).ok())
            .any(|uri| uri.origin().ascii_serialization() == origin)
    }

    /// `GET /.well-known/openid-configuration`.
    pub fn discovery(&self) -> serde_json::Value {
        let at = |path: &str| format!("{}{path}", self.issuer);
        serde_json::json!({
            "issuer": self.issuer,
            "authorization_endpoint": at("/oidc/authorize"),
            "token_endpoint": at("/oidc/token"),
            "userinfo_endpoint": at("/oidc/userinfo"),
            "jwks_uri": at("/oidc/jwks.json"),
            "response_types_supported": ["code"],
            "grant_types_supported": ["authorization_code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["ES256"],
            "scopes_supported": ["openid", "phone"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
            "code_challenge_methods_supported": ["S256"],
            "claims_supported": ["iss", "aud", "sub", "iat", "exp", "auth_time", "nonce", "amr", "phone_number", "phone_number_verified"],
            "response_modes_supported": ["query"],
            "authorization_response_iss_parameter_supported": true,
        })
    }

    /// `GET /oidc/jwks.json`.
    pub fn jwks(&self) -> serde_json::Value {
        serde_json::json!({ "keys": [self.key.jwk()] })
    }

    /// `redirect_uri` with `params` and the issuer (RFC 9207) added to its query.
    fn back_to(&self, redirect_uri: &str, params: &[(&str, Option<&str>)]) -> String {
        let mut url = url::Url::parse(redirect_uri).expect("registered URIs are URLs");
        {
            let mut query = url.query_pairs_mut();
            for (name, value) in params {
                if let Some(value) = value {
                    query.append_pair(name, value);
                }
            }
            query.append_pair("iss", &self.issuer);
        }
        url.to_string()
    }

    /// Checks an authorization request and keeps it for the pages.
    pub async fn authorize(&self, p: &AuthorizeParams) -> Result<Started, AuthorizeRefusal> {
        let client = p
            .client_id
            .as_deref()
            .and_then(|id| self.client(id))
            .ok_or(AuthorizeRefusal::Unredirectable("sign-in-unknown-client"))?;
        let redirect_uri = p
            .redirect_uri
            .as_deref()
            .filter(|uri| client.redirect_uris.iter().any(|r| r == uri))
            .ok_or(AuthorizeRefusal::Unredirectable("sign-in-unknown-redirect"))?;
        let state = p.state.as_deref();
        let refuse = |error: &str, description: &str| {
            AuthorizeRefusal::Redirect(self.back_to(
                redirect_uri,
                &[
                    ("error", Some(error)),
                    ("error_description", Some(description)),
                    ("state", state),
                ],
            ))
        };
        if p.response_type.as_deref() != Some("code") {
            return Err(refuse(
                "unsupported_response_type",
                "only response_type=code is supported",
            ));
        }
        let scope = p.scope.as_deref().unwrap_or("");
        if !scope.split(' ').any(|s| s == "openid") {
            return Err(refuse("invalid_scope", "the scope must include openid"));
        }
        let challenge = p.code_challenge.as_deref().filter(|c| !c.is_empty());
        match (challenge, p.code_challenge_method.as_deref()) {
            (None, _) if client.client_secret.is_none() => {
                return Err(refuse(
                    "invalid_request",
                    "PKCE (code_challenge with S256) is required for this client",
                ));
            }
            (None, _) => {}
            (Some(c), Some("S256")) if challenge_valid(c) => {}
            (Some(_), Some("S256")) => {
                return Err(refuse("invalid_request", "code_challenge is malformed"));
            }
            (Some(_), _) => {
                return Err(refuse(
                    "invalid_request",
                    "code_challenge_method must be S256",
                ));
            }
        }
        let request = AuthRequest {
            client_id: client.client_id.clone(),
            redirect_uri: redirect_uri.to_string(),
            scope: scope.to_string(),
            state: p.state.clone(),
            nonce: p.nonce.clone().filter(|n| !n.is_empty()),
            code_challenge: challenge.map(str::to_owned),
        };
        let request_id = random_hex(16);
        let json = serde_json::to_string(&request).expect("requests serialize");
        self.store
            .put_record(
                REQUEST,
                &request_id,
                &json,
                self.clock.now() + self.request_ttl,
            )
            .await
            .map_err(AuthorizeRefusal::Store)?;
        Ok(Started {
            request_id,
            client_name: client.name.clone(),
            login_hint: p.login_hint.clone().filter(|h| !h.trim().is_empty()),
        })
    }

    /// The sign-in `request_id` names, while it lives.
    pub async fn request(&self, request_id: &str) -> Result<Option<AuthRequest>, StoreError> {
        let raw = self
            .store
            .get_record(REQUEST, request_id, self.clock.now())
            .await?;
        Ok(raw.and_then(|r| serde_json::from_str(&r).ok()))
    }

    /// The name to show for a sign-in's application.
    pub fn client_name(&self, request: &AuthRequest) -> Option<String> {
        self.client(&request.client_id).and_then(|c| c.name.clone())
    }

    /// Ends a sign-in without a code: where to send the browser (`access_denied`).
    pub async fn cancel(&self, request_id: &str) -> Result<Option<String>, StoreError> {
        let Some(request) = self.take_request(request_id).await? else {
            return Ok(None);
        };
        Ok(Some(self.back_to(
            &request.redirect_uri,
            &[
                ("error", Some("access_denied")),
                ("error_description", Some("the person canceled")),
                ("state", request.state.as_deref()),
            ],
        )))
    }

    async fn take_request(&self, request_id: &str) -> Result<Option<AuthRequest>, StoreError> {
        let raw = self
            .store
            .take_record(REQUEST, request_id, self.clock.now())
            .await?;
        Ok(raw.and_then(|r| serde_json::from_str(&r).ok()))
    }

    /// Ends a sign-in with `verification`, just approved in this browser: issues a code,
    /// and says where to send the browser with it. `None` when the sign-in has expired.
    pub async fn approve(
        &self,
        request_id: &str,
        verification: &Verification,
    ) -> Result<Option<String>, StoreError> {
        let Some(request) = self.take_request(request_id).await? else {
            return Ok(None);
        };
        let now = self.clock.now();
        let code = AuthCode {
            client_id: request.client_id.clone(),
            redirect_uri: request.redirect_uri.clone(),
            scope: request.scope.clone(),
            nonce: request.nonce.clone(),
            code_challenge: request.code_challenge.clone(),
            phone_number: verification.to.e164().to_string(),
            amr: match verification.channel {
                Channel::Sms => "sms".into(),
                Channel::Call => "tel".into(),
            },
            auth_time: unix_secs(now),
        };
        let value = random_hex(32);
        let json = serde_json::to_string(&code).expect("codes serialize");
        self.store
            .put_record(CODE, &value, &json, now + self.code_ttl)
            .await?;
        tracing::info!(client = %request.client_id, "oidc: authorization code issued");
        Ok(Some(self.back_to(
            &request.redirect_uri,
            &[("code", Some(&value)), ("state", request.state.as_deref())],
        )))
    }

    /// The subject for a number: stable for the same number, issuer and secret, and not
    /// the number itself.
    fn subject(&self, phone_number: &str) -> String {
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&self.subject_key)
            .expect("HMAC takes any key length");
        mac.update(self.issuer.as_bytes());
        mac.update(b"\0");
        mac.update(phone_number.as_bytes());
        b64url(&mac.finalize().into_bytes())
    }

    /// The client a token request authenticates as.
    fn authenticate(&self, auth: &ClientAuth) -> Result<&OidcClientConfig, TokenError> {
        let invalid = || TokenError::new(401, "invalid_client", "client authentication failed");
        let (id, secret) = match &auth.basic {
            Some((id, secret)) => (id.as_str(), Some(secret.as_str())),
            None => (
                auth.form_id.as_deref().ok_or_else(invalid)?,
                auth.form_secret.as_deref().filter(|s| !s.is_empty()),
            ),
        };
        let client = self.client(id).ok_or_else(invalid)?;
        let authenticated = match (&client.client_secret, secret) {
            (Some(expected), Some(presented)) => credential_matches(expected.expose(), presented),
            // A public client proves itself with PKCE instead.
            (None, None) => true,
            _ => false,
        };
        authenticated.then_some(client).ok_or_else(invalid)
    }

    /// `POST /oidc/token`: exchanges a code for an ID token and an access token.
    pub async fn token(
        &self,
        auth: &ClientAuth,
        request: &TokenRequest,
    ) -> Result<TokenResponse, TokenError> {
        let client = self.authenticate(auth)?;
        if request.grant_type.as_deref() != Some("authorization_code") {
            return Err(TokenError::new(
                400,
                "unsupported_grant_type",
                "only authorization_code is supported",
            ));
        }
        let value = request.code.as_deref().ok_or(TokenError::new(
            400,
            "invalid_request",
            "code is required",
        ))?;
        let now = self.clock.now();
        // Taken whatever happens next: a code presented once is used up.
        let raw = self
            .store
            .take_record(CODE, value, now)
            .await
            .map_err(|e| {
                tracing::error!(error = %e, "store unavailable");
                TokenError::new(503, "temporarily_unavailable", "try again shortly")
            })?;
        let code: AuthCode = raw
            .and_then(|r| serde_json::from_str(&r).ok())
            .ok_or(TokenError::grant("the code is unknown, used or expired"))?;
        if code.client_id != client.client_id {
            return Err(TokenError::grant("the code was issued to another client"));
        }
        if request.redirect_uri.as_deref() != Some(code.redirect_uri.as_str()) {
            return Err(TokenError::grant(
                "redirect_uri differs from the authorization request",
            ));
        }
        match (&code.code_challenge, request.code_verifier.as_deref()) {
            (Some(challenge), Some(verifier)) if verifier_matches(verifier, challenge) => {}
            (None, None) => {}
            _ => return Err(TokenError::grant("code_verifier does not match")),
        }
        let sub = self.subject(&code.phone_number);
        let iat = unix_secs(now);
        let claims = IdTokenClaims {
            iss: &self.issuer,
            aud: &client.client_id,
            sub: &sub,
            iat,
            exp: iat + self.id_token_ttl.as_secs(),
            auth_time: code.auth_time,
            nonce: code.nonce.as_deref(),
            phone_number: &code.phone_number,
            phone_number_verified: true,
            amr: [code.amr.as_str()],
        };
        let id_token = self.key.sign(&claims).map_err(|e| {
            tracing::error!(error = %e, "could not sign an ID token");
            TokenError::new(500, "server_error", "the token could not be signed")
        })?;
        let access_token = random_hex(32);
        let record = AccessToken {
            client_id: client.client_id.clone(),
            sub: sub.clone(),
            phone_number: code.phone_number.clone(),
        };
        self.store
            .put_record(
                TOKEN,
                &access_token,
                &serde_json::to_string(&record).expect("tokens serialize"),
                now + self.id_token_ttl,
            )
            .await
            .map_err(|e| {
                tracing::error!(error = %e, "store unavailable");
                TokenError::new(503, "temporarily_unavailable", "try again shortly")
            })?;
        tracing::info!(client = %client.client_id, "oidc: tokens issued");
        Ok(TokenResponse {
            access_token,
            token_type: "Bearer",
            expires_in: self.id_token_ttl.as_secs(),
            id_token,
            scope: code.scope,
        })
    }

    /// `GET /oidc/userinfo`: the claims for a live access token.
    pub async fn userinfo(&self, access_token: &str) -> Result<serde_json::Value, TokenError> {
        let invalid = || {
            TokenError::new(
                401,
                "invalid_token",
                "the access token is unknown or expired",
            )
        };
        let raw = self
            .store
            .get_record(TOKEN, access_token, self.clock.now())
            .await
            .map_err(|e| {
                tracing::error!(error = %e, "store unavailable");
                TokenError::new(503, "temporarily_unavailable", "try again shortly")
            })?
            .ok_or_else(invalid)?;
        let token: AccessToken = serde_json::from_str(&raw).map_err(|_| invalid())?;
        Ok(serde_json::json!({
            "sub": token.sub,
            "phone_number": token.phone_number,
            "phone_number_verified": true,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkce_s256_matches_rfc_7636_appendix_b() {
        // The example of RFC 7636, Appendix B.
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
        assert!(challenge_valid(challenge));
        assert!(verifier_matches(verifier, challenge));
        assert!(!verifier_matches(
            "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXj",
            challenge
        ));
        assert!(!verifier_matches("short", challenge));
        assert!(!challenge_valid(
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-c"
        ));
    }
}
