//! When the flaky receiver misbehaves: in the first third of the chaos
//! phase, seeded draws per delivery refuse it (500 or 503) or stall it
//! past calsync's attempt timeout, the first of each kind forced after a
//! seeded number of deliveries (so every run has both while deliveries
//! flow); then one outage, from a seeded time, after which it behaves.
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
//! two failures it accepts; the outage begins only once calsync counts no
//! failure for the subscription (see [`Plan::may_go_down`]), is short
//! enough for at most two attempts to meet it, and everything after it is
//! accepted.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::chaos::rng::Rng;

/// Failed attempts in a row the receiver causes at most (their retries
/// come within 5 s and 30 s, +20% jitter).
pub const MAX_STREAK: u32 = 2;
/// The longest outage: an outage that begins with no failure counted
/// meets at most two attempts (the first, and the retry 4-6 s later; the
/// next comes 24-36 s after that).
pub const MAX_OUTAGE: Duration = Duration::from_secs(18);
/// calsync's attempt timeout is 10 s
/// (`calsync_domain::feed::subscription::ATTEMPT_TIMEOUT`): a stall longer
/// than this is a timeout.
const STALL_MIN_MS: u64 = 11_000;
const STALL_MAX_MS: u64 = 13_000;
/// The first seconds of the chaos are left alone (the writers warm up).
const WINDOW_START: Duration = Duration::from_secs(3);
/// The outage is due between these fractions of the chaos phase;
/// refusals and stalls end when it is due.
const OUTAGE_FROM: f64 = 0.3;
const OUTAGE_UNTIL: f64 = 0.4;
/// Refusals and stalls end here when there is no outage.
const NO_OUTAGE_UNTIL: f64 = 0.35;
/// The outage waits for calsync to count no failure (a double refusal's
/// 30 s backoff, a dead replica's one-minute lease) until this fraction of
/// the chaos phase, and ends by the next: with the retry it may cost (at
/// most 36 s) it is over before the run's end waits for delivery.
const OUTAGE_LATEST: f64 = 0.7;
const OUTAGE_OVER_BY: f64 = 0.85;
/// How long after the receiver's last failure calsync has surely counted
/// it (or died before it could): the outage may begin then.
const FAILURE_COUNTED: Duration = Duration::from_secs(2);
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
    /// From the chaos phase's start: refusals and stalls stop here.
    misbehave_until: Duration,
    /// The outage begins by this time or not at all, and ends by the next.
    outage_latest: Duration,
    outage_over_by: Duration,
    /// Deliveries decided in the window.
    decided: u64,
    /// Misbehaviours forced at these counts of deliveries in the window
    /// (the first eligible delivery at or after the count).
    forced: VecDeque<(u64, Act)>,
    /// A refusal to repeat on the next delivery.
    again: Option<Act>,
    /// The outage's start (from the chaos phase's start) and length.
    pub outage: Option<(Duration, Duration)>,
    /// The outage began: every delivery from now on is accepted.
    quiet: bool,
    /// Failures in a row the receiver caused.
    streak: u32,
    /// When the receiver's last failure ended (a stall ends when it answers).
    last_failure: Option<Instant>,
}

impl Plan {
    /// The plan for a chaos phase of `chaos`.
    pub fn new(chaos: Duration, mut rng: Rng) -> Self {
        let outage_latest = chaos.mul_f64(OUTAGE_LATEST);
        let outage_over_by = chaos.mul_f64(OUTAGE_OVER_BY);
        let status = if rng.chance(0.5) { 500 } else { 503 };
        let stall = Duration::from_millis(rng.range(STALL_MIN_MS, STALL_MAX_MS));
        // The stall first: it is the rarer draw, and deliveries may stop
        // early (a dead replica's lease).
        let forced = VecDeque::from([
            (rng.range(3, 10), Act::Stall(stall)),
            (rng.range(15, 30), Act::Refuse(status)),
        ]);
        // Too short a chaos phase has no outage: it could not be over in time.
        let outage = (chaos.mul_f64(OUTAGE_OVER_BY - OUTAGE_UNTIL) >= MAX_OUTAGE).then(|| {
            let length = Duration::from_millis(rng.range(8_000, MAX_OUTAGE.as_millis() as u64));
            let earliest = chaos.mul_f64(OUTAGE_FROM).max(WINDOW_START);
            let latest = chaos.mul_f64(OUTAGE_UNTIL).max(earliest);
            let span = u64::try_from((latest - earliest).as_millis()).unwrap_or(0);
            (
                earliest + Duration::from_millis(rng.range(0, span + 1)),
                length,
            )
        });
        let misbehave_until = match outage {
            Some((start, _)) => start,
            None => chaos.mul_f64(NO_OUTAGE_UNTIL),
        };
        Self {
            rng,
            started: None,
            misbehave_until,
            outage_latest,
            outage_over_by,
            decided: 0,
            forced,
            again: None,
            outage,
            quiet: false,
            streak: 0,
            last_failure: None,
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

    /// How long an outage beginning at `now` may last (`None`: it is too
    /// late to begin one).
    pub fn outage_room(&self, now: Instant) -> Option<Duration> {
        let at = self.elapsed(now)?;
        (at < self.outage_latest).then(|| self.outage_over_by.saturating_sub(at))
    }

    /// Whether the outage may begin at `now`, calsync counting
    /// `server_failures` for the subscription: none, and none of the
    /// receiver's failures still to be counted (its last one answered
    /// long enough ago; a stall still in flight is not).
    pub fn may_go_down(&self, now: Instant, server_failures: u64) -> bool {
        server_failures == 0
            && (self.streak == 0
                || self
                    .last_failure
                    .is_some_and(|at| now.saturating_duration_since(at) >= FAILURE_COUNTED))
    }

    /// The outage begins: nothing misbehaves any more, and the first
    /// delivery after it (which may follow two failures) is accepted.
    pub fn go_down(&mut self) {
        self.quiet = true;
    }

    /// Decides one delivery arriving at `now`.
    pub fn decide(&mut self, now: Instant) -> Act {
        let in_window = self
            .elapsed(now)
            .is_some_and(|at| at >= WINDOW_START && at < self.misbehave_until);
        let act = if !in_window || self.quiet || self.streak >= MAX_STREAK {
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
        match act {
            Act::Accept => self.streak = 0,
            Act::Refuse(_) => {
                self.streak += 1;
                self.last_failure = Some(now);
            }
            Act::Stall(stall) => {
                self.streak += 1;
                self.last_failure = Some(now + stall);
            }
        }
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
        assert_eq!(plan.outage_room(t0), Some(Duration::from_millis(76_500)));
        let late = t0 + Duration::from_secs(64);
        assert_eq!(plan.outage_room(late), None);
        for _ in 0..200 {
            assert_eq!(plan.decide(late), Act::Accept);
        }
    }

    /// A delivery every 50 ms through the window, none in the outage
    /// (which begins as soon as it may, calsync counting what the
    /// receiver failed in the last 2 s).
    fn run(seed: u64) -> (Vec<Act>, Vec<Act>) {
        let mut plan = Plan::new(Duration::from_secs(90), Rng::new(seed));
        let (start, length) = plan.outage.unwrap();
        let t0 = Instant::now();
        plan.begin(t0);
        let (mut before, mut after) = (Vec::new(), Vec::new());
        let mut down: Option<Duration> = None;
        let mut failures: Vec<Duration> = Vec::new();
        for tick in 0..1200 {
            let at = Duration::from_millis(tick * 50);
            if down.is_none() && at >= start {
                let counted = failures.iter().filter(|f| **f + FAILURE_COUNTED > at);
                let uncounted = counted.count() as u64;
                if plan.may_go_down(t0 + at, 0) {
                    assert_eq!(uncounted, 0, "seed {seed}: down with failures pending");
                    plan.go_down();
                    down = Some(at);
                }
            }
            if down.is_some_and(|d| at >= d && at < d + length) {
                continue;
            }
            let act = plan.decide(t0 + at);
            match act {
                // calsync counted the failures before (it retries in order) and zeroes them.
                Act::Accept => failures.clear(),
                Act::Refuse(_) => failures.push(at),
                Act::Stall(stall) => failures.push(at + stall),
            }
            if down.is_some() {
                after.push(act);
            } else {
                before.push(act);
            }
        }
        assert!(down.is_some(), "seed {seed}: no outage");
        (before, after)
    }

    #[test]
    fn both_kinds_then_the_outage_and_never_three_failures_in_a_row() {
        for seed in 0..50 {
            let plan = Plan::new(Duration::from_secs(90), Rng::new(seed));
            let (start, length) = plan.outage.unwrap();
            assert!(length <= MAX_OUTAGE);
            assert!(start >= Duration::from_secs(27) && start <= Duration::from_secs(36));
            assert_eq!(plan.misbehave_until, start);
            let (before, after) = run(seed);
            let refusals = before
                .iter()
                .filter(|a| matches!(a, Act::Refuse(_)))
                .count();
            let stalls = before.iter().filter(|a| matches!(a, Act::Stall(_))).count();
            assert!(
                refusals >= 1 && stalls >= 1,
                "seed {seed}: {refusals} {stalls}"
            );
            assert!(refusals < 60, "seed {seed}: {refusals}");
            for window in before.windows(3) {
                assert!(window.contains(&Act::Accept), "seed {seed}: {window:?}");
            }
            assert!(after.iter().all(|a| *a == Act::Accept), "seed {seed}");
            for act in &before {
                if let Act::Stall(stall) = act {
                    assert!(*stall > Duration::from_secs(10), "{stall:?}");
                }
            }
        }
    }

    #[test]
    fn calsync_counting_a_failure_holds_the_outage_back() {
        let mut plan = Plan::new(Duration::from_secs(90), Rng::new(1));
        let t0 = Instant::now();
        plan.begin(t0);
        assert!(plan.may_go_down(t0, 0));
        assert!(!plan.may_go_down(t0, 1));
    }

    #[test]
    fn the_same_seed_makes_the_same_plan() {
        assert_eq!(run(3), run(3));
        assert_ne!(run(3), run(4));
    }
}
