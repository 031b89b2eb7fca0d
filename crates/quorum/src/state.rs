//! The replicated cluster state and the commands that change it.
//!
//! Apply is deterministic: no clock reads, no I/O, no randomness. Every command is checked
//! against the current state and either applied or rejected with a reason, the same way on
//! every node, so a stale or duplicated proposal (a renewal for an old epoch, a grant racing
//! another) changes nothing.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// How many fencing records the state keeps (oldest dropped first): enough for an operator's
/// `tandem fence history`, bounded so snapshots stay small.
pub const FENCE_HISTORY_LEN: usize = 200;

/// What a voter reports for one of its `quorum` groups.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupReport {
    /// Effective priority after tracking and health; 0 = cannot hold the group (faulted).
    pub priority: u8,
    pub preempt: bool,
    /// `fence_on_takeover`: while this node holds the group and goes silent, the leader
    /// fences it, and hands the group on only after the fence is verified.
    #[serde(default)]
    pub fence: bool,
}

/// One member as the state machine knows it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    /// Set by `tandem standby`: the node keeps voting but holds no group.
    pub standby: bool,
    /// Its groups with their effective priorities, as last reported.
    pub groups: BTreeMap<String, GroupReport>,
    /// The process that reported them (drawn at each start; 0: not known). Logged so that
    /// any later leader can tell a restart from the fenced process talking again.
    #[serde(default)]
    pub incarnation: u64,
}

/// The lease of one group. `epoch` grows with every grant, so a renewal or release that names
/// an older epoch is recognisably stale.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    pub holder: Option<String>,
    pub epoch: u64,
    /// A planned move is under way: the holder was asked to let go in favour of this node and
    /// must not renew any more.
    pub releasing_to: Option<String>,
    /// Committed renewals of the current epoch (for status and benchmarks).
    pub renewals: u64,
}

/// Whether a record announces a fencing attempt or gives its result.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FenceStage {
    /// Written before the devices are touched, so the log shows a fence that was started
    /// even if its fencer dies before the result.
    Attempt,
    #[default]
    Result,
}

/// One fencing attempt or result, as recorded by the coordinator or an operator's command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FenceRecord {
    /// Wall-clock time in milliseconds since the Unix epoch, taken by the proposer (apply
    /// never reads a clock).
    pub at_unix_ms: u64,
    pub node: String,
    pub by: String,
    pub action: String,
    /// For a result: the fence was verified.
    pub ok: bool,
    pub detail: String,
    #[serde(default)]
    pub stage: FenceStage,
    /// A leader's fence: the node's process (incarnation) it fenced, when known. A later
    /// leader tells a restart from that process talking again by it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub process: Option<u64>,
}

/// The application data of a Raft entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    /// A voter's groups and effective priorities.
    Report {
        node: String,
        groups: BTreeMap<String, GroupReport>,
        #[serde(default)]
        incarnation: u64,
    },
    SetStandby {
        node: String,
        standby: bool,
    },
    /// `tandem move GROUP NODE`: prefer this node while it is eligible; `None` clears it.
    Prefer {
        group: String,
        node: Option<String>,
    },
    /// The coordinator gives the group to `holder` under a new epoch (`epoch` = old + 1).
    Grant {
        group: String,
        holder: String,
        epoch: u64,
    },
    /// The holder extends its lease of `epoch`.
    Renew {
        group: String,
        holder: String,
        epoch: u64,
    },
    /// The coordinator asks the holder of `epoch` to let go in favour of `to`.
    Move {
        group: String,
        epoch: u64,
        to: String,
    },
    /// The holder of `epoch` has removed the VIPs and gives the lease up.
    Release {
        group: String,
        holder: String,
        epoch: u64,
    },
    Fence(FenceRecord),
}

/// The result of applying one entry, returned to the proposer.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reply {
    /// `None`: applied. `Some(reason)`: the command did not fit the state and changed nothing.
    pub rejected: Option<String>,
    /// Where the entry is in the log (set by the store's apply from the entry's log id), so
    /// an operator or a test can find a committed write again.
    #[serde(default)]
    pub index: u64,
    #[serde(default)]
    pub term: u64,
}

impl Reply {
    fn ok() -> Reply {
        Reply::default()
    }
    pub(crate) fn no(reason: String) -> Reply {
        Reply {
            rejected: Some(reason),
            ..Reply::default()
        }
    }
    pub fn is_ok(&self) -> bool {
        self.rejected.is_none()
    }
}

/// Members, standby flags, preferences, leases and the fencing history.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterState {
    pub members: BTreeMap<String, Member>,
    pub leases: BTreeMap<String, Lease>,
    pub preferred: BTreeMap<String, String>,
    pub fence_history: Vec<FenceRecord>,
}

impl ClusterState {
    /// The lease of `group` (a group nobody was ever granted has the default: no holder,
    /// epoch 0).
    pub fn lease(&self, group: &str) -> Lease {
        self.leases.get(group).cloned().unwrap_or_default()
    }

    /// Every group any member reported or any lease names.
    pub fn groups(&self) -> Vec<String> {
        let mut all: Vec<String> = self
            .members
            .values()
            .flat_map(|m| m.groups.keys().cloned())
            .chain(self.leases.keys().cloned())
            .collect();
        all.sort();
        all.dedup();
        all
    }

    pub fn apply(&mut self, cmd: &Command) -> Reply {
        match cmd {
            Command::Report {
                node,
                groups,
                incarnation,
            } => {
                let m = self.members.entry(node.clone()).or_default();
                m.groups = groups.clone();
                m.incarnation = *incarnation;
                Reply::ok()
            }
            Command::SetStandby { node, standby } => {
                self.members.entry(node.clone()).or_default().standby = *standby;
                Reply::ok()
            }
            Command::Prefer { group, node } => {
                match node {
                    Some(n) => self.preferred.insert(group.clone(), n.clone()),
                    None => self.preferred.remove(group),
                };
                Reply::ok()
            }
            Command::Grant {
                group,
                holder,
                epoch,
            } => {
                let current = self.leases.get(group).map_or(0, |l| l.epoch);
                if *epoch != current + 1 {
                    return Reply::no(format!(
                        "grant of {group} for epoch {epoch}, but the lease is at epoch {current}"
                    ));
                }
                let lease = self.leases.entry(group.clone()).or_default();
                *lease = Lease {
                    holder: Some(holder.clone()),
                    epoch: *epoch,
                    releasing_to: None,
                    renewals: 0,
                };
                Reply::ok()
            }
            Command::Renew {
                group,
                holder,
                epoch,
            } => match self.held(group, Some(holder), *epoch, "renewal") {
                Err(no) => no,
                Ok(lease) if lease.releasing_to.is_some() => {
                    Reply::no(format!("{group} is being moved; {holder} must let go"))
                }
                Ok(lease) => {
                    lease.renewals += 1;
                    Reply::ok()
                }
            },
            Command::Move { group, epoch, to } => match self.held(group, None, *epoch, "move") {
                Err(no) => no,
                Ok(lease) => {
                    lease.releasing_to = Some(to.clone());
                    Reply::ok()
                }
            },
            Command::Release {
                group,
                holder,
                epoch,
            } => match self.held(group, Some(holder), *epoch, "release") {
                Err(no) => no,
                Ok(lease) => {
                    lease.holder = None;
                    Reply::ok()
                }
            },
            Command::Fence(record) => {
                self.fence_history.push(record.clone());
                let excess = self.fence_history.len().saturating_sub(FENCE_HISTORY_LEN);
                self.fence_history.drain(..excess);
                Reply::ok()
            }
        }
    }
}

impl ClusterState {
    /// The lease of `group` if it is held at `epoch` (by `holder` when given); else the
    /// rejection of the `what` that asked.
    fn held(
        &mut self,
        group: &str,
        holder: Option<&str>,
        epoch: u64,
        what: &str,
    ) -> Result<&mut Lease, Reply> {
        let Some(lease) = self.leases.get_mut(group) else {
            return Err(Reply::no(format!("{group} has no lease")));
        };
        let holder_ok = match holder {
            Some(h) => lease.holder.as_deref() == Some(h),
            None => lease.holder.is_some(),
        };
        if !holder_ok || lease.epoch != epoch {
            let by = holder.map(|h| format!(" by {h}")).unwrap_or_default();
            return Err(Reply::no(format!(
                "{what} of {group}{by} for epoch {epoch}, but the lease is {}",
                describe(lease)
            )));
        }
        Ok(lease)
    }
}

fn describe(lease: &Lease) -> String {
    match &lease.holder {
        Some(h) => format!("held by {h} at epoch {}", lease.epoch),
        None => format!("free at epoch {}", lease.epoch),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant(group: &str, holder: &str, epoch: u64) -> Command {
        Command::Grant {
            group: group.into(),
            holder: holder.into(),
            epoch,
        }
    }
    fn renew(group: &str, holder: &str, epoch: u64) -> Command {
        Command::Renew {
            group: group.into(),
            holder: holder.into(),
            epoch,
        }
    }

    #[test]
    fn grant_needs_the_next_epoch() {
        let mut s = ClusterState::default();
        assert!(!s.apply(&grant("VI_1", "lb1", 2)).is_ok());
        assert!(s.apply(&grant("VI_1", "lb1", 1)).is_ok());
        assert!(!s.apply(&grant("VI_1", "lb2", 1)).is_ok(), "a racing grant");
        assert_eq!(s.lease("VI_1").holder.as_deref(), Some("lb1"));
        assert!(s.apply(&grant("VI_1", "lb2", 2)).is_ok());
        assert_eq!(s.lease("VI_1").holder.as_deref(), Some("lb2"));
    }

    #[test]
    fn stale_renewals_are_rejected() {
        let mut s = ClusterState::default();
        assert!(!s.apply(&renew("VI_1", "lb1", 1)).is_ok());
        s.apply(&grant("VI_1", "lb1", 1));
        assert!(s.apply(&renew("VI_1", "lb1", 1)).is_ok());
        assert!(!s.apply(&renew("VI_1", "lb2", 1)).is_ok());
        s.apply(&grant("VI_1", "lb2", 2));
        assert!(!s.apply(&renew("VI_1", "lb1", 1)).is_ok(), "old holder");
        assert!(s.apply(&renew("VI_1", "lb2", 2)).is_ok());
        assert_eq!(s.lease("VI_1").renewals, 1);
    }

    #[test]
    fn move_stops_renewals_and_release_frees() {
        let mut s = ClusterState::default();
        s.apply(&grant("VI_1", "lb1", 1));
        let mv = Command::Move {
            group: "VI_1".into(),
            epoch: 1,
            to: "lb2".into(),
        };
        assert!(s.apply(&mv).is_ok());
        assert!(!s.apply(&renew("VI_1", "lb1", 1)).is_ok());
        let release = |h: &str, e: u64| Command::Release {
            group: "VI_1".into(),
            holder: h.into(),
            epoch: e,
        };
        assert!(!s.apply(&release("lb2", 1)).is_ok());
        assert!(s.apply(&release("lb1", 1)).is_ok());
        let l = s.lease("VI_1");
        assert_eq!((l.holder, l.epoch), (None, 1));
        assert!(s.apply(&grant("VI_1", "lb2", 2)).is_ok());
        assert_eq!(s.lease("VI_1").releasing_to, None);
    }

    #[test]
    fn fence_history_is_bounded() {
        let mut s = ClusterState::default();
        for i in 0..(FENCE_HISTORY_LEN as u64 + 5) {
            s.apply(&Command::Fence(FenceRecord {
                at_unix_ms: i,
                node: "lb1".into(),
                by: "lb2".into(),
                action: "off".into(),
                ok: true,
                detail: String::new(),
                stage: FenceStage::Result,
                process: None,
            }));
        }
        assert_eq!(s.fence_history.len(), FENCE_HISTORY_LEN);
        assert_eq!(s.fence_history[0].at_unix_ms, 5);
    }

    proptest::proptest! {
        /// Whatever order commands arrive in, epochs never go back and a holder is only ever
        /// replaced by a grant of a higher epoch.
        #[test]
        fn epochs_only_grow(ops in proptest::collection::vec((0u8..6, 0u8..3, 0u64..5), 0..200)) {
            let names = ["lb1", "lb2", "lb3"];
            let mut s = ClusterState::default();
            let mut last = Lease::default();
            for (kind, who, epoch) in ops {
                let who = names[usize::from(who)];
                let cmd = match kind {
                    0 => grant("g", who, epoch),
                    1 => renew("g", who, epoch),
                    2 => Command::Move { group: "g".into(), epoch, to: who.into() },
                    3 => Command::Release { group: "g".into(), holder: who.into(), epoch },
                    4 => Command::SetStandby { node: who.into(), standby: epoch % 2 == 0 },
                    _ => Command::Prefer { group: "g".into(), node: Some(who.into()) },
                };
                let before = s.clone();
                let reply = s.apply(&cmd);
                if !reply.is_ok() {
                    proptest::prop_assert_eq!(&before, &s);
                }
                let now = s.lease("g");
                proptest::prop_assert!(now.epoch >= last.epoch);
                if now.holder.is_some() && now.holder != last.holder {
                    proptest::prop_assert!(now.epoch > last.epoch || last.holder.is_none());
                }
                last = now;
            }
        }
    }
}
