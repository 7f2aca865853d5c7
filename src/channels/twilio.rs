//! Twilio and SignalWire: one REST dialect (form-encoded PascalCase fields, Basic auth,
//! `{code, message}` errors, `sid` ids) at different paths. Twilio calls carry inline
//! TwiML; SignalWire calls fetch cXML from our `/voice/{call_id}`. Twilio signs what it
//! sends us with the auth token, SignalWire with its signing key.

use async_trait::async_trait;

use super::http::{self, Answer};
use super::signatures;
use super::{Call, DeliveryError, Inbound, Provider, Receipt, SignatureCheck, Sms, StatusUpdate};
use crate::config::{ProviderName, Secret, SignalwireSettings, TwilioSettings};

/// Error codes meaning "this number cannot get the message": no other provider will do better.
const TWILIO_NUMBER_CODES: [i64; 5] = [21211, 21214, 21217, 21610, 21614];
const SIGNALWIRE_NUMBER_CODES: [i64; 6] = [21211, 21217, 21603, 21606, 21610, 21614];

/// Where a SignalWire space answers: `base_url` when set, else `https://{space_url}`.
pub(super) fn signalwire_base(space_url: &str, base_url: &str) -> String {
    if !base_url.is_empty() {
        base_url.to_string()
    } else if space_url.starts_with("http") {
        space_url.to_string()
    } else {
        format!("https://{space_url}")
    }
}

/// A client of Twilio's REST API, or SignalWire's Twilio-compatible one.
pub struct TwilioProvider {
    name: ProviderName,
    client: reqwest::Client,
    /// `{base_url}/2010-04-01/Accounts/{sid}` or `{base_url}/api/laml/2010-04-01/Accounts/{project}`.
    account_url: String,
    /// `.json` on Twilio; SignalWire documents its paths without it.
    suffix: &'static str,
    username: String,
    password: Secret,
    from: String,
    /// The key providers sign callbacks with (Twilio: auth token; SignalWire: signing key).
    signing_key: Secret,
    number_codes: &'static [i64],
}

impl TwilioProvider {
    pub fn twilio(s: &TwilioSettings) -> anyhow::Result<Self> {
        Ok(Self {
            name: ProviderName::Twilio,
            client: http::client(s.timeout_secs)?,
            account_url: http::join(
                &s.base_url,
                &format!("2010-04-01/Accounts/{}", s.account_sid),
            ),
            suffix: ".json",
            username: s.account_sid.clone(),
            password: s.auth_token.clone(),
            from: s.from.clone(),
            signing_key: s.auth_token.clone(),
            number_codes: &TWILIO_NUMBER_CODES,
        })
    }

    pub fn signalwire(s: &SignalwireSettings) -> anyhow::Result<Self> {
        let base = signalwire_base(&s.space_url, &s.base_url);
        Ok(Self {
            name: ProviderName::Signalwire,
            client: http::client(s.timeout_secs)?,
            account_url: http::join(
                &base,
                &format!("api/laml/2010-04-01/Accounts/{}", s.project_id),
            ),
            suffix: "",
            username: s.project_id.clone(),
            password: s.api_token.clone(),
            from: s.from.clone(),
            signing_key: s.signing_key.clone(),
            number_codes: &SIGNALWIRE_NUMBER_CODES,
        })
    }

    async fn create(
        &self,
        resource: &str,
        form: &[(&str, &str)],
    ) -> Result<Receipt, DeliveryError> {
        let url = format!("{}/{resource}{}", self.account_url, self.suffix);
        let request = self
            .client
            .post(url)
            .basic_auth(&self.username, Some(self.password.expose()))
            .header(reqwest::header::ACCEPT, "application/json")
            .form(form);
        let answer = http::execute(request).await?;
        if answer.is_success() {
            let sid = answer.json()["sid"].as_str().map(String::from);
            return Ok(Receipt { provider_ref: sid });
        }
        Err(self.error(&answer))
    }

    fn error(&self, answer: &Answer) -> DeliveryError {
        let json = answer.json();
        let code = json["code"].as_i64();
        let message = json["message"].as_str().unwrap_or("");
        let rejected = code.is_some_and(|c| self.number_codes.contains(&c));
        http::classify(
            answer.status,
            &code.map(|c| c.to_string()).unwrap_or_default(),
            message,
            rejected,
        )
    }
}

#[async_trait]
impl Provider for TwilioProvider {
    fn name(&self) -> ProviderName {
        self.name
    }

    async fn send_sms(&self, sms: &Sms<'_>) -> Result<Receipt, DeliveryError> {
        let mut form = vec![
            ("To", sms.to.e164()),
            ("From", self.from.as_str()),
            ("Body", sms.body),
        ];
        if let Some(callback) = sms.status_callback {
            form.push(("StatusCallback", callback));
        }
        self.create("Messages", &form).await
    }

    async fn place_call(&self, call: &Call<'_>) -> Result<Receipt, DeliveryError> {
        let document;
        let mut form = vec![("To", call.to.e164()), ("From", self.from.as_str())];
        match (self.name, call.answer_url) {
            (ProviderName::Signalwire, Some(url)) => form.push(("Url", url)),
            (ProviderName::Signalwire, None) => {
                return Err(DeliveryError::Rejected(
                    "SignalWire calls need server.public_url reachable by SignalWire".into(),
                ));
            }
            _ => {
                document = self.call_document(call.script);
                form.push(("Twiml", &document));
            }
        }
        if let Some(callback) = call.status_callback {
            form.push(("StatusCallback", callback));
        }
        self.create("Calls", &form).await
    }

    fn fetches_call_instructions(&self) -> bool {
        self.name == ProviderName::Signalwire
    }

    fn check_signature(&self, request: &Inbound<'_>) -> SignatureCheck {
        if self.signing_key.is_empty() {
            return SignatureCheck::NotConfigured;
        }
        let header = match self.name {
            ProviderName::Signalwire => request
                .header("x-signalwire-signature")
                .or_else(|| request.header("x-twilio-signature")),
            _ => request.header("x-twilio-signature"),
        };
        let Some(header) = header else {
            return SignatureCheck::Invalid;
        };
        let key = self.signing_key.expose();
        let form = request.form();
        let valid = match self.name {
            ProviderName::Signalwire => {
                signatures::signalwire_valid(key, request.url, &form, request.body, header)
            }
            _ => signatures::twilio_valid(key, request.url, &form, request.body, header),
        };
        if valid {
            SignatureCheck::Valid
        } else {
            SignatureCheck::Invalid
        }
    }

    fn status_update(&self, request: &Inbound<'_>) -> Option<StatusUpdate> {
        let status = request
            .field("MessageStatus")
            .or_else(|| request.field("CallStatus"))?;
        Some(StatusUpdate {
            provider_ref: request
                .field("MessageSid")
                .or_else(|| request.field("CallSid")),
            status: super::normalize_status(&status)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::channels::CallScript;
    use crate::channels::answering;
    use crate::phone::PhoneNumber;
    use wiremock::matchers::{basic_auth, body_string, header, method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    fn twilio(base: &str, timeout_secs: u64) -> TwilioProvider {
        TwilioProvider::twilio(&TwilioSettings {
            account_sid: "AC123".into(),
            auth_token: Secret::new("secret"),
            from: "+15550001111".into(),
            base_url: base.into(),
            timeout_secs,
        })
        .unwrap()
    }

    fn signalwire(base: &str) -> TwilioProvider {
        TwilioProvider::signalwire(&SignalwireSettings {
            project_id: "p-uuid".into(),
            api_token: Secret::new("PTtoken"),
            space_url: "example.signalwire.com".into(),
            from: "+15550002222".into(),
            signing_key: Secret::new("PSKkey"),
            base_url: base.into(),
            timeout_secs: 5,
        })
        .unwrap()
    }

    fn to() -> PhoneNumber {
        PhoneNumber::from_e164("+12015550123").unwrap()
    }

    fn script() -> CallScript {
        CallScript::test("Your Acme code is {code}.", "123456")
    }

    fn sms<'a>(to: &'a PhoneNumber, callback: Option<&'a str>) -> Sms<'a> {
        Sms {
            to,
            body: "Your code is 123456.\n\n@verify.example.com #123456",
            code: &crate::channels::TEST_CODE,
            status_callback: callback,
        }
    }

    #[tokio::test]
    async fn twilio_sms_is_the_documented_form_post() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/2010-04-01/Accounts/AC123/Messages.json"))
            .and(basic_auth("AC123", "secret"))
            .and(header("content-type", "application/x-www-form-urlencoded"))
            .and(body_string(
                "To=%2B12015550123&From=%2B15550001111&Body=Your+code+is+123456.%0A%0A%40verify.example.com+%23123456\
                 &StatusCallback=https%3A%2F%2Fverify.example.com%2Fwebhooks%2Ftwilio%3Fv%3Dabc",
            ))
            .respond_with(ResponseTemplate::new(201).set_body_json(serde_json::json!({"sid": "SM0123", "status": "queued"})))
            .expect(1)
            .mount(&server)
            .await;
        let receipt = twilio(&server.uri(), 5)
            .send_sms(&sms(
                &to(),
                Some("https://verify.example.com/webhooks/twilio?v=abc"),
            ))
            .await
            .unwrap();
        assert_eq!(receipt.provider_ref.as_deref(), Some("SM0123"));
    }

    #[tokio::test]
    async fn twilio_calls_carry_inline_twiml() {
        let server = MockServer::start().await;
        let twiml = crate::channels::voice::say_document(&script());
        let expected = serde_urlencoded::to_string([
            ("To", "+12015550123"),
            ("From", "+15550001111"),
            ("Twiml", twiml.as_str()),
        ])
        .unwrap();
        Mock::given(method("POST"))
            .and(path("/2010-04-01/Accounts/AC123/Calls.json"))
            .and(basic_auth("AC123", "secret"))
            .and(body_string(expected))
            .respond_with(
                ResponseTemplate::new(201).set_body_json(serde_json::json!({"sid": "CA42"})),
            )
            .expect(1)
            .mount(&server)
            .await;
        let call = Call {
            to: &to(),
            script: &script(),
            code: &crate::channels::TEST_CODE,
            answer_url: Some("https://x/voice/1"),
            status_callback: None,
        };
        let receipt = twilio(&server.uri(), 5).place_call(&call).await.unwrap();
        assert_eq!(receipt.provider_ref.as_deref(), Some("CA42"));
    }

    #[tokio::test]
    async fn signalwire_uses_the_laml_paths_and_fetches_call_instructions() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/api/laml/2010-04-01/Accounts/p-uuid/Messages"))
            .and(basic_auth("p-uuid", "PTtoken"))
            .and(body_string("To=%2B12015550123&From=%2B15550002222&Body=hi"))
            .respond_with(
                ResponseTemplate::new(201).set_body_json(
                    serde_json::json!({"sid": "0a059168-ead0-41af-9d1f-343dae832527"}),
                ),
            )
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .and(path("/api/laml/2010-04-01/Accounts/p-uuid/Calls"))
            .and(body_string(
                "To=%2B12015550123&From=%2B15550002222&Url=https%3A%2F%2Fv.example%2Fvoice%2Fid%3Fprovider%3Dsignalwire\
                 &StatusCallback=https%3A%2F%2Fv.example%2Fwebhooks%2Fsignalwire%3Fv%3Did",
            ))
            .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({"sid": "call-uuid"})))
            .expect(1)
            .mount(&server)
            .await;
        let provider = signalwire(&server.uri());
        let receipt = provider
            .send_sms(&Sms {
                to: &to(),
                body: "hi",
                code: &crate::channels::TEST_CODE,
                status_callback: None,
            })
            .await
            .unwrap();
        assert_eq!(
            receipt.provider_ref.as_deref(),
            Some("0a059168-ead0-41af-9d1f-343dae832527")
        );
        let call = Call {
            to: &to(),
            script: &script(),
            code: &crate::channels::TEST_CODE,
            answer_url: Some("https://v.example/voice/id?provider=signalwire"),
            status_callback: Some("https://v.example/webhooks/signalwire?v=id"),
        };
        assert_eq!(
            provider
                .place_call(&call)
                .await
                .unwrap()
                .provider_ref
                .as_deref(),
            Some("call-uuid")
        );
        assert!(provider.fetches_call_instructions());
    }

    #[tokio::test]
    async fn an_invalid_to_is_a_rejected_number() {
        let body = serde_json::json!({"code": 21211, "message": "The 'To' number 2015550123 is not a valid phone number.", "more_info": "", "status": 400});
        let server = answering(400, body).await;
        let error = twilio(&server.uri(), 5)
            .send_sms(&sms(&to(), None))
            .await
            .unwrap_err();
        assert!(
            matches!(error, DeliveryError::InvalidNumber(_)),
            "{error:?}"
        );
        assert!(
            !error.to_string().contains("2015550123"),
            "no number in logs: {error}"
        );
        assert!(error.to_string().contains("21211"));
    }

    #[tokio::test]
    async fn other_client_errors_are_rejections_and_auth_errors_are_ours() {
        let server = answering(
            400,
            serde_json::json!({"code": 21606, "message": "From not SMS-capable"}),
        )
        .await;
        let error = twilio(&server.uri(), 5)
            .send_sms(&sms(&to(), None))
            .await
            .unwrap_err();
        assert!(matches!(error, DeliveryError::Rejected(_)), "{error:?}");
        let server = answering(
            401,
            serde_json::json!({"code": 20003, "message": "Authenticate"}),
        )
        .await;
        let error = twilio(&server.uri(), 5)
            .send_sms(&sms(&to(), None))
            .await
            .unwrap_err();
        assert!(matches!(error, DeliveryError::Unauthorized(_)), "{error:?}");
    }

    #[tokio::test]
    async fn server_errors_and_rate_limits_mean_try_elsewhere() {
        for status in [500, 503, 429] {
            let server = answering(
                status,
                serde_json::json!({"code": 20429, "message": "Too Many Requests"}),
            )
            .await;
            let error = twilio(&server.uri(), 5)
                .send_sms(&sms(&to(), None))
                .await
                .unwrap_err();
            assert!(
                matches!(error, DeliveryError::Unavailable(_)),
                "{status}: {error:?}"
            );
        }
    }

    #[tokio::test]
    async fn a_slow_provider_times_out() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(201).set_delay(std::time::Duration::from_secs(3)))
            .mount(&server)
            .await;
        let started = std::time::Instant::now();
        let error = twilio(&server.uri(), 1)
            .send_sms(&sms(&to(), None))
            .await
            .unwrap_err();
        assert_eq!(error, DeliveryError::Unavailable("timed out".into()));
        assert!(started.elapsed() < std::time::Duration::from_secs(3));
    }

    #[test]
    fn status_callbacks_are_read_and_normalised() {
        let body = b"MessageSid=SM1&MessageStatus=undelivered&ErrorCode=30003";
        let request = Inbound {
            method: "POST",
            url: "https://v.example/webhooks/twilio?v=id",
            headers: vec![(
                "content-type".into(),
                "application/x-www-form-urlencoded".into(),
            )],
            body,
            now: std::time::SystemTime::now(),
        };
        let update = twilio("http://x", 5).status_update(&request).unwrap();
        assert_eq!(
            update,
            StatusUpdate {
                provider_ref: Some("SM1".into()),
                status: "undelivered"
            }
        );
    }

    #[test]
    fn signalwire_without_a_signing_key_cannot_check_signatures() {
        let mut provider = signalwire("http://x");
        provider.signing_key = Secret::default();
        let request = Inbound {
            method: "POST",
            url: "https://v/x",
            headers: vec![],
            body: b"",
            now: std::time::SystemTime::now(),
        };
        assert_eq!(
            provider.check_signature(&request),
            SignatureCheck::NotConfigured
        );
        assert_eq!(
            signalwire("http://x").check_signature(&request),
            SignatureCheck::Invalid
        );
    }
}
