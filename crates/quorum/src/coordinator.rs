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
//!   only a free lease is granted;
//! * a group whose holder reported `fence_on_takeover` is not reassigned while its holder is
//!   silent until the holder has been fenced and the fence verified: the leader starts a
//!   fence once the holder has been silent (no committed renewal, no report) for two renew
//!   intervals and a margin ([`LeaseTiming::fence_after`]: two renewals missed, each retried
//!   several times), and reassigns the group as soon as the fence is verified, without waiting for
//!   the rest of the lease. A failed fence is retried after [`FENCE_RETRY`]; the group
//!   stays where it is meanwhile (a killed daemon may have left its VIPs configured).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::state::{ClusterState, Command, FenceStage, GroupReport};

/// How long after a failed fence the leader tries again.
pub const FENCE_RETRY: Duration = Duration::from_secs(5);

/// Where the leader is with fencing one node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fencing {
    /// A fencer is at work.
    InFlight,
    /// Verified off at this time: its groups may be reassigned at once.
    Fenced(Instant),
    /// The last attempt failed at this time.
    Failed(Instant),
}

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
    /// How long a `fence_on_takeover` holder may be silent before the leader fences it; less
    /// than a lease by the config's rule `2 × (renew + margin) < lease`.
    pub fn fence_after(&self) -> Duration {
        self.renew * 2 + self.margin
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
    /// Nodes this leader is fencing or has fenced; forgotten when the node is heard again.
    fencing: BTreeMap<String, Fencing>,
    /// Per node: the process (incarnation) its latest report came from.
    incarnation: BTreeMap<String, u64>,
    /// Per node being fenced or fenced: the process that was running when the fence began,
    /// if it had reported.
    fenced_process: BTreeMap<String, u64>,
    /// Nodes this leader fenced that were heard again from a new process: their devices may
    /// go back on.
    unfence_due: Vec<String>,
    /// Fenced nodes whose fenced process is talking again (see `take_fence_defied`).
    fence_defied: Vec<String>,
    /// Nodes an earlier leader fenced (the log's last result for them is a verified "off"),
    /// with the process it fenced when the record names it. Only for unfencing: a leader
    /// takes nothing from a node for a fence it did not see itself.
    fenced_earlier: BTreeMap<String, Option<u64>>,
    /// Per group: the holder of this leader's last committed grant or renewal.
    holder_of: BTreeMap<String, String>,
    /// Per node: when this leader last committed a grant of one of its groups to another
    /// node. Until it is heard from after that, it is offered nothing: a holder killed just
    /// after a report still counts as alive for a lease, and without this it got its group
    /// back by preemption right after losing it, and lost it again a lease + margin later.
    lost_at: BTreeMap<String, Instant>,
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
            fencing: BTreeMap::new(),
            incarnation: BTreeMap::new(),
            fenced_process: BTreeMap::new(),
            unfence_due: Vec::new(),
            fence_defied: Vec::new(),
            fenced_earlier: BTreeMap::new(),
            holder_of: BTreeMap::new(),
            lost_at: BTreeMap::new(),
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
        self.holder_of.clear();
        self.lost_at.clear();
        self.forget_fencing();
    }

    pub fn step_down(&mut self) {
        self.leader_since = None;
        self.last_renew.clear();
        self.last_seen.clear();
        self.reports.clear();
        self.holder_of.clear();
        self.lost_at.clear();
        self.forget_fencing();
    }

    fn forget_fencing(&mut self) {
        self.fencing.clear();
        self.incarnation.clear();
        self.fenced_process.clear();
        self.unfence_due.clear();
        self.fence_defied.clear();
        self.fenced_earlier.clear();
    }

    /// On election: the nodes the log says are fenced and not switched on since, so that a
    /// new process of theirs is unfenced (`unfence = "auto"`) by whichever member leads when
    /// it reports.
    pub fn learn_fences(&mut self, state: &ClusterState) {
        let mut last = BTreeMap::new();
        for r in &state.fence_history {
            if r.stage == FenceStage::Result {
                last.insert(r.node.as_str(), r);
            }
        }
        for (node, r) in last {
            if r.action == "off" && r.ok && node != self.me {
                self.fenced_earlier.insert(node.to_string(), r.process);
            }
        }
    }

    /// The process of `node` this leader is fencing or fenced, when known.
    pub fn fenced_process(&self, node: &str) -> Option<u64> {
        self.fenced_process.get(node).copied()
    }

    /// A node reported its groups (unlogged, over the transport) from its process
    /// `incarnation` (drawn at each start).
    pub fn reported(
        &mut self,
        node: &str,
        incarnation: u64,
        groups: BTreeMap<String, GroupReport>,
        now: Instant,
    ) {
        self.last_seen.insert(node.to_string(), now);
        self.reports.insert(node.to_string(), groups);
        self.heard(node, Some(incarnation));
        self.incarnation.insert(node.to_string(), incarnation);
    }

    /// A node we fenced (or failed to) is talking again: the fence no longer stands (nothing
    /// is taken from a node heard since), and a later silence is a new failure.
    ///
    /// A fenced node's devices go back on only for a new process: a report whose
    /// `incarnation` differs from the one running when the fence began. The fenced process
    /// itself talking (a report of that incarnation, late on the wire or from behind a
    /// fence that did not stop it, or a renewal (`None`), which only the process that held
    /// the lease sends) proves no restart.
    fn heard(&mut self, node: &str, incarnation: Option<u64>) {
        match self.fencing.get(node) {
            Some(Fencing::Fenced(_)) => {
                self.fencing.remove(node);
                let before = self.fenced_process.remove(node);
                match incarnation {
                    Some(inc) if before != Some(inc) => self.unfence_due.push(node.to_string()),
                    _ => self.fence_defied.push(node.to_string()),
                }
            }
            Some(Fencing::Failed(_)) => {
                self.fencing.remove(node);
                self.fenced_process.remove(node);
            }
            Some(Fencing::InFlight) => {}
            // A fence an earlier leader made: only a report, which names its process, tells
            // (a renewal may come from a new process granted a lease since).
            None => {
                let Some(inc) = incarnation else {
                    return;
                };
                if let Some(before) = self.fenced_earlier.remove(node) {
                    if before == Some(inc) {
                        self.fence_defied.push(node.to_string());
                    } else {
                        self.unfence_due.push(node.to_string());
                    }
                }
            }
        }
    }

    /// The nodes this leader fenced that have been heard again, from a new process, since
    /// the last call.
    pub fn take_unfence_due(&mut self) -> Vec<String> {
        std::mem::take(&mut self.unfence_due)
    }

    /// The fenced nodes (by this leader or, per the log, an earlier one) whose fenced
    /// process has been heard again since the last call: switched on by hand, or cut off
    /// by the fence without being stopped.
    pub fn take_fence_defied(&mut self) -> Vec<String> {
        std::mem::take(&mut self.fence_defied)
    }

    pub fn fencing(&self, node: &str) -> Option<Fencing> {
        self.fencing.get(node).copied()
    }

    /// The holders this leader should fence now, each with why; they are marked in flight
    /// until [`Coordinator::fence_done`]. A holder is due when it holds a group it reported
    /// `fence_on_takeover` for, has been silent for [`LeaseTiming::fence_after`], and is neither being
    /// fenced nor fenced already (a failed fence is due again after [`FENCE_RETRY`]).
    pub fn fences_due(&mut self, state: &ClusterState, now: Instant) -> Vec<(String, String)> {
        let mut due: Vec<(String, String)> = Vec::new();
        if !self.is_leader() {
            return due;
        }
        for group in state.groups() {
            let lease = state.lease(&group);
            let Some(holder) = lease.holder.as_deref() else {
                continue;
            };
            // The leader itself is never silent to itself: after a stall (SIGSTOP, a VM
            // pause) its own renewals lag, but the process deciding this is alive, and its
            // daemon enforces its lease.
            if holder == self.me
                || !needs_fence(state, &group, holder)
                || due.iter().any(|(n, _)| n == holder)
            {
                continue;
            }
            let retry = match self.fencing.get(holder) {
                None => true,
                Some(Fencing::Failed(at)) => now.saturating_duration_since(*at) >= FENCE_RETRY,
                Some(_) => false,
            };
            let Some(silent) = self.silent_for(&group, holder, now) else {
                continue;
            };
            if retry && silent >= self.timing.fence_after() {
                due.push((
                    holder.to_string(),
                    format!(
                        "{holder} holds {group} (fence_on_takeover) and has been silent for {} ms",
                        silent.as_millis()
                    ),
                ));
            }
        }
        for (node, _) in &due {
            self.fencing.insert(node.clone(), Fencing::InFlight);
            // What this leader heard, else what the log says (the holder may have led
            // before, reporting to itself).
            let process = self.incarnation.get(node).copied().or_else(|| {
                let logged = state.members.get(node).map_or(0, |m| m.incarnation);
                (logged != 0).then_some(logged)
            });
            match process {
                Some(inc) => self.fenced_process.insert(node.clone(), inc),
                None => self.fenced_process.remove(node),
            };
        }
        due
    }

    /// A fence started by [`Coordinator::fences_due`] ended.
    pub fn fence_done(&mut self, node: &str, verified: bool, now: Instant) {
        if self.fencing.get(node) == Some(&Fencing::InFlight) {
            let f = if verified {
                Fencing::Fenced(now)
            } else {
                Fencing::Failed(now)
            };
            self.fencing.insert(node.to_string(), f);
        }
    }

    /// How long `holder` has been silent about `group` by this leader's clock (from its
    /// election when it has heard nothing since).
    fn silent_for(&self, group: &str, holder: &str, now: Instant) -> Option<Duration> {
        let since = self.leader_since?;
        let renewed = self.last_renew.get(group).copied().unwrap_or(since);
        let seen = self.last_seen.get(holder).copied().unwrap_or(since);
        Some(now.saturating_duration_since(renewed.max(seen).max(since)))
    }

    /// Drops what this leader heard from nodes no longer in the membership, so that a removed
    /// node is not alive (eligible) any more.
    pub fn forget_absent(&mut self, members: &[String]) {
        let keep = |n: &String| members.contains(n);
        self.last_seen.retain(|n, _| keep(n));
        self.reports.retain(|n, _| keep(n));
        self.incarnation.retain(|n, _| keep(n));
    }

    /// This leader committed a renewal or grant of `group` for `holder` at `now`.
    pub fn renewed(&mut self, group: &str, holder: &str, now: Instant) {
        if self.is_leader() {
            self.last_renew.insert(group.to_string(), now);
            self.last_seen.insert(holder.to_string(), now);
            self.heard(holder, None);
            if let Some(before) = self.holder_of.insert(group.to_string(), holder.to_string()) {
                if before != holder {
                    self.lost_at.insert(before, now);
                }
            }
        }
    }

    /// Whether `node` was heard from since it last lost a group to another node.
    fn heard_since_loss(&self, node: &str) -> bool {
        node == self.me
            || self
                .lost_at
                .get(node)
                .is_none_or(|lost| self.last_seen.get(node).is_some_and(|seen| seen > lost))
    }

    /// Whether `node` was heard from within one lease (the leader itself always is).
    pub fn alive(&self, node: &str, now: Instant) -> bool {
        node == self.me
            || self
                .last_seen
                .get(node)
                .is_some_and(|t| now.saturating_duration_since(*t) < self.timing.lease)
    }

    /// Whether `holder` was heard after the end of its lease of `group` by its own reckoning
    /// (the last committed renewal + lease − margin, which is no earlier than the holder's
    /// own deadline: it counts from the renewal's send time).
    fn outlived_lease(&self, group: &str, holder: &str) -> bool {
        let Some(since) = self.leader_since else {
            return false;
        };
        let renewed = self
            .last_renew
            .get(group)
            .copied()
            .unwrap_or(since)
            .max(since);
        self.last_seen
            .get(holder)
            .is_some_and(|t| *t > renewed + self.timing.holder_validity())
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
            let incarnation = self.incarnation.get(node).copied().unwrap_or(0);
            let logged = state.members.get(node).map(|m| (&m.groups, m.incarnation));
            if logged != Some((groups, incarnation)) {
                out.push(Command::Report {
                    node: node.clone(),
                    groups: groups.clone(),
                    incarnation,
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
                && self.heard_since_loss(node)
                && !matches!(
                    self.fencing.get(node),
                    Some(Fencing::InFlight | Fencing::Fenced(_))
                )
        };
        let holder = lease.holder.as_deref();
        let preferred = state
            .preferred
            .get(group)
            .map(String::as_str)
            .filter(|n| eligible(n));
        // The best eligible node other than `skip`.
        let pick = |skip: Option<&str>| {
            state
                .members
                .keys()
                .map(String::as_str)
                .filter(|n| eligible(n) && Some(*n) != skip)
                .max_by(|a, b| {
                    let pa = report(a).map_or(0, |r| r.priority);
                    let pb = report(b).map_or(0, |r| r.priority);
                    pa.cmp(&pb)
                        .then_with(|| (Some(*a) == holder).cmp(&(Some(*b) == holder)))
                        // Lower name wins a tie, so every leader makes the same choice.
                        .then_with(|| b.cmp(a))
                })
        };
        let best = preferred.or_else(|| pick(None))?;
        let Some(holder) = holder else {
            return Some(Command::Grant {
                group: group.to_string(),
                holder: best.to_string(),
                epoch: lease.epoch + 1,
            });
        };
        let overdue = self.reassign_at(group).is_some_and(|t| now >= t);
        if needs_fence(state, group, holder) {
            // The end of its lease is no proof that its VIPs are gone (a killed daemon leaves
            // them configured): only a verified fence is, and it makes waiting pointless.
            match self.fencing.get(holder) {
                Some(Fencing::Fenced(_)) if best != holder => {
                    return Some(Command::Grant {
                        group: group.to_string(),
                        holder: best.to_string(),
                        epoch: lease.epoch + 1,
                    })
                }
                Some(_) => return None,
                // Taking the group away at the end of the lease is safe only if the holder
                // was heard after its lease had ended by its own reckoning: its daemon lived
                // to end the lease and remove the VIPs. Otherwise (silent, or last heard while
                // its lease still ran, then perhaps killed) only a fence proves the VIPs
                // gone: `fences_due` fences it once it has been silent long enough. Planned
                // moves (which the holder itself carries out) follow the rules below.
                None if overdue && holder != self.me && !self.outlived_lease(group, holder) => {
                    return None
                }
                None => {}
            }
        }
        if overdue {
            // No renewal for lease + margin: the holder is not to be trusted with it again
            // while another node can take it, even if a report of its came later than its
            // last renewal (a daemon killed just after reporting looks alive for a lease).
            let to = if best == holder {
                pick(Some(holder)).unwrap_or(best)
            } else {
                best
            };
            return Some(Command::Grant {
                group: group.to_string(),
                holder: to.to_string(),
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

/// Whether `holder` reported `fence_on_takeover` for `group`.
fn needs_fence(state: &ClusterState, group: &str, holder: &str) -> bool {
    state
        .members
        .get(holder)
        .and_then(|m| m.groups.get(group))
        .is_some_and(|r| r.fence)
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
        fenced_report(priority, preempt, false)
    }

    fn fenced_report(priority: u8, preempt: bool, fence: bool) -> BTreeMap<String, GroupReport> {
        let r = GroupReport {
            priority,
            preempt,
            fence,
        };
        [("VI_1".to_string(), r)].into()
    }

    /// A leader "arb" with lb1 (200) and lb2 (100) reporting, state logged.
    fn setup(now: Instant) -> (Coordinator, ClusterState) {
        setup_with(now, false)
    }

    fn setup_with(now: Instant, fence: bool) -> (Coordinator, ClusterState) {
        let mut c = Coordinator::new("arb", timing());
        c.become_leader(now);
        let mut s = ClusterState::default();
        for (n, p) in [("lb1", 200), ("lb2", 100)] {
            c.reported(n, 1, fenced_report(p, true, fence), now);
            s.apply(&Command::Report {
                node: n.into(),
                groups: fenced_report(p, true, fence),
                incarnation: 1,
            });
        }
        (c, s)
    }

    /// lb1 holds VI_1 with fence_on_takeover from t0 on, then only lb2 is heard from; the
    /// time lb1 becomes due for fencing.
    fn fenced_setup(t0: Instant) -> (Coordinator, ClusterState, Instant) {
        let (mut c, mut s) = setup_with(t0, true);
        apply_all(&c, &mut s, t0);
        c.renewed("VI_1", "lb1", t0);
        let mut t = t0;
        while t < t0 + timing().fence_after() {
            c.reported("lb2", 1, fenced_report(100, true, true), t);
            assert!(c.fences_due(&s, t).is_empty(), "fenced at {:?}", t - t0);
            t += Duration::from_millis(10);
        }
        (c, s, t)
    }

    fn grants(cmds: &[Command]) -> Vec<&Command> {
        cmds.iter()
            .filter(|c| matches!(c, Command::Grant { .. }))
            .collect()
    }

    #[test]
    fn silent_holder_with_fence_on_takeover_is_fenced_then_replaced_at_once() {
        let t0 = Instant::now();
        let (mut c, s, t) = fenced_setup(t0);
        let due = c.fences_due(&s, t);
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].0, "lb1");
        assert!(due[0].1.contains("holds VI_1"), "{}", due[0].1);
        assert!(c.fences_due(&s, t).is_empty(), "one fence at a time");
        // While the fence runs, not even the end of the lease moves the group.
        let late = t0 + 3 * LEASE;
        c.reported("lb2", 1, fenced_report(100, true, true), late);
        assert!(grants(&c.decide(&s, late)).is_empty());
        c.fence_done("lb1", true, late);
        assert_eq!(
            c.decide(&s, late),
            vec![Command::Grant {
                group: "VI_1".into(),
                holder: "lb2".into(),
                epoch: 2
            }]
        );
    }

    #[test]
    fn verified_fence_moves_the_group_before_the_lease_ends() {
        let t0 = Instant::now();
        let (mut c, s, t) = fenced_setup(t0);
        assert_eq!(c.fences_due(&s, t).len(), 1);
        let t = t + Duration::from_millis(50);
        c.reported("lb2", 1, fenced_report(100, true, true), t);
        c.fence_done("lb1", true, t);
        assert!(t < t0 + LEASE);
        assert_eq!(grants(&c.decide(&s, t)).len(), 1);
    }

    #[test]
    fn failed_fence_blocks_the_takeover_and_is_retried() {
        let t0 = Instant::now();
        let (mut c, s, t) = fenced_setup(t0);
        assert_eq!(c.fences_due(&s, t).len(), 1);
        c.fence_done("lb1", false, t);
        let mut u = t;
        while u < t + FENCE_RETRY {
            c.reported("lb2", 1, fenced_report(100, true, true), u);
            assert!(
                grants(&c.decide(&s, u)).is_empty(),
                "stolen after a failed fence"
            );
            assert!(c.fences_due(&s, u).is_empty(), "retried too early");
            u += Duration::from_millis(100);
        }
        assert_eq!(c.fences_due(&s, u).len(), 1, "retried");
    }

    #[test]
    fn a_fenced_node_heard_again_is_forgotten() {
        let t0 = Instant::now();
        let (mut c, s, t) = fenced_setup(t0);
        c.fences_due(&s, t);
        c.fence_done("lb1", true, t);
        assert!(matches!(c.fencing("lb1"), Some(Fencing::Fenced(_))));
        assert!(c.take_unfence_due().is_empty());
        c.reported("lb1", 2, fenced_report(200, true, true), t);
        assert_eq!(c.fencing("lb1"), None);
        assert_eq!(
            c.take_unfence_due(),
            ["lb1"],
            "back: its devices may go on again"
        );
        assert!(c.take_unfence_due().is_empty(), "once");
        assert!(
            grants(&c.decide(&s, t)).is_empty(),
            "lb1 is back: it keeps VI_1"
        );
    }

    /// [`fenced_setup`] with lb1's fence started and verified.
    fn lb1_fenced(t0: Instant) -> (Coordinator, ClusterState, Instant) {
        let (mut c, s, t) = fenced_setup(t0);
        assert_eq!(c.fences_due(&s, t).len(), 1);
        c.fence_done("lb1", true, t);
        (c, s, t)
    }

    /// The process that was fenced talking again (a report late on the wire, or a fence that
    /// was read back as off but did not stop it) is not a restart: its devices stay as they
    /// are, the operator hears of it, and a later silence is a new failure.
    #[test]
    fn the_fenced_process_heard_again_is_not_unfenced() {
        let (mut c, s, t) = lb1_fenced(Instant::now());
        c.reported("lb1", 1, fenced_report(200, true, true), t);
        assert_eq!(c.fencing("lb1"), None);
        assert!(c.take_unfence_due().is_empty(), "same process: no unfence");
        assert_eq!(c.take_fence_defied(), ["lb1"]);
        assert!(c.take_fence_defied().is_empty(), "once");
        let later = t + timing().fence_after() + Duration::from_millis(10);
        c.reported("lb2", 1, fenced_report(100, true, true), later);
        assert_eq!(
            c.fences_due(&s, later).len(),
            1,
            "silent again: fenced again"
        );
    }

    /// A renewal after the fence comes from the process that held the lease: the fence no
    /// longer stands, and it is no restart.
    #[test]
    fn a_renewal_after_the_fence_is_the_fenced_process() {
        let (mut c, _, t) = lb1_fenced(Instant::now());
        c.renewed("VI_1", "lb1", t);
        assert_eq!(c.fencing("lb1"), None);
        assert!(c.take_unfence_due().is_empty());
        assert_eq!(c.take_fence_defied(), ["lb1"]);
    }

    /// A holder whose process neither this leader nor the log knows (a log from before
    /// processes were logged): whatever reports after the fence is taken as a new process.
    #[test]
    fn a_fenced_node_whose_process_is_unknown_is_unfenced_when_it_reports() {
        let (mut c, mut s, t) = fenced_setup(Instant::now());
        c.incarnation.remove("lb1");
        s.members.get_mut("lb1").unwrap().incarnation = 0;
        assert_eq!(c.fences_due(&s, t).len(), 1);
        c.fence_done("lb1", true, t);
        c.reported("lb1", 1, fenced_report(200, true, true), t);
        assert_eq!(c.take_unfence_due(), ["lb1"]);
    }

    #[test]
    fn a_holder_that_reports_but_does_not_renew_is_replaced_without_a_fence() {
        let t0 = Instant::now();
        let (mut c, mut s) = setup_with(t0, true);
        apply_all(&c, &mut s, t0);
        c.renewed("VI_1", "lb1", t0);
        let mut t = t0;
        while t < t0 + LEASE + MARGIN + Duration::from_millis(20) {
            c.reported("lb1", 1, fenced_report(200, true, true), t);
            c.reported("lb2", 1, fenced_report(100, true, true), t);
            assert!(c.fences_due(&s, t).is_empty(), "it talks: no fence");
            t += Duration::from_millis(10);
        }
        assert_eq!(
            grants(&c.decide(&s, t)).len(),
            1,
            "the lease ran out: next holder"
        );
    }

    #[test]
    fn a_holder_killed_just_after_a_report_is_fenced_not_skipped() {
        // renew 350 ms is accepted with lease 1 s / margin 100 ms: its report right before
        // a kill keeps it "alive" past lease + margin.
        let timing = LeaseTiming {
            lease: LEASE,
            renew: Duration::from_millis(350),
            margin: MARGIN,
        };
        let t0 = Instant::now();
        let mut c = Coordinator::new("arb", timing);
        c.become_leader(t0);
        let mut s = ClusterState::default();
        for (n, p) in [("lb1", 200), ("lb2", 100)] {
            c.reported(n, 1, fenced_report(p, true, true), t0);
            s.apply(&Command::Report {
                node: n.into(),
                groups: fenced_report(p, true, true),
                incarnation: 1,
            });
        }
        apply_all(&c, &mut s, t0);
        c.renewed("VI_1", "lb1", t0);
        c.reported(
            "lb1",
            1,
            fenced_report(200, true, true),
            t0 + Duration::from_millis(340),
        );
        // killed at 345 ms
        let mut t = t0 + Duration::from_millis(345);
        while t < t0 + 3 * LEASE {
            c.reported("lb2", 1, fenced_report(100, true, true), t);
            assert!(
                grants(&c.decide(&s, t)).is_empty(),
                "stolen unfenced at {:?}",
                t - t0
            );
            if !c.fences_due(&s, t).is_empty() {
                c.fence_done("lb1", true, t);
                assert_eq!(grants(&c.decide(&s, t)).len(), 1);
                return;
            }
            t += Duration::from_millis(10);
        }
        panic!("never fenced");
    }

    /// A holder killed right after a report counts as alive for a lease: its group goes to
    /// another node at lease + margin, and it must not get it back by preemption before it
    /// is heard from again; a live one is, within a report interval, and then preempts as
    /// usual.
    #[test]
    fn an_overdue_holder_that_reported_late_is_not_granted_again() {
        let t0 = Instant::now();
        let (mut c, mut s) = setup(t0);
        apply_all(&c, &mut s, t0);
        c.renewed("VI_1", "lb1", t0);
        // lb1's last report came after its last renewal, then it died.
        c.reported("lb1", 1, report(200, true), t0 + Duration::from_millis(150));
        let mut t = t0 + LEASE + MARGIN;
        c.reported("lb2", 1, report(100, true), t);
        assert_eq!(
            apply_all(&c, &mut s, t),
            vec![Command::Grant {
                group: "VI_1".into(),
                holder: "lb2".into(),
                epoch: 2
            }]
        );
        c.renewed("VI_1", "lb2", t);
        assert!(c.alive("lb1", t), "still counted alive by its late report");
        for _ in 0..20 {
            t += Duration::from_millis(10);
            c.reported("lb2", 1, report(100, true), t);
            assert!(
                apply_all(&c, &mut s, t).is_empty(),
                "lb1 offered its group back without being heard"
            );
            c.renewed("VI_1", "lb2", t);
        }
        // A live lb1 reports again: it preempts.
        c.reported("lb1", 1, report(200, true), t);
        let cmds = c.decide(&s, t);
        assert!(
            cmds.iter()
                .any(|c| matches!(c, Command::Move { to, .. } if to == "lb1")),
            "{cmds:?}"
        );
    }

    #[test]
    fn a_live_fence_on_takeover_holder_is_still_preempted() {
        let t0 = Instant::now();
        let (mut c, mut s) = setup_with(t0, true);
        s.apply(&Command::Grant {
            group: "VI_1".into(),
            holder: "lb2".into(),
            epoch: 1,
        });
        c.renewed("VI_1", "lb2", t0);
        assert_eq!(
            c.decide(&s, t0),
            vec![Command::Move {
                group: "VI_1".into(),
                epoch: 1,
                to: "lb1".into()
            }]
        );
    }

    #[test]
    fn the_leader_never_fences_itself() {
        let t0 = Instant::now();
        let mut c = Coordinator::new("lb1", timing());
        c.become_leader(t0);
        let mut s = ClusterState::default();
        for (n, p) in [("lb1", 200), ("lb2", 100)] {
            s.apply(&Command::Report {
                node: n.into(),
                groups: fenced_report(p, true, true),
                incarnation: 1,
            });
        }
        s.apply(&Command::Grant {
            group: "VI_1".into(),
            holder: "lb1".into(),
            epoch: 1,
        });
        // A stall of the leader's process: its own renewals lag far behind.
        assert!(c.fences_due(&s, t0 + 10 * LEASE).is_empty());
    }

    #[test]
    fn holder_without_fence_on_takeover_is_never_fenced() {
        let t0 = Instant::now();
        let (c, mut s) = setup(t0);
        apply_all(&c, &mut s, t0);
        let mut c = c;
        assert!(c.fences_due(&s, t0 + 10 * LEASE).is_empty());
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
        c.reported("lb2", 1, report(0, true), now);
        assert!(c.decide(&s, now).contains(&Command::Report {
            node: "lb2".into(),
            groups: report(0, true),
            incarnation: 1,
        }));
        // A restart is logged even with the same groups: a later leader needs the process.
        let (mut c, s) = setup(now);
        c.reported("lb2", 9, fenced_report(100, true, false), now);
        assert_eq!(
            c.decide(&s, now)
                .into_iter()
                .filter(|c| matches!(c, Command::Report { .. }))
                .collect::<Vec<_>>(),
            [Command::Report {
                node: "lb2".into(),
                groups: fenced_report(100, true, false),
                incarnation: 9,
            }]
        );
    }

    fn fence_result(node: &str, action: &str, ok: bool, process: Option<u64>) -> Command {
        Command::Fence(crate::state::FenceRecord {
            at_unix_ms: 0,
            node: node.into(),
            by: "lb2".into(),
            action: action.into(),
            ok,
            detail: String::new(),
            stage: FenceStage::Result,
            process,
        })
    }

    /// A leader elected after another one fenced lb1 learns the fence from the log: lb1's
    /// fenced process reporting is no restart, a new process is unfenced, and nothing is
    /// taken from lb1 for a fence this leader did not see.
    #[test]
    fn a_new_leader_learns_earlier_fences_from_the_log() {
        let t0 = Instant::now();
        let (_, mut s) = setup_with(t0, true);
        s.apply(&fence_result("lb1", "off", true, Some(1)));
        s.apply(&fence_result("lb2", "off", false, Some(5)));
        let learned = |s: &ClusterState| {
            let mut c = Coordinator::new("arb", timing());
            c.become_leader(t0);
            c.learn_fences(s);
            c
        };
        let mut c = learned(&s);
        assert_eq!(c.fencing("lb1"), None, "no fence of its own");
        c.renewed("VI_1", "lb1", t0);
        assert!(
            c.take_fence_defied().is_empty(),
            "a renewal names no process"
        );
        c.reported("lb2", 5, fenced_report(100, true, true), t0);
        assert!(c.take_unfence_due().is_empty(), "lb2's fence failed");
        c.reported("lb1", 1, fenced_report(200, true, true), t0);
        assert_eq!(c.take_fence_defied(), ["lb1"]);
        assert!(c.take_unfence_due().is_empty());

        let mut c = learned(&s);
        c.reported("lb1", 2, fenced_report(200, true, true), t0);
        assert_eq!(c.take_unfence_due(), ["lb1"], "a new process");
        c.reported("lb1", 2, fenced_report(200, true, true), t0);
        assert!(c.take_unfence_due().is_empty(), "once");

        // Switched on since (by the operator or a leader): nothing to learn.
        s.apply(&fence_result("lb1", "on", true, None));
        let mut c = learned(&s);
        c.reported("lb1", 2, fenced_report(200, true, true), t0);
        assert!(c.take_unfence_due().is_empty());
        assert!(c.take_fence_defied().is_empty());

        // Fenced again, by a leader that did not know lb1's process.
        s.apply(&fence_result("lb1", "off", true, None));
        let mut c = learned(&s);
        c.reported("lb1", 2, fenced_report(200, true, true), t0);
        assert_eq!(c.take_unfence_due(), ["lb1"]);
    }

    /// The holder led before (it reported to itself): a new leader knows its process from
    /// the log, and a report of that process after the fence is no restart.
    #[test]
    fn the_fenced_process_is_known_from_the_log_to_a_new_leader() {
        let t0 = Instant::now();
        let (_, mut s) = setup_with(t0, true);
        let mut c = Coordinator::new("arb", timing());
        c.become_leader(t0);
        apply_all(&c, &mut s, t0);
        s.apply(&Command::Grant {
            group: "VI_1".into(),
            holder: "lb1".into(),
            epoch: 1,
        });
        let t = t0 + timing().fence_after() + Duration::from_millis(10);
        c.reported("lb2", 1, fenced_report(100, true, true), t);
        assert_eq!(c.fences_due(&s, t).len(), 1);
        c.fence_done("lb1", true, t);
        c.reported("lb1", 1, fenced_report(200, true, true), t);
        assert!(c.take_unfence_due().is_empty());
        assert_eq!(c.take_fence_defied(), ["lb1"]);
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
            c.reported("lb2", 1, report(100, true), t);
            let cmds = c.decide(&s, t);
            assert!(
                cmds.iter().all(|c| !matches!(c, Command::Grant { .. })),
                "reassigned at {:?}",
                t - t0
            );
            t += Duration::from_millis(10);
        }
        c.reported("lb2", 1, report(100, true), t);
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
            c.reported(n, 1, report(p, false), t0);
            s.apply(&Command::Report {
                node: n.into(),
                groups: report(p, false),
                incarnation: 1,
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
        c.reported("lb1", 1, report(0, true), t0);
        apply_all(&c, &mut s, t0);
        let cmds = apply_all(&c, &mut s, t0);
        assert!(cmds.contains(&Command::Move {
            group: "VI_1".into(),
            epoch: 1,
            to: "lb2".into()
        }));
        // Everyone faulted: a free group stays free.
        let mut s2 = ClusterState::default();
        c.reported("lb2", 1, report(0, true), t0);
        for n in ["lb1", "lb2"] {
            s2.apply(&Command::Report {
                node: n.into(),
                groups: report(0, true),
                incarnation: 1,
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
        /// With fence_on_takeover, under any interleaving of renewals, reports, fence
        /// results and time, a grant that replaces a holder comes only after a verified fence
        /// of that holder that nothing heard from it since has cancelled, or lease + margin
        /// after its last renewal when it was heard after its own lease had ended (its daemon
        /// lived to remove the VIPs).
        #[test]
        fn never_steals_from_an_unfenced_holder(steps in proptest::collection::vec((0u8..6, 0u64..400), 1..150)) {
            let t0 = Instant::now();
            let (mut c, mut s) = setup_with(t0, true);
            let mut now = t0;
            // Per node: verified fence not cancelled since; when last heard.
            let mut fenced: BTreeMap<String, bool> = BTreeMap::new();
            let mut heard: BTreeMap<String, Instant> =
                [("lb1".to_string(), t0), ("lb2".to_string(), t0)].into();
            let mut last_renew = t0;
            for (kind, ms) in steps {
                now += Duration::from_millis(ms);
                match kind {
                    0 => {
                        if let Some(h) = s.lease("VI_1").holder {
                            c.renewed("VI_1", &h, now);
                            fenced.remove(&h);
                            heard.insert(h, now);
                            last_renew = now;
                        }
                    }
                    1 | 2 => {
                        let (n, p) = if kind == 1 { ("lb2", 100) } else { ("lb1", 200) };
                        c.reported(n, 1, fenced_report(p, true, true), now);
                        fenced.remove(n);
                        heard.insert(n.to_string(), now);
                    }
                    3 | 4 => {
                        for (node, _) in c.fences_due(&s, now) {
                            let ok = kind == 3;
                            c.fence_done(&node, ok, now);
                            if ok {
                                fenced.insert(node, true);
                            }
                        }
                    }
                    _ => {}
                }
                let before = s.lease("VI_1");
                for cmd in c.decide(&s, now) {
                    if let Command::Grant { holder: to, .. } = &cmd {
                        if let Some(h) = &before.holder {
                            // Heard after its own lease ended: its daemon removed the VIPs.
                            let outlived = heard
                                .get(h)
                                .is_some_and(|t| *t > last_renew + LEASE - MARGIN);
                            let expired = now >= last_renew + LEASE + MARGIN;
                            proptest::prop_assert!(
                                fenced.get(h).copied().unwrap_or(false) || (outlived && expired),
                                "stole from {h}"
                            );
                        }
                        heard.insert(to.clone(), now);
                        last_renew = now;
                        c.renewed("VI_1", to, now);
                    }
                    s.apply(&cmd);
                }
            }
        }

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
                    1 => c.reported("lb2", 1, report(100, true), now),
                    2 => c.reported("lb1", 1, report(200, true), now),
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
