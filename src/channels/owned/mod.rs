//! The providers' own verification products as backends (`twilio_verify`,
//! `telnyx_verify`, `plivo_verify`, `signalwire_mfa`): each generates, sends and checks
//! its code; phone-verify keeps its own limits, lockout, fraud guard and budget in front
//! of it (`verification::usecases`) and maps each answer onto a `Verdict` or a
//! `DeliveryError`. Wire formats: `reference/verify-apis.md`.

use super::DeliveryError;
use super::http::{self, Answer};

pub mod plivo_verify;
pub mod signalwire_mfa;
pub mod telnyx_verify;
pub mod twilio_verify;

/// The provider's id for a verification it accepted, or the refusal to start one when
/// its answer names none.
fn reference(id: Option<&str>, provider: &str) -> Result<String, DeliveryError> {
    id.filter(|id| !id.is_empty())
        .map(String::from)
        .ok_or_else(|| {
            DeliveryError::Unavailable(format!(
                "{provider} accepted the verification but named no id"
            ))
        })
}

/// A check the provider refused in a way no verdict explains: 429 and 5xx mean "ask
/// later", anything else is logged and, to the person, also "ask later": the attempt
/// is given back, never counted against them for our misconfiguration.
fn unexplained(answer: &Answer, code: &str, message: &str) -> DeliveryError {
    http::classify(answer.status, code, message, false)
}

/// For the providers' tests: `got` is the verdict `want` names, or an error whose
/// `Debug` starts with the kind `want` names.
#[cfg(test)]
fn assert_answer(
    got: Result<crate::domain::Verdict, DeliveryError>,
    want: Result<crate::domain::Verdict, &str>,
    context: &str,
) {
    match (got, want) {
        (Ok(verdict), Ok(want)) => assert_eq!(verdict, want, "{context}"),
        (Err(error), Err(kind)) => {
            assert!(
                format!("{error:?}").starts_with(kind),
                "{context}: {error:?}"
            )
        }
        (got, want) => panic!("{context}: got {got:?}, want {want:?}"),
    }
}

/// For the providers' tests: a start of the app "Acme" (6 digits, 5 attempts).
#[cfg(test)]
fn sample_start(
    to: &crate::phone::PhoneNumber,
    channel: crate::domain::Channel,
    locale: crate::i18n::Locale,
    ttl_secs: u64,
) -> super::OwnedStart<'_> {
    super::OwnedStart {
        to,
        channel,
        locale,
        app_name: "Acme",
        ttl_secs,
        code_length: 6,
        max_attempts: 5,
    }
}
