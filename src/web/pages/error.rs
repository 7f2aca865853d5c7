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
use crate::i18n::{Arg, Locale, Text};
use crate::verification::VerifyError;

/// Why a page cannot be shown as asked.
#[derive(Debug)]
pub enum PageError {
    /// Nothing to show here: go to `location` (`303`).
    Redirect(&'static str),
    /// The message page, worded in the reader's language when it is drawn.
    Message {
        status: StatusCode,
        title: Text,
        message: Text,
        retry_after: Option<RetryAfter>,
    },
}

impl PageError {
    fn message(status: StatusCode, title: &'static str, message: Text) -> Self {
        Self::Message {
            status,
            title: Text::new(title),
            message,
            retry_after: None,
        }
    }

    /// A POST without the session's CSRF token.
    pub fn forbidden() -> Self {
        Self::message(
            StatusCode::FORBIDDEN,
            "forbidden-title",
            Text::new("forbidden"),
        )
    }

    /// A request that cannot be served as sent, explained by the message `key`.
    pub fn bad_request(key: &'static str) -> Self {
        Self::message(StatusCode::BAD_REQUEST, "bad-request-title", Text::new(key))
    }

    /// Checking codes for a locked number.
    pub fn locked(wait: RetryAfter) -> Self {
        Self::Message {
            status: StatusCode::TOO_MANY_REQUESTS,
            title: Text::new("locked-title"),
            message: Text::new("locked").with("wait", Arg::Wait(wait.secs())),
            retry_after: Some(wait),
        }
    }
}

impl fmt::Display for PageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Redirect(location) => write!(f, "see {location}"),
            Self::Message { title, .. } => f.write_str(&title.render(Locale::En)),
        }
    }
}

impl From<VerifyError> for PageError {
    fn from(error: VerifyError) -> Self {
        let meaning = meaning(&error);
        let wait = |key: &'static str, wait: &RetryAfter| {
            Text::new(key).with("wait", Arg::Wait(wait.secs()))
        };
        let (title, message) = match &error {
            VerifyError::NotFound => return Self::Redirect("/"),
            VerifyError::Locked(wait) => return Self::locked(*wait),
            VerifyError::DeliveryFailed => ("delivery-title", Text::new("delivery-failed")),
            VerifyError::ProviderUnavailable => {
                ("check-unavailable-title", Text::new("check-unavailable"))
            }
            VerifyError::Store(_) => ("unavailable-title", Text::new("unavailable")),
            VerifyError::RateLimited(w) => ("too-many-codes-title", wait("too-many-codes", w)),
            VerifyError::CountryNotAllowed => ("country-title", Text::new("country-not-allowed")),
            VerifyError::NumberRejected => ("number-title", Text::new("number-rejected")),
            VerifyError::FraudBlocked => ("fraud-title", Text::new("fraud-blocked")),
            VerifyError::SpendLimitReached(w) => ("spend-title", wait("spend-limit", w)),
            VerifyError::NotPending(_) => ("ended-other-title", Text::new("not-pending")),
        };
        Self::Message {
            status: meaning.status,
            title: Text::new(title),
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
                .body(message.render(Locale::En)),
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
        }) => (*status, title.clone(), message.clone(), *retry_after),
        _ => return Ok(res),
    };
    let (status, title, message, retry_after) = shown;
    let state = res
        .request()
        .app_data::<web::Data<AppState>>()
        .expect("state is registered")
        .clone();
    let locale = super::locale(&state, res.request());
    let page = views::message(&state, locale, status, &title, &message);
    Ok(res.into_response(errors::retry_later(page, retry_after)))
}
