//! Plivo: JSON bodies (`src`, `dst`, `text`), Basic auth, paths with a trailing slash,
//! `{api_id, error}` errors. Calls fetch Plivo XML from our `/voice/{call_id}`; Plivo
//! signs what it sends us with V3 (voice) or V2 (messaging) signatures.

use async_trait::async_trait;
use serde_json::json;

use super::http::{self, Answer};
use super::signatures;
use super::{
    Call, CallScript, DeliveryError, Inbound, Provider, Receipt, SignatureCheck, Sms, StatusUpdate,
};
use crate::config::{PlivoSettings, ProviderName, Secret};

pub struct PlivoProvider {
    client: reqwest::Client,
    /// `{base_url}/v1/Account/{auth_id}`.
    account_url: String,
    auth_id: String,
    auth_token: Secret,
    from: String,
}

impl PlivoProvider {
    pub fn new(s: &PlivoSettings) -> anyhow::Result<Self> {
        Ok(Self {
            client: http::client(s.timeout_secs)?,
            account_url: http::join(&s.base_url, &format!("v1/Account/{}", s.auth_id)),
            auth_id: s.auth_id.clone(),
            auth_token: s.auth_token.clone(),
            from: s.from.clone(),
        })
    }

    async fn create(
        &self,
        resource: &str,
        body: serde_json::Value,
    ) -> Result<Answer, DeliveryError> {
        let request = self
            .client
            .post(format!("{}/{resource}/", self.account_url))
            .basic_auth(&self.auth_id, Some(self.auth_token.expose()))
            .json(&body);
        let answer = http::execute(request).await?;
        if answer.is_success() {
            return Ok(answer);
        }
        let message = error_text(&answer);
        // Plivo names the field it refused; a refused destination is the number itself.
        let lowered = message.to_ascii_lowercase();
        let rejected = answer.status == 400
            && (lowered.contains("dst")
                || lowered.contains("destination")
                || lowered.contains("\"to\""));
        Err(http::classify(answer.status, "", &message, rejected))
    }
}

/// The words of a Plivo refusal: its `error`, else the start of the body.
pub(super) fn error_text(answer: &Answer) -> String {
    match &answer.json()["error"] {
        serde_json::Value::String(text) => text.clone(),
        serde_json::Value::Null => answer.body.chars().take(200).collect(),
        other => other.to_string(),
    }
}

#[async_trait]
impl Provider for PlivoProvider {
    fn name(&self) -> ProviderName {
        ProviderName::Plivo
    }

    async fn send_sms(&self, sms: &Sms<'_>) -> Result<Receipt, DeliveryError> {
        let mut body =
            json!({"src": self.from, "dst": sms.to.e164(), "text": sms.body, "type": "sms"});
        if let Some(callback) = sms.status_callback {
            body["url"] = json!(callback);
            body["method"] = json!("POST");
        }
        let answer = self.create("Message", body).await?;
        let uuid = answer.json()["message_uuid"][0].as_str().map(String::from);
        Ok(Receipt { provider_ref: uuid })
    }

    async fn place_call(&self, call: &Call<'_>) -> Result<Receipt, DeliveryError> {
        let Some(answer_url) = call.answer_url else {
            return Err(DeliveryError::Rejected(
                "Plivo calls need server.public_url reachable by Plivo".into(),
            ));
        };
        let mut body = json!({
            "from": self.from,
            "to": call.to.e164(),
            "answer_url": answer_url,
            "answer_method": "POST",
        });
        if let Some(callback) = call.status_callback {
            body["hangup_url"] = json!(callback);
            body["hangup_method"] = json!("POST");
        }
        let answer = self.create("Call", body).await?;
        let uuid = answer.json()["request_uuid"].as_str().map(String::from);
        Ok(Receipt { provider_ref: uuid })
    }

    fn fetches_call_instructions(&self) -> bool {
        true
    }

    fn call_document(&self, script: &CallScript) -> String {
        super::voice::speak_document(script)
    }

    fn check_signature(&self, request: &Inbound<'_>) -> SignatureCheck {
        let token = self.auth_token.expose();
        if token.is_empty() {
            return SignatureCheck::NotConfigured;
        }
        let v3 = request
            .header("x-plivo-signature-v3")
            .or_else(|| request.header("x-plivo-signature-ma-v3"));
        if let (Some(header), Some(nonce)) = (v3, request.header("x-plivo-signature-v3-nonce")) {
            let params = if request.method.eq_ignore_ascii_case("GET") {
                Vec::new()
            } else {
                request.form()
            };
            let expected =
                signatures::plivo_v3_signature(token, request.url, nonce, request.method, &params);
            if signatures::any_matches(header, &expected) {
                return SignatureCheck::Valid;
            }
        }
        // Plivo's message callbacks are signed with V2.
        let v2 = request
            .header("x-plivo-signature-v2")
            .or_else(|| request.header("x-plivo-signature-ma-v2"));
        if let (Some(header), Some(nonce)) = (v2, request.header("x-plivo-signature-v2-nonce")) {
            let expected = signatures::plivo_v2_signature(token, request.url, nonce);
            if signatures::any_matches(header, &expected) {
                return SignatureCheck::Valid;
            }
        }
        SignatureCheck::Invalid
    }

    fn status_update(&self, request: &Inbound<'_>) -> Option<StatusUpdate> {
        let status = request
            .field("Status")
            .or_else(|| request.field("CallStatus"))?;
        Some(StatusUpdate {
            provider_ref: request
                .field("MessageUUID")
                .or_else(|| request.field("RequestUUID"))
                .or_else(|| request.field("CallUUID")),
            status: super::normalize_status(&status)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::channels::answering;
    use crate::phone::PhoneNumber;
    use wiremock::matchers::{basic_auth, body_json, header, method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    fn plivo(base: &str, timeout_secs: u64) -> PlivoProvider {
        PlivoProvider::new(&PlivoSettings {
            auth_id: "MAXXXX".into(),
            auth_token: Secret::new("token"),
            from: "+14155550100".into(),
            base_url: base.into(),
            timeout_secs,
        })
        .unwrap()
    }

    fn to() -> PhoneNumber {
        PhoneNumber::from_e164("+12015550123").unwrap()
    }

    #[tokio::test]
    async fn sms_is_the_documented_json_post_and_the_uuid_is_read_from_the_array() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/v1/Account/MAXXXX/Message/"))
            .and(basic_auth("MAXXXX", "token"))
            .and(header("content-type", "application/json"))
            .and(body_json(json!({
                "src": "+14155550100", "dst": "+12015550123", "text": "Your code is 123456", "type": "sms",
                "url": "https://v.example/webhooks/plivo?v=id", "method": "POST"
            })))
            .respond_with(ResponseTemplate::new(202).set_body_json(json!({
                "api_id": "948b53a2", "message": "message(s) queued", "message_uuid": ["5b40a428-bfc7-4daf-9d06-726c558bf3b8"]
            })))
            .expect(1)
            .mount(&server)
            .await;
        let sms = Sms {
            to: &to(),
            body: "Your code is 123456",
            code: &crate::channels::TEST_CODE,
            status_callback: Some("https://v.example/webhooks/plivo?v=id"),
        };
        let receipt = plivo(&server.uri(), 5).send_sms(&sms).await.unwrap();
        assert_eq!(
            receipt.provider_ref.as_deref(),
            Some("5b40a428-bfc7-4daf-9d06-726c558bf3b8")
        );
    }

    #[tokio::test]
    async fn calls_point_plivo_at_our_answer_url() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/v1/Account/MAXXXX/Call/"))
            .and(basic_auth("MAXXXX", "token"))
            .and(body_json(json!({
                "from": "+14155550100", "to": "+12015550123",
                "answer_url": "https://v.example/voice/abc?provider=plivo", "answer_method": "POST"
            })))
            .respond_with(ResponseTemplate::new(201).set_body_json(
                json!({"message": "call fired", "request_uuid": "9834029e", "api_id": "97ceeb52"}),
            ))
            .expect(1)
            .mount(&server)
            .await;
        let script = CallScript::test("Your code is {code}.", "1");
        let call = Call {
            to: &to(),
            script: &script,
            code: &crate::channels::TEST_CODE,
            answer_url: Some("https://v.example/voice/abc?provider=plivo"),
            status_callback: None,
        };
        let receipt = plivo(&server.uri(), 5).place_call(&call).await.unwrap();
        assert_eq!(receipt.provider_ref.as_deref(), Some("9834029e"));
    }

    #[tokio::test]
    async fn errors_are_classified() {
        let sms = Sms {
            to: &to(),
            body: "x",
            code: &crate::channels::TEST_CODE,
            status_callback: None,
        };
        let cases = [
            (
                400,
                json!({"api_id": "a", "error": "invalid dst number"}),
                "InvalidNumber",
            ),
            (
                400,
                json!({"api_id": "a", "error": "invalid src number"}),
                "Rejected",
            ),
            (
                401,
                json!({"api_id": "a", "error": "authentication failed"}),
                "Unauthorized",
            ),
            (
                429,
                json!({"api_id": "a", "error": "too many requests"}),
                "Unavailable",
            ),
            (
                500,
                json!({"api_id": "a", "error": "internal"}),
                "Unavailable",
            ),
        ];
        for (status, body, kind) in cases {
            let server = answering(status, body).await;
            let error = plivo(&server.uri(), 5).send_sms(&sms).await.unwrap_err();
            assert!(
                format!("{error:?}").starts_with(kind),
                "{status}: {error:?}"
            );
        }
    }

    #[tokio::test]
    async fn a_slow_plivo_times_out() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(202).set_delay(std::time::Duration::from_secs(3)))
            .mount(&server)
            .await;
        let sms = Sms {
            to: &to(),
            body: "x",
            code: &crate::channels::TEST_CODE,
            status_callback: None,
        };
        let error = plivo(&server.uri(), 1).send_sms(&sms).await.unwrap_err();
        assert_eq!(error, DeliveryError::Unavailable("timed out".into()));
    }

    #[test]
    fn v3_and_v2_signed_requests_are_accepted_and_others_refused() {
        let provider = plivo("http://x", 5);
        let url = "https://v.example/webhooks/plivo?v=id";
        let body = b"MessageUUID=m1&Status=delivered";
        let form = vec![
            ("MessageUUID".to_string(), "m1".to_string()),
            ("Status".to_string(), "delivered".to_string()),
        ];
        let v3 = signatures::plivo_v3_signature("token", url, "n1", "POST", &form);
        let request = |headers: Vec<(&str, String)>| Inbound {
            method: "POST",
            url,
            headers: std::iter::once((
                "content-type".to_string(),
                "application/x-www-form-urlencoded".to_string(),
            ))
            .chain(headers.into_iter().map(|(k, v)| (k.to_string(), v)))
            .collect(),
            body,
            now: std::time::SystemTime::now(),
        };
        let signed = request(vec![
            ("x-plivo-signature-v3", v3.clone()),
            ("x-plivo-signature-v3-nonce", "n1".into()),
        ]);
        assert_eq!(provider.check_signature(&signed), SignatureCheck::Valid);
        let v2 = signatures::plivo_v2_signature("token", url, "n2");
        let signed_v2 = request(vec![
            ("x-plivo-signature-v2", v2),
            ("x-plivo-signature-v2-nonce", "n2".into()),
        ]);
        assert_eq!(provider.check_signature(&signed_v2), SignatureCheck::Valid);
        let wrong_nonce = request(vec![
            ("x-plivo-signature-v3", v3),
            ("x-plivo-signature-v3-nonce", "n9".into()),
        ]);
        assert_eq!(
            provider.check_signature(&wrong_nonce),
            SignatureCheck::Invalid
        );
        assert_eq!(
            provider.check_signature(&request(vec![])),
            SignatureCheck::Invalid
        );
        let update = provider.status_update(&signed).unwrap();
        assert_eq!(
            update,
            StatusUpdate {
                provider_ref: Some("m1".into()),
                status: "delivered"
            }
        );
    }
}
