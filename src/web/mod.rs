//! HTTP: the shared state, route table, security headers and the helpers every
//! handler uses (pages, redirects, the client's address). Handlers live in submodules.

use std::net::IpAddr;

use actix_web::body::BoxBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;

use crate::verification::{Verifier, VerifyError};

pub mod api;
pub mod callbacks;
pub mod deadline;
pub mod pages;
pub mod seed_compat;
pub mod session;
pub mod twilio_compat;

use pages::MessagePage;
use session::SessionConfig;

/// Request bodies above this are refused with 413 (SPEC §10).
pub const MAX_BODY_BYTES: usize = 16 * 1024;

const CSP: &str = "default-src 'self'; frame-ancestors 'none'; object-src 'none'; base-uri 'none'; form-action 'self'";

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
}

/// The listeners beside `server.bind`: with `server.metrics_bind`, `/metrics` is served
/// there (with `/healthz` and `/readyz`) and nowhere else.
#[derive(Debug, Clone, Copy, Default)]
pub struct Listeners {
    pub metrics: Option<std::net::SocketAddr>,
}

/// Keeps each listener to its routes: the metrics listener serves only `/metrics`,
/// `/healthz` and `/readyz`; the main one serves everything but `/metrics` when the
/// metrics have their own listener.
pub async fn split_listeners(
    req: ServiceRequest,
    next: Next<BoxBody>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let metrics = req.app_data::<Listeners>().and_then(|l| l.metrics);
    if let Some(metrics) = metrics {
        let on_metrics = req.app_config().local_addr() == metrics;
        let allowed = match req.path() {
            "/metrics" => on_metrics,
            "/healthz" | "/readyz" => true,
            _ => !on_metrics,
        };
        if !allowed {
            let response = HttpResponse::NotFound()
                .content_type("text/plain; charset=utf-8")
                .body("Not found.\n");
            return Ok(req.into_response(response));
        }
    }
    next.call(req).await
}

/// Which optional route families are mounted.
#[derive(Debug, Clone, Copy, Default)]
pub struct OptionalRoutes {
    pub twilio_compat: bool,
    pub signalwire: bool,
    pub plivo: bool,
}

impl AppState {
    /// A page explaining `message`, with a way back to the start.
    pub fn message(&self, status: StatusCode, title: &str, message: String) -> HttpResponse {
        page(
            status,
            &MessagePage {
                app_name: &self.verifier.policy().app_name,
                status: status.as_u16(),
                title,
                message,
                new_code_csrf: None,
                channel: "sms",
            },
        )
    }

    /// The answer to an error nobody can fix by retyping: logged once here, never shown.
    pub fn unexpected(&self, error: VerifyError) -> HttpResponse {
        match error {
            VerifyError::Store(e) => {
                tracing::error!(error = %e, "store unavailable");
                self.message(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "Temporarily unavailable",
                    "We can’t verify numbers right now. Please try again in a minute.".into(),
                )
            }
            other => {
                tracing::error!(error = %other, "unexpected error");
                self.message(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Something went wrong",
                    "Please try again.".into(),
                )
            }
        }
    }
}

/// Renders `template` as an uncacheable HTML page.
pub fn page(status: StatusCode, template: &impl Template) -> HttpResponse {
    match template.render() {
        Ok(html) => HttpResponse::build(status)
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .content_type("text/html; charset=utf-8")
            .body(html),
        Err(e) => {
            tracing::error!(error = %e, "template failed to render");
            HttpResponse::InternalServerError()
                .content_type("text/plain; charset=utf-8")
                .body("Something went wrong.")
        }
    }
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
    fn from_payload(error: &actix_web::error::PayloadError) -> Self {
        match error {
            actix_web::error::PayloadError::Overflow => Self::TooLarge,
            e if deadline::is_timeout(e) => Self::TimedOut,
            _ => Self::Unreadable,
        }
    }
}

/// The request body, up to `MAX_BODY_BYTES`.
pub async fn read_body(mut payload: web::Payload) -> Result<web::Bytes, BodyError> {
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

/// `303 See Other` to `location` (post/redirect/get).
pub fn see_other(location: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, location))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .finish()
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

/// Adds the security headers of SPEC §4 to every response.
pub async fn security_headers(
    req: ServiceRequest,
    next: Next<BoxBody>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let hsts = req
        .app_data::<web::Data<AppState>>()
        .is_some_and(|s| s.hsts);
    let mut res = next.call(req).await?;
    let headers = res.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    if hsts {
        headers.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=63072000; includeSubDomains"),
        );
    }
    Ok(res)
}

/// Answers 413 for oversized forms, 408 for ones that arrive too slowly and 400 for
/// unreadable ones, as pages.
fn form_error(err: actix_web::error::UrlencodedError, req: &HttpRequest) -> actix_web::Error {
    use actix_web::error::UrlencodedError;
    let state = req
        .app_data::<web::Data<AppState>>()
        .expect("state is registered");
    let body_error = match &err {
        UrlencodedError::Overflow { .. } => Some(BodyError::TooLarge),
        UrlencodedError::Payload(e) => Some(BodyError::from_payload(e)),
        _ => None,
    };
    let response = match body_error {
        Some(BodyError::TooLarge) => state.message(
            StatusCode::PAYLOAD_TOO_LARGE,
            "That was too much",
            "The form sent more data than we accept.".into(),
        ),
        Some(BodyError::TimedOut) => state.message(
            StatusCode::REQUEST_TIMEOUT,
            "That took too long",
            "The form did not arrive in time. Please go back and try again.".into(),
        ),
        _ => state.message(
            StatusCode::BAD_REQUEST,
            "We couldn’t read that form",
            "Please go back and try again.".into(),
        ),
    };
    actix_web::error::InternalError::from_response(err, response).into()
}

async fn not_found(state: web::Data<AppState>) -> HttpResponse {
    state.message(
        StatusCode::NOT_FOUND,
        "Page not found",
        "There is nothing at this address.".into(),
    )
}

async fn method_not_allowed(state: web::Data<AppState>) -> HttpResponse {
    state.message(
        StatusCode::METHOD_NOT_ALLOWED,
        "Not allowed",
        "This address does not accept that kind of request.".into(),
    )
}

/// `GET /readyz`: 200 while the store answers, 503 otherwise.
async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    match state.verifier.ready().await {
        Ok(()) => HttpResponse::Ok()
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .json(serde_json::json!({ "status": "ready" })),
        Err(e) => {
            tracing::warn!(error = %e, "not ready: store unavailable");
            HttpResponse::ServiceUnavailable()
                .insert_header((header::CACHE_CONTROL, "no-store"))
                .json(serde_json::json!({ "status": "unavailable", "detail": "the store is not reachable" }))
        }
    }
}

/// `GET /metrics`: Prometheus text; with `server.metrics_token`, only for that bearer.
async fn metrics(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    if let Some(token) = &state.metrics_token {
        let presented = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or("");
        if !crate::code::credential_matches(token.expose(), presented.trim()) {
            return HttpResponse::Unauthorized()
                .insert_header((header::WWW_AUTHENTICATE, "Bearer"))
                .insert_header((header::CACHE_CONTROL, "no-store"))
                .content_type("text/plain; charset=utf-8")
                .body("Send server.metrics_token as `Authorization: Bearer TOKEN`.\n");
        }
    }
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(state.verifier.metrics().render())
}

async fn healthz() -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(serde_json::json!({ "status": "ok" }))
}

/// Wires every route; `static_dir` is served under `/static/`.
pub fn configure(
    cfg: &mut web::ServiceConfig,
    static_dir: &std::path::Path,
    optional: OptionalRoutes,
) {
    let resource = |path: &str| web::resource(path).default_service(web::to(method_not_allowed));
    cfg.app_data(
        web::FormConfig::default()
            .limit(MAX_BODY_BYTES)
            .error_handler(form_error),
    )
    .app_data(web::PayloadConfig::default().limit(MAX_BODY_BYTES))
    .service(resource("/").route(web::get().to(pages::phone_form)))
    .service(resource("/request").route(web::post().to(pages::request_code)))
    .service(
        resource("/verify")
            .route(web::get().to(pages::code_form))
            .route(web::post().to(pages::submit_code)),
    )
    .service(resource("/resend").route(web::post().to(pages::resend)))
    .service(resource("/success").route(web::get().to(pages::success)))
    .service(resource("/healthz").route(web::get().to(healthz)))
    .service(resource("/readyz").route(web::get().to(readyz)))
    .service(resource("/metrics").route(web::get().to(metrics)))
    .service(
        resource("/voice/{call_id}")
            .route(web::get().to(callbacks::call_document))
            .route(web::post().to(callbacks::call_document)),
    )
    .service(resource("/webhooks/{provider}").route(web::post().to(callbacks::delivery_report)))
    .service(resource("/api/openapi.json").route(web::get().to(api::openapi)))
    .service(
        web::scope("/api/v1")
            .service(
                web::resource("/verifications")
                    .route(web::post().to(api::start))
                    .default_service(web::to(api::method_not_allowed)),
            )
            .service(
                web::resource("/verifications/check")
                    .route(web::post().to(api::check))
                    .default_service(web::to(api::method_not_allowed)),
            )
            .service(
                web::resource("/verifications/{id}")
                    .route(web::get().to(api::get))
                    .route(web::delete().to(api::cancel))
                    .default_service(web::to(api::method_not_allowed)),
            )
            .default_service(web::to(api::not_found)),
    )
    .service(
        web::scope("/static")
            .wrap(
                actix_web::middleware::DefaultHeaders::new()
                    .add((header::CACHE_CONTROL, "public, max-age=3600")),
            )
            .service(actix_files::Files::new("", static_dir)),
    )
    .default_service(web::to(not_found));
    if optional.twilio_compat {
        cfg.service(
            web::scope("/v2/Services/{service_sid}")
                .service(
                    web::resource("/Verifications").route(web::post().to(twilio_compat::create)),
                )
                .service(
                    web::resource("/VerificationCheck").route(web::post().to(twilio_compat::check)),
                )
                .service(
                    web::resource("/Verifications/{sid}")
                        .route(web::get().to(twilio_compat::fetch))
                        .route(web::post().to(twilio_compat::update)),
                )
                .default_service(web::to(twilio_compat::unknown)),
        );
    }
    if optional.signalwire {
        cfg.service(
            resource("/request-auth")
                .route(web::get().to(seed_compat::request_auth))
                .route(web::post().to(seed_compat::request_auth)),
        )
        .service(
            resource("/validate-auth")
                .route(web::get().to(seed_compat::validate_auth))
                .route(web::post().to(seed_compat::validate_auth)),
        );
    }
    if optional.plivo {
        cfg.service(resource("/verify/{number}").route(web::get().to(seed_compat::plivo_sms)))
            .service(
                resource("/verify_voice/{number}").route(web::get().to(seed_compat::plivo_voice)),
            )
            .service(
                resource("/checkcode/{number}/{code}")
                    .route(web::get().to(seed_compat::plivo_check)),
            );
    }
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
