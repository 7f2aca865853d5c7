//! The request shapes of the tutorials phone-verify replaces (SPEC §7), for their users.
//! Off unless enabled; they go through the same rules and limits as everything else.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::json;

use super::{AppState, BodyError, client_ip, read_body};
use crate::domain::Channel;
use crate::phone::PhoneNumber;
use crate::verification::{Requester, VerifyError};

fn reply(status: StatusCode, outcome: &str, message: impl Into<String>) -> HttpResponse {
    HttpResponse::build(status)
        .insert_header(("cache-control", "no-store"))
        .json(json!({"status": outcome, "message": message.into()}))
}

fn start_error(error: VerifyError) -> HttpResponse {
    match error {
        VerifyError::CountryNotAllowed => reply(
            StatusCode::FORBIDDEN,
            "error",
            "codes are not sent to that country",
        ),
        VerifyError::RateLimited(wait) | VerifyError::Locked(wait) => {
            let mut response = reply(
                StatusCode::TOO_MANY_REQUESTS,
                "error",
                format!("too many requests, retry in {}", wait.describe()),
            );
            response
                .headers_mut()
                .insert(actix_web::http::header::RETRY_AFTER, wait.secs().into());
            response
        }
        VerifyError::NumberRejected => reply(
            StatusCode::UNPROCESSABLE_ENTITY,
            "error",
            "this number cannot receive codes",
        ),
        VerifyError::DeliveryFailed => reply(
            StatusCode::BAD_GATEWAY,
            "error",
            "the code could not be sent",
        ),
        VerifyError::Store(e) => {
            tracing::error!(error = %e, "store unavailable");
            reply(
                StatusCode::SERVICE_UNAVAILABLE,
                "error",
                "temporarily unavailable",
            )
        }
        VerifyError::NotFound | VerifyError::NotPending(_) => {
            reply(StatusCode::NOT_FOUND, "error", "no pending verification")
        }
    }
}

async fn send(state: &AppState, req: &HttpRequest, number: &str, channel: Channel) -> HttpResponse {
    let to = match PhoneNumber::parse(number, state.verifier.policy().default_region) {
        Ok(to) => to,
        Err(e) => return reply(StatusCode::BAD_REQUEST, "error", e.to_string()),
    };
    match state
        .verifier
        .start(
            &to,
            channel,
            &Requester::from_ip(client_ip(req, &state.trusted_proxies)),
        )
        .await
    {
        Ok(_) => reply(StatusCode::OK, "success", "verification initiated"),
        Err(e) => start_error(e),
    }
}

/// Whether `code` is the pending code of `number`.
async fn verified(state: &AppState, number: &str, code: &str) -> Result<bool, VerifyError> {
    let policy = state.verifier.policy();
    let (Ok(to), Ok(code)) = (
        PhoneNumber::parse(number, policy.default_region),
        policy.format.parse(code),
    ) else {
        return Ok(false);
    };
    match state.verifier.check_number(&to, &code).await {
        Ok(result) => Ok(result.valid),
        Err(VerifyError::Store(e)) => Err(VerifyError::Store(e)),
        Err(_) => Ok(false),
    }
}

/// Query fields for GET, form fields for POST (the SignalWire tutorial took both). A body
/// that is too large, too slow or unreadable is refused whole: nothing acts on the query.
async fn fields(
    req: &HttpRequest,
    payload: web::Payload,
) -> Result<Vec<(String, String)>, HttpResponse> {
    let body = read_body(payload).await.map_err(|e| match e {
        BodyError::TooLarge => reply(
            StatusCode::PAYLOAD_TOO_LARGE,
            "error",
            "the request body is larger than 16 KiB",
        ),
        BodyError::TimedOut => reply(
            StatusCode::REQUEST_TIMEOUT,
            "error",
            "the request body did not arrive in time",
        ),
        BodyError::Unreadable => reply(
            StatusCode::BAD_REQUEST,
            "error",
            "the request body could not be read",
        ),
    })?;
    Ok(url::form_urlencoded::parse(req.query_string().as_bytes())
        .into_owned()
        .chain(url::form_urlencoded::parse(&body).into_owned())
        .collect())
}

fn get<'a>(fields: &'a [(String, String)], name: &str) -> &'a str {
    fields
        .iter()
        .find(|(k, _)| k == name)
        .map_or("", |(_, v)| v.as_str())
}

/// SignalWire tutorial: `GET|POST /request-auth` with `number` and optional `channel`.
pub async fn request_auth(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> HttpResponse {
    let fields = match fields(&req, payload).await {
        Ok(fields) => fields,
        Err(response) => return response,
    };
    let channel = match get(&fields, "channel") {
        "" => Channel::Sms,
        raw => match Channel::parse(raw) {
            Some(channel) => channel,
            None => {
                return reply(
                    StatusCode::BAD_REQUEST,
                    "error",
                    "channel must be sms or call",
                );
            }
        },
    };
    send(&state, &req, get(&fields, "number"), channel).await
}

/// SignalWire tutorial: `GET|POST /validate-auth` with `number` and `auth_code`: 200 or 403.
pub async fn validate_auth(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> HttpResponse {
    let fields = match fields(&req, payload).await {
        Ok(fields) => fields,
        Err(response) => return response,
    };
    match verified(&state, get(&fields, "number"), get(&fields, "auth_code")).await {
        Ok(true) => reply(StatusCode::OK, "success", "number verified"),
        Ok(false) => reply(StatusCode::FORBIDDEN, "rejected", "code not valid"),
        Err(e) => start_error(e),
    }
}

/// Plivo tutorial: `GET /verify/{number}` sends an SMS.
pub async fn plivo_sms(
    state: web::Data<AppState>,
    req: HttpRequest,
    number: web::Path<String>,
) -> HttpResponse {
    send(&state, &req, &number, Channel::Sms).await
}

/// Plivo tutorial: `GET /verify_voice/{number}` places a call.
pub async fn plivo_voice(
    state: web::Data<AppState>,
    req: HttpRequest,
    number: web::Path<String>,
) -> HttpResponse {
    send(&state, &req, &number, Channel::Call).await
}

/// Plivo tutorial: `GET /checkcode/{number}/{code}`.
pub async fn plivo_check(
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> HttpResponse {
    let (number, code) = path.into_inner();
    match verified(&state, &number, &code).await {
        Ok(true) => reply(StatusCode::OK, "success", "codes match, number verified"),
        Ok(false) => reply(
            StatusCode::NOT_FOUND,
            "rejected",
            "codes do not match, number not verified",
        ),
        Err(e) => start_error(e),
    }
}
