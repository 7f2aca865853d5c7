//! Delivery: the `Provider` trait every SMS/voice provider implements, and the
//! ordered lists of providers configured for each channel (`channels.sms`, `channels.call`).

use std::sync::Arc;

use async_trait::async_trait;

use crate::config::{ConfigError, ProviderName, Settings};
use crate::phone::PhoneNumber;
use crate::verification::model::Channel;

pub mod console;

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

/// A voice call reading a code: the words before it and its symbols, said one by one.
#[derive(Clone, PartialEq, Eq)]
pub struct CallScript {
    /// "Your phone-verify code is".
    pub intro: String,
    /// The code's symbols, e.g. `["1", "2", "3", "4", "5", "6"]`.
    pub symbols: Vec<String>,
}

impl CallScript {
    /// The code spoken digit by digit: "1, 2, 3, 4, 5, 6".
    pub fn spoken_code(&self) -> String {
        self.symbols.join(", ")
    }

    /// The whole text, code read twice.
    pub fn text(&self) -> String {
        let code = self.spoken_code();
        format!("{intro} {code}. {intro} {code}.", intro = self.intro)
    }
}

impl std::fmt::Debug for CallScript {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CallScript(***)")
    }
}

/// One SMS/voice provider.
#[async_trait]
pub trait Provider: Send + Sync + 'static {
    /// The configuration name (`console`, `twilio`, ...), recorded on send attempts.
    fn name(&self) -> ProviderName;
    /// Sends `body` as an SMS to `to`.
    async fn send_sms(&self, to: &PhoneNumber, body: &str) -> Result<Receipt, DeliveryError>;
    /// Calls `to` and reads `script`.
    async fn place_call(
        &self,
        to: &PhoneNumber,
        script: &CallScript,
    ) -> Result<Receipt, DeliveryError>;
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
            let provider: Arc<dyn Provider> = match name {
                ProviderName::Console => Arc::new(console::ConsoleProvider),
                other => anyhow::bail!(
                    "provider {} is not available in this build; use \"console\"",
                    other.as_str()
                ),
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

    /// Whether any configured provider is the development console.
    pub fn uses_console(&self) -> bool {
        self.sms
            .iter()
            .chain(&self.call)
            .any(|p| p.name() == ProviderName::Console)
    }
}

/// Checks that `provider`, named under `key`, has what it needs in `settings`.
pub fn check_settings(
    provider: ProviderName,
    settings: &Settings,
    key: &str,
) -> Result<(), ConfigError> {
    let p = &settings.providers;
    let missing = |section: &str, field: &str| {
        ConfigError::new(
            format!("providers.{section}.{field}"),
            format!("is required because {key} names {section}"),
        )
    };
    let require = |section: &str, fields: &[(&str, bool)]| -> Result<(), ConfigError> {
        match fields.iter().find(|(_, empty)| *empty) {
            Some((field, _)) => Err(missing(section, field)),
            None => Ok(()),
        }
    };
    match provider {
        ProviderName::Console => Ok(()),
        ProviderName::Twilio => {
            let s = p
                .twilio
                .as_ref()
                .ok_or_else(|| missing("twilio", "account_sid"))?;
            require(
                "twilio",
                &[
                    ("account_sid", s.account_sid.is_empty()),
                    ("auth_token", s.auth_token.is_empty()),
                    ("from", s.from.is_empty()),
                ],
            )
        }
        ProviderName::Signalwire => {
            let s = p
                .signalwire
                .as_ref()
                .ok_or_else(|| missing("signalwire", "project_id"))?;
            require(
                "signalwire",
                &[
                    ("project_id", s.project_id.is_empty()),
                    ("api_token", s.api_token.is_empty()),
                    ("space_url", s.space_url.is_empty()),
                    ("from", s.from.is_empty()),
                ],
            )
        }
        ProviderName::Plivo => {
            let s = p
                .plivo
                .as_ref()
                .ok_or_else(|| missing("plivo", "auth_id"))?;
            require(
                "plivo",
                &[
                    ("auth_id", s.auth_id.is_empty()),
                    ("auth_token", s.auth_token.is_empty()),
                    ("from", s.from.is_empty()),
                ],
            )
        }
        ProviderName::Telnyx => {
            let s = p
                .telnyx
                .as_ref()
                .ok_or_else(|| missing("telnyx", "api_key"))?;
            require(
                "telnyx",
                &[
                    ("api_key", s.api_key.is_empty()),
                    ("from", s.from.is_empty()),
                ],
            )?;
            if key == "channels.call" {
                require(
                    "telnyx",
                    &[
                        ("texml_application_id", s.texml_application_id.is_empty()),
                        ("account_sid", s.account_sid.is_empty()),
                    ],
                )?;
            }
            Ok(())
        }
    }
}
