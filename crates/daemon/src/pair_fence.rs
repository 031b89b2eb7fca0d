//! `fence_on_takeover` in `vrrp` mode: when a pair's peer is silent on every heartbeat
//! channel, fence it before taking its VIPs, and settle fence races with `fence_delay`.
//!
//! Sans-IO: fed with heartbeat verdicts, whether an instance wants to take over, fence
//! results and the current `Instant`; answers whether takeovers are allowed, when to start a
//! fence, and when to be woken next. The daemon runs the fence and gates its instances.
//!
//! Rules:
//! * a takeover from a Master that fell silent is allowed after the peer left cleanly
//!   (LEAVING: it removed its VIPs before saying so) and after a verified fence; never while
//!   it is merely silent — a silent peer may still hold the VIPs — and not while it is still
//!   up on a heartbeat channel either (its adverts stopped but it lives: a VRRP-only fault,
//!   which must not become two Masters). The daemon also allows an instance that has heard no
//!   Master at all to win the first election while the peer is up, and the VRRP core never
//!   gates the takeover after a priority-0 advert (the Master left and removed its VIPs);
//! * a fence starts when the peer is silent on every channel and a gated instance's takeover
//!   is waiting (its Master fell silent on VRRP too: with only the heartbeats cut, the Master
//!   is alive and is not fenced), after `fence_delay` plus a random part of up to
//!   `fence_random_delay`: in a full split both nodes want to fence, and the one with the
//!   delay is switched off before its delay ends, so exactly one survives;
//! * a peer never heard since we started is treated as silent only after
//!   [`STARTUP_GRACE`] (Pacemaker's `dc-deadtime`): starting both nodes together must not
//!   make one fence the other;
//! * a failed fence is retried after [`RETRY`]; takeovers stay blocked meanwhile and status
//!   says why;
//! * the peer heard again (it was powered back on) ends it all: the next silence is a new
//!   failure, to be fenced again;
//! * with `unfence = "auto"`, a peer we fenced that is heard again *with a new incarnation*
//!   (its daemon restarted, so it holds no VIPs: tandem removes stale ones at start) has its
//!   devices switched on again; heard with the incarnation it had when fenced (a hung process
//!   that resumed, its VIPs maybe still configured behind the fenced port) it is not, and
//!   status says to restart it.

use std::time::{Duration, Instant};

/// How long a peer never heard since start is given before it counts as silent.
pub const STARTUP_GRACE: Duration = Duration::from_secs(20);
/// Pause after a failed fence before the next try.
pub const RETRY: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Peer {
    /// Not heard since we started.
    NeverSeen,
    Up,
    /// Silent on every channel since then.
    Silent(Instant),
    /// Said it was leaving.
    Left,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Fence {
    Idle,
    /// Waiting out the delay; starts at that time.
    Delayed(Instant),
    InFlight,
    /// Verified off.
    Fenced,
    /// The last try failed then, for this reason.
    Failed(Instant, String),
}

/// The pair's fencing state, one per daemon (a `fence_on_takeover` pair has one peer).
#[derive(Debug)]
pub struct PairFence {
    peer_name: String,
    delay: Duration,
    started: Instant,
    peer: Peer,
    fence: Fence,
    fences_started: u64,
    fences_verified: u64,
    fences_failed: u64,
    /// The peer's incarnation as last heard.
    incarnation: Option<u64>,
    /// We fenced it and have not switched it on again: the incarnation it had then.
    unfence_pending: Option<Option<u64>>,
    /// The instances whose VIPs the peer says it has configured (its heartbeat frames' held
    /// list, sorted [`tandem_heartbeat::wire::held_id`]s).
    peer_held: Vec<u32>,
}

impl PairFence {
    pub fn new(peer: impl Into<String>, delay: Duration, now: Instant) -> PairFence {
        PairFence {
            peer_name: peer.into(),
            delay,
            started: now,
            peer: Peer::NeverSeen,
            fence: Fence::Idle,
            fences_started: 0,
            fences_verified: 0,
            fences_failed: 0,
            incarnation: None,
            unfence_pending: None,
            peer_held: Vec::new(),
        }
    }

    pub fn peer(&self) -> &str {
        &self.peer_name
    }

    /// The peer is up again with `incarnation`; returns true when a fenced peer came back as
    /// a new incarnation, i.e. its devices may be switched on again (`unfence = "auto"`).
    pub fn peer_incarnation(&mut self, incarnation: u64) -> bool {
        self.peer_up();
        self.incarnation = Some(incarnation);
        match self.unfence_pending {
            Some(at_fence) if at_fence != Some(incarnation) => {
                self.unfence_pending = None;
                true
            }
            _ => false,
        }
    }

    /// The peer is up on at least one heartbeat channel.
    pub fn peer_up(&mut self) {
        self.peer = Peer::Up;
        // Back (powered on again, or the split healed before the fence ran): whatever we
        // were doing about it is over.
        if self.fence != Fence::InFlight {
            self.fence = Fence::Idle;
        }
    }

    /// The peer is down on every channel; `left` when it said it was leaving.
    pub fn peer_down(&mut self, now: Instant, left: bool) {
        self.peer = if left { Peer::Left } else { Peer::Silent(now) };
        if left && self.fence != Fence::InFlight {
            self.fence = Fence::Idle;
        }
    }

    /// The peer's held list changed (sorted ids).
    pub fn set_peer_held(&mut self, held: Vec<u32>) {
        self.peer_held = held;
    }

    /// The peer says it is Master of the instance with this id (see
    /// [`PairFence::first_election`]).
    pub fn peer_holds(&self, id: u32) -> bool {
        self.peer_held.binary_search(&id).is_ok()
    }

    /// Whether an instance that has heard no Master since it last changed state may hold a
    /// first election now, though the peer is alive: only when the peer is up on heartbeat
    /// (else the peer is fenced first, or said it left) and does not say it is Master of
    /// that instance. A node that starts, or leaves FAULT, while the peer's adverts do not
    /// reach it would otherwise see an empty segment and take VIPs the peer still has.
    pub fn first_election(&self, id: u32) -> bool {
        self.peer == Peer::Up && !self.peer_holds(id)
    }

    /// Whether a gated instance may take over from a Master that fell silent.
    pub fn takeover_allowed(&self) -> bool {
        self.peer == Peer::Left || self.fence == Fence::Fenced
    }

    /// The peer is up on at least one heartbeat channel.
    #[cfg(test)]
    fn peer_is_up(&self) -> bool {
        self.peer == Peer::Up
    }

    fn silent(&self, now: Instant) -> bool {
        match self.peer {
            Peer::Silent(_) => true,
            Peer::NeverSeen => now.saturating_duration_since(self.started) >= STARTUP_GRACE,
            Peer::Up | Peer::Left => false,
        }
    }

    /// Advances the state; `wants_takeover`: a gated instance's takeover is waiting (a blocked
    /// Master_Down expiry); `jitter`: this round's random part of the delay, used only when
    /// a delay starts. Returns true when the daemon must start a fence now.
    pub fn poll(&mut self, now: Instant, wants_takeover: bool, jitter: Duration) -> bool {
        if !self.silent(now) {
            if matches!(self.fence, Fence::Delayed(_)) {
                self.fence = Fence::Idle;
            }
            return false;
        }
        match self.fence {
            Fence::Idle if wants_takeover => {
                let at = now + self.delay + jitter;
                if at <= now {
                    return self.start();
                }
                self.fence = Fence::Delayed(at);
                false
            }
            Fence::Delayed(at) if now >= at => self.start(),
            Fence::Failed(at, _) if wants_takeover && now >= at + RETRY => self.start(),
            _ => false,
        }
    }

    fn start(&mut self) -> bool {
        self.fence = Fence::InFlight;
        self.fences_started += 1;
        true
    }

    /// The fence started by [`PairFence::poll`] ended.
    pub fn fence_done(&mut self, now: Instant, verified: bool, detail: &str) {
        if verified {
            self.fences_verified += 1;
            self.unfence_pending = Some(self.incarnation);
            // Heard again while we were at it: it is back, whatever the device said.
            self.fence = if self.peer == Peer::Up {
                Fence::Idle
            } else {
                Fence::Fenced
            };
        } else {
            self.fences_failed += 1;
            self.fence = Fence::Failed(now, detail.to_string());
        }
    }

    /// When [`PairFence::poll`] has something to do next without any input.
    pub fn next_deadline(&self) -> Option<Instant> {
        match (&self.fence, self.peer) {
            (Fence::Delayed(at), _) => Some(*at),
            (Fence::Failed(at, _), _) => Some(*at + RETRY),
            (Fence::Idle, Peer::NeverSeen) => Some(self.started + STARTUP_GRACE),
            _ => None,
        }
    }

    /// A one-line account for status, `None` when there is nothing to say. `blocked`: a
    /// gated instance's takeover is waiting.
    pub fn status(&self, now: Instant, blocked: bool) -> Option<String> {
        let peer = &self.peer_name;
        let since = |t: Instant| now.saturating_duration_since(t).as_millis();
        match (&self.fence, self.peer) {
            (Fence::Fenced, _) => Some(format!("{peer} fenced (verified): takeovers allowed")),
            (Fence::InFlight, _) => Some(format!("fencing {peer}: takeovers wait for it")),
            (Fence::Delayed(at), _) => Some(format!(
                "{peer} silent on every heartbeat channel: fencing it in {} ms (fence_delay)",
                at.saturating_duration_since(now).as_millis()
            )),
            (Fence::Failed(_, why), _) => Some(format!(
                "fencing {peer} failed: {why}; its VIPs are not taken (retried every {}s)",
                RETRY.as_secs()
            )),
            (Fence::Idle, Peer::Silent(t)) => Some(format!(
                "{peer} silent on every heartbeat channel for {} ms: fenced before any takeover",
                since(t)
            )),
            (Fence::Idle, Peer::NeverSeen) if !self.silent(now) => Some(format!(
                "{peer} not heard since start: no takeover for up to {}s, then it is fenced first",
                STARTUP_GRACE.as_secs()
            )),
            (Fence::Idle, Peer::Up) if self.unfence_pending == Some(self.incarnation) => {
                Some(format!(
                    "{peer} was fenced and is heard again as the same process (hung, then \
                     resumed?): its devices stay off until it restarts or `tandem fence {peer} \
                     --action on`"
                ))
            }
            (Fence::Idle, Peer::Up) if blocked && !self.peer_held.is_empty() => Some(format!(
                "no Master heard on VRRP but {peer} is up on heartbeat and says it is Master of \
                 {} instance(s): no takeover while it lives (a VRRP-only fault; check the VRRP \
                 path between the two)",
                self.peer_held.len()
            )),
            (Fence::Idle, Peer::Up) if blocked => Some(format!(
                "the Master's adverts stopped but {peer} is up on heartbeat: no takeover while it \
                 lives (a VRRP-only fault; check its VRRP path)"
            )),
            _ => None,
        }
    }

    /// (started, verified, failed) fences since start.
    pub fn counters(&self) -> (u64, u64, u64) {
        (
            self.fences_started,
            self.fences_verified,
            self.fences_failed,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DELAY: Duration = Duration::from_secs(3);

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn up(t0: Instant, delay: Duration) -> PairFence {
        let mut f = PairFence::new("lb1", delay, t0);
        f.peer_up();
        f
    }

    #[test]
    fn up_or_left_peer_is_never_fenced_and_only_a_left_one_allows_takeover() {
        let t0 = Instant::now();
        let mut f = up(t0, Duration::ZERO);
        assert!(
            !f.takeover_allowed(),
            "alive: its adverts stopping is no reason"
        );
        assert!(f.peer_is_up());
        assert!(!f.poll(t0 + ms(10), true, Duration::ZERO));
        assert_eq!(f.status(t0 + ms(10), false), None);
        assert!(f
            .status(t0 + ms(10), true)
            .unwrap()
            .contains("up on heartbeat"));
        f.peer_down(t0 + ms(20), true);
        assert!(
            f.takeover_allowed(),
            "a peer that left removed its VIPs first"
        );
        assert!(!f.poll(t0 + ms(30), true, Duration::ZERO));
        assert_eq!(f.status(t0 + ms(30), true), None);
    }

    #[test]
    fn silent_peer_blocks_takeover_until_a_verified_fence() {
        let t0 = Instant::now();
        let mut f = up(t0, Duration::ZERO);
        f.peer_down(t0 + ms(500), false);
        assert!(!f.takeover_allowed());
        assert!(
            !f.poll(t0 + ms(500), false, Duration::ZERO),
            "no takeover wanted"
        );
        assert!(
            f.poll(t0 + ms(600), true, Duration::ZERO),
            "fence at once without delay"
        );
        assert!(!f.poll(t0 + ms(610), true, Duration::ZERO), "one at a time");
        assert!(!f.takeover_allowed());
        assert!(f
            .status(t0 + ms(610), true)
            .unwrap()
            .contains("fencing lb1"));
        f.fence_done(t0 + ms(900), true, "off lb1: verified by level 1");
        assert!(f.takeover_allowed());
        assert_eq!(f.counters(), (1, 1, 0));
    }

    #[test]
    fn fence_delay_and_jitter_postpone_the_fence() {
        let t0 = Instant::now();
        let mut f = up(t0, DELAY);
        f.peer_down(t0, false);
        assert!(!f.poll(t0, true, ms(400)));
        assert_eq!(f.next_deadline(), Some(t0 + DELAY + ms(400)));
        assert!(f.status(t0, true).unwrap().contains("fence_delay"));
        assert!(!f.poll(t0 + DELAY, true, ms(999)), "jitter drawn once");
        assert!(f.poll(t0 + DELAY + ms(400), true, Duration::ZERO));
    }

    #[test]
    fn peer_heard_during_the_delay_cancels_the_fence() {
        let t0 = Instant::now();
        let mut f = up(t0, DELAY);
        f.peer_down(t0, false);
        f.poll(t0, true, Duration::ZERO);
        f.peer_up();
        assert!(!f.poll(t0 + DELAY, true, Duration::ZERO));
        assert_eq!(f.next_deadline(), None);
        assert!(f.peer_is_up() && !f.takeover_allowed());
    }

    #[test]
    fn failed_fence_keeps_takeovers_blocked_and_is_retried() {
        let t0 = Instant::now();
        let mut f = up(t0, Duration::ZERO);
        f.peer_down(t0, false);
        assert!(f.poll(t0, true, Duration::ZERO));
        f.fence_done(t0 + ms(100), false, "level 1: wrong password");
        assert!(!f.takeover_allowed());
        let st = f.status(t0 + ms(200), true).unwrap();
        assert!(
            st.contains("failed: level 1: wrong password") && st.contains("not taken"),
            "{st}"
        );
        assert!(!f.poll(t0 + ms(100) + RETRY - ms(1), true, Duration::ZERO));
        assert_eq!(f.next_deadline(), Some(t0 + ms(100) + RETRY));
        assert!(f.poll(t0 + ms(100) + RETRY, true, Duration::ZERO));
        assert_eq!(f.counters(), (2, 0, 1));
    }

    #[test]
    fn fenced_peer_coming_back_is_a_new_start() {
        let t0 = Instant::now();
        let mut f = up(t0, Duration::ZERO);
        f.peer_down(t0, false);
        f.poll(t0, true, Duration::ZERO);
        f.fence_done(t0, true, "ok");
        assert!(f.takeover_allowed());
        f.peer_up();
        assert!(!f.takeover_allowed(), "back: the election decides again");
        f.peer_down(t0 + ms(10), false);
        assert!(!f.takeover_allowed(), "silent again: fence again");
        assert!(f.poll(t0 + ms(10), true, Duration::ZERO));
    }

    #[test]
    fn fenced_peer_is_unfenced_only_as_a_new_incarnation() {
        let t0 = Instant::now();
        let mut f = PairFence::new("lb1", Duration::ZERO, t0);
        assert!(!f.peer_incarnation(7), "never fenced: nothing to switch on");
        f.peer_down(t0, false);
        assert!(f.poll(t0, true, Duration::ZERO));
        f.fence_done(t0, true, "ok");
        assert!(f.unfence_pending.is_some());
        // The same process resumes: not unfenced, and status says why.
        assert!(!f.peer_incarnation(7));
        assert!(f.status(t0, false).unwrap().contains("same process"));
        // It left (restart) and came back as a new process: unfence, once.
        f.peer_down(t0, true);
        assert!(f.peer_incarnation(8));
        assert!(f.unfence_pending.is_none());
        assert!(!f.peer_incarnation(8));
        assert_eq!(f.status(t0, false), None);
    }

    #[test]
    fn peer_never_heard_before_its_fence_comes_back_as_new() {
        let t0 = Instant::now();
        let mut f = PairFence::new("lb1", Duration::ZERO, t0);
        assert!(f.poll(t0 + STARTUP_GRACE, true, Duration::ZERO));
        f.fence_done(t0 + STARTUP_GRACE, true, "ok");
        assert!(f.peer_incarnation(1));
    }

    #[test]
    fn never_seen_peer_gets_the_startup_grace() {
        let t0 = Instant::now();
        let mut f = PairFence::new("lb1", Duration::ZERO, t0);
        assert!(!f.takeover_allowed());
        assert!(!f.poll(t0 + STARTUP_GRACE - ms(1), true, Duration::ZERO));
        assert!(f
            .status(t0, true)
            .unwrap()
            .contains("not heard since start"));
        assert_eq!(f.next_deadline(), Some(t0 + STARTUP_GRACE));
        assert!(f.poll(t0 + STARTUP_GRACE, true, Duration::ZERO));
    }

    #[test]
    fn verified_fence_of_a_peer_heard_meanwhile_does_not_allow_a_takeover() {
        let t0 = Instant::now();
        let mut f = up(t0, Duration::ZERO);
        f.peer_down(t0, false);
        f.poll(t0, true, Duration::ZERO);
        f.peer_up();
        f.fence_done(t0 + ms(50), true, "ok");
        // It is up: the fence result does not allow a takeover from it.
        assert!(!f.takeover_allowed());
        f.peer_down(t0 + ms(60), false);
        assert!(!f.takeover_allowed());
    }

    #[test]
    fn first_election_only_for_instances_the_peer_does_not_hold() {
        let t0 = Instant::now();
        let mut f = PairFence::new("lb1", DELAY, t0);
        // Not heard yet: no first election (it may be fenced first after the grace).
        assert!(!f.first_election(1));
        f.peer_up();
        assert!(f.first_election(1) && f.first_election(2));
        // The peer is Master of instance 2: only instance 1 may hold a first election.
        f.set_peer_held(vec![2, 5]);
        assert!(f.first_election(1));
        assert!(!f.first_election(2) && !f.first_election(5));
        assert!(f
            .status(t0, true)
            .unwrap()
            .contains("says it is Master of 2 instance(s)"));
        assert!(f.status(t0, false).is_none());
        // Down (silent or left): no first election; the fence or its leaving decides.
        f.peer_down(t0, false);
        assert!(!f.first_election(1));
        f.peer_up();
        f.peer_down(t0, true);
        assert!(!f.first_election(1));
        // Back, holding nothing any more.
        f.peer_up();
        f.set_peer_held(Vec::new());
        assert!(f.first_election(2));
        assert!(f
            .status(t0, true)
            .unwrap()
            .contains("the Master's adverts stopped"));
    }
}
