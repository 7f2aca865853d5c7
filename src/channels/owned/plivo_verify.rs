//! Plivo Verify sessions: JSON, Basic auth with `auth_id:auth_token`, paths with a
//! trailing slash, `{api_id, error}` errors.
//! Start: `POST /v1/Account/{auth_id}/Verify/Session/` (`recipient`, `channel` `sms` or
//! `voice`, `locale`, `brand_name`, `code_length`, `app_uuid`) → `session_uuid`.
//! Check: `POST …/Verify/Session/{uuid}/` (`otp`) → `200` "session validated
//! successfully."; any other answer is read from the session itself (`GET`, `status`
//! `verified`, `expired` or `in-progress`), since Plivo documents no failure body.

use async_trait::async_trait;
use serde_json::json;

use super::super::http::{self, Answer};
use super::super::{CodeOwner, DeliveryError, OwnedStart, Provider};
use crate::code::Code;
use crate::config::{PlivoVerifySettings, ProviderName, Secret};
use crate::domain::{Channel, Verdict};
use crate::phone::PhoneNumber;

pub struct PlivoVerifyProvider {
    client: reqwest::Client,
    /// `{base_url}/v1/Account/{auth_id}/Verify/Session`.
    sessions_url: String,
    auth_id: String,
    auth_token: Secret,
    app_uuid: String,
}

impl PlivoVerifyProvider {
    pub fn new(s: &PlivoVerifySettings) -> anyhow::Result<Self> {
        Ok(Self {
            client: http::client(s.timeout_secs)?,
            sessions_url: http::join(
                &s.base_url,
                &format!("v1/Account/{}/Verify/Session", s.auth_id),
            ),
            auth_id: s.auth_id.clone(),
            auth_token: s.auth_token.clone(),
            app_uuid: s.app_uuid.clone(),
        })
    }

    fn request(&self, method: reqwest::Method, url: String) -> reqwest::RequestBuilder {
        self.client
            .request(method, url)
            .basic_auth(&self.auth_id, Some(self.auth_token.expose()))
    }

    fn session_url(&self, uuid: &str) -> Result<String, DeliveryError> {
        if uuid.is_empty() || uuid.contains('/') {
            return Err(DeliveryError::Rejected("a malformed session uuid".into()));
        }
        Ok(format!("{}/{uuid}/", self.sessions_url))
    }

    /// What the session says of itself, after a validation Plivo refused.
    async fn session_verdict(&self, uuid: &str) -> Result<Verdict, DeliveryError> {
        let answer =
            http::execute(self.request(reqwest::Method::GET, self.session_url(uuid)?)).await?;
        if answer.status == 404 {
            return Ok(Verdict::Expired);
        }
        if !answer.is_success() {
            return Err(refusal(&answer, false));
        }
        let status = answer.json()["status"]
            .as_str()
            .unwrap_or("")
            .to_ascii_lowercase();
        Ok(match status.as_str() {
            "in-progress" => Verdict::Wrong,
            // Verified by an earlier check, or no longer valid: this code cannot be used.
            "expired" | "verified" => Verdict::Expired,
            other => {
                return Err(DeliveryError::Rejected(format!(
                    "unexpected session status {other:?}"
                )));
            }
        })
    }
}

/// A refusal: its `error` text, and whether it is about the recipient.
fn refusal(answer: &Answer, about_number: bool) -> DeliveryError {
    let message = super::super::plivo::error_text(answer);
    let lowered = message.to_ascii_lowercase();
    let number = about_number
        && answer.status == 400
        && (lowered.contains("recipient") || lowered.contains("number"));
    http::classify(answer.status, "", &message, number)
}

#[async_trait]
impl Provider for PlivoVerifyProvider {
    fn name(&self) -> ProviderName {
        ProviderName::PlivoVerify
    }

    fn owner(&self) -> Option<&dyn CodeOwner> {
        Some(self)
    }
}

#[async_trait]
impl CodeOwner for PlivoVerifyProvider {
    async fn start_verification(&self, start: &OwnedStart<'_>) -> Result<String, DeliveryError> {
        let mut body = json!({
            "recipient": start.to.e164(),
            "channel": match start.channel {
                Channel::Sms => "sms",
                Channel::Call => "voice",
            },
            "locale": start.locale.tag(),
            "brand_name": start.app_name,
            "code_length": start.code_length,
        });
        if !self.app_uuid.is_empty() {
            body["app_uuid"] = json!(self.app_uuid);
        }
        let request = self
            .request(reqwest::Method::POST, format!("{}/", self.sessions_url))
            .json(&body);
        let answer = http::execute(request).await?;
        if answer.is_success() {
            return super::reference(answer.json()["session_uuid"].as_str(), "Plivo Verify");
        }
        Err(refusal(&answer, true))
    }

    async fn check_code(
        &self,
        reference: &str,
        _to: &PhoneNumber,
        code: &Code,
    ) -> Result<Verdict, DeliveryError> {
        let request = self
            .request(reqwest::Method::POST, self.session_url(reference)?)
            .json(&json!({ "otp": code.expose() }));
        let answer = http::execute(request).await?;
        let validated = answer.is_success()
            && answer.json()["message"]
                .as_str()
                .is_some_and(|m| m.to_ascii_lowercase().contains("validated successfully"));
        if validated {
            return Ok(Verdict::Approved);
        }
        match answer.status {
            404 => Ok(Verdict::Expired),
            429 | 500..=599 | 401 | 403 => Err(refusal(&answer, false)),
            // A refused (or unexplained) validation: the session says why.
            _ => self.session_verdict(reference).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::i18n::Locale;
    use wiremock::matchers::{basic_auth, body_json, body_partial_json, method, path, path_regex};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    const UUID: &str = "8e712097-8090-4644-81e7-8f4265d8354e";

    fn provider(base: &str, app_uuid: &str) -> PlivoVerifyProvider {
        PlivoVerifyProvider::new(&PlivoVerifySettings {
            auth_id: "MAXXXX".into(),
            auth_token: Secret::new("token"),
            app_uuid: app_uuid.into(),
            base_url: base.into(),
            timeout_secs: 2,
        })
        .unwrap()
    }

    fn to() -> PhoneNumber {
        PhoneNumber::from_e164("+918681951370").unwrap()
    }

    fn start(to: &PhoneNumber, channel: Channel) -> OwnedStart<'_> {
        super::super::sample_start(to, channel, Locale::Fr, 600)
    }

    #[tokio::test]
    async fn a_start_creates_a_session_with_our_locale_and_brand() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/v1/Account/MAXXXX/Verify/Session/"))
            .and(basic_auth("MAXXXX", "token"))
            .and(body_json(json!({
                "recipient": "+918681951370", "channel": "voice", "locale": "fr",
                "brand_name": "Acme", "code_length": 6,
                "app_uuid": "2ef7b5c0-app"
            })))
            .respond_with(ResponseTemplate::new(202).set_body_json(json!({
                "api_id": "3335cb16-api", "message": "Session initiated", "session_uuid": UUID
            })))
            .expect(1)
            .mount(&server)
            .await;
        let to = to();
        let uuid = provider(&server.uri(), "2ef7b5c0-app")
            .start_verification(&start(&to, Channel::Call))
            .await
            .unwrap();
        assert_eq!(uuid, UUID);
    }

    #[tokio::test]
    async fn without_an_app_uuid_the_account_default_is_used() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(body_json(json!({
                "recipient": "+918681951370", "channel": "sms", "locale": "fr",
                "brand_name": "Acme", "code_length": 6
            })))
            .respond_with(ResponseTemplate::new(202).set_body_json(json!({"session_uuid": UUID})))
            .expect(1)
            .mount(&server)
            .await;
        let to = to();
        provider(&server.uri(), "")
            .start_verification(&start(&to, Channel::Sms))
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn refused_starts_are_classified() {
        let cases = [
            (400, "invalid recipient number", "InvalidNumber"),
            (400, "invalid channel", "Rejected"),
            (401, "authentication failed", "Unauthorized"),
            (429, "too many requests", "Unavailable"),
            (500, "internal error", "Unavailable"),
        ];
        let to = to();
        for (status, error, kind) in cases {
            let server = MockServer::start().await;
            Mock::given(method("POST"))
                .respond_with(
                    ResponseTemplate::new(status)
                        .set_body_json(json!({"api_id": "a", "error": error})),
                )
                .mount(&server)
                .await;
            let got = provider(&server.uri(), "")
                .start_verification(&start(&to, Channel::Sms))
                .await
                .unwrap_err();
            assert!(format!("{got:?}").starts_with(kind), "{error}: {got:?}");
        }
    }

    #[tokio::test]
    async fn a_validated_session_is_approved() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path(format!("/v1/Account/MAXXXX/Verify/Session/{UUID}/")))
            .and(basic_auth("MAXXXX", "token"))
            .and(body_partial_json(json!({"otp": "123456"})))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({
                "api_id": "a", "message": "session validated successfully.", "session_uuid": UUID
            })))
            .expect(1)
            .mount(&server)
            .await;
        let verdict = provider(&server.uri(), "")
            .check_code(UUID, &to(), &crate::channels::TEST_CODE)
            .await
            .unwrap();
        assert_eq!(verdict, Verdict::Approved);
    }

    /// A refused validation, then the session's own status.
    async fn refused_then(status: serde_json::Value) -> Result<Verdict, DeliveryError> {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path_regex(
                r"^/v1/Account/MAXXXX/Verify/Session/[0-9a-f-]+/$",
            ))
            .respond_with(
                ResponseTemplate::new(400)
                    .set_body_json(json!({"api_id": "a", "error": "Invalid OTP"})),
            )
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path(format!("/v1/Account/MAXXXX/Verify/Session/{UUID}/")))
            .and(basic_auth("MAXXXX", "token"))
            .respond_with(ResponseTemplate::new(200).set_body_json(status))
            .expect(1)
            .mount(&server)
            .await;
        provider(&server.uri(), "")
            .check_code(UUID, &to(), &crate::channels::TEST_CODE)
            .await
    }

    #[tokio::test]
    async fn a_refused_validation_is_read_from_the_session() {
        let session = |status: &str| json!({"api_id": "a", "session_uuid": UUID, "status": status, "count": 1, "attempt_details": []});
        assert_eq!(
            refused_then(session("in-progress")).await,
            Ok(Verdict::Wrong)
        );
        assert_eq!(refused_then(session("Expired")).await, Ok(Verdict::Expired));
        assert_eq!(
            refused_then(session("verified")).await,
            Ok(Verdict::Expired)
        );
        assert!(refused_then(session("mystery")).await.is_err());
    }

    #[tokio::test]
    async fn unknown_sessions_expire_and_outages_are_errors() {
        for (status, expected) in [
            (404, Ok(Verdict::Expired)),
            (503, Err("Unavailable")),
            (429, Err("Unavailable")),
        ] {
            let server = MockServer::start().await;
            Mock::given(method("POST"))
                .respond_with(ResponseTemplate::new(status).set_body_json(json!({"error": "x"})))
                .mount(&server)
                .await;
            let got = provider(&server.uri(), "")
                .check_code(UUID, &to(), &crate::channels::TEST_CODE)
                .await;
            super::super::assert_answer(got, expected, &format!("{status}"))
        }
    }
}
