//! The guard against SMS pumping and runaway cost, as pure rules over state with the time
//! passed in. It is asked after the number's and the address's own limits, and never for
//! test numbers.
//!
//! - Fraud: sends and approvals are counted per prefix (the number without its last
//!   `prefix_digits` digits) over a sliding window. A prefix with at least `min_sends`
//!   sends whose approvals are fewer than `min_conversion` of them is blocked for
//!   `block`; while blocked, starts to it are refused.
//! - Country cap: at most `max_sends_per_country_per_hour` sends to one country in any
//!   hour (a sliding window of an hour).
//! - Budget: each send adds its estimated cost to the current UTC day's total; a send
//!   that would take the total past `daily_limit` is refused until the next UTC day.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::model::RetryAfter;
use super::window::WindowCount;

/// The country cap's window.
pub const HOUR: Duration = Duration::from_secs(3600);
const DAY_SECS: u64 = 24 * 3600;

/// The fraud guard's settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FraudLimits {
    pub window: Duration,
    pub min_sends: u32,
    pub min_conversion: f64,
    pub block: Duration,
    pub prefix_digits: usize,
}

/// Everything the guard enforces; `None` parts are off.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct GuardLimits {
    pub fraud: Option<FraudLimits>,
    /// Sends per destination country per hour.
    pub country_cap: Option<u32>,
    /// The estimated spend allowed per UTC day, in millionths of the currency.
    pub daily_limit_micros: Option<u64>,
}

/// The estimated cost of sends, in millionths of the budget's currency.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Costs {
    pub sms_micros: u64,
    pub call_micros: u64,
    /// Per ISO 3166 country (upper case): its own SMS and call costs, where set.
    pub countries: std::collections::BTreeMap<String, (Option<u64>, Option<u64>)>,
}

impl Costs {
    /// The estimated cost of one send to `country` by `channel`.
    pub fn of(&self, country: &str, channel: super::Channel) -> u64 {
        let own = self.countries.get(country);
        match channel {
            super::Channel::Sms => own.and_then(|c| c.0).unwrap_or(self.sms_micros),
            super::Channel::Call => own.and_then(|c| c.1).unwrap_or(self.call_micros),
        }
    }
}

/// Millionths of a currency unit, from a configured amount (`0.0079` → 7,900).
pub fn micros(amount: f64) -> u64 {
    (amount * 1_000_000.0).round().max(0.0) as u64
}

/// What the guard needs to know about one send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendFacts {
    /// The number without its last `prefix_digits` digits (`+1201555`).
    pub prefix: String,
    /// ISO 3166 alpha-2, or `"ZZ"` for numbers outside any region.
    pub country: String,
    /// The estimated cost, in millionths of the currency.
    pub cost_micros: u64,
}

/// The prefix of an E.164 number: all but its last `digits` digits (at least `+` and
/// one digit).
pub fn prefix_of(e164: &str, digits: usize) -> String {
    let keep = e164.len().saturating_sub(digits).max(2).min(e164.len());
    e164[..keep].to_string()
}

/// What is remembered about one prefix.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrefixState {
    pub sends: WindowCount,
    pub approvals: WindowCount,
    pub blocked_until: Option<SystemTime>,
}

/// Sends to one country over the last hour.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CountryState {
    pub sends: WindowCount,
}

/// The estimated spend of one UTC day.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpendState {
    /// Days since the Unix epoch.
    pub day: u64,
    pub micros: u64,
}

/// Why the guard refused a send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GuardRefusal {
    /// The prefix converts too badly; `newly`: this start is the one that blocked it.
    FraudBlocked { newly: bool },
    /// The destination country's hourly cap is reached.
    CountryCapped(RetryAfter),
    /// The day's budget would be exceeded; retry the next UTC day.
    SpendLimit(RetryAfter),
}

/// The UTC day `now` falls in, in days since the epoch.
pub fn utc_day(now: SystemTime) -> u64 {
    now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()) / DAY_SECS
}

/// How long until the next UTC day starts.
pub fn until_next_day(now: SystemTime) -> RetryAfter {
    let next = UNIX_EPOCH + Duration::from_secs((utc_day(now) + 1) * DAY_SECS);
    RetryAfter::between(now, next)
}

impl PrefixState {
    /// Whether the prefix is blocked at `now`, blocking it when its conversion is too low.
    fn blocked(&mut self, now: SystemTime, limits: &FraudLimits) -> Option<GuardRefusal> {
        self.sends.forget(now, limits.window);
        self.approvals.forget(now, limits.window);
        if self.blocked_until.is_some_and(|until| now < until) {
            return Some(GuardRefusal::FraudBlocked { newly: false });
        }
        self.blocked_until = None;
        let sends = self.sends.total();
        let approvals = self.approvals.total();
        if sends >= u64::from(limits.min_sends)
            && (approvals as f64) < limits.min_conversion * sends as f64
        {
            self.blocked_until = Some(now + limits.block);
            return Some(GuardRefusal::FraudBlocked { newly: true });
        }
        None
    }

    /// When nothing in the state matters any more.
    pub fn retain_until(&self, limits: &FraudLimits) -> Option<SystemTime> {
        [
            self.sends.retain_until(limits.window),
            self.approvals.retain_until(limits.window),
            self.blocked_until,
        ]
        .into_iter()
        .flatten()
        .max()
    }
}

/// Admits one send, counting it, or says why not. Nothing is counted on a refusal
/// (except that a prefix found converting too badly is blocked from now on).
pub fn admit(
    prefix: &mut PrefixState,
    country: &mut CountryState,
    spend: &mut SpendState,
    facts: &SendFacts,
    now: SystemTime,
    limits: &GuardLimits,
) -> Result<(), GuardRefusal> {
    if let Some(fraud) = &limits.fraud
        && let Some(refusal) = prefix.blocked(now, fraud)
    {
        return Err(refusal);
    }
    if let Some(cap) = limits.country_cap {
        country.sends.forget(now, HOUR);
        country
            .sends
            .room(now, HOUR, cap.into())
            .map_err(GuardRefusal::CountryCapped)?;
    }
    let today = utc_day(now);
    if spend.day != today {
        *spend = SpendState {
            day: today,
            micros: 0,
        };
    }
    if let Some(limit) = limits.daily_limit_micros
        && spend.micros + facts.cost_micros > limit
    {
        return Err(GuardRefusal::SpendLimit(until_next_day(now)));
    }
    if let Some(fraud) = &limits.fraud {
        prefix.sends.add(now, fraud.window, 1);
    }
    if limits.country_cap.is_some() {
        country.sends.add(now, HOUR, 1);
    }
    spend.micros += facts.cost_micros;
    Ok(())
}

/// Counts an approval for the prefix.
pub fn record_approval(prefix: &mut PrefixState, now: SystemTime, limits: &FraudLimits) {
    prefix.approvals.forget(now, limits.window);
    prefix.approvals.add(now, limits.window, 1);
}

#[cfg(test)]
mod tests {
    use super::*;

    const FRAUD: FraudLimits = FraudLimits {
        window: Duration::from_secs(3600),
        min_sends: 30,
        min_conversion: 0.2,
        block: Duration::from_secs(43_200),
        prefix_digits: 4,
    };

    fn t(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_800_000_000 + secs)
    }

    fn facts(cost_micros: u64) -> SendFacts {
        SendFacts {
            prefix: "+1201555".into(),
            country: "US".into(),
            cost_micros,
        }
    }

    struct State {
        prefix: PrefixState,
        country: CountryState,
        spend: SpendState,
    }

    impl State {
        fn new() -> Self {
            Self {
                prefix: PrefixState::default(),
                country: CountryState::default(),
                spend: SpendState::default(),
            }
        }
        fn admit(
            &mut self,
            at: SystemTime,
            limits: &GuardLimits,
            cost: u64,
        ) -> Result<(), GuardRefusal> {
            admit(
                &mut self.prefix,
                &mut self.country,
                &mut self.spend,
                &facts(cost),
                at,
                limits,
            )
        }
    }

    #[test]
    fn costs_come_from_the_country_else_the_defaults() {
        let costs = Costs {
            sms_micros: micros(0.0079),
            call_micros: micros(0.014),
            countries: [("GB".to_string(), (Some(micros(0.04)), None))].into(),
        };
        assert_eq!(costs.of("GB", super::super::Channel::Sms), 40_000);
        assert_eq!(costs.of("GB", super::super::Channel::Call), 14_000);
        assert_eq!(costs.of("US", super::super::Channel::Sms), 7_900);
    }

    #[test]
    fn prefixes_are_numbers_without_their_last_digits() {
        assert_eq!(prefix_of("+12015550123", 4), "+1201555");
        assert_eq!(prefix_of("+447400123456", 5), "+4474001");
        assert_eq!(prefix_of("+12", 8), "+1");
    }

    #[test]
    fn a_prefix_that_never_converts_is_blocked_after_min_sends() {
        let limits = GuardLimits {
            fraud: Some(FRAUD),
            ..Default::default()
        };
        let mut state = State::new();
        for i in 0..30 {
            assert_eq!(state.admit(t(i), &limits, 0), Ok(()), "send {i}");
        }
        assert_eq!(
            state.admit(t(30), &limits, 0),
            Err(GuardRefusal::FraudBlocked { newly: true })
        );
        assert_eq!(
            state.admit(t(31), &limits, 0),
            Err(GuardRefusal::FraudBlocked { newly: false })
        );
        assert_eq!(state.prefix.sends.total(), 30, "refusals are not counted");
        // Blocked for block_secs, then judged again on what the window still holds.
        assert_eq!(
            state.admit(t(30 + 43_199), &limits, 0),
            Err(GuardRefusal::FraudBlocked { newly: false })
        );
        assert_eq!(state.admit(t(30 + 43_200), &limits, 0), Ok(()));
    }

    #[test]
    fn approvals_keep_a_prefix_open() {
        let limits = GuardLimits {
            fraud: Some(FRAUD),
            ..Default::default()
        };
        let mut state = State::new();
        for i in 0..30 {
            state.admit(t(i), &limits, 0).unwrap();
            if i % 5 == 0 {
                record_approval(&mut state.prefix, t(i), &FRAUD);
            }
        }
        // 6 of 30 approved: exactly the minimum conversion.
        assert_eq!(state.admit(t(40), &limits, 0), Ok(()));
    }

    #[test]
    fn the_country_cap_counts_an_hour() {
        let limits = GuardLimits {
            country_cap: Some(2),
            ..Default::default()
        };
        let mut state = State::new();
        state.admit(t(0), &limits, 0).unwrap();
        state.admit(t(10), &limits, 0).unwrap();
        assert_eq!(
            state.admit(t(20), &limits, 0),
            Err(GuardRefusal::CountryCapped(RetryAfter(
                Duration::from_secs(3580)
            )))
        );
        assert_eq!(state.admit(t(3600), &limits, 0), Ok(()));
    }

    #[test]
    fn the_budget_refuses_the_send_that_would_exceed_it_until_the_next_utc_day() {
        let limits = GuardLimits {
            daily_limit_micros: Some(20_000),
            ..Default::default()
        };
        let mut state = State::new();
        // 1_800_000_000 is 2027-01-15T08:00:00Z: 16 hours to midnight.
        state.admit(t(0), &limits, 7_900).unwrap();
        state.admit(t(1), &limits, 7_900).unwrap();
        assert_eq!(
            state.admit(t(2), &limits, 7_900),
            Err(GuardRefusal::SpendLimit(RetryAfter(Duration::from_secs(
                16 * 3600 - 2
            ))))
        );
        assert_eq!(state.spend.micros, 15_800, "the refused send cost nothing");
        assert_eq!(
            state.admit(t(16 * 3600), &limits, 7_900),
            Ok(()),
            "a new day"
        );
        assert_eq!(state.spend.micros, 7_900);
    }
}
