//! Languages. A verification has a locale, chosen once when it starts (the API's
//! `locale`, `/v2`'s `Locale`, the browser's `Accept-Language` on the pages, else
//! `verification.default_locale`); each page is drawn in the locale its request asks for.
//!
//! Tags are read by `language-tags` (RFC 5646 well-formedness: a malformed tag is refused,
//! a well-formed one we have no texts for falls back), and the texts live in Fluent
//! catalogs (`locales/*.ftl`, compiled in) read by `fluent-bundle`, which also knows each
//! language's plural rules.

use std::fmt;
use std::sync::LazyLock;

use fluent_bundle::concurrent::FluentBundle;
use fluent_bundle::{FluentArgs, FluentResource, FluentValue};
use language_tags::LanguageTag;
use serde::{Deserialize, Serialize};

/// A language phone-verify has texts in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub enum Locale {
    #[default]
    En,
    Es,
    Fr,
    De,
    Pt,
    It,
}

/// A locale that is not a well-formed BCP 47 language tag.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a BCP 47 language tag (like en, es-MX or pt-BR)")]
pub struct InvalidLocale(pub String);

impl Locale {
    pub const ALL: [Self; 6] = [Self::En, Self::Es, Self::Fr, Self::De, Self::Pt, Self::It];

    /// The tag it is known by: `en`, `es`, ...
    pub fn tag(self) -> &'static str {
        match self {
            Self::En => "en",
            Self::Es => "es",
            Self::Fr => "fr",
            Self::De => "de",
            Self::Pt => "pt",
            Self::It => "it",
        }
    }

    /// The locale whose primary language subtag is `language`, if we have it.
    pub fn from_language(language: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|l| l.tag().eq_ignore_ascii_case(language))
    }

    /// The locale for `tag`: its language when we have it (`es-MX` is Spanish), else
    /// `default`. Only a malformed tag is refused.
    pub fn resolve(tag: &str, default: Self) -> Result<Self, InvalidLocale> {
        let parsed = LanguageTag::parse(tag.trim()).map_err(|_| InvalidLocale(tag.into()))?;
        Ok(Self::from_language(parsed.primary_language()).unwrap_or(default))
    }

    /// The first language of an `Accept-Language` header (RFC 9110 §12.5.4) we have texts
    /// in, by the weights the browser gave (`q=0` means "not this one"), else `default`.
    /// Entries that are not language tags are skipped, never an error.
    pub fn negotiate(accept_language: Option<&str>, default: Self) -> Self {
        let Some(header) = accept_language else {
            return default;
        };
        let mut ranges: Vec<(f32, usize, &str)> = header
            .split(',')
            .take(32)
            .enumerate()
            .filter_map(|(order, item)| {
                let mut parts = item.split(';');
                let range = parts.next()?.trim();
                let weight = match parts.find_map(|p| {
                    let p = p.trim();
                    p.strip_prefix("q=").or_else(|| p.strip_prefix("Q="))
                }) {
                    Some(q) => q.trim().parse::<f32>().ok()?,
                    None => 1.0,
                };
                (weight > 0.0 && !range.is_empty()).then_some((weight, order, range))
            })
            .collect();
        ranges.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        ranges
            .into_iter()
            .find_map(|(_, _, range)| {
                let tag = LanguageTag::parse(range).ok()?;
                Self::from_language(tag.primary_language())
            })
            .unwrap_or(default)
    }

    /// The `language` attribute a call's `<Say>` (Twilio, SignalWire, Telnyx TeXML) or
    /// `<Speak>` (Plivo) gets; `None` for English, every provider's default voice.
    pub fn tts_language(self) -> Option<&'static str> {
        match self {
            Self::En => None,
            Self::Es => Some("es-ES"),
            Self::Fr => Some("fr-FR"),
            Self::De => Some("de-DE"),
            Self::Pt => Some("pt-BR"),
            Self::It => Some("it-IT"),
        }
    }

    /// The message `key` in this language, with no arguments.
    pub fn text(self, key: &str) -> String {
        self.format(key, &[])
    }

    /// The message `key` in this language, with `args`. A message missing here is taken
    /// from English (a test keeps the catalogs complete, so this is a safety net).
    pub fn format(self, key: &str, args: &[(&str, Arg)]) -> String {
        let mut fluent_args = FluentArgs::new();
        for (name, value) in args {
            let value = match value {
                Arg::Text(text) => FluentValue::from(text.as_str()),
                Arg::Count(n) => FluentValue::from(*n),
                Arg::Wait(secs) => FluentValue::from(self.wait(*secs)),
            };
            fluent_args.set(*name, value);
        }
        for locale in [self, Self::En] {
            let bundle = &CATALOGS[locale as usize];
            let Some(pattern) = bundle.get_message(key).and_then(|m| m.value()) else {
                continue;
            };
            let mut errors = Vec::new();
            let text = bundle.format_pattern(pattern, Some(&fluent_args), &mut errors);
            if !errors.is_empty() {
                tracing::warn!(
                    key,
                    locale = locale.tag(),
                    ?errors,
                    "message formatted with errors"
                );
            }
            return text.into_owned();
        }
        tracing::warn!(key, "no such message");
        key.to_string()
    }

    /// The message `key` split around its argument `name`, so a page can set that part
    /// apart (`We texted <strong>+1201*****23</strong> with a code.`). The argument's
    /// value itself is the caller's to show.
    pub fn around(self, key: &str, name: &str, args: &[(&str, Arg)]) -> Around {
        const MARK: &str = "\u{E000}";
        let mut all = args.to_vec();
        all.push((name, Arg::Text(MARK.into())));
        let text = self.format(key, &all);
        let (before, after) = text.split_once(MARK).unwrap_or((&text, ""));
        Around {
            before: before.to_string(),
            after: after.to_string(),
        }
    }

    /// A wait, worded: "30 seconds", "5 minutes", "2 hours" (whole units, rounded up).
    pub fn wait(self, secs: u64) -> String {
        let secs = secs.max(1);
        let (key, n) = match secs {
            0..=90 => ("duration-seconds", secs),
            91..=5400 => ("duration-minutes", secs.div_ceil(60)),
            _ => ("duration-hours", secs.div_ceil(3600)),
        };
        self.format(key, &[("n", Arg::Count(n))])
    }
}

impl fmt::Display for Locale {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.tag())
    }
}

impl Serialize for Locale {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.tag())
    }
}

impl<'de> Deserialize<'de> for Locale {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let tag = String::deserialize(deserializer)?;
        Self::from_language(&tag)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown locale {tag:?}")))
    }
}

/// A message's text before and after one of its arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Around {
    pub before: String,
    pub after: String,
}

/// An argument of a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Arg {
    Text(String),
    /// A number that chooses a plural form.
    Count(u64),
    /// A wait in seconds, worded in the message's language.
    Wait(u64),
}

impl From<&str> for Arg {
    fn from(text: &str) -> Self {
        Self::Text(text.to_string())
    }
}

impl From<String> for Arg {
    fn from(text: String) -> Self {
        Self::Text(text)
    }
}

impl From<u64> for Arg {
    fn from(n: u64) -> Self {
        Self::Count(n)
    }
}

/// A message chosen now and worded later, in the locale of whoever reads it (a page
/// error is drawn by middleware that knows the request).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Text {
    key: &'static str,
    args: Vec<(&'static str, Arg)>,
}

impl Text {
    pub fn new(key: &'static str) -> Self {
        Self {
            key,
            args: Vec::new(),
        }
    }

    /// The message with one more argument.
    pub fn with(mut self, name: &'static str, value: impl Into<Arg>) -> Self {
        self.args.push((name, value.into()));
        self
    }

    pub fn key(&self) -> &'static str {
        self.key
    }

    /// The message in `locale`.
    pub fn render(&self, locale: Locale) -> String {
        locale.format(self.key, &self.args)
    }
}

/// The catalogs, indexed by `Locale as usize`, parsed once.
static CATALOGS: LazyLock<Vec<FluentBundle<FluentResource>>> = LazyLock::new(|| {
    Locale::ALL
        .into_iter()
        .map(|locale| bundle(locale, source(locale)))
        .collect()
});

fn source(locale: Locale) -> &'static str {
    match locale {
        Locale::En => include_str!("../../locales/en.ftl"),
        Locale::Es => include_str!("../../locales/es.ftl"),
        Locale::Fr => include_str!("../../locales/fr.ftl"),
        Locale::De => include_str!("../../locales/de.ftl"),
        Locale::Pt => include_str!("../../locales/pt.ftl"),
        Locale::It => include_str!("../../locales/it.ftl"),
    }
}

fn bundle(locale: Locale, source: &str) -> FluentBundle<FluentResource> {
    let resource = FluentResource::try_new(source.to_string())
        .unwrap_or_else(|(_, errors)| panic!("locales/{locale}.ftl: {errors:?}"));
    let language = locale.tag().parse().expect("a language identifier");
    let mut bundle = FluentBundle::new_concurrent(vec![language]);
    // No Unicode isolation marks around arguments: SMS bodies and HTML would carry them.
    bundle.set_use_isolating(false);
    bundle
        .add_resource(resource)
        .unwrap_or_else(|errors| panic!("locales/{locale}.ftl: {errors:?}"));
    bundle
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    fn keys(locale: Locale) -> BTreeSet<String> {
        let resource = FluentResource::try_new(source(locale).to_string()).expect("parses");
        resource
            .entries()
            .filter_map(|entry| match entry {
                fluent_syntax::ast::Entry::Message(m) => Some(m.id.name.to_string()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn every_catalog_parses_and_has_every_message_of_the_english_one() {
        let english = keys(Locale::En);
        assert!(english.len() > 80, "{}", english.len());
        for locale in Locale::ALL {
            let _ = &CATALOGS[locale as usize];
            assert_eq!(keys(locale), english, "locales/{locale}.ftl");
        }
    }

    #[test]
    fn regions_fall_back_to_their_language_and_unknown_languages_to_the_default() {
        let resolve = |tag| Locale::resolve(tag, Locale::En);
        assert_eq!(resolve("es-MX"), Ok(Locale::Es));
        assert_eq!(resolve("ES"), Ok(Locale::Es));
        assert_eq!(resolve("pt-BR"), Ok(Locale::Pt));
        assert_eq!(resolve("de-CH-1996"), Ok(Locale::De));
        assert_eq!(resolve("zh-Hant-TW"), Ok(Locale::En));
        assert_eq!(resolve("xx"), Ok(Locale::En));
        assert_eq!(Locale::resolve("xx", Locale::Fr), Ok(Locale::Fr));
        for bad in [
            "",
            "e",
            "es_MX",
            "español",
            "en--US",
            "toolonglanguage",
            "12",
        ] {
            assert!(resolve(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn accept_language_is_read_by_weight_and_skips_what_we_lack() {
        let negotiate = |header| Locale::negotiate(Some(header), Locale::En);
        assert_eq!(negotiate("es-MX,es;q=0.9,en;q=0.8"), Locale::Es);
        assert_eq!(negotiate("nl-NL, de;q=0.7, en;q=0.3"), Locale::De);
        assert_eq!(negotiate("en;q=0.2, fr;q=0.9"), Locale::Fr);
        assert_eq!(negotiate("it;q=0, pt"), Locale::Pt);
        assert_eq!(negotiate("nl, ja"), Locale::En);
        assert_eq!(negotiate("*"), Locale::En);
        assert_eq!(negotiate("garbage;;;, ,de"), Locale::De);
        assert_eq!(Locale::negotiate(None, Locale::It), Locale::It);
    }

    #[test]
    fn plurals_follow_each_language() {
        let left = |l: Locale, n: u64| l.format("attempts-left", &[("count", Arg::Count(n))]);
        assert_eq!(left(Locale::En, 1), "1 attempt left.");
        assert_eq!(left(Locale::En, 4), "4 attempts left.");
        assert_eq!(left(Locale::Es, 1), "Te queda 1 intento.");
        assert_eq!(left(Locale::Es, 3), "Te quedan 3 intentos.");
        assert_eq!(left(Locale::De, 2), "Noch 2 Versuche.");
        assert_eq!(left(Locale::Fr, 0), "Il vous reste 0 essai.");
        assert_eq!(Locale::En.wait(30), "30 seconds");
        assert_eq!(Locale::De.wait(600), "10 Minuten");
        assert_eq!(Locale::Es.wait(7200), "2 horas");
        assert_eq!(Locale::It.wait(1), "1 secondo");
    }

    #[test]
    fn arguments_are_inserted_without_isolation_marks() {
        let sms = Locale::Es.format(
            "sms",
            &[
                ("app_name", "Acme".into()),
                ("code", "012345".into()),
                ("minutes", Arg::Count(10)),
            ],
        );
        assert_eq!(
            sms,
            "Tu código de Acme es 012345. Es válido durante 10 minutos."
        );
    }

    #[test]
    fn a_message_splits_around_an_argument_in_any_word_order() {
        let en = Locale::En.around("sign-in-asks", "client", &[]);
        assert_eq!(en.before, "");
        assert_eq!(
            en.after,
            " asks you to verify your phone number to sign in."
        );
        let fr = Locale::Fr.around(
            "code-sent",
            "number",
            &[
                ("channel", "sms".into()),
                ("length", Arg::Count(6)),
                ("kind", "digits".into()),
            ],
        );
        assert_eq!(
            fr.before,
            "Nous avons envoyé un code de 6 chiffres par SMS au "
        );
        assert_eq!(fr.after, ".");
    }

    #[test]
    fn a_deferred_text_is_worded_by_its_reader() {
        let text = Text::new("too-many-codes").with("wait", Arg::Wait(120));
        assert_eq!(
            text.render(Locale::En),
            "Too many codes have been requested. Try again in 2 minutes."
        );
        assert_eq!(
            text.render(Locale::De),
            "Es wurden zu viele Codes angefordert. Versuchen Sie es in 2 Minuten erneut."
        );
    }
}
