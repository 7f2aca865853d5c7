//! Settings: the typed shape of `config.toml`, how it is layered (file, then
//! `PHONE_VERIFY__…` environment variables) and the rules `validate()` enforces.
//! Every error names the key it is about, so start-up can fail with one clear line.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::code::CodeAlphabet;

mod providers;
mod validate;

pub use validate::{Config, KeyPrefix, OidcClientConfig, OidcConfig, PublicUrl, parse_cidr};

/// Environment variables overriding keys start with this, then `__`.
pub const ENV_PREFIX: &str = "PHONE_VERIFY";
/// Keys whose values are lists; from the environment they are comma-separated.
const LIST_KEYS: [&str; 6] = [
    "server.trusted_proxies",
    "verification.allowed_countries",
    "verification.test_numbers",
    "channels.sms",
    "channels.call",
    "api.keys",
];
/// Keys whose values are tables with keys of the operator's choosing (country codes,
/// locales).
const MAP_KEYS: [&str; 2] = ["spend.countries", "verification.templates"];

/// Everything phone-verify can be told, section by section, as `config.toml` has it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    pub server: ServerSettings,
    pub verification: VerificationSettings,
    pub fraud: FraudSettings,
    pub spend: SpendSettings,
    pub oidc: OidcSettings,
    pub store: StoreSettings,
    pub channels: ChannelsSettings,
    pub providers: ProvidersSettings,
    pub api: ApiSettings,
    pub twilio_compat: TwilioCompatSettings,
    pub compat: CompatSettings,
    pub log: LogSettings,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerSettings {
    pub bind: String,
    pub public_url: String,
    pub secret: Secret,
    pub trusted_proxies: Vec<String>,
    pub static_dir: PathBuf,
    /// How long a browser session of the hosted pages lives, enforced on the server.
    pub session_ttl_secs: u64,
    /// A request's headers, and then its body, must arrive within this many seconds.
    pub request_timeout_secs: u64,
    /// Open connections per worker thread; beyond it, new connections wait to be accepted.
    pub max_connections: usize,
    /// When set, `GET /metrics` needs `Authorization: Bearer TOKEN`.
    pub metrics_token: Secret,
    /// When set, `/metrics` is served only on this address, not on `bind`.
    pub metrics_bind: String,
}

impl Default for ServerSettings {
    fn default() -> Self {
        Self {
            bind: "127.0.0.1:8080".into(),
            public_url: "http://127.0.0.1:8080".into(),
            secret: Secret::default(),
            trusted_proxies: Vec::new(),
            static_dir: "static".into(),
            session_ttl_secs: 1800,
            request_timeout_secs: 10,
            max_connections: 4096,
            metrics_token: Secret::default(),
            metrics_bind: String::new(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct VerificationSettings {
    pub app_name: String,
    pub code_length: usize,
    pub code_alphabet: CodeAlphabet,
    pub ttl_secs: u64,
    /// How long an ended verification (approved, expired, ...) can still be looked up.
    pub retain_ended_secs: u64,
    pub max_check_attempts: u32,
    pub lockout_failures: u32,
    pub lockout_secs: u64,
    pub resend_cooldown_secs: u64,
    pub max_sends_per_number: u32,
    pub send_window_secs: u64,
    pub max_sends_per_ip: u32,
    pub ip_window_secs: u64,
    /// IPv6 clients are counted per network of this many leading bits (64: one /64).
    pub ipv6_prefix_len: u8,
    pub default_region: String,
    pub allowed_countries: Vec<String>,
    /// The SMS text for every locale, unless it is the built-in English default (then
    /// each locale has its own built-in text).
    pub sms_template: String,
    /// The locale of a verification nobody asked a language for (BCP 47).
    pub default_locale: String,
    /// Per-locale texts replacing the built-in ones: `[verification.templates.es]`.
    pub templates: std::collections::BTreeMap<String, LocaleTemplates>,
    /// Numbers that get a fixed code and are never sent anything (app-store review, CI).
    pub test_numbers: Vec<TestNumber>,
}

/// The built-in English SMS text, as `verification.sms_template` defaults to it.
pub const DEFAULT_SMS_TEMPLATE: &str =
    "Your {app_name} code is {code}. It expires in {minutes} minutes.";

/// `[verification.templates.LOCALE]`: this locale's own texts; empty keeps the built-in.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LocaleTemplates {
    /// The SMS text (`{app_name}`, `{code}`, `{minutes}`); `@HOST #CODE` follows it.
    pub sms: String,
    /// What a call says, twice (`{app_name}`, `{code}` read digit by digit, `{minutes}`).
    pub call: String,
}

/// A test number and its code. From TOML a table `{ number, code }`; from the
/// environment `NUMBER=CODE` (the list comma-separated).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TestNumber {
    pub number: String,
    pub code: String,
}

impl<'de> Deserialize<'de> for TestNumber {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        const SHAPE: &str = "{ number = \"+1...\", code = \"123456\" } or \"+1...=123456\"";
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = TestNumber;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(SHAPE)
            }
            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<TestNumber, E> {
                let (number, code) = text
                    .split_once('=')
                    .ok_or_else(|| E::custom(format!("expected {SHAPE}")))?;
                Ok(TestNumber {
                    number: number.trim().to_string(),
                    code: code.trim().to_string(),
                })
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<TestNumber, A::Error> {
                let (mut number, mut code) = (None, None);
                while let Some(key) = map.next_key::<String>()? {
                    match key.as_str() {
                        "number" => number = Some(map.next_value::<String>()?),
                        "code" => code = Some(map.next_value::<String>()?),
                        other => {
                            return Err(serde::de::Error::unknown_field(
                                other,
                                &["number", "code"],
                            ));
                        }
                    }
                }
                Ok(TestNumber {
                    number: number.ok_or_else(|| {
                        serde::de::Error::custom(format!("needs a number: {SHAPE}"))
                    })?,
                    code: code.ok_or_else(|| {
                        serde::de::Error::custom(format!("needs a code: {SHAPE}"))
                    })?,
                })
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

/// `[oidc]`: phone-verify as an OpenID Connect provider.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OidcSettings {
    pub enabled: bool,
    /// Empty: `server.public_url`.
    pub issuer: String,
    /// PKCS#8 PEM of a P-256 key; empty: derived from `server.secret`.
    pub signing_key: Secret,
    pub id_token_ttl_secs: u64,
    pub code_ttl_secs: u64,
    pub clients: Vec<OidcClient>,
}

impl Default for OidcSettings {
    fn default() -> Self {
        Self {
            enabled: false,
            issuer: String::new(),
            signing_key: Secret::default(),
            id_token_ttl_secs: 300,
            code_ttl_secs: 60,
            clients: Vec::new(),
        }
    }
}

/// An application that signs people in with phone-verify.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OidcClient {
    pub client_id: String,
    /// Empty: a public client (PKCE required).
    pub client_secret: Secret,
    pub redirect_uris: Vec<String>,
    /// Shown on the pages: "Verify your phone number for NAME".
    pub name: String,
}

/// `[fraud]`: the guard against SMS pumping.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FraudSettings {
    pub enabled: bool,
    pub window_secs: u64,
    pub min_sends: u32,
    pub min_conversion: f64,
    pub block_secs: u64,
    pub prefix_digits: usize,
    pub max_sends_per_country_per_hour: u32,
}

impl Default for FraudSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            window_secs: 3600,
            min_sends: 30,
            min_conversion: 0.2,
            block_secs: 43_200,
            prefix_digits: 4,
            max_sends_per_country_per_hour: 0,
        }
    }
}

/// `[spend]`: a daily budget of estimated cost.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SpendSettings {
    pub daily_limit: f64,
    pub currency: String,
    pub sms_cost: f64,
    pub call_cost: f64,
    /// Per ISO 3166 country: its own costs.
    pub countries: std::collections::BTreeMap<String, CountryCost>,
}

impl Default for SpendSettings {
    fn default() -> Self {
        Self {
            daily_limit: 0.0,
            currency: "USD".into(),
            sms_cost: 0.0079,
            call_cost: 0.014,
            countries: Default::default(),
        }
    }
}

/// The estimated cost of one SMS and one call to a country; either falls back to the
/// defaults when left out.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CountryCost {
    pub sms: Option<f64>,
    pub call: Option<f64>,
}

impl Default for VerificationSettings {
    fn default() -> Self {
        Self {
            app_name: "phone-verify".into(),
            code_length: 6,
            code_alphabet: CodeAlphabet::Digits,
            ttl_secs: 600,
            retain_ended_secs: 3600,
            max_check_attempts: 5,
            lockout_failures: 10,
            lockout_secs: 3600,
            resend_cooldown_secs: 30,
            max_sends_per_number: 5,
            send_window_secs: 600,
            max_sends_per_ip: 25,
            ip_window_secs: 300,
            ipv6_prefix_len: 64,
            default_region: "US".into(),
            allowed_countries: vec!["*".into()],
            sms_template: DEFAULT_SMS_TEMPLATE.into(),
            default_locale: "en".into(),
            templates: Default::default(),
            test_numbers: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StoreBackend {
    Memory,
    Redis,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StoreSettings {
    pub backend: StoreBackend,
    /// One URL, or for a cluster several seed URLs separated by commas.
    pub redis_url: String,
    /// Whether `redis_url` names a Redis Cluster (or Valkey cluster).
    pub redis_cluster: bool,
    pub key_prefix: String,
}

impl Default for StoreSettings {
    fn default() -> Self {
        Self {
            backend: StoreBackend::Memory,
            redis_url: "redis://127.0.0.1:6379".into(),
            redis_cluster: false,
            key_prefix: "pv:".into(),
        }
    }
}

/// A delivery provider, as named in `channels.sms` / `channels.call`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProviderName {
    Console,
    Twilio,
    Signalwire,
    Plivo,
    Telnyx,
    /// A Plivo PHLO that delivers our code.
    PlivoPhlo,
    /// The providers' own verification products: they generate, send and check the code.
    TwilioVerify,
    TelnyxVerify,
    PlivoVerify,
    SignalwireMfa,
}

impl ProviderName {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Console => "console",
            Self::Twilio => "twilio",
            Self::Signalwire => "signalwire",
            Self::Plivo => "plivo",
            Self::Telnyx => "telnyx",
            Self::PlivoPhlo => "plivo_phlo",
            Self::TwilioVerify => "twilio_verify",
            Self::TelnyxVerify => "telnyx_verify",
            Self::PlivoVerify => "plivo_verify",
            Self::SignalwireMfa => "signalwire_mfa",
        }
    }

    /// Whether the provider generates and checks the code itself (§8).
    pub fn owns_codes(self) -> bool {
        matches!(
            self,
            Self::TwilioVerify | Self::TelnyxVerify | Self::PlivoVerify | Self::SignalwireMfa
        )
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ChannelsSettings {
    pub sms: Vec<ProviderName>,
    pub call: Vec<ProviderName>,
}

impl Default for ChannelsSettings {
    fn default() -> Self {
        Self {
            sms: vec![ProviderName::Console],
            call: vec![ProviderName::Console],
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProvidersSettings {
    pub twilio: Option<TwilioSettings>,
    pub signalwire: Option<SignalwireSettings>,
    pub plivo: Option<PlivoSettings>,
    pub telnyx: Option<TelnyxSettings>,
    pub plivo_phlo: Option<PlivoPhloSettings>,
    pub twilio_verify: Option<TwilioVerifySettings>,
    pub telnyx_verify: Option<TelnyxVerifySettings>,
    pub plivo_verify: Option<PlivoVerifySettings>,
    pub signalwire_mfa: Option<SignalwireMfaSettings>,
}

impl ProvidersSettings {
    /// Every provider's section, with its defaults: the shape of all keys there are.
    fn every_one() -> Self {
        Self {
            twilio: Some(Default::default()),
            signalwire: Some(Default::default()),
            plivo: Some(Default::default()),
            telnyx: Some(Default::default()),
            plivo_phlo: Some(Default::default()),
            twilio_verify: Some(Default::default()),
            telnyx_verify: Some(Default::default()),
            plivo_verify: Some(Default::default()),
            signalwire_mfa: Some(Default::default()),
        }
    }
}

fn default_timeout() -> u64 {
    10
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TwilioSettings {
    pub account_sid: String,
    pub auth_token: Secret,
    pub from: String,
    pub base_url: String,
    pub timeout_secs: u64,
}

impl Default for TwilioSettings {
    fn default() -> Self {
        Self {
            account_sid: String::new(),
            auth_token: Secret::default(),
            from: String::new(),
            base_url: "https://api.twilio.com".into(),
            timeout_secs: default_timeout(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SignalwireSettings {
    pub project_id: String,
    pub api_token: Secret,
    pub space_url: String,
    pub from: String,
    pub signing_key: Secret,
    /// Empty means `https://{space_url}`.
    pub base_url: String,
    pub timeout_secs: u64,
}

impl Default for SignalwireSettings {
    fn default() -> Self {
        Self {
            project_id: String::new(),
            api_token: Secret::default(),
            space_url: String::new(),
            from: String::new(),
            signing_key: Secret::default(),
            base_url: String::new(),
            timeout_secs: default_timeout(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PlivoSettings {
    pub auth_id: String,
    pub auth_token: Secret,
    pub from: String,
    pub base_url: String,
    pub timeout_secs: u64,
}

impl Default for PlivoSettings {
    fn default() -> Self {
        Self {
            auth_id: String::new(),
            auth_token: Secret::default(),
            from: String::new(),
            base_url: "https://api.plivo.com".into(),
            timeout_secs: default_timeout(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TelnyxSettings {
    pub api_key: Secret,
    pub from: String,
    pub messaging_profile_id: String,
    pub texml_application_id: String,
    pub account_sid: String,
    pub public_key: String,
    pub base_url: String,
    pub timeout_secs: u64,
}

impl Default for TelnyxSettings {
    fn default() -> Self {
        Self {
            api_key: Secret::default(),
            from: String::new(),
            messaging_profile_id: String::new(),
            texml_application_id: String::new(),
            account_sid: String::new(),
            public_key: String::new(),
            base_url: "https://api.telnyx.com".into(),
            timeout_secs: default_timeout(),
        }
    }
}

/// `[providers.plivo_phlo]`: a PHLO run with `{"from", "to", "otp", "mode"}`; it sends.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PlivoPhloSettings {
    pub auth_id: String,
    pub auth_token: Secret,
    pub phlo_id: String,
    pub from: String,
    pub base_url: String,
    pub timeout_secs: u64,
}

impl Default for PlivoPhloSettings {
    fn default() -> Self {
        Self {
            auth_id: String::new(),
            auth_token: Secret::default(),
            phlo_id: String::new(),
            from: String::new(),
            base_url: "https://phlorunner.plivo.com".into(),
            timeout_secs: default_timeout(),
        }
    }
}

/// `[providers.twilio_verify]`: Twilio Verify v2, called by us.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TwilioVerifySettings {
    pub account_sid: String,
    pub auth_token: Secret,
    pub service_sid: String,
    pub base_url: String,
    pub timeout_secs: u64,
}

impl Default for TwilioVerifySettings {
    fn default() -> Self {
        Self {
            account_sid: String::new(),
            auth_token: Secret::default(),
            service_sid: String::new(),
            base_url: "https://verify.twilio.com".into(),
            timeout_secs: default_timeout(),
        }
    }
}

/// `[providers.telnyx_verify]`: Telnyx Verify v2 with a Verify profile.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TelnyxVerifySettings {
    pub api_key: Secret,
    pub verify_profile_id: String,
    pub base_url: String,
    pub timeout_secs: u64,
}

impl Default for TelnyxVerifySettings {
    fn default() -> Self {
        Self {
            api_key: Secret::default(),
            verify_profile_id: String::new(),
            base_url: "https://api.telnyx.com".into(),
            timeout_secs: default_timeout(),
        }
    }
}

/// `[providers.plivo_verify]`: Plivo's Verify sessions.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PlivoVerifySettings {
    pub auth_id: String,
    pub auth_token: Secret,
    /// The Verify application; empty: the account's default.
    pub app_uuid: String,
    pub base_url: String,
    pub timeout_secs: u64,
}

impl Default for PlivoVerifySettings {
    fn default() -> Self {
        Self {
            auth_id: String::new(),
            auth_token: Secret::default(),
            app_uuid: String::new(),
            base_url: "https://api.plivo.com".into(),
            timeout_secs: default_timeout(),
        }
    }
}

/// `[providers.signalwire_mfa]`: SignalWire's MFA endpoints (RELAY REST).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SignalwireMfaSettings {
    pub project_id: String,
    pub api_token: Secret,
    pub space_url: String,
    /// A number of the project; empty: SignalWire's own verified number.
    pub from: String,
    /// Empty means `https://{space_url}`.
    pub base_url: String,
    pub timeout_secs: u64,
}

impl Default for SignalwireMfaSettings {
    fn default() -> Self {
        Self {
            project_id: String::new(),
            api_token: Secret::default(),
            space_url: String::new(),
            from: String::new(),
            base_url: String::new(),
            timeout_secs: default_timeout(),
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ApiSettings {
    pub keys: Vec<Secret>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TwilioCompatSettings {
    pub enabled: bool,
    pub account_sid: String,
    pub auth_token: Secret,
    pub service_sid: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CompatSettings {
    pub signalwire_routes: bool,
    pub plivo_routes: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogSettings {
    pub format: LogFormat,
    /// A `tracing` filter, e.g. `info` or `phone_verify=debug,info`. `RUST_LOG` wins when set.
    pub level: String,
}

impl Default for LogSettings {
    fn default() -> Self {
        Self {
            format: LogFormat::Text,
            level: "info".into(),
        }
    }
}

/// A secret string: never printed by `Debug`, so settings can be logged safely.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_empty() {
            "\"\""
        } else {
            "[redacted]"
        })
    }
}

/// A configuration problem, naming the key it is about.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {message}")]
pub struct ConfigError {
    pub key: String,
    pub message: String,
}

impl ConfigError {
    pub fn new(key: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            message: message.into(),
        }
    }
}

/// Which file to read: `--config`, else `PHONE_VERIFY_CONFIG`, else `./config.toml` if present.
pub fn config_path(cli: Option<PathBuf>) -> Option<(PathBuf, bool)> {
    config_path_from(cli, std::env::var_os("PHONE_VERIFY_CONFIG"))
}

/// `config_path` with the environment's `PHONE_VERIFY_CONFIG` given: the command line
/// wins over the environment, which wins over `./config.toml`.
fn config_path_from(
    cli: Option<PathBuf>,
    from_env: Option<std::ffi::OsString>,
) -> Option<(PathBuf, bool)> {
    if let Some(path) = cli {
        return Some((path, true));
    }
    if let Some(path) = from_env.filter(|p| !p.is_empty()) {
        return Some((PathBuf::from(path), true));
    }
    let local = PathBuf::from("config.toml");
    local.exists().then_some((local, false))
}

/// The `.env` file to read: `--env-file PATH` (which must exist), else `./.env` when
/// there is one.
pub fn env_file_path(cli: Option<PathBuf>) -> Result<Option<PathBuf>, ConfigError> {
    match cli {
        Some(path) if path.is_file() => Ok(Some(path)),
        Some(path) => Err(ConfigError::new(
            "env-file",
            format!("file {} does not exist", path.display()),
        )),
        None => {
            let local = PathBuf::from(".env");
            Ok(local.is_file().then_some(local))
        }
    }
}

/// The variables of a `.env` file (read by `dotenvy`: `KEY=value` lines, `#` comments,
/// quotes, `export` prefixes), in order. The same file works with `docker run
/// --env-file` as long as it keeps to unquoted `KEY=value` lines.
pub fn read_env_file(path: &Path) -> Result<Vec<(String, String)>, ConfigError> {
    let key = "env-file";
    let iter = dotenvy::from_path_iter(path)
        .map_err(|e| ConfigError::new(key, format!("{}: {e}", path.display())))?;
    iter.map(|item| item.map_err(|e| ConfigError::new(key, format!("{}: {e}", path.display()))))
        .collect()
}

/// Of a `.env` file's variables, those the environment does not set already: the
/// environment wins over the file (and the command line over both).
pub fn env_file_defaults(
    file: Vec<(String, String)>,
    is_set: impl Fn(&str) -> bool,
) -> Vec<(String, String)> {
    let mut defaults: Vec<(String, String)> = Vec::new();
    for (name, value) in file {
        if is_set(&name) {
            continue;
        }
        // A name repeated in the file: its last value, as a shell would leave it.
        defaults.retain(|(n, _)| *n != name);
        defaults.push((name, value));
    }
    defaults
}

/// Reads the file (if any) and the environment, then validates and parses.
pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
    let mut builder = config::Config::builder();
    if let Some(path) = path {
        if !path.exists() {
            return Err(ConfigError::new(
                "config",
                format!("file {} does not exist", path.display()),
            ));
        }
        builder = builder.add_source(config::File::from(path).format(config::FileFormat::Toml));
    }
    builder = apply_env(builder, std::env::vars_os())?;
    let raw = builder.build().map_err(from_config_error)?;
    let table: config::Map<String, config::Value> =
        raw.clone().try_deserialize().map_err(from_config_error)?;
    reject_unknown_keys(&table)?;
    let settings: Settings = raw.try_deserialize().map_err(from_config_error)?;
    Config::parse(settings)
}

/// Applies `PHONE_VERIFY__SECTION__KEY` variables as overrides. Values stay strings
/// (config's own `try_parsing` would turn `+15550002222` into a number); list keys are
/// split on commas.
fn apply_env(
    mut builder: config::ConfigBuilder<config::builder::DefaultState>,
    vars: impl Iterator<Item = (std::ffi::OsString, std::ffi::OsString)>,
) -> Result<config::ConfigBuilder<config::builder::DefaultState>, ConfigError> {
    let prefix = format!("{ENV_PREFIX}__");
    for (name, value) in vars {
        let Some(rest) = name.to_str().and_then(|n| n.strip_prefix(&prefix)) else {
            continue;
        };
        let key = rest.to_ascii_lowercase().replace("__", ".");
        let value = value
            .into_string()
            .map_err(|_| ConfigError::new(&key, "is not valid UTF-8"))?;
        builder = if LIST_KEYS.contains(&key.as_str()) {
            let items: Vec<String> = value
                .split(',')
                .map(str::trim)
                .filter(|item| !item.is_empty())
                .map(String::from)
                .collect();
            builder.set_override(&key, items)
        } else {
            builder.set_override(&key, value)
        }
        .map_err(|e| ConfigError::new(&key, e.to_string()))?;
    }
    Ok(builder)
}

/// serde's `deny_unknown_fields` does not say where the field was; this walk does.
fn reject_unknown_keys(table: &config::Map<String, config::Value>) -> Result<(), ConfigError> {
    let known = Settings {
        providers: ProvidersSettings::every_one(),
        ..Default::default()
    };
    let known = serde_json::to_value(known).expect("settings serialize");
    walk_unknown(table, &known, "")
}

fn walk_unknown(
    table: &config::Map<String, config::Value>,
    known: &serde_json::Value,
    prefix: &str,
) -> Result<(), ConfigError> {
    for (key, value) in table {
        let path = if prefix.is_empty() {
            key.clone()
        } else {
            format!("{prefix}.{key}")
        };
        let Some(expected) = known.get(key) else {
            return Err(ConfigError::new(path, "unknown key"));
        };
        if MAP_KEYS.contains(&path.as_str()) {
            continue;
        }
        if let (config::ValueKind::Table(inner), serde_json::Value::Object(_)) =
            (&value.kind, expected)
        {
            walk_unknown(inner, expected, &path)?;
        }
    }
    Ok(())
}

fn from_config_error(error: config::ConfigError) -> ConfigError {
    match error {
        config::ConfigError::Type {
            key: Some(key),
            unexpected,
            expected,
            ..
        } => ConfigError::new(key, format!("expected {expected}, found {unexpected}")),
        config::ConfigError::At {
            error,
            key: Some(key),
            ..
        } => ConfigError::new(key, strip_key_suffix(&error.to_string())),
        config::ConfigError::FileParse { uri, cause } => ConfigError::new(
            "config",
            format!(
                "cannot parse {}: {}",
                uri.unwrap_or_default(),
                one_line(&cause.to_string())
            ),
        ),
        other => ConfigError::new("config", other.to_string()),
    }
}

/// Multi-line parser messages (TOML points at the column) folded into one line.
fn one_line(message: &str) -> String {
    message
        .lines()
        .map(|l| l.trim())
        .filter(|l| !l.is_empty() && !l.chars().all(|c| "^| ".contains(c)))
        .collect::<Vec<_>>()
        .join(" ")
}

fn strip_key_suffix(message: &str) -> String {
    match message.find(" for key `") {
        Some(at) => message[..at].to_string(),
        None => message.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn valid() -> Settings {
        Settings::default()
    }

    #[test]
    fn defaults_are_valid() {
        assert_eq!(valid().validate(), Ok(()));
    }

    #[test]
    fn the_command_line_wins_over_the_environment_which_wins_over_the_file() {
        let file = vec![
            (
                "PHONE_VERIFY__SERVER__BIND".to_string(),
                "0.0.0.0:5000".to_string(),
            ),
            ("PHONE_VERIFY__LOG__FORMAT".to_string(), "json".to_string()),
            (
                "PHONE_VERIFY_CONFIG".to_string(),
                "from-file.toml".to_string(),
            ),
            ("PHONE_VERIFY__LOG__FORMAT".to_string(), "text".to_string()),
        ];
        let set_in_environment = |name: &str| name == "PHONE_VERIFY__SERVER__BIND";
        let defaults = env_file_defaults(file, set_in_environment);
        assert_eq!(
            defaults,
            [
                (
                    "PHONE_VERIFY_CONFIG".to_string(),
                    "from-file.toml".to_string()
                ),
                ("PHONE_VERIFY__LOG__FORMAT".to_string(), "text".to_string()),
            ],
            "the environment's bind stays; the file's last value of a repeated name counts"
        );
        let from_env = Some(std::ffi::OsString::from("from-env.toml"));
        assert_eq!(
            config_path_from(Some("cli.toml".into()), from_env.clone()),
            Some(("cli.toml".into(), true))
        );
        assert_eq!(
            config_path_from(None, from_env),
            Some(("from-env.toml".into(), true))
        );
    }

    #[test]
    fn env_files_are_read_with_comments_quotes_and_exports() {
        let dir = std::env::temp_dir().join(format!("pv-env-{}", crate::code::random_hex(4)));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(".env");
        std::fs::write(
            &path,
            "# a comment\nPHONE_VERIFY__SERVER__BIND=127.0.0.1:5000\nexport PHONE_VERIFY__VERIFICATION__APP_NAME=\"Acme Inc\"\n\nPHONE_VERIFY__CHANNELS__SMS=twilio,console\n",
        )
        .unwrap();
        let vars = read_env_file(&path).unwrap();
        assert_eq!(
            vars,
            [
                (
                    "PHONE_VERIFY__SERVER__BIND".to_string(),
                    "127.0.0.1:5000".to_string()
                ),
                (
                    "PHONE_VERIFY__VERIFICATION__APP_NAME".to_string(),
                    "Acme Inc".to_string()
                ),
                (
                    "PHONE_VERIFY__CHANNELS__SMS".to_string(),
                    "twilio,console".to_string()
                ),
            ]
        );
        std::fs::write(&path, "NOT A LINE\n").unwrap();
        let error = read_env_file(&path).unwrap_err();
        assert_eq!(error.key, "env-file");
        assert!(env_file_path(Some(dir.join("missing"))).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// `config.toml.example` shows every key of every section (provider sections
    /// commented out), so the documentation cannot fall behind the code.
    #[test]
    fn the_example_documents_every_key() {
        let example = include_str!("../../config.toml.example");
        let mut sections: BTreeMap<String, Vec<String>> = BTreeMap::new();
        let mut current = String::new();
        for raw in example.lines() {
            let commented = raw.starts_with('#');
            let line = raw.trim_start_matches('#').trim();
            if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
                // A commented header is an example inside its section, except for the
                // provider sections, which are all commented out.
                if !commented || name.starts_with("providers.") {
                    current = name.to_string();
                }
                continue;
            }
            if let Some((key, _)) = line.split_once(" = ")
                && key
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
            {
                sections
                    .entry(current.clone())
                    .or_default()
                    .push(key.to_string());
            }
        }
        let known = serde_json::to_value(Settings {
            providers: ProvidersSettings::every_one(),
            ..Default::default()
        })
        .unwrap();
        let mut missing = Vec::new();
        let mut walk = |section: String, table: &serde_json::Map<String, serde_json::Value>| {
            for key in table.keys() {
                if !sections
                    .get(&section)
                    .is_some_and(|keys| keys.contains(key))
                {
                    missing.push(format!("{section}.{key}"));
                }
            }
        };
        for (name, value) in known.as_object().unwrap() {
            if name == "providers" {
                for (provider, fields) in value.as_object().unwrap() {
                    walk(format!("providers.{provider}"), fields.as_object().unwrap());
                }
            } else {
                walk(name.clone(), value.as_object().unwrap());
            }
        }
        assert!(
            missing.is_empty(),
            "not in config.toml.example: {missing:?}"
        );
    }

    #[test]
    fn code_spaces_under_20_bits_are_refused() {
        let cases = [
            (CodeAlphabet::Digits, 5, false),
            (CodeAlphabet::Digits, 6, true),
            (CodeAlphabet::Hex, 4, false),
            (CodeAlphabet::Hex, 5, true),
        ];
        for (alphabet, length, ok) in cases {
            let mut s = valid();
            s.verification.code_alphabet = alphabet;
            s.verification.code_length = length;
            let result = s.validate();
            assert_eq!(result.is_ok(), ok, "{alphabet:?} x {length}: {result:?}");
            if let Err(e) = result {
                assert_eq!(e.key, "verification.code_length");
            }
        }
    }

    #[test]
    fn out_of_range_values_name_their_key() {
        type Mutation = Box<dyn Fn(&mut Settings)>;
        let cases: Vec<(&str, Mutation)> = vec![
            (
                "verification.ttl_secs",
                Box::new(|s| s.verification.ttl_secs = 0),
            ),
            (
                "verification.ttl_secs",
                Box::new(|s| s.verification.ttl_secs = 601),
            ),
            (
                "verification.retain_ended_secs",
                Box::new(|s| s.verification.retain_ended_secs = 0),
            ),
            (
                "verification.max_check_attempts",
                Box::new(|s| s.verification.max_check_attempts = 0),
            ),
            (
                "verification.lockout_failures",
                Box::new(|s| s.verification.lockout_failures = 101),
            ),
            (
                "verification.default_region",
                Box::new(|s| s.verification.default_region = "XX".into()),
            ),
            (
                "verification.allowed_countries",
                Box::new(|s| s.verification.allowed_countries = vec!["USA".into()]),
            ),
            (
                "verification.sms_template",
                Box::new(|s| s.verification.sms_template = "no code".into()),
            ),
            (
                "server.secret",
                Box::new(|s| s.server.secret = Secret::new("short")),
            ),
            (
                "server.bind",
                Box::new(|s| s.server.bind = "nowhere".into()),
            ),
            (
                "server.public_url",
                Box::new(|s| s.server.public_url = "ftp://x".into()),
            ),
            (
                "server.trusted_proxies",
                Box::new(|s| s.server.trusted_proxies = vec!["10.0.0.0/99".into()]),
            ),
            ("channels.sms", Box::new(|s| s.channels.sms.clear())),
            (
                "server.secret",
                Box::new(|s| s.store.backend = StoreBackend::Redis),
            ),
        ];
        for (key, mutate) in cases {
            let mut s = valid();
            mutate(&mut s);
            let error = s.validate().expect_err(key);
            assert_eq!(error.key, key, "{error}");
        }
    }

    #[test]
    fn fail_open_configurations_are_invalid() {
        type Mutation = Box<dyn Fn(&mut Settings)>;
        let compat = |s: &mut Settings| {
            s.twilio_compat = TwilioCompatSettings {
                enabled: true,
                account_sid: "ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa".into(),
                auth_token: Secret::new("t".repeat(32)),
                service_sid: "VAbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb".into(),
            }
        };
        let cases: Vec<(&str, Mutation)> = vec![
            (
                "twilio_compat.account_sid",
                Box::new(move |s| {
                    compat(s);
                    s.twilio_compat.account_sid.clear()
                }),
            ),
            (
                "twilio_compat.auth_token",
                Box::new(move |s| {
                    compat(s);
                    s.twilio_compat.auth_token = Secret::default()
                }),
            ),
            (
                "twilio_compat.auth_token",
                Box::new(move |s| {
                    compat(s);
                    s.twilio_compat.auth_token = Secret::new("t".repeat(31))
                }),
            ),
            (
                "twilio_compat.service_sid",
                Box::new(move |s| {
                    compat(s);
                    s.twilio_compat.service_sid.clear()
                }),
            ),
            ("api.keys", Box::new(|s| s.api.keys = vec![Secret::new("")])),
            (
                "api.keys",
                Box::new(|s| s.api.keys = vec![Secret::new("k".repeat(15))]),
            ),
            (
                "api.keys",
                Box::new(|s| s.api.keys = vec![Secret::new("a key with spaces 123")]),
            ),
            (
                "server.metrics_token",
                Box::new(|s| s.server.metrics_token = Secret::new("short")),
            ),
            (
                "providers.telnyx.public_key",
                Box::new(|s| {
                    s.providers.telnyx = Some(TelnyxSettings {
                        public_key: "not a key".into(),
                        ..Default::default()
                    })
                }),
            ),
            (
                "server.metrics_bind",
                Box::new(|s| s.server.metrics_bind = "127.0.0.1:8080".into()),
            ),
            (
                "verification.ipv6_prefix_len",
                Box::new(|s| s.verification.ipv6_prefix_len = 0),
            ),
            (
                "server.request_timeout_secs",
                Box::new(|s| s.server.request_timeout_secs = 0),
            ),
            (
                "server.session_ttl_secs",
                Box::new(|s| s.server.session_ttl_secs = 0),
            ),
        ];
        for (key, mutate) in cases {
            let mut s = valid();
            mutate(&mut s);
            let error = s.validate().expect_err(key);
            assert_eq!(error.key, key, "{error}");
        }
        let mut s = valid();
        compat(&mut s);
        s.api.keys = vec![Secret::new("k".repeat(16))];
        s.server.metrics_token = Secret::new("m".repeat(16));
        assert_eq!(s.validate(), Ok(()), "complete credentials are fine");
    }

    fn from_env(vars: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        let vars: Vec<_> = vars
            .iter()
            .map(|(k, v)| ((*k).into(), (*v).into()))
            .collect();
        let builder = apply_env(config::Config::builder(), vars.into_iter())?;
        let settings: Settings = builder
            .build()
            .map_err(from_config_error)?
            .try_deserialize()
            .map_err(from_config_error)?;
        settings.validate()?;
        Ok(settings)
    }

    #[test]
    fn environment_overrides_keep_strings_and_split_lists() {
        let s = from_env(&[
            ("PHONE_VERIFY__SERVER__BIND", "0.0.0.0:9000"),
            ("PHONE_VERIFY__VERIFICATION__CODE_LENGTH", "8"),
            ("PHONE_VERIFY__VERIFICATION__ALLOWED_COUNTRIES", "US, ca"),
            ("PHONE_VERIFY__PROVIDERS__TWILIO__FROM", "+15550002222"),
            ("PHONE_VERIFY__PROVIDERS__TWILIO__AUTH_TOKEN", "007"),
            (
                "PHONE_VERIFY__API__KEYS",
                "key-one-0123456789,key-two-0123456789",
            ),
            ("OTHER", "ignored"),
        ])
        .unwrap();
        assert_eq!(s.server.bind, "0.0.0.0:9000");
        assert_eq!(s.verification.code_length, 8);
        assert_eq!(s.verification.allowed_countries, ["US", "ca"]);
        let twilio = s.providers.twilio.unwrap();
        assert_eq!(twilio.from, "+15550002222");
        assert_eq!(twilio.auth_token.expose(), "007");
        assert_eq!(s.api.keys.len(), 2);
    }

    #[test]
    fn test_numbers_and_country_costs_come_from_the_environment_too() {
        let s = from_env(&[
            (
                "PHONE_VERIFY__VERIFICATION__TEST_NUMBERS",
                "+12015550199=123456, +447400123456 = 654321",
            ),
            ("PHONE_VERIFY__SPEND__COUNTRIES__GB__SMS", "0.04"),
            ("PHONE_VERIFY__FRAUD__MIN_CONVERSION", "0.5"),
        ])
        .unwrap();
        assert_eq!(
            s.verification.test_numbers,
            [
                TestNumber {
                    number: "+12015550199".into(),
                    code: "123456".into()
                },
                TestNumber {
                    number: "+447400123456".into(),
                    code: "654321".into()
                }
            ]
        );
        assert_eq!(s.spend.countries["gb"].sms, Some(0.04));
        assert_eq!(s.fraud.min_conversion, 0.5);
        let error =
            from_env(&[("PHONE_VERIFY__VERIFICATION__TEST_NUMBERS", "+12015550199")]).unwrap_err();
        assert!(
            error.key.starts_with("verification.test_numbers"),
            "{error}"
        );
    }

    #[test]
    fn environment_type_errors_name_the_key() {
        let error = from_env(&[("PHONE_VERIFY__VERIFICATION__TTL_SECS", "ten")]).unwrap_err();
        assert_eq!(error.key, "verification.ttl_secs");
        let error = from_env(&[("PHONE_VERIFY__CHANNELS__SMS", "console,pigeon")]).unwrap_err();
        assert!(error.key.starts_with("channels.sms"), "{error}");
    }

    #[test]
    fn parser_messages_are_folded_into_one_line() {
        let folded = one_line(
            "TOML parse error at line 1, column 14\n  |\n1 | [verification\n  |              ^\nunclosed table, expected `]`\n",
        );
        assert_eq!(
            folded,
            "TOML parse error at line 1, column 14 1 | [verification unclosed table, expected `]`"
        );
    }

    #[test]
    fn cooldown_accepts_zero() {
        let mut s = valid();
        s.verification.resend_cooldown_secs = 0;
        assert_eq!(s.validate(), Ok(()));
    }

    #[test]
    fn https_public_urls_are_recognised() {
        let mut s = valid();
        assert!(!s.is_https());
        s.server.public_url = "https://verify.example.com:8443/path".into();
        assert!(s.is_https());
    }

    #[test]
    fn secrets_do_not_show_in_debug_output() {
        let mut s = valid();
        s.server.secret = Secret::new("a".repeat(40));
        assert!(!format!("{s:?}").contains(&"a".repeat(40)));
    }
}
