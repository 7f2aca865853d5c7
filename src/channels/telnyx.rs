//! Telnyx: JSON bodies, Bearer auth. SMS through `/v2/messages`; calls through the TeXML
//! Calls API with the instructions inline (`Texml`). Telnyx signs callbacks with Ed25519
//! over `timestamp|body`, and sends the public key to check it with in its portal.

use async_trait::async_trait;
use serde_json::json;

use super::http::{self, Answer};
use super::signatures;
use super::{Call, DeliveryError, Inbound, Provider, Receipt, SignatureCheck, Sms, StatusUpdate};
use crate::config::{ProviderName, Secret, TelnyxSettings};

/// Telnyx error codes meaning the destination itself is wrong.
pub(super) const NUMBER_CODES: [&str; 4] = ["40310", "10016", "10002", "40012"];

pub struct TelnyxProvider {
    client: reqwest::Client,
    base_url: String,
    api_key: Secret,
    from: String,
    messaging_profile_id: String,
    texml_application_id: String,
    account_sid: String,
    public_key: String,
}

impl TelnyxProvider {
    pub fn new(s: &TelnyxSettings) -> anyhow::Result<Self> {
        Ok(Self {
            client: http::client(s.timeout_secs)?,
            base_url: s.base_url.clone(),
            api_key: s.api_key.clone(),
            from: s.from.clone(),
            messaging_profile_id: s.messaging_profile_id.clone(),
            texml_application_id: s.texml_application_id.clone(),
            account_sid: s.account_sid.clone(),
            public_key: s.public_key.clone(),
        })
    }

    async fn post(&self, path: &str, body: serde_json::Value) -> Result<Answer, DeliveryError> {
        let request = self
            .client
            .post(http::join(&self.base_url, path))
            .bearer_auth(self.api_key.expose())
            .json(&body);
        let answer = http::execute(request).await?;
        if answer.is_success() {
            return Ok(answer);
        }
        let (code, message) = error_parts(&answer);
        Err(http::classify(
            answer.status,
            &code,
            &message,
            NUMBER_CODES.contains(&code.as_str()),
        ))
    }
}

/// A Telnyx refusal's first error: its code and words (`title: detail`).
pub(super) fn error_parts(answer: &Answer) -> (String, String) {
    let json = answer.json();
    let first = &json["errors"][0];
    let code = first["code"]
        .as_str()
        .map(String::from)
        .or_else(|| first["code"].as_i64().map(|c| c.to_string()))
        .unwrap_or_default();
    let message = [first["title"].as_str(), first["detail"].as_str()]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(": ");
    (code, message)
}

#[async_trait]
impl Provider for TelnyxProvider {
    fn name(&self) -> ProviderName {
        ProviderName::Telnyx
    }

    async fn send_sms(&self, sms: &Sms<'_>) -> Result<Receipt, DeliveryError> {
        let mut body = json!({"from": self.from, "to": sms.to.e164(), "text": sms.body});
        if !self.messaging_profile_id.is_empty() {
            body["messaging_profile_id"] = json!(self.messaging_profile_id);
        }
        if let Some(callback) = sms.status_callback {
            body["webhook_url"] = json!(callback);
        }
        let answer = self.post("v2/messages", body).await?;
        Ok(Receipt {
            provider_ref: answer.json()["data"]["id"].as_str().map(String::from),
        })
    }

    async fn place_call(&self, call: &Call<'_>) -> Result<Receipt, DeliveryError> {
        let mut body = json!({
            "ApplicationSid": self.texml_application_id,
            "To": call.to.e164(),
            "From": self.from,
            "Texml": self.call_document(call.script),
        });
        if let Some(callback) = call.status_callback {
            body["StatusCallback"] = json!(callback);
        }
        let path = format!("v2/texml/Accounts/{}/Calls", self.account_sid);
        let answer = self.post(&path, body).await?;
        let json = answer.json();
        // The documented answer has no id; newer ones carry `call_sid`.
        let sid = json["call_sid"]
            .as_str()
            .or_else(|| json["data"]["call_sid"].as_str());
        Ok(Receipt {
            provider_ref: sid.map(String::from),
        })
    }

    fn check_signature(&self, request: &Inbound<'_>) -> SignatureCheck {
        if self.public_key.is_empty() {
            return SignatureCheck::NotConfigured;
        }
        let (Some(signature), Some(timestamp)) = (
            request.header("telnyx-signature-ed25519"),
            request.header("telnyx-timestamp"),
        ) else {
            return SignatureCheck::Invalid;
        };
        let now = request
            .now
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        if signatures::telnyx_valid(&self.public_key, timestamp, request.body, signature, now) {
            SignatureCheck::Valid
        } else {
            SignatureCheck::Invalid
        }
    }

    fn status_update(&self, request: &Inbound<'_>) -> Option<StatusUpdate> {
        if request.is_form() {
            // TeXML call callbacks are forms.
            let status = request.field("CallStatus")?;
            return Some(StatusUpdate {
                provider_ref: request.field("CallSid"),
                status: super::normalize_status(&status)?,
            });
        }
        let json: serde_json::Value = serde_json::from_slice(request.body).ok()?;
        let payload = &json["data"]["payload"];
        let status = payload["to"][0]["status"]
            .as_str()
            .or_else(|| payload["status"].as_str())?;
        Some(StatusUpdate {
            provider_ref: payload["id"].as_str().map(String::from),
            status: super::normalize_status(status)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::channels::CallScript;
    use crate::phone::PhoneNumber;
    use wiremock::matchers::{body_json, header, method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    fn telnyx(base: &str, timeout_secs: u64) -> TelnyxProvider {
        TelnyxProvider::new(&TelnyxSettings {
            api_key: Secret::new("KEY123"),
            from: "+18445550001".into(),
            messaging_profile_id: "mp-1".into(),
            texml_application_id: "1293384261075731499".into(),
            account_sid: "acct-uuid".into(),
            public_key: "11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=".into(),
            base_url: base.into(),
            timeout_secs,
        })
        .unwrap()
    }

    fn to() -> PhoneNumber {
        PhoneNumber::from_e164("+12015550123").unwrap()
    }

    #[tokio::test]
    async fn sms_is_the_documented_json_post_and_the_id_is_data_id() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/v2/messages"))
            .and(header("authorization", "Bearer KEY123"))
            .and(header("content-type", "application/json"))
            .and(body_json(json!({
                "from": "+18445550001", "to": "+12015550123", "text": "Your code is 123456",
                "messaging_profile_id": "mp-1", "webhook_url": "https://v.example/webhooks/telnyx?v=id"
            })))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": {"id": "40385f64-5717", "record_type": "message", "to": [{"status": "queued"}]}})))
            .expect(1)
            .mount(&server)
            .await;
        let sms = Sms {
            to: &to(),
            body: "Your code is 123456",
            code: &crate::channels::TEST_CODE,
            status_callback: Some("https://v.example/webhooks/telnyx?v=id"),
        };
        let receipt = telnyx(&server.uri(), 5).send_sms(&sms).await.unwrap();
        assert_eq!(receipt.provider_ref.as_deref(), Some("40385f64-5717"));
    }

    #[tokio::test]
    async fn calls_use_texml_with_inline_instructions() {
        let server = MockServer::start().await;
        let script = CallScript::test("Your Acme code is {code}.", "4815");
        Mock::given(method("POST"))
            .and(path("/v2/texml/Accounts/acct-uuid/Calls"))
            .and(header("authorization", "Bearer KEY123"))
            .and(body_json(json!({
                "ApplicationSid": "1293384261075731499", "To": "+12015550123", "From": "+18445550001",
                "Texml": crate::channels::voice::say_document(&script),
            })))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({"from": "+18445550001", "to": "+12015550123", "status": "queued"})))
            .expect(1)
            .mount(&server)
            .await;
        let call = Call {
            to: &to(),
            script: &script,
            code: &crate::channels::TEST_CODE,
            answer_url: None,
            status_callback: None,
        };
        let receipt = telnyx(&server.uri(), 5).place_call(&call).await.unwrap();
        assert_eq!(receipt.provider_ref, None);
    }

    #[tokio::test]
    async fn errors_are_classified_by_code_and_status() {
        let sms = Sms {
            to: &to(),
            body: "x",
            code: &crate::channels::TEST_CODE,
            status_callback: None,
        };
        let cases = [
            (400, "40310", "InvalidNumber"),
            (422, "10016", "InvalidNumber"),
            (400, "40013", "Rejected"),
            (401, "10009", "Unauthorized"),
            (429, "10011", "Unavailable"),
            (503, "", "Unavailable"),
        ];
        for (status, code, kind) in cases {
            let server = MockServer::start().await;
            let body = json!({"errors": [{"code": code, "title": "Invalid 'to' address", "detail": "+12015550123 is not valid"}]});
            Mock::given(method("POST"))
                .respond_with(ResponseTemplate::new(status).set_body_json(body))
                .mount(&server)
                .await;
            let error = telnyx(&server.uri(), 5).send_sms(&sms).await.unwrap_err();
            assert!(
                format!("{error:?}").starts_with(kind),
                "{status} {code}: {error:?}"
            );
            assert!(!error.to_string().contains("2015550123"), "{error}");
        }
    }

    #[tokio::test]
    async fn a_slow_telnyx_times_out() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(200).set_delay(std::time::Duration::from_secs(3)))
            .mount(&server)
            .await;
        let sms = Sms {
            to: &to(),
            body: "x",
            code: &crate::channels::TEST_CODE,
            status_callback: None,
        };
        assert_eq!(
            telnyx(&server.uri(), 1).send_sms(&sms).await.unwrap_err(),
            DeliveryError::Unavailable("timed out".into())
        );
    }

    #[test]
    fn the_signed_vector_is_accepted_at_its_time_and_its_status_read() {
        let body = br#"{"data":{"event_type":"message.finalized","id":"0ccc7b54-4df3-4bca-a65a-3da1ecc777f0","occurred_at":"2023-11-14T22:13:20.000Z","payload":{"id":"40385f64-5717-4562-b3fc-2c963f66afa6","to":[{"phone_number":"+18665550001","status":"delivered"}]},"record_type":"event"},"meta":{"attempt":1,"delivered_to":"https://example.com/hooks"}}"#;
        let request = |now_unix: u64| {
            Inbound {
            method: "POST",
            url: "https://v.example/webhooks/telnyx?v=id",
            headers: vec![
                ("content-type".into(), "application/json".into()),
                ("telnyx-timestamp".into(), "1700000000".into()),
                ("telnyx-signature-ed25519".into(), "2StYra0hTv84L32RzUzLjpwy1h0ub5DPQnQsfMSH/bW2ocdpjxAn1WyjOAAtq1nvO9NQXqa4Ueoj2z6nZWJeDQ==".into()),
            ],
            body,
            now: std::time::UNIX_EPOCH + std::time::Duration::from_secs(now_unix),
        }
        };
        let provider = telnyx("http://x", 5);
        assert_eq!(
            provider.check_signature(&request(1_700_000_100)),
            SignatureCheck::Valid
        );
        assert_eq!(
            provider.check_signature(&request(1_700_000_400)),
            SignatureCheck::Invalid,
            "stale"
        );
        let update = provider.status_update(&request(1_700_000_100)).unwrap();
        assert_eq!(
            update,
            StatusUpdate {
                provider_ref: Some("40385f64-5717-4562-b3fc-2c963f66afa6".into()),
                status: "delivered"
            }
        );
    }
}
