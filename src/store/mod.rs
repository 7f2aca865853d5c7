//! Where verification state lives. `VerificationStore` is the seam between the rules
//! and a backend; every method that decides something is atomic in the backend itself.

use std::net::IpAddr;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;

use crate::code::CodeHash;
use crate::domain::guard::{FraudLimits, GuardLimits, GuardRefusal, SendFacts};
use crate::domain::rules::{CheckLimits, CheckOutcome, CheckRefusal, SendLimits};
use crate::domain::{ProviderCheck, RetryAfter, SendAttempt, Status, Verdict, Verification};
use crate::phone::PhoneNumber;

pub mod ids;
pub mod memory;
mod packed;
pub mod redis;

#[cfg(test)]
pub(crate) mod contract;

/// How long an ended verification stays readable (status lookups, the success page),
/// unless `verification.retain_ended_secs` says otherwise.
pub const RETAIN_AFTER_EXPIRY: Duration = Duration::from_secs(3600);

/// The store could not be reached or answered nonsense; the request cannot be decided.
/// The underlying error, when there is one, is kept as the source.
#[derive(Debug, thiserror::Error)]
#[error("store unavailable: {message}")]
pub struct StoreError {
    message: String,
    #[source]
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl StoreError {
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            source: None,
        }
    }

    /// `message`, caused by `source`.
    pub fn caused_by(
        message: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Self {
            message: message.into(),
            source: Some(Box::new(source)),
        }
    }
}

/// The answer to a request for a send slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlotDecision {
    Granted,
    /// The number's or the address's limits: retry after the wait.
    Refused(RetryAfter),
    /// The fraud guard, the country cap or the budget.
    Guarded(GuardRefusal),
}

impl SlotDecision {
    /// What a start answers when this slot was not granted; `None` when it was.
    pub fn refusal(self) -> Option<StartDecision> {
        match self {
            Self::Granted => None,
            Self::Refused(wait) => Some(StartDecision::Refused(wait)),
            Self::Guarded(refusal) => Some(StartDecision::Guarded(refusal)),
        }
    }
}

/// The answer to a start: the code issued, or why no send slot was granted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartDecision {
    Issued(Box<Verification>),
    /// The number's or the address's limits: retry after the wait.
    Refused(RetryAfter),
    /// The fraud guard, the country cap or the budget.
    Guarded(GuardRefusal),
}

/// A send the guard must admit too: what it is, and the limits.
#[derive(Debug, Clone, Copy)]
pub struct Guarded<'a> {
    pub facts: &'a SendFacts,
    pub limits: &'a GuardLimits,
}

/// The answer to a submitted code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckDecision {
    NotFound,
    Refused(Verification, CheckRefusal),
    Evaluated(Verification, CheckOutcome),
    /// The code is a provider's: an attempt is reserved; ask the provider, then
    /// `settle_check` with its verdict.
    Delegated(Verification),
}

/// An answer kept for an idempotency key.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct StoredResponse {
    pub status: u16,
    pub body: String,
}

/// What claiming an idempotency key found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdempotencyClaim {
    /// The key is ours: do the work, then `complete` or `release` it.
    Claimed,
    /// The same request is being handled right now.
    InProgress,
    /// The key was used for a different request.
    Conflict,
    /// The same request was answered before: answer the same.
    Replay(StoredResponse),
}

/// Whether `e164` has the shape of an E.164 number (`+` and up to 15 digits): all a
/// Redis key built from it needs (no `{` or `}` can then move it to another hash slot),
/// and all an id sealing it (`ids`) can hold.
pub(crate) fn e164_shaped(e164: &str) -> bool {
    e164.strip_prefix('+').is_some_and(|digits| {
        (1..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit())
    })
}

/// Whether `key` can name a record: what the service hands out (random hex or
/// base64url), at most 128 characters. Anything else names nothing.
pub fn record_key_valid(key: &str) -> bool {
    !key.is_empty()
        && key.len() <= 128
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The send attempt a delivery report is about: the one with its reference, else the
/// provider's latest (some providers' call APIs return no id).
pub fn matching_attempt<'a>(
    attempts: &'a mut [SendAttempt],
    provider: &str,
    provider_ref: Option<&str>,
) -> Option<&'a mut SendAttempt> {
    let by_ref = provider_ref.and_then(|r| {
        attempts
            .iter()
            .rposition(|a| a.provider == provider && a.provider_ref.as_deref() == Some(r))
    });
    let index = by_ref.or_else(|| attempts.iter().rposition(|a| a.provider == provider))?;
    attempts.get_mut(index)
}

/// Names a stored verification by its id and its number (E.164), which never changes: a
/// caller that knows both passes them, so that a backend keeping the verification under
/// its number finds it without first looking the id up.
#[derive(Debug, Clone, Copy)]
pub struct VerificationKey<'a> {
    pub id: &'a str,
    pub e164: &'a str,
}

/// What a check is made against: the verification a key names, or the number's current
/// one (which a backend keeping it under its number finds in the same step).
#[derive(Debug, Clone, Copy)]
pub enum CheckTarget<'a> {
    Key(VerificationKey<'a>),
    Current(&'a PhoneNumber),
}

impl CheckTarget<'_> {
    /// The number (E.164) the verification is for, which the candidate's hash is bound to.
    pub fn e164(&self) -> &str {
        match self {
            Self::Key(key) => key.e164,
            Self::Current(to) => to.e164(),
        }
    }
}

impl<'a> From<VerificationKey<'a>> for CheckTarget<'a> {
    fn from(key: VerificationKey<'a>) -> Self {
        Self::Key(key)
    }
}

impl Verification {
    /// The key this verification is stored under.
    pub fn key(&self) -> VerificationKey<'_> {
        VerificationKey {
            id: &self.id,
            e164: self.to.e164(),
        }
    }
}

/// A backend for verification state. Implementations must make each method one
/// atomic step: no decision may be split into a read and a later write.
#[async_trait]
pub trait VerificationStore: Send + Sync + 'static {
    /// Takes a send slot for `to` under `limits` (lockout, cooldown, the number's window,
    /// and `ip`'s window when there is an address to count), then, with `guard`, has the
    /// guard admit it. A refusal anywhere takes nothing.
    async fn take_send_slot(
        &self,
        to: &PhoneNumber,
        ip: Option<IpAddr>,
        now: SystemTime,
        limits: &SendLimits,
        guard: Option<Guarded<'_>>,
    ) -> Result<SlotDecision, StoreError>;

    /// Takes a send slot for `fresh`'s number as `take_send_slot` does and, when one is
    /// granted, issues its code as `issue_code` does, in as few steps as the backend can
    /// (memory: one; Redis: the slot's last step issues the code too).
    async fn take_slot_and_issue(
        &self,
        fresh: Verification,
        ip: Option<IpAddr>,
        now: SystemTime,
        limits: &SendLimits,
        guard: Option<Guarded<'_>>,
    ) -> Result<StartDecision, StoreError>;

    /// Counts an approval for `prefix`, for the fraud guard.
    async fn record_approval(
        &self,
        prefix: &str,
        now: SystemTime,
        limits: &FraudLimits,
    ) -> Result<(), StoreError>;

    /// Gives the number's pending verification a new code (hash, channel, send and expiry
    /// times from `fresh`), keeping its id and failed checks, when it belongs to the same
    /// browser as `fresh` (or both to none). Otherwise a pending one is canceled and `fresh`
    /// stored as the number's new verification. Returns what is now stored.
    async fn issue_code(
        &self,
        fresh: Verification,
        now: SystemTime,
    ) -> Result<Verification, StoreError>;

    /// Appends a delivery attempt to a verification.
    async fn add_send_attempt(
        &self,
        key: VerificationKey<'_>,
        attempt: SendAttempt,
    ) -> Result<(), StoreError>;

    /// Evaluates `candidate` against the verification `target` names by the rules,
    /// counting the attempt (`rules::begin_check`). A right code with `rebind` also binds
    /// the verification to that browser. For a code a provider owns, the attempt is
    /// reserved instead.
    async fn check_code(
        &self,
        target: CheckTarget<'_>,
        candidate: &CodeHash,
        now: SystemTime,
        limits: &CheckLimits,
        send_window: Duration,
        rebind: Option<&str>,
    ) -> Result<CheckDecision, StoreError>;

    /// Settles an attempt `check_code` reserved with the provider's verdict
    /// (`rules::settle_check`); an approval with `rebind` also binds the verification to
    /// that browser. `None` when the verification is no longer remembered.
    async fn settle_check(
        &self,
        key: VerificationKey<'_>,
        verdict: Verdict,
        now: SystemTime,
        limits: &CheckLimits,
        send_window: Duration,
        rebind: Option<&str>,
    ) -> Result<Option<Verification>, StoreError>;

    /// Hands a pending verification's code over to the provider that generated and sent
    /// it: the hash and any voice ticket are dropped, the provider's id kept. False when
    /// the verification is no longer pending.
    async fn hand_over(
        &self,
        key: VerificationKey<'_>,
        check: ProviderCheck,
    ) -> Result<bool, StoreError>;

    /// The verification with this id, if it is still remembered.
    async fn get(&self, id: &str) -> Result<Option<Verification>, StoreError>;

    /// The number (E.164) of verification `id`, if it is still remembered: all a check by
    /// id needs before it can name the verification. An id that names its number (see
    /// `new_id`) may give the number of a verification no longer remembered.
    async fn number_of(&self, id: &str) -> Result<Option<String>, StoreError>;

    /// A fresh verification id for a verification of `to`: 32 lowercase hex characters,
    /// unguessable. A backend keeping verifications under their number may make ids that
    /// name it (`ids::IdSealer`), so that it finds them by id without an index.
    fn new_id(&self, to: &PhoneNumber) -> String {
        let _ = to;
        crate::code::random_hex(16)
    }

    /// The id of the number's current verification, if any.
    async fn current_for(&self, to: &PhoneNumber) -> Result<Option<String>, StoreError>;

    /// Moves `id` from `pending` to `status` (canceled, approved, failed). Returns the
    /// verification when it was pending, `None` when it was not (or is unknown).
    async fn end_pending(
        &self,
        id: &str,
        status: Status,
        now: SystemTime,
    ) -> Result<Option<Verification>, StoreError>;

    /// Records a delivery report on the send attempt of `provider` with `provider_ref` (or,
    /// without a reference, on that provider's latest attempt). False when nothing matched.
    async fn set_delivery_status(
        &self,
        id: &str,
        provider: &str,
        provider_ref: Option<&str>,
        status: &str,
    ) -> Result<bool, StoreError>;

    /// Claims `key` for a request whose content hashes to `fingerprint`, atomically; an
    /// existing record is kept until `ttl` after it was claimed.
    async fn claim_idempotency_key(
        &self,
        key: &str,
        fingerprint: &str,
        now: SystemTime,
        ttl: Duration,
    ) -> Result<IdempotencyClaim, StoreError>;

    /// Stores the answer for a claimed key, for replays.
    async fn complete_idempotency_key(
        &self,
        key: &str,
        response: StoredResponse,
    ) -> Result<(), StoreError>;

    /// Forgets a claimed key whose request should be retryable (the work did not happen).
    async fn release_idempotency_key(&self, key: &str) -> Result<(), StoreError>;

    /// Keeps a short-lived record (`kind` and `key` name it) until `expires_at`: the
    /// OpenID Connect provider's authorization requests, codes and access tokens.
    async fn put_record(
        &self,
        kind: &str,
        key: &str,
        value: &str,
        expires_at: SystemTime,
    ) -> Result<(), StoreError>;

    /// A record, while it lives.
    async fn get_record(
        &self,
        kind: &str,
        key: &str,
        now: SystemTime,
    ) -> Result<Option<String>, StoreError>;

    /// Takes a record away, atomically: of several takes of one record, one gets it.
    async fn take_record(
        &self,
        kind: &str,
        key: &str,
        now: SystemTime,
    ) -> Result<Option<String>, StoreError>;

    /// Whether the backend answers.
    async fn ping(&self) -> Result<(), StoreError>;
}
