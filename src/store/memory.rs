//! The in-memory backend: one process, state lost on restart. `TokenStorage` keeps
//! the Telnyx tutorial's name; each method is one critical section under one mutex,
//! and expired entries are swept so memory stays bounded by live state.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;

use super::packed::{Id, Names, PackedNumber, PackedVerification, id_of, id_text, number_of};
use super::{
    CheckDecision, CheckTarget, Guarded, IdempotencyClaim, RETAIN_AFTER_EXPIRY, SlotDecision,
    StartDecision, StoreError, StoredResponse, VerificationKey, VerificationStore,
};
use crate::code::CodeHash;
use crate::domain::guard::{self, CountryState, FraudLimits, HOUR, PrefixState, SpendState};
use crate::domain::rules::{
    self, CheckLimits, CheckRefusal, CheckStep, NumberState, SendLimits, SendLog,
};
use crate::domain::{Checker, ProviderCheck, SendAttempt, Status, Verdict, Verification};
use crate::phone::PhoneNumber;

/// How often (in the callers' clock) a write also sweeps expired entries.
const SWEEP_EVERY: Duration = Duration::from_secs(30);

#[derive(Default)]
struct Inner {
    verifications: HashMap<Id, PackedVerification>,
    /// A number's digits → id of its current verification.
    current: HashMap<u64, Id>,
    numbers: HashMap<u64, PackedNumber>,
    names: Names,
    ips: HashMap<IpAddr, (SendLog, SystemTime)>,
    prefixes: HashMap<String, (PrefixState, SystemTime)>,
    countries: HashMap<String, CountryState>,
    spend: SpendState,
    idempotency: HashMap<String, IdempotencyRecord>,
    records: HashMap<(String, String), (String, SystemTime)>,
    next_sweep: Option<SystemTime>,
}

struct IdempotencyRecord {
    fingerprint: String,
    response: Option<StoredResponse>,
    until: SystemTime,
}

impl Inner {
    /// `take_send_slot`, on the state itself.
    fn take_send_slot(
        &mut self,
        to: &PhoneNumber,
        ip: Option<IpAddr>,
        now: SystemTime,
        limits: &SendLimits,
        guard: Option<Guarded<'_>>,
    ) -> SlotDecision {
        let mut number = self.number(to);
        // Without an address to count, a log that is never kept: no per-address limit.
        let mut log = ip
            .and_then(|ip| self.ips.get(&ip))
            .map(|(log, _)| log.clone())
            .unwrap_or_default();
        if let Err(wait) = rules::take_send_slot(&mut number, &mut log, now, limits) {
            return SlotDecision::Refused(wait);
        }
        if let Some(Guarded { facts, limits }) = guard {
            let Inner {
                prefixes,
                countries,
                spend,
                ..
            } = self;
            let (prefix, _) = prefixes
                .entry(facts.prefix.clone())
                .or_insert_with(|| (PrefixState::default(), now));
            let country = countries.entry(facts.country.clone()).or_default();
            let admitted = guard::admit(prefix, country, spend, facts, now, limits);
            if let Some(fraud) = &limits.fraud {
                let until = prefix.retain_until(fraud).unwrap_or(now);
                prefixes.get_mut(&facts.prefix).expect("just inserted").1 = until;
            }
            if let Err(refusal) = admitted {
                return SlotDecision::Guarded(refusal);
            }
        }
        if let Some(ip) = ip {
            let until = log.retain_until(limits.ip_window).unwrap_or(now);
            self.ips.insert(ip, (log, until));
        }
        self.put_number(to, &number);
        SlotDecision::Granted
    }

    fn sweep_if_due(&mut self, now: SystemTime, retain_ended: Duration) {
        if self.next_sweep.is_some_and(|at| now < at) {
            return;
        }
        self.next_sweep = Some(now + SWEEP_EVERY);
        self.verifications
            .retain(|_, v| now < v.expires_at() + retain_ended);
        let verifications = &self.verifications;
        self.current.retain(|_, id| verifications.contains_key(id));
        self.numbers
            .retain(|_, n| n.retain_until().is_some_and(|until| now < until));
        self.ips.retain(|_, (_, until)| now < *until);
        self.prefixes.retain(|_, (_, until)| now < *until);
        self.countries.retain(|_, c| {
            c.sends.forget(now, HOUR);
            !c.sends.is_empty()
        });
        self.idempotency.retain(|_, record| now < record.until);
        self.records.retain(|_, (_, until)| now < *until);
        // A burst's tables go back to the allocator once it has passed (and, being
        // large, to the system: see `main`).
        shrink(&mut self.verifications);
        shrink(&mut self.current);
        shrink(&mut self.numbers);
    }

    fn verification(&self, id: &str) -> Option<Verification> {
        let id = id_of(id)?;
        let packed = self.verifications.get(&id)?;
        Some(packed.unpack(&id, &self.names))
    }

    /// The verification `key` names: its id, for its number.
    fn verification_at(&self, key: VerificationKey<'_>) -> Option<Verification> {
        self.verification(key.id)
            .filter(|v| v.to.e164() == key.e164)
    }

    fn put_verification(&mut self, v: &Verification) -> Result<(), StoreError> {
        let id = id_of(&v.id).ok_or_else(|| {
            StoreError::new("a verification id must be 32 lowercase hex characters")
        })?;
        let packed = PackedVerification::pack(v, &mut self.names);
        self.verifications.insert(id, packed);
        Ok(())
    }

    fn number(&self, to: &PhoneNumber) -> NumberState {
        self.numbers
            .get(&number_of(to))
            .map(PackedNumber::unpack)
            .unwrap_or_default()
    }

    fn put_number(&mut self, to: &PhoneNumber, state: &NumberState) {
        self.numbers
            .insert(number_of(to), PackedNumber::pack(state));
    }

    fn current(&self, to: &PhoneNumber) -> Option<Id> {
        self.current.get(&number_of(to)).copied()
    }
}

/// Gives back a table's memory when it holds less than a quarter of what it could.
fn shrink<K: std::hash::Hash + Eq, V>(map: &mut HashMap<K, V>) {
    if map.capacity() > 1024 && map.len() < map.capacity() / 4 {
        map.shrink_to_fit();
    }
}

/// Verification state in this process's memory.
pub struct TokenStorage {
    inner: Mutex<Inner>,
    retain_ended: Duration,
}

impl Default for TokenStorage {
    fn default() -> Self {
        Self {
            inner: Mutex::default(),
            retain_ended: RETAIN_AFTER_EXPIRY,
        }
    }
}

impl TokenStorage {
    pub fn new() -> Self {
        Self::default()
    }

    /// Keeps ended verifications readable for `retain_ended` after they expire.
    pub fn retaining(mut self, retain_ended: Duration) -> Self {
        self.retain_ended = retain_ended;
        self
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave a half-made decision: every
        // method computes on copies or single fields, so the data is still usable.
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Entries currently held (verifications, numbers, addresses), for tests of the sweep.
    pub fn len(&self) -> usize {
        let inner = self.lock();
        inner.verifications.len() + inner.numbers.len() + inner.ips.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// `issue_code`, on the state.
    fn issue(
        inner: &mut Inner,
        fresh: Verification,
        now: SystemTime,
    ) -> Result<Verification, StoreError> {
        let existing = inner
            .current(&fresh.to)
            .and_then(|id| {
                inner
                    .verifications
                    .get(&id)
                    .map(|p| p.unpack(&id, &inner.names))
            })
            .filter(|v| v.status_at(now) == Status::Pending);
        if let Some(mut existing) = existing {
            if existing.browser != fresh.browser {
                // Another browser (or the API) started this number: the earlier
                // verification ends, so one number has one live code.
                existing.status = Status::Canceled;
                existing.voice = None;
                inner.put_verification(&existing)?;
                return Self::insert_current(inner, fresh);
            }
            existing.checker = fresh.checker;
            existing.channel = fresh.channel;
            existing.last_sent_at = fresh.last_sent_at;
            existing.expires_at = fresh.expires_at;
            existing.voice = fresh.voice;
            existing.locale = fresh.locale;
            inner.put_verification(&existing)?;
            return Ok(existing);
        }
        Self::insert_current(inner, fresh)
    }

    /// Stores `fresh` as its number's current verification.
    fn insert_current(inner: &mut Inner, fresh: Verification) -> Result<Verification, StoreError> {
        inner.put_verification(&fresh)?;
        let id = id_of(&fresh.id).expect("just stored");
        inner.current.insert(number_of(&fresh.to), id);
        Ok(fresh)
    }
}

#[async_trait]
impl VerificationStore for TokenStorage {
    async fn take_send_slot(
        &self,
        to: &PhoneNumber,
        ip: Option<IpAddr>,
        now: SystemTime,
        limits: &SendLimits,
        guard: Option<Guarded<'_>>,
    ) -> Result<SlotDecision, StoreError> {
        let mut inner = self.lock();
        inner.sweep_if_due(now, self.retain_ended);
        Ok(inner.take_send_slot(to, ip, now, limits, guard))
    }

    async fn take_slot_and_issue(
        &self,
        fresh: Verification,
        ip: Option<IpAddr>,
        now: SystemTime,
        limits: &SendLimits,
        guard: Option<Guarded<'_>>,
    ) -> Result<StartDecision, StoreError> {
        // Both under one lock: one atomic step.
        let mut inner = self.lock();
        inner.sweep_if_due(now, self.retain_ended);
        let decision = inner.take_send_slot(&fresh.to, ip, now, limits, guard);
        if let Some(refused) = decision.refusal() {
            return Ok(refused);
        }
        let issued = Self::issue(&mut inner, fresh, now)?;
        Ok(StartDecision::Issued(Box::new(issued)))
    }

    async fn record_approval(
        &self,
        prefix: &str,
        now: SystemTime,
        limits: &FraudLimits,
    ) -> Result<(), StoreError> {
        let mut inner = self.lock();
        let (state, until) = inner
            .prefixes
            .entry(prefix.to_string())
            .or_insert_with(|| (PrefixState::default(), now));
        guard::record_approval(state, now, limits);
        *until = state.retain_until(limits).unwrap_or(now);
        Ok(())
    }

    async fn issue_code(
        &self,
        fresh: Verification,
        now: SystemTime,
    ) -> Result<Verification, StoreError> {
        let mut inner = self.lock();
        inner.sweep_if_due(now, self.retain_ended);
        Self::issue(&mut inner, fresh, now)
    }

    async fn add_send_attempt(
        &self,
        key: VerificationKey<'_>,
        attempt: SendAttempt,
    ) -> Result<(), StoreError> {
        let mut inner = self.lock();
        if let Some(mut v) = inner.verification_at(key) {
            v.send_attempts.push(attempt);
            inner.put_verification(&v)?;
        }
        Ok(())
    }

    async fn check_code(
        &self,
        target: CheckTarget<'_>,
        candidate: &CodeHash,
        now: SystemTime,
        limits: &CheckLimits,
        send_window: Duration,
        rebind: Option<&str>,
    ) -> Result<CheckDecision, StoreError> {
        let mut inner = self.lock();
        let found = match target {
            CheckTarget::Key(key) => inner.verification_at(key),
            CheckTarget::Current(to) => inner.current(to).and_then(|id| {
                inner.verification_at(VerificationKey {
                    id: &id_text(&id),
                    e164: to.e164(),
                })
            }),
        };
        let Some(mut verification) = found else {
            return Ok(CheckDecision::NotFound);
        };
        let mut number = inner.number(&verification.to);
        let result = rules::begin_check(
            &mut verification,
            &mut number,
            candidate,
            now,
            limits,
            send_window,
        );
        if let (Ok(CheckStep::Evaluated(outcome)), Some(browser)) = (&result, rebind)
            && outcome.valid
        {
            verification.browser = Some(browser.to_string());
        }
        inner.put_verification(&verification)?;
        if !matches!(result, Err(CheckRefusal::NotPending(_))) {
            inner.put_number(&verification.to, &number);
        }
        Ok(match result {
            Ok(CheckStep::Evaluated(outcome)) => CheckDecision::Evaluated(verification, outcome),
            Ok(CheckStep::Delegated) => CheckDecision::Delegated(verification),
            Err(refusal) => CheckDecision::Refused(verification, refusal),
        })
    }

    async fn settle_check(
        &self,
        key: VerificationKey<'_>,
        verdict: Verdict,
        now: SystemTime,
        limits: &CheckLimits,
        send_window: Duration,
        rebind: Option<&str>,
    ) -> Result<Option<Verification>, StoreError> {
        let mut inner = self.lock();
        let Some(mut verification) = inner.verification_at(key) else {
            return Ok(None);
        };
        let mut number = inner.number(&verification.to);
        let was_pending = verification.status == Status::Pending;
        rules::settle_check(
            &mut verification,
            &mut number,
            verdict,
            now,
            limits,
            send_window,
        );
        if let (true, Status::Approved, Some(browser)) = (was_pending, verification.status, rebind)
        {
            verification.browser = Some(browser.to_string());
        }
        inner.put_verification(&verification)?;
        inner.put_number(&verification.to, &number);
        Ok(Some(verification))
    }

    async fn hand_over(
        &self,
        key: VerificationKey<'_>,
        check: ProviderCheck,
    ) -> Result<bool, StoreError> {
        let mut inner = self.lock();
        match inner.verification_at(key) {
            Some(mut v) if v.status == Status::Pending => {
                v.checker = Checker::Provider(check);
                v.voice = None;
                inner.put_verification(&v)?;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn get(&self, id: &str) -> Result<Option<Verification>, StoreError> {
        Ok(self.lock().verification(id))
    }

    async fn number_of(&self, id: &str) -> Result<Option<String>, StoreError> {
        let inner = self.lock();
        Ok(id_of(id)
            .and_then(|id| inner.verifications.get(&id))
            .map(PackedVerification::e164))
    }

    async fn current_for(&self, to: &PhoneNumber) -> Result<Option<String>, StoreError> {
        Ok(self.lock().current(to).map(|id| id_text(&id)))
    }

    async fn end_pending(
        &self,
        id: &str,
        status: Status,
        now: SystemTime,
    ) -> Result<Option<Verification>, StoreError> {
        let mut inner = self.lock();
        let Some(mut v) = inner.verification(id) else {
            return Ok(None);
        };
        if v.status_at(now) != Status::Pending {
            return Ok(None);
        }
        v.status = status;
        v.voice = None;
        inner.put_verification(&v)?;
        Ok(Some(v))
    }

    async fn set_delivery_status(
        &self,
        id: &str,
        provider: &str,
        provider_ref: Option<&str>,
        status: &str,
    ) -> Result<bool, StoreError> {
        let mut inner = self.lock();
        let Some(mut v) = inner.verification(id) else {
            return Ok(false);
        };
        match super::matching_attempt(&mut v.send_attempts, provider, provider_ref) {
            Some(attempt) => {
                attempt.delivery_status = Some(status.to_string());
                inner.put_verification(&v)?;
                Ok(true)
            }
            None => Ok(false),
        }
    }

    async fn claim_idempotency_key(
        &self,
        key: &str,
        fingerprint: &str,
        now: SystemTime,
        ttl: Duration,
    ) -> Result<IdempotencyClaim, StoreError> {
        let mut inner = self.lock();
        inner.sweep_if_due(now, self.retain_ended);
        if let Some(record) = inner.idempotency.get(key).filter(|r| now < r.until) {
            return Ok(if record.fingerprint != fingerprint {
                IdempotencyClaim::Conflict
            } else {
                match &record.response {
                    Some(response) => IdempotencyClaim::Replay(response.clone()),
                    None => IdempotencyClaim::InProgress,
                }
            });
        }
        let record = IdempotencyRecord {
            fingerprint: fingerprint.to_string(),
            response: None,
            until: now + ttl,
        };
        inner.idempotency.insert(key.to_string(), record);
        Ok(IdempotencyClaim::Claimed)
    }

    async fn complete_idempotency_key(
        &self,
        key: &str,
        response: StoredResponse,
    ) -> Result<(), StoreError> {
        if let Some(record) = self.lock().idempotency.get_mut(key) {
            record.response = Some(response);
        }
        Ok(())
    }

    async fn release_idempotency_key(&self, key: &str) -> Result<(), StoreError> {
        self.lock().idempotency.remove(key);
        Ok(())
    }

    async fn put_record(
        &self,
        kind: &str,
        key: &str,
        value: &str,
        expires_at: SystemTime,
    ) -> Result<(), StoreError> {
        if super::record_key_valid(key) {
            self.lock().records.insert(
                (kind.to_string(), key.to_string()),
                (value.to_string(), expires_at),
            );
        }
        Ok(())
    }

    async fn get_record(
        &self,
        kind: &str,
        key: &str,
        now: SystemTime,
    ) -> Result<Option<String>, StoreError> {
        let inner = self.lock();
        Ok(inner
            .records
            .get(&(kind.to_string(), key.to_string()))
            .filter(|(_, until)| now < *until)
            .map(|(value, _)| value.clone()))
    }

    async fn take_record(
        &self,
        kind: &str,
        key: &str,
        now: SystemTime,
    ) -> Result<Option<String>, StoreError> {
        let mut inner = self.lock();
        inner.sweep_if_due(now, self.retain_ended);
        Ok(inner
            .records
            .remove(&(kind.to_string(), key.to_string()))
            .filter(|(_, until)| now < *until)
            .map(|(value, _)| value))
    }

    async fn ping(&self) -> Result<(), StoreError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn memory_store_passes_the_contract() {
        super::super::contract::run_all(|| Box::new(TokenStorage::new())).await;
    }

    #[tokio::test]
    async fn a_record_past_its_expiry_is_gone() {
        let store = TokenStorage::new();
        let at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        store
            .put_record("code", "k", "v", at + Duration::from_secs(60))
            .await
            .unwrap();
        let later = at + Duration::from_secs(60);
        assert_eq!(store.get_record("code", "k", later).await.unwrap(), None);
        assert_eq!(store.take_record("code", "k", later).await.unwrap(), None);
    }

    #[tokio::test]
    async fn expired_entries_are_swept() {
        let store = TokenStorage::new();
        let start = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        super::super::contract::fill_with_short_lived_state(&store, start).await;
        assert!(!store.is_empty());
        // Long after everything expired, any write sweeps.
        let later = start + Duration::from_secs(24 * 3600);
        let phone = PhoneNumber::from_e164("+12015550100").unwrap();
        let limits = super::super::contract::SEND;
        store
            .take_send_slot(&phone, "10.9.9.9".parse().ok(), later, &limits, None)
            .await
            .unwrap();
        assert_eq!(store.len(), 2, "only the new number and address remain");
    }

    #[tokio::test]
    async fn an_ended_verification_is_readable_for_the_retention_then_forgotten() {
        let start = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let phone = PhoneNumber::from_e164("+12015550100").unwrap();
        let other = PhoneNumber::from_e164("+12015550101").unwrap();
        let limits = super::super::contract::SEND;
        for (retention, kept) in [
            (Duration::from_secs(60), false),
            (RETAIN_AFTER_EXPIRY, true),
        ] {
            let store = TokenStorage::new().retaining(retention);
            let fresh = super::super::contract::fresh(&phone, "123456", start);
            let expires = fresh.expires_at;
            let id = store.issue_code(fresh, start).await.unwrap().id;
            // Expired 61 s ago: readable under the default retention, not under 60 s.
            let later = expires + Duration::from_secs(61);
            store
                .take_send_slot(&other, None, later, &limits, None)
                .await
                .unwrap();
            assert_eq!(
                store.get(&id).await.unwrap().is_some(),
                kept,
                "{retention:?}"
            );
            assert_eq!(store.current_for(&phone).await.unwrap().is_some(), kept);
        }
    }
}
