//! The route table, and the few answers that belong to no front end: health, readiness,
//! metrics, unknown routes, wrong methods and unreadable forms. Every resource answers
//! a method it does not take with `405` and an `Allow` header listing those it does.

use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, Resource, web};

use super::api::ApiError;
use super::pages::views;
use super::twilio_compat::TwilioError;
use super::{
    AppState, BodyError, MAX_BODY_BYTES, api, callbacks, oidc, pages, seed_compat, twilio_compat,
};
use crate::i18n::Text;

/// Which optional route families are mounted.
#[derive(Debug, Clone, Copy, Default)]
pub struct OptionalRoutes {
    pub oidc: bool,
    pub twilio_compat: bool,
    pub signalwire: bool,
    pub plivo: bool,
}

/// A resource of the pages (or of anything answered in HTML) taking `allow`.
fn page_resource(path: &str, allow: &'static str) -> Resource {
    web::resource(path).default_service(web::to(
        move |state: web::Data<AppState>, req: HttpRequest| async move {
            let mut page = views::message(
                &state,
                pages::locale(&state, &req),
                StatusCode::METHOD_NOT_ALLOWED,
                &Text::new("not-allowed-title"),
                &Text::new("not-allowed"),
            );
            page.headers_mut()
                .insert(header::ALLOW, header::HeaderValue::from_static(allow));
            page
        },
    ))
}

/// A resource of the JSON API taking `allow`.
fn api_resource(path: &str, allow: &'static str) -> Resource {
    web::resource(path).default_service(web::to(move || async move {
        Err::<HttpResponse, _>(ApiError::method_not_allowed(allow))
    }))
}

/// A resource of `/v2` taking `allow`.
fn twilio_resource(path: &str, allow: &'static str) -> Resource {
    web::resource(path).default_service(web::to(move || async move {
        Err::<HttpResponse, _>(TwilioError::method_not_allowed(allow))
    }))
}

/// Answers 413 for oversized forms, 408 for ones that arrive too slowly and 400 for
/// unreadable ones, as pages.
fn form_error(err: actix_web::error::UrlencodedError, req: &HttpRequest) -> actix_web::Error {
    use actix_web::error::UrlencodedError;
    let state = req
        .app_data::<web::Data<AppState>>()
        .expect("state is registered");
    let body_error = match &err {
        UrlencodedError::Overflow { .. } => Some(BodyError::TooLarge),
        UrlencodedError::Payload(e) => Some(BodyError::from_payload(e)),
        _ => None,
    };
    let (status, title, message) = match body_error {
        Some(BodyError::TooLarge) => (
            StatusCode::PAYLOAD_TOO_LARGE,
            "too-large-title",
            "too-large",
        ),
        Some(BodyError::TimedOut) => (StatusCode::REQUEST_TIMEOUT, "too-slow-title", "too-slow"),
        _ => (StatusCode::BAD_REQUEST, "unreadable-title", "unreadable"),
    };
    let response = views::message(
        state,
        pages::locale(state, req),
        status,
        &Text::new(title),
        &Text::new(message),
    );
    actix_web::error::InternalError::from_response(err, response).into()
}

async fn not_found(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    views::message(
        &state,
        pages::locale(&state, &req),
        StatusCode::NOT_FOUND,
        &Text::new("not-found-title"),
        &Text::new("not-found"),
    )
}

/// `GET /readyz`: 200 while the store answers, 503 otherwise.
async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    match state.verifier.ready().await {
        Ok(()) => HttpResponse::Ok().json(serde_json::json!({ "status": "ready" })),
        Err(e) => {
            tracing::warn!(error = %e, "not ready: store unavailable");
            HttpResponse::ServiceUnavailable().json(
                serde_json::json!({ "status": "unavailable", "detail": "the store is not reachable" }),
            )
        }
    }
}

/// `GET /metrics`: Prometheus text; with `server.metrics_token`, only for that bearer.
async fn metrics(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    if let Some(token) = &state.metrics_token {
        let presented = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or("");
        if !crate::code::credential_matches(token.expose(), presented.trim()) {
            return HttpResponse::Unauthorized()
                .insert_header((header::WWW_AUTHENTICATE, "Bearer"))
                .content_type("text/plain; charset=utf-8")
                .body("Send server.metrics_token as `Authorization: Bearer TOKEN`.\n");
        }
    }
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(state.verifier.metrics().render())
}

async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({ "status": "ok" }))
}

/// Wires every route; `static_dir` is served under `/static/`.
pub fn configure(
    cfg: &mut web::ServiceConfig,
    static_dir: &std::path::Path,
    optional: OptionalRoutes,
) {
    cfg.app_data(
        web::FormConfig::default()
            .limit(MAX_BODY_BYTES)
            .error_handler(form_error),
    )
    .app_data(web::PayloadConfig::default().limit(MAX_BODY_BYTES))
    .service(page_resource("/", "GET").route(web::get().to(pages::phone_form)))
    .service(page_resource("/request", "POST").route(web::post().to(pages::request_code)))
    .service(
        page_resource("/verify", "GET, POST")
            .route(web::get().to(pages::code_form))
            .route(web::post().to(pages::submit_code)),
    )
    .service(page_resource("/resend", "POST").route(web::post().to(pages::resend)))
    .service(page_resource("/success", "GET").route(web::get().to(pages::success)))
    .service(page_resource("/healthz", "GET").route(web::get().to(healthz)))
    .service(page_resource("/readyz", "GET").route(web::get().to(readyz)))
    .service(page_resource("/metrics", "GET").route(web::get().to(metrics)))
    .service(
        page_resource("/voice/{call_id}", "GET, POST")
            .route(web::get().to(callbacks::call_document))
            .route(web::post().to(callbacks::call_document)),
    )
    .service(
        page_resource("/webhooks/{provider}", "POST")
            .route(web::post().to(callbacks::delivery_report)),
    )
    .service(page_resource("/api/openapi.json", "GET").route(web::get().to(api::openapi)))
    .service(
        web::scope("/api/v1")
            .service(api_resource("/verifications", "POST").route(web::post().to(api::start)))
            .service(api_resource("/verifications/check", "POST").route(web::post().to(api::check)))
            .service(
                api_resource("/verifications/{id}", "GET, DELETE")
                    .route(web::get().to(api::get))
                    .route(web::delete().to(api::cancel)),
            )
            .default_service(web::to(api::not_found)),
    )
    .service(
        web::scope("/static")
            .wrap(
                actix_web::middleware::DefaultHeaders::new()
                    .add((header::CACHE_CONTROL, "public, max-age=3600")),
            )
            .service(actix_files::Files::new("", static_dir)),
    )
    .default_service(web::to(not_found));
    if optional.oidc {
        let cors = |path: &str, allow: &'static str| {
            page_resource(path, allow)
                .route(web::method(actix_web::http::Method::OPTIONS).to(oidc::preflight))
        };
        cfg.service(
            page_resource("/.well-known/openid-configuration", "GET")
                .route(web::get().to(oidc::discovery)),
        )
        .service(page_resource("/oidc/jwks.json", "GET").route(web::get().to(oidc::jwks)))
        .service(page_resource("/oidc/authorize", "GET").route(web::get().to(oidc::authorize)))
        .service(page_resource("/oidc/cancel", "POST").route(web::post().to(oidc::cancel)))
        .service(cors("/oidc/token", "POST, OPTIONS").route(web::post().to(oidc::token)))
        .service(
            cors("/oidc/userinfo", "GET, POST, OPTIONS")
                .route(web::get().to(oidc::userinfo))
                .route(web::post().to(oidc::userinfo)),
        );
    }
    if optional.twilio_compat {
        cfg.service(
            web::scope("/v2/Services/{service_sid}")
                .service(
                    twilio_resource("/Verifications", "POST")
                        .route(web::post().to(twilio_compat::create)),
                )
                .service(
                    twilio_resource("/VerificationCheck", "POST")
                        .route(web::post().to(twilio_compat::check)),
                )
                .service(
                    twilio_resource("/Verifications/{sid}", "GET, POST")
                        .route(web::get().to(twilio_compat::fetch))
                        .route(web::post().to(twilio_compat::update)),
                )
                .default_service(web::to(twilio_compat::unknown)),
        );
    }
    if optional.signalwire {
        cfg.service(
            page_resource("/request-auth", "GET, POST")
                .route(web::get().to(seed_compat::request_auth))
                .route(web::post().to(seed_compat::request_auth)),
        )
        .service(
            page_resource("/validate-auth", "GET, POST")
                .route(web::get().to(seed_compat::validate_auth))
                .route(web::post().to(seed_compat::validate_auth)),
        );
    }
    if optional.plivo {
        cfg.service(
            page_resource("/verify/{number}", "GET").route(web::get().to(seed_compat::plivo_sms)),
        )
        .service(
            page_resource("/verify_voice/{number}", "GET")
                .route(web::get().to(seed_compat::plivo_voice)),
        )
        .service(
            page_resource("/checkcode/{number}/{code}", "GET")
                .route(web::get().to(seed_compat::plivo_check)),
        );
    }
}
