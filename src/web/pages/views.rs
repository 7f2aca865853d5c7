//! The pages themselves: askama templates, each extending `base.html`, and the helpers
//! that fill them from the policy, the session and the verification.

use actix_web::HttpResponse;
use actix_web::http::StatusCode;
use actix_web::http::header;
use askama::Template;
use serde::Deserialize;

use super::super::AppState;
use super::super::session::Session;
use crate::domain::{Status, Verification};

/// An OpenID Connect sign-in the pages run: which application asks, and where its
/// redirects go (the pages' forms may submit towards it, so the CSP must allow it).
#[derive(Debug, Clone)]
pub struct SignInView {
    pub client_name: Option<String>,
    pub redirect_origin: String,
}

#[derive(Template)]
#[template(path = "phone.html")]
struct PhonePage<'a> {
    app_name: &'a str,
    sign_in: Option<&'a SignInView>,
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
    sign_in: Option<&'a SignInView>,
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
struct MessagePage<'a> {
    app_name: &'a str,
    status: u16,
    title: &'a str,
    message: &'a str,
    /// When set, the page offers a new code by `channel` to the browser's verification.
    new_code_csrf: Option<&'a str>,
    channel: &'a str,
}

/// What the phone form was filled with.
#[derive(Deserialize)]
pub struct PhoneForm {
    #[serde(default)]
    pub phone: String,
    #[serde(default)]
    pub channel: String,
    #[serde(default)]
    pub csrf_token: String,
}

/// Renders `template` as an HTML page.
pub fn page(status: StatusCode, template: &impl Template) -> HttpResponse {
    match template.render() {
        Ok(html) => HttpResponse::build(status)
            .content_type("text/html; charset=utf-8")
            .body(html),
        Err(e) => {
            tracing::error!(error = %e, "template failed to render");
            HttpResponse::InternalServerError()
                .content_type("text/plain; charset=utf-8")
                .body("Something went wrong.")
        }
    }
}

/// `303 See Other` to `location` (post/redirect/get).
pub fn see_other(location: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, location))
        .finish()
}

/// A page explaining `message`, with a way back to the start.
pub fn message(state: &AppState, status: StatusCode, title: &str, message: &str) -> HttpResponse {
    page(
        status,
        &MessagePage {
            app_name: &state.verifier.policy().app_name,
            status: status.as_u16(),
            title,
            message,
            new_code_csrf: None,
            channel: "sms",
        },
    )
}

/// The policy a page of a sign-in carries: its forms may lead (by redirect) to the
/// application, which the default `form-action 'self'` would forbid.
fn allow_sign_in(mut response: HttpResponse, sign_in: Option<&SignInView>) -> HttpResponse {
    if let Some(sign_in) = sign_in
        && let Ok(csp) = header::HeaderValue::from_str(&format!(
            "{}; form-action 'self' {}",
            crate::web::headers::CSP_WITHOUT_FORM_ACTION,
            sign_in.redirect_origin
        ))
    {
        response
            .headers_mut()
            .insert(header::CONTENT_SECURITY_POLICY, csp);
    }
    response
}

/// The phone form, filled with `form` and showing `error`.
pub fn phone_page(
    state: &AppState,
    session: &Session,
    sign_in: Option<&SignInView>,
    status: StatusCode,
    form: Option<&PhoneForm>,
    error: Option<String>,
) -> HttpResponse {
    let policy = state.verifier.policy();
    let response = page(
        status,
        &PhonePage {
            app_name: &policy.app_name,
            sign_in,
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
    );
    allow_sign_in(response, sign_in)
}

/// The code form for `v`, showing `error`.
pub fn code_page(
    state: &AppState,
    session: &Session,
    sign_in: Option<&SignInView>,
    v: &Verification,
    status: StatusCode,
    error: Option<String>,
) -> HttpResponse {
    let policy = state.verifier.policy();
    let response = page(
        status,
        &CodePage {
            app_name: &policy.app_name,
            sign_in,
            csrf_token: &session.csrf_token,
            masked: v.to.masked(),
            channel: v.channel.as_str(),
            code_length: policy.format.length,
            numeric: policy.format.alphabet == crate::code::CodeAlphabet::Digits,
            minutes: policy.ttl_minutes(),
            attempts_left: v.attempts_remaining(policy.check.max_attempts),
            error,
        },
    );
    allow_sign_in(response, sign_in)
}

/// The confirmation for `v`.
pub fn success_page(state: &AppState, v: &Verification) -> HttpResponse {
    page(
        StatusCode::OK,
        &SuccessPage {
            app_name: &state.verifier.policy().app_name,
            masked: v.to.masked(),
        },
    )
}

/// The page for a verification that no longer takes codes, offering a new one.
pub fn ended_page(
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
            message,
            new_code_csrf: Some(&session.csrf_token),
            channel: v.channel.as_str(),
        },
    )
}
