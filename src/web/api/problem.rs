//! Errors of the JSON API: RFC 9457 problem documents with a stable `code`, their status
//! taken from the shared table in `web::errors`.

use std::fmt;

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;
use utoipa::ToSchema;

use crate::domain::{RetryAfter, Status};
use crate::verification::VerifyError;
use crate::web::BodyError;
use crate::web::errors::{self, meaning};

/// An error (RFC 9457).
#[derive(Serialize, ToSchema)]
pub struct Problem {
    /// `urn:phone-verify:problem:` and the code.
    #[serde(rename = "type")]
    kind: String,
    /// The HTTP status's reason phrase.
    title: String,
    status: u16,
    /// For people: what happened and what to do.
    detail: String,
    /// Stable, for programs: `invalid_phone`, `rate_limited`, `max_attempts_reached`, ...
    code: String,
}

/// A refusal of the JSON API.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    detail: String,
    retry_after: Option<RetryAfter>,
    /// Ask for a bearer key (`WWW-Authenticate: Bearer`).
    challenge: bool,
    /// The methods the route takes, for `405`.
    allow: Option<&'static str>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, detail: impl Into<String>) -> Self {
        Self {
            status,
            code,
            detail: detail.into(),
            retry_after: None,
            challenge: false,
            allow: None,
        }
    }

    /// `400` with `code`, for input that cannot be what the endpoint takes.
    pub fn invalid(code: &'static str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, detail)
    }

    /// `401`; `challenge` adds `WWW-Authenticate: Bearer`.
    pub fn unauthorized(detail: &str, challenge: bool) -> Self {
        Self {
            challenge,
            ..Self::new(StatusCode::UNAUTHORIZED, "unauthorized", detail)
        }
    }

    /// `404` for routes that do not exist.
    pub fn no_such_endpoint() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "There is no such endpoint.",
        )
    }

    /// `405` for a route asked with a method it does not take.
    pub fn method_not_allowed(allow: &'static str) -> Self {
        Self {
            allow: Some(allow),
            ..Self::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                format!("This endpoint takes {allow}."),
            )
        }
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.detail)
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        let challenge = self.challenge.then_some("Bearer");
        errors::answer(self.status, self.retry_after, challenge, self.allow)
            .content_type("application/problem+json")
            .json(Problem {
                kind: format!("urn:phone-verify:problem:{}", self.code),
                title: self
                    .status
                    .canonical_reason()
                    .unwrap_or("Error")
                    .to_string(),
                status: self.status.as_u16(),
                detail: self.detail.clone(),
                code: self.code.to_string(),
            })
    }
}

impl From<VerifyError> for ApiError {
    fn from(error: VerifyError) -> Self {
        let meaning = meaning(&error);
        let (code, detail) = match &error {
            VerifyError::CountryNotAllowed => (
                "country_not_allowed",
                "Codes are not sent to numbers in this country.".to_string(),
            ),
            VerifyError::RateLimited(wait) => (
                "rate_limited",
                format!("Too many codes requested; retry in {}.", wait.describe()),
            ),
            VerifyError::Locked(wait) => (
                "too_many_attempts",
                format!(
                    "Too many incorrect codes for this number; retry in {}.",
                    wait.describe()
                ),
            ),
            VerifyError::NotPending(Status::MaxAttemptsReached) => (
                "max_attempts_reached",
                "This verification has used all its attempts; start a new one.".to_string(),
            ),
            VerifyError::NotFound | VerifyError::NotPending(_) => {
                ("not_found", "No pending verification matches.".to_string())
            }
            VerifyError::NumberRejected => (
                "number_unreachable",
                "This number cannot receive verification codes.".to_string(),
            ),
            VerifyError::DeliveryFailed => (
                "delivery_failed",
                "No provider could deliver the code; try again later.".to_string(),
            ),
            VerifyError::FraudBlocked => (
                "fraud_blocked",
                "Codes cannot be sent to this number now: its range is blocked by the fraud guard."
                    .to_string(),
            ),
            VerifyError::SpendLimitReached(wait) => (
                "spend_limit_reached",
                format!(
                    "The day's sending budget is spent; retry in {}.",
                    wait.describe()
                ),
            ),
            VerifyError::ProviderUnavailable => (
                "provider_unavailable",
                "The provider that checks this verification's code did not answer; the attempt was not counted. Retry shortly.".to_string(),
            ),
            VerifyError::Store(_) => (
                "unavailable",
                "The service is temporarily unavailable.".to_string(),
            ),
        };
        Self {
            retry_after: meaning.retry_after,
            ..Self::new(meaning.status, code, detail)
        }
    }
}

impl From<BodyError> for ApiError {
    fn from(error: BodyError) -> Self {
        match error {
            BodyError::TooLarge => Self::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                "The body is larger than 16 KiB.",
            ),
            BodyError::TimedOut => Self::new(
                StatusCode::REQUEST_TIMEOUT,
                "request_timeout",
                "The body did not arrive in time.",
            ),
            BodyError::Unreadable => Self::invalid("malformed_json", "The body could not be read."),
        }
    }
}
