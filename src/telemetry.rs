//! Logging: `tracing` to standard error, human-readable or one JSON object per line.
//! Standard output is left to the console provider's messages.
//!
//! Field values can carry text from outside (a provider's error message, a header): in
//! the human format every control character is escaped, so no value can end a line and
//! forge another one. The JSON format escapes them by itself.

use std::fmt;
use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::field::RecordFields;
use tracing_subscriber::fmt::FormatFields;
use tracing_subscriber::fmt::format::{DefaultFields, Writer};

use crate::config::{LogFormat, LogSettings};

/// Installs the global subscriber once; `RUST_LOG` overrides `log.level`.
pub fn init(settings: &LogSettings) {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&settings.level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    let _ = match settings.format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Text => builder.fmt_fields(EscapedFields::default()).try_init(),
    };
}

/// `DefaultFields`, with control characters in the result escaped.
#[derive(Default)]
pub struct EscapedFields(DefaultFields);

impl<'writer> FormatFields<'writer> for EscapedFields {
    fn format_fields<R: RecordFields>(
        &self,
        mut writer: Writer<'writer>,
        fields: R,
    ) -> fmt::Result {
        let mut plain = String::new();
        self.0.format_fields(Writer::new(&mut plain), fields)?;
        writer.write_str(&escape_controls(&plain))
    }
}

/// `s` with every control character (and Unicode's line and paragraph separators)
/// written as an escape: `\n`, `\r`, `\t`, `\u{1b}`.
pub fn escape_controls(s: &str) -> std::borrow::Cow<'_, str> {
    let special = |c: char| c.is_control() || matches!(c, '\u{2028}' | '\u{2029}');
    if !s.chars().any(special) {
        return s.into();
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if special(c) => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    out.into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_cannot_start_a_new_line() {
        assert_eq!(
            escape_controls("bad\r\n2026-12-01T00:00:00Z  INFO forged"),
            "bad\\r\\n2026-12-01T00:00:00Z  INFO forged"
        );
        assert_eq!(
            escape_controls("a\u{1b}[31mb\u{2028}c\td"),
            "a\\u{1b}[31mb\\u{2028}c\\td"
        );
        assert_eq!(
            escape_controls("plain text, +1201*****23"),
            "plain text, +1201*****23"
        );
    }

    #[test]
    fn formatted_fields_are_escaped() {
        use tracing_subscriber::layer::SubscriberExt as _;
        let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::<u8>::new()));
        let sink = lines.clone();
        let subscriber = tracing_subscriber::registry().with(
            tracing_subscriber::fmt::layer()
                .fmt_fields(EscapedFields::default())
                .with_ansi(false)
                .with_writer(move || Sink(sink.clone())),
        );
        tracing::subscriber::with_default(subscriber, || {
            let error = "refused\nINFO forged line";
            tracing::warn!(%error, "send failed\r\nINFO another");
        });
        let text = String::from_utf8(lines.lock().unwrap().clone()).unwrap();
        assert_eq!(text.lines().count(), 1, "{text}");
        assert!(text.contains("send failed\\r\\nINFO another"), "{text}");
        assert!(text.contains("error=refused\\nINFO forged line"), "{text}");
    }

    struct Sink(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

    impl std::io::Write for Sink {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
}
