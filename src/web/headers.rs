//! Headers on every response, and which listener serves what.

use actix_web::body::BoxBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{HttpResponse, web};

use super::AppState;

/// The Content-Security-Policy of every response, but for `form-action`.
pub const CSP_WITHOUT_FORM_ACTION: &str =
    "default-src 'self'; frame-ancestors 'none'; object-src 'none'; base-uri 'none'";
const CSP: &str = "default-src 'self'; frame-ancestors 'none'; object-src 'none'; base-uri 'none'; form-action 'self'";

/// Adds the security headers to every response, and `Cache-Control: no-store` to every
/// response that does not say otherwise (only `/static` does): pages, API answers and
/// redirects all concern codes or verifications, and none may be cached.
pub async fn security_headers(
    req: ServiceRequest,
    next: Next<BoxBody>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let hsts = req
        .app_data::<web::Data<AppState>>()
        .is_some_and(|s| s.hsts);
    let mut res = next.call(req).await?;
    let headers = res.headers_mut();
    // A page of a sign-in sets its own, allowing its forms to lead to the application.
    if !headers.contains_key(header::CONTENT_SECURITY_POLICY) {
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CSP),
        );
    }
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    if !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    if hsts {
        headers.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=63072000; includeSubDomains"),
        );
    }
    Ok(res)
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
