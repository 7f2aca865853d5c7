//! HTTP: the shared state and the helpers every front end uses (request bodies, the
//! client's address, times). Routes are wired in `routes`, headers set in `headers`;
//! handlers live in one module per front end, each with its own error type.

use std::net::IpAddr;

use actix_web::{HttpRequest, web};

use crate::verification::Verifier;

pub mod api;
pub mod callbacks;
pub mod deadline;
pub mod errors;
pub mod headers;
pub mod oidc;
pub mod pages;
pub mod routes;
pub mod seed_compat;
pub mod session;
pub mod twilio_compat;

pub use headers::Listeners;
pub use routes::{OptionalRoutes, configure};
use session::SessionConfig;

/// Request bodies above this are refused with 413, on every route.
pub const MAX_BODY_BYTES: usize = 16 * 1024;

/// Everything handlers need, registered once as `web::Data<AppState>`.
pub struct AppState {
    pub verifier: Verifier,
    pub sessions: SessionConfig,
    pub trusted_proxies: Vec<ipnet::IpNet>,
    pub hsts: bool,
    /// `scheme://host[:port]` of `server.public_url`: the URLs providers sign start with it.
    pub public_origin: String,
    /// Bearer keys of the JSON API.
    pub api_keys: Vec<crate::config::Secret>,
    /// `/v2`, when `twilio_compat.enabled`.
    pub twilio_compat: Option<twilio_compat::TwilioCompat>,
    /// The bearer token `/metrics` requires, when one is configured.
    pub metrics_token: Option<crate::config::Secret>,
    /// The OpenID Connect provider, when `oidc.enabled`.
    pub oidc: Option<crate::oidc::Provider>,
}

/// A time as RFC 3339 in UTC (`2026-11-22T02:00:00Z`).
pub fn rfc3339(at: std::time::SystemTime) -> String {
    time::OffsetDateTime::from(at)
        .replace_nanosecond(0)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

/// Why a request body could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyError {
    /// Over `MAX_BODY_BYTES`: 413.
    TooLarge,
    /// It did not arrive within `server.request_timeout_secs`: 408.
    TimedOut,
    /// The connection broke or the encoding was wrong: 400.
    Unreadable,
}

impl BodyError {
    pub(crate) fn from_payload(error: &actix_web::error::PayloadError) -> Self {
        match error {
            actix_web::error::PayloadError::Overflow => Self::TooLarge,
            e if deadline::is_timeout(e) => Self::TimedOut,
            _ => Self::Unreadable,
        }
    }
}

/// The request body, up to `MAX_BODY_BYTES`.
pub async fn read_body(
    mut payload: impl futures_util::Stream<Item = Result<web::Bytes, actix_web::error::PayloadError>>
    + Unpin,
) -> Result<web::Bytes, BodyError> {
    use futures_util::StreamExt as _;
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| BodyError::from_payload(&e))?;
        if body.len() + chunk.len() > MAX_BODY_BYTES {
            return Err(BodyError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

/// The client's address: the socket peer, or, when the peer is a trusted proxy, the
/// right-most `X-Forwarded-For` entry that is not itself a trusted proxy.
pub fn client_ip(req: &HttpRequest, trusted: &[ipnet::IpNet]) -> IpAddr {
    let peer = req
        .peer_addr()
        .map(|a| a.ip())
        .unwrap_or(IpAddr::from([127, 0, 0, 1]));
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(&peer) {
        return peer;
    }
    let forwarded: Vec<IpAddr> = req
        .headers()
        .get_all("x-forwarded-for")
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(forwarded_address)
        .collect();
    forwarded
        .into_iter()
        .rev()
        .find(|ip| !is_trusted(ip))
        .unwrap_or(peer)
}

/// One `X-Forwarded-For` entry: an address, optionally with a port (`1.2.3.4:5678`,
/// `[2001:db8::1]:443`) or in brackets, as proxies write them.
fn forwarded_address(entry: &str) -> Option<IpAddr> {
    let entry = entry.trim();
    entry
        .parse::<IpAddr>()
        .ok()
        .or_else(|| entry.parse::<std::net::SocketAddr>().ok().map(|s| s.ip()))
        .or_else(|| {
            entry
                .strip_prefix('[')
                .and_then(|rest| rest.strip_suffix(']'))
                .and_then(|inner| inner.parse().ok())
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    fn nets(raw: &[&str]) -> Vec<ipnet::IpNet> {
        raw.iter()
            .map(|r| crate::config::parse_cidr(r).unwrap())
            .collect()
    }

    #[test]
    fn forwarded_for_is_ignored_from_untrusted_peers() {
        let req = TestRequest::default()
            .peer_addr("203.0.113.9:5000".parse().unwrap())
            .insert_header(("x-forwarded-for", "198.51.100.1"))
            .to_http_request();
        assert_eq!(
            client_ip(&req, &nets(&["10.0.0.0/8"])),
            "203.0.113.9".parse::<IpAddr>().unwrap()
        );
    }

    #[test]
    fn forwarded_entries_may_carry_ports_and_brackets() {
        for (entry, ip) in [
            ("1.2.3.4", "1.2.3.4"),
            (" 1.2.3.4:5678 ", "1.2.3.4"),
            ("2001:db8::1", "2001:db8::1"),
            ("[2001:db8::1]:443", "2001:db8::1"),
            ("[2001:db8::1]", "2001:db8::1"),
        ] {
            assert_eq!(
                forwarded_address(entry),
                Some(ip.parse().unwrap()),
                "{entry}"
            );
        }
        for junk in ["", "unknown", "1.2.3.4:port", "[1.2.3.4", "_hidden"] {
            assert_eq!(forwarded_address(junk), None, "{junk}");
        }
    }

    #[test]
    fn forwarded_for_from_a_trusted_proxy_gives_the_last_untrusted_hop() {
        let req = TestRequest::default()
            .peer_addr("10.0.0.5:5000".parse().unwrap())
            .insert_header(("x-forwarded-for", "1.2.3.4, 198.51.100.1, 10.0.0.7"))
            .to_http_request();
        assert_eq!(
            client_ip(&req, &nets(&["10.0.0.0/8"])),
            "198.51.100.1".parse::<IpAddr>().unwrap()
        );
    }
}
