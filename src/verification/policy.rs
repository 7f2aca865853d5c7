//! The configured rules, in the types the rules take, and the texts a code travels in.

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use phonenumber::country;

use crate::channels::CallScript;
use crate::code::{Code, CodeFormat};
use crate::config::{Config, DEFAULT_SMS_TEMPLATE};
use crate::domain::Channel;
use crate::domain::guard::{Costs, GuardLimits, SendFacts, prefix_of};
use crate::domain::rules::{CheckLimits, SendLimits};
use crate::i18n::{Arg, Locale};
use crate::phone::PhoneNumber;

/// What a code travels in, in one locale, with `{code}` still to fill in.
#[derive(Debug, Clone, PartialEq, Eq)]
struct MessageTexts {
    sms: String,
    call: String,
}

impl MessageTexts {
    /// The texts for `locale`: its `[verification.templates]` entry, else (SMS only) a
    /// `verification.sms_template` other than the built-in default, else the catalog's.
    fn worded(config: &Config, locale: Locale, minutes: u64) -> Self {
        let v = &config.settings.verification;
        let own = config.templates.get(&locale);
        let fill = |template: &str| {
            template
                .replace("{app_name}", &v.app_name)
                .replace("{minutes}", &minutes.to_string())
        };
        let built_in = |key: &str| {
            locale.format(
                key,
                &[
                    ("app_name", Arg::Text(v.app_name.clone())),
                    ("code", Arg::Text("{code}".into())),
                    ("minutes", Arg::Count(minutes)),
                ],
            )
        };
        let sms = match own.map(|t| t.sms.as_str()).filter(|t| !t.is_empty()) {
            Some(template) => fill(template),
            None if v.sms_template != DEFAULT_SMS_TEMPLATE => fill(&v.sms_template),
            None => built_in("sms"),
        };
        let call = match own.map(|t| t.call.as_str()).filter(|t| !t.is_empty()) {
            Some(template) => fill(template),
            None => built_in("call"),
        };
        Self { sms, call }
    }
}

/// The configured rules, in the types the rules take.
#[derive(Debug, Clone)]
pub struct Policy {
    pub format: CodeFormat,
    pub ttl: Duration,
    pub send: SendLimits,
    pub check: CheckLimits,
    /// IPv6 clients are counted per network of this many leading bits.
    pub ipv6_prefix_len: u8,
    pub default_region: country::Id,
    /// Upper-case ISO 3166 codes; `None`: every country.
    pub allowed_countries: Option<BTreeSet<String>>,
    pub app_name: String,
    /// The locale of a verification nobody asked a language for.
    pub default_locale: Locale,
    /// Each locale's SMS text and call sentence, `Locale as usize`, worded once: only
    /// `{code}` is left to fill in.
    texts: Vec<MessageTexts>,
    /// For the origin-bound last line of SMS bodies (`@HOST #CODE`).
    pub host: String,
    /// `server.public_url` without a trailing slash, when providers can reach it (not
    /// loopback): the base of status callback and call instruction URLs.
    pub callback_base: Option<String>,
    /// Test numbers (E.164) and their fixed codes.
    pub test_numbers: HashMap<String, Code>,
    /// The fraud guard, the country cap and the budget.
    pub guard: GuardLimits,
    pub costs: Costs,
}

impl Policy {
    /// The policy of a validated configuration.
    pub fn new(config: &Config) -> Self {
        let v = &config.settings.verification;
        let secs = Duration::from_secs;
        let minutes = v.ttl_secs.div_ceil(60);
        Self {
            format: CodeFormat {
                alphabet: v.code_alphabet,
                length: v.code_length,
            },
            ttl: secs(v.ttl_secs),
            send: SendLimits {
                cooldown: secs(v.resend_cooldown_secs),
                max_per_number: v.max_sends_per_number,
                number_window: secs(v.send_window_secs),
                max_per_ip: v.max_sends_per_ip,
                ip_window: secs(v.ip_window_secs),
            },
            check: CheckLimits {
                max_attempts: v.max_check_attempts,
                lockout_failures: v.lockout_failures,
                lockout: secs(v.lockout_secs),
            },
            ipv6_prefix_len: v.ipv6_prefix_len,
            default_region: config.default_region,
            allowed_countries: config.allowed_countries.clone(),
            app_name: v.app_name.clone(),
            default_locale: config.default_locale,
            texts: Locale::ALL
                .into_iter()
                .map(|locale| MessageTexts::worded(config, locale, minutes))
                .collect(),
            host: config.public_url.host().to_string(),
            callback_base: config.public_url.callback_base().map(str::to_owned),
            test_numbers: config
                .test_numbers
                .iter()
                .map(|(number, code)| (number.e164().to_string(), code.clone()))
                .collect(),
            guard: config.guard,
            costs: config.costs.clone(),
        }
    }

    /// The fixed code of a test number.
    pub fn test_code(&self, to: &PhoneNumber) -> Option<&Code> {
        self.test_numbers.get(to.e164())
    }

    /// Whether any part of the guard is on.
    pub fn guarded(&self) -> bool {
        self.guard.fraud.is_some()
            || self.guard.country_cap.is_some()
            || self.guard.daily_limit_micros.is_some()
    }

    /// What the guard is told about a send to `to` by `channel`.
    pub fn send_facts(&self, to: &PhoneNumber, channel: Channel) -> SendFacts {
        let country = to.region().unwrap_or("ZZ").to_string();
        let digits = self.guard.fraud.map_or(4, |f| f.prefix_digits);
        SendFacts {
            prefix: prefix_of(to.e164(), digits),
            cost_micros: self.costs.of(&country, channel),
            country,
        }
    }

    /// The policy of `v` behind `public_url`, both valid (tests build policies this way).
    #[cfg(test)]
    pub fn from_settings(v: &crate::config::VerificationSettings, public_url: &str) -> Self {
        let mut settings = crate::config::Settings {
            verification: v.clone(),
            ..Default::default()
        };
        settings.server.public_url = public_url.to_string();
        Self::new(&Config::parse(settings).expect("valid test settings"))
    }

    /// Whether codes may be sent to `to`'s country.
    pub(super) fn country_allowed(&self, to: &PhoneNumber) -> bool {
        match &self.allowed_countries {
            None => true,
            Some(allowed) => to.region().is_some_and(|r| allowed.contains(r)),
        }
    }

    /// The SMS text in `locale`: its template, a blank line, then `@HOST #CODE` with no
    /// newline after.
    pub fn sms_body(&self, code: &Code, locale: Locale) -> String {
        let text = self.texts[locale as usize]
            .sms
            .replace("{code}", code.expose());
        [&text, "\n\n@", &self.host, " #", code.expose()].concat()
    }

    /// What a call says in `locale`, in that language's voice.
    pub fn call_script(&self, code: &Code, locale: Locale) -> CallScript {
        CallScript {
            sentence: self.texts[locale as usize].call.clone(),
            symbols: code.expose().chars().map(String::from).collect(),
            language: locale.tts_language(),
        }
    }

    /// The number of minutes a code lives, for pages.
    pub fn ttl_minutes(&self) -> u64 {
        self.ttl.as_secs().div_ceil(60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::code::CodeAlphabet;
    use crate::config::VerificationSettings;

    fn policy() -> Policy {
        Policy::from_settings(
            &VerificationSettings::default(),
            "https://verify.example.com",
        )
    }

    #[test]
    fn sms_bodies_end_with_the_origin_bound_line_and_no_newline() {
        let p = policy();
        let code = p.format.parse("012345").unwrap();
        let body = p.sms_body(&code, Locale::En);
        assert_eq!(
            body,
            "Your phone-verify code is 012345. It expires in 10 minutes.\n\n@verify.example.com #012345"
        );
    }

    #[test]
    fn calls_read_the_code_symbol_by_symbol_twice() {
        let mut p = policy();
        p.format.alphabet = CodeAlphabet::Hex;
        let text = p
            .call_script(&p.format.parse("1a2b3c").unwrap(), Locale::En)
            .text();
        assert_eq!(
            text,
            "Your phone-verify code is 1, A, 2, B, 3, C. Your phone-verify code is 1, A, 2, B, 3, C."
        );
    }

    #[test]
    fn the_sms_host_is_the_public_host_without_scheme_port_or_path() {
        let p = Policy::from_settings(
            &VerificationSettings::default(),
            "https://verify.example.com:8443/path",
        );
        assert_eq!(p.host, "verify.example.com");
    }

    #[test]
    fn callbacks_are_requested_only_when_providers_can_reach_us() {
        let settings = VerificationSettings::default();
        assert_eq!(
            Policy::from_settings(&settings, "https://v.example.com/")
                .callback_base
                .as_deref(),
            Some("https://v.example.com")
        );
        for local in [
            "http://127.0.0.1:8080",
            "http://localhost:8080",
            "http://[::1]:8080",
        ] {
            assert_eq!(
                Policy::from_settings(&settings, local).callback_base,
                None,
                "{local}"
            );
        }
    }

    #[test]
    fn allowed_countries_restrict_by_region() {
        let settings = VerificationSettings {
            allowed_countries: vec!["us".into(), "CA".into()],
            ..Default::default()
        };
        let p = Policy::from_settings(&settings, "http://h");
        assert!(p.country_allowed(&PhoneNumber::from_e164("+12015550123").unwrap()));
        assert!(!p.country_allowed(&PhoneNumber::from_e164("+447400123456").unwrap()));
        assert!(policy().country_allowed(&PhoneNumber::from_e164("+447400123456").unwrap()));
    }
}
