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
use crate::i18n::{Arg, Around, Locale, Text};

/// An OpenID Connect sign-in the pages run: which application asks, and where its
/// redirects go (the pages' forms may submit towards it, so the CSP must allow it).
#[derive(Debug, Clone)]
pub struct SignInView {
    pub client_name: Option<String>,
    pub redirect_origin: String,
}

impl SignInView {
    /// "<Name> asks you to verify ...", split around the name.
    pub fn banner(&self, locale: &Locale) -> Around {
        locale.around("sign-in-asks", "client", &[])
    }

    /// The label of the button that goes back to the application.
    pub fn cancel_label(&self, locale: &Locale) -> String {
        match &self.client_name {
            Some(name) => locale.format("sign-in-cancel-to", &[("client", name.as_str().into())]),
            None => locale.text("sign-in-cancel"),
        }
    }
}

#[derive(Template)]
#[template(path = "phone.html")]
struct PhonePage<'a> {
    app_name: &'a str,
    locale: Locale,
    sign_in: Option<&'a SignInView>,
    csrf_token: &'a str,
    phone: &'a str,
    channel: &'a str,
    region: &'a str,
    hint: String,
    example: &'a str,
    error: Option<String>,
}

#[derive(Template)]
#[template(path = "verify.html")]
struct CodePage<'a> {
    app_name: &'a str,
    locale: Locale,
    sign_in: Option<&'a SignInView>,
    csrf_token: &'a str,
    masked: String,
    /// "We texted ", " with a 6-digit code.": the words around the number.
    sent: Around,
    expires: String,
    channel: &'a str,
    code_length: usize,
    numeric: bool,
    attempts_left: String,
    /// Seconds until the resend cooldown has passed (the script counts them down).
    resend_wait: u64,
    error: Option<String>,
}

#[derive(Template)]
#[template(path = "success.html")]
struct SuccessPage<'a> {
    app_name: &'a str,
    locale: Locale,
    masked: String,
    lead: Around,
}

/// A page that explains something and offers the way on: start again, or a new code.
#[derive(Template)]
#[template(path = "message.html")]
struct MessagePage<'a> {
    app_name: &'a str,
    locale: Locale,
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
pub fn message(
    state: &AppState,
    locale: Locale,
    status: StatusCode,
    title: &Text,
    message: &Text,
) -> HttpResponse {
    page(
        status,
        &MessagePage {
            app_name: &state.verifier.policy().app_name,
            locale,
            status: status.as_u16(),
            title: &title.render(locale),
            message: &message.render(locale),
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

/// What a page is drawn for: the browser's session, the sign-in it runs, its language.
#[derive(Clone, Copy)]
pub struct PageContext<'a> {
    pub state: &'a AppState,
    pub session: &'a Session,
    pub sign_in: Option<&'a SignInView>,
    pub locale: Locale,
}

/// The phone form, filled with `form` and showing `error`.
pub fn phone_page(
    cx: PageContext<'_>,
    status: StatusCode,
    form: Option<&PhoneForm>,
    error: Option<&Text>,
) -> HttpResponse {
    let policy = cx.state.verifier.policy();
    let region = policy.default_region.as_ref();
    let response = page(
        status,
        &PhonePage {
            app_name: &policy.app_name,
            locale: cx.locale,
            sign_in: cx.sign_in,
            csrf_token: &cx.session.csrf_token,
            phone: form.map_or("", |f| f.phone.as_str()),
            channel: form.map_or("sms", |f| f.channel.as_str()),
            region,
            hint: cx.locale.format("phone-hint", &[("region", region.into())]),
            example: if region == "US" {
                "(201) 555-0123"
            } else {
                "+1 201 555 0123"
            },
            error: error.map(|e| e.render(cx.locale)),
        },
    );
    allow_sign_in(response, cx.sign_in)
}

/// The code form for `v`, showing `error`.
pub fn code_page(
    cx: PageContext<'_>,
    v: &Verification,
    status: StatusCode,
    error: Option<&Text>,
) -> HttpResponse {
    let policy = cx.state.verifier.policy();
    let locale = cx.locale;
    let numeric = policy.format.alphabet == crate::code::CodeAlphabet::Digits;
    let left = u64::from(v.attempts_remaining(policy.check.max_attempts));
    let response = page(
        status,
        &CodePage {
            app_name: &policy.app_name,
            locale,
            sign_in: cx.sign_in,
            csrf_token: &cx.session.csrf_token,
            masked: v.to.masked(),
            sent: locale.around(
                "code-sent",
                "number",
                &[
                    ("channel", v.channel.as_str().into()),
                    ("length", Arg::Count(policy.format.length as u64)),
                    ("kind", if numeric { "digits" } else { "characters" }.into()),
                ],
            ),
            expires: locale.format(
                "code-expires",
                &[("minutes", Arg::Count(policy.ttl_minutes()))],
            ),
            channel: v.channel.as_str(),
            code_length: policy.format.length,
            numeric,
            attempts_left: locale.format("attempts-left", &[("count", Arg::Count(left))]),
            resend_wait: (v.last_sent_at + policy.send.cooldown)
                .duration_since(cx.state.verifier.now())
                .map_or(0, |left| {
                    left.as_secs() + u64::from(left.subsec_nanos() > 0)
                }),
            error: error.map(|e| e.render(locale)),
        },
    );
    allow_sign_in(response, cx.sign_in)
}

/// The confirmation for `v`.
pub fn success_page(state: &AppState, locale: Locale, v: &Verification) -> HttpResponse {
    page(
        StatusCode::OK,
        &SuccessPage {
            app_name: &state.verifier.policy().app_name,
            locale,
            masked: v.to.masked(),
            lead: locale.around("success-lead", "number", &[]),
        },
    )
}

/// The page for a verification that no longer takes codes, offering a new one.
pub fn ended_page(cx: PageContext<'_>, v: &Verification, status: Status) -> HttpResponse {
    let (title, message) = match status {
        Status::Expired => ("ended-expired-title", "ended-expired"),
        Status::MaxAttemptsReached => ("ended-used-up-title", "ended-used-up"),
        Status::Canceled => ("ended-replaced-title", "ended-replaced"),
        _ => ("ended-other-title", "ended-other"),
    };
    page(
        StatusCode::UNPROCESSABLE_ENTITY,
        &MessagePage {
            app_name: &cx.state.verifier.policy().app_name,
            locale: cx.locale,
            status: 422,
            title: &cx.locale.text(title),
            message: &cx.locale.text(message),
            new_code_csrf: Some(&cx.session.csrf_token),
            channel: v.channel.as_str(),
        },
    )
}
