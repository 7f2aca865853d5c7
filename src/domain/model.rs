//! The verification record and the small types around it, shared by the rules,
//! the stores (which persist them) and the front ends (which show them).

use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use crate::code::CodeHash;
use crate::i18n::Locale;
use crate::phone::PhoneNumber;

/// How the code travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Channel {
    Sms,
    Call,
}

impl Channel {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sms => "sms",
            Self::Call => "call",
        }
    }

    /// The channel named `name` as `as_str` names it, or `None`.
    pub fn from_name(name: &str) -> Option<Self> {
        [Self::Sms, Self::Call]
            .into_iter()
            .find(|channel| channel.as_str() == name)
    }

    /// Parses a form or API value (`sms`, `call`; `voice` as the tutorials said).
    pub fn parse(raw: &str) -> Option<Self> {
        match raw.trim().to_ascii_lowercase().as_str() {
            "sms" => Some(Self::Sms),
            "call" | "voice" => Some(Self::Call),
            _ => None,
        }
    }
}

/// Where a verification is in its life. Only `Pending` accepts codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Pending,
    Approved,
    Canceled,
    Expired,
    MaxAttemptsReached,
    Failed,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Approved => "approved",
            Self::Canceled => "canceled",
            Self::Expired => "expired",
            Self::MaxAttemptsReached => "max_attempts_reached",
            Self::Failed => "failed",
        }
    }

    /// The status named `name` as `as_str` names it, or `None`.
    pub fn from_name(name: &str) -> Option<Self> {
        [
            Self::Pending,
            Self::Approved,
            Self::Canceled,
            Self::Expired,
            Self::MaxAttemptsReached,
            Self::Failed,
        ]
        .into_iter()
        .find(|status| status.as_str() == name)
    }
}

/// One try at delivering a code through one provider.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SendAttempt {
    pub channel: Channel,
    /// The provider's configuration name: `console`, `twilio`, ...
    pub provider: String,
    pub at: SystemTime,
    /// Normalised: `queued`, `sent`, `delivered`, `undelivered`, `failed`.
    pub delivery_status: Option<String>,
    /// The provider's id for the message or call, for status callbacks.
    pub provider_ref: Option<String>,
}

/// One attempt to prove control of one number.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verification {
    /// 128 random bits, 32 lowercase hex characters.
    pub id: String,
    pub to: PhoneNumber,
    pub channel: Channel,
    pub status: Status,
    pub created_at: SystemTime,
    pub last_sent_at: SystemTime,
    pub expires_at: SystemTime,
    /// Wrong codes submitted so far.
    pub failed_checks: u32,
    pub send_attempts: Vec<SendAttempt>,
    /// Who checks the current code: we (by its keyed hash; the code itself is never kept)
    /// or the provider that generated and sent it.
    pub checker: Checker,
    /// For a call whose provider fetches its instructions: the ticket to fetch them with.
    #[serde(default)]
    pub voice: Option<VoiceTicket>,
    /// Started on the hosted pages: the binding of the one browser session it belongs to
    /// (a keyed hash of that session's random handle). `None` for API starts.
    #[serde(default)]
    pub browser: Option<String>,
    /// The language its messages (and, for the APIs, its answers' `locale`) are in.
    #[serde(default)]
    pub locale: Locale,
}

/// Who checks a verification's current code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Checker {
    /// We do, against the keyed hash of the code we generated.
    Hash(CodeHash),
    /// A provider's own verification product generated and sent it, and alone can check
    /// it: we keep nothing of the code, only which provider and its id for the
    /// verification there (a Twilio `VE…` sid, a Telnyx or SignalWire id, a Plivo session).
    Provider(ProviderCheck),
}

/// A verification handed over to a provider that owns its code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProviderCheck {
    /// The provider's configuration name (`twilio_verify`, ...).
    pub provider: String,
    /// The provider's id for the verification.
    pub reference: String,
}

/// What the provider that owns a code said when asked to check it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Approved,
    /// Not the code: the attempt counts as a wrong code.
    Wrong,
    /// The provider no longer knows the verification (it expired, or was used there).
    Expired,
    /// The provider's own attempt limit for it is reached.
    Exhausted,
    /// The provider could not be asked or did not answer: the attempt is given back.
    Unanswered,
}

/// What `/voice/{call_id}` needs while a call is pending: the random part of the call
/// id, and the code sealed (AES-GCM) under a key derived from `server.secret`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VoiceTicket {
    pub secret: String,
    pub sealed_code: String,
}

impl Verification {
    /// Checks left before the verification ends, given the configured maximum.
    pub fn attempts_remaining(&self, max_check_attempts: u32) -> u32 {
        if self.status == Status::Pending {
            max_check_attempts.saturating_sub(self.failed_checks)
        } else {
            0
        }
    }

    /// The status as of `now`: a pending verification past its expiry is expired.
    pub fn status_at(&self, now: SystemTime) -> Status {
        if self.status == Status::Pending && now >= self.expires_at {
            Status::Expired
        } else {
            self.status
        }
    }
}

/// How long to wait before trying again, rounded up to whole seconds (`Retry-After`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryAfter(pub Duration);

impl RetryAfter {
    pub fn between(now: SystemTime, until: SystemTime) -> Self {
        Self(until.duration_since(now).unwrap_or_default())
    }

    pub fn secs(self) -> u64 {
        let whole = self.0.as_secs() + u64::from(self.0.subsec_nanos() > 0);
        whole.max(1)
    }

    /// "30 seconds", "5 minutes", "1 hour": for people.
    pub fn describe(self) -> String {
        let secs = self.secs();
        let (n, unit) = match secs {
            0..=90 => (secs, "second"),
            91..=5400 => (secs.div_ceil(60), "minute"),
            _ => (secs.div_ceil(3600), "hour"),
        };
        format!("{n} {unit}{}", if n == 1 { "" } else { "s" })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_rounds_up_to_whole_seconds() {
        assert_eq!(RetryAfter(Duration::from_millis(1)).secs(), 1);
        assert_eq!(RetryAfter(Duration::from_millis(29_001)).secs(), 30);
        assert_eq!(RetryAfter(Duration::ZERO).secs(), 1);
    }

    #[test]
    fn retry_after_reads_naturally() {
        assert_eq!(RetryAfter(Duration::from_secs(1)).describe(), "1 second");
        assert_eq!(RetryAfter(Duration::from_secs(30)).describe(), "30 seconds");
        assert_eq!(
            RetryAfter(Duration::from_secs(600)).describe(),
            "10 minutes"
        );
        assert_eq!(
            RetryAfter(Duration::from_secs(3600)).describe(),
            "60 minutes"
        );
        assert_eq!(RetryAfter(Duration::from_secs(7200)).describe(), "2 hours");
    }

    #[test]
    fn channels_parse_from_forms() {
        assert_eq!(Channel::parse("SMS"), Some(Channel::Sms));
        assert_eq!(Channel::parse("voice"), Some(Channel::Call));
        assert_eq!(Channel::parse("fax"), None);
    }

    /// A store reads names back with `from_name`: they must be serde's names, exactly.
    #[test]
    fn names_read_back_as_serde_writes_them_and_nothing_else() {
        for channel in [Channel::Sms, Channel::Call] {
            let name = serde_json::to_value(channel).unwrap();
            assert_eq!(name, channel.as_str());
            assert_eq!(Channel::from_name(channel.as_str()), Some(channel));
        }
        for status in [
            Status::Pending,
            Status::Approved,
            Status::Canceled,
            Status::Expired,
            Status::MaxAttemptsReached,
            Status::Failed,
        ] {
            let name = serde_json::to_value(status).unwrap();
            assert_eq!(name, status.as_str());
            assert_eq!(Status::from_name(status.as_str()), Some(status));
        }
        assert_eq!(Channel::from_name("SMS"), None);
        assert_eq!(Channel::from_name("voice"), None);
        assert_eq!(Status::from_name("Pending"), None);
        assert_eq!(Status::from_name(""), None);
    }
}
