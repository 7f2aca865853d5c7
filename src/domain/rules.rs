//! The verification rules as pure functions over state, with the time passed in.
//! Stores call them inside one critical section (memory) or mirror them in one
//! script (Redis), so every decision is atomic; tests call them with any clock.

use std::net::{IpAddr, Ipv6Addr};
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use super::model::{Checker, RetryAfter, Status, Verdict, Verification};
use super::window::WindowCount;
use crate::code::CodeHash;

/// Limits on sending codes: a cooldown and a window per number, a window per address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SendLimits {
    pub cooldown: Duration,
    pub max_per_number: u32,
    pub number_window: Duration,
    pub max_per_ip: u32,
    pub ip_window: Duration,
}

/// Limits on checking codes: wrong codes per verification, consecutive wrong codes
/// per number before it is locked, and how long the lock lasts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckLimits {
    pub max_attempts: u32,
    pub lockout_failures: u32,
    pub lockout: Duration,
}

/// What is remembered about one number across its verifications.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NumberState {
    /// Consecutive wrong codes, across codes and verifications; a right code resets it.
    pub failures: u32,
    /// The failure count is forgotten after this (a lockout's length after the last failure).
    pub failures_until: Option<SystemTime>,
    pub locked_until: Option<SystemTime>,
    /// The latest send, for the resend cooldown.
    pub last_send: Option<SystemTime>,
    /// Sends within the send window, counted in constant memory.
    pub sends: WindowCount,
    /// After this the state says nothing that matters and may be dropped.
    pub retain_until: Option<SystemTime>,
}

/// Recent sends from one client address.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SendLog {
    pub sends: WindowCount,
}

impl SendLog {
    pub fn retain_until(&self, window: Duration) -> Option<SystemTime> {
        self.sends.retain_until(window)
    }
}

/// Why a check was not evaluated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckRefusal {
    /// The verification no longer takes codes (approved, expired, used up, ...).
    NotPending(Status),
    /// The number is locked after too many consecutive wrong codes, or (for a code a
    /// provider checks) the checks already on their way would use up what is left.
    Locked(RetryAfter),
}

/// Where a check goes once the rules allow it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckStep {
    /// Evaluated against our hash.
    Evaluated(CheckOutcome),
    /// The code is the provider's: an attempt is reserved (counted as a wrong code until
    /// the provider's verdict settles it) and the provider must be asked.
    Delegated,
}

/// How long a check waits for the checks already on their way to the provider.
pub const IN_FLIGHT_WAIT: RetryAfter = RetryAfter(Duration::from_secs(1));

/// The result of an evaluated check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckOutcome {
    pub valid: bool,
}

impl NumberState {
    fn forget_stale(&mut self, now: SystemTime, window: Duration) {
        if self.failures_until.is_some_and(|until| now >= until) {
            self.failures = 0;
            self.failures_until = None;
        }
        if self.locked_until.is_some_and(|until| now >= until) {
            self.locked_until = None;
        }
        self.sends.forget(now, window);
    }

    fn locked(&self, now: SystemTime) -> Option<RetryAfter> {
        self.locked_until
            .filter(|until| now < *until)
            .map(|until| RetryAfter::between(now, until))
    }

    fn update_retention(&mut self, window: Duration) {
        let candidates = [
            self.failures_until,
            self.locked_until,
            self.sends.retain_until(window),
            self.last_send.map(|t| t + window),
        ];
        self.retain_until = candidates.into_iter().flatten().max();
    }
}

/// The address a per-IP limit counts: IPv4 addresses as they are (IPv4-mapped IPv6 ones
/// too), IPv6 addresses by their first `ipv6_prefix_len` bits, since one subscriber
/// usually holds a whole /64 and could otherwise take a new address for every send.
pub fn ip_bucket(ip: IpAddr, ipv6_prefix_len: u8) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let bits = u32::from(ipv6_prefix_len.min(128));
                let mask = u128::MAX.checked_shl(128 - bits).unwrap_or(0);
                IpAddr::V6(Ipv6Addr::from(u128::from(v6) & mask))
            }
        },
    }
}

/// Takes a send slot for `number` from `ip`, or says how long to wait. Refused when the
/// number is locked, within the resend cooldown, or over the per-number or per-IP window.
pub fn take_send_slot(
    number: &mut NumberState,
    ip: &mut SendLog,
    now: SystemTime,
    limits: &SendLimits,
) -> Result<(), RetryAfter> {
    number.forget_stale(now, limits.number_window);
    ip.sends.forget(now, limits.ip_window);

    let mut waits = Vec::new();
    if let Some(wait) = number.locked(now) {
        waits.push(wait);
    }
    if let Some(last) = number.last_send
        && now < last + limits.cooldown
    {
        waits.push(RetryAfter::between(now, last + limits.cooldown));
    }
    let per_number = number
        .sends
        .room(now, limits.number_window, limits.max_per_number.into());
    let per_ip = ip
        .sends
        .room(now, limits.ip_window, limits.max_per_ip.into());
    waits.extend(per_number.err());
    waits.extend(per_ip.err());
    // Several limits may apply; the person can only retry once all have passed.
    if let Some(longest) = waits.into_iter().max_by_key(|w| w.0) {
        return Err(longest);
    }
    number.sends.add(now, limits.number_window, 1);
    number.last_send = Some(now);
    ip.sends.add(now, limits.ip_window, 1);
    number.update_retention(limits.number_window.max(limits.cooldown));
    Ok(())
}

/// The first step of every check: the rules, then the evaluation of a code we hold
/// (`check_code`) or, for a code a provider owns, a reserved attempt (counted on the
/// verification and the number like a wrong code until `settle_check` settles it, so
/// checks on their way together never exceed what the limits allow).
pub fn begin_check(
    verification: &mut Verification,
    number: &mut NumberState,
    candidate: &CodeHash,
    now: SystemTime,
    limits: &CheckLimits,
    send_window: Duration,
) -> Result<CheckStep, CheckRefusal> {
    if matches!(verification.checker, Checker::Hash(_)) {
        return check_code(verification, number, candidate, now, limits, send_window)
            .map(CheckStep::Evaluated);
    }
    refuse_unless_checkable(verification, number, now, send_window)?;
    if verification.failed_checks >= limits.max_attempts
        || number.failures >= limits.lockout_failures
    {
        return Err(CheckRefusal::Locked(IN_FLIGHT_WAIT));
    }
    verification.failed_checks += 1;
    number.failures += 1;
    number.failures_until = Some(now + limits.lockout);
    number.update_retention(send_window);
    Ok(CheckStep::Delegated)
}

/// A verification that no longer takes codes, or a locked number, is not checked.
fn refuse_unless_checkable(
    verification: &mut Verification,
    number: &mut NumberState,
    now: SystemTime,
    send_window: Duration,
) -> Result<(), CheckRefusal> {
    number.forget_stale(now, send_window);
    let status = verification.status_at(now);
    if status != Status::Pending {
        verification.status = status;
        return Err(CheckRefusal::NotPending(status));
    }
    match number.locked(now) {
        Some(wait) => Err(CheckRefusal::Locked(wait)),
        None => Ok(()),
    }
}

/// Evaluates one submitted code against `verification`'s hash, counting the attempt on
/// both the verification and the number before the result is known. (A code a provider
/// owns matches no hash: `begin_check` sends it to the provider instead.)
pub fn check_code(
    verification: &mut Verification,
    number: &mut NumberState,
    candidate: &CodeHash,
    now: SystemTime,
    limits: &CheckLimits,
    send_window: Duration,
) -> Result<CheckOutcome, CheckRefusal> {
    refuse_unless_checkable(verification, number, now, send_window)?;
    let valid = match &verification.checker {
        Checker::Hash(hash) => hash.matches(candidate),
        Checker::Provider(_) => false,
    };
    if valid {
        verification.status = Status::Approved;
        verification.voice = None;
        number.failures = 0;
        number.failures_until = None;
    } else {
        verification.failed_checks += 1;
        if verification.failed_checks >= limits.max_attempts {
            verification.status = Status::MaxAttemptsReached;
            verification.voice = None;
        }
        number.failures += 1;
        number.failures_until = Some(now + limits.lockout);
        if number.failures >= limits.lockout_failures {
            lock(number, now, limits);
        }
    }
    number.update_retention(send_window);
    Ok(CheckOutcome { valid })
}

fn lock(number: &mut NumberState, now: SystemTime, limits: &CheckLimits) {
    number.locked_until = Some(now + limits.lockout);
    number.failures = 0;
    number.failures_until = None;
}

/// Settles an attempt reserved by `check_code` with the provider's verdict: a right code
/// approves (if the verification is still pending) and clears the number's failures; a
/// wrong one keeps its count and may end the verification or lock the number; a
/// verification the provider no longer knows expires (the attempt still counts towards
/// the number's lockout); an unanswered check gives the attempt back.
pub fn settle_check(
    verification: &mut Verification,
    number: &mut NumberState,
    verdict: Verdict,
    now: SystemTime,
    limits: &CheckLimits,
    send_window: Duration,
) {
    let pending = verification.status == Status::Pending;
    let end = |v: &mut Verification, status: Status| {
        if pending {
            v.status = status;
            v.voice = None;
        }
    };
    match verdict {
        Verdict::Approved => {
            verification.failed_checks = verification.failed_checks.saturating_sub(1);
            end(verification, Status::Approved);
            number.failures = 0;
            number.failures_until = None;
        }
        Verdict::Wrong => {
            if verification.failed_checks >= limits.max_attempts {
                end(verification, Status::MaxAttemptsReached);
            }
            if number.failures >= limits.lockout_failures {
                lock(number, now, limits);
            }
        }
        Verdict::Expired => {
            verification.failed_checks = verification.failed_checks.saturating_sub(1);
            end(verification, Status::Expired);
        }
        Verdict::Exhausted => {
            end(verification, Status::MaxAttemptsReached);
            if number.failures >= limits.lockout_failures {
                lock(number, now, limits);
            }
        }
        Verdict::Unanswered => {
            verification.failed_checks = verification.failed_checks.saturating_sub(1);
            number.failures = number.failures.saturating_sub(1);
        }
    }
    number.update_retention(send_window);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::code::{CodeAlphabet, CodeFormat, CodeHasher};
    use crate::domain::Channel;
    use crate::phone::PhoneNumber;

    const SEND: SendLimits = SendLimits {
        cooldown: Duration::from_secs(30),
        max_per_number: 3,
        number_window: Duration::from_secs(600),
        max_per_ip: 5,
        ip_window: Duration::from_secs(300),
    };
    const CHECK: CheckLimits = CheckLimits {
        max_attempts: 5,
        lockout_failures: 10,
        lockout: Duration::from_secs(3600),
    };
    const WINDOW: Duration = Duration::from_secs(600);

    fn t(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000 + secs)
    }

    fn hash(code: &str) -> CodeHash {
        let format = CodeFormat {
            alphabet: CodeAlphabet::Digits,
            length: 6,
        };
        CodeHasher::new([3; 32]).hash("+12015550123", &format.parse(code).unwrap())
    }

    fn verification(at: SystemTime) -> Verification {
        Verification {
            id: "v".into(),
            to: PhoneNumber::from_e164("+12015550123").unwrap(),
            channel: Channel::Sms,
            status: Status::Pending,
            created_at: at,
            last_sent_at: at,
            expires_at: at + Duration::from_secs(600),
            failed_checks: 0,
            send_attempts: vec![],
            checker: Checker::Hash(hash("123456")),
            voice: None,
            browser: None,
            locale: Default::default(),
        }
    }

    #[test]
    fn ipv6_clients_count_per_prefix_and_ipv4_per_address() {
        let bucket = |raw: &str, bits| ip_bucket(raw.parse().unwrap(), bits).to_string();
        assert_eq!(
            bucket("2001:db8:1:2:aaaa:bbbb:cccc:dddd", 64),
            "2001:db8:1:2::"
        );
        assert_eq!(
            bucket("2001:db8:1:2::1", 64),
            bucket("2001:db8:1:2:ffff::9", 64)
        );
        assert_ne!(bucket("2001:db8:1:2::1", 64), bucket("2001:db8:1:3::1", 64));
        assert_eq!(bucket("2001:db8:1:2::1", 128), "2001:db8:1:2::1");
        assert_eq!(bucket("2001:db8:1:2::1", 48), "2001:db8:1::");
        assert_eq!(bucket("198.51.100.7", 64), "198.51.100.7");
        assert_eq!(bucket("::ffff:198.51.100.7", 64), "198.51.100.7");
    }

    #[test]
    fn resend_within_cooldown_is_refused_until_it_passes() {
        let (mut number, mut ip) = Default::default();
        assert_eq!(take_send_slot(&mut number, &mut ip, t(0), &SEND), Ok(()));
        assert_eq!(
            take_send_slot(&mut number, &mut ip, t(10), &SEND),
            Err(RetryAfter(Duration::from_secs(20)))
        );
        assert_eq!(take_send_slot(&mut number, &mut ip, t(30), &SEND), Ok(()));
    }

    #[test]
    fn zero_cooldown_allows_back_to_back_sends() {
        let limits = SendLimits {
            cooldown: Duration::ZERO,
            ..SEND
        };
        let (mut number, mut ip) = Default::default();
        assert_eq!(take_send_slot(&mut number, &mut ip, t(0), &limits), Ok(()));
        assert_eq!(take_send_slot(&mut number, &mut ip, t(0), &limits), Ok(()));
    }

    #[test]
    fn per_number_window_refuses_the_send_after_the_maximum() {
        let (mut number, mut ip) = Default::default();
        for i in 0..3 {
            assert_eq!(
                take_send_slot(&mut number, &mut ip, t(i * 40), &SEND),
                Ok(())
            );
        }
        // The oldest send (t=0) leaves the window at t=600.
        assert_eq!(
            take_send_slot(&mut number, &mut ip, t(200), &SEND),
            Err(RetryAfter(Duration::from_secs(400)))
        );
        assert_eq!(take_send_slot(&mut number, &mut ip, t(600), &SEND), Ok(()));
    }

    #[test]
    fn per_ip_window_counts_sends_to_different_numbers() {
        let mut ip = SendLog::default();
        for i in 0..5 {
            assert_eq!(
                take_send_slot(&mut NumberState::default(), &mut ip, t(i), &SEND),
                Ok(())
            );
        }
        assert_eq!(
            take_send_slot(&mut NumberState::default(), &mut ip, t(10), &SEND),
            Err(RetryAfter(Duration::from_secs(290)))
        );
    }

    #[test]
    fn a_refused_send_takes_no_slot() {
        let (mut number, mut ip) = Default::default();
        take_send_slot(&mut number, &mut ip, t(0), &SEND).unwrap();
        let _ = take_send_slot(&mut number, &mut ip, t(1), &SEND);
        assert_eq!(number.sends.len(), 1);
        assert_eq!(ip.sends.len(), 1);
    }

    #[test]
    fn the_right_code_approves_once() {
        let mut v = verification(t(0));
        let mut number = NumberState::default();
        let ok = check_code(&mut v, &mut number, &hash("123456"), t(1), &CHECK, WINDOW);
        assert_eq!(ok, Ok(CheckOutcome { valid: true }));
        assert_eq!(v.status, Status::Approved);
        let again = check_code(&mut v, &mut number, &hash("123456"), t(2), &CHECK, WINDOW);
        assert_eq!(again, Err(CheckRefusal::NotPending(Status::Approved)));
    }

    #[test]
    fn an_expired_code_is_refused_even_when_right() {
        let mut v = verification(t(0));
        let result = check_code(
            &mut v,
            &mut NumberState::default(),
            &hash("123456"),
            t(600),
            &CHECK,
            WINDOW,
        );
        assert_eq!(result, Err(CheckRefusal::NotPending(Status::Expired)));
        assert_eq!(v.status, Status::Expired);
    }

    #[test]
    fn the_last_allowed_wrong_code_ends_the_verification() {
        let mut v = verification(t(0));
        let mut number = NumberState::default();
        for i in 1..=5 {
            let r = check_code(&mut v, &mut number, &hash("000000"), t(i), &CHECK, WINDOW);
            assert_eq!(r, Ok(CheckOutcome { valid: false }), "attempt {i}");
        }
        assert_eq!(v.status, Status::MaxAttemptsReached);
        assert_eq!(v.attempts_remaining(5), 0);
        let r = check_code(&mut v, &mut number, &hash("123456"), t(9), &CHECK, WINDOW);
        assert_eq!(r, Err(CheckRefusal::NotPending(Status::MaxAttemptsReached)));
    }

    #[test]
    fn consecutive_failures_lock_the_number_across_verifications() {
        let mut number = NumberState::default();
        // Two verifications of 5 wrong codes each: a new code does not reset the count.
        for round in 0..2 {
            let mut v = verification(t(round * 100));
            for i in 0..5 {
                let _ = check_code(
                    &mut v,
                    &mut number,
                    &hash("000000"),
                    t(round * 100 + i),
                    &CHECK,
                    WINDOW,
                );
            }
        }
        let mut fresh = verification(t(300));
        let r = check_code(
            &mut fresh,
            &mut number,
            &hash("123456"),
            t(301),
            &CHECK,
            WINDOW,
        );
        assert!(matches!(r, Err(CheckRefusal::Locked(_))), "{r:?}");
        // Sending is refused while locked, too.
        let send = take_send_slot(&mut number, &mut SendLog::default(), t(302), &SEND);
        assert!(send.is_err());
        // After the lockout the number works again.
        let later = t(104 + 3600);
        let mut v = verification(later);
        let r = check_code(&mut v, &mut number, &hash("123456"), later, &CHECK, WINDOW);
        assert_eq!(r, Ok(CheckOutcome { valid: true }));
    }

    #[test]
    fn a_right_code_resets_the_failure_count() {
        let mut number = NumberState::default();
        let mut v = verification(t(0));
        for i in 0..4 {
            let _ = check_code(&mut v, &mut number, &hash("000000"), t(i), &CHECK, WINDOW);
        }
        check_code(&mut v, &mut number, &hash("123456"), t(5), &CHECK, WINDOW).unwrap();
        assert_eq!(number.failures, 0);
    }

    #[test]
    fn a_locked_number_evaluates_nothing() {
        let mut number = NumberState {
            locked_until: Some(t(100)),
            ..Default::default()
        };
        let mut v = verification(t(0));
        let r = check_code(&mut v, &mut number, &hash("000000"), t(1), &CHECK, WINDOW);
        assert_eq!(
            r,
            Err(CheckRefusal::Locked(RetryAfter(Duration::from_secs(99))))
        );
        assert_eq!(v.failed_checks, 0);
    }

    #[test]
    fn retention_covers_every_remembered_fact() {
        let (mut number, mut ip) = Default::default();
        take_send_slot(&mut number, &mut ip, t(0), &SEND).unwrap();
        assert_eq!(number.retain_until, Some(t(600)));
        let mut v = verification(t(0));
        let _ = check_code(&mut v, &mut number, &hash("000000"), t(1), &CHECK, WINDOW);
        assert_eq!(number.retain_until, Some(t(3601)));
    }
}
