//! Twilio Verify v2, as Twilio's SDKs call it: form-encoded requests, Basic auth with
//! `twilio_compat.account_sid`/`auth_token`, Twilio's resource shapes and error codes.
//! Only mounted when `twilio_compat.enabled`.

use std::fmt;
use std::future::{Ready, ready};

use actix_web::dev::Payload;
use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::{FromRequest, HttpRequest, HttpResponse, ResponseError, web};
use base64::Engine as _;
use futures_util::future::LocalBoxFuture;
use serde_json::{Value, json};

use super::errors::{self, meaning};
use super::{AppState, BodyError, read_body, rfc3339};
use crate::code::credential_matches;
use crate::domain::{Channel, RetryAfter, Status, Verification};
use crate::i18n::Locale;
use crate::phone::PhoneNumber;
use crate::verification::{Requester, VerifyError};

/// What `/v2` is configured with.
#[derive(Clone)]
pub struct TwilioCompat {
    pub account_sid: String,
    pub auth_token: crate::config::Secret,
    pub service_sid: String,
}

/// A Twilio error: `{code, message, more_info, status}`.
#[derive(Debug)]
pub struct TwilioError {
    status: StatusCode,
    code: u32,
    message: String,
    retry_after: Option<RetryAfter>,
    challenge: bool,
    allow: Option<&'static str>,
}

impl TwilioError {
    fn new(status: StatusCode, code: u32, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            retry_after: None,
            challenge: false,
            allow: None,
        }
    }

    /// `60200`: a parameter Twilio would refuse.
    fn invalid(parameter: &str, why: &str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            60200,
            format!("Invalid parameter `{parameter}`: {why}"),
        )
    }

    /// `20404`: nothing at this address (or another service's).
    pub fn not_found() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            20404,
            "The requested resource was not found",
        )
    }

    /// `20004`: a resource asked with a method it does not take.
    pub fn method_not_allowed(allow: &'static str) -> Self {
        Self {
            allow: Some(allow),
            ..Self::new(StatusCode::METHOD_NOT_ALLOWED, 20004, "Method not allowed")
        }
    }
}

impl fmt::Display for TwilioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.code, self.message)
    }
}

impl ResponseError for TwilioError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        let challenge = self.challenge.then_some("Basic realm=\"Twilio API\"");
        errors::answer(self.status, self.retry_after, challenge, self.allow).json(json!({
            "code": self.code,
            "message": self.message,
            "more_info": format!("https://www.twilio.com/docs/errors/{}", self.code),
            "status": self.status.as_u16(),
        }))
    }
}

impl From<VerifyError> for TwilioError {
    fn from(error: VerifyError) -> Self {
        let meaning = meaning(&error);
        let (code, message) = match &error {
            VerifyError::CountryNotAllowed => (
                60605,
                "Verification delivery attempt blocked: geo permission",
            ),
            VerifyError::RateLimited(_) => (60203, "Max send attempts reached"),
            VerifyError::Locked(_) | VerifyError::NotPending(Status::MaxAttemptsReached) => {
                (60202, "Max check attempts reached")
            }
            VerifyError::NotFound | VerifyError::NotPending(_) => {
                return Self::not_found();
            }
            VerifyError::NumberRejected => {
                return Self::invalid("To", "the number cannot receive verification codes");
            }
            VerifyError::DeliveryFailed => (60008, "Unable to deliver the verification code"),
            VerifyError::FraudBlocked => (
                60410,
                "Verification delivery attempt blocked: the number's prefix is blocked by the fraud guard",
            ),
            VerifyError::SpendLimitReached(_) => {
                (20429, "Too Many Requests: the day's budget is spent")
            }
            VerifyError::Store(_) | VerifyError::ProviderUnavailable => {
                (20503, "Service Unavailable")
            }
        };
        Self {
            retry_after: meaning.retry_after,
            ..Self::new(meaning.status, code, message)
        }
    }
}

impl From<BodyError> for TwilioError {
    fn from(error: BodyError) -> Self {
        match error {
            BodyError::TooLarge => Self::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                20413,
                "Request body too large",
            ),
            BodyError::TimedOut => {
                Self::new(StatusCode::REQUEST_TIMEOUT, 20408, "Request timed out")
            }
            BodyError::Unreadable => Self::invalid("body", "could not be read"),
        }
    }
}

/// A caller with the configured Basic credentials, asking for the configured service.
pub struct TwilioAuth;

impl TwilioAuth {
    fn authenticate(req: &HttpRequest) -> Result<Self, TwilioError> {
        let state = req
            .app_data::<web::Data<AppState>>()
            .expect("state is registered");
        let compat = state
            .twilio_compat
            .as_ref()
            .ok_or_else(TwilioError::not_found)?;
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
            return Err(TwilioError {
                challenge: true,
                ..TwilioError::new(StatusCode::UNAUTHORIZED, 20003, "Authenticate")
            });
        }
        if req.match_info().get("service_sid") != Some(compat.service_sid.as_str()) {
            return Err(TwilioError::not_found());
        }
        Ok(Self)
    }
}

impl FromRequest for TwilioAuth {
    type Error = TwilioError;
    type Future = Ready<Result<Self, TwilioError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(Self::authenticate(req))
    }
}

/// The form fields of a request, as Twilio's SDKs send them.
pub struct TwilioForm(Vec<(String, String)>);

impl TwilioForm {
    /// A field, when present and not empty.
    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    }
}

impl FromRequest for TwilioForm {
    type Error = TwilioError;
    type Future = LocalBoxFuture<'static, Result<Self, TwilioError>>;

    fn from_request(_: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let payload = payload.take();
        Box::pin(async move {
            let body = read_body(payload).await?;
            Ok(Self(
                url::form_urlencoded::parse(&body).into_owned().collect(),
            ))
        })
    }
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
        "locale": v.locale.tag(),
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

/// The verification id inside a `VE…` sid.
fn verification_id(sid: &str) -> Result<&str, TwilioError> {
    sid.strip_prefix("VE").ok_or_else(TwilioError::not_found)
}

fn parse_phone(raw: &str, state: &AppState) -> Result<PhoneNumber, TwilioError> {
    PhoneNumber::parse(raw, state.verifier.policy().default_region)
        .map_err(|e| TwilioError::invalid("To", &e.to_string()))
}

/// The person's address from Twilio's `RateLimits` parameter (a JSON object; its key
/// `end_user_ip_address` is what Twilio's Programmable Rate Limits count per address).
/// Without it no per-address limit applies: the caller is a backend.
fn end_user_ip(rate_limits: Option<&str>) -> Result<Option<std::net::IpAddr>, TwilioError> {
    let Some(raw) = rate_limits else {
        return Ok(None);
    };
    let refused = || {
        TwilioError::invalid(
            "RateLimits",
            "must be a JSON object; end_user_ip_address an IP address",
        )
    };
    let value: Value = serde_json::from_str(raw).map_err(|_| refused())?;
    let object = value.as_object().ok_or_else(refused)?;
    match object.get("end_user_ip_address") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(ip)) => ip.trim().parse().map(Some).map_err(|_| refused()),
        Some(_) => Err(refused()),
    }
}

/// `POST /v2/Services/{ServiceSid}/Verifications`.
pub async fn create(
    state: web::Data<AppState>,
    _auth: TwilioAuth,
    service_sid: web::Path<String>,
    form: TwilioForm,
) -> Result<HttpResponse, TwilioError> {
    let to = parse_phone(
        form.get("To")
            .ok_or_else(|| TwilioError::invalid("To", "required"))?,
        &state,
    )?;
    let channel = form
        .get("Channel")
        .and_then(Channel::parse)
        .ok_or_else(|| TwilioError::invalid("Channel", "must be sms or call"))?;
    let default_locale = state.verifier.policy().default_locale;
    let locale = form
        .get("Locale")
        .filter(|tag| !tag.trim().is_empty())
        .map(|tag| {
            Locale::resolve(tag, default_locale).map_err(|_| {
                TwilioError::invalid("Locale", "must be a language tag, like es or pt-BR")
            })
        })
        .transpose()?;
    let requester = Requester {
        ip: end_user_ip(form.get("RateLimits"))?,
        browser: None,
        locale,
    };
    let v = state.verifier.start(&to, channel, &requester).await?;
    Ok(HttpResponse::Created().json(resource(&state, &service_sid, &v)))
}

/// `POST /v2/Services/{ServiceSid}/VerificationCheck` with `Code` and `To` or `VerificationSid`.
pub async fn check(
    state: web::Data<AppState>,
    _auth: TwilioAuth,
    service_sid: web::Path<String>,
    form: TwilioForm,
) -> Result<HttpResponse, TwilioError> {
    let code = state
        .verifier
        .policy()
        .format
        .parse(
            form.get("Code")
                .ok_or_else(|| TwilioError::invalid("Code", "required"))?,
        )
        .map_err(|e| TwilioError::invalid("Code", &e.to_string()))?;
    let result = match (form.get("VerificationSid"), form.get("To")) {
        (Some(sid), _) => state.verifier.check(verification_id(sid)?, &code).await?,
        (None, Some(to)) => {
            let to = parse_phone(to, &state)?;
            state.verifier.check_number(&to, &code).await?
        }
        (None, None) => {
            return Err(TwilioError::invalid(
                "To",
                "either To or VerificationSid is required",
            ));
        }
    };
    let mut body = resource(&state, &service_sid, &result.verification);
    body["valid"] = json!(result.valid);
    for unused in ["lookup", "send_code_attempts", "url", "sna"] {
        body.as_object_mut().map(|o| o.remove(unused));
    }
    body["sna_attempts_error_codes"] = json!([]);
    Ok(HttpResponse::Ok().json(body))
}

/// `GET /v2/Services/{ServiceSid}/Verifications/{Sid}`.
pub async fn fetch(
    state: web::Data<AppState>,
    _auth: TwilioAuth,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, TwilioError> {
    let (service_sid, sid) = path.into_inner();
    let v = state.verifier.get(verification_id(&sid)?).await?;
    Ok(HttpResponse::Ok().json(resource(&state, &service_sid, &v)))
}

/// `POST /v2/Services/{ServiceSid}/Verifications/{Sid}` with `Status=canceled|approved`.
pub async fn update(
    state: web::Data<AppState>,
    _auth: TwilioAuth,
    path: web::Path<(String, String)>,
    form: TwilioForm,
) -> Result<HttpResponse, TwilioError> {
    let (service_sid, sid) = path.into_inner();
    let id = verification_id(&sid)?;
    let v = match form.get("Status") {
        Some("canceled") => state.verifier.cancel(id).await?,
        Some("approved") => state.verifier.approve(id).await?,
        _ => {
            return Err(TwilioError::invalid(
                "Status",
                "must be canceled or approved",
            ));
        }
    };
    Ok(HttpResponse::Ok().json(resource(&state, &service_sid, &v)))
}

/// Anything else under `/v2`.
pub async fn unknown() -> Result<HttpResponse, TwilioError> {
    Err(TwilioError::not_found())
}
