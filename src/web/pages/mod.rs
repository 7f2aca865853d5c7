//! The hosted pages: phone form, code form, resend, success, and the same pages as the
//! login UI of an OpenID Connect sign-in. Handlers parse the form, call one `Verifier`
//! method and choose the page; the rules live elsewhere.

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;

use super::errors::{meaning, retry_later};
use super::session::Session;
use super::{AppState, client_ip};
use crate::code::{CodeAlphabet, CodeError, credential_matches};
use crate::domain::{Channel, Status, Verification};
use crate::i18n::{Arg, Locale, Text};
use crate::phone::{PhoneError, PhoneNumber};
use crate::verification::{Requester, VerifyError};

mod error;
pub mod views;

pub use error::{PageError, render as render_errors};
use views::{
    PageContext, PhoneForm, SignInView, code_page, ended_page, phone_page, see_other, success_page,
};

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

/// The language a page is drawn in: the browser's `Accept-Language`, else
/// `verification.default_locale`.
pub(super) fn locale(state: &AppState, req: &HttpRequest) -> Locale {
    let header = req
        .headers()
        .get(header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok());
    Locale::negotiate(header, state.verifier.policy().default_locale)
}

/// What the phone or code form says about what the person typed.
pub(super) fn phone_error(error: &PhoneError) -> Text {
    match error {
        PhoneError::Empty => Text::new("phone-empty"),
        PhoneError::Malformed => Text::new("phone-malformed"),
        PhoneError::TooShort => Text::new("phone-too-short"),
        PhoneError::TooLong => Text::new("phone-too-long"),
        PhoneError::Invalid(region) => Text::new("phone-invalid").with("region", region.as_str()),
    }
}

fn code_error(error: &CodeError, state: &AppState) -> Text {
    let format = state.verifier.policy().format;
    match error {
        CodeError::Empty => Text::new("code-empty"),
        CodeError::WrongShape { .. } => Text::new("code-wrong-shape")
            .with("length", format.length as u64)
            .with(
                "kind",
                match format.alphabet {
                    CodeAlphabet::Digits => "digits",
                    CodeAlphabet::Hex => "characters",
                },
            ),
    }
}

/// Who is asking, for the verifier: this client's address, this browser's session, and
/// the language the page is in (the code's SMS or call will be in it too).
fn requester(state: &AppState, req: &HttpRequest, session: &Session) -> Requester {
    Requester {
        ip: Some(client_ip(req, &state.trusted_proxies)),
        browser: Some(state.sessions.binding(session)),
        locale: Some(locale(state, req)),
    }
}

/// What a failed start or resend means on the phone form. Every refusal about the
/// number the person typed shows the form again (`422`); limits keep their `429`.
fn start_failed(cx: PageContext<'_>, form: &PhoneForm, error: VerifyError) -> PageResult {
    let (status, text) = match &error {
        VerifyError::CountryNotAllowed => (
            StatusCode::UNPROCESSABLE_ENTITY,
            Text::new("country-not-allowed"),
        ),
        VerifyError::NumberRejected => (
            StatusCode::UNPROCESSABLE_ENTITY,
            Text::new("number-rejected"),
        ),
        VerifyError::RateLimited(wait) | VerifyError::Locked(wait) => (
            StatusCode::TOO_MANY_REQUESTS,
            Text::new("too-many-codes").with("wait", Arg::Wait(wait.secs())),
        ),
        _ => return Err(error.into()),
    };
    let page = phone_page(cx, status, Some(form), Some(&text));
    Ok(retry_later(page, meaning(&error).retry_after))
}

/// `GET /`: the phone form.
pub async fn phone_form(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    let session = session(&state, &req).unwrap_or_else(|| Session::fresh(state.verifier.now()));
    let sign_in = sign_in(&state, &session).await;
    let cx = PageContext {
        state: &state,
        session: &session,
        sign_in: sign_in.as_ref(),
        locale: locale(&state, &req),
    };
    let page = phone_page(cx, StatusCode::OK, None, None);
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
    let cx = PageContext {
        state: &state,
        session: &session,
        sign_in: sign_in.as_ref(),
        locale: locale(&state, &req),
    };
    let invalid = |message: Text| {
        let status = StatusCode::UNPROCESSABLE_ENTITY;
        Ok(phone_page(cx, status, Some(&form), Some(&message)))
    };
    let to = match PhoneNumber::parse(&form.phone, state.verifier.policy().default_region) {
        Ok(to) => to,
        Err(e) => return invalid(phone_error(&e)),
    };
    let Some(channel) = Channel::parse(&form.channel) else {
        return invalid(Text::new("choose-channel"));
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
        Err(e) => start_failed(cx, &form, e),
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
            let cx = PageContext {
                state: &state,
                session: &session,
                sign_in: sign_in.as_ref(),
                locale: locale(&state, &req),
            };
            Ok(code_page(cx, &v, StatusCode::OK, None))
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
    let cx = PageContext {
        state: &state,
        session: &session,
        sign_in: sign_in.as_ref(),
        locale: locale(&state, &req),
    };
    let code = match state.verifier.policy().format.parse(&form.code) {
        Ok(code) => code,
        Err(e) if v.status == Status::Pending => {
            let status = StatusCode::UNPROCESSABLE_ENTITY;
            let message = code_error(&e, &state);
            return Ok(code_page(cx, &v, status, Some(&message)));
        }
        Err(_) => return Ok(ended_page(cx, &v, v.status)),
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
            return Ok(ended_page(cx, &v, status));
        }
        Err(e) => return Err(e.into()),
    };
    let verification = &result.verification;
    if result.valid {
        let next = after_approval(&state, &session, verification).await?;
        Ok(with_session(see_other(&next), &state, &renewed))
    } else if verification.status == Status::Pending {
        // The hint under the field says how many attempts are left; the error does not
        // say it again.
        let message = Text::new("wrong-code");
        let status = StatusCode::UNPROCESSABLE_ENTITY;
        Ok(code_page(cx, verification, status, Some(&message)))
    } else {
        Ok(ended_page(cx, verification, verification.status))
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
    let started = state
        .verifier
        .start(&v.to, channel, &requester(&state, &req, &session))
        .await;
    let sign_in = match &started {
        Ok(_) => None,
        Err(_) => sign_in(&state, &session).await,
    };
    let cx = PageContext {
        state: &state,
        session: &session,
        sign_in: sign_in.as_ref(),
        locale: locale(&state, &req),
    };
    match started {
        Ok(new) => {
            let bound = session.bound_to(&new.id, state.verifier.now());
            Ok(with_session(see_other("/verify"), &state, &bound))
        }
        Err(VerifyError::RateLimited(wait) | VerifyError::Locked(wait))
            if v.status == Status::Pending =>
        {
            let message = Text::new("resend-wait").with("wait", Arg::Wait(wait.secs()));
            let status = StatusCode::TOO_MANY_REQUESTS;
            let page = code_page(cx, &v, status, Some(&message));
            Ok(retry_later(page, Some(wait)))
        }
        Err(e) => {
            let form = PhoneForm {
                phone: String::new(),
                channel: channel.as_str().into(),
                csrf_token: String::new(),
            };
            start_failed(cx, &form, e)
        }
    }
}

/// `GET /success`: only for a browser whose verification is approved.
pub async fn success(state: web::Data<AppState>, req: HttpRequest) -> PageResult {
    let (_, v) = bound(&state, session(&state, &req)).await?;
    if v.status == Status::Approved {
        Ok(success_page(&state, locale(&state, &req), &v))
    } else {
        Err(PageError::Redirect("/"))
    }
}
