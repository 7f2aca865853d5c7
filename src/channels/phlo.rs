//! Plivo PHLO: the Plivo tutorial's first path. Running a PHLO (a workflow built in the
//! Plivo console) with `{"from", "to", "otp", "mode"}` makes it send the code, by SMS or
//! by a call as `mode` says; the text is the PHLO's, the code is ours (kept and checked
//! here like any other). Basic auth with the account's `auth_id:auth_token`.

use async_trait::async_trait;
use serde_json::json;

use super::http;
use super::{Call, DeliveryError, Provider, Receipt, Sms};
use crate::code::Code;
use crate::config::{PlivoPhloSettings, ProviderName, Secret};
use crate::phone::PhoneNumber;

pub struct PhloProvider {
    client: reqwest::Client,
    /// `{base_url}/v1/account/{auth_id}/phlo/{phlo_id}`.
    run_url: String,
    auth_id: String,
    auth_token: Secret,
    from: String,
}

impl PhloProvider {
    pub fn new(s: &PlivoPhloSettings) -> anyhow::Result<Self> {
        Ok(Self {
            client: http::client(s.timeout_secs)?,
            run_url: http::join(
                &s.base_url,
                &format!("v1/account/{}/phlo/{}", s.auth_id, s.phlo_id),
            ),
            auth_id: s.auth_id.clone(),
            auth_token: s.auth_token.clone(),
            from: s.from.clone(),
        })
    }

    /// Runs the PHLO. Any 2xx means it was triggered (not that the message went out: the
    /// flow runs on at Plivo); the run's id is `phlo_run_id`, else `api_id`.
    async fn run(
        &self,
        to: &PhoneNumber,
        code: &Code,
        mode: &str,
    ) -> Result<Receipt, DeliveryError> {
        // Every value a string: the keys and types are a contract with whoever built the
        // PHLO, and its Start node reads them as `{{Start.http.params.otp}}` and so on.
        let body = json!({
            "from": self.from,
            "to": to.e164(),
            "otp": code.expose(),
            "mode": mode,
        });
        let request = self
            .client
            .post(&self.run_url)
            .basic_auth(&self.auth_id, Some(self.auth_token.expose()))
            .json(&body);
        let answer = http::execute(request).await?;
        let json = answer.json();
        if answer.is_success() {
            if let Some(message) = json["message"].as_str() {
                tracing::debug!(message = %http::redact_numbers(message), "PHLO run");
            }
            let run = json["phlo_run_id"]
                .as_str()
                .or_else(|| json["api_id"].as_str())
                .map(String::from);
            return Ok(Receipt { provider_ref: run });
        }
        let message = super::plivo::error_text(&answer);
        // An invalid number fails inside the flow, not on the run call: a refusal of the
        // run itself is about the PHLO or the request, never the number.
        Err(http::classify(answer.status, "", &message, false))
    }
}

#[async_trait]
impl Provider for PhloProvider {
    fn name(&self) -> ProviderName {
        ProviderName::PlivoPhlo
    }

    async fn send_sms(&self, sms: &Sms<'_>) -> Result<Receipt, DeliveryError> {
        self.run(sms.to, sms.code, "sms").await
    }

    async fn place_call(&self, call: &Call<'_>) -> Result<Receipt, DeliveryError> {
        self.run(call.to, call.code, "call").await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::channels::CallScript;
    use crate::code::{CodeAlphabet, CodeFormat};
    use wiremock::matchers::{basic_auth, body_json, header, method, path, path_regex};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    fn phlo(base: &str, timeout_secs: u64) -> PhloProvider {
        PhloProvider::new(&PlivoPhloSettings {
            auth_id: "MAXXXX".into(),
            auth_token: Secret::new("token"),
            phlo_id: "4c1a9f23-aaaa".into(),
            from: "+14155550100".into(),
            base_url: base.into(),
            timeout_secs,
        })
        .unwrap()
    }

    fn to() -> PhoneNumber {
        PhoneNumber::from_e164("+12015550123").unwrap()
    }

    fn code() -> Code {
        CodeFormat {
            alphabet: CodeAlphabet::Digits,
            length: 6,
        }
        .parse("012345")
        .unwrap()
    }

    fn sms<'a>(to: &'a PhoneNumber, code: &'a Code) -> Sms<'a> {
        Sms {
            to,
            body: "unused: the PHLO writes the text",
            code,
            status_callback: None,
        }
    }

    #[tokio::test]
    async fn an_sms_runs_the_phlo_with_the_four_string_keys() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/v1/account/MAXXXX/phlo/4c1a9f23-aaaa"))
            .and(basic_auth("MAXXXX", "token"))
            .and(header("content-type", "application/json"))
            .and(body_json(json!({
                "from": "+14155550100", "to": "+12015550123", "otp": "012345", "mode": "sms"
            })))
            .respond_with(ResponseTemplate::new(201).set_body_json(json!({
                "phlo_id": "4c1a9f23-aaaa", "api_id": "7b6f8256-api",
                "message": "b'Send SMS' executed with response: {}"
            })))
            .expect(1)
            .mount(&server)
            .await;
        let (to, code) = (to(), code());
        let receipt = phlo(&server.uri(), 5)
            .send_sms(&sms(&to, &code))
            .await
            .unwrap();
        assert_eq!(receipt.provider_ref.as_deref(), Some("7b6f8256-api"));
    }

    #[tokio::test]
    async fn a_call_runs_it_in_call_mode_and_the_run_id_wins_over_the_api_id() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path_regex(r"^/v1/account/MAXXXX/phlo/4c1a9f23-aaaa/?$"))
            .and(basic_auth("MAXXXX", "token"))
            .and(body_json(json!({
                "from": "+14155550100", "to": "+12015550123", "otp": "012345", "mode": "call"
            })))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({
                "phlo_id": "4c1a9f23-aaaa", "api_id": "7b6f8256-api", "phlo_run_id": "run-1",
                "message": "executed"
            })))
            .expect(1)
            .mount(&server)
            .await;
        let (to, code) = (to(), code());
        let script = CallScript::test("Your code is {code}.", "012345");
        let call = Call {
            to: &to,
            script: &script,
            code: &code,
            answer_url: None,
            status_callback: None,
        };
        let receipt = phlo(&server.uri(), 5).place_call(&call).await.unwrap();
        assert_eq!(receipt.provider_ref.as_deref(), Some("run-1"));
    }

    #[tokio::test]
    async fn refusals_fail_over_and_never_blame_the_number() {
        let cases = [
            (
                400,
                json!({"api_id": "a", "error": "invalid payload"}),
                "Rejected",
            ),
            (
                401,
                json!({"api_id": "a", "error": "authentication failed"}),
                "Unauthorized",
            ),
            (
                404,
                json!({"api_id": "a", "error": "phlo not found"}),
                "Rejected",
            ),
            (
                429,
                json!({"api_id": "a", "error": "too many requests"}),
                "Unavailable",
            ),
            (500, json!({"error": "internal"}), "Unavailable"),
        ];
        let (to, code) = (to(), code());
        for (status, body, kind) in cases {
            let server = MockServer::start().await;
            Mock::given(method("POST"))
                .respond_with(ResponseTemplate::new(status).set_body_json(body))
                .mount(&server)
                .await;
            let error = phlo(&server.uri(), 5)
                .send_sms(&sms(&to, &code))
                .await
                .unwrap_err();
            assert!(
                format!("{error:?}").starts_with(kind),
                "{status}: {error:?}"
            );
            assert!(error.try_next(), "{status}: another provider may do better");
        }
    }

    #[tokio::test]
    async fn a_slow_phlo_times_out() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(201).set_delay(std::time::Duration::from_secs(3)))
            .mount(&server)
            .await;
        let (to, code) = (to(), code());
        let error = phlo(&server.uri(), 1)
            .send_sms(&sms(&to, &code))
            .await
            .unwrap_err();
        assert_eq!(error, DeliveryError::Unavailable("timed out".into()));
    }
}
