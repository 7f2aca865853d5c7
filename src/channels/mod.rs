//! Delivery: the `Provider` trait every SMS/voice provider implements, and the
//! ordered lists of providers configured for each channel (`channels.sms`, `channels.call`).

use std::sync::Arc;

use async_trait::async_trait;

use crate::code::Code;
use crate::config::{ProviderName, Settings};
use crate::domain::{Channel, Verdict};
use crate::i18n::Locale;
use crate::phone::PhoneNumber;

pub mod console;
pub mod http;
pub mod owned;
pub mod phlo;
pub mod plivo;
pub mod signatures;
pub mod telnyx;
pub mod twilio;
pub mod voice;

/// What a provider accepted: its id for the message or call, when it gives one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Receipt {
    pub provider_ref: Option<String>,
}

/// Why a provider did not take a message. Texts are for logs: they carry the provider's
/// code and message, never the code or the full number.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeliveryError {
    /// Timeout, connection failure, 5xx, 429: another provider may succeed.
    #[error("provider unavailable: {0}")]
    Unavailable(String),
    /// Our credentials were refused: another provider may succeed, an operator must act.
    #[error("provider refused our credentials: {0}")]
    Unauthorized(String),
    /// The number itself cannot receive this: no other provider will do better.
    #[error("number rejected: {0}")]
    InvalidNumber(String),
    /// Any other refusal of this request.
    #[error("request rejected: {0}")]
    Rejected(String),
}

impl DeliveryError {
    /// Whether the next provider in the list should be tried.
    pub fn try_next(&self) -> bool {
        !matches!(self, Self::InvalidNumber(_))
    }
}

/// A voice call reading a code: the sentence it says (twice), the code's symbols, read
/// one by one where the sentence says `{code}`, and the voice's language.
#[derive(Clone, PartialEq, Eq)]
pub struct CallScript {
    /// "Your phone-verify code is {code}."
    pub sentence: String,
    /// The code's symbols, e.g. `["1", "2", "3", "4", "5", "6"]`.
    pub symbols: Vec<String>,
    /// The text-to-speech language (`es-ES`); `None`: the provider's default, English.
    pub language: Option<&'static str>,
}

impl CallScript {
    /// The code spoken digit by digit: "1, 2, 3, 4, 5, 6".
    pub fn spoken_code(&self) -> String {
        self.symbols.join(", ")
    }

    /// The sentence with the code in it, said once.
    pub fn said(&self) -> String {
        self.sentence.replace("{code}", &self.spoken_code())
    }

    /// The whole text, code read twice.
    pub fn text(&self) -> String {
        let said = self.said();
        format!("{said} {said}")
    }

    /// An English script saying `sentence` with `code`, for tests.
    #[cfg(test)]
    pub fn test(sentence: &str, code: &str) -> Self {
        Self {
            sentence: sentence.into(),
            symbols: code.chars().map(String::from).collect(),
            language: None,
        }
    }
}

/// A code for the providers' tests.
#[cfg(test)]
pub static TEST_CODE: std::sync::LazyLock<Code> = std::sync::LazyLock::new(|| {
    crate::code::CodeFormat {
        alphabet: crate::code::CodeAlphabet::Digits,
        length: 6,
    }
    .parse("123456")
    .expect("a code")
});

impl std::fmt::Debug for CallScript {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CallScript(***)")
    }
}

/// An SMS to send.
#[derive(Debug, Clone, Copy)]
pub struct Sms<'a> {
    pub to: &'a PhoneNumber,
    pub body: &'a str,
    /// The code the body carries, for providers that write their own text (a PHLO).
    pub code: &'a Code,
    /// Where the provider should report delivery, when we can be reached.
    pub status_callback: Option<&'a str>,
}

/// A call to place.
#[derive(Debug, Clone, Copy)]
pub struct Call<'a> {
    pub to: &'a PhoneNumber,
    pub script: &'a CallScript,
    /// The code the script reads, for providers that write their own words (a PHLO).
    pub code: &'a Code,
    /// Where providers that fetch call instructions get them (`/voice/{call_id}`).
    pub answer_url: Option<&'a str>,
    pub status_callback: Option<&'a str>,
}

/// A request a provider made to us (status callback, call instructions), as received.
#[derive(Debug, Clone)]
pub struct Inbound<'a> {
    pub method: &'a str,
    /// The full URL the provider called: our public origin, path and query.
    pub url: &'a str,
    /// Header names in lowercase.
    pub headers: Vec<(String, String)>,
    pub body: &'a [u8],
    pub now: std::time::SystemTime,
}

impl Inbound<'_> {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Whether the body is a form (`application/x-www-form-urlencoded`).
    pub fn is_form(&self) -> bool {
        self.header("content-type")
            .is_some_and(|ct| ct.starts_with("application/x-www-form-urlencoded"))
    }

    /// The body's form fields, decoded, in the order sent (empty unless a form).
    pub fn form(&self) -> Vec<(String, String)> {
        if !self.is_form() {
            return Vec::new();
        }
        url::form_urlencoded::parse(self.body)
            .into_owned()
            .collect()
    }

    /// The URL's query fields, decoded.
    pub fn query(&self) -> Vec<(String, String)> {
        url::Url::parse(self.url)
            .map(|u| u.query_pairs().into_owned().collect())
            .unwrap_or_default()
    }

    /// A field of the form, or of the query for GET requests.
    pub fn field(&self, name: &str) -> Option<String> {
        self.form()
            .into_iter()
            .chain(self.query())
            .find(|(k, _)| k == name)
            .map(|(_, v)| v)
    }
}

/// The outcome of checking a provider's signature on an inbound request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureCheck {
    Valid,
    Invalid,
    /// We hold no secret to check this provider's signatures with.
    NotConfigured,
}

/// A delivery report, normalised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusUpdate {
    /// The provider's message or call id, when the report names it.
    pub provider_ref: Option<String>,
    /// `queued`, `sent`, `delivered`, `undelivered` or `failed`.
    pub status: &'static str,
}

/// Maps a provider's message or call status onto ours: `queued`, `sent`, `delivered`,
/// `undelivered`, `failed`, from every provider's own words for message and call states.
/// Unknown statuses are ignored.
pub fn normalize_status(raw: &str) -> Option<&'static str> {
    Some(match raw.trim().to_ascii_lowercase().as_str() {
        "accepted" | "scheduled" | "queued" | "sending" | "initiated" | "ringing" => "queued",
        "sent" | "delivery_unconfirmed" | "in-progress" | "answered" => "sent",
        "delivered" | "read" | "completed" => "delivered",
        "undelivered" | "delivery_failed" | "busy" | "no-answer" => "undelivered",
        "failed" | "canceled" | "sending_failed" | "expired" | "rejected" => "failed",
        _ => return None,
    })
}

/// What a provider-owned verification is started with.
#[derive(Debug, Clone, Copy)]
pub struct OwnedStart<'a> {
    pub to: &'a PhoneNumber,
    pub channel: Channel,
    pub locale: Locale,
    pub app_name: &'a str,
    /// How long the code lives (where the provider takes it per request).
    pub ttl_secs: u64,
    pub code_length: usize,
    /// Our attempt limit (where the provider takes one per request).
    pub max_attempts: u32,
}

/// A provider's own verification product: it generates, sends and checks the code;
/// phone-verify keeps its limits and asks it for verdicts.
#[async_trait]
pub trait CodeOwner: Send + Sync {
    /// Starts a verification there; its id for it, to check it with.
    async fn start_verification(&self, start: &OwnedStart<'_>) -> Result<String, DeliveryError>;
    /// Asks whether `code` is right for the verification `reference`. Never retried: a
    /// provider counts every check it sees.
    async fn check_code(
        &self,
        reference: &str,
        to: &PhoneNumber,
        code: &Code,
    ) -> Result<Verdict, DeliveryError>;
}

/// One SMS/voice provider.
#[async_trait]
pub trait Provider: Send + Sync + 'static {
    /// The configuration name (`console`, `twilio`, ...), recorded on send attempts.
    fn name(&self) -> ProviderName;
    /// Sends an SMS.
    async fn send_sms(&self, _sms: &Sms<'_>) -> Result<Receipt, DeliveryError> {
        Err(DeliveryError::Rejected(format!(
            "{} sends its own codes, never ours",
            self.name().as_str()
        )))
    }
    /// Calls and reads the script.
    async fn place_call(&self, _call: &Call<'_>) -> Result<Receipt, DeliveryError> {
        Err(DeliveryError::Rejected(format!(
            "{} calls with its own codes, never ours",
            self.name().as_str()
        )))
    }
    /// For a provider whose verification product owns the code: that product.
    fn owner(&self) -> Option<&dyn CodeOwner> {
        None
    }
    /// Whether calls fetch their instructions from `Call::answer_url`.
    fn fetches_call_instructions(&self) -> bool {
        false
    }
    /// The document served at the answer URL (cXML by default).
    fn call_document(&self, script: &CallScript) -> String {
        voice::say_document(script)
    }
    /// Checks the provider's signature on a request it made to us.
    fn check_signature(&self, _request: &Inbound<'_>) -> SignatureCheck {
        SignatureCheck::NotConfigured
    }
    /// Reads a status callback.
    fn status_update(&self, _request: &Inbound<'_>) -> Option<StatusUpdate> {
        None
    }
}

/// The providers of each channel, in the order they are tried.
#[derive(Clone)]
pub struct Channels {
    sms: Vec<Arc<dyn Provider>>,
    call: Vec<Arc<dyn Provider>>,
}

impl Channels {
    pub fn new(sms: Vec<Arc<dyn Provider>>, call: Vec<Arc<dyn Provider>>) -> Self {
        Self { sms, call }
    }

    /// Builds each configured provider once; a provider in both lists is shared.
    pub fn from_settings(settings: &Settings) -> anyhow::Result<Self> {
        let mut built: Vec<Arc<dyn Provider>> = Vec::new();
        let mut get = |name: ProviderName| -> anyhow::Result<Arc<dyn Provider>> {
            if let Some(existing) = built.iter().find(|p| p.name() == name) {
                return Ok(existing.clone());
            }
            let p = &settings.providers;
            let missing = || anyhow::anyhow!("[providers.{}] is missing", name.as_str());
            let provider: Arc<dyn Provider> = match name {
                ProviderName::Console => Arc::new(console::ConsoleProvider::new()),
                ProviderName::Twilio => Arc::new(twilio::TwilioProvider::twilio(
                    p.twilio.as_ref().ok_or_else(missing)?,
                )?),
                ProviderName::Signalwire => Arc::new(twilio::TwilioProvider::signalwire(
                    p.signalwire.as_ref().ok_or_else(missing)?,
                )?),
                ProviderName::Plivo => Arc::new(plivo::PlivoProvider::new(
                    p.plivo.as_ref().ok_or_else(missing)?,
                )?),
                ProviderName::Telnyx => Arc::new(telnyx::TelnyxProvider::new(
                    p.telnyx.as_ref().ok_or_else(missing)?,
                )?),
                ProviderName::PlivoPhlo => Arc::new(phlo::PhloProvider::new(
                    p.plivo_phlo.as_ref().ok_or_else(missing)?,
                )?),
                ProviderName::TwilioVerify => {
                    Arc::new(owned::twilio_verify::TwilioVerifyProvider::new(
                        p.twilio_verify.as_ref().ok_or_else(missing)?,
                    )?)
                }
                ProviderName::TelnyxVerify => {
                    Arc::new(owned::telnyx_verify::TelnyxVerifyProvider::new(
                        p.telnyx_verify.as_ref().ok_or_else(missing)?,
                    )?)
                }
                ProviderName::PlivoVerify => {
                    Arc::new(owned::plivo_verify::PlivoVerifyProvider::new(
                        p.plivo_verify.as_ref().ok_or_else(missing)?,
                    )?)
                }
                ProviderName::SignalwireMfa => {
                    Arc::new(owned::signalwire_mfa::SignalwireMfaProvider::new(
                        p.signalwire_mfa.as_ref().ok_or_else(missing)?,
                    )?)
                }
            };
            built.push(provider.clone());
            Ok(provider)
        };
        let sms = settings
            .channels
            .sms
            .iter()
            .map(|n| get(*n))
            .collect::<Result<_, _>>()?;
        let call = settings
            .channels
            .call
            .iter()
            .map(|n| get(*n))
            .collect::<Result<_, _>>()?;
        Ok(Self { sms, call })
    }

    /// The providers for `channel`, in order.
    pub fn for_channel(&self, channel: Channel) -> &[Arc<dyn Provider>] {
        match channel {
            Channel::Sms => &self.sms,
            Channel::Call => &self.call,
        }
    }

    /// The provider with this configuration name, if either channel uses it.
    pub fn find(&self, name: &str) -> Option<&Arc<dyn Provider>> {
        self.sms
            .iter()
            .chain(&self.call)
            .find(|p| p.name().as_str() == name)
    }

    /// Whether any provider of the call channel fetches its instructions from us.
    pub fn calls_fetch_instructions(&self) -> bool {
        self.call.iter().any(|p| p.fetches_call_instructions())
    }

    /// Whether any configured provider is the development console.
    pub fn uses_console(&self) -> bool {
        self.sms
            .iter()
            .chain(&self.call)
            .any(|p| p.name() == ProviderName::Console)
    }
}

/// For the providers' tests: a server answering every POST with `status` and `body`.
#[cfg(test)]
pub(crate) async fn answering(status: u16, body: serde_json::Value) -> wiremock::MockServer {
    let server = wiremock::MockServer::start().await;
    wiremock::Mock::given(wiremock::matchers::method("POST"))
        .respond_with(wiremock::ResponseTemplate::new(status).set_body_json(body))
        .mount(&server)
        .await;
    server
}
