//! The hosted pages (SPEC §4): phone form, code form, resend, success. Handlers parse
//! the form, call one `Verifier` method and choose the page; the rules live elsewhere.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use super::session::Session;
use super::{AppState, client_ip, page, see_other};
use crate::code::credential_matches;
use crate::domain::{Channel, RetryAfter, Status, Verification};
use crate::phone::PhoneNumber;
use crate::verification::{Requester, VerifyError};

#[derive(Template)]
#[template(path = "phone.html")]
struct PhonePage<'a> {
    app_name: &'a str,
    csrf_token: &'a str,
    phone: &'a str,
    channel: &'a str,
    region: &'a str,
    example: &'a str,
    error: Option<String>,
}

#[derive(Template)]
#[template(path = "verify.html")]
struct CodePage<'a> {
    app_name: &'a str,
    csrf_token: &'a str,
    masked: String,
    channel: &'a str,
    code_length: usize,
    numeric: bool,
    minutes: u64,
    attempts_left: u32,
    error: Option<String>,
}

#[derive(Template)]
#[template(path = "success.html")]
struct SuccessPage<'a> {
    app_name: &'a str,
    masked: String,
}

/// A page that explains something and offers the way on: start again, or a new code.
#[derive(Template)]
#[template(path = "message.html")]
pub struct MessagePage<'a> {
    pub app_name: &'a str,
    pub status: u16,
    pub title: &'a str,
    pub message: String,
    /// When set, the page offers a new code by `channel` to the browser's verification.
    pub new_code_csrf: Option<&'a str>,
    pub channel: &'a str,
}

#[derive(Deserialize)]
pub struct PhoneForm {
    #[serde(default)]
    phone: String,
    #[serde(default)]
    channel: String,
    #[serde(default)]
    csrf_token: String,
}

#[derive(Deserialize)]
pub struct CodeForm {
    #[serde(default)]
    code: String,
    #[serde(default)]
    csrf_token: String,
}

#[derive(Deserialize)]
pub struct ResendForm {
    #[serde(default)]
    channel: String,
    #[serde(default)]
    csrf_token: String,
}

/// The browser's live session, if it has one.
fn session(state: &AppState, req: &HttpRequest) -> Option<Session> {
    state.sessions.read(req, state.verifier.now())
}

/// The session of a POST, only when its CSRF token matches the form's.
fn authorized(state: &AppState, req: &HttpRequest, submitted: &str) -> Option<Session> {
    session(state, req).filter(|session| session.csrf_matches(submitted))
}

/// The answer to a POST without a valid CSRF token.
fn forbidden(state: &AppState) -> HttpResponse {
    state.message(
        StatusCode::FORBIDDEN,
        "This page has expired",
        "For your security, this form can only be sent from the page it came from. Go back to the start and try again.".into(),
    )
}

fn with_session(mut response: HttpResponse, state: &AppState, session: &Session) -> HttpResponse {
    let _ = response.add_cookie(&state.sessions.cookie(session));
    response
}

fn phone_page(
    state: &AppState,
    session: &Session,
    status: StatusCode,
    form: Option<&PhoneForm>,
    error: Option<String>,
) -> HttpResponse {
    let policy = state.verifier.policy();
    page(
        status,
        &PhonePage {
            app_name: &policy.app_name,
            csrf_token: &session.csrf_token,
            phone: form.map_or("", |f| f.phone.as_str()),
            channel: form.map_or("sms", |f| f.channel.as_str()),
            region: policy.default_region.as_ref(),
            example: if policy.default_region.as_ref() == "US" {
                "(201) 555-0123"
            } else {
                "+1 201 555 0123"
            },
            error,
        },
    )
}

fn code_page(
    state: &AppState,
    session: &Session,
    v: &Verification,
    status: StatusCode,
    error: Option<String>,
) -> HttpResponse {
    let policy = state.verifier.policy();
    page(
        status,
        &CodePage {
            app_name: &policy.app_name,
            csrf_token: &session.csrf_token,
            masked: v.to.masked(),
            channel: v.channel.as_str(),
            code_length: policy.format.length,
            numeric: policy.format.alphabet == crate::code::CodeAlphabet::Digits,
            minutes: policy.ttl_minutes(),
            attempts_left: v.attempts_remaining(policy.check.max_attempts),
            error,
        },
    )
}

/// The page for a verification that no longer takes codes, offering a new one.
fn ended_page(
    state: &AppState,
    session: &Session,
    v: &Verification,
    status: Status,
) -> HttpResponse {
    let (title, message) = match status {
        Status::Expired => (
            "This code has expired",
            "Codes are valid for a short time only. We can send you a new one.",
        ),
        Status::MaxAttemptsReached => (
            "Too many incorrect codes",
            "That code was not right, and there are no attempts left for it. We can send you a new code.",
        ),
        Status::Canceled => (
            "This code was replaced",
            "A newer code was requested for this number, so this one no longer works. We can send you a new code.",
        ),
        _ => (
            "This code can no longer be used",
            "We can send you a new code.",
        ),
    };
    page(
        StatusCode::UNPROCESSABLE_ENTITY,
        &MessagePage {
            app_name: &state.verifier.policy().app_name,
            status: 422,
            title,
            message: message.into(),
            new_code_csrf: Some(&session.csrf_token),
            channel: v.channel.as_str(),
        },
    )
}

fn too_many(mut response: HttpResponse, wait: RetryAfter) -> HttpResponse {
    response
        .headers_mut()
        .insert(actix_web::http::header::RETRY_AFTER, wait.secs().into());
    response
}

/// Renders what a failed start or resend means on the phone form.
fn start_failed(
    state: &AppState,
    session: &Session,
    form: &PhoneForm,
    error: VerifyError,
) -> HttpResponse {
    let status_page =
        |status, text: &str| phone_page(state, session, status, Some(form), Some(text.into()));
    match error {
        VerifyError::CountryNotAllowed => status_page(StatusCode::UNPROCESSABLE_ENTITY, "We can’t send codes to numbers in that country."),
        VerifyError::NumberRejected => status_page(StatusCode::UNPROCESSABLE_ENTITY, "This number can’t receive verification codes. Try another number."),
        VerifyError::RateLimited(wait) | VerifyError::Locked(wait) => too_many(
            status_page(StatusCode::TOO_MANY_REQUESTS, &format!("Too many codes have been requested. Try again in {}.", wait.describe())),
            wait,
        ),
        VerifyError::DeliveryFailed => state.message(
            StatusCode::BAD_GATEWAY,
            "We couldn’t send your code",
            "None of our messaging providers could deliver the code just now. Please try again in a few minutes.".into(),
        ),
        other => state.unexpected(other),
    }
}

/// `GET /`: the phone form.
pub async fn phone_form(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    let session = session(&state, &req).unwrap_or_else(|| Session::fresh(state.verifier.now()));
    with_session(
        phone_page(&state, &session, StatusCode::OK, None, None),
        &state,
        &session,
    )
}

/// `POST /request`: starts a verification and binds this browser to it.
pub async fn request_code(
    state: web::Data<AppState>,
    req: HttpRequest,
    form: web::Form<PhoneForm>,
) -> HttpResponse {
    let Some(session) = authorized(&state, &req, &form.csrf_token) else {
        return forbidden(&state);
    };
    let policy = state.verifier.policy();
    let to = match PhoneNumber::parse(&form.phone, policy.default_region) {
        Ok(to) => to,
        Err(e) => {
            return phone_page(
                &state,
                &session,
                StatusCode::UNPROCESSABLE_ENTITY,
                Some(&form),
                Some(e.to_string()),
            );
        }
    };
    let Some(channel) = Channel::parse(&form.channel) else {
        return phone_page(
            &state,
            &session,
            StatusCode::UNPROCESSABLE_ENTITY,
            Some(&form),
            Some("Choose text message or phone call.".into()),
        );
    };
    let browser = state.sessions.binding(&session);
    match state
        .verifier
        .start(
            &to,
            channel,
            &Requester {
                ip: client_ip(&req, &state.trusted_proxies),
                browser: Some(browser),
            },
        )
        .await
    {
        Ok(v) => {
            let bound = session.bound_to(&v.id, state.verifier.now());
            with_session(see_other("/verify"), &state, &bound)
        }
        Err(e) => start_failed(&state, &session, &form, e),
    }
}

/// The browser's verification: the one its session names, when it is remembered and
/// bound to this very session (another browser that started the same number never
/// reaches it, nor does an older copy of this browser's cookie).
async fn bound(
    state: &AppState,
    session: Option<Session>,
) -> Result<(Session, Verification), HttpResponse> {
    let session = session.ok_or_else(|| see_other("/"))?;
    let id = session
        .verification_id
        .clone()
        .ok_or_else(|| see_other("/"))?;
    let binding = state.sessions.binding(&session);
    match state.verifier.get(&id).await {
        Ok(v)
            if v.browser
                .as_deref()
                .is_some_and(|b| credential_matches(b, &binding)) =>
        {
            Ok((session, v))
        }
        Ok(_) | Err(VerifyError::NotFound) => Err(see_other("/")),
        Err(e) => Err(state.unexpected(e)),
    }
}

/// Whether the verification `session` names has been approved (by any browser).
async fn approved(state: &AppState, session: &Session) -> bool {
    match &session.verification_id {
        Some(id) => state
            .verifier
            .get(id)
            .await
            .is_ok_and(|v| v.status == Status::Approved),
        None => false,
    }
}

/// `GET /verify`: the code form for this browser's pending verification.
pub async fn code_form(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    match bound(&state, session(&state, &req)).await {
        Ok((session, v)) if v.status == Status::Pending => {
            code_page(&state, &session, &v, StatusCode::OK, None)
        }
        Ok((_, v)) if v.status == Status::Approved => see_other("/success"),
        Ok(_) => see_other("/"),
        Err(response) => response,
    }
}

/// `POST /verify`: checks the code against this browser's verification only.
pub async fn submit_code(
    state: web::Data<AppState>,
    req: HttpRequest,
    form: web::Form<CodeForm>,
) -> HttpResponse {
    let Some(session) = authorized(&state, &req, &form.csrf_token) else {
        return forbidden(&state);
    };
    let (session, v) = match bound(&state, Some(session.clone())).await {
        Ok(found) => found,
        // A parallel submission of the right code from this browser won, and renewed the
        // session: the browser now holds the cookie that opens the success page.
        Err(_) if approved(&state, &session).await => return see_other("/success"),
        Err(response) => return response,
    };
    let code = match state.verifier.policy().format.parse(&form.code) {
        Ok(code) => code,
        Err(e) if v.status == Status::Pending => {
            return code_page(
                &state,
                &session,
                &v,
                StatusCode::UNPROCESSABLE_ENTITY,
                Some(e.to_string()),
            );
        }
        Err(_) => return ended_page(&state, &session, &v, v.status),
    };
    // Once verified the session means something else: a new one (new handle, new token)
    // takes over, bound to the verification in the same step that approves it.
    let renewed = Session::renewed(&v.id, state.verifier.now());
    let rebind = state.sessions.binding(&renewed);
    match state.verifier.check_verification(&v, &code, Some(&rebind)).await {
        Ok(result) if result.valid => with_session(see_other("/success"), &state, &renewed),
        Ok(result) if result.verification.status == Status::Pending => {
            let left = result.attempts_remaining;
            let message = format!("That code isn’t right. You have {left} attempt{} left.", if left == 1 { "" } else { "s" });
            code_page(&state, &session, &result.verification, StatusCode::UNPROCESSABLE_ENTITY, Some(message))
        }
        Ok(result) => ended_page(&state, &session, &result.verification, result.verification.status),
        Err(VerifyError::NotPending(Status::Approved)) => see_other("/success"),
        Err(VerifyError::NotPending(status)) => ended_page(&state, &session, &v, status),
        Err(VerifyError::Locked(wait)) => too_many(
            state.message(
                StatusCode::TOO_MANY_REQUESTS,
                "Too many incorrect codes",
                format!("For your security, codes for this number can’t be checked right now. Try again in {}.", wait.describe()),
            ),
            wait,
        ),
        Err(VerifyError::NotFound) => see_other("/"),
        Err(e) => state.unexpected(e),
    }
}

/// `POST /resend`: a new code for this browser's number, by the chosen channel.
pub async fn resend(
    state: web::Data<AppState>,
    req: HttpRequest,
    form: web::Form<ResendForm>,
) -> HttpResponse {
    let Some(session) = authorized(&state, &req, &form.csrf_token) else {
        return forbidden(&state);
    };
    let (session, v) = match bound(&state, Some(session)).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    let channel = Channel::parse(&form.channel).unwrap_or(v.channel);
    let browser = state.sessions.binding(&session);
    match state
        .verifier
        .start(
            &v.to,
            channel,
            &Requester {
                ip: client_ip(&req, &state.trusted_proxies),
                browser: Some(browser),
            },
        )
        .await
    {
        Ok(new) => {
            let bound = session.bound_to(&new.id, state.verifier.now());
            with_session(see_other("/verify"), &state, &bound)
        }
        Err(VerifyError::RateLimited(wait) | VerifyError::Locked(wait))
            if v.status == Status::Pending =>
        {
            let message = format!("You can ask for another code in {}.", wait.describe());
            too_many(
                code_page(
                    &state,
                    &session,
                    &v,
                    StatusCode::TOO_MANY_REQUESTS,
                    Some(message),
                ),
                wait,
            )
        }
        Err(e) => {
            let form = PhoneForm {
                phone: String::new(),
                channel: channel.as_str().into(),
                csrf_token: String::new(),
            };
            start_failed(&state, &session, &form, e)
        }
    }
}

/// `GET /success`: only for a browser whose verification is approved.
pub async fn success(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    match bound(&state, session(&state, &req)).await {
        Ok((_, v)) if v.status == Status::Approved => page(
            StatusCode::OK,
            &SuccessPage {
                app_name: &state.verifier.policy().app_name,
                masked: v.to.masked(),
            },
        ),
        Ok(_) => see_other("/"),
        Err(response) => response,
    }
}
