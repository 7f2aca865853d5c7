//! Counting events over a sliding window in constant memory: the limiter behind every
//! "at most N per window" rule (sends per number, per address, per country; the fraud
//! guard's sends and approvals per prefix).
//!
//! The window is cut into `SLOTS` equal slots on a grid from the Unix epoch; each holds
//! a count. An event counts from the moment it happens until `window` after the start of
//! its slot, so it is forgotten between `window - window/SLOTS` and `window` after it
//! happened. A record holds at most `SLOTS + 1` slots whatever the counts, so deciding
//! costs the same for a limit of 5 as for a limit of 5,000,000.
//!
//! When a limit of `max` is reached, the wait (`Retry-After`) is the time until enough of
//! the oldest counted events are forgotten for one more to fit.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::model::RetryAfter;

/// Slots per window.
pub const SLOTS: u64 = 60;

/// One slot: where it starts (milliseconds since the epoch) and how many events it holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct Slot {
    start_ms: u64,
    count: u64,
}

/// Events over a sliding window, oldest slot first.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WindowCount {
    slots: Vec<Slot>,
}

fn millis(at: SystemTime) -> u64 {
    at.duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// The length of one slot of `window`, in milliseconds (at least 1).
pub fn slot_ms(window: Duration) -> u64 {
    (window.as_millis() as u64 / SLOTS).max(1)
}

impl WindowCount {
    /// Forgets the slots that have left the window at `now`.
    pub fn forget(&mut self, now: SystemTime, window: Duration) {
        let now = millis(now);
        let window = window.as_millis() as u64;
        self.slots.retain(|s| s.start_ms + window > now);
    }

    /// The events still counted (call `forget` first).
    pub fn total(&self) -> u64 {
        self.slots.iter().map(|s| s.count).sum()
    }

    /// The events counted, as a length.
    pub fn len(&self) -> usize {
        self.total() as usize
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// `Ok` when one more event fits under `max` at `now`; otherwise how long until it
    /// would. Call `forget` first.
    pub fn room(&self, now: SystemTime, window: Duration, max: u64) -> Result<(), RetryAfter> {
        let total = self.total();
        if total < max {
            return Ok(());
        }
        // The oldest slots must go until fewer than `max` remain.
        let mut remaining = total;
        for slot in &self.slots {
            remaining -= slot.count;
            if remaining < max {
                let leaves = UNIX_EPOCH + Duration::from_millis(slot.start_ms) + window;
                return Err(RetryAfter::between(now, leaves));
            }
        }
        // `max` is 0: nothing ever fits; wait a whole window.
        Err(RetryAfter(window))
    }

    /// Counts `n` events at `now`.
    pub fn add(&mut self, now: SystemTime, window: Duration, n: u64) {
        let step = slot_ms(window);
        let start_ms = millis(now) / step * step;
        match self.slots.last_mut() {
            Some(last) if last.start_ms == start_ms => last.count += n,
            // A clock that went backwards lands in the newest slot rather than out of order.
            Some(last) if last.start_ms > start_ms => last.count += n,
            _ => self.slots.push(Slot { start_ms, count: n }),
        }
    }

    /// Takes back `n` events counted at `now` (a decision undone later in the same start).
    pub fn remove(&mut self, now: SystemTime, window: Duration, n: u64) {
        let step = slot_ms(window);
        let start_ms = millis(now) / step * step;
        if let Some(slot) = self.slots.iter_mut().rev().find(|s| s.start_ms <= start_ms) {
            slot.count = slot.count.saturating_sub(n);
        }
        self.slots.retain(|s| s.count > 0);
    }

    /// When the newest event is forgotten: after that the record says nothing.
    pub fn retain_until(&self, window: Duration) -> Option<SystemTime> {
        self.slots
            .last()
            .map(|s| UNIX_EPOCH + Duration::from_millis(s.start_ms) + window)
    }

    /// The one slot held, as (start in ms since the epoch, count), when there is exactly
    /// one: what a store can keep without an allocation.
    pub fn single(&self) -> Option<(u64, u64)> {
        match &self.slots[..] {
            [only] => Some((only.start_ms, only.count)),
            _ => None,
        }
    }

    /// The count `single` described.
    pub fn from_single(start_ms: u64, count: u64) -> Self {
        Self {
            slots: vec![Slot { start_ms, count }],
        }
    }

    /// Slots held (at most `SLOTS + 1`), for tests of the record's size.
    pub fn slots_held(&self) -> usize {
        self.slots.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WINDOW: Duration = Duration::from_secs(600);

    fn t(ms: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(1_800_000_000_000 + ms)
    }

    fn counted(w: &mut WindowCount, at: SystemTime) -> u64 {
        w.forget(at, WINDOW);
        w.total()
    }

    #[test]
    fn an_event_is_forgotten_a_window_after_the_start_of_its_slot() {
        let mut w = WindowCount::default();
        // Slots of 10 s; the event at 4 s falls in the slot starting at 0 s.
        w.add(t(4_000), WINDOW, 1);
        assert_eq!(counted(&mut w, t(599_999)), 1);
        assert_eq!(
            counted(&mut w, t(600_000)),
            0,
            "forgotten 596 s after it happened"
        );
    }

    #[test]
    fn the_wait_is_until_enough_of_the_oldest_are_forgotten() {
        let mut w = WindowCount::default();
        w.add(t(0), WINDOW, 1);
        w.add(t(40_000), WINDOW, 1);
        w.add(t(80_000), WINDOW, 1);
        w.forget(t(200_000), WINDOW);
        assert_eq!(
            w.room(t(200_000), WINDOW, 3),
            Err(RetryAfter(Duration::from_secs(400))),
            "the first leaves at 600 s"
        );
        assert_eq!(
            w.room(t(200_000), WINDOW, 2),
            Err(RetryAfter(Duration::from_secs(440))),
            "two must leave: the second at 640 s"
        );
        assert_eq!(w.room(t(200_000), WINDOW, 4), Ok(()));
    }

    #[test]
    fn a_million_events_do_not_grow_the_record() {
        let mut w = WindowCount::default();
        // One event every 10 ms for 10,000 s: ever more events than a window holds.
        for i in 0..1_000_000u64 {
            let now = t(i * 10);
            w.forget(now, WINDOW);
            assert!(w.room(now, WINDOW, 100_000_000).is_ok());
            w.add(now, WINDOW, 1);
            assert!(w.slots_held() <= (SLOTS + 1) as usize, "at {i}");
        }
        assert_eq!(
            w.total(),
            60_000,
            "one window's worth: 600 s at 100 a second"
        );
    }

    #[test]
    fn removing_takes_back_what_was_added() {
        let mut w = WindowCount::default();
        w.add(t(1_000), WINDOW, 2);
        w.remove(t(1_000), WINDOW, 1);
        assert_eq!(w.total(), 1);
        w.remove(t(1_000), WINDOW, 1);
        assert!(w.is_empty());
    }

    #[test]
    fn short_windows_still_work() {
        let window = Duration::from_secs(1);
        let mut w = WindowCount::default();
        w.add(t(0), window, 1);
        w.forget(t(999), window);
        assert_eq!(w.total(), 1);
        w.forget(t(1_000), window);
        assert_eq!(w.total(), 0);
        assert_eq!(slot_ms(Duration::from_millis(10)), 1);
    }
}
