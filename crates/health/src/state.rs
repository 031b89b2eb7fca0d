//! The sans-IO core of one check: rise/fall hysteresis and the probe schedule.
//!
//! [`CheckState`] is a plain struct fed with the current `Instant` and probe results; it reads
//! no clock, opens no socket and spawns nothing, so every rule below is unit-tested on exact
//! instants.
//!
//! Rules (keepalived's `rise` / `fall`, with an explicit initial state):
//!
//! * A check starts [`Status::Unknown`]: no verdict yet. It becomes [`Status::Up`] after
//!   `rise` consecutive successes, or [`Status::Down`] after `fall` consecutive failures,
//!   whichever streak completes first. It never goes back to `Unknown`.
//! * From `Down` it goes `Up` after `rise` consecutive successes; from `Up` it goes `Down`
//!   after `fall` consecutive failures. A result of the other kind resets the streak.
//! * Hence a check alternating success and failure on every probe never changes status when
//!   `rise >= 2` and `fall >= 2` (flapping is absorbed), whatever status it is in.
//! * `rise` and `fall` of 0 are treated as 1 (the config crate rejects them anyway).
//! * Schedule: probes run start-to-start every `interval`, never overlapping. The first probe
//!   is due at creation; the next is due `interval` after the previous one *started*, and a
//!   probe that ran past that makes the next one due at once (no burst of missed probes,
//!   since at most one deadline is ever pending). While a probe runs there is no deadline.

use std::fmt;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// The verdict on a check after rise/fall hysteresis.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Not yet `rise` successes nor `fall` failures in a row since the check started.
    Unknown,
    Up,
    Down,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Unknown => "unknown",
            Status::Up => "up",
            Status::Down => "down",
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The result of one probe, as the runner reports it to the core.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub ok: bool,
    /// From the start of the probe to its result (the timeout itself for a timed-out probe).
    pub latency: Duration,
    /// Short human text: what succeeded, or why it failed.
    pub message: String,
}

impl Outcome {
    pub fn success(latency: Duration, message: impl Into<String>) -> Outcome {
        Outcome {
            ok: true,
            latency,
            message: message.into(),
        }
    }

    pub fn failure(latency: Duration, message: impl Into<String>) -> Outcome {
        Outcome {
            ok: false,
            latency,
            message: message.into(),
        }
    }
}

/// A change of [`Status`], returned by [`CheckState::record`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Transition {
    pub from: Status,
    pub to: Status,
}

/// Rise/fall state and schedule of one check.
#[derive(Debug, Clone)]
pub struct CheckState {
    rise: u32,
    fall: u32,
    interval: Duration,
    status: Status,
    /// When `status` was entered (creation for `Unknown`).
    status_since: Instant,
    consecutive_ok: u32,
    consecutive_fail: u32,
    total_ok: u64,
    total_fail: u64,
    transitions: u64,
    last: Option<Outcome>,
    last_finished: Option<Instant>,
    running_since: Option<Instant>,
    next_start: Instant,
}

impl CheckState {
    /// A new check in [`Status::Unknown`], its first probe due at `now`.
    pub fn new(rise: u32, fall: u32, interval: Duration, now: Instant) -> CheckState {
        CheckState {
            rise: rise.max(1),
            fall: fall.max(1),
            interval,
            status: Status::Unknown,
            status_since: now,
            consecutive_ok: 0,
            consecutive_fail: 0,
            total_ok: 0,
            total_fail: 0,
            transitions: 0,
            last: None,
            last_finished: None,
            running_since: None,
            next_start: now,
        }
    }

    /// When the next probe must start; `None` while a probe is running (no overlap).
    /// The instant may be in the past: start at once.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.running_since {
            Some(_) => None,
            None => Some(self.next_start),
        }
    }

    /// A probe starts now. The next one is due `interval` after this start.
    pub fn start_probe(&mut self, now: Instant) {
        self.running_since = Some(now);
        self.next_start = now.checked_add(self.interval).unwrap_or(now);
    }

    /// Feed the result of a probe; returns the status change it caused, if any.
    pub fn record(&mut self, now: Instant, outcome: Outcome) -> Option<Transition> {
        self.running_since = None;
        self.last_finished = Some(now);
        let target = if outcome.ok {
            self.total_ok = self.total_ok.saturating_add(1);
            self.consecutive_ok = self.consecutive_ok.saturating_add(1);
            self.consecutive_fail = 0;
            (self.status != Status::Up && self.consecutive_ok >= self.rise).then_some(Status::Up)
        } else {
            self.total_fail = self.total_fail.saturating_add(1);
            self.consecutive_fail = self.consecutive_fail.saturating_add(1);
            self.consecutive_ok = 0;
            (self.status != Status::Down && self.consecutive_fail >= self.fall)
                .then_some(Status::Down)
        };
        self.last = Some(outcome);
        let to = target?;
        let transition = Transition {
            from: self.status,
            to,
        };
        self.status = to;
        self.status_since = now;
        self.transitions = self.transitions.saturating_add(1);
        Some(transition)
    }

    pub fn status(&self) -> Status {
        self.status
    }

    /// When the current status was entered (creation time while `Unknown`).
    pub fn status_since(&self) -> Instant {
        self.status_since
    }

    pub fn rise(&self) -> u32 {
        self.rise
    }

    pub fn fall(&self) -> u32 {
        self.fall
    }

    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// Successes in a row, up to the last result (0 if the last one failed).
    pub fn consecutive_ok(&self) -> u32 {
        self.consecutive_ok
    }

    /// Failures in a row, up to the last result (0 if the last one succeeded).
    pub fn consecutive_fail(&self) -> u32 {
        self.consecutive_fail
    }

    pub fn total_ok(&self) -> u64 {
        self.total_ok
    }

    pub fn total_fail(&self) -> u64 {
        self.total_fail
    }

    /// Number of status changes since creation.
    pub fn transitions(&self) -> u64 {
        self.transitions
    }

    /// The last probe result, if any probe has finished.
    pub fn last(&self) -> Option<&Outcome> {
        self.last.as_ref()
    }

    pub fn last_latency(&self) -> Option<Duration> {
        self.last.as_ref().map(|o| o.latency)
    }

    /// When the last probe finished.
    pub fn last_finished(&self) -> Option<Instant> {
        self.last_finished
    }

    /// When the running probe started; `None` when no probe is running.
    pub fn running_since(&self) -> Option<Instant> {
        self.running_since
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const IVL: Duration = Duration::from_secs(1);

    fn ok() -> Outcome {
        Outcome::success(Duration::from_millis(3), "ok")
    }

    fn fail() -> Outcome {
        Outcome::failure(Duration::from_millis(7), "refused")
    }

    /// Runs probes one interval apart, each taking 10 ms; returns the transitions.
    struct Sim {
        st: CheckState,
        now: Instant,
    }

    impl Sim {
        fn new(rise: u32, fall: u32) -> Sim {
            let now = Instant::now();
            Sim {
                st: CheckState::new(rise, fall, IVL, now),
                now,
            }
        }

        fn step(&mut self, good: bool) -> Option<Transition> {
            self.now = self.st.poll_timeout().expect("idle check has a deadline");
            self.st.start_probe(self.now);
            let done = self.now + Duration::from_millis(10);
            self.st.record(done, if good { ok() } else { fail() })
        }

        fn steps(&mut self, results: &[bool]) -> Vec<Transition> {
            results.iter().filter_map(|&g| self.step(g)).collect()
        }
    }

    fn t(from: Status, to: Status) -> Transition {
        Transition { from, to }
    }

    #[test]
    fn starts_unknown_with_probe_due_now() {
        let now = Instant::now();
        let st = CheckState::new(2, 3, IVL, now);
        assert_eq!(st.status(), Status::Unknown);
        assert_eq!(st.poll_timeout(), Some(now));
        assert_eq!(st.status_since(), now);
        assert_eq!((st.consecutive_ok(), st.consecutive_fail()), (0, 0));
        assert_eq!((st.total_ok(), st.total_fail()), (0, 0));
        assert!(st.last().is_none());
        assert!(st.last_latency().is_none());
        assert!(st.last_finished().is_none());
        assert!(st.running_since().is_none());
    }

    #[test]
    fn rise_one_fall_one_follows_every_result() {
        let mut s = Sim::new(1, 1);
        assert_eq!(s.step(true), Some(t(Status::Unknown, Status::Up)));
        assert_eq!(s.step(true), None);
        assert_eq!(s.step(false), Some(t(Status::Up, Status::Down)));
        assert_eq!(s.step(false), None);
        assert_eq!(s.step(true), Some(t(Status::Down, Status::Up)));
        assert_eq!(s.st.transitions(), 3);
    }

    #[test]
    fn unknown_to_up_needs_rise_successes() {
        let mut s = Sim::new(3, 2);
        assert_eq!(s.step(true), None);
        assert_eq!(s.step(true), None);
        assert_eq!(s.st.status(), Status::Unknown);
        assert_eq!(s.st.consecutive_ok(), 2);
        assert_eq!(s.step(true), Some(t(Status::Unknown, Status::Up)));
        assert_eq!(s.st.status(), Status::Up);
        assert_eq!(s.st.status_since(), s.now + Duration::from_millis(10));
    }

    #[test]
    fn unknown_to_down_needs_fall_failures() {
        let mut s = Sim::new(2, 3);
        assert_eq!(s.steps(&[false, false]), vec![]);
        assert_eq!(s.st.status(), Status::Unknown);
        assert_eq!(s.step(false), Some(t(Status::Unknown, Status::Down)));
    }

    #[test]
    fn interrupted_streak_starts_over() {
        let mut s = Sim::new(3, 3);
        // Two successes, a failure, two successes: still no verdict.
        assert_eq!(s.steps(&[true, true, false, true, true]), vec![]);
        assert_eq!(s.st.status(), Status::Unknown);
        assert_eq!(s.step(true), Some(t(Status::Unknown, Status::Up)));
        // Two failures, a success, two failures: still up.
        assert_eq!(s.steps(&[false, false, true, false, false]), vec![]);
        assert_eq!(s.st.status(), Status::Up);
        assert_eq!(s.step(false), Some(t(Status::Up, Status::Down)));
        // From down, rise again needs three in a row.
        assert_eq!(s.steps(&[true, true, false, true, true]), vec![]);
        assert_eq!(s.st.status(), Status::Down);
        assert_eq!(s.step(true), Some(t(Status::Down, Status::Up)));
    }

    #[test]
    fn up_to_down_after_exactly_fall_failures_and_back_after_rise() {
        for rise in 1..=6u32 {
            for fall in 1..=6u32 {
                let mut s = Sim::new(rise, fall);
                for _ in 0..rise - 1 {
                    assert_eq!(s.step(true), None, "rise {rise} fall {fall}");
                }
                assert_eq!(s.step(true), Some(t(Status::Unknown, Status::Up)));
                for _ in 0..fall - 1 {
                    assert_eq!(s.step(false), None, "rise {rise} fall {fall}");
                }
                assert_eq!(s.step(false), Some(t(Status::Up, Status::Down)));
                for _ in 0..rise - 1 {
                    assert_eq!(s.step(true), None, "rise {rise} fall {fall}");
                }
                assert_eq!(s.step(true), Some(t(Status::Down, Status::Up)));
            }
        }
    }

    #[test]
    fn flapping_every_interval_never_changes_status() {
        for rise in 2..=5u32 {
            for fall in 2..=5u32 {
                // Reach each status first, then alternate for a long time, starting with
                // either kind of result.
                let preludes: [(&[bool], Status); 3] = [
                    (&[], Status::Unknown),
                    (&[true; 5], Status::Up),
                    (&[false; 5], Status::Down),
                ];
                for (prelude, status) in preludes {
                    for first in [true, false] {
                        let mut s = Sim::new(rise, fall);
                        s.steps(prelude);
                        assert_eq!(s.st.status(), status);
                        let before = s.st.transitions();
                        for i in 0..1000 {
                            let good = (i % 2 == 0) == first;
                            assert_eq!(s.step(good), None, "rise {rise} fall {fall} {status}");
                            if i > 0 {
                                assert_eq!(s.st.consecutive_ok() + s.st.consecutive_fail(), 1);
                            }
                        }
                        assert_eq!(s.st.status(), status);
                        assert_eq!(s.st.transitions(), before);
                    }
                }
            }
        }
    }

    #[test]
    fn flapping_with_rise_or_fall_one_follows_the_flaps() {
        let mut s = Sim::new(1, 2);
        s.steps(&[true]);
        // fall 2: single failures are absorbed, the check stays up.
        assert_eq!(s.steps(&[false, true, false, true, false, true]), vec![]);
        assert_eq!(s.st.status(), Status::Up);
        let mut s = Sim::new(2, 1);
        // fall 1, rise 2: the first failure takes it down, single successes never lift it.
        assert_eq!(
            s.steps(&[false, true, false, true, false]),
            vec![t(Status::Unknown, Status::Down)]
        );
    }

    /// Reference model, written differently: split the results into maximal runs of equal
    /// results; a run of successes at least `rise` long ends Up, a run of failures at least
    /// `fall` long ends Down, a shorter run leaves the status as it was.
    fn model(rise: u32, fall: u32, results: &[bool]) -> (Status, usize) {
        let mut status = Status::Unknown;
        let mut changes = 0;
        let mut i = 0;
        while i < results.len() {
            let v = results[i];
            let len = results[i..].iter().take_while(|&&r| r == v).count();
            let next = match (v, len as u32 >= if v { rise } else { fall }) {
                (true, true) => Status::Up,
                (false, true) => Status::Down,
                _ => status,
            };
            if next != status {
                changes += 1;
                status = next;
            }
            i += len;
        }
        (status, changes)
    }

    #[test]
    fn exhaustive_sequences_match_reference_model() {
        const LEN: usize = 10;
        for rise in 1..=4u32 {
            for fall in 1..=4u32 {
                for bits in 0u32..(1 << LEN) {
                    let results: Vec<bool> = (0..LEN).map(|i| bits & (1 << i) != 0).collect();
                    let mut s = Sim::new(rise, fall);
                    let mut prev = Status::Unknown;
                    let mut changes = 0;
                    for (i, &good) in results.iter().enumerate() {
                        if let Some(tr) = s.step(good) {
                            assert_eq!(tr.from, prev, "transition must start from the status");
                            assert_ne!(tr.from, tr.to);
                            assert_ne!(tr.to, Status::Unknown);
                            prev = tr.to;
                            changes += 1;
                        }
                        assert_eq!(s.st.status(), prev);
                        // Counters are the current streak.
                        let streak = results[..=i].iter().rev().take_while(|&&r| r == good);
                        let streak = streak.count() as u32;
                        if good {
                            assert_eq!(
                                (s.st.consecutive_ok(), s.st.consecutive_fail()),
                                (streak, 0)
                            );
                        } else {
                            assert_eq!(
                                (s.st.consecutive_ok(), s.st.consecutive_fail()),
                                (0, streak)
                            );
                        }
                    }
                    let (status, model_changes) = model(rise, fall, &results);
                    assert_eq!(s.st.status(), status, "rise {rise} fall {fall} {results:?}");
                    assert_eq!(
                        changes, model_changes,
                        "rise {rise} fall {fall} {results:?}"
                    );
                    let oks = results.iter().filter(|&&r| r).count() as u64;
                    assert_eq!(s.st.total_ok(), oks);
                    assert_eq!(s.st.total_fail(), LEN as u64 - oks);
                    assert_eq!(s.st.transitions(), changes as u64);
                }
            }
        }
    }

    #[test]
    fn last_result_and_latency_are_kept() {
        let mut s = Sim::new(2, 2);
        s.step(true);
        assert_eq!(s.st.last(), Some(&ok()));
        assert_eq!(s.st.last_latency(), Some(Duration::from_millis(3)));
        s.step(false);
        assert_eq!(s.st.last().map(|o| o.message.as_str()), Some("refused"));
        assert_eq!(s.st.last_latency(), Some(Duration::from_millis(7)));
        assert_eq!(
            s.st.last_finished(),
            Some(s.now + Duration::from_millis(10))
        );
    }

    #[test]
    fn schedule_is_start_to_start_without_overlap() {
        let t0 = Instant::now();
        let mut st = CheckState::new(1, 1, IVL, t0);
        assert_eq!(st.poll_timeout(), Some(t0));
        st.start_probe(t0);
        // No deadline while the probe runs, however late it is.
        assert_eq!(st.poll_timeout(), None);
        assert_eq!(st.running_since(), Some(t0));
        st.record(t0 + Duration::from_millis(300), ok());
        // Next start is one interval after the previous *start*.
        assert_eq!(st.poll_timeout(), Some(t0 + IVL));
        assert_eq!(st.running_since(), None);

        // A probe that overruns the interval: the next one is due at once (a past instant),
        // and only one is due, not one per missed interval.
        let t1 = t0 + IVL;
        st.start_probe(t1);
        st.record(t1 + 3 * IVL + Duration::from_millis(500), fail());
        assert_eq!(st.poll_timeout(), Some(t1 + IVL));
        let t2 = t1 + 3 * IVL + Duration::from_millis(500);
        st.start_probe(t2);
        st.record(t2 + Duration::from_millis(1), ok());
        assert_eq!(st.poll_timeout(), Some(t2 + IVL));
    }

    #[test]
    fn record_without_start_is_accepted() {
        let t0 = Instant::now();
        let mut st = CheckState::new(1, 1, IVL, t0);
        assert_eq!(st.record(t0, ok()), Some(t(Status::Unknown, Status::Up)));
        assert_eq!(st.poll_timeout(), Some(t0));
    }

    #[test]
    fn zero_rise_and_fall_act_as_one() {
        let t0 = Instant::now();
        let mut st = CheckState::new(0, 0, IVL, t0);
        assert_eq!((st.rise(), st.fall()), (1, 1));
        assert_eq!(
            st.record(t0, fail()),
            Some(t(Status::Unknown, Status::Down))
        );
    }

    #[test]
    fn status_names() {
        assert_eq!(Status::Up.to_string(), "up");
        assert_eq!(Status::Down.as_str(), "down");
        assert_eq!(Status::Unknown.as_str(), "unknown");
    }
}
