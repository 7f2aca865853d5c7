//! The acceptance suite every `VerificationStore` backend must pass (after
//! actix-session's one-suite-for-all-backends): same rules, same atomicity.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::{
    CheckDecision, CheckTarget, Guarded, IdempotencyClaim, SlotDecision, StartDecision,
    StoredResponse, VerificationKey, VerificationStore,
};
use crate::code::{CodeAlphabet, CodeFormat, CodeHash, CodeHasher};
use crate::domain::guard::{FraudLimits, GuardLimits, GuardRefusal, SendFacts};
use crate::domain::rules::{CheckLimits, CheckOutcome, CheckRefusal, SendLimits};
use crate::domain::{Channel, Checker, ProviderCheck, SendAttempt, Status, Verdict, Verification};
use crate::phone::PhoneNumber;

pub(crate) const SEND: SendLimits = SendLimits {
    cooldown: Duration::from_secs(30),
    max_per_number: 3,
    number_window: Duration::from_secs(600),
    max_per_ip: 4,
    ip_window: Duration::from_secs(300),
};
pub(crate) const CHECK: CheckLimits = CheckLimits {
    max_attempts: 5,
    lockout_failures: 8,
    lockout: Duration::from_secs(3600),
};
const WINDOW: Duration = Duration::from_secs(600);

fn t(secs: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000 + secs)
}

fn phone(n: u32) -> PhoneNumber {
    PhoneNumber::from_e164(&format!("+1201555{n:04}")).unwrap()
}

fn hash(to: &PhoneNumber, code: &str) -> CodeHash {
    let format = CodeFormat {
        alphabet: CodeAlphabet::Digits,
        length: 6,
    };
    CodeHasher::new([9; 32]).hash(to.e164(), &format.parse(code).unwrap())
}

pub(crate) fn fresh(to: &PhoneNumber, code: &str, at: SystemTime) -> Verification {
    Verification {
        id: crate::code::random_hex(16),
        to: to.clone(),
        channel: Channel::Sms,
        status: Status::Pending,
        created_at: at,
        last_sent_at: at,
        expires_at: at + Duration::from_secs(600),
        failed_checks: 0,
        send_attempts: vec![],
        checker: Checker::Hash(hash(to, code)),
        voice: None,
        browser: None,
        locale: Default::default(),
    }
}

async fn check(
    store: &dyn VerificationStore,
    v: &Verification,
    code: &str,
    at: SystemTime,
) -> CheckDecision {
    check_at(store, v.key().into(), &hash(&v.to, code), at).await
}

/// A check of `candidate` against what `target` names, under the contract's limits.
async fn check_at(
    store: &dyn VerificationStore,
    target: CheckTarget<'_>,
    candidate: &CodeHash,
    at: SystemTime,
) -> CheckDecision {
    store
        .check_code(target, candidate, at, &CHECK, WINDOW, None)
        .await
        .unwrap()
}

fn outcome(decision: &CheckDecision) -> Result<bool, CheckRefusal> {
    match decision {
        CheckDecision::Evaluated(_, CheckOutcome { valid }) => Ok(*valid),
        CheckDecision::Refused(_, refusal) => Err(*refusal),
        CheckDecision::NotFound => panic!("verification not found"),
        CheckDecision::Delegated(_) => panic!("a code we hold was delegated"),
    }
}

/// A verification whose code `provider` generated and sent, handed over to it.
async fn handed_over(
    store: &dyn VerificationStore,
    to: &PhoneNumber,
    at: SystemTime,
) -> Verification {
    let mut v = fresh(to, "123456", at);
    v.channel = Channel::Call;
    v.voice = Some(crate::domain::VoiceTicket {
        secret: "s".into(),
        sealed_code: "sealed".into(),
    });
    let v = store.issue_code(v, at).await.unwrap();
    let check = ProviderCheck {
        provider: "twilio_verify".into(),
        reference: "VE123".into(),
    };
    assert!(store.hand_over(v.key(), check).await.unwrap());
    store.get(&v.id).await.unwrap().unwrap()
}

/// Reserves an attempt on `v` and settles it with `verdict`.
async fn provider_check(
    store: &dyn VerificationStore,
    v: &Verification,
    verdict: Verdict,
    at: SystemTime,
) -> Result<Verification, CheckRefusal> {
    match check(store, v, "123456", at).await {
        CheckDecision::Delegated(reserved) => {
            assert_eq!(reserved.checker, v.checker, "the provider's reference");
            Ok(store
                .settle_check(v.key(), verdict, at, &CHECK, WINDOW, None)
                .await
                .unwrap()
                .unwrap())
        }
        CheckDecision::Refused(_, refusal) => Err(refusal),
        other => panic!("a provider's code was evaluated here: {other:?}"),
    }
}

/// Runs every case against fresh stores from `make`. Call it from a multi-threaded
/// runtime: the parallel cases must really run in parallel to prove anything.
pub(crate) async fn run_all(make: impl Fn() -> Box<dyn VerificationStore>) {
    unknown_ids_are_not_found(&*make()).await;
    a_key_with_another_number_names_nothing(&*make()).await;
    a_check_of_the_number_reaches_its_current_verification(&*make()).await;
    issued_codes_round_trip(&*make()).await;
    a_new_code_replaces_the_old_on_the_same_verification(&*make()).await;
    a_number_gets_a_new_verification_after_the_old_one_ended(&*make()).await;
    another_browser_gets_its_own_verification(&*make()).await;
    a_right_code_can_rebind_the_verification(&*make()).await;
    a_code_is_accepted_once(&*make()).await;
    wrong_codes_end_the_verification_at_the_maximum(&*make()).await;
    failures_lock_the_number_across_new_codes(&*make()).await;
    send_slots_follow_the_limits(&*make()).await;
    a_start_issues_the_code_only_when_every_step_grants(&*make()).await;
    without_an_address_no_address_limit_applies(&*make()).await;
    the_fraud_guard_counts_blocks_and_gives_back(&*make()).await;
    the_country_cap_and_the_budget_hold(&*make()).await;
    only_pending_verifications_end(&*make()).await;
    send_attempts_are_appended(&*make()).await;
    delivery_reports_update_the_matching_attempt(&*make()).await;
    voice_tickets_end_with_the_verification(&*make()).await;
    idempotency_keys_replay_conflict_and_expire(&*make()).await;
    records_are_kept_read_and_taken_once(&*make()).await;
    parallel_takes_of_a_record_give_it_to_one(Arc::from(make())).await;
    a_handed_over_code_is_kept_nowhere_and_checked_by_its_provider(&*make()).await;
    provider_verdicts_count_like_our_own_checks(&*make()).await;
    unanswered_checks_give_the_attempt_back(&*make()).await;
    a_new_code_of_ours_takes_back_a_handed_over_verification(&*make()).await;
    parallel_provider_checks_never_exceed_the_maximum(Arc::from(make())).await;
    parallel_right_codes_approve_exactly_once(Arc::from(make())).await;
    parallel_wrong_codes_never_exceed_the_maximum(Arc::from(make())).await;
}

async fn unknown_ids_are_not_found(store: &dyn VerificationStore) {
    assert_eq!(store.get("nope").await.unwrap(), None);
    assert_eq!(store.number_of("nope").await.unwrap(), None);
    let to = phone(1);
    let nope = VerificationKey {
        id: "nope",
        e164: to.e164(),
    };
    let decision = check_at(store, nope.into(), &hash(&phone(1), "123456"), t(0)).await;
    assert_eq!(decision, CheckDecision::NotFound);
    assert_eq!(store.current_for(&phone(1)).await.unwrap(), None);
}

async fn check_current(
    store: &dyn VerificationStore,
    to: &PhoneNumber,
    code: &str,
    at: SystemTime,
) -> CheckDecision {
    check_at(store, CheckTarget::Current(to), &hash(to, code), at).await
}

/// A check of a number reaches the verification it has now: nothing before it has one,
/// the new one once a second replaced the first, which it never reaches again; its
/// wrong codes count as any other check's do.
async fn a_check_of_the_number_reaches_its_current_verification(store: &dyn VerificationStore) {
    let to = phone(3);
    assert_eq!(
        check_current(store, &to, "123456", t(0)).await,
        CheckDecision::NotFound
    );
    let first = store
        .issue_code(fresh(&to, "111111", t(0)), t(0))
        .await
        .unwrap();
    let mut other = fresh(&to, "222222", t(1));
    other.browser = Some("another".into());
    let second = store.issue_code(other, t(1)).await.unwrap();
    assert_ne!(first.id, second.id);
    // The first one's code is no longer the number's.
    let decision = check_current(store, &to, "111111", t(2)).await;
    assert_eq!(outcome(&decision), Ok(false));
    let CheckDecision::Evaluated(v, _) = decision else {
        unreachable!()
    };
    assert_eq!((v.id.as_str(), v.failed_checks), (second.id.as_str(), 1));
    let decision = check_current(store, &to, "222222", t(3)).await;
    assert_eq!(outcome(&decision), Ok(true));
    let CheckDecision::Evaluated(v, _) = decision else {
        unreachable!()
    };
    assert_eq!((v.id, v.status), (second.id, Status::Approved));
    assert_eq!(
        store.get(&first.id).await.unwrap().unwrap().status,
        Status::Canceled
    );
    // Another number's check reaches nothing of this one's.
    assert_eq!(
        check_current(store, &phone(4), "222222", t(3)).await,
        CheckDecision::NotFound
    );
}

/// A verification is named by its id *and* its number: the id under another number (a
/// caller's mistake) neither checks, nor settles, nor records anything on it.
async fn a_key_with_another_number_names_nothing(store: &dyn VerificationStore) {
    let v = store
        .issue_code(fresh(&phone(1), "123456", t(0)), t(0))
        .await
        .unwrap();
    let other = phone(2);
    let elsewhere = VerificationKey {
        id: &v.id,
        e164: other.e164(),
    };
    let decision = check_at(store, elsewhere.into(), &hash(&v.to, "123456"), t(1)).await;
    assert_eq!(decision, CheckDecision::NotFound);
    let attempt = SendAttempt {
        channel: Channel::Sms,
        provider: "telnyx".into(),
        at: t(1),
        delivery_status: None,
        provider_ref: None,
    };
    store.add_send_attempt(elsewhere, attempt).await.unwrap();
    let check = ProviderCheck {
        provider: "twilio_verify".into(),
        reference: "VE1".into(),
    };
    assert!(!store.hand_over(elsewhere, check).await.unwrap());
    let settled = store
        .settle_check(elsewhere, Verdict::Approved, t(1), &CHECK, WINDOW, None)
        .await
        .unwrap();
    assert_eq!(settled, None);
    let stored = store.get(&v.id).await.unwrap().unwrap();
    assert_eq!(stored, v, "untouched");
}

async fn issued_codes_round_trip(store: &dyn VerificationStore) {
    let v = fresh(&phone(1), "123456", t(0));
    let stored = store.issue_code(v.clone(), t(0)).await.unwrap();
    assert_eq!(stored, v);
    assert_eq!(store.get(&v.id).await.unwrap(), Some(v.clone()));
    assert_eq!(
        store.number_of(&v.id).await.unwrap().as_deref(),
        Some("+12015550001")
    );
    assert_eq!(store.current_for(&phone(1)).await.unwrap(), Some(v.id));
    // What issuing answers is what a read gives, to the precision the backend keeps.
    let odd = fresh(&phone(3), "123456", t(0) + Duration::from_nanos(1_234_567));
    let stored = store.issue_code(odd.clone(), t(0)).await.unwrap();
    assert_eq!(Some(stored), store.get(&odd.id).await.unwrap());
}

async fn a_new_code_replaces_the_old_on_the_same_verification(store: &dyn VerificationStore) {
    let first = store
        .issue_code(fresh(&phone(1), "111111", t(0)), t(0))
        .await
        .unwrap();
    assert_eq!(
        outcome(&check(store, &first, "999999", t(1)).await),
        Ok(false)
    );
    let mut second = fresh(&phone(1), "222222", t(40));
    second.channel = Channel::Call;
    let second = store.issue_code(second, t(40)).await.unwrap();
    assert_eq!(second.id, first.id, "same verification");
    assert_eq!(
        second.failed_checks, 1,
        "attempts are not reset by a new code"
    );
    assert_eq!(second.channel, Channel::Call);
    assert_eq!(second.expires_at, t(640));
    assert_eq!(
        outcome(&check(store, &second, "111111", t(41)).await),
        Ok(false),
        "old code"
    );
    assert_eq!(
        outcome(&check(store, &second, "222222", t(42)).await),
        Ok(true),
        "new code"
    );
}

async fn a_number_gets_a_new_verification_after_the_old_one_ended(store: &dyn VerificationStore) {
    let first = store
        .issue_code(fresh(&phone(1), "111111", t(0)), t(0))
        .await
        .unwrap();
    check(store, &first, "111111", t(1)).await;
    let second = store
        .issue_code(fresh(&phone(1), "222222", t(50)), t(50))
        .await
        .unwrap();
    assert_ne!(second.id, first.id);
    assert_eq!(
        store.current_for(&phone(1)).await.unwrap(),
        Some(second.id.clone())
    );
    // An expired one is replaced too.
    let third = store
        .issue_code(fresh(&phone(1), "333333", t(5000)), t(5000))
        .await
        .unwrap();
    assert_ne!(third.id, second.id);
}

fn from_browser(v: Verification, browser: &str) -> Verification {
    Verification {
        browser: Some(browser.into()),
        ..v
    }
}

async fn another_browser_gets_its_own_verification(store: &dyn VerificationStore) {
    let a = from_browser(fresh(&phone(1), "111111", t(0)), "browser-a");
    let a = store.issue_code(a, t(0)).await.unwrap();
    // The same browser again: the same verification, with a new code.
    let again = from_browser(fresh(&phone(1), "222222", t(40)), "browser-a");
    let again = store.issue_code(again, t(40)).await.unwrap();
    assert_eq!(again.id, a.id);
    assert_eq!(again.browser.as_deref(), Some("browser-a"));
    // Another browser: a fresh verification, and the first one ends.
    let b = from_browser(fresh(&phone(1), "333333", t(80)), "browser-b");
    let b = store.issue_code(b, t(80)).await.unwrap();
    assert_ne!(b.id, a.id);
    assert_eq!(b.browser.as_deref(), Some("browser-b"));
    assert_eq!(
        store.get(&a.id).await.unwrap().unwrap().status,
        Status::Canceled
    );
    assert_eq!(
        outcome(&check(store, &again, "222222", t(81)).await),
        Err(CheckRefusal::NotPending(Status::Canceled)),
        "the first browser's code stops working"
    );
    assert_eq!(
        store.current_for(&phone(1)).await.unwrap(),
        Some(b.id.clone())
    );
    // An API start (no browser) does not reuse a browser's verification either.
    let api = store
        .issue_code(fresh(&phone(1), "444444", t(120)), t(120))
        .await
        .unwrap();
    assert_ne!(api.id, b.id);
    assert_eq!(api.browser, None);
    assert_eq!(
        outcome(&check(store, &api, "444444", t(121)).await),
        Ok(true)
    );
}

async fn a_right_code_can_rebind_the_verification(store: &dyn VerificationStore) {
    let v = from_browser(fresh(&phone(2), "123456", t(0)), "old-session");
    let v = store.issue_code(v, t(0)).await.unwrap();
    let wrong = store
        .check_code(
            v.key().into(),
            &hash(&v.to, "000000"),
            t(1),
            &CHECK,
            WINDOW,
            Some("new-session"),
        )
        .await
        .unwrap();
    assert_eq!(outcome(&wrong), Ok(false));
    assert_eq!(
        store.get(&v.id).await.unwrap().unwrap().browser.as_deref(),
        Some("old-session"),
        "a wrong code rebinds nothing"
    );
    let right = store
        .check_code(
            v.key().into(),
            &hash(&v.to, "123456"),
            t(2),
            &CHECK,
            WINDOW,
            Some("new-session"),
        )
        .await
        .unwrap();
    assert_eq!(outcome(&right), Ok(true));
    let stored = store.get(&v.id).await.unwrap().unwrap();
    assert_eq!(stored.browser.as_deref(), Some("new-session"));
    assert_eq!(stored.status, Status::Approved);
}

async fn a_code_is_accepted_once(store: &dyn VerificationStore) {
    let v = store
        .issue_code(fresh(&phone(2), "123456", t(0)), t(0))
        .await
        .unwrap();
    assert_eq!(outcome(&check(store, &v, "123456", t(1)).await), Ok(true));
    assert_eq!(
        store.get(&v.id).await.unwrap().unwrap().status,
        Status::Approved
    );
    assert_eq!(
        outcome(&check(store, &v, "123456", t(2)).await),
        Err(CheckRefusal::NotPending(Status::Approved))
    );
    // Expired: refused even when right, and the status says so.
    let w = store
        .issue_code(fresh(&phone(3), "123456", t(0)), t(0))
        .await
        .unwrap();
    assert_eq!(
        outcome(&check(store, &w, "123456", t(600)).await),
        Err(CheckRefusal::NotPending(Status::Expired))
    );
}

async fn wrong_codes_end_the_verification_at_the_maximum(store: &dyn VerificationStore) {
    let v = store
        .issue_code(fresh(&phone(4), "123456", t(0)), t(0))
        .await
        .unwrap();
    for i in 1..=5 {
        let decision = check(store, &v, "000000", t(i)).await;
        assert_eq!(outcome(&decision), Ok(false));
        if let CheckDecision::Evaluated(after, _) = decision {
            assert_eq!(after.failed_checks, i as u32);
            // The answer is the verification as this check left it.
            let status = if i == 5 {
                Status::MaxAttemptsReached
            } else {
                Status::Pending
            };
            assert_eq!(after.status, status);
        }
    }
    assert_eq!(
        store.get(&v.id).await.unwrap().unwrap().status,
        Status::MaxAttemptsReached
    );
    assert_eq!(
        outcome(&check(store, &v, "123456", t(9)).await),
        Err(CheckRefusal::NotPending(Status::MaxAttemptsReached))
    );
}

async fn failures_lock_the_number_across_new_codes(store: &dyn VerificationStore) {
    let to = phone(5);
    let first = store
        .issue_code(fresh(&to, "111111", t(0)), t(0))
        .await
        .unwrap();
    for i in 0..5 {
        check(store, &first, "000000", t(i)).await;
    }
    let second = store
        .issue_code(fresh(&to, "222222", t(10)), t(10))
        .await
        .unwrap();
    for i in 0..3 {
        assert_eq!(
            outcome(&check(store, &second, "000000", t(11 + i)).await),
            Ok(false)
        );
    }
    // Eight consecutive failures: locked, even for the right code.
    let refused = outcome(&check(store, &second, "222222", t(20)).await);
    assert!(
        matches!(refused, Err(CheckRefusal::Locked(_))),
        "{refused:?}"
    );
    let slot = store
        .take_send_slot(&to, "10.0.0.1".parse().ok(), t(21), &SEND, None)
        .await
        .unwrap();
    assert!(
        matches!(slot, SlotDecision::Refused(_)),
        "no sends while locked"
    );
    // Another number is not affected.
    let other = store
        .issue_code(fresh(&phone(6), "333333", t(22)), t(22))
        .await
        .unwrap();
    assert_eq!(
        outcome(&check(store, &other, "333333", t(23)).await),
        Ok(true)
    );
}

async fn send_slots_follow_the_limits(store: &dyn VerificationStore) {
    let ip = "10.0.0.2".parse().unwrap();
    let to = phone(7);
    assert_eq!(
        store
            .take_send_slot(&to, Some(ip), t(0), &SEND, None)
            .await
            .unwrap(),
        SlotDecision::Granted
    );
    assert_eq!(
        store
            .take_send_slot(&to, Some(ip), t(10), &SEND, None)
            .await
            .unwrap(),
        SlotDecision::Refused(crate::domain::RetryAfter(Duration::from_secs(20)))
    );
    assert_eq!(
        store
            .take_send_slot(&to, Some(ip), t(30), &SEND, None)
            .await
            .unwrap(),
        SlotDecision::Granted
    );
    assert_eq!(
        store
            .take_send_slot(&to, Some(ip), t(60), &SEND, None)
            .await
            .unwrap(),
        SlotDecision::Granted
    );
    assert!(matches!(
        store
            .take_send_slot(&to, "10.0.0.3".parse().ok(), t(90), &SEND, None)
            .await
            .unwrap(),
        SlotDecision::Refused(_)
    ));
    // The address has used 3 of its 4; one more number, then it is refused.
    assert_eq!(
        store
            .take_send_slot(&phone(8), Some(ip), t(91), &SEND, None)
            .await
            .unwrap(),
        SlotDecision::Granted
    );
    assert!(matches!(
        store
            .take_send_slot(&phone(9), Some(ip), t(92), &SEND, None)
            .await
            .unwrap(),
        SlotDecision::Refused(_)
    ));
}

/// `take_slot_and_issue` through each of its paths: the number alone, with an address,
/// with the guard, with both; a refusal by the limits and by the guard issues nothing.
async fn a_start_issues_the_code_only_when_every_step_grants(store: &dyn VerificationStore) {
    let limits = GuardLimits {
        fraud: Some(FRAUD),
        ..Default::default()
    };
    let ip: Option<std::net::IpAddr> = "10.0.0.20".parse().ok();
    let start = |v: Verification, ip: Option<std::net::IpAddr>, guarded: bool, at: u64| {
        let facts = facts(&v.to, 0);
        async move {
            let guard = guarded.then_some(Guarded {
                facts: &facts,
                limits: &limits,
            });
            store
                .take_slot_and_issue(v, ip, t(at), &SEND, guard)
                .await
                .unwrap()
        }
    };
    let issued = |decision: StartDecision| match decision {
        StartDecision::Issued(v) => *v,
        other => panic!("not issued: {other:?}"),
    };
    let read = |id: String| async move { store.get(&id).await.unwrap() };

    let first = issued(start(fresh(&phone(50), "111111", t(0)), None, false, 0).await);
    assert_eq!(read(first.id.clone()).await.as_ref(), Some(&first));
    let early = fresh(&phone(50), "222222", t(10));
    assert_eq!(
        start(early, None, false, 10).await,
        StartDecision::Refused(crate::domain::RetryAfter(Duration::from_secs(20)))
    );
    assert_eq!(
        read(first.id.clone()).await.as_ref(),
        Some(&first),
        "a refused start issues no code"
    );
    let again = issued(start(fresh(&phone(50), "333333", t(40)), None, false, 40).await);
    assert_eq!(
        again.id, first.id,
        "the pending verification gets the new code"
    );
    assert_eq!(again.checker, fresh(&phone(50), "333333", t(40)).checker);
    assert_eq!(read(first.id.clone()).await.as_ref(), Some(&again));
    assert_eq!(
        store.number_of(&first.id).await.unwrap().as_deref(),
        Some(phone(50).e164())
    );

    let by_address = issued(start(fresh(&phone(51), "111111", t(0)), ip, false, 0).await);
    assert_eq!(
        read(by_address.id.clone()).await.as_ref(),
        Some(&by_address)
    );
    let both = issued(start(fresh(&phone(52), "111111", t(1)), ip, true, 1).await);
    assert_eq!(read(both.id.clone()).await.as_ref(), Some(&both));
    // Two more unapproved sends to the prefix, then the guard blocks it: nothing issued.
    for n in 53..55 {
        issued(start(fresh(&phone(n), "111111", t(2)), None, true, 2).await);
    }
    let blocked = fresh(&phone(55), "111111", t(3));
    assert_eq!(
        start(blocked, None, true, 3).await,
        StartDecision::Guarded(GuardRefusal::FraudBlocked { newly: true })
    );
    assert_eq!(store.current_for(&phone(55)).await.unwrap(), None);
    assert_eq!(
        store
            .take_send_slot(&phone(55), None, t(4), &SEND, None)
            .await
            .unwrap(),
        SlotDecision::Granted,
        "the number's slot was given back"
    );
}

async fn without_an_address_no_address_limit_applies(store: &dyn VerificationStore) {
    // SEND allows 4 per address; a backend speaking for many people names none.
    for n in 0..8 {
        assert_eq!(
            store
                .take_send_slot(&phone(30 + n), None, t(0), &SEND, None)
                .await
                .unwrap(),
            SlotDecision::Granted,
            "send {n}"
        );
    }
}

const FRAUD: FraudLimits = FraudLimits {
    window: Duration::from_secs(3600),
    min_sends: 3,
    min_conversion: 0.5,
    block: Duration::from_secs(600),
    prefix_digits: 4,
};

fn facts(to: &PhoneNumber, cost_micros: u64) -> SendFacts {
    SendFacts {
        prefix: crate::domain::guard::prefix_of(to.e164(), 4),
        country: "US".into(),
        cost_micros,
    }
}

async fn the_fraud_guard_counts_blocks_and_gives_back(store: &dyn VerificationStore) {
    let limits = GuardLimits {
        fraud: Some(FRAUD),
        ..Default::default()
    };
    let ip: Option<std::net::IpAddr> = "10.0.0.9".parse().ok();
    let take = |n: u32, at: u64| {
        let to = phone(n);
        let facts = facts(&to, 0);
        async move {
            let guard = Guarded {
                facts: &facts,
                limits: &limits,
            };
            store
                .take_send_slot(&to, ip, t(at), &SEND, Some(guard))
                .await
                .unwrap()
        }
    };
    // Three unapproved sends to one prefix (+1201555), then it is blocked.
    for n in 0..3 {
        assert_eq!(take(40 + n, n.into()).await, SlotDecision::Granted);
    }
    assert_eq!(
        take(43, 3).await,
        SlotDecision::Guarded(GuardRefusal::FraudBlocked { newly: true })
    );
    assert_eq!(
        take(44, 4).await,
        SlotDecision::Guarded(GuardRefusal::FraudBlocked { newly: false })
    );
    // The refusals took nothing: the address has its fourth send left, and the numbers
    // refused have no cooldown running.
    assert_eq!(
        store
            .take_send_slot(&phone(43), ip, t(5), &SEND, None)
            .await
            .unwrap(),
        SlotDecision::Granted
    );
    assert!(matches!(
        store
            .take_send_slot(&phone(45), ip, t(6), &SEND, None)
            .await
            .unwrap(),
        SlotDecision::Refused(_)
    ));
    // Another prefix whose codes get used stays open.
    let other = |n: u32| PhoneNumber::from_e164(&format!("+1201556{n:04}")).unwrap();
    for n in 0..3 {
        let to = other(n);
        let facts = facts(&to, 0);
        let guard = Guarded {
            facts: &facts,
            limits: &limits,
        };
        assert_eq!(
            store
                .take_send_slot(&to, None, t(10), &SEND, Some(guard))
                .await
                .unwrap(),
            SlotDecision::Granted
        );
        if n < 2 {
            store
                .record_approval(&facts.prefix, t(11), &FRAUD)
                .await
                .unwrap();
        }
    }
    let to = other(3);
    let facts = facts(&to, 0);
    let guard = Guarded {
        facts: &facts,
        limits: &limits,
    };
    assert_eq!(
        store
            .take_send_slot(&to, None, t(12), &SEND, Some(guard))
            .await
            .unwrap(),
        SlotDecision::Granted,
        "2 of 3 approved"
    );
}

async fn the_country_cap_and_the_budget_hold(store: &dyn VerificationStore) {
    let capped = GuardLimits {
        country_cap: Some(2),
        ..Default::default()
    };
    let budget = GuardLimits {
        daily_limit_micros: Some(20_000),
        ..Default::default()
    };
    // The capped sends cost nothing, so only the budget's own sends count against it.
    for (limits, n0, cost) in [(capped, 50, 0), (budget, 60, 7_900)] {
        let mut decisions = Vec::new();
        for n in 0..3 {
            let to = phone(n0 + n);
            let facts = facts(&to, cost);
            let guard = Guarded {
                facts: &facts,
                limits: &limits,
            };
            decisions.push(
                store
                    .take_send_slot(&to, None, t(n.into()), &SEND, Some(guard))
                    .await
                    .unwrap(),
            );
        }
        assert_eq!(
            decisions[..2],
            [SlotDecision::Granted, SlotDecision::Granted]
        );
        assert!(
            matches!(
                decisions[2],
                SlotDecision::Guarded(GuardRefusal::CountryCapped(_) | GuardRefusal::SpendLimit(_))
            ),
            "{decisions:?}"
        );
    }
}

async fn only_pending_verifications_end(store: &dyn VerificationStore) {
    let v = store
        .issue_code(fresh(&phone(10), "123456", t(0)), t(0))
        .await
        .unwrap();
    let canceled = store
        .end_pending(&v.id, Status::Canceled, t(1))
        .await
        .unwrap();
    assert_eq!(canceled.map(|v| v.status), Some(Status::Canceled));
    assert_eq!(
        store
            .end_pending(&v.id, Status::Approved, t(2))
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store
            .end_pending("unknown", Status::Canceled, t(2))
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        outcome(&check(store, &v, "123456", t(3)).await),
        Err(CheckRefusal::NotPending(Status::Canceled))
    );
}

async fn send_attempts_are_appended(store: &dyn VerificationStore) {
    let v = store
        .issue_code(fresh(&phone(11), "123456", t(0)), t(0))
        .await
        .unwrap();
    for provider in ["twilio", "console"] {
        let attempt = SendAttempt {
            channel: Channel::Sms,
            provider: provider.into(),
            at: t(0),
            delivery_status: Some("sent".into()),
            provider_ref: None,
        };
        store.add_send_attempt(v.key(), attempt).await.unwrap();
    }
    let stored = store.get(&v.id).await.unwrap().unwrap();
    let providers: Vec<_> = stored
        .send_attempts
        .iter()
        .map(|a| a.provider.as_str())
        .collect();
    assert_eq!(providers, ["twilio", "console"]);
    // After a delivery report rewrote the list, with a reference that needs escaping.
    assert!(
        store
            .set_delivery_status(&v.id, "twilio", None, "delivered")
            .await
            .unwrap()
    );
    let odd = SendAttempt {
        channel: Channel::Call,
        provider: "telnyx".into(),
        at: t(1),
        delivery_status: None,
        provider_ref: Some("v3:\"quoted\", \\ ✓ ]".into()),
    };
    store.add_send_attempt(v.key(), odd.clone()).await.unwrap();
    let stored = store.get(&v.id).await.unwrap().unwrap();
    assert_eq!(stored.send_attempts.len(), 3);
    assert_eq!(
        stored.send_attempts[0].delivery_status.as_deref(),
        Some("delivered")
    );
    assert_eq!(stored.send_attempts[2], odd);
}

async fn delivery_reports_update_the_matching_attempt(store: &dyn VerificationStore) {
    let v = store
        .issue_code(fresh(&phone(14), "123456", t(0)), t(0))
        .await
        .unwrap();
    for (provider, reference) in [
        ("twilio", Some("SM1")),
        ("twilio", Some("SM2")),
        ("telnyx", None),
    ] {
        let attempt = SendAttempt {
            channel: Channel::Sms,
            provider: provider.into(),
            at: t(0),
            delivery_status: Some("sent".into()),
            provider_ref: reference.map(String::from),
        };
        store.add_send_attempt(v.key(), attempt).await.unwrap();
    }
    assert!(
        store
            .set_delivery_status(&v.id, "twilio", Some("SM1"), "delivered")
            .await
            .unwrap()
    );
    assert!(
        store
            .set_delivery_status(&v.id, "telnyx", Some("unknown-ref"), "failed")
            .await
            .unwrap(),
        "latest of the provider"
    );
    assert!(
        !store
            .set_delivery_status(&v.id, "plivo", None, "failed")
            .await
            .unwrap()
    );
    assert!(
        !store
            .set_delivery_status("nope", "twilio", None, "failed")
            .await
            .unwrap()
    );
    let stored = store.get(&v.id).await.unwrap().unwrap();
    let statuses: Vec<_> = stored
        .send_attempts
        .iter()
        .map(|a| a.delivery_status.as_deref().unwrap())
        .collect();
    assert_eq!(statuses, ["delivered", "sent", "failed"]);
    assert_eq!(
        stored.status,
        Status::Pending,
        "reports never change the verification"
    );
}

async fn voice_tickets_end_with_the_verification(store: &dyn VerificationStore) {
    let ticket = crate::domain::VoiceTicket {
        secret: "s".into(),
        sealed_code: "c".into(),
    };
    for end in [Status::Canceled, Status::Approved] {
        let mut v = fresh(&phone(15), "123456", t(0));
        v.voice = Some(ticket.clone());
        let v = store.issue_code(v, t(0)).await.unwrap();
        assert_eq!(v.voice.as_ref(), Some(&ticket));
        if end == Status::Approved {
            check(store, &v, "123456", t(1)).await;
        } else {
            store.end_pending(&v.id, end, t(1)).await.unwrap();
        }
        assert_eq!(
            store.get(&v.id).await.unwrap().unwrap().voice,
            None,
            "{end:?}"
        );
    }
}

async fn idempotency_keys_replay_conflict_and_expire(store: &dyn VerificationStore) {
    let day = Duration::from_secs(24 * 3600);
    assert_eq!(
        store
            .claim_idempotency_key("k", "f1", t(0), day)
            .await
            .unwrap(),
        IdempotencyClaim::Claimed
    );
    assert_eq!(
        store
            .claim_idempotency_key("k", "f1", t(1), day)
            .await
            .unwrap(),
        IdempotencyClaim::InProgress
    );
    assert_eq!(
        store
            .claim_idempotency_key("k", "f2", t(1), day)
            .await
            .unwrap(),
        IdempotencyClaim::Conflict
    );
    let answer = StoredResponse {
        status: 201,
        body: "{}".into(),
    };
    store
        .complete_idempotency_key("k", answer.clone())
        .await
        .unwrap();
    assert_eq!(
        store
            .claim_idempotency_key("k", "f1", t(2), day)
            .await
            .unwrap(),
        IdempotencyClaim::Replay(answer)
    );
    assert_eq!(
        store
            .claim_idempotency_key("k", "f2", t(2), day)
            .await
            .unwrap(),
        IdempotencyClaim::Conflict
    );
    // After a day the key is free again.
    assert_eq!(
        store
            .claim_idempotency_key("k", "f2", t(24 * 3600), day)
            .await
            .unwrap(),
        IdempotencyClaim::Claimed
    );
    // A released key can be claimed at once.
    assert_eq!(
        store
            .claim_idempotency_key("r", "f", t(0), day)
            .await
            .unwrap(),
        IdempotencyClaim::Claimed
    );
    store.release_idempotency_key("r").await.unwrap();
    assert_eq!(
        store
            .claim_idempotency_key("r", "f", t(1), day)
            .await
            .unwrap(),
        IdempotencyClaim::Claimed
    );
}

async fn parallel_right_codes_approve_exactly_once(store: Arc<dyn VerificationStore>) {
    let v = store
        .issue_code(fresh(&phone(12), "123456", t(0)), t(0))
        .await
        .unwrap();
    let start = Arc::new(tokio::sync::Barrier::new(16));
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let (store, v, start) = (store.clone(), v.clone(), start.clone());
            tokio::spawn(async move {
                start.wait().await;
                outcome(&check(&*store, &v, "123456", t(1)).await)
            })
        })
        .collect();
    let mut approved = 0;
    for task in tasks {
        if task.await.unwrap() == Ok(true) {
            approved += 1;
        }
    }
    assert_eq!(approved, 1);
}

async fn parallel_wrong_codes_never_exceed_the_maximum(store: Arc<dyn VerificationStore>) {
    let v = store
        .issue_code(fresh(&phone(13), "123456", t(0)), t(0))
        .await
        .unwrap();
    let start = Arc::new(tokio::sync::Barrier::new(50));
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let (store, v, start) = (store.clone(), v.clone(), start.clone());
            tokio::spawn(async move {
                start.wait().await;
                outcome(&check(&*store, &v, "000000", t(1)).await)
            })
        })
        .collect();
    let mut evaluated = 0;
    for task in tasks {
        if task.await.unwrap().is_ok() {
            evaluated += 1;
        }
    }
    assert_eq!(evaluated, CHECK.max_attempts);
    let stored = store.get(&v.id).await.unwrap().unwrap();
    assert_eq!(stored.failed_checks, CHECK.max_attempts);
}

async fn a_handed_over_code_is_kept_nowhere_and_checked_by_its_provider(
    store: &dyn VerificationStore,
) {
    let v = handed_over(store, &phone(20), t(0)).await;
    assert_eq!(
        v.checker,
        Checker::Provider(ProviderCheck {
            provider: "twilio_verify".into(),
            reference: "VE123".into()
        })
    );
    assert_eq!(v.voice, None, "no sealed code either");
    let approved = provider_check(store, &v, Verdict::Approved, t(1))
        .await
        .unwrap();
    assert_eq!(approved.status, Status::Approved);
    assert_eq!(approved.failed_checks, 0, "a right code is not a failure");
    assert_eq!(
        outcome(&check(store, &approved, "123456", t(2)).await),
        Err(CheckRefusal::NotPending(Status::Approved))
    );
    // A verification that ended is not handed over.
    assert!(
        !store
            .hand_over(
                v.key(),
                ProviderCheck {
                    provider: "twilio_verify".into(),
                    reference: "VE9".into()
                }
            )
            .await
            .unwrap()
    );
    // The provider says it no longer knows a verification: it expires.
    let other = handed_over(store, &phone(21), t(10)).await;
    let expired = provider_check(store, &other, Verdict::Expired, t(11))
        .await
        .unwrap();
    assert_eq!(expired.status, Status::Expired);
    // Our own expiry comes first: the provider is not asked.
    let late = handed_over(store, &phone(22), t(20)).await;
    assert_eq!(
        provider_check(store, &late, Verdict::Approved, t(620)).await,
        Err(CheckRefusal::NotPending(Status::Expired))
    );
}

async fn provider_verdicts_count_like_our_own_checks(store: &dyn VerificationStore) {
    let to = phone(23);
    let first = handed_over(store, &to, t(0)).await;
    for i in 1..=5 {
        let after = provider_check(store, &first, Verdict::Wrong, t(i))
            .await
            .unwrap();
        assert_eq!(after.failed_checks, i as u32);
    }
    let ended = store.get(&first.id).await.unwrap().unwrap();
    assert_eq!(ended.status, Status::MaxAttemptsReached);
    assert_eq!(
        provider_check(store, &first, Verdict::Approved, t(6)).await,
        Err(CheckRefusal::NotPending(Status::MaxAttemptsReached)),
        "the sixth is not asked"
    );
    // Three more wrong codes on a new verification: eight in a row lock the number,
    // and a provider that would approve the ninth is never asked.
    let second = handed_over(store, &to, t(10)).await;
    for i in 0..3 {
        provider_check(store, &second, Verdict::Wrong, t(11 + i))
            .await
            .unwrap();
    }
    let refused = provider_check(store, &second, Verdict::Approved, t(20)).await;
    assert!(
        matches!(refused, Err(CheckRefusal::Locked(_))),
        "{refused:?}"
    );
    // The provider's own limit ends the verification too.
    let third = handed_over(store, &phone(24), t(30)).await;
    let exhausted = provider_check(store, &third, Verdict::Exhausted, t(31))
        .await
        .unwrap();
    assert_eq!(exhausted.status, Status::MaxAttemptsReached);
}

async fn unanswered_checks_give_the_attempt_back(store: &dyn VerificationStore) {
    let to = phone(25);
    let v = handed_over(store, &to, t(0)).await;
    for i in 0..20 {
        let after = provider_check(store, &v, Verdict::Unanswered, t(i))
            .await
            .unwrap();
        assert_eq!(after.failed_checks, 0);
        assert_eq!(after.status, Status::Pending);
    }
    // Nor did the number gather failures (eight would lock it): four wrong codes and
    // then the right one still work.
    for i in 0..4 {
        provider_check(store, &v, Verdict::Wrong, t(30 + i))
            .await
            .unwrap();
    }
    let approved = provider_check(store, &v, Verdict::Approved, t(40))
        .await
        .unwrap();
    assert_eq!(approved.status, Status::Approved);
}

async fn a_new_code_of_ours_takes_back_a_handed_over_verification(store: &dyn VerificationStore) {
    let to = phone(26);
    let v = handed_over(store, &to, t(0)).await;
    // The next send failed over to a provider that sends our code.
    let resent = store
        .issue_code(fresh(&to, "654321", t(40)), t(40))
        .await
        .unwrap();
    assert_eq!(resent.id, v.id);
    assert!(matches!(resent.checker, Checker::Hash(_)));
    assert_eq!(
        outcome(&check(store, &resent, "654321", t(41)).await),
        Ok(true)
    );
}

async fn parallel_provider_checks_never_exceed_the_maximum(store: Arc<dyn VerificationStore>) {
    let v = handed_over(&*store, &phone(27), t(0)).await;
    let start = Arc::new(tokio::sync::Barrier::new(30));
    let tasks: Vec<_> = (0..30)
        .map(|_| {
            let (store, v, start) = (store.clone(), v.clone(), start.clone());
            tokio::spawn(async move {
                start.wait().await;
                matches!(
                    check(&*store, &v, "123456", t(1)).await,
                    CheckDecision::Delegated(_)
                )
            })
        })
        .collect();
    let mut delegated = 0;
    for task in tasks {
        if task.await.unwrap() {
            delegated += 1;
        }
    }
    assert_eq!(
        delegated, CHECK.max_attempts,
        "reserved attempts bound the checks in flight"
    );
}

async fn records_are_kept_read_and_taken_once(store: &dyn VerificationStore) {
    store
        .put_record("code", "abc123", "first", t(100))
        .await
        .unwrap();
    assert_eq!(
        store.get_record("code", "abc123", t(50)).await.unwrap(),
        Some("first".to_string())
    );
    assert_eq!(
        store.get_record("token", "abc123", t(50)).await.unwrap(),
        None,
        "kinds are apart"
    );
    assert_eq!(
        store.take_record("code", "abc123", t(50)).await.unwrap(),
        Some("first".to_string())
    );
    assert_eq!(
        store.take_record("code", "abc123", t(51)).await.unwrap(),
        None,
        "taken once"
    );
    assert_eq!(
        store.get_record("code", "abc123", t(51)).await.unwrap(),
        None
    );
    // Keys the service never hands out name nothing.
    for bad in ["", "a b", "x{y}", &"k".repeat(129)] {
        store.put_record("code", bad, "v", t(100)).await.unwrap();
        assert_eq!(
            store.get_record("code", bad, t(50)).await.unwrap(),
            None,
            "{bad:?}"
        );
    }
}

async fn parallel_takes_of_a_record_give_it_to_one(store: Arc<dyn VerificationStore>) {
    store
        .put_record("code", "race", "once", t(100))
        .await
        .unwrap();
    let start = Arc::new(tokio::sync::Barrier::new(16));
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let (store, start) = (store.clone(), start.clone());
            tokio::spawn(async move {
                start.wait().await;
                store.take_record("code", "race", t(50)).await.unwrap()
            })
        })
        .collect();
    let mut taken = 0;
    for task in tasks {
        taken += usize::from(task.await.unwrap().is_some());
    }
    assert_eq!(taken, 1);
}

/// Leaves a verification, a number and an address behind, all expiring within an hour.
pub(crate) async fn fill_with_short_lived_state(store: &dyn VerificationStore, at: SystemTime) {
    let to = phone(99);
    store
        .take_send_slot(&to, "10.9.9.8".parse().ok(), at, &SEND, None)
        .await
        .unwrap();
    store
        .issue_code(fresh(&to, "123456", at), at)
        .await
        .unwrap();
}
