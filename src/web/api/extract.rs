//! What every JSON API handler extracts before it does anything: the caller, by its
//! bearer key, and a JSON body.

use std::future::{Ready, ready};

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::web::Bytes;
use actix_web::{FromRequest, HttpRequest, web};
use futures_util::future::LocalBoxFuture;
use serde::de::DeserializeOwned;

use super::problem::ApiError;
use crate::code::credential_matches;
use crate::web::{AppState, read_body};

/// A caller holding one of `api.keys` (compared in constant time, every key each time, so
/// timing does not say which one nearly matched).
pub struct ApiCaller {
    key: String,
}

impl ApiCaller {
    /// The key the caller authenticated with (scopes its idempotency keys).
    pub fn key(&self) -> &str {
        &self.key
    }

    fn authenticate(req: &HttpRequest) -> Result<Self, ApiError> {
        let state = req
            .app_data::<web::Data<AppState>>()
            .expect("state is registered");
        if state.api_keys.is_empty() {
            return Err(ApiError::unauthorized(
                "No API keys are configured. Set api.keys in the configuration (or PHONE_VERIFY__API__KEYS) and send one as `Authorization: Bearer KEY`.",
                false,
            ));
        }
        let presented = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .unwrap_or("");
        let matched = state.api_keys.iter().fold(false, |found, key| {
            credential_matches(key.expose(), presented) | found
        });
        if matched {
            Ok(Self {
                key: presented.to_string(),
            })
        } else {
            Err(ApiError::unauthorized(
                "Send a valid API key as `Authorization: Bearer KEY`.",
                true,
            ))
        }
    }
}

impl FromRequest for ApiCaller {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(Self::authenticate(req))
    }
}

/// A JSON body of type `T`, and the bytes it was read from (idempotency fingerprints).
pub struct JsonBody<T> {
    pub value: T,
    pub raw: Bytes,
}

impl<T> std::ops::Deref for JsonBody<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.value
    }
}

impl<T: DeserializeOwned + 'static> FromRequest for JsonBody<T> {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let is_json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|mime| mime.trim().eq_ignore_ascii_case("application/json"));
        let payload = payload.take();
        Box::pin(async move {
            if !is_json {
                return Err(ApiError::new(
                    actix_web::http::StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "unsupported_media_type",
                    "Send JSON with `Content-Type: application/json`.",
                ));
            }
            let raw = read_body(payload).await?;
            let value = serde_json::from_slice(&raw).map_err(|e| {
                ApiError::invalid(
                    "malformed_json",
                    format!("The body is not the JSON this endpoint takes: {e}"),
                )
            })?;
            Ok(Self { value, raw })
        })
    }
}
