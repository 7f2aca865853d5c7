//! The native JSON API (SPEC §5): bearer keys, JSON in and out, RFC 9457 problems with
//! a stable `code`, idempotent starts. `GET /api/openapi.json` is generated from the
//! annotations here.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};
use utoipa::{OpenApi, ToSchema};

use super::{AppState, BodyError, client_ip, read_body, rfc3339};
use crate::code::credential_matches;
use crate::domain::{Channel, Status, Verification};
use crate::phone::PhoneNumber;
use crate::verification::idempotency::{Claim, IdempotencyKey, StoredResponse};
use crate::verification::{CheckResult, Requester, VerifyError};

/// A verification as the API shows it.
#[derive(Serialize, ToSchema)]
pub struct VerificationBody {
    /// 32 hex characters.
    id: String,
    /// E.164.
    to: String,
    /// `sms` or `call`.
    channel: String,
    /// `pending`, `approved`, `canceled`, `expired`, `max_attempts_reached` or `failed`.
    status: String,
    /// RFC 3339.
    created_at: String,
    last_sent_at: String,
    expires_at: String,
    attempts_remaining: u32,
    send_attempts: Vec<SendAttemptBody>,
}

/// One delivery attempt.
#[derive(Serialize, ToSchema)]
pub struct SendAttemptBody {
    channel: String,
    /// The provider's configuration name: `console`, `twilio`, `signalwire`, `plivo`, `telnyx`.
    provider: String,
    at: String,
    /// `queued`, `sent`, `delivered`, `undelivered` or `failed`.
    delivery_status: Option<String>,
}

/// The answer to a check: whether the code was right, and the verification after it.
#[derive(Serialize, ToSchema)]
pub struct CheckBody {
    valid: bool,
    #[serde(flatten)]
    verification: VerificationBody,
}

/// Starts (or resends) a verification.
#[derive(Deserialize, ToSchema)]
pub struct StartRequest {
    /// The number, E.164 or national in `verification.default_region`.
    to: String,
    /// `sms` (default) or `call`.
    #[serde(default)]
    channel: Option<String>,
    /// Accepted for compatibility; messages are in the configured language.
    #[serde(default)]
    #[allow(dead_code)]
    locale: Option<String>,
}

/// Checks a code, by number or by verification id.
#[derive(Deserialize, ToSchema)]
pub struct CheckRequest {
    #[serde(default)]
    to: Option<String>,
    #[serde(default)]
    id: Option<String>,
    code: String,
}

/// An error (RFC 9457).
#[derive(Serialize, ToSchema)]
pub struct Problem {
    #[serde(rename = "type")]
    kind: String,
    title: String,
    status: u16,
    detail: String,
    /// Stable, for programs: `invalid_phone`, `rate_limited`, `max_attempts_reached`, ...
    code: String,
}

pub fn problem(status: StatusCode, code: &str, detail: impl Into<String>) -> HttpResponse {
    let body = Problem {
        kind: format!("urn:phone-verify:problem:{code}"),
        title: status.canonical_reason().unwrap_or("Error").to_string(),
        status: status.as_u16(),
        detail: detail.into(),
        code: code.to_string(),
    };
    HttpResponse::build(status)
        .content_type("application/problem+json")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(body)
}

fn retry_after(mut response: HttpResponse, secs: u64) -> HttpResponse {
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, secs.into());
    response
}

fn verification_body(v: &Verification, max_attempts: u32) -> VerificationBody {
    VerificationBody {
        id: v.id.clone(),
        to: v.to.e164().to_string(),
        channel: v.channel.as_str().to_string(),
        status: v.status.as_str().to_string(),
        created_at: rfc3339(v.created_at),
        last_sent_at: rfc3339(v.last_sent_at),
        expires_at: rfc3339(v.expires_at),
        attempts_remaining: v.attempts_remaining(max_attempts),
        send_attempts: v
            .send_attempts
            .iter()
            .map(|a| SendAttemptBody {
                channel: a.channel.as_str().to_string(),
                provider: a.provider.clone(),
                at: rfc3339(a.at),
                delivery_status: a.delivery_status.clone(),
            })
            .collect(),
    }
}

/// `200` with the verification object.
fn verification_reply(state: &AppState, v: &Verification) -> HttpResponse {
    json(
        StatusCode::OK,
        &verification_body(v, state.verifier.policy().check.max_attempts),
    )
}

fn json(status: StatusCode, body: &impl Serialize) -> HttpResponse {
    HttpResponse::build(status)
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(body)
}

/// Why a request was not authorized.
enum Unauthorized {
    NoKeysConfigured,
    WrongKey,
}

impl Unauthorized {
    fn response(self) -> HttpResponse {
        match self {
            Self::NoKeysConfigured => problem(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "No API keys are configured. Set api.keys in the configuration (or PHONE_VERIFY__API__KEYS) and send one as `Authorization: Bearer KEY`.",
            ),
            Self::WrongKey => {
                let mut response = problem(
                    StatusCode::UNAUTHORIZED,
                    "unauthorized",
                    "Send a valid API key as `Authorization: Bearer KEY`.",
                );
                response
                    .headers_mut()
                    .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
                response
            }
        }
    }
}

/// The caller's key, if it is one of `api.keys` (compared in constant time).
fn authorize(state: &AppState, req: &HttpRequest) -> Result<String, Unauthorized> {
    if state.api_keys.is_empty() {
        return Err(Unauthorized::NoKeysConfigured);
    }
    let presented = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .unwrap_or("");
    // Every key is compared, so timing does not say which one nearly matched.
    let matched = state.api_keys.iter().fold(false, |found, key| {
        credential_matches(key.expose(), presented) | found
    });
    if matched {
        Ok(presented.to_string())
    } else {
        Err(Unauthorized::WrongKey)
    }
}

/// The body as `T`, when it is JSON.
async fn json_request<T: serde::de::DeserializeOwned>(
    req: &HttpRequest,
    payload: web::Payload,
) -> Result<(T, web::Bytes), HttpResponse> {
    let is_json = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|mime| mime.trim().eq_ignore_ascii_case("application/json"));
    if !is_json {
        return Err(problem(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "Send JSON with `Content-Type: application/json`.",
        ));
    }
    let bytes = read_body(payload).await.map_err(|e| match e {
        BodyError::TooLarge => problem(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            "The body is larger than 16 KiB.",
        ),
        BodyError::TimedOut => problem(
            StatusCode::REQUEST_TIMEOUT,
            "request_timeout",
            "The body did not arrive in time.",
        ),
        BodyError::Unreadable => problem(
            StatusCode::BAD_REQUEST,
            "malformed_json",
            "The body could not be read.",
        ),
    })?;
    let parsed = serde_json::from_slice(&bytes).map_err(|e| {
        let detail = format!("The body is not the JSON this endpoint takes: {e}");
        problem(StatusCode::BAD_REQUEST, "malformed_json", detail)
    })?;
    Ok((parsed, bytes))
}

/// Maps a use-case error onto a problem.
fn error_response(error: VerifyError) -> HttpResponse {
    match error {
        VerifyError::CountryNotAllowed => problem(
            StatusCode::FORBIDDEN,
            "country_not_allowed",
            "Codes are not sent to numbers in this country.",
        ),
        VerifyError::RateLimited(wait) => retry_after(
            problem(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                format!("Too many codes requested; retry in {}.", wait.describe()),
            ),
            wait.secs(),
        ),
        VerifyError::Locked(wait) => retry_after(
            problem(
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_attempts",
                format!(
                    "Too many incorrect codes for this number; retry in {}.",
                    wait.describe()
                ),
            ),
            wait.secs(),
        ),
        VerifyError::NotPending(Status::MaxAttemptsReached) => problem(
            StatusCode::TOO_MANY_REQUESTS,
            "max_attempts_reached",
            "This verification has used all its attempts; start a new one.",
        ),
        VerifyError::NotFound | VerifyError::NotPending(_) => problem(
            StatusCode::NOT_FOUND,
            "not_found",
            "No pending verification matches.",
        ),
        VerifyError::NumberRejected => problem(
            StatusCode::UNPROCESSABLE_ENTITY,
            "number_unreachable",
            "This number cannot receive verification codes.",
        ),
        VerifyError::DeliveryFailed => problem(
            StatusCode::BAD_GATEWAY,
            "delivery_failed",
            "No provider could deliver the code; try again later.",
        ),
        VerifyError::Store(e) => {
            tracing::error!(error = %e, "store unavailable");
            problem(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "The service is temporarily unavailable.",
            )
        }
    }
}

/// Start a verification: send a code to `to` by `channel`.
#[utoipa::path(
    post,
    path = "/api/v1/verifications",
    request_body = StartRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = "Replays within 24 h return the first answer and send nothing")),
    responses(
        (status = 201, description = "Code sent", body = VerificationBody),
        (status = 400, description = "Invalid `to` (`invalid_phone`), channel or JSON", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or wrong API key", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Country not allowed (`country_not_allowed`)", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Number unreachable, or an idempotency key reused with another body", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Send limit or locked number; see `Retry-After`", body = Problem, content_type = "application/problem+json"),
        (status = 502, description = "Every provider failed (`delivery_failed`)", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn start(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> HttpResponse {
    let key = match authorize(&state, &req) {
        Ok(key) => key,
        Err(refusal) => return refusal.response(),
    };
    let (body, raw) = match json_request::<StartRequest>(&req, payload).await {
        Ok(parsed) => parsed,
        Err(response) => return response,
    };
    let Some(idempotency_key) = req.headers().get("idempotency-key") else {
        return start_verification(&state, &req, &body).await;
    };
    let Ok(idempotency_key) = IdempotencyKey::new(&key, idempotency_key.as_bytes(), &raw) else {
        return problem(
            StatusCode::BAD_REQUEST,
            "invalid_idempotency_key",
            "Idempotency-Key must be 1 to 255 visible characters.",
        );
    };
    match state.verifier.claim_idempotent(&idempotency_key).await {
        Ok(Claim::Fresh) => {}
        Ok(Claim::Replay(stored)) => {
            return HttpResponse::build(
                StatusCode::from_u16(stored.status).unwrap_or(StatusCode::OK),
            )
            .content_type(if stored.status < 300 {
                "application/json"
            } else {
                "application/problem+json"
            })
            .insert_header(("idempotent-replayed", "true"))
            .body(stored.body);
        }
        Ok(Claim::Conflict) => {
            return problem(
                StatusCode::UNPROCESSABLE_ENTITY,
                "idempotency_key_reused",
                "This Idempotency-Key was used with a different request.",
            );
        }
        Ok(Claim::InProgress) => {
            return problem(
                StatusCode::CONFLICT,
                "idempotency_key_in_use",
                "A request with this Idempotency-Key is still being handled.",
            );
        }
        Err(e) => return error_response(e),
    }
    let (response, stored) = keep_body(start_verification(&state, &req, &body).await).await;
    if let Err(e) = state
        .verifier
        .finish_idempotent(&idempotency_key, stored)
        .await
    {
        tracing::error!(error = %e, "could not record the idempotent answer");
    }
    response
}

/// Copies a response's body for storage, rebuilding the response around it.
async fn keep_body(response: HttpResponse) -> (HttpResponse, StoredResponse) {
    let status = response.status().as_u16();
    let (head, body) = response.into_parts();
    let bytes = actix_web::body::to_bytes(body).await.unwrap_or_default();
    let stored = StoredResponse {
        status,
        body: String::from_utf8_lossy(&bytes).into_owned(),
    };
    (head.set_body(bytes).map_into_boxed_body(), stored)
}

async fn start_verification(
    state: &AppState,
    req: &HttpRequest,
    body: &StartRequest,
) -> HttpResponse {
    let policy = state.verifier.policy();
    let to = match PhoneNumber::parse(&body.to, policy.default_region) {
        Ok(to) => to,
        Err(e) => return problem(StatusCode::BAD_REQUEST, "invalid_phone", e.to_string()),
    };
    let Some(channel) = Channel::parse(body.channel.as_deref().unwrap_or("sms")) else {
        return problem(
            StatusCode::BAD_REQUEST,
            "invalid_channel",
            "`channel` must be `sms` or `call`.",
        );
    };
    match state
        .verifier
        .start(
            &to,
            channel,
            &Requester::from_ip(client_ip(req, &state.trusted_proxies)),
        )
        .await
    {
        Ok(v) => json(
            StatusCode::CREATED,
            &verification_body(&v, policy.check.max_attempts),
        ),
        Err(e) => error_response(e),
    }
}

/// Check a code against the pending verification of `to`, or of `id`.
#[utoipa::path(
    post,
    path = "/api/v1/verifications/check",
    request_body = CheckRequest,
    responses(
        (status = 200, description = "Evaluated: `valid` says whether the code was right", body = CheckBody),
        (status = 400, description = "Invalid `to`, code or JSON", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or wrong API key", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No pending verification", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Attempts used up (`max_attempts_reached`) or number locked", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn check(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> HttpResponse {
    if let Err(refusal) = authorize(&state, &req) {
        return refusal.response();
    }
    let body = match json_request::<CheckRequest>(&req, payload).await {
        Ok((body, _)) => body,
        Err(response) => return response,
    };
    let policy = state.verifier.policy();
    let code = match policy.format.parse(&body.code) {
        Ok(code) => code,
        Err(e) => return problem(StatusCode::BAD_REQUEST, "invalid_code", e.to_string()),
    };
    let result = match (&body.id, &body.to) {
        (Some(id), _) => state.verifier.check(id, &code).await,
        (None, Some(to)) => match PhoneNumber::parse(to, policy.default_region) {
            Ok(to) => state.verifier.check_number(&to, &code).await,
            Err(e) => return problem(StatusCode::BAD_REQUEST, "invalid_phone", e.to_string()),
        },
        (None, None) => {
            return problem(
                StatusCode::BAD_REQUEST,
                "invalid_parameter",
                "Send `to` or `id` with the code.",
            );
        }
    };
    match result {
        Ok(CheckResult {
            verification,
            valid,
            ..
        }) => json(
            StatusCode::OK,
            &CheckBody {
                valid,
                verification: verification_body(&verification, policy.check.max_attempts),
            },
        ),
        Err(e) => error_response(e),
    }
}

/// Read a verification.
#[utoipa::path(
    get,
    path = "/api/v1/verifications/{id}",
    params(("id" = String, Path, description = "The verification id")),
    responses(
        (status = 200, description = "The verification", body = VerificationBody),
        (status = 401, description = "Missing or wrong API key", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Unknown or forgotten", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn get(
    state: web::Data<AppState>,
    req: HttpRequest,
    id: web::Path<String>,
) -> HttpResponse {
    if let Err(refusal) = authorize(&state, &req) {
        return refusal.response();
    }
    match state.verifier.get(&id).await {
        Ok(v) => verification_reply(&state, &v),
        Err(e) => error_response(e),
    }
}

/// Cancel a pending verification.
#[utoipa::path(
    delete,
    path = "/api/v1/verifications/{id}",
    params(("id" = String, Path, description = "The verification id")),
    responses(
        (status = 200, description = "Canceled", body = VerificationBody),
        (status = 401, description = "Missing or wrong API key", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No pending verification with this id", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn cancel(
    state: web::Data<AppState>,
    req: HttpRequest,
    id: web::Path<String>,
) -> HttpResponse {
    if let Err(refusal) = authorize(&state, &req) {
        return refusal.response();
    }
    match state.verifier.cancel(&id).await {
        Ok(v) => verification_reply(&state, &v),
        Err(VerifyError::NotPending(_)) => problem(
            StatusCode::NOT_FOUND,
            "not_found",
            "No pending verification with this id.",
        ),
        Err(e) => error_response(e),
    }
}

/// Unknown routes under `/api`.
pub async fn not_found() -> HttpResponse {
    problem(
        StatusCode::NOT_FOUND,
        "not_found",
        "There is no such endpoint.",
    )
}

/// Known routes asked with the wrong method.
pub async fn method_not_allowed() -> HttpResponse {
    problem(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "This endpoint does not take that method.",
    )
}

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(title = "phone-verify", description = "Phone verification by SMS or voice call: start a verification, check the code."),
    paths(start, check, get, cancel),
    components(schemas(VerificationBody, SendAttemptBody, CheckBody, StartRequest, CheckRequest, Problem)),
    modifiers(&BearerAuth)
)]
struct ApiDoc;

/// `GET /api/openapi.json`.
pub async fn openapi() -> HttpResponse {
    let mut doc = ApiDoc::openapi();
    doc.info.version = env!("CARGO_PKG_VERSION").to_string();
    doc.info.license = None;
    HttpResponse::Ok().json(doc)
}
