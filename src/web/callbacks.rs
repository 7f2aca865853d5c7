//! Requests providers make to us: call instructions (`/voice/{call_id}`) and delivery
//! reports (`/webhooks/{provider}`). Handlers rebuild the URL the provider signed and
//! pass the raw request to the verifier, which checks signatures.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};

use super::AppState;
use crate::verification::CallbackError;
use crate::verification::callbacks::Inbound;

/// The request as the provider sent it, with the URL it called (our public origin).
fn inbound<'a>(
    req: &'a HttpRequest,
    url: &'a str,
    body: &'a [u8],
    now: std::time::SystemTime,
) -> Inbound<'a> {
    Inbound {
        method: req.method().as_str(),
        url,
        headers: req
            .headers()
            .iter()
            .filter_map(|(name, value)| {
                Some((name.as_str().to_string(), value.to_str().ok()?.to_string()))
            })
            .collect(),
        body,
        now,
    }
}

fn public_url(state: &AppState, req: &HttpRequest) -> String {
    let path = req.uri().path_and_query().map_or("/", |pq| pq.as_str());
    format!("{}{path}", state.public_origin)
}

fn query_field(req: &HttpRequest, name: &str) -> String {
    url::form_urlencoded::parse(req.query_string().as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

/// A refused provider request: an empty `403`, `404` or `503` (providers read only the
/// status). Store failures are logged once, here.
#[derive(Debug)]
pub struct Refused(CallbackError);

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl From<CallbackError> for Refused {
    fn from(error: CallbackError) -> Self {
        if let CallbackError::Store(e) = &error {
            tracing::error!(error = %e, "store unavailable");
        }
        Self(error)
    }
}

impl ResponseError for Refused {
    fn status_code(&self) -> StatusCode {
        match self.0 {
            CallbackError::Forbidden => StatusCode::FORBIDDEN,
            CallbackError::NotFound => StatusCode::NOT_FOUND,
            CallbackError::Store(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    fn error_response(&self) -> HttpResponse {
        HttpResponse::build(self.status_code()).finish()
    }
}

/// `GET|POST /voice/{call_id}?provider=NAME`: the XML a SignalWire or Plivo call reads.
pub async fn call_document(
    state: web::Data<AppState>,
    req: HttpRequest,
    call_id: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, Refused> {
    let url = public_url(&state, &req);
    let request = inbound(&req, &url, &body, state.verifier.now());
    let xml = state
        .verifier
        .call_document(&call_id, &query_field(&req, "provider"), &request)
        .await?;
    Ok(HttpResponse::Ok()
        .content_type("application/xml; charset=utf-8")
        .body(xml))
}

/// `POST /webhooks/{provider}?v=ID`: a signed delivery report.
pub async fn delivery_report(
    state: web::Data<AppState>,
    req: HttpRequest,
    provider: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, Refused> {
    let url = public_url(&state, &req);
    let request = inbound(&req, &url, &body, state.verifier.now());
    state
        .verifier
        .record_delivery(&provider, &query_field(&req, "v"), &request)
        .await?;
    Ok(HttpResponse::NoContent().finish())
}
