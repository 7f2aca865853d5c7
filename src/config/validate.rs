//! The rules a configuration must follow, and the values parsed from it once. `Config`
//! is what the rest of the service is built from: nothing downstream parses a setting
//! again or falls back silently.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;

use phonenumber::country;

use super::{ConfigError, LocaleTemplates, Secret, Settings, StoreBackend, providers};
use crate::code::{Code, CodeFormat};
use crate::domain::guard::{Costs, FraudLimits, GuardLimits, micros};
use crate::i18n::Locale;
use crate::phone::PhoneNumber;

/// The shortest `twilio_compat.auth_token` accepted.
pub const MIN_AUTH_TOKEN_CHARS: usize = 32;
/// The shortest bearer key (`api.keys`, `server.metrics_token`) accepted.
pub const MIN_BEARER_KEY_CHARS: usize = 16;
/// Codes are valid for 10 minutes at most (NIST SP 800-63B).
const MAX_TTL_SECS: u64 = 600;
/// Consecutive failures before a lockout: at most 100 (NIST SP 800-63B).
const MAX_LOCKOUT_FAILURES: u32 = 100;

/// A validated configuration: the settings as written, and every value that needed
/// parsing, parsed.
#[derive(Debug, Clone)]
pub struct Config {
    pub settings: Settings,
    pub bind: SocketAddr,
    pub public_url: PublicUrl,
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// `server.metrics_bind`, when set.
    pub metrics_bind: Option<SocketAddr>,
    pub default_region: country::Id,
    /// Upper-case ISO 3166 codes; `None` means every country.
    pub allowed_countries: Option<BTreeSet<String>>,
    pub key_prefix: KeyPrefix,
    /// `verification.test_numbers`: each number and its fixed code.
    pub test_numbers: Vec<(PhoneNumber, Code)>,
    /// `[fraud]` and `[spend]`, in the types the guard takes.
    pub guard: GuardLimits,
    pub costs: Costs,
    /// `[oidc]`, when enabled.
    pub oidc: Option<OidcConfig>,
    /// `verification.default_locale`, as one of the locales we have texts in.
    pub default_locale: Locale,
    /// `[verification.templates.LOCALE]`, by locale.
    pub templates: BTreeMap<Locale, LocaleTemplates>,
}

/// `[oidc]`, validated.
#[derive(Debug, Clone)]
pub struct OidcConfig {
    /// The issuer, without a trailing slash.
    pub issuer: String,
    /// The configured signing key; `None`: derive one from `server.secret`.
    pub signing_key: Option<p256::SecretKey>,
    pub id_token_ttl: std::time::Duration,
    pub code_ttl: std::time::Duration,
    pub clients: Vec<OidcClientConfig>,
}

/// One relying party.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OidcClientConfig {
    pub client_id: String,
    /// `None`: a public client, which must use PKCE.
    pub client_secret: Option<Secret>,
    pub redirect_uris: Vec<String>,
    pub name: Option<String>,
}

/// `server.public_url`, parsed: how people and providers reach the service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicUrl {
    /// The normalised URL without a trailing slash (`https://verify.example.com`).
    base: String,
    /// `scheme://host[:port]`: what the URLs providers sign start with.
    origin: String,
    host: String,
    https: bool,
    /// Whether providers can call it (not a loopback address or `localhost`).
    reachable: bool,
}

impl PublicUrl {
    /// Parses an http(s) URL with a host. Scheme and host are case-insensitive.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let url = url::Url::parse(raw.trim())
            .map_err(|_| "must be an http(s) URL, e.g. https://verify.example.com".to_string())?;
        let https = match url.scheme() {
            "https" => true,
            "http" => false,
            _ => return Err("must be an http(s) URL, e.g. https://verify.example.com".into()),
        };
        let host = url
            .host_str()
            .ok_or_else(|| "must name a host, e.g. https://verify.example.com".to_string())?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        let reachable = match url.host() {
            Some(url::Host::Domain(d)) => d != "localhost" && !d.ends_with(".localhost"),
            Some(url::Host::Ipv4(ip)) => !ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => !ip.is_loopback(),
            None => false,
        };
        Ok(Self {
            base: url.as_str().trim_end_matches('/').to_string(),
            origin: url.origin().ascii_serialization(),
            host,
            https,
            reachable,
        })
    }

    /// `scheme://host[:port]`.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The host alone, without scheme, port or path (the `@HOST` of SMS bodies).
    pub fn host(&self) -> &str {
        &self.host
    }

    /// Whether people reach the service over https (Secure, `__Host-` cookies, HSTS).
    pub fn is_https(&self) -> bool {
        self.https
    }

    /// The base of callback and call-instruction URLs, when providers can reach it.
    pub fn callback_base(&self) -> Option<&str> {
        self.reachable.then_some(self.base.as_str())
    }
}

/// `store.key_prefix`: prepended to every Redis key. Braces would change a key's hash
/// tag (and so its cluster slot) and whitespace has no business in a key, so neither is
/// allowed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyPrefix(String);

impl KeyPrefix {
    pub fn parse(raw: &str) -> Result<Self, String> {
        if raw.len() > 64 {
            return Err("must be at most 64 characters".into());
        }
        if let Some(bad) = raw
            .chars()
            .find(|c| matches!(c, '{' | '}') || c.is_whitespace() || c.is_control())
        {
            return Err(format!(
                "must not contain {bad:?} (braces, whitespace and control characters are refused)"
            ));
        }
        Ok(Self(raw.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Parses `10.0.0.0/8`, or a bare address meaning just that host.
pub fn parse_cidr(raw: &str) -> Result<ipnet::IpNet, String> {
    raw.parse::<ipnet::IpNet>()
        .or_else(|_| raw.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
        .map_err(|_| "not a CIDR such as 10.0.0.0/8 or an IP address".to_string())
}

fn at_least(key: &str, value: u64, min: u64) -> Result<(), ConfigError> {
    if value < min {
        return Err(ConfigError::new(key, format!("must be at least {min}")));
    }
    Ok(())
}

/// A bearer key: long enough, and sendable in a header. `optional`: empty means unset.
fn bearer_token(key: &str, value: &Secret, optional: bool) -> Result<(), ConfigError> {
    let raw = value.expose();
    if optional && raw.is_empty() {
        return Ok(());
    }
    if raw.chars().count() < MIN_BEARER_KEY_CHARS {
        return Err(ConfigError::new(
            key,
            format!(
                "must be at least {MIN_BEARER_KEY_CHARS} characters (generate one with: openssl rand -hex 24)"
            ),
        ));
    }
    if !raw.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(ConfigError::new(
            key,
            "may hold only visible ASCII characters (no spaces)",
        ));
    }
    Ok(())
}

fn region(key: &str, raw: &str) -> Result<country::Id, ConfigError> {
    crate::phone::parse_region(raw)
        .ok_or_else(|| ConfigError::new(key, format!("{raw:?} is not an ISO 3166 alpha-2 region")))
}

impl Config {
    /// Checks every rule a type cannot express and parses what needs parsing. The first
    /// broken rule is reported, naming its key.
    pub fn parse(settings: Settings) -> Result<Self, ConfigError> {
        let (bind, public_url, trusted_proxies, metrics_bind) = parse_server(&settings)?;
        let (default_region, allowed_countries) = parse_verification(&settings)?;
        let test_numbers = parse_test_numbers(&settings, default_region)?;
        let (default_locale, templates) = parse_locales(&settings)?;
        let guard = parse_guard(&settings)?;
        let costs = parse_costs(&settings)?;
        let oidc = parse_oidc(&settings, &public_url)?;
        check_channels(&settings)?;
        check_front_ends(&settings)?;
        let key_prefix = KeyPrefix::parse(&settings.store.key_prefix)
            .map_err(|message| ConfigError::new("store.key_prefix", message))?;
        if settings.store.backend == StoreBackend::Redis {
            if settings.store.redis_url.is_empty() {
                return Err(ConfigError::new("store.redis_url", "is required for redis"));
            }
            if settings.server.secret.is_empty() {
                return Err(ConfigError::new(
                    "server.secret",
                    "is required with the redis store (all instances must share it)",
                ));
            }
        }
        Ok(Self {
            settings,
            bind,
            public_url,
            trusted_proxies,
            metrics_bind,
            default_region,
            allowed_countries,
            key_prefix,
            test_numbers,
            guard,
            costs,
            oidc,
            default_locale,
            templates,
        })
    }
}

impl Settings {
    /// Whether these settings make a valid `Config`.
    pub fn validate(&self) -> Result<(), ConfigError> {
        Config::parse(self.clone()).map(drop)
    }

    /// Whether `server.public_url` is https (Secure, `__Host-` cookies, HSTS).
    pub fn is_https(&self) -> bool {
        PublicUrl::parse(&self.server.public_url).is_ok_and(|u| u.is_https())
    }
}

type ServerParts = (SocketAddr, PublicUrl, Vec<ipnet::IpNet>, Option<SocketAddr>);

fn parse_server(settings: &Settings) -> Result<ServerParts, ConfigError> {
    let server = &settings.server;
    let bind = server.bind.parse::<SocketAddr>().map_err(|_| {
        ConfigError::new(
            "server.bind",
            "must be an address and port, e.g. 127.0.0.1:8080",
        )
    })?;
    let public_url = PublicUrl::parse(&server.public_url)
        .map_err(|message| ConfigError::new("server.public_url", message))?;
    if !server.secret.is_empty() && server.secret.expose().len() < 32 {
        return Err(ConfigError::new(
            "server.secret",
            "must be at least 32 bytes (or empty for a random per-process secret)",
        ));
    }
    let trusted_proxies = server
        .trusted_proxies
        .iter()
        .map(|cidr| {
            parse_cidr(cidr).map_err(|message| {
                ConfigError::new("server.trusted_proxies", format!("{cidr:?}: {message}"))
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    at_least("server.session_ttl_secs", server.session_ttl_secs, 1)?;
    at_least(
        "server.request_timeout_secs",
        server.request_timeout_secs,
        1,
    )?;
    at_least("server.max_connections", server.max_connections as u64, 1)?;
    bearer_token("server.metrics_token", &server.metrics_token, true)?;
    let metrics_bind = match server.metrics_bind.as_str() {
        "" => None,
        raw => match raw.parse::<SocketAddr>() {
            Ok(addr) if addr.port() == 0 || addr != bind => Some(addr),
            Ok(_) => {
                return Err(ConfigError::new(
                    "server.metrics_bind",
                    "must differ from server.bind (leave it empty to serve /metrics there)",
                ));
            }
            Err(_) => {
                return Err(ConfigError::new(
                    "server.metrics_bind",
                    "must be an address and port, e.g. 127.0.0.1:9100, or empty",
                ));
            }
        },
    };
    Ok((bind, public_url, trusted_proxies, metrics_bind))
}

fn parse_verification(
    settings: &Settings,
) -> Result<(country::Id, Option<BTreeSet<String>>), ConfigError> {
    let v = &settings.verification;
    let key = |name: &str| format!("verification.{name}");
    if v.app_name.trim().is_empty() {
        return Err(ConfigError::new(key("app_name"), "must not be empty"));
    }
    let (min, max) = v.code_alphabet.length_bounds();
    if v.code_length < min || v.code_length > max {
        return Err(ConfigError::new(
            key("code_length"),
            format!(
                "must be between {min} and {max} for code_alphabet = \"{}\" (codes need at least 20 bits)",
                v.code_alphabet.as_str()
            ),
        ));
    }
    at_least(&key("ttl_secs"), v.ttl_secs, 1)?;
    if v.ttl_secs > MAX_TTL_SECS {
        return Err(ConfigError::new(
            key("ttl_secs"),
            "must be at most 600 (NIST SP 800-63B: codes are valid for 10 minutes at most)",
        ));
    }
    at_least(&key("retain_ended_secs"), v.retain_ended_secs, 1)?;
    at_least(&key("max_check_attempts"), v.max_check_attempts.into(), 1)?;
    at_least(&key("lockout_failures"), v.lockout_failures.into(), 1)?;
    if v.lockout_failures > MAX_LOCKOUT_FAILURES {
        return Err(ConfigError::new(
            key("lockout_failures"),
            "must be at most 100 (NIST SP 800-63B allows no more consecutive failures)",
        ));
    }
    at_least(&key("lockout_secs"), v.lockout_secs, 1)?;
    at_least(
        &key("max_sends_per_number"),
        v.max_sends_per_number.into(),
        1,
    )?;
    at_least(&key("send_window_secs"), v.send_window_secs, 1)?;
    at_least(&key("max_sends_per_ip"), v.max_sends_per_ip.into(), 1)?;
    at_least(&key("ip_window_secs"), v.ip_window_secs, 1)?;
    if !(1..=128).contains(&v.ipv6_prefix_len) {
        return Err(ConfigError::new(
            key("ipv6_prefix_len"),
            "must be between 1 and 128 (64 counts each /64 network as one client)",
        ));
    }
    let default_region = region(&key("default_region"), &v.default_region)?;
    if v.allowed_countries.is_empty() {
        return Err(ConfigError::new(
            key("allowed_countries"),
            "must list at least one country, or \"*\" for all",
        ));
    }
    let mut allowed = BTreeSet::new();
    for country in v.allowed_countries.iter().filter(|c| *c != "*") {
        region(&key("allowed_countries"), country)?;
        allowed.insert(country.to_ascii_uppercase());
    }
    let allowed_countries = (!v.allowed_countries.iter().any(|c| c == "*")).then_some(allowed);
    if !v.sms_template.contains("{code}") {
        return Err(ConfigError::new(key("sms_template"), "must contain {code}"));
    }
    Ok((default_region, allowed_countries))
}

/// A locale named in the configuration must be one we have texts in: a regional tag of
/// one (`es-MX`) is read as its language.
fn supported_locale(key: &str, tag: &str) -> Result<Locale, ConfigError> {
    let supported = Locale::ALL.map(Locale::tag).join(", ");
    let parsed = language_tags::LanguageTag::parse(tag.trim())
        .map_err(|_| ConfigError::new(key, format!("{tag:?} is not a BCP 47 language tag")))?;
    Locale::from_language(parsed.primary_language()).ok_or_else(|| {
        ConfigError::new(
            key,
            format!("{tag:?} has no texts; the locales are {supported}"),
        )
    })
}

fn parse_locales(
    settings: &Settings,
) -> Result<(Locale, BTreeMap<Locale, LocaleTemplates>), ConfigError> {
    let v = &settings.verification;
    let default = supported_locale("verification.default_locale", &v.default_locale)?;
    let mut templates = BTreeMap::new();
    for (tag, texts) in &v.templates {
        let key = format!("verification.templates.{tag}");
        let locale = supported_locale(&key, tag)?;
        if locale.tag() != tag.as_str() {
            return Err(ConfigError::new(
                key,
                format!("name the locale by its language alone: [verification.templates.{locale}]"),
            ));
        }
        for (field, text) in [("sms", &texts.sms), ("call", &texts.call)] {
            if !text.is_empty() && !text.contains("{code}") {
                return Err(ConfigError::new(
                    format!("{key}.{field}"),
                    "must contain {code}",
                ));
            }
        }
        templates.insert(locale, texts.clone());
    }
    Ok((default, templates))
}

fn parse_test_numbers(
    settings: &Settings,
    region: country::Id,
) -> Result<Vec<(PhoneNumber, Code)>, ConfigError> {
    let v = &settings.verification;
    let format = CodeFormat {
        alphabet: v.code_alphabet,
        length: v.code_length,
    };
    let key = "verification.test_numbers";
    let mut parsed: Vec<(PhoneNumber, Code)> = Vec::new();
    for entry in &v.test_numbers {
        let number = PhoneNumber::parse(&entry.number, region).map_err(|e| {
            ConfigError::new(
                key,
                format!("{:?} is not a phone number: {e}", entry.number),
            )
        })?;
        let code = format.parse(&entry.code).map_err(|_| {
            ConfigError::new(
                key,
                format!(
                    "the code of {} must be {} {} characters, like every code",
                    number.masked(),
                    v.code_length,
                    v.code_alphabet.as_str()
                ),
            )
        })?;
        if parsed.iter().any(|(n, _)| n == &number) {
            return Err(ConfigError::new(
                key,
                format!("{} is listed twice", number.masked()),
            ));
        }
        parsed.push((number, code));
    }
    Ok(parsed)
}

fn parse_guard(settings: &Settings) -> Result<GuardLimits, ConfigError> {
    let f = &settings.fraud;
    let key = |name: &str| format!("fraud.{name}");
    at_least(&key("window_secs"), f.window_secs, 1)?;
    at_least(&key("min_sends"), f.min_sends.into(), 1)?;
    if !(0.0..=1.0).contains(&f.min_conversion) {
        return Err(ConfigError::new(
            key("min_conversion"),
            "must be between 0 and 1 (approvals per send)",
        ));
    }
    at_least(&key("block_secs"), f.block_secs, 1)?;
    if !(1..=8).contains(&f.prefix_digits) {
        return Err(ConfigError::new(
            key("prefix_digits"),
            "must be between 1 and 8 (a prefix is the number without its last digits)",
        ));
    }
    let daily = settings.spend.daily_limit;
    if !daily.is_finite() || daily < 0.0 {
        return Err(ConfigError::new(
            "spend.daily_limit",
            "must be 0 (no budget) or a positive amount",
        ));
    }
    Ok(GuardLimits {
        fraud: f.enabled.then(|| FraudLimits {
            window: std::time::Duration::from_secs(f.window_secs),
            min_sends: f.min_sends,
            min_conversion: f.min_conversion,
            block: std::time::Duration::from_secs(f.block_secs),
            prefix_digits: f.prefix_digits,
        }),
        country_cap: (f.max_sends_per_country_per_hour > 0)
            .then_some(f.max_sends_per_country_per_hour),
        daily_limit_micros: (daily > 0.0).then(|| micros(daily)),
    })
}

fn cost(key: &str, amount: f64) -> Result<u64, ConfigError> {
    if !amount.is_finite() || amount < 0.0 {
        return Err(ConfigError::new(key, "must be a cost of 0 or more"));
    }
    Ok(micros(amount))
}

fn parse_costs(settings: &Settings) -> Result<Costs, ConfigError> {
    let spend = &settings.spend;
    let currency = spend.currency.trim();
    if currency.len() != 3 || !currency.bytes().all(|b| b.is_ascii_alphabetic()) {
        return Err(ConfigError::new(
            "spend.currency",
            "must be an ISO 4217 code such as USD or EUR",
        ));
    }
    let mut countries = std::collections::BTreeMap::new();
    for (code, own) in &spend.countries {
        let key = format!("spend.countries.{code}");
        region(&key, code)?;
        let sms = own
            .sms
            .map(|a| cost(&format!("{key}.sms"), a))
            .transpose()?;
        let call = own
            .call
            .map(|a| cost(&format!("{key}.call"), a))
            .transpose()?;
        countries.insert(code.to_ascii_uppercase(), (sms, call));
    }
    Ok(Costs {
        sms_micros: cost("spend.sms_cost", spend.sms_cost)?,
        call_micros: cost("spend.call_cost", spend.call_cost)?,
        countries,
    })
}

fn parse_oidc(
    settings: &Settings,
    public_url: &PublicUrl,
) -> Result<Option<OidcConfig>, ConfigError> {
    let o = &settings.oidc;
    if !o.enabled {
        return Ok(None);
    }
    let issuer = if o.issuer.trim().is_empty() {
        public_url.base.clone()
    } else {
        let parsed = PublicUrl::parse(&o.issuer)
            .map_err(|message| ConfigError::new("oidc.issuer", message))?;
        if o.issuer.contains(['?', '#']) {
            return Err(ConfigError::new(
                "oidc.issuer",
                "must have no query or fragment",
            ));
        }
        parsed.base
    };
    let signing_key = if o.signing_key.is_empty() {
        None
    } else {
        use p256::pkcs8::DecodePrivateKey as _;
        Some(
            p256::SecretKey::from_pkcs8_pem(o.signing_key.expose().trim()).map_err(|_| {
                ConfigError::new(
                    "oidc.signing_key",
                    "must be the PKCS#8 PEM of a P-256 key (openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256)",
                )
            })?,
        )
    };
    at_least("oidc.id_token_ttl_secs", o.id_token_ttl_secs, 1)?;
    at_least("oidc.code_ttl_secs", o.code_ttl_secs, 1)?;
    if o.clients.is_empty() {
        return Err(ConfigError::new(
            "oidc.clients",
            "must list at least one client when oidc.enabled",
        ));
    }
    let mut clients: Vec<OidcClientConfig> = Vec::new();
    for (i, client) in o.clients.iter().enumerate() {
        let key = |field: &str| format!("oidc.clients[{i}].{field}");
        let id = client.client_id.trim();
        if id.is_empty() || !id.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(ConfigError::new(
                key("client_id"),
                "must be visible ASCII without spaces",
            ));
        }
        if clients.iter().any(|c| c.client_id == id) {
            return Err(ConfigError::new(
                key("client_id"),
                format!("{id:?} is used by another client"),
            ));
        }
        bearer_token(&key("client_secret"), &client.client_secret, true)?;
        if client.redirect_uris.is_empty() {
            return Err(ConfigError::new(
                key("redirect_uris"),
                "must list at least one URI",
            ));
        }
        for uri in &client.redirect_uris {
            check_redirect_uri(uri).map_err(|message| {
                ConfigError::new(key("redirect_uris"), format!("{uri:?}: {message}"))
            })?;
        }
        clients.push(OidcClientConfig {
            client_id: id.to_string(),
            client_secret: (!client.client_secret.is_empty()).then(|| client.client_secret.clone()),
            redirect_uris: client.redirect_uris.clone(),
            name: Some(client.name.trim().to_string()).filter(|n| !n.is_empty()),
        });
    }
    Ok(Some(OidcConfig {
        issuer,
        signing_key,
        id_token_ttl: std::time::Duration::from_secs(o.id_token_ttl_secs),
        code_ttl: std::time::Duration::from_secs(o.code_ttl_secs),
        clients,
    }))
}

/// A redirect URI a client may register: https, or http to a loopback address (a native
/// or development client), with no fragment.
fn check_redirect_uri(raw: &str) -> Result<(), String> {
    let url = url::Url::parse(raw).map_err(|_| "is not an absolute URL".to_string())?;
    if url.fragment().is_some() {
        return Err("must have no fragment".into());
    }
    let loopback = match url.host() {
        Some(url::Host::Domain(d)) => d == "localhost",
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    };
    match url.scheme() {
        "https" if url.host().is_some() => Ok(()),
        "http" if loopback => Ok(()),
        "http" => Err("must be https (http only to a loopback address)".into()),
        _ => Err("must be an https URL".into()),
    }
}

fn check_channels(settings: &Settings) -> Result<(), ConfigError> {
    for (key, list) in [
        ("channels.sms", &settings.channels.sms),
        ("channels.call", &settings.channels.call),
    ] {
        if list.is_empty() {
            return Err(ConfigError::new(key, "must name at least one provider"));
        }
        for provider in list {
            providers::check_provider(*provider, settings, key)?;
        }
    }
    providers::check_owned_codes(settings)
}

/// A front end that is on must have its credentials: an empty or short secret would let
/// anyone in.
fn check_front_ends(settings: &Settings) -> Result<(), ConfigError> {
    let compat = &settings.twilio_compat;
    if compat.enabled {
        if compat.account_sid.trim().is_empty() {
            return Err(ConfigError::new(
                "twilio_compat.account_sid",
                "is required when twilio_compat.enabled (the Basic auth user of /v2)",
            ));
        }
        if compat.auth_token.expose().chars().count() < MIN_AUTH_TOKEN_CHARS {
            return Err(ConfigError::new(
                "twilio_compat.auth_token",
                format!(
                    "must be at least {MIN_AUTH_TOKEN_CHARS} characters when twilio_compat.enabled \
                     (generate one with: openssl rand -hex 32)"
                ),
            ));
        }
        if compat.service_sid.trim().is_empty() {
            return Err(ConfigError::new(
                "twilio_compat.service_sid",
                "is required when twilio_compat.enabled (the one VA... id accepted in paths)",
            ));
        }
    }
    for key in &settings.api.keys {
        bearer_token("api.keys", key, false)?;
    }
    if let Some(telnyx) = &settings.providers.telnyx
        && !telnyx.public_key.is_empty()
        && !providers::telnyx_public_key_valid(&telnyx.public_key)
    {
        return Err(ConfigError::new(
            "providers.telnyx.public_key",
            "must be the base64 Ed25519 public key from the Telnyx portal",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_urls_are_parsed_case_insensitively() {
        let url = PublicUrl::parse("HTTPS://Verify.Example.COM:8443/").unwrap();
        assert!(url.is_https());
        assert_eq!(url.host(), "verify.example.com");
        assert_eq!(url.origin(), "https://verify.example.com:8443");
        assert_eq!(url.callback_base(), Some("https://verify.example.com:8443"));
        assert!(!PublicUrl::parse("http://x.example").unwrap().is_https());
        for bad in ["ftp://x", "https://", "verify.example.com", ""] {
            assert!(PublicUrl::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn loopback_public_urls_get_no_callbacks() {
        for local in [
            "http://127.0.0.1:8080",
            "http://localhost:8080",
            "http://[::1]:8080",
            "http://app.localhost",
        ] {
            assert_eq!(
                PublicUrl::parse(local).unwrap().callback_base(),
                None,
                "{local}"
            );
        }
        assert_eq!(PublicUrl::parse("http://[::1]:8080").unwrap().host(), "::1");
    }

    #[test]
    fn key_prefixes_cannot_move_keys_to_another_slot() {
        assert_eq!(KeyPrefix::parse("pv:").unwrap().as_str(), "pv:");
        assert!(KeyPrefix::parse("").is_ok());
        for bad in ["pv{:", "pv}:", "p v:", "pv:\n", &"p".repeat(65)] {
            assert!(KeyPrefix::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn guard_budget_and_test_number_settings_are_checked_naming_the_key() {
        use super::super::{CountryCost, TestNumber};
        type Mutation = Box<dyn Fn(&mut Settings)>;
        let cases: Vec<(&str, Mutation)> = vec![
            (
                "fraud.min_conversion",
                Box::new(|s| s.fraud.min_conversion = 1.5),
            ),
            (
                "fraud.min_conversion",
                Box::new(|s| s.fraud.min_conversion = -0.1),
            ),
            (
                "fraud.prefix_digits",
                Box::new(|s| s.fraud.prefix_digits = 0),
            ),
            ("fraud.window_secs", Box::new(|s| s.fraud.window_secs = 0)),
            ("fraud.min_sends", Box::new(|s| s.fraud.min_sends = 0)),
            ("fraud.block_secs", Box::new(|s| s.fraud.block_secs = 0)),
            (
                "spend.daily_limit",
                Box::new(|s| s.spend.daily_limit = -1.0),
            ),
            (
                "spend.currency",
                Box::new(|s| s.spend.currency = "US".into()),
            ),
            ("spend.sms_cost", Box::new(|s| s.spend.sms_cost = f64::NAN)),
            (
                "spend.countries.XX",
                Box::new(|s| {
                    s.spend
                        .countries
                        .insert("XX".into(), CountryCost::default());
                }),
            ),
            (
                "spend.countries.GB.call",
                Box::new(|s| {
                    s.spend.countries.insert(
                        "GB".into(),
                        CountryCost {
                            sms: None,
                            call: Some(-2.0),
                        },
                    );
                }),
            ),
            (
                "verification.test_numbers",
                Box::new(|s| {
                    s.verification.test_numbers = vec![TestNumber {
                        number: "+12015550199".into(),
                        code: "12345".into(),
                    }]
                }),
            ),
            (
                "verification.test_numbers",
                Box::new(|s| {
                    s.verification.test_numbers = vec![TestNumber {
                        number: "not a number".into(),
                        code: "123456".into(),
                    }]
                }),
            ),
            (
                "verification.test_numbers",
                Box::new(|s| {
                    let entry = TestNumber {
                        number: "+12015550199".into(),
                        code: "123456".into(),
                    };
                    s.verification.test_numbers = vec![entry.clone(), entry];
                }),
            ),
        ];
        for (key, mutate) in cases {
            let mut s = Settings::default();
            mutate(&mut s);
            let error = Config::parse(s).expect_err(key);
            assert_eq!(error.key, key, "{error}");
        }
        let mut s = Settings::default();
        s.verification.test_numbers = vec![TestNumber {
            number: "(201) 555-0199".into(),
            code: "123456".into(),
        }];
        s.spend.daily_limit = 25.0;
        s.spend.countries.insert(
            "gb".into(),
            CountryCost {
                sms: Some(0.04),
                call: None,
            },
        );
        s.fraud.max_sends_per_country_per_hour = 100;
        let config = Config::parse(s).unwrap();
        assert_eq!(config.test_numbers[0].0.e164(), "+12015550199");
        assert_eq!(config.test_numbers[0].1.expose(), "123456");
        assert_eq!(config.guard.daily_limit_micros, Some(25_000_000));
        assert_eq!(config.guard.country_cap, Some(100));
        assert_eq!(config.costs.countries["GB"], (Some(40_000), None));
        let mut off = Settings::default();
        off.fraud.enabled = false;
        let off = Config::parse(off).unwrap();
        assert!(off.guard.fraud.is_none() && off.guard.daily_limit_micros.is_none());
    }

    #[test]
    fn the_parsed_config_holds_what_the_settings_say() {
        let mut settings = Settings::default();
        settings.server.public_url = "HTTPS://verify.example.com".into();
        settings.server.trusted_proxies = vec!["10.0.0.0/8".into(), "192.0.2.1".into()];
        settings.verification.default_region = "gb".into();
        settings.verification.allowed_countries = vec!["gb".into(), "IE".into()];
        settings.store.key_prefix = "{pv}".into();
        let error = Config::parse(settings.clone()).unwrap_err();
        assert_eq!(error.key, "store.key_prefix");
        settings.store.key_prefix = "app1:".into();
        let config = Config::parse(settings).unwrap();
        assert!(config.public_url.is_https());
        assert_eq!(config.trusted_proxies.len(), 2);
        assert_eq!(config.default_region, country::Id::GB);
        assert_eq!(
            config.allowed_countries,
            Some(["GB".to_string(), "IE".to_string()].into())
        );
        assert_eq!(config.key_prefix.as_str(), "app1:");
        assert_eq!(
            Config::parse(Settings::default())
                .unwrap()
                .allowed_countries,
            None
        );
    }
}
