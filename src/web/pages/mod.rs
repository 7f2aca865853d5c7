//! The hosted pages: phone form, code form, resend, success, and the same pages as the
//! login UI of an OpenID Connect sign-in. Handlers parse the form, call one `Verifier`
//! method and choose the page; the rules live elsewhere.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;

use super::errors::{meaning, retry_later};
use super::session::Session;
use super::{AppState, client_ip};
use crate::code::credential_matches;
use crate::domain::{Channel, Status, Verification};
use crate::phone::PhoneNumber;
use crate::verification::{Requester, VerifyError};

mod error;
pub mod views;

pub use error::{PageError, render as render_errors};
use views::{PhoneForm, SignInView, code_page, ended_page, phone_page, see_other, success_page};

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

type PageResult = Result<HttpResponse, PageError>;

/// The browser's live session, if it has one.
pub(super) fn session(state: &AppState, req: &HttpRequest) -> Option<Session> {
    state.sessions.read(req, state.verifier.now())
}

/// The session of a POST, only when its CSRF token matches the form's.
pub(super) fn authorized(
    state: &AppState,
    req: &HttpRequest,
    submitted: &str,
) -> Result<Session, PageError> {
    session(state, req)
        .filter(|session| session.csrf_matches(submitted))
        .ok_or_else(PageError::forbidden)
}

pub(super) fn with_session(
    mut response: HttpResponse,
    state: &AppState,
    session: &Session,
) -> HttpResponse {
    let _ = response.add_cookie(&state.sessions.cookie(session));
    response
}

/// The sign-in the session runs, while it lives: what the pages show of it.
pub(super) async fn sign_in(state: &AppState, session: &Session) -> Option<SignInView> {
    let (oidc, id) = (state.oidc.as_ref()?, session.sign_in.as_deref()?);
    let request = oidc.request(id).await.ok()??;
    let redirect_origin = url::Url::parse(&request.redirect_uri)
        .ok()?
        .origin()
        .ascii_serialization();
    Some(SignInView {
        client_name: oidc.client_name(&request),
        redirect_origin,
    })
}

/// Who is asking, for the verifier: this client's address and this browser's session.
fn requester(state: &AppState, req: &HttpRequest, session: &Session) -> Requester {
    Requester {
        ip: Some(client_ip(req, &state.trusted_proxies)),
        browser: Some(state.sessions.binding(session)),
    }
}

/// What a failed start or resend means on the phone form. Every refusal about the
/// number the person typed shows the form again (`422`); limits keep their `429`.
fn start_failed(
    state: &AppState,
    session: &Session,
    sign_in: Option<&SignInView>,
    form: &PhoneForm,
    error: VerifyError,
) -> PageResult {
    let (status, text) = match &error {
        VerifyError::CountryNotAllowed => (
            StatusCode::UNPROCESSABLE_ENTITY,
            "We can’t send codes to numbers in that country.".to_string(),
        ),
        VerifyError::NumberRejected => (
            StatusCode::UNPROCESSABLE_ENTITY,
            "This number can’t receive verification codes. Try another number.".to_string(),
        ),
        VerifyError::RateLimited(wait) | VerifyError::Locked(wait) => (
            StatusCode::TOO_MANY_REQUESTS,
            format!(
                "Too many codes have been requested. Try again in {}.",
                wait.describe()
            ),
        ),
        _ => return Err(error.into()),
    };
    let page = phone_page(state, session, sign_in, status, Some(form), Some(text));
    Ok(retry_later(page, meaning(&error).retry_after))
}

/// `GET /`: the phone form.
pub async fn phone_form(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    let session = session(&state, &req).unwrap_or_else(|| Session::fresh(state.verifier.now()));
    let sign_in = sign_in(&state, &session).await;
    let page = phone_page(
        &state,
        &session,
        sign_in.as_ref(),
        StatusCode::OK,
        None,
        None,
    );
    with_session(page, &state, &session)
}

/// `POST /request`: starts a verification and binds this browser to it.
pub async fn request_code(
    state: web::Data<AppState>,
    req: HttpRequest,
    form: web::Form<PhoneForm>,
) -> PageResult {
    let session = authorized(&state, &req, &form.csrf_token)?;
    let sign_in = sign_in(&state, &session).await;
    let invalid = |message: String| {
        let status = StatusCode::UNPROCESSABLE_ENTITY;
        let page = phone_page(
            &state,
            &session,
            sign_in.as_ref(),
            status,
            Some(&form),
            Some(message),
        );
        Ok(page)
    };
    let to = match PhoneNumber::parse(&form.phone, state.verifier.policy().default_region) {
        Ok(to) => to,
        Err(e) => return invalid(e.to_string()),
    };
    let Some(channel) = Channel::parse(&form.channel) else {
        return invalid("Choose text message or phone call.".into());
    };
    match state
        .verifier
        .start(&to, channel, &requester(&state, &req, &session))
        .await
    {
        Ok(v) => {
            let bound = session.bound_to(&v.id, state.verifier.now());
            Ok(with_session(see_other("/verify"), &state, &bound))
        }
        Err(e) => start_failed(&state, &session, sign_in.as_ref(), &form, e),
    }
}

/// The browser's verification: the one its session names, when it is remembered and
/// bound to this very session (another browser that started the same number never
/// reaches it, nor does an older copy of this browser's cookie).
async fn bound(
    state: &AppState,
    session: Option<Session>,
) -> Result<(Session, Verification), PageError> {
    let session = session.ok_or(PageError::Redirect("/"))?;
    let id = session
        .verification_id
        .clone()
        .ok_or(PageError::Redirect("/"))?;
    let binding = state.sessions.binding(&session);
    let v = state.verifier.get(&id).await?;
    if v.browser
        .as_deref()
        .is_some_and(|b| credential_matches(b, &binding))
    {
        Ok((session, v))
    } else {
        Err(PageError::Redirect("/"))
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
pub async fn code_form(state: web::Data<AppState>, req: HttpRequest) -> PageResult {
    let (session, v) = bound(&state, session(&state, &req)).await?;
    match v.status {
        Status::Pending => {
            let sign_in = sign_in(&state, &session).await;
            Ok(code_page(
                &state,
                &session,
                sign_in.as_ref(),
                &v,
                StatusCode::OK,
                None,
            ))
        }
        Status::Approved => Err(PageError::Redirect("/success")),
        _ => Err(PageError::Redirect("/")),
    }
}

/// Where a browser that just typed the right code goes: the application of its sign-in,
/// with an authorization code, or the success page.
async fn after_approval(
    state: &AppState,
    session: &Session,
    verification: &Verification,
) -> Result<String, PageError> {
    let (Some(oidc), Some(request)) = (&state.oidc, &session.sign_in) else {
        return Ok("/success".into());
    };
    match oidc.approve(request, verification).await? {
        Some(redirect) => Ok(redirect),
        // The sign-in expired while the person typed: they are verified, but the
        // application must start again.
        None => Ok("/success".into()),
    }
}

/// `POST /verify`: checks the code against this browser's verification only.
pub async fn submit_code(
    state: web::Data<AppState>,
    req: HttpRequest,
    form: web::Form<CodeForm>,
) -> PageResult {
    let session = authorized(&state, &req, &form.csrf_token)?;
    let (session, v) = match bound(&state, Some(session.clone())).await {
        Ok(found) => found,
        // A parallel submission of the right code from this browser won, and renewed the
        // session: the browser now holds the cookie that opens the success page.
        Err(PageError::Redirect(_)) if approved(&state, &session).await => {
            return Err(PageError::Redirect("/success"));
        }
        Err(e) => return Err(e),
    };
    let sign_in = sign_in(&state, &session).await;
    let code = match state.verifier.policy().format.parse(&form.code) {
        Ok(code) => code,
        Err(e) if v.status == Status::Pending => {
            let status = StatusCode::UNPROCESSABLE_ENTITY;
            let page = code_page(
                &state,
                &session,
                sign_in.as_ref(),
                &v,
                status,
                Some(e.to_string()),
            );
            return Ok(page);
        }
        Err(_) => return Ok(ended_page(&state, &session, &v, v.status)),
    };
    // Once verified the session means something else: a new one (new handle, new token)
    // takes over, bound to the verification in the same step that approves it.
    let renewed = Session::renewed(&v.id, state.verifier.now());
    let rebind = state.sessions.binding(&renewed);
    let result = match state
        .verifier
        .check_verification(&v, &code, Some(&rebind))
        .await
    {
        Ok(result) => result,
        Err(VerifyError::NotPending(Status::Approved)) => {
            return Err(PageError::Redirect("/success"));
        }
        Err(VerifyError::NotPending(status)) => {
            return Ok(ended_page(&state, &session, &v, status));
        }
        Err(e) => return Err(e.into()),
    };
    let verification = &result.verification;
    if result.valid {
        let next = after_approval(&state, &session, verification).await?;
        Ok(with_session(see_other(&next), &state, &renewed))
    } else if verification.status == Status::Pending {
        let left = result.attempts_remaining;
        let message = format!(
            "That code isn’t right. You have {left} attempt{} left.",
            if left == 1 { "" } else { "s" }
        );
        let status = StatusCode::UNPROCESSABLE_ENTITY;
        Ok(code_page(
            &state,
            &session,
            sign_in.as_ref(),
            verification,
            status,
            Some(message),
        ))
    } else {
        Ok(ended_page(
            &state,
            &session,
            verification,
            verification.status,
        ))
    }
}

/// `POST /resend`: a new code for this browser's number, by the chosen channel.
pub async fn resend(
    state: web::Data<AppState>,
    req: HttpRequest,
    form: web::Form<ResendForm>,
) -> PageResult {
    let session = authorized(&state, &req, &form.csrf_token)?;
    let (session, v) = bound(&state, Some(session)).await?;
    let channel = Channel::parse(&form.channel).unwrap_or(v.channel);
    match state
        .verifier
        .start(&v.to, channel, &requester(&state, &req, &session))
        .await
    {
        Ok(new) => {
            let bound = session.bound_to(&new.id, state.verifier.now());
            Ok(with_session(see_other("/verify"), &state, &bound))
        }
        Err(VerifyError::RateLimited(wait) | VerifyError::Locked(wait))
            if v.status == Status::Pending =>
        {
            let sign_in = sign_in(&state, &session).await;
            let message = format!("You can ask for another code in {}.", wait.describe());
            let status = StatusCode::TOO_MANY_REQUESTS;
            let page = code_page(
                &state,
                &session,
                sign_in.as_ref(),
                &v,
                status,
                Some(message),
            );
            Ok(retry_later(page, Some(wait)))
        }
        Err(e) => {
            let sign_in = sign_in(&state, &session).await;
            let form = PhoneForm {
                phone: String::new(),
                channel: channel.as_str().into(),
                csrf_token: String::new(),
            };
            start_failed(&state, &session, sign_in.as_ref(), &form, e)
        }
    }
}

/// `GET /success`: only for a browser whose verification is approved.
pub async fn success(state: web::Data<AppState>, req: HttpRequest) -> PageResult {
    let (_, v) = bound(&state, session(&state, &req)).await?;
    if v.status == Status::Approved {
        Ok(success_page(&state, &v))
    } else {
        Err(PageError::Redirect("/"))
    }
}
