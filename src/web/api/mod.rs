//! The native JSON API: bearer keys, JSON in and out, RFC 9457 problems with a stable
//! `code`, idempotent starts. `GET /api/openapi.json` is generated from the annotations
//! here, with the configured code format filled in.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};
use serde::{Deserialize, Serialize};
use utoipa::{OpenApi, ToSchema};

use super::{AppState, rfc3339};
use crate::domain::{Channel, Verification};
use crate::i18n::Locale;
use crate::phone::PhoneNumber;
use crate::verification::idempotency::{Claim, IdempotencyKey, StoredResponse};
use crate::verification::{Policy, Requester, VerifyError};

mod extract;
mod problem;

pub use extract::{ApiCaller, JsonBody};
pub use problem::{ApiError, Problem};

/// A verification as the API shows it.
#[derive(Serialize, ToSchema)]
pub struct VerificationBody {
    /// 32 hex characters.
    #[schema(pattern = "^[0-9a-f]{32}$")]
    id: String,
    /// E.164.
    to: String,
    /// `sms` or `call`.
    #[schema(pattern = "^(sms|call)$")]
    channel: String,
    /// `pending`, `approved`, `canceled`, `expired`, `max_attempts_reached` or `failed`.
    status: String,
    /// RFC 3339.
    created_at: String,
    last_sent_at: String,
    expires_at: String,
    attempts_remaining: u32,
    /// The locale its messages are in: `en`, `es`, `fr`, `de`, `pt` or `it`.
    #[schema(pattern = "^(en|es|fr|de|pt|it)$")]
    locale: String,
    send_attempts: Vec<SendAttemptBody>,
}

/// One delivery attempt.
#[derive(Serialize, ToSchema)]
pub struct SendAttemptBody {
    channel: String,
    /// The provider's configuration name: `console`, `twilio`, `signalwire`, `plivo`,
    /// `telnyx`, `plivo_phlo`, `twilio_verify`, `telnyx_verify`, `plivo_verify`,
    /// `signalwire_mfa`, or `test` for a test number.
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
    #[schema(format = "phone", min_length = 5, max_length = 40)]
    to: String,
    /// `sms` (default) or `call`.
    #[serde(default)]
    #[schema(pattern = "^(sms|call)$")]
    channel: Option<String>,
    /// A BCP 47 language tag for the SMS or call (`es`, `es-MX`, `pt-BR`): its language
    /// when there are texts in it (en, es, fr, de, pt, it), else
    /// `verification.default_locale`. A malformed tag is `400` (`invalid_locale`).
    #[serde(default, deserialize_with = "present")]
    #[schema(example = "es-MX")]
    locale: Option<String>,
    /// The address of the person the code is for (IPv4 or IPv6), as your backend saw
    /// it. The per-address send limit counts it; without it, none applies, since the
    /// caller is a backend speaking for many people.
    #[serde(default, deserialize_with = "present")]
    client_ip: Option<String>,
}

/// Checks a code, by number or by verification id (one of the two is required).
#[derive(Deserialize, ToSchema)]
pub struct CheckRequest {
    #[serde(default, deserialize_with = "present")]
    #[schema(format = "phone", min_length = 5, max_length = 40)]
    to: Option<String>,
    #[serde(default, deserialize_with = "present")]
    #[schema(pattern = "^[0-9a-f]{32}$")]
    id: Option<String>,
    /// The code as typed; its pattern follows `verification.code_length` and `code_alphabet`.
    code: String,
}

/// An optional string that, when sent, is a string: `null` is refused like any other
/// wrong type (the document says so).
fn present<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    String::deserialize(deserializer).map(Some)
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
        locale: v.locale.tag().to_string(),
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

/// `status` with the verification object.
fn verification_reply(status: StatusCode, policy: &Policy, v: &Verification) -> HttpResponse {
    HttpResponse::build(status).json(verification_body(v, policy.check.max_attempts))
}

fn parse_phone(raw: &str, policy: &Policy) -> Result<PhoneNumber, ApiError> {
    PhoneNumber::parse(raw, policy.default_region)
        .map_err(|e| ApiError::invalid("invalid_phone", e.to_string()))
}

/// Start a verification: send a code to `to` by `channel`.
#[utoipa::path(
    post,
    path = "/api/v1/verifications",
    request_body = StartRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = "1 to 255 visible characters. Replays within 24 h with the same body return the first answer and send nothing", min_length = 1, max_length = 255, pattern = "^[!-~]([ -~]*[!-~])?$")),
    responses(
        (status = 201, description = "Code sent", body = VerificationBody),
        (status = 400, description = "Invalid `to` (`invalid_phone`), channel, `client_ip` (`invalid_parameter`), `locale` (`invalid_locale`), JSON or idempotency key", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or wrong API key", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Country not allowed (`country_not_allowed`), or the number's range blocked by the fraud guard (`fraud_blocked`)", body = Problem, content_type = "application/problem+json"),
        (status = 408, description = "The body did not arrive in time", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "A request with this idempotency key is still being handled", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "The body is larger than 16 KiB", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Number unreachable (`number_unreachable`), or an idempotency key reused with another body (`idempotency_key_reused`)", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Send limit or locked number (`rate_limited`), or the day's budget spent (`spend_limit_reached`); see `Retry-After`", body = Problem, content_type = "application/problem+json"),
        (status = 502, description = "Every provider failed (`delivery_failed`)", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The store is unreachable (`unavailable`)", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn start(
    state: web::Data<AppState>,
    caller: ApiCaller,
    req: HttpRequest,
    body: JsonBody<StartRequest>,
) -> Result<HttpResponse, ApiError> {
    let Some(header) = req.headers().get("idempotency-key") else {
        return start_verification(&state, &body).await;
    };
    let key = IdempotencyKey::new(caller.key(), header.as_bytes(), &body.raw)
        .map_err(|e| ApiError::invalid("invalid_idempotency_key", format!("{e}.")))?;
    match state.verifier.claim_idempotent(&key).await? {
        Claim::Fresh => {}
        Claim::Replay(stored) => return Ok(replay(stored)),
        Claim::Conflict => {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "idempotency_key_reused",
                "This Idempotency-Key was used with a different request.",
            ));
        }
        Claim::InProgress => {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "idempotency_key_in_use",
                "A request with this Idempotency-Key is still being handled.",
            ));
        }
    }
    let answer = start_verification(&state, &body)
        .await
        .unwrap_or_else(|e| e.error_response());
    let (answer, stored) = keep_body(answer).await;
    if let Err(e) = state.verifier.finish_idempotent(&key, stored).await {
        tracing::error!(error = %e, "could not record the idempotent answer");
    }
    Ok(answer)
}

async fn start_verification(
    state: &AppState,
    body: &StartRequest,
) -> Result<HttpResponse, ApiError> {
    let policy = state.verifier.policy();
    let to = parse_phone(&body.to, policy)?;
    let channel = Channel::parse(body.channel.as_deref().unwrap_or("sms")).ok_or_else(|| {
        ApiError::invalid("invalid_channel", "`channel` must be `sms` or `call`.")
    })?;
    let ip = body
        .client_ip
        .as_deref()
        .map(|raw| {
            raw.trim().parse::<std::net::IpAddr>().map_err(|_| {
                ApiError::invalid(
                    "invalid_parameter",
                    "`client_ip` must be an IPv4 or IPv6 address, such as 203.0.113.7.",
                )
            })
        })
        .transpose()?;
    let locale = body
        .locale
        .as_deref()
        .map(|tag| {
            Locale::resolve(tag, policy.default_locale).map_err(|_| {
                ApiError::invalid(
                    "invalid_locale",
                    "`locale` must be a BCP 47 language tag, such as es or pt-BR.",
                )
            })
        })
        .transpose()?;
    let requester = Requester {
        ip,
        browser: None,
        locale,
    };
    let v = state.verifier.start(&to, channel, &requester).await?;
    Ok(verification_reply(StatusCode::CREATED, policy, &v))
}

/// The first answer to an idempotent start, again.
fn replay(stored: StoredResponse) -> HttpResponse {
    HttpResponse::build(StatusCode::from_u16(stored.status).unwrap_or(StatusCode::OK))
        .content_type(if stored.status < 300 {
            "application/json"
        } else {
            "application/problem+json"
        })
        .insert_header(("idempotent-replayed", "true"))
        .body(stored.body)
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

/// Check a code against the pending verification of `to`, or of `id`.
#[utoipa::path(
    post,
    path = "/api/v1/verifications/check",
    request_body = CheckRequest,
    responses(
        (status = 200, description = "Evaluated: `valid` says whether the code was right", body = CheckBody),
        (status = 400, description = "Invalid `to`, code or JSON, or neither `to` nor `id`", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or wrong API key", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No pending verification", body = Problem, content_type = "application/problem+json"),
        (status = 408, description = "The body did not arrive in time", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "The body is larger than 16 KiB", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Attempts used up (`max_attempts_reached`) or number locked", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The store is unreachable (`unavailable`), or the provider that owns the code did not answer (`provider_unavailable`; the attempt is not counted)", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn check(
    state: web::Data<AppState>,
    _caller: ApiCaller,
    body: JsonBody<CheckRequest>,
) -> Result<HttpResponse, ApiError> {
    let policy = state.verifier.policy();
    let code = policy
        .format
        .parse(&body.code)
        .map_err(|e| ApiError::invalid("invalid_code", e.to_string()))?;
    let result = match (&body.id, &body.to) {
        (Some(id), _) => state.verifier.check(id, &code).await?,
        (None, Some(to)) => {
            let to = parse_phone(to, policy)?;
            state.verifier.check_number(&to, &code).await?
        }
        (None, None) => {
            return Err(ApiError::invalid(
                "invalid_parameter",
                "Send `to` or `id` with the code.",
            ));
        }
    };
    Ok(HttpResponse::Ok().json(CheckBody {
        valid: result.valid,
        verification: verification_body(&result.verification, policy.check.max_attempts),
    }))
}

/// Read a verification.
#[utoipa::path(
    get,
    path = "/api/v1/verifications/{id}",
    params(("id" = String, Path, description = "The verification id", pattern = "^[0-9a-f]{32}$")),
    responses(
        (status = 200, description = "The verification", body = VerificationBody),
        (status = 401, description = "Missing or wrong API key", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Unknown or forgotten", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The store is unreachable (`unavailable`)", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn get(
    state: web::Data<AppState>,
    _caller: ApiCaller,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let v = state.verifier.get(&id).await?;
    Ok(verification_reply(
        StatusCode::OK,
        state.verifier.policy(),
        &v,
    ))
}

/// Cancel a pending verification.
#[utoipa::path(
    delete,
    path = "/api/v1/verifications/{id}",
    params(("id" = String, Path, description = "The verification id", pattern = "^[0-9a-f]{32}$")),
    responses(
        (status = 200, description = "Canceled", body = VerificationBody),
        (status = 401, description = "Missing or wrong API key", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No pending verification with this id", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The store is unreachable (`unavailable`)", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn cancel(
    state: web::Data<AppState>,
    _caller: ApiCaller,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    // Canceling anything but a pending verification finds nothing to cancel.
    let v = state.verifier.cancel(&id).await.map_err(|e| match e {
        VerifyError::NotPending(_) => VerifyError::NotFound,
        other => other,
    })?;
    Ok(verification_reply(
        StatusCode::OK,
        state.verifier.policy(),
        &v,
    ))
}

/// Unknown routes under `/api`.
pub async fn not_found() -> Result<HttpResponse, ApiError> {
    Err(ApiError::no_such_endpoint())
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

/// The OpenAPI document, with the code pattern of this configuration.
pub fn document(policy: &Policy) -> serde_json::Value {
    let mut doc = ApiDoc::openapi();
    doc.info.version = env!("CARGO_PKG_VERSION").to_string();
    doc.info.license = None;
    let mut doc = serde_json::to_value(doc).expect("the OpenAPI document serializes");
    let check = &mut doc["components"]["schemas"]["CheckRequest"];
    check["properties"]["code"]["pattern"] = policy.format.pattern().into();
    // One of `to` and `id` is required, and neither may be null.
    check["anyOf"] = serde_json::json!([{"required": ["to"]}, {"required": ["id"]}]);
    for field in ["to", "id"] {
        check["properties"][field]["type"] = "string".into();
    }
    let start = &mut doc["components"]["schemas"]["StartRequest"]["properties"];
    let description = start["client_ip"]["description"].clone();
    start["client_ip"] = serde_json::json!({
        "description": description,
        "anyOf": [{"type": "string", "format": "ipv4"}, {"type": "string", "format": "ipv6"}],
    });
    // Language, optional script, optional region: the common shapes of BCP 47, every one
    // of them well-formed (the server takes any well-formed tag).
    start["locale"]["type"] = "string".into();
    start["locale"]["pattern"] = "^[A-Za-z]{2,3}(-[A-Za-z]{4})?(-([A-Za-z]{2}|[0-9]{3}))?$".into();
    doc
}

/// `GET /api/openapi.json`.
pub async fn openapi(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok().json(document(state.verifier.policy()))
}
