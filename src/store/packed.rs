//! How the memory store lays out what it keeps, so that a pending verification costs
//! about 250 bytes of memory rather than 1.5 KB: ids as 128-bit integers, numbers as
//! their digits, times as nanoseconds, provider names as an index into a small table,
//! and everything a pending API verification of our own code does not have (provider
//! references, later attempts, a voice ticket, a browser binding, a provider's check,
//! a lockout) behind one optional box. Each record converts to and from the domain's
//! types; the store decides on those, as before.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::code::CodeHash;
use crate::domain::rules::NumberState;
use crate::domain::window::WindowCount;
use crate::domain::{
    Channel, Checker, ProviderCheck, SendAttempt, Status, Verification, VoiceTicket,
};
use crate::i18n::Locale;
use crate::phone::PhoneNumber;

/// A verification id (32 lowercase hex characters) as two integers.
pub type Id = [u64; 2];

/// The id `random_hex(16)` made, or `None` for any other text (which no stored
/// verification has).
pub fn id_of(text: &str) -> Option<Id> {
    let lower_hex = |b: &u8| b.is_ascii_digit() || (b'a'..=b'f').contains(b);
    if text.len() != 32 || !text.as_bytes().iter().all(lower_hex) {
        return None;
    }
    let high = u64::from_str_radix(&text[..16], 16).ok()?;
    let low = u64::from_str_radix(&text[16..], 16).ok()?;
    Some([high, low])
}

pub fn id_text(id: &Id) -> String {
    let mut bytes = [0; 16];
    bytes[..8].copy_from_slice(&id[0].to_be_bytes());
    bytes[8..].copy_from_slice(&id[1].to_be_bytes());
    crate::code::to_hex(&bytes)
}

/// The digits of an E.164 number (at most 15, so they fit).
pub fn number_of(to: &PhoneNumber) -> u64 {
    to.e164()[1..]
        .parse()
        .expect("E.164 is + and at most 15 digits")
}

/// `None` as a time.
const NEVER: u64 = u64::MAX;

fn nanos(at: SystemTime) -> u64 {
    at.duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos().min(u128::from(NEVER - 1)) as u64)
}

fn time(nanos: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_nanos(nanos)
}

fn maybe_nanos(at: Option<SystemTime>) -> u64 {
    at.map_or(NEVER, nanos)
}

fn maybe_time(nanos: u64) -> Option<SystemTime> {
    (nanos != NEVER).then(|| time(nanos))
}

/// Strings that recur in every record (provider names, delivery statuses), kept once.
#[derive(Default)]
pub struct Names(Vec<Box<str>>);

impl Names {
    /// The index of `name` (1-based; 0 is "none"), or `None` when the table is full.
    fn index(&mut self, name: Option<&str>) -> Option<u8> {
        let Some(name) = name else {
            return Some(0);
        };
        if let Some(i) = self.0.iter().position(|n| &**n == name) {
            return u8::try_from(i + 1).ok();
        }
        let next = u8::try_from(self.0.len() + 1).ok()?;
        self.0.push(name.into());
        Some(next)
    }

    fn name(&self, index: u8) -> Option<String> {
        index
            .checked_sub(1)
            .and_then(|i| self.0.get(usize::from(i)))
            .map(|n| n.to_string())
    }
}

/// A pending API verification of our own code needs nothing of this.
#[derive(Default)]
struct Rare {
    /// The attempts, when the first cannot be packed (a provider reference, a full
    /// name table) or there are several.
    attempts: Vec<SendAttempt>,
    provider_check: Option<ProviderCheck>,
    voice: Option<VoiceTicket>,
    browser: Option<String>,
}

impl Rare {
    fn is_empty(&self) -> bool {
        self.attempts.is_empty()
            && self.provider_check.is_none()
            && self.voice.is_none()
            && self.browser.is_none()
    }
}

fn status_code(status: Status) -> u8 {
    match status {
        Status::Pending => 0,
        Status::Approved => 1,
        Status::Canceled => 2,
        Status::Expired => 3,
        Status::MaxAttemptsReached => 4,
        Status::Failed => 5,
    }
}

fn status_of(code: u8) -> Status {
    match code {
        0 => Status::Pending,
        1 => Status::Approved,
        2 => Status::Canceled,
        3 => Status::Expired,
        4 => Status::MaxAttemptsReached,
        _ => Status::Failed,
    }
}

fn channel_code(channel: Channel) -> u8 {
    match channel {
        Channel::Sms => 0,
        Channel::Call => 1,
    }
}

fn channel_of(code: u8) -> Channel {
    if code == 1 {
        Channel::Call
    } else {
        Channel::Sms
    }
}

fn locale_code(locale: Locale) -> u8 {
    Locale::ALL.iter().position(|l| *l == locale).unwrap_or(0) as u8
}

/// A verification as the memory store keeps it (its id is the map's key).
pub struct PackedVerification {
    number: u64,
    created_at: u64,
    last_sent_at: u64,
    expires_at: u64,
    /// The code's keyed hash; all zeros when a provider checks the code (see `rare`).
    hash: [u8; 32],
    failed_checks: u32,
    region: [u8; 2],
    channel: u8,
    status: u8,
    locale: u8,
    /// The only attempt, when it has no provider reference: its time, channel, and
    /// provider and delivery status as name indexes. `attempt_provider` 0: not packed.
    attempt_at: u64,
    attempt_channel: u8,
    attempt_provider: u8,
    attempt_status: u8,
    rare: Option<Box<Rare>>,
}

impl PackedVerification {
    pub fn pack(v: &Verification, names: &mut Names) -> Self {
        let mut rare = Rare::default();
        let (hash, provider_check) = match &v.checker {
            Checker::Hash(hash) => (hash.to_bytes(), None),
            Checker::Provider(check) => ([0; 32], Some(check.clone())),
        };
        rare.provider_check = provider_check;
        rare.voice = v.voice.clone();
        rare.browser = v.browser.clone();
        // A number's region is an ISO 3166 alpha-2 code (libphonenumber's `country::Id`).
        let region = v.to.region().map_or([0, 0], |r| {
            r.as_bytes().try_into().expect("a region is two letters")
        });
        let attempt = match &v.send_attempts[..] {
            [only] if only.provider_ref.is_none() => {
                match (
                    names.index(Some(&only.provider)),
                    names.index(only.delivery_status.as_deref()),
                ) {
                    (Some(provider), Some(status)) => {
                        Some((nanos(only.at), channel_code(only.channel), provider, status))
                    }
                    _ => None,
                }
            }
            _ => None,
        };
        if attempt.is_none() {
            rare.attempts = v.send_attempts.clone();
        }
        let (attempt_at, attempt_channel, attempt_provider, attempt_status) =
            attempt.unwrap_or((0, 0, 0, 0));
        Self {
            number: number_of(&v.to),
            created_at: nanos(v.created_at),
            last_sent_at: nanos(v.last_sent_at),
            expires_at: nanos(v.expires_at),
            hash,
            failed_checks: v.failed_checks,
            region,
            channel: channel_code(v.channel),
            status: status_code(v.status),
            locale: locale_code(v.locale),
            attempt_at,
            attempt_channel,
            attempt_provider,
            attempt_status,
            rare: (!rare.is_empty()).then(|| Box::new(rare)),
        }
    }

    /// The number, in E.164.
    pub fn e164(&self) -> String {
        ["+", itoa::Buffer::new().format(self.number)].concat()
    }

    pub fn unpack(&self, id: &Id, names: &Names) -> Verification {
        let rare = self.rare.as_deref();
        let region =
            (self.region != [0, 0]).then(|| String::from_utf8_lossy(&self.region).into_owned());
        let send_attempts = match names.name(self.attempt_provider) {
            Some(provider) => vec![SendAttempt {
                channel: channel_of(self.attempt_channel),
                provider,
                at: time(self.attempt_at),
                delivery_status: names.name(self.attempt_status),
                provider_ref: None,
            }],
            None => rare.map(|r| r.attempts.clone()).unwrap_or_default(),
        };
        let checker = match rare.and_then(|r| r.provider_check.clone()) {
            Some(check) => Checker::Provider(check),
            None => Checker::Hash(CodeHash::from_bytes(self.hash)),
        };
        Verification {
            id: id_text(id),
            to: PhoneNumber::from_stored(self.e164(), region),
            channel: channel_of(self.channel),
            status: status_of(self.status),
            created_at: time(self.created_at),
            last_sent_at: time(self.last_sent_at),
            expires_at: time(self.expires_at),
            failed_checks: self.failed_checks,
            send_attempts,
            checker,
            voice: rare.and_then(|r| r.voice.clone()),
            browser: rare.and_then(|r| r.browser.clone()),
            locale: Locale::ALL[usize::from(self.locale)],
        }
    }

    pub fn expires_at(&self) -> SystemTime {
        time(self.expires_at)
    }
}

/// What a lockout adds to a number's state, and a send count of several slots.
struct RareNumber {
    failures: u32,
    failures_until: Option<SystemTime>,
    locked_until: Option<SystemTime>,
    sends: WindowCount,
}

/// A number's state as the memory store keeps it.
pub struct PackedNumber {
    last_send: u64,
    retain_until: u64,
    /// The send count's only slot (start in ms, count), when it has exactly one.
    slot: (u64, u64),
    rare: Option<Box<RareNumber>>,
}

impl PackedNumber {
    pub fn pack(n: &NumberState) -> Self {
        let single = n.sends.single();
        let common = n.failures == 0
            && n.failures_until.is_none()
            && n.locked_until.is_none()
            && single.is_some();
        Self {
            last_send: maybe_nanos(n.last_send),
            retain_until: maybe_nanos(n.retain_until),
            slot: single.unwrap_or((0, 0)),
            rare: (!common).then(|| {
                Box::new(RareNumber {
                    failures: n.failures,
                    failures_until: n.failures_until,
                    locked_until: n.locked_until,
                    sends: n.sends.clone(),
                })
            }),
        }
    }

    pub fn unpack(&self) -> NumberState {
        let (failures, failures_until, locked_until, sends) = match self.rare.as_deref() {
            Some(r) => (
                r.failures,
                r.failures_until,
                r.locked_until,
                r.sends.clone(),
            ),
            None => (
                0,
                None,
                None,
                WindowCount::from_single(self.slot.0, self.slot.1),
            ),
        };
        NumberState {
            failures,
            failures_until,
            locked_until,
            last_send: maybe_time(self.last_send),
            sends,
            retain_until: maybe_time(self.retain_until),
        }
    }

    pub fn retain_until(&self) -> Option<SystemTime> {
        maybe_time(self.retain_until)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ms: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(1_800_000_000_000 + ms) + Duration::from_nanos(7)
    }

    fn verification() -> Verification {
        Verification {
            id: crate::code::random_hex(16),
            to: PhoneNumber::parse("+12015550123", phonenumber::country::Id::US).unwrap(),
            channel: Channel::Sms,
            status: Status::Pending,
            created_at: at(0),
            last_sent_at: at(1),
            expires_at: at(600_000),
            failed_checks: 2,
            send_attempts: vec![SendAttempt {
                channel: Channel::Sms,
                provider: "console".into(),
                at: at(2),
                delivery_status: Some("sent".into()),
                provider_ref: None,
            }],
            checker: Checker::Hash(CodeHash::from_bytes([7; 32])),
            voice: None,
            browser: None,
            locale: Locale::Pt,
        }
    }

    fn round_trip(v: &Verification, names: &mut Names) -> Verification {
        let id = id_of(&v.id).expect("a generated id");
        PackedVerification::pack(v, names).unpack(&id, names)
    }

    #[test]
    fn a_common_verification_packs_small_and_comes_back_the_same() {
        let mut names = Names::default();
        let v = verification();
        let packed = PackedVerification::pack(&v, &mut names);
        assert!(packed.rare.is_none() && packed.attempt_provider != 0);
        assert_eq!(std::mem::size_of::<PackedVerification>(), 96);
        assert_eq!(round_trip(&v, &mut names), v);
    }

    #[test]
    fn every_unusual_part_comes_back_the_same() {
        let mut names = Names::default();
        let mut v = verification();
        v.to = PhoneNumber::parse("+44 7400 123456", phonenumber::country::Id::US).unwrap();
        v.status = Status::MaxAttemptsReached;
        v.channel = Channel::Call;
        v.send_attempts.push(SendAttempt {
            channel: Channel::Call,
            provider: "twilio".into(),
            at: at(5),
            delivery_status: None,
            provider_ref: Some("CA123".into()),
        });
        v.checker = Checker::Provider(ProviderCheck {
            provider: "twilio_verify".into(),
            reference: "VE1".into(),
        });
        v.voice = Some(VoiceTicket {
            secret: "s".into(),
            sealed_code: "c".into(),
        });
        v.browser = Some("b".into());
        assert_eq!(round_trip(&v, &mut names), v);
        v.send_attempts.truncate(1);
        v.send_attempts[0].provider_ref = Some("SM1".into());
        assert_eq!(round_trip(&v, &mut names), v);
    }

    #[test]
    fn a_full_name_table_keeps_attempts_whole() {
        let mut names = Names::default();
        for i in 0..300 {
            let mut v = verification();
            v.send_attempts[0].provider = format!("provider-{i}");
            assert_eq!(round_trip(&v, &mut names), v);
        }
    }

    #[test]
    fn number_states_come_back_the_same() {
        let mut plain = NumberState {
            last_send: Some(at(1)),
            retain_until: Some(at(600_000)),
            ..Default::default()
        };
        plain.sends.add(at(1), Duration::from_secs(600), 1);
        let packed = PackedNumber::pack(&plain);
        assert!(packed.rare.is_none());
        assert_eq!(packed.unpack(), plain);
        let mut locked = plain.clone();
        locked.failures = 3;
        locked.locked_until = Some(at(9));
        locked.sends.add(at(30_000), Duration::from_secs(600), 2);
        assert_eq!(PackedNumber::pack(&locked).unpack(), locked);
        assert_eq!(
            PackedNumber::pack(&NumberState::default()).unpack(),
            NumberState::default()
        );
    }

    #[test]
    fn only_generated_ids_have_an_id() {
        let id = crate::code::random_hex(16);
        assert_eq!(id_of(&id).map(|i| id_text(&i)), Some(id));
        for other in [
            "",
            "nope",
            &"A".repeat(32),
            &"0".repeat(31),
            &"g".repeat(32),
        ] {
            assert_eq!(id_of(other), None, "{other}");
        }
    }
}
