//! Telnyx Verify v2: JSON, Bearer auth, `{"errors": [{code, title, detail}]}` errors.
//! Start: `POST /v2/verifications/sms|call` (`phone_number`, `verify_profile_id`,
//! `timeout_secs`) → `data.id`; the Verify profile holds the code length, template and
//! language. Check: `POST /v2/verifications/{id}/actions/verify` (`code`) →
//! `data.response_code` `accepted` or `rejected`.

use async_trait::async_trait;
use serde_json::json;

use super::super::http::{self, Answer};
use super::super::telnyx::{NUMBER_CODES, error_parts};
use super::super::{CodeOwner, DeliveryError, OwnedStart, Provider};
use crate::code::Code;
use crate::config::{ProviderName, Secret, TelnyxVerifySettings};
use crate::domain::{Channel, Verdict};
use crate::phone::PhoneNumber;

pub struct TelnyxVerifyProvider {
    client: reqwest::Client,
    base_url: String,
    api_key: Secret,
    verify_profile_id: String,
}

impl TelnyxVerifyProvider {
    pub fn new(s: &TelnyxVerifySettings) -> anyhow::Result<Self> {
        Ok(Self {
            client: http::client(s.timeout_secs)?,
            base_url: s.base_url.clone(),
            api_key: s.api_key.clone(),
            verify_profile_id: s.verify_profile_id.clone(),
        })
    }

    async fn post(&self, path: &str, body: serde_json::Value) -> Result<Answer, DeliveryError> {
        let request = self
            .client
            .post(http::join(&self.base_url, path))
            .bearer_auth(self.api_key.expose())
            .json(&body);
        http::execute(request).await
    }
}

#[async_trait]
impl Provider for TelnyxVerifyProvider {
    fn name(&self) -> ProviderName {
        ProviderName::TelnyxVerify
    }

    fn owner(&self) -> Option<&dyn CodeOwner> {
        Some(self)
    }
}

#[async_trait]
impl CodeOwner for TelnyxVerifyProvider {
    async fn start_verification(&self, start: &OwnedStart<'_>) -> Result<String, DeliveryError> {
        let path = match start.channel {
            Channel::Sms => "v2/verifications/sms",
            Channel::Call => "v2/verifications/call",
        };
        // Our expiry, so Telnyx and we agree on when the code stops working.
        let body = json!({
            "phone_number": start.to.e164(),
            "verify_profile_id": self.verify_profile_id,
            "timeout_secs": start.ttl_secs,
        });
        let answer = self.post(path, body).await?;
        if answer.is_success() {
            return super::reference(answer.json()["data"]["id"].as_str(), "Telnyx Verify");
        }
        let (code, message) = error_parts(&answer);
        Err(http::classify(
            answer.status,
            &code,
            &message,
            NUMBER_CODES.contains(&code.as_str()),
        ))
    }

    async fn check_code(
        &self,
        reference: &str,
        _to: &PhoneNumber,
        code: &Code,
    ) -> Result<Verdict, DeliveryError> {
        if reference.contains('/') {
            return Err(DeliveryError::Rejected(
                "a malformed verification id".into(),
            ));
        }
        let path = format!("v2/verifications/{reference}/actions/verify");
        let answer = self.post(&path, json!({ "code": code.expose() })).await?;
        if answer.is_success() {
            return match answer.json()["data"]["response_code"].as_str() {
                Some("accepted") => Ok(Verdict::Approved),
                Some("rejected") => Ok(Verdict::Wrong),
                other => Err(DeliveryError::Rejected(format!(
                    "unexpected response_code {other:?}"
                ))),
            };
        }
        let (error, message) = error_parts(&answer);
        match answer.status {
            // Telnyx no longer has the verification: it expired (we asked for our ttl).
            404 => Ok(Verdict::Expired),
            _ => Err(super::unexplained(&answer, &error, &message)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::channels::answering;
    use crate::i18n::Locale;
    use wiremock::matchers::{body_json, header, method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    fn provider(base: &str) -> TelnyxVerifyProvider {
        TelnyxVerifyProvider::new(&TelnyxVerifySettings {
            api_key: Secret::new("KEY123"),
            verify_profile_id: "12ade33a-21c0-473b-b055-b3c836e1c292".into(),
            base_url: base.into(),
            timeout_secs: 2,
        })
        .unwrap()
    }

    fn to() -> PhoneNumber {
        PhoneNumber::from_e164("+13035551234").unwrap()
    }

    fn start(to: &PhoneNumber, channel: Channel) -> OwnedStart<'_> {
        super::super::sample_start(to, channel, Locale::De, 300)
    }

    #[tokio::test]
    async fn starts_post_the_number_the_profile_and_our_expiry_and_no_code() {
        for (channel, route) in [(Channel::Sms, "sms"), (Channel::Call, "call")] {
            let server = MockServer::start().await;
            Mock::given(method("POST"))
                .and(path(format!("/v2/verifications/{route}")))
                .and(header("authorization", "Bearer KEY123"))
                .and(body_json(json!({
                    "phone_number": "+13035551234",
                    "verify_profile_id": "12ade33a-21c0-473b-b055-b3c836e1c292",
                    "timeout_secs": 300,
                })))
                .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": {
                    "id": "12ade33a-0001", "type": route, "record_type": "verification",
                    "phone_number": "+13035551234", "status": "pending", "timeout_secs": 300
                }})))
                .expect(1)
                .mount(&server)
                .await;
            let to = to();
            let id = provider(&server.uri())
                .start_verification(&start(&to, channel))
                .await
                .unwrap();
            assert_eq!(id, "12ade33a-0001");
        }
    }

    #[tokio::test]
    async fn refused_starts_are_classified_by_code() {
        let cases = [
            (400, "10016", "InvalidNumber"),
            (422, "10002", "InvalidNumber"),
            (400, "10015", "Rejected"),
            (401, "10009", "Unauthorized"),
            (429, "10011", "Unavailable"),
            (500, "10007", "Unavailable"),
        ];
        let to = to();
        for (status, code, kind) in cases {
            let server = answering(
                status,
                json!({"errors": [{"code": code, "title": "refused"}]}),
            )
            .await;
            let error = provider(&server.uri())
                .start_verification(&start(&to, Channel::Sms))
                .await
                .unwrap_err();
            assert!(format!("{error:?}").starts_with(kind), "{code}: {error:?}");
        }
    }

    #[tokio::test]
    async fn a_check_verifies_by_id_with_the_code() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/v2/verifications/12ade33a-0001/actions/verify"))
            .and(header("authorization", "Bearer KEY123"))
            .and(body_json(json!({"code": "123456"})))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": {
                "phone_number": "+13035551234", "response_code": "accepted"
            }})))
            .expect(1)
            .mount(&server)
            .await;
        let verdict = provider(&server.uri())
            .check_code("12ade33a-0001", &to(), &crate::channels::TEST_CODE)
            .await
            .unwrap();
        assert_eq!(verdict, Verdict::Approved);
    }

    #[tokio::test]
    async fn each_answer_to_a_check_has_its_verdict() {
        let cases = [
            (
                200,
                json!({"data": {"phone_number": "+13035551234", "response_code": "rejected"}}),
                Ok(Verdict::Wrong),
            ),
            (
                404,
                json!({"errors": [{"code": "10005", "title": "Resource not found"}]}),
                Ok(Verdict::Expired),
            ),
            (
                429,
                json!({"errors": [{"code": "10011", "title": "Too many requests"}]}),
                Err("Unavailable"),
            ),
            (
                400,
                json!({"errors": [{"code": "10015", "title": "Bad request"}]}),
                Err("Rejected"),
            ),
            (503, json!({}), Err("Unavailable")),
        ];
        for (status, body, expected) in cases {
            let server = answering(status, body.clone()).await;
            let got = provider(&server.uri())
                .check_code("12ade33a-0001", &to(), &crate::channels::TEST_CODE)
                .await;
            super::super::assert_answer(got, expected, &format!("{status}"))
        }
    }
}
