//! Twilio Verify v2, called by us: form-encoded PascalCase requests, Basic auth with the
//! account SID and auth token, snake_case JSON answers, `{code, message}` errors.
//! Start: `POST /v2/Services/{VA}/Verifications` (`To`, `Channel`, `Locale`) → `sid`.
//! Check: `POST /v2/Services/{VA}/VerificationCheck` (`VerificationSid`, `Code`) →
//! `status` `approved` or `pending`; `404`/20404 when Twilio no longer has it (expired,
//! approved or used up), `429`/60202 after its five checks.

use async_trait::async_trait;

use super::super::http::{self, Answer};
use super::super::{CodeOwner, DeliveryError, OwnedStart, Provider};
use crate::code::Code;
use crate::config::{ProviderName, Secret, TwilioVerifySettings};
use crate::domain::{Channel, Verdict};
use crate::i18n::Locale;
use crate::phone::PhoneNumber;

/// Error codes that mean the number itself cannot get a code: invalid parameter `To`
/// (60200 names the parameter), a landline for SMS (60205), Twilio's invalid `To` codes.
const NUMBER_CODES: [i64; 4] = [60205, 21211, 21614, 21217];

pub struct TwilioVerifyProvider {
    client: reqwest::Client,
    /// `{base_url}/v2/Services/{service_sid}`.
    service_url: String,
    account_sid: String,
    auth_token: Secret,
}

impl TwilioVerifyProvider {
    pub fn new(s: &TwilioVerifySettings) -> anyhow::Result<Self> {
        Ok(Self {
            client: http::client(s.timeout_secs)?,
            service_url: http::join(&s.base_url, &format!("v2/Services/{}", s.service_sid)),
            account_sid: s.account_sid.clone(),
            auth_token: s.auth_token.clone(),
        })
    }

    async fn post(&self, resource: &str, form: &[(&str, &str)]) -> Result<Answer, DeliveryError> {
        let request = self
            .client
            .post(format!("{}/{resource}", self.service_url))
            .basic_auth(&self.account_sid, Some(self.auth_token.expose()))
            .header(reqwest::header::ACCEPT, "application/json")
            .form(form);
        http::execute(request).await
    }

    /// Twilio's locale for ours: our Portuguese texts are Brazilian, and so is Twilio's
    /// `pt-BR`; the others are the same two letters.
    fn locale(locale: Locale) -> &'static str {
        match locale {
            Locale::Pt => "pt-BR",
            other => other.tag(),
        }
    }
}

fn error_parts(answer: &Answer) -> (Option<i64>, String) {
    let json = answer.json();
    let message = json["message"].as_str().unwrap_or("").to_string();
    (json["code"].as_i64(), message)
}

#[async_trait]
impl Provider for TwilioVerifyProvider {
    fn name(&self) -> ProviderName {
        ProviderName::TwilioVerify
    }

    fn owner(&self) -> Option<&dyn CodeOwner> {
        Some(self)
    }
}

#[async_trait]
impl CodeOwner for TwilioVerifyProvider {
    async fn start_verification(&self, start: &OwnedStart<'_>) -> Result<String, DeliveryError> {
        let channel = match start.channel {
            Channel::Sms => "sms",
            Channel::Call => "call",
        };
        let form = [
            ("To", start.to.e164()),
            ("Channel", channel),
            ("Locale", Self::locale(start.locale)),
        ];
        let answer = self.post("Verifications", &form).await?;
        if answer.is_success() {
            return super::reference(answer.json()["sid"].as_str(), "Twilio Verify");
        }
        let (code, message) = error_parts(&answer);
        let number = code.is_some_and(|c| NUMBER_CODES.contains(&c))
            || (code == Some(60200) && message.contains("To"));
        let code_text = code.map(|c| c.to_string()).unwrap_or_default();
        let described = || {
            format!(
                "HTTP {}, code {code_text}: {}",
                answer.status,
                http::redact_numbers(&message)
            )
        };
        if number {
            // 60205 comes as 403, which would otherwise read as our credentials.
            return Err(DeliveryError::InvalidNumber(described()));
        }
        if matches!(code, Some(60410 | 60605)) {
            // Twilio's own fraud guard or geo permissions, sent as 403: not our
            // credentials; another provider may still deliver.
            return Err(DeliveryError::Rejected(described()));
        }
        Err(http::classify(answer.status, &code_text, &message, false))
    }

    async fn check_code(
        &self,
        reference: &str,
        _to: &PhoneNumber,
        code: &Code,
    ) -> Result<Verdict, DeliveryError> {
        let form = [("VerificationSid", reference), ("Code", code.expose())];
        let answer = self.post("VerificationCheck", &form).await?;
        if answer.is_success() {
            return Ok(match answer.json()["status"].as_str() {
                Some("approved") => Verdict::Approved,
                Some("pending") => Verdict::Wrong,
                Some("max_attempts_reached") => Verdict::Exhausted,
                Some("canceled" | "expired" | "deleted" | "failed") => Verdict::Expired,
                other => {
                    return Err(DeliveryError::Rejected(format!(
                        "unexpected check status {other:?}"
                    )));
                }
            });
        }
        let (error, message) = error_parts(&answer);
        match (answer.status, error) {
            (404, _) | (_, Some(20404)) => Ok(Verdict::Expired),
            (_, Some(60202)) => Ok(Verdict::Exhausted),
            _ => Err(super::unexplained(
                &answer,
                &error.map(|c| c.to_string()).unwrap_or_default(),
                &message,
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::channels::answering;
    use wiremock::matchers::{basic_auth, body_string, header, method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    const SERVICE: &str = "VA0123456789abcdef0123456789abcdef";

    fn provider(base: &str) -> TwilioVerifyProvider {
        TwilioVerifyProvider::new(&TwilioVerifySettings {
            account_sid: "AC123".into(),
            auth_token: Secret::new("secret"),
            service_sid: SERVICE.into(),
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

    #[tokio::test]
    async fn a_start_is_the_documented_form_and_names_no_code_of_ours() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path(format!("/v2/Services/{SERVICE}/Verifications")))
            .and(basic_auth("AC123", "secret"))
            .and(header("content-type", "application/x-www-form-urlencoded"))
            .and(body_string("To=%2B12015550123&Channel=call&Locale=es"))
            .respond_with(ResponseTemplate::new(201).set_body_json(serde_json::json!({
                "sid": "VE0123456789abcdef0123456789abcdef", "service_sid": SERVICE,
                "to": "+12015550123", "channel": "call", "status": "pending", "valid": false
            })))
            .expect(1)
            .mount(&server)
            .await;
        let to = to();
        let sid = provider(&server.uri())
            .start_verification(&start(&to, Channel::Call, Locale::Es))
            .await
            .unwrap();
        assert_eq!(sid, "VE0123456789abcdef0123456789abcdef");
    }

    #[tokio::test]
    async fn portuguese_is_brazilian() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(body_string("To=%2B12015550123&Channel=sms&Locale=pt-BR"))
            .respond_with(
                ResponseTemplate::new(201).set_body_json(serde_json::json!({"sid": "VE1"})),
            )
            .expect(1)
            .mount(&server)
            .await;
        let to = to();
        provider(&server.uri())
            .start_verification(&start(&to, Channel::Sms, Locale::Pt))
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn refused_starts_are_classified() {
        let cases = [
            (400, 60200, "Invalid parameter: To", "InvalidNumber"),
            (
                403,
                60205,
                "SMS is not supported by landline phone number",
                "InvalidNumber",
            ),
            (400, 60200, "Invalid parameter: Channel", "Rejected"),
            (401, 20003, "Authenticate", "Unauthorized"),
            (429, 60203, "Max send attempts reached", "Unavailable"),
            (
                403,
                60410,
                "Verification delivery attempt blocked",
                "Rejected",
            ),
            (
                403,
                60605,
                "Verification delivery attempt blocked: geo permission",
                "Rejected",
            ),
            (503, 20503, "Service unavailable", "Unavailable"),
        ];
        let to = to();
        for (status, code, message, kind) in cases {
            let server = answering(
                status,
                serde_json::json!({"code": code, "message": message, "status": status}),
            )
            .await;
            let error = provider(&server.uri())
                .start_verification(&start(&to, Channel::Sms, Locale::En))
                .await
                .unwrap_err();
            assert!(format!("{error:?}").starts_with(kind), "{code}: {error:?}");
        }
    }

    #[tokio::test]
    async fn a_check_sends_the_sid_and_the_code() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path(format!("/v2/Services/{SERVICE}/VerificationCheck")))
            .and(basic_auth("AC123", "secret"))
            .and(body_string("VerificationSid=VE1&Code=123456"))
            .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
                "sid": "VE1", "status": "approved", "valid": true
            })))
            .expect(1)
            .mount(&server)
            .await;
        let verdict = provider(&server.uri())
            .check_code("VE1", &to(), &crate::channels::TEST_CODE)
            .await
            .unwrap();
        assert_eq!(verdict, Verdict::Approved);
    }

    #[tokio::test]
    async fn each_answer_to_a_check_has_its_verdict() {
        let cases = [
            (
                200,
                serde_json::json!({"status": "pending", "valid": false}),
                Ok(Verdict::Wrong),
            ),
            (
                200,
                serde_json::json!({"status": "max_attempts_reached"}),
                Ok(Verdict::Exhausted),
            ),
            (
                200,
                serde_json::json!({"status": "canceled"}),
                Ok(Verdict::Expired),
            ),
            (
                404,
                serde_json::json!({"code": 20404, "message": "The requested resource /Services/VA/VerificationCheck was not found", "status": 404}),
                Ok(Verdict::Expired),
            ),
            (
                429,
                serde_json::json!({"code": 60202, "message": "Max check attempts reached", "status": 429}),
                Ok(Verdict::Exhausted),
            ),
            (
                429,
                serde_json::json!({"code": 20429, "message": "Too Many Requests", "status": 429}),
                Err("Unavailable"),
            ),
            (500, serde_json::json!({}), Err("Unavailable")),
            (
                401,
                serde_json::json!({"code": 20003, "message": "Authenticate"}),
                Err("Unauthorized"),
            ),
        ];
        for (status, body, expected) in cases {
            let server = answering(status, body.clone()).await;
            let got = provider(&server.uri())
                .check_code("VE1", &to(), &crate::channels::TEST_CODE)
                .await;
            super::super::assert_answer(got, expected, &format!("{status}"))
        }
    }
}
