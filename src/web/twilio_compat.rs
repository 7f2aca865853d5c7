//! Twilio Verify v2, as Twilio's SDKs call it (SPEC §6): form-encoded requests, Basic
//! auth with `twilio_compat.account_sid`/`auth_token`, Twilio's resource shapes and
//! error codes. Only mounted when `twilio_compat.enabled`.

use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use base64::Engine as _;
use serde_json::{Value, json};

use super::{AppState, BodyError, client_ip, read_body, rfc3339};
use crate::code::credential_matches;
use crate::domain::{Channel, Status, Verification};
use crate::phone::PhoneNumber;
use crate::verification::{Requester, VerifyError};

/// What `/v2` is configured with.
#[derive(Clone)]
pub struct TwilioCompat {
    pub account_sid: String,
    pub auth_token: crate::config::Secret,
    pub service_sid: String,
}

/// A Twilio error body: `{code, message, more_info, status}`.
fn error(status: StatusCode, code: u32, message: impl Into<String>) -> HttpResponse {
    HttpResponse::build(status)
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(json!({
            "code": code,
            "message": message.into(),
            "more_info": format!("https://www.twilio.com/docs/errors/{code}"),
            "status": status.as_u16(),
        }))
}

fn not_found(req: &HttpRequest) -> HttpResponse {
    error(
        StatusCode::NOT_FOUND,
        20404,
        format!("The requested resource {} was not found", req.path()),
    )
}

fn invalid(parameter: &str, why: &str) -> HttpResponse {
    error(
        StatusCode::BAD_REQUEST,
        60200,
        format!("Invalid parameter `{parameter}`: {why}"),
    )
}

/// Checks Basic auth and the service sid; `Some` is the refusal to send.
fn refusal(state: &AppState, req: &HttpRequest, service_sid: &str) -> Option<HttpResponse> {
    let Some(compat) = &state.twilio_compat else {
        return Some(not_found(req));
    };
    let credentials = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b64| {
            base64::engine::general_purpose::STANDARD
                .decode(b64.trim())
                .ok()
        })
        .and_then(|raw| String::from_utf8(raw).ok());
    let authenticated = credentials
        .as_deref()
        .and_then(|c| c.split_once(':'))
        .is_some_and(|(user, password)| {
            credential_matches(&compat.account_sid, user)
                & credential_matches(compat.auth_token.expose(), password)
        });
    if !authenticated {
        let mut response = error(StatusCode::UNAUTHORIZED, 20003, "Authenticate");
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            header::HeaderValue::from_static("Basic realm=\"Twilio API\""),
        );
        return Some(response);
    }
    if service_sid != compat.service_sid {
        return Some(not_found(req));
    }
    None
}

async fn form(payload: web::Payload) -> Result<Vec<(String, String)>, HttpResponse> {
    let body = read_body(payload).await.map_err(|e| match e {
        BodyError::TooLarge => error(
            StatusCode::PAYLOAD_TOO_LARGE,
            20413,
            "Request body too large",
        ),
        BodyError::TimedOut => error(StatusCode::REQUEST_TIMEOUT, 20408, "Request timed out"),
        BodyError::Unreadable => invalid("body", "could not be read"),
    })?;
    Ok(url::form_urlencoded::parse(&body).into_owned().collect())
}

/// The form of an authorized request for this service; `Err` is the refusal to send.
async fn authorized_form(
    state: &AppState,
    req: &HttpRequest,
    service_sid: &str,
    payload: web::Payload,
) -> Result<Vec<(String, String)>, HttpResponse> {
    match refusal(state, req, service_sid) {
        Some(response) => Err(response),
        None => form(payload).await,
    }
}

fn field<'a>(form: &'a [(String, String)], name: &str) -> Option<&'a str> {
    form.iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .filter(|v| !v.is_empty())
}

/// The Verification resource, with Twilio's field names and formats.
fn resource(state: &AppState, service_sid: &str, v: &Verification) -> Value {
    let compat = state
        .twilio_compat
        .as_ref()
        .expect("mounted only when configured");
    let sid = format!("VE{}", v.id);
    json!({
        "sid": sid,
        "service_sid": service_sid,
        "account_sid": compat.account_sid,
        "to": v.to.e164(),
        "channel": v.channel.as_str(),
        "status": v.status.as_str(),
        "valid": v.status == Status::Approved,
        "lookup": {},
        "amount": null,
        "payee": null,
        "send_code_attempts": v.send_attempts.iter().enumerate().map(|(i, a)| json!({
            "attempt_sid": format!("VL{}{:08x}", &v.id[..24], i),
            "channel": a.channel.as_str(),
            "time": rfc3339(a.at),
        })).collect::<Vec<_>>(),
        "date_created": rfc3339(v.created_at),
        "date_updated": rfc3339(v.last_sent_at),
        "sna": null,
        "url": format!("{}/v2/Services/{service_sid}/Verifications/{sid}", state.public_origin),
    })
}

fn verification_error(req: &HttpRequest, e: VerifyError) -> HttpResponse {
    match e {
        VerifyError::CountryNotAllowed => error(
            StatusCode::FORBIDDEN,
            60605,
            "Verification delivery attempt blocked: geo permission",
        ),
        VerifyError::RateLimited(wait) => {
            let mut response = error(
                StatusCode::TOO_MANY_REQUESTS,
                60203,
                "Max send attempts reached",
            );
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, wait.secs().into());
            response
        }
        VerifyError::Locked(wait) => {
            let mut response = error(
                StatusCode::TOO_MANY_REQUESTS,
                60202,
                "Max check attempts reached",
            );
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, wait.secs().into());
            response
        }
        VerifyError::NotPending(Status::MaxAttemptsReached) => error(
            StatusCode::TOO_MANY_REQUESTS,
            60202,
            "Max check attempts reached",
        ),
        VerifyError::NotFound | VerifyError::NotPending(_) => not_found(req),
        VerifyError::NumberRejected => {
            invalid("To", "the number cannot receive verification codes")
        }
        VerifyError::DeliveryFailed => error(
            StatusCode::BAD_GATEWAY,
            60008,
            "Unable to deliver the verification code",
        ),
        VerifyError::Store(e) => {
            tracing::error!(error = %e, "store unavailable");
            error(
                StatusCode::SERVICE_UNAVAILABLE,
                20503,
                "Service Unavailable",
            )
        }
    }
}

fn ok(status: StatusCode, body: Value) -> HttpResponse {
    HttpResponse::build(status)
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(body)
}

/// `POST /v2/Services/{ServiceSid}/Verifications`.
pub async fn create(
    state: web::Data<AppState>,
    req: HttpRequest,
    service_sid: web::Path<String>,
    payload: web::Payload,
) -> HttpResponse {
    let form = match authorized_form(&state, &req, &service_sid, payload).await {
        Ok(form) => form,
        Err(response) => return response,
    };
    let policy = state.verifier.policy();
    let Some(raw_to) = field(&form, "To") else {
        return invalid("To", "required");
    };
    let to = match PhoneNumber::parse(raw_to, policy.default_region) {
        Ok(to) => to,
        Err(e) => return invalid("To", &e.to_string()),
    };
    let Some(channel) = field(&form, "Channel").and_then(Channel::parse) else {
        return invalid("Channel", "must be sms or call");
    };
    match state
        .verifier
        .start(
            &to,
            channel,
            &Requester::from_ip(client_ip(&req, &state.trusted_proxies)),
        )
        .await
    {
        Ok(v) => ok(StatusCode::CREATED, resource(&state, &service_sid, &v)),
        Err(e) => verification_error(&req, e),
    }
}

/// `POST /v2/Services/{ServiceSid}/VerificationCheck` with `Code` and `To` or `VerificationSid`.
pub async fn check(
    state: web::Data<AppState>,
    req: HttpRequest,
    service_sid: web::Path<String>,
    payload: web::Payload,
) -> HttpResponse {
    let form = match authorized_form(&state, &req, &service_sid, payload).await {
        Ok(form) => form,
        Err(response) => return response,
    };
    let policy = state.verifier.policy();
    let code = match field(&form, "Code").map(|c| policy.format.parse(c)) {
        Some(Ok(code)) => code,
        Some(Err(e)) => return invalid("Code", &e.to_string()),
        None => return invalid("Code", "required"),
    };
    let result = match (field(&form, "VerificationSid"), field(&form, "To")) {
        (Some(sid), _) => match sid.strip_prefix("VE") {
            Some(id) => state.verifier.check(id, &code).await,
            None => return not_found(&req),
        },
        (None, Some(to)) => match PhoneNumber::parse(to, policy.default_region) {
            Ok(to) => state.verifier.check_number(&to, &code).await,
            Err(e) => return invalid("To", &e.to_string()),
        },
        (None, None) => return invalid("To", "either To or VerificationSid is required"),
    };
    match result {
        Ok(result) => {
            let mut body = resource(&state, &service_sid, &result.verification);
            body["valid"] = json!(result.valid);
            for unused in ["lookup", "send_code_attempts", "url", "sna"] {
                body.as_object_mut().map(|o| o.remove(unused));
            }
            body["sna_attempts_error_codes"] = json!([]);
            ok(StatusCode::OK, body)
        }
        Err(e) => verification_error(&req, e),
    }
}

/// `GET /v2/Services/{ServiceSid}/Verifications/{Sid}`.
pub async fn fetch(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<(String, String)>,
) -> HttpResponse {
    let (service_sid, sid) = path.into_inner();
    if let Some(response) = refusal(&state, &req, &service_sid) {
        return response;
    }
    let Some(id) = sid.strip_prefix("VE") else {
        return not_found(&req);
    };
    match state.verifier.get(id).await {
        Ok(v) => ok(StatusCode::OK, resource(&state, &service_sid, &v)),
        Err(e) => verification_error(&req, e),
    }
}

/// `POST /v2/Services/{ServiceSid}/Verifications/{Sid}` with `Status=canceled|approved`.
pub async fn update(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<(String, String)>,
    payload: web::Payload,
) -> HttpResponse {
    let (service_sid, sid) = path.into_inner();
    let form = match authorized_form(&state, &req, &service_sid, payload).await {
        Ok(form) => form,
        Err(response) => return response,
    };
    let Some(id) = sid.strip_prefix("VE") else {
        return not_found(&req);
    };
    let result = match field(&form, "Status") {
        Some("canceled") => state.verifier.cancel(id).await,
        Some("approved") => state.verifier.approve(id).await,
        _ => return invalid("Status", "must be canceled or approved"),
    };
    match result {
        Ok(v) => ok(StatusCode::OK, resource(&state, &service_sid, &v)),
        Err(e) => verification_error(&req, e),
    }
}

/// Anything else under `/v2`.
pub async fn unknown(req: HttpRequest) -> HttpResponse {
    not_found(&req)
}
