//! What each refusal of the use cases means, decided once for every front end: the HTTP
//! status, when to retry, and whether the operator must hear of it (then it is logged,
//! once, when a front end's error is made from it). Each front end (pages, JSON API,
//! `/v2`, tutorial routes) has its own error type that takes its status from here and
//! chooses only its own words and codes.
//!
//! One deliberate difference: the hosted pages show every refusal about the number the
//! person typed (a country not allowed, a number the provider rejects) on the phone form
//! again, and a form shown again with a message is `422` there. The machine-facing APIs
//! answer a country outside `allowed_countries` with `403`, as Twilio does.

use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::{HttpResponse, HttpResponseBuilder};

use crate::domain::{RetryAfter, Status};
use crate::verification::VerifyError;

/// What a refusal means over HTTP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Meaning {
    pub status: StatusCode,
    /// When the client may try again (`Retry-After`).
    pub retry_after: Option<RetryAfter>,
}

/// The one table: what each `VerifyError` means. Store failures are logged here.
pub fn meaning(error: &VerifyError) -> Meaning {
    let (status, retry_after) = match error {
        VerifyError::CountryNotAllowed | VerifyError::FraudBlocked => (StatusCode::FORBIDDEN, None),
        VerifyError::SpendLimitReached(wait) => (StatusCode::TOO_MANY_REQUESTS, Some(*wait)),
        VerifyError::RateLimited(wait) | VerifyError::Locked(wait) => {
            (StatusCode::TOO_MANY_REQUESTS, Some(*wait))
        }
        VerifyError::NotPending(Status::MaxAttemptsReached) => {
            (StatusCode::TOO_MANY_REQUESTS, None)
        }
        VerifyError::NotFound | VerifyError::NotPending(_) => (StatusCode::NOT_FOUND, None),
        VerifyError::NumberRejected => (StatusCode::UNPROCESSABLE_ENTITY, None),
        VerifyError::DeliveryFailed => (StatusCode::BAD_GATEWAY, None),
        VerifyError::ProviderUnavailable => (StatusCode::SERVICE_UNAVAILABLE, None),
        VerifyError::Store(e) => {
            tracing::error!(error = %e, "store unavailable");
            (StatusCode::SERVICE_UNAVAILABLE, None)
        }
    };
    Meaning {
        status,
        retry_after,
    }
}

/// `response`, saying when to try again when there is a wait.
pub fn retry_later(mut response: HttpResponse, wait: Option<RetryAfter>) -> HttpResponse {
    if let Some(wait) = wait {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, wait.secs().into());
    }
    response
}

/// The start of every error answer: its status, `Retry-After` (whole seconds) when the
/// client may try again, the authentication `challenge` it asks for, and the methods a
/// route takes (`Allow`, for `405`).
pub fn answer(
    status: StatusCode,
    retry_after: Option<RetryAfter>,
    challenge: Option<&'static str>,
    allow: Option<&'static str>,
) -> HttpResponseBuilder {
    let mut response = HttpResponseBuilder::new(status);
    if let Some(wait) = retry_after {
        response.insert_header((header::RETRY_AFTER, wait.secs()));
    }
    if let Some(challenge) = challenge {
        response.insert_header((header::WWW_AUTHENTICATE, challenge));
    }
    if let Some(allow) = allow {
        response.insert_header((header::ALLOW, allow));
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verification::StoreError;
    use std::time::Duration;

    #[test]
    fn every_refusal_has_one_status() {
        let wait = RetryAfter(Duration::from_secs(30));
        let cases = [
            (VerifyError::CountryNotAllowed, 403, None),
            (VerifyError::RateLimited(wait), 429, Some(wait)),
            (VerifyError::Locked(wait), 429, Some(wait)),
            (VerifyError::NotFound, 404, None),
            (VerifyError::NotPending(Status::Approved), 404, None),
            (
                VerifyError::NotPending(Status::MaxAttemptsReached),
                429,
                None,
            ),
            (VerifyError::NumberRejected, 422, None),
            (VerifyError::DeliveryFailed, 502, None),
            (VerifyError::ProviderUnavailable, 503, None),
            (VerifyError::FraudBlocked, 403, None),
            (VerifyError::SpendLimitReached(wait), 429, Some(wait)),
            (VerifyError::Store(StoreError::new("down")), 503, None),
        ];
        for (error, status, retry) in cases {
            let m = meaning(&error);
            assert_eq!(m.status.as_u16(), status, "{error:?}");
            assert_eq!(m.retry_after, retry, "{error:?}");
        }
    }
}
