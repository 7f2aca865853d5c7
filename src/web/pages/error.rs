//! Refusals on the hosted pages. A handler returns a `PageError`; its status comes from
//! the shared table in `web::errors`, and the message page is drawn by `render` (which
//! has the state the page needs), so handlers can use `?`.

use std::fmt;

use actix_web::body::BoxBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::middleware::Next;
use actix_web::{HttpResponse, ResponseError, web};

use super::super::AppState;
use super::super::errors::{self, meaning};
use super::views;
use crate::domain::RetryAfter;
use crate::verification::VerifyError;

/// Why a page cannot be shown as asked.
#[derive(Debug)]
pub enum PageError {
    /// Nothing to show here: go to `location` (`303`).
    Redirect(&'static str),
    /// The message page.
    Message {
        status: StatusCode,
        title: &'static str,
        message: String,
        retry_after: Option<RetryAfter>,
    },
}

impl PageError {
    fn message(status: StatusCode, title: &'static str, message: impl Into<String>) -> Self {
        Self::Message {
            status,
            title,
            message: message.into(),
            retry_after: None,
        }
    }

    /// A POST without the session's CSRF token.
    pub fn forbidden() -> Self {
        Self::message(
            StatusCode::FORBIDDEN,
            "This page has expired",
            "For your security, this form can only be sent from the page it came from. Go back to the start and try again.",
        )
    }

    /// A request that cannot be served as sent, explained on the message page.
    pub fn bad_request(message: &'static str) -> Self {
        Self::message(StatusCode::BAD_REQUEST, "We can’t continue", message)
    }

    /// Checking codes for a locked number.
    pub fn locked(wait: RetryAfter) -> Self {
        Self::Message {
            status: StatusCode::TOO_MANY_REQUESTS,
            title: "Too many incorrect codes",
            message: format!(
                "For your security, codes for this number can’t be checked right now. Try again in {}.",
                wait.describe()
            ),
            retry_after: Some(wait),
        }
    }
}

impl fmt::Display for PageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Redirect(location) => write!(f, "see {location}"),
            Self::Message { title, .. } => f.write_str(title),
        }
    }
}

impl From<VerifyError> for PageError {
    fn from(error: VerifyError) -> Self {
        let meaning = meaning(&error);
        let (title, message) = match &error {
            VerifyError::NotFound => return Self::Redirect("/"),
            VerifyError::Locked(wait) => return Self::locked(*wait),
            VerifyError::DeliveryFailed => (
                "We couldn’t send your code",
                "None of our messaging providers could deliver the code just now. Please try again in a few minutes.".to_string(),
            ),
            VerifyError::Store(_) => (
                "Temporarily unavailable",
                "We can’t verify numbers right now. Please try again in a minute.".to_string(),
            ),
            VerifyError::RateLimited(wait) => (
                "Too many codes",
                format!("Too many codes have been requested. Try again in {}.", wait.describe()),
            ),
            VerifyError::CountryNotAllowed => (
                "We can’t send codes there",
                "We can’t send codes to numbers in that country.".to_string(),
            ),
            VerifyError::NumberRejected => (
                "This number can’t get codes",
                "This number can’t receive verification codes. Try another number.".to_string(),
            ),
            VerifyError::FraudBlocked => (
                "We can’t send a code to this number now",
                "Codes can’t be sent to this number at the moment. Please try again later, or use another number.".to_string(),
            ),
            VerifyError::SpendLimitReached(wait) => (
                "We can’t send codes right now",
                format!("We’ve sent as many codes as we can today. Please try again in {}.", wait.describe()),
            ),
            VerifyError::NotPending(_) => (
                "This code can no longer be used",
                "Start again to get a new code.".to_string(),
            ),
        };
        Self::Message {
            status: meaning.status,
            title,
            message,
            retry_after: meaning.retry_after,
        }
    }
}

impl From<crate::verification::StoreError> for PageError {
    fn from(error: crate::verification::StoreError) -> Self {
        VerifyError::Store(error).into()
    }
}

impl ResponseError for PageError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::Redirect(_) => StatusCode::SEE_OTHER,
            Self::Message { status, .. } => *status,
        }
    }

    /// A plain fallback; `render` replaces it with the message page.
    fn error_response(&self) -> HttpResponse {
        match self {
            Self::Redirect(location) => views::see_other(location),
            Self::Message {
                status,
                message,
                retry_after,
                ..
            } => errors::answer(*status, *retry_after, None, None)
                .content_type("text/plain; charset=utf-8")
                .body(message.clone()),
        }
    }
}

/// Draws the message page for every `PageError::Message` a handler returned.
pub async fn render(
    req: ServiceRequest,
    next: Next<BoxBody>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let res = next.call(req).await?;
    let shown = match res
        .response()
        .error()
        .and_then(|e| e.as_error::<PageError>())
    {
        Some(PageError::Message {
            status,
            title,
            message,
            retry_after,
        }) => (*status, *title, message.clone(), *retry_after),
        _ => return Ok(res),
    };
    let (status, title, message, retry_after) = shown;
    let state = res
        .request()
        .app_data::<web::Data<AppState>>()
        .expect("state is registered")
        .clone();
    let page = views::message(&state, status, title, &message);
    Ok(res.into_response(errors::retry_later(page, retry_after)))
}
