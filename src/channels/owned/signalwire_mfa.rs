//! SignalWire MFA (RELAY REST): JSON, Basic auth with `project_id:api_token`, at the
//! space's own host. Start: `POST /api/relay/rest/mfa/sms|call` (`to`, `from`,
//! `message`, `token_length`, `valid_for`, `max_attempts`, `allow_alphas`) → `id`;
//! SignalWire writes the text itself and puts its token after our `message`. Check:
//! `POST /api/relay/rest/mfa/{id}/verify` (`token`) → `success` true or false; `404`
//! once the request has expired or used up its attempts.

use async_trait::async_trait;
use serde_json::json;

use super::super::http::{self, Answer};
use super::super::{CodeOwner, DeliveryError, OwnedStart, Provider};
use crate::code::Code;
use crate::config::{ProviderName, Secret, SignalwireMfaSettings};
use crate::domain::{Channel, Verdict};
use crate::i18n::Arg;
use crate::phone::PhoneNumber;

pub struct SignalwireMfaProvider {
    client: reqwest::Client,
    /// `{base}/api/relay/rest/mfa`.
    mfa_url: String,
    project_id: String,
    api_token: Secret,
    from: String,
}

impl SignalwireMfaProvider {
    pub fn new(s: &SignalwireMfaSettings) -> anyhow::Result<Self> {
        let base = super::super::twilio::signalwire_base(&s.space_url, &s.base_url);
        Ok(Self {
            client: http::client(s.timeout_secs)?,
            mfa_url: http::join(&base, "api/relay/rest/mfa"),
            project_id: s.project_id.clone(),
            api_token: s.api_token.clone(),
            from: s.from.clone(),
        })
    }

    async fn post(&self, url: String, body: serde_json::Value) -> Result<Answer, DeliveryError> {
        let request = self
            .client
            .post(url)
            .basic_auth(&self.project_id, Some(self.api_token.expose()))
            .json(&body);
        http::execute(request).await
    }
}

/// `{"error": "..."}` or `{"errors": [{"detail", "title"}]}`.
fn error_message(answer: &Answer) -> String {
    let json = answer.json();
    json["error"]
        .as_str()
        .or_else(|| json["errors"][0]["detail"].as_str())
        .or_else(|| json["errors"][0]["title"].as_str())
        .unwrap_or("")
        .to_string()
}

#[async_trait]
impl Provider for SignalwireMfaProvider {
    fn name(&self) -> ProviderName {
        ProviderName::SignalwireMfa
    }

    fn owner(&self) -> Option<&dyn CodeOwner> {
        Some(self)
    }
}

#[async_trait]
impl CodeOwner for SignalwireMfaProvider {
    async fn start_verification(&self, start: &OwnedStart<'_>) -> Result<String, DeliveryError> {
        let route = match start.channel {
            Channel::Sms => "sms",
            Channel::Call => "call",
        };
        let message = start.locale.format(
            "mfa-message",
            &[("app_name", Arg::Text(start.app_name.into()))],
        );
        let mut body = json!({
            "to": start.to.e164(),
            "message": message,
            "token_length": start.code_length,
            "valid_for": start.ttl_secs,
            // SignalWire takes 1 to 20; ours is checked first anyway.
            "max_attempts": start.max_attempts.clamp(1, 20),
            "allow_alphas": false,
        });
        if !self.from.is_empty() {
            body["from"] = json!(self.from);
        }
        let answer = self.post(format!("{}/{route}", self.mfa_url), body).await?;
        let json = answer.json();
        if answer.is_success() && json["success"].as_bool() != Some(false) {
            return super::reference(json["id"].as_str(), "SignalWire MFA");
        }
        if answer.is_success() {
            return Err(DeliveryError::Rejected(
                "SignalWire did not queue the token".into(),
            ));
        }
        let message = error_message(&answer);
        // 422 is a field SignalWire refused; when it is `to`, the number is wrong.
        let first = &json["errors"][0];
        let field = first["attribute"]
            .as_str()
            .or_else(|| first["source"]["pointer"].as_str())
            .unwrap_or("");
        let number = answer.status == 422
            && (field == "to"
                || field.ends_with("/to")
                || message.to_ascii_lowercase().starts_with("to "));
        Err(http::classify(answer.status, "", &message, number))
    }

    async fn check_code(
        &self,
        reference: &str,
        _to: &PhoneNumber,
        code: &Code,
    ) -> Result<Verdict, DeliveryError> {
        if reference.is_empty() || reference.contains('/') {
            return Err(DeliveryError::Rejected("a malformed MFA request id".into()));
        }
        let url = format!("{}/{reference}/verify", self.mfa_url);
        let answer = self.post(url, json!({ "token": code.expose() })).await?;
        if answer.is_success() {
            return match answer.json()["success"].as_bool() {
                Some(true) => Ok(Verdict::Approved),
                Some(false) => Ok(Verdict::Wrong),
                None => Err(DeliveryError::Rejected("an answer without success".into())),
            };
        }
        match answer.status {
            // Expired, or its attempts used up: SignalWire no longer checks it.
            404 => Ok(Verdict::Expired),
            _ => Err(super::unexplained(&answer, "", &error_message(&answer))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::i18n::Locale;
    use wiremock::matchers::{basic_auth, body_json, method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    fn provider(base: &str, from: &str) -> SignalwireMfaProvider {
        SignalwireMfaProvider::new(&SignalwireMfaSettings {
            project_id: "p-uuid".into(),
            api_token: Secret::new("PTtoken"),
            space_url: "example.signalwire.com".into(),
            from: from.into(),
            base_url: base.into(),
            timeout_secs: 2,
        })
        .unwrap()
    }

    fn to() -> PhoneNumber {
        PhoneNumber::from_e164("+12015550123").unwrap()
    }

    fn start(to: &PhoneNumber, channel: Channel, locale: Locale) -> OwnedStart<'_> {
        super::super::sample_start(to, channel, locale, 600)
    }

    #[test]
    fn the_space_url_is_the_default_host() {
        let p = provider("", "");
        assert_eq!(
            p.mfa_url,
            "https://example.signalwire.com/api/relay/rest/mfa"
        );
    }

    #[tokio::test]
    async fn a_start_asks_for_our_length_expiry_and_attempts_in_the_persons_language() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/api/relay/rest/mfa/sms"))
            .and(basic_auth("p-uuid", "PTtoken"))
            .and(body_json(json!({
                "to": "+12015550123", "from": "+15550002222",
                "message": "Ihr Code für Acme lautet:",
                "token_length": 6, "valid_for": 600, "max_attempts": 5, "allow_alphas": false
            })))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({
                "id": "3fa85f64-5717-4562-b3fc-2c963f66afa6", "success": true,
                "to": "+12015550123", "channel": "sms"
            })))
            .expect(1)
            .mount(&server)
            .await;
        let to = to();
        let id = provider(&server.uri(), "+15550002222")
            .start_verification(&start(&to, Channel::Sms, Locale::De))
            .await
            .unwrap();
        assert_eq!(id, "3fa85f64-5717-4562-b3fc-2c963f66afa6");
    }

    #[tokio::test]
    async fn a_call_without_a_from_lets_signalwire_choose() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/api/relay/rest/mfa/call"))
            .and(body_json(json!({
                "to": "+12015550123", "message": "Your Acme code is:",
                "token_length": 6, "valid_for": 600, "max_attempts": 5, "allow_alphas": false
            })))
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_json(json!({"id": "mfa-2", "success": true, "channel": "call"})),
            )
            .expect(1)
            .mount(&server)
            .await;
        let to = to();
        provider(&server.uri(), "")
            .start_verification(&start(&to, Channel::Call, Locale::En))
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn refused_starts_are_classified() {
        let cases = [
            (
                422,
                json!({"errors": [{"detail": "to is not a valid phone number", "status": "422", "title": "Invalid", "code": "invalid_parameter", "attribute": "to"}]}),
                "InvalidNumber",
            ),
            (401, json!({"error": "Unauthorized"}), "Unauthorized"),
            (
                500,
                json!({"error": "Internal Server Error"}),
                "Unavailable",
            ),
            (200, json!({"id": "x", "success": false}), "Rejected"),
        ];
        let to = to();
        for (status, body, kind) in cases {
            let server = MockServer::start().await;
            Mock::given(method("POST"))
                .respond_with(ResponseTemplate::new(status).set_body_json(body))
                .mount(&server)
                .await;
            let error = provider(&server.uri(), "")
                .start_verification(&start(&to, Channel::Sms, Locale::En))
                .await
                .unwrap_err();
            assert!(
                format!("{error:?}").starts_with(kind),
                "{status}: {error:?}"
            );
        }
    }

    #[tokio::test]
    async fn checks_verify_the_token_by_request_id() {
        let cases = [
            (200, json!({"success": true}), Ok(Verdict::Approved)),
            (200, json!({"success": false}), Ok(Verdict::Wrong)),
            (404, json!({"error": "Not Found"}), Ok(Verdict::Expired)),
            (
                500,
                json!({"error": "Internal Server Error"}),
                Err("Unavailable"),
            ),
            (401, json!({"error": "Unauthorized"}), Err("Unauthorized")),
        ];
        for (status, body, expected) in cases {
            let server = MockServer::start().await;
            Mock::given(method("POST"))
                .and(path("/api/relay/rest/mfa/mfa-1/verify"))
                .and(basic_auth("p-uuid", "PTtoken"))
                .and(body_json(json!({"token": "123456"})))
                .respond_with(ResponseTemplate::new(status).set_body_json(body.clone()))
                .expect(1)
                .mount(&server)
                .await;
            let got = provider(&server.uri(), "")
                .check_code("mfa-1", &to(), &crate::channels::TEST_CODE)
                .await;
            super::super::assert_answer(got, expected, &format!("{status}"))
        }
    }
}
