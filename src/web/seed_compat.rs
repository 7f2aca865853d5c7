//! The request shapes of the tutorials phone-verify replaces, for their users. Off
//! unless enabled; they go through the same rules and limits as everything else.

use std::fmt;

use actix_web::dev::Payload;
use actix_web::http::StatusCode;
use actix_web::{FromRequest, HttpRequest, HttpResponse, ResponseError, web};
use futures_util::future::LocalBoxFuture;
use serde_json::json;

use super::errors::{self, meaning};
use super::{AppState, BodyError, client_ip, read_body};
use crate::domain::{Channel, RetryAfter};
use crate::phone::PhoneNumber;
use crate::verification::{Requester, VerifyError};

/// An answer in the tutorials' shape: `{"status", "message"}`.
fn reply(status: StatusCode, outcome: &str, message: impl Into<String>) -> HttpResponse {
    HttpResponse::build(status).json(json!({"status": outcome, "message": message.into()}))
}

/// A refusal on the tutorial routes.
#[derive(Debug)]
pub struct TutorialError {
    status: StatusCode,
    outcome: &'static str,
    message: String,
    retry_after: Option<RetryAfter>,
}

impl TutorialError {
    fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            outcome: "error",
            message: message.into(),
            retry_after: None,
        }
    }

    /// The tutorials' "codes do not match" answer, with their status.
    fn rejected(status: StatusCode, message: &str) -> Self {
        Self {
            outcome: "rejected",
            ..Self::new(status, message)
        }
    }
}

impl fmt::Display for TutorialError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.status, self.message)
    }
}

impl ResponseError for TutorialError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        errors::answer(self.status, self.retry_after, None, None)
            .json(json!({"status": self.outcome, "message": self.message}))
    }
}

impl From<VerifyError> for TutorialError {
    fn from(error: VerifyError) -> Self {
        let meaning = meaning(&error);
        let message = match &error {
            VerifyError::CountryNotAllowed => "codes are not sent to that country".to_string(),
            VerifyError::RateLimited(wait) | VerifyError::Locked(wait) => {
                format!("too many requests, retry in {}", wait.describe())
            }
            VerifyError::NumberRejected => "this number cannot receive codes".to_string(),
            VerifyError::DeliveryFailed => "the code could not be sent".to_string(),
            VerifyError::FraudBlocked => "codes cannot be sent to this number now".to_string(),
            VerifyError::SpendLimitReached(wait) => {
                format!("the day's budget is spent, retry in {}", wait.describe())
            }
            VerifyError::Store(_) | VerifyError::ProviderUnavailable => {
                "temporarily unavailable".to_string()
            }
            VerifyError::NotFound | VerifyError::NotPending(_) => {
                "no pending verification".to_string()
            }
        };
        Self {
            retry_after: meaning.retry_after,
            ..Self::new(meaning.status, message)
        }
    }
}

impl From<BodyError> for TutorialError {
    fn from(error: BodyError) -> Self {
        match error {
            BodyError::TooLarge => Self::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "the request body is larger than 16 KiB",
            ),
            BodyError::TimedOut => Self::new(
                StatusCode::REQUEST_TIMEOUT,
                "the request body did not arrive in time",
            ),
            BodyError::Unreadable => Self::new(
                StatusCode::BAD_REQUEST,
                "the request body could not be read",
            ),
        }
    }
}

/// Query fields for GET, form fields for POST (the SignalWire tutorial took both). A body
/// that is too large, too slow or unreadable is refused whole: nothing acts on the query.
pub struct Fields(Vec<(String, String)>);

impl Fields {
    /// A field, or `""`.
    fn get(&self, name: &str) -> &str {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map_or("", |(_, v)| v.as_str())
    }
}

impl FromRequest for Fields {
    type Error = TutorialError;
    type Future = LocalBoxFuture<'static, Result<Self, TutorialError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let query: Vec<(String, String)> =
            url::form_urlencoded::parse(req.query_string().as_bytes())
                .into_owned()
                .collect();
        let payload = payload.take();
        Box::pin(async move {
            let body = read_body(payload).await?;
            Ok(Self(
                query
                    .into_iter()
                    .chain(url::form_urlencoded::parse(&body).into_owned())
                    .collect(),
            ))
        })
    }
}

async fn send(
    state: &AppState,
    req: &HttpRequest,
    number: &str,
    channel: Channel,
) -> Result<HttpResponse, TutorialError> {
    let to = PhoneNumber::parse(number, state.verifier.policy().default_region)
        .map_err(|e| TutorialError::new(StatusCode::BAD_REQUEST, e.to_string()))?;
    let requester = Requester::from_ip(client_ip(req, &state.trusted_proxies));
    state.verifier.start(&to, channel, &requester).await?;
    Ok(reply(StatusCode::OK, "success", "verification initiated"))
}

/// Whether `code` is the pending code of `number`. Only an unreachable store is an
/// error; anything else is simply "no".
async fn verified(state: &AppState, number: &str, code: &str) -> Result<bool, TutorialError> {
    let policy = state.verifier.policy();
    let (Ok(to), Ok(code)) = (
        PhoneNumber::parse(number, policy.default_region),
        policy.format.parse(code),
    ) else {
        return Ok(false);
    };
    match state.verifier.check_number(&to, &code).await {
        Ok(result) => Ok(result.valid),
        Err(e @ VerifyError::Store(_)) => Err(e.into()),
        Err(_) => Ok(false),
    }
}

/// SignalWire tutorial: `GET|POST /request-auth` with `number` and optional `channel`.
pub async fn request_auth(
    state: web::Data<AppState>,
    req: HttpRequest,
    fields: Fields,
) -> Result<HttpResponse, TutorialError> {
    let channel = match fields.get("channel") {
        "" => Channel::Sms,
        raw => Channel::parse(raw).ok_or_else(|| {
            TutorialError::new(StatusCode::BAD_REQUEST, "channel must be sms or call")
        })?,
    };
    send(&state, &req, fields.get("number"), channel).await
}

/// SignalWire tutorial: `GET|POST /validate-auth` with `number` and `auth_code`: 200 or 403.
pub async fn validate_auth(
    state: web::Data<AppState>,
    fields: Fields,
) -> Result<HttpResponse, TutorialError> {
    if verified(&state, fields.get("number"), fields.get("auth_code")).await? {
        Ok(reply(StatusCode::OK, "success", "number verified"))
    } else {
        Err(TutorialError::rejected(
            StatusCode::FORBIDDEN,
            "code not valid",
        ))
    }
}

/// Plivo tutorial: `GET /verify/{number}` sends an SMS.
pub async fn plivo_sms(
    state: web::Data<AppState>,
    req: HttpRequest,
    number: web::Path<String>,
) -> Result<HttpResponse, TutorialError> {
    send(&state, &req, &number, Channel::Sms).await
}

/// Plivo tutorial: `GET /verify_voice/{number}` places a call.
pub async fn plivo_voice(
    state: web::Data<AppState>,
    req: HttpRequest,
    number: web::Path<String>,
) -> Result<HttpResponse, TutorialError> {
    send(&state, &req, &number, Channel::Call).await
}

/// Plivo tutorial: `GET /checkcode/{number}/{code}`.
pub async fn plivo_check(
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, TutorialError> {
    let (number, code) = path.into_inner();
    if verified(&state, &number, &code).await? {
        Ok(reply(
            StatusCode::OK,
            "success",
            "codes match, number verified",
        ))
    } else {
        Err(TutorialError::rejected(
            StatusCode::NOT_FOUND,
            "codes do not match, number not verified",
        ))
    }
}
