//! When the flaky receiver misbehaves: during the first part of the
//! chaos phase, seeded draws per delivery refuse it (500 or 503) or stall
//! it past calsync's attempt timeout, the first of each kind forced after
//! a seeded number of deliveries (so every run has both while deliveries
//! flow); and one outage at a seeded time.
//!
//! Draws per delivery rather than a timetable: a replica killed
//! mid-delivery holds its subscription's lease for a minute, and a
//! timetable's entries would expire unused while nothing is delivered.
//!
//! The plan keeps the server's retry backoff short, so the battery's end
//! can wait for delivery to catch up within a bounded time: calsync waits
//! 5 s after a first failure and 30 s after a second, then 2 and 5
//! minutes (`calsync_domain::feed::subscription::retry_delay`). So the
//! receiver never fails more than [`MAX_STREAK`] attempts in a row: after
//! two failures it accepts; an outage starts only right after an accepted
//! delivery, is short enough for at most two attempts to meet it, and the
//! first delivery after it is accepted.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::chaos::rng::Rng;

/// Failed attempts in a row the receiver causes at most (their retries
/// come within 5 s and 30 s, +20% jitter).
pub const MAX_STREAK: u32 = 2;
/// The longest outage: an outage that begins right after a delivery meets
/// at most two attempts (the first, and the retry 4-6 s later; the next
/// comes 24-36 s after that).
pub const MAX_OUTAGE: Duration = Duration::from_secs(18);
/// calsync's attempt timeout is 10 s
/// (`calsync_domain::feed::subscription::ATTEMPT_TIMEOUT`): a stall longer
/// than this is a timeout.
const STALL_MIN_MS: u64 = 11_000;
const STALL_MAX_MS: u64 = 13_000;
/// The misbehaviour window ends at this fraction of the chaos phase, so
/// the last retry's backoff (at most 36 s) ends before the run does.
const WINDOW_END: f64 = 0.6;
/// The first seconds of the chaos are left alone (the writers warm up).
const WINDOW_START: Duration = Duration::from_secs(3);
/// The chances a delivery in the window is refused or stalled. Each
/// failure pauses the subscription at least 4 s, so a few percent make a
/// failure every several seconds while changes flow.
const REFUSAL: f64 = 0.02;
const STALL: f64 = 0.005;
/// The chance a refusal is followed by a second (a 30 s backoff).
const DOUBLE_REFUSAL: f64 = 0.3;

/// What the receiver does with one delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Act {
    Accept,
    /// Answers this status (500 or 503).
    Refuse(u16),
    /// Answers only after calsync has given up on the attempt.
    Stall(Duration),
}

/// The misbehaviours of one run.
pub struct Plan {
    rng: Rng,
    /// When the chaos phase began; nothing misbehaves before.
    started: Option<Instant>,
    /// From the chaos phase's start: misbehaviour stops here.
    window_end: Duration,
    /// Deliveries decided in the window.
    decided: u64,
    /// Misbehaviours forced at these counts of deliveries in the window
    /// (the first eligible delivery at or after the count).
    forced: VecDeque<(u64, Act)>,
    /// A refusal to repeat on the next delivery.
    again: Option<Act>,
    /// The outage's start (from the chaos phase's start) and length.
    pub outage: Option<(Duration, Duration)>,
    /// Failures in a row the receiver caused (an outage counts as two).
    streak: u32,
}

impl Plan {
    /// The plan for a chaos phase of `chaos`.
    pub fn new(chaos: Duration, mut rng: Rng) -> Self {
        let window_end = chaos.mul_f64(WINDOW_END);
        let window = window_end.saturating_sub(WINDOW_START);
        let status = if rng.chance(0.5) { 500 } else { 503 };
        let stall = Duration::from_millis(rng.range(STALL_MIN_MS, STALL_MAX_MS));
        let mut forced = vec![
            (rng.range(5, 15), Act::Refuse(status)),
            (rng.range(20, 40), Act::Stall(stall)),
        ];
        forced.sort_by_key(|(n, _)| *n);
        // One outage in the window's middle, ending before the window does.
        let outage = (window > MAX_OUTAGE * 2).then(|| {
            let length = Duration::from_millis(rng.range(8_000, MAX_OUTAGE.as_millis() as u64));
            let latest = window_end.saturating_sub(length);
            let earliest = chaos.mul_f64(0.2).max(WINDOW_START).min(latest);
            let span = u64::try_from((latest - earliest).as_millis()).unwrap_or(0);
            (
                earliest + Duration::from_millis(rng.range(0, span / 2 + 1)),
                length,
            )
        });
        Self {
            rng,
            started: None,
            window_end,
            decided: 0,
            forced: forced.into(),
            again: None,
            outage,
            streak: 0,
        }
    }
    /// The chaos phase begins now.
    pub fn begin(&mut self, now: Instant) {
        self.started = Some(now);
    }

    /// Time into the chaos phase, `None` before it.
    pub fn elapsed(&self, now: Instant) -> Option<Duration> {
        self.started
            .map(|started| now.saturating_duration_since(started))
    }

    /// Whether the misbehaviour window is over (or never began).
    pub fn calm(&self, now: Instant) -> bool {
        self.elapsed(now).is_none_or(|at| at >= self.window_end)
    }

    /// What is left of the misbehaviour window at `now`.
    pub fn window_left(&self, now: Instant) -> Duration {
        self.elapsed(now)
            .map(|at| self.window_end.saturating_sub(at))
            .unwrap_or_default()
    }

    /// The last delivery was accepted: calsync's failure count is zero.
    pub fn settled(&self) -> bool {
        self.streak == 0
    }

    /// After an outage: it may have failed two attempts, so the next is accepted.
    pub fn after_outage(&mut self) {
        self.streak = MAX_STREAK;
    }

    /// Decides one delivery arriving at `now`.
    pub fn decide(&mut self, now: Instant) -> Act {
        let in_window = self
            .elapsed(now)
            .is_some_and(|at| at >= WINDOW_START && at < self.window_end);
        let act = if !in_window || self.streak >= MAX_STREAK {
            Act::Accept
        } else {
            self.decided += 1;
            match self.forced.front() {
                Some((n, act)) if *n <= self.decided => {
                    let act = *act;
                    self.forced.pop_front();
                    act
                }
                _ => match self.again.take() {
                    Some(act) => act,
                    None if self.rng.chance(REFUSAL) => {
                        Act::Refuse(if self.rng.chance(0.5) { 500 } else { 503 })
                    }
                    None if self.rng.chance(STALL) => Act::Stall(Duration::from_millis(
                        self.rng.range(STALL_MIN_MS, STALL_MAX_MS),
                    )),
                    None => Act::Accept,
                },
            }
        };
        if let Act::Refuse(_) = act
            && self.streak == 0
            && self.rng.chance(DOUBLE_REFUSAL)
        {
            self.again = Some(act);
        }
        self.streak = match act {
            Act::Accept => 0,
            _ => self.streak + 1,
        };
        act
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn nothing_misbehaves_before_the_chaos_or_after_the_window() {
        let mut plan = Plan::new(Duration::from_secs(90), Rng::new(7));
        let t0 = Instant::now();
        for _ in 0..200 {
            assert_eq!(plan.decide(t0), Act::Accept);
        }
        plan.begin(t0);
        assert!(!plan.calm(t0));
        let late = t0 + Duration::from_secs(80);
        assert!(plan.calm(late));
        for _ in 0..200 {
            assert_eq!(plan.decide(late), Act::Accept);
        }
    }

    fn run(seed: u64) -> Vec<Act> {
        let mut plan = Plan::new(Duration::from_secs(90), Rng::new(seed));
        let t0 = Instant::now();
        plan.begin(t0);
        // A delivery every 50 ms through the window.
        (0..1200)
            .map(|tick| plan.decide(t0 + Duration::from_millis(tick * 50)))
            .collect()
    }

    #[test]
    fn both_kinds_happen_and_never_three_failures_in_a_row() {
        for seed in 0..50 {
            let plan = Plan::new(Duration::from_secs(90), Rng::new(seed));
            let (start, length) = plan.outage.unwrap();
            assert!(length <= MAX_OUTAGE);
            assert!(start + length <= plan.window_end, "{start:?} {length:?}");
            let acts = run(seed);
            let refusals = acts.iter().filter(|a| matches!(a, Act::Refuse(_))).count();
            let stalls = acts.iter().filter(|a| matches!(a, Act::Stall(_))).count();
            assert!(
                refusals >= 1 && stalls >= 1,
                "seed {seed}: {refusals} {stalls}"
            );
            assert!(refusals < 60, "seed {seed}: {refusals}");
            for window in acts.windows(3) {
                assert!(window.contains(&Act::Accept), "seed {seed}: {window:?}");
            }
            for act in &acts {
                if let Act::Stall(stall) = act {
                    assert!(*stall > Duration::from_secs(10), "{stall:?}");
                }
            }
        }
    }

    #[test]
    fn the_same_seed_makes_the_same_plan() {
        assert_eq!(run(3), run(3));
        assert_ne!(run(3), run(4));
    }
}
