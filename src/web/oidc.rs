//! The OpenID Connect endpoints: discovery, JWKS, authorize (which renders the phone form
//! itself: the person arrives from another site, and a `SameSite=Strict` cookie set by a
//! redirect's target would not come back on the redirect), cancel, token and userinfo.
//! Only mounted when `oidc.enabled`.

use std::fmt;

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};
use base64::Engine as _;
use serde::Deserialize;

use super::pages::views::{PageContext, PhoneForm, SignInView, message, phone_page, see_other};
use super::pages::{self, PageError, authorized, with_session};
use super::session::Session;
use super::{AppState, BodyError, read_body};
use crate::i18n::Text;
use crate::oidc::{
    AuthorizeParams, AuthorizeRefusal, ClientAuth, Provider, TokenError, TokenRequest,
};
use crate::verification::VerifyError;

fn provider(state: &AppState) -> &Provider {
    state.oidc.as_ref().expect("mounted only when enabled")
}

/// `GET /.well-known/openid-configuration`.
pub async fn discovery(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"))
        .json(provider(&state).discovery())
}

/// `GET /oidc/jwks.json`.
pub async fn jwks(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"))
        .json(provider(&state).jwks())
}

/// `GET /oidc/authorize`: checks the request and shows the phone form for it.
pub async fn authorize(
    state: web::Data<AppState>,
    req: HttpRequest,
) -> Result<HttpResponse, PageError> {
    let params = web::Query::<AuthorizeParams>::from_query(req.query_string())
        .map(web::Query::into_inner)
        .map_err(|_| PageError::bad_request("sign-in-unreadable"))?;
    let started = match provider(&state).authorize(&params).await {
        Ok(started) => started,
        Err(AuthorizeRefusal::Unredirectable(why)) => return Err(PageError::bad_request(why)),
        Err(AuthorizeRefusal::Redirect(to)) => return Ok(see_other(&to)),
        Err(AuthorizeRefusal::Store(e)) => return Err(VerifyError::Store(e).into()),
    };
    let session = Session::for_sign_in(&started.request_id, state.verifier.now());
    let redirect_origin = params
        .redirect_uri
        .as_deref()
        .and_then(|uri| url::Url::parse(uri).ok())
        .map(|u| u.origin().ascii_serialization())
        .unwrap_or_default();
    let sign_in = SignInView {
        client_name: started.client_name,
        redirect_origin,
    };
    let form = PhoneForm {
        phone: started.login_hint.unwrap_or_default(),
        channel: "sms".into(),
        csrf_token: String::new(),
    };
    let cx = PageContext {
        state: &state,
        session: &session,
        sign_in: Some(&sign_in),
        locale: pages::locale(&state, &req),
    };
    let page = phone_page(cx, StatusCode::OK, Some(&form), None);
    Ok(with_session(page, &state, &session))
}

#[derive(Deserialize)]
pub struct CancelForm {
    #[serde(default)]
    csrf_token: String,
}

/// `POST /oidc/cancel`: back to the application with `error=access_denied`.
pub async fn cancel(
    state: web::Data<AppState>,
    req: HttpRequest,
    form: web::Form<CancelForm>,
) -> Result<HttpResponse, PageError> {
    let session = authorized(&state, &req, &form.csrf_token)?;
    let request = session.sign_in.as_deref().ok_or(PageError::Redirect("/"))?;
    let fresh = Session::fresh(state.verifier.now());
    match provider(&state).cancel(request).await? {
        Some(to) => Ok(with_session(see_other(&to), &state, &fresh)),
        None => Ok(with_session(
            message(
                &state,
                pages::locale(&state, &req),
                StatusCode::BAD_REQUEST,
                &Text::new("sign-in-expired-title"),
                &Text::new("sign-in-expired"),
            ),
            &state,
            &fresh,
        )),
    }
}

/// A refusal of `/oidc/token` or `/oidc/userinfo`.
#[derive(Debug)]
pub struct OidcError {
    error: TokenError,
    /// The challenge of a `401`.
    challenge: Option<&'static str>,
}

impl fmt::Display for OidcError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.error.error, self.error.description)
    }
}

impl ResponseError for OidcError {
    fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.error.status).unwrap_or(StatusCode::BAD_REQUEST)
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status_code());
        if let Some(challenge) = self.challenge {
            response.insert_header((header::WWW_AUTHENTICATE, challenge));
        }
        response
            .insert_header((header::PRAGMA, "no-cache"))
            .json(serde_json::json!({
                "error": self.error.error,
                "error_description": self.error.description,
            }))
    }
}

fn refused(error: TokenError) -> OidcError {
    OidcError {
        error,
        challenge: None,
    }
}

/// `Authorization: Basic` credentials, each part form-decoded (RFC 6749 §2.3.1).
fn basic_credentials(req: &HttpRequest) -> Option<(String, String)> {
    let raw = req
        .headers()
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Basic ")?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(raw.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (id, secret) = text.split_once(':')?;
    let decode = |part: &str| {
        url::form_urlencoded::parse(format!("x={part}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
    };
    Some((decode(id)?, decode(secret)?))
}

/// The CORS answer for a browser application calling from one of the registered origins.
fn allow_origin(state: &AppState, req: &HttpRequest, response: &mut HttpResponse) {
    let Some(origin) = req
        .headers()
        .get(header::ORIGIN)
        .and_then(|o| o.to_str().ok())
    else {
        return;
    };
    if provider(state).allows_origin(origin)
        && let Ok(value) = HeaderValue::from_str(origin)
    {
        let headers = response.headers_mut();
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, value);
        headers.insert(header::VARY, HeaderValue::from_static("Origin"));
    }
}

/// `OPTIONS` on the token and userinfo endpoints: a browser's preflight.
pub async fn preflight(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    let mut response = HttpResponse::NoContent()
        .insert_header((header::ACCESS_CONTROL_ALLOW_METHODS, "GET, POST"))
        .insert_header((
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            "Authorization, Content-Type",
        ))
        .insert_header((header::ACCESS_CONTROL_MAX_AGE, "600"))
        .finish();
    allow_origin(&state, &req, &mut response);
    response
}

/// `POST /oidc/token`.
pub async fn token(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, OidcError> {
    let body = read_body(payload).await.map_err(|e| {
        refused(match e {
            BodyError::TooLarge => TokenError::new(413, "invalid_request", "the body is too large"),
            BodyError::TimedOut => {
                TokenError::new(408, "invalid_request", "the body did not arrive in time")
            }
            BodyError::Unreadable => {
                TokenError::new(400, "invalid_request", "the body could not be read")
            }
        })
    })?;
    let form: TokenRequest = serde_urlencoded_form(&body).ok_or_else(|| {
        refused(TokenError::new(
            400,
            "invalid_request",
            "the body is not a form",
        ))
    })?;
    let basic = basic_credentials(&req);
    let used_basic = basic.is_some();
    let auth = ClientAuth {
        basic,
        form_id: form.client_id.clone(),
        form_secret: form.client_secret.clone(),
    };
    let answer = provider(&state)
        .token(&auth, &form)
        .await
        .map_err(|error| OidcError {
            challenge: (error.status == 401 && used_basic)
                .then_some("Basic realm=\"phone-verify\""),
            error,
        })?;
    let mut response = HttpResponse::Ok()
        .insert_header((header::PRAGMA, "no-cache"))
        .json(answer);
    allow_origin(&state, &req, &mut response);
    Ok(response)
}

/// A form body as the token request (the first value of each field).
fn serde_urlencoded_form(body: &[u8]) -> Option<TokenRequest> {
    let mut form = TokenRequest::default();
    for (name, value) in url::form_urlencoded::parse(body) {
        let slot = match name.as_ref() {
            "grant_type" => &mut form.grant_type,
            "code" => &mut form.code,
            "redirect_uri" => &mut form.redirect_uri,
            "code_verifier" => &mut form.code_verifier,
            "client_id" => &mut form.client_id,
            "client_secret" => &mut form.client_secret,
            _ => continue,
        };
        if slot.is_none() {
            *slot = Some(value.into_owned());
        }
    }
    std::str::from_utf8(body).ok().map(|_| form)
}

/// `GET|POST /oidc/userinfo` with `Authorization: Bearer TOKEN`.
pub async fn userinfo(
    state: web::Data<AppState>,
    req: HttpRequest,
) -> Result<HttpResponse, OidcError> {
    let token = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty());
    let Some(token) = token else {
        return Err(OidcError {
            error: TokenError::new(
                401,
                "invalid_request",
                "send the access token as a bearer token",
            ),
            challenge: Some("Bearer"),
        });
    };
    let claims = provider(&state)
        .userinfo(token)
        .await
        .map_err(|error| OidcError {
            challenge: (error.status == 401).then_some("Bearer error=\"invalid_token\""),
            error,
        })?;
    let mut response = HttpResponse::Ok().json(claims);
    allow_origin(&state, &req, &mut response);
    Ok(response)
}
