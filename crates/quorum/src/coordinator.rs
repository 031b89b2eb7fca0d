//! The lease coordinator: which node should hold each `quorum` group, decided on the Raft
//! leader from the committed state and the leader's own clock.
//!
//! Sans-IO: fed with the applied [`ClusterState`], what the leader saw (renewals, reports)
//! and the current `Instant`; returns the commands to propose. The timing rules
//! (../shared/ARCHITECTURE.md, "Raft"):
//!
//! * the leader counts a lease from the moment it committed the renewal, which is after the
//!   holder sent it; the holder lets go at `send time + lease − margin`, the leader reassigns
//!   only after `commit time + lease + margin` — so the holder is gone `2 × margin` earlier,
//!   as long as the two clocks' rates differ by less than the margin allows;
//! * a new leader does not know when the last renewals were committed, so it counts every
//!   lease from its own election, i.e. waits one full lease (+ margin) before it reassigns;
//! * a planned move (standby, preference, preemption, a faulted holder) never takes a lease
//!   away: the holder is asked to let go (`Move`), removes its VIPs and commits `Release`;
//!   only a free lease is granted.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::state::{ClusterState, Command, GroupReport};

/// The lease timing of the cluster (`[cluster] lease`, `lease_renew`, `lease_margin`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaseTiming {
    pub lease: Duration,
    pub renew: Duration,
    pub margin: Duration,
}

impl LeaseTiming {
    /// How long a holder may keep its VIPs after it sent a renewal that was then committed.
    pub fn holder_validity(&self) -> Duration {
        self.lease.saturating_sub(self.margin)
    }
    /// How long the leader waits after the last committed renewal before it reassigns.
    pub fn reassign_after(&self) -> Duration {
        self.lease + self.margin
    }
}

/// Leader-side lease bookkeeping. Holds nothing when this node is not the leader.
#[derive(Debug)]
pub struct Coordinator {
    me: String,
    timing: LeaseTiming,
    leader_since: Option<Instant>,
    /// Per group: when this leader last committed a renewal or a grant.
    last_renew: BTreeMap<String, Instant>,
    /// Per node: when this leader last heard from it (report or renewal).
    last_seen: BTreeMap<String, Instant>,
    /// The latest unlogged report per node; logged only when it differs from the state.
    reports: BTreeMap<String, BTreeMap<String, GroupReport>>,
}

impl Coordinator {
    pub fn new(me: impl Into<String>, timing: LeaseTiming) -> Coordinator {
        Coordinator {
            me: me.into(),
            timing,
            leader_since: None,
            last_renew: BTreeMap::new(),
            last_seen: BTreeMap::new(),
            reports: BTreeMap::new(),
        }
    }

    pub fn timing(&self) -> LeaseTiming {
        self.timing
    }

    pub fn is_leader(&self) -> bool {
        self.leader_since.is_some()
    }

    pub fn leader_since(&self) -> Option<Instant> {
        self.leader_since
    }

    /// This node became leader at `now`: forget everything a previous term taught us.
    pub fn become_leader(&mut self, now: Instant) {
        self.leader_since = Some(now);
        self.last_renew.clear();
        self.last_seen.clear();
        self.reports.clear();
    }

    pub fn step_down(&mut self) {
        self.leader_since = None;
        self.last_renew.clear();
        self.last_seen.clear();
        self.reports.clear();
    }

    /// A node reported its groups (unlogged, over the transport).
    pub fn reported(&mut self, node: &str, groups: BTreeMap<String, GroupReport>, now: Instant) {
        self.last_seen.insert(node.to_string(), now);
        self.reports.insert(node.to_string(), groups);
    }

    /// Drops what this leader heard from nodes no longer in the membership, so that a removed
    /// node is not alive (eligible) any more.
    pub fn forget_absent(&mut self, members: &[String]) {
        let keep = |n: &String| members.contains(n);
        self.last_seen.retain(|n, _| keep(n));
        self.reports.retain(|n, _| keep(n));
    }

    /// This leader committed a renewal or grant of `group` for `holder` at `now`.
    pub fn renewed(&mut self, group: &str, holder: &str, now: Instant) {
        if self.is_leader() {
            self.last_renew.insert(group.to_string(), now);
            self.last_seen.insert(holder.to_string(), now);
        }
    }

    /// Whether `node` was heard from within one lease (the leader itself always is).
    pub fn alive(&self, node: &str, now: Instant) -> bool {
        node == self.me
            || self
                .last_seen
                .get(node)
                .is_some_and(|t| now.saturating_duration_since(*t) < self.timing.lease)
    }

    /// When the leader may reassign `group` if no renewal comes.
    pub fn reassign_at(&self, group: &str) -> Option<Instant> {
        let since = self.leader_since?;
        let base = self
            .last_renew
            .get(group)
            .copied()
            .unwrap_or(since)
            .max(since);
        Some(base + self.timing.reassign_after())
    }

    /// The commands this leader should propose now, in order. Empty when not leader.
    pub fn decide(&self, state: &ClusterState, now: Instant) -> Vec<Command> {
        let mut out = Vec::new();
        if !self.is_leader() {
            return out;
        }
        for (node, groups) in &self.reports {
            let logged = state.members.get(node).map(|m| &m.groups);
            if logged != Some(groups) {
                out.push(Command::Report {
                    node: node.clone(),
                    groups: groups.clone(),
                });
            }
        }
        for group in state.groups() {
            if let Some(cmd) = self.decide_group(state, &group, now) {
                out.push(cmd);
            }
        }
        out
    }

    fn decide_group(&self, state: &ClusterState, group: &str, now: Instant) -> Option<Command> {
        let lease = state.lease(group);
        let report = |node: &str| {
            state
                .members
                .get(node)
                .and_then(|m| m.groups.get(group))
                .copied()
        };
        let eligible = |node: &str| {
            state.members.get(node).is_some_and(|m| !m.standby)
                && report(node).is_some_and(|r| r.priority > 0)
                && self.alive(node, now)
        };
        let holder = lease.holder.as_deref();
        let preferred = state
            .preferred
            .get(group)
            .map(String::as_str)
            .filter(|n| eligible(n));
        let best = preferred.or_else(|| {
            state
                .members
                .keys()
                .map(String::as_str)
                .filter(|n| eligible(n))
                .max_by(|a, b| {
                    let pa = report(a).map_or(0, |r| r.priority);
                    let pb = report(b).map_or(0, |r| r.priority);
                    pa.cmp(&pb)
                        .then_with(|| (Some(*a) == holder).cmp(&(Some(*b) == holder)))
                        // Lower name wins a tie, so every leader makes the same choice.
                        .then_with(|| b.cmp(a))
                })
        });
        let best = best?;
        let Some(holder) = holder else {
            return Some(Command::Grant {
                group: group.to_string(),
                holder: best.to_string(),
                epoch: lease.epoch + 1,
            });
        };
        let overdue = self.reassign_at(group).is_some_and(|t| now >= t);
        if overdue {
            return Some(Command::Grant {
                group: group.to_string(),
                holder: best.to_string(),
                epoch: lease.epoch + 1,
            });
        }
        if lease.releasing_to.is_some() || best == holder {
            return None;
        }
        let preempts = report(best)
            .is_some_and(|b| b.preempt && report(holder).is_some_and(|h| b.priority > h.priority));
        // Only what the state says can make a holder ineligible here: one we have not heard
        // from cannot release anyway (its lease runs out instead), and a new leader has heard
        // from nobody yet.
        let holder_ok = state.members.get(holder).is_some_and(|m| !m.standby)
            && report(holder).is_some_and(|r| r.priority > 0);
        if !holder_ok || preferred == Some(best) || preempts {
            return Some(Command::Move {
                group: group.to_string(),
                epoch: lease.epoch,
                to: best.to_string(),
            });
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LEASE: Duration = Duration::from_millis(1000);
    const MARGIN: Duration = Duration::from_millis(100);

    fn timing() -> LeaseTiming {
        LeaseTiming {
            lease: LEASE,
            renew: Duration::from_millis(250),
            margin: MARGIN,
        }
    }

    fn report(priority: u8, preempt: bool) -> BTreeMap<String, GroupReport> {
        [("VI_1".to_string(), GroupReport { priority, preempt })].into()
    }

    /// A leader "arb" with lb1 (200) and lb2 (100) reporting, state logged.
    fn setup(now: Instant) -> (Coordinator, ClusterState) {
        let mut c = Coordinator::new("arb", timing());
        c.become_leader(now);
        let mut s = ClusterState::default();
        for (n, p) in [("lb1", 200), ("lb2", 100)] {
            c.reported(n, report(p, true), now);
            s.apply(&Command::Report {
                node: n.into(),
                groups: report(p, true),
            });
        }
        (c, s)
    }

    fn apply_all(c: &Coordinator, s: &mut ClusterState, now: Instant) -> Vec<Command> {
        let cmds = c.decide(s, now);
        for cmd in &cmds {
            assert!(s.apply(cmd).is_ok(), "{cmd:?}");
        }
        cmds
    }

    #[test]
    fn not_leader_decides_nothing() {
        let now = Instant::now();
        let (mut c, s) = setup(now);
        c.step_down();
        assert!(c.decide(&s, now).is_empty());
    }

    #[test]
    fn free_group_goes_to_the_highest_priority() {
        let now = Instant::now();
        let (c, mut s) = setup(now);
        let cmds = apply_all(&c, &mut s, now);
        assert_eq!(
            cmds,
            vec![Command::Grant {
                group: "VI_1".into(),
                holder: "lb1".into(),
                epoch: 1
            }]
        );
        assert!(c.decide(&s, now).is_empty(), "stable once granted");
    }

    #[test]
    fn reports_are_logged_only_when_they_change() {
        let now = Instant::now();
        let (mut c, s) = setup(now);
        assert!(c
            .decide(&s, now)
            .iter()
            .all(|c| !matches!(c, Command::Report { .. })));
        c.reported("lb2", report(0, true), now);
        assert!(c.decide(&s, now).contains(&Command::Report {
            node: "lb2".into(),
            groups: report(0, true)
        }));
    }

    #[test]
    fn silent_holder_is_replaced_only_after_lease_and_margin() {
        let t0 = Instant::now();
        let (mut c, mut s) = setup(t0);
        apply_all(&c, &mut s, t0);
        c.renewed("VI_1", "lb1", t0);
        // lb2 keeps reporting, lb1 goes silent.
        let mut t = t0;
        while t < t0 + LEASE + MARGIN {
            c.reported("lb2", report(100, true), t);
            let cmds = c.decide(&s, t);
            assert!(
                cmds.iter().all(|c| !matches!(c, Command::Grant { .. })),
                "reassigned at {:?}",
                t - t0
            );
            t += Duration::from_millis(10);
        }
        c.reported("lb2", report(100, true), t);
        assert_eq!(
            c.decide(&s, t),
            vec![Command::Grant {
                group: "VI_1".into(),
                holder: "lb2".into(),
                epoch: 2
            }]
        );
    }

    #[test]
    fn new_leader_waits_a_full_lease() {
        let t0 = Instant::now();
        let (c, mut s) = setup(t0);
        apply_all(&c, &mut s, t0);
        // A new leader (lb2) takes over: lb1 is silent from its point of view.
        let t1 = t0 + Duration::from_millis(300);
        let mut c2 = Coordinator::new("lb2", timing());
        c2.become_leader(t1);
        assert!(c2.decide(&s, t1 + LEASE).is_empty());
        let cmds = c2.decide(&s, t1 + LEASE + MARGIN);
        assert_eq!(
            cmds,
            vec![Command::Grant {
                group: "VI_1".into(),
                holder: "lb2".into(),
                epoch: 2
            }]
        );
    }

    #[test]
    fn standby_preference_and_preemption_move_through_release() {
        let t0 = Instant::now();
        let (c, mut s) = setup(t0);
        apply_all(&c, &mut s, t0);
        s.apply(&Command::SetStandby {
            node: "lb1".into(),
            standby: true,
        });
        let mv = Command::Move {
            group: "VI_1".into(),
            epoch: 1,
            to: "lb2".into(),
        };
        assert_eq!(apply_all(&c, &mut s, t0), vec![mv]);
        assert!(c.decide(&s, t0).is_empty(), "waits for the release");
        s.apply(&Command::Release {
            group: "VI_1".into(),
            holder: "lb1".into(),
            epoch: 1,
        });
        assert_eq!(
            apply_all(&c, &mut s, t0),
            vec![Command::Grant {
                group: "VI_1".into(),
                holder: "lb2".into(),
                epoch: 2
            }]
        );
        // unstandby: lb1 has the higher priority and preempt, so it moves back.
        s.apply(&Command::SetStandby {
            node: "lb1".into(),
            standby: false,
        });
        assert_eq!(
            c.decide(&s, t0),
            vec![Command::Move {
                group: "VI_1".into(),
                epoch: 2,
                to: "lb1".into()
            }]
        );
    }

    #[test]
    fn without_preempt_the_holder_stays() {
        let t0 = Instant::now();
        let mut c = Coordinator::new("arb", timing());
        c.become_leader(t0);
        let mut s = ClusterState::default();
        s.apply(&Command::Grant {
            group: "VI_1".into(),
            holder: "lb2".into(),
            epoch: 1,
        });
        for (n, p) in [("lb1", 200), ("lb2", 100)] {
            c.reported(n, report(p, false), t0);
            s.apply(&Command::Report {
                node: n.into(),
                groups: report(p, false),
            });
        }
        assert!(c.decide(&s, t0).is_empty());
        // A preference overrides it.
        s.apply(&Command::Prefer {
            group: "VI_1".into(),
            node: Some("lb1".into()),
        });
        assert!(matches!(c.decide(&s, t0)[..], [Command::Move { .. }]));
    }

    #[test]
    fn faulted_holder_hands_over_and_nobody_eligible_means_no_grant() {
        let t0 = Instant::now();
        let (mut c, mut s) = setup(t0);
        apply_all(&c, &mut s, t0);
        c.reported("lb1", report(0, true), t0);
        apply_all(&c, &mut s, t0);
        let cmds = apply_all(&c, &mut s, t0);
        assert!(cmds.contains(&Command::Move {
            group: "VI_1".into(),
            epoch: 1,
            to: "lb2".into()
        }));
        // Everyone faulted: a free group stays free.
        let mut s2 = ClusterState::default();
        c.reported("lb2", report(0, true), t0);
        for n in ["lb1", "lb2"] {
            s2.apply(&Command::Report {
                node: n.into(),
                groups: report(0, true),
            });
        }
        assert!(c
            .decide(&s2, t0)
            .iter()
            .all(|c| !matches!(c, Command::Grant { .. })));
    }

    #[test]
    fn arbiter_is_never_granted() {
        let t0 = Instant::now();
        let (c, mut s) = setup(t0);
        s.apply(&Command::SetStandby {
            node: "lb1".into(),
            standby: true,
        });
        s.apply(&Command::SetStandby {
            node: "lb2".into(),
            standby: true,
        });
        s.members.insert("arb".into(), Default::default());
        assert!(c.decide(&s, t0).is_empty());
    }

    proptest::proptest! {
        /// Under any interleaving of reports, renewals and time, a grant that replaces a
        /// holder comes only after lease + margin without a renewal, counted from the later
        /// of the election and the last renewal.
        #[test]
        fn never_reassigns_a_live_lease(steps in proptest::collection::vec((0u8..4, 0u64..400), 1..150)) {
            let t0 = Instant::now();
            let (mut c, mut s) = setup(t0);
            let mut now = t0;
            let mut last_renew = t0;
            for (kind, ms) in steps {
                now += Duration::from_millis(ms);
                match kind {
                    0 => {
                        if let Some(h) = s.lease("VI_1").holder {
                            c.renewed("VI_1", &h, now);
                            last_renew = now;
                        }
                    }
                    1 => c.reported("lb2", report(100, true), now),
                    2 => c.reported("lb1", report(200, true), now),
                    _ => {}
                }
                let before = s.lease("VI_1");
                for cmd in c.decide(&s, now) {
                    if let Command::Grant { .. } = cmd {
                        if before.holder.is_some() {
                            proptest::prop_assert!(now >= last_renew + LEASE + MARGIN);
                        }
                        last_renew = now;
                        c.renewed("VI_1", "x", now);
                    }
                    s.apply(&cmd);
                }
            }
        }
    }
}
