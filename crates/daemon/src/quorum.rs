//! The daemon's side of `quorum` mode: start the Raft member from the config, and turn its
//! view into what the event loop needs (lease held or not per instance, reports, status).
//!
//! The lease deadline is enforced by the event loop itself, from `held_until` on its own
//! timerfd: a stuck Raft thread cannot keep a VIP configured past the lease.

use std::collections::BTreeMap;
use std::time::Instant;

use anyhow::Context as _;
use tandem_config::{Config, Role};
use tandem_quorum::{
    GroupReport, LeaseTiming, Member, MemberRole, QuorumConfig, QuorumHandle, QuorumNode,
    QuorumView,
};

/// Starts the Raft member when the config asks for one (`[cluster]` with a quorum group or an
/// arbiter).
pub fn start(config: &Config) -> anyhow::Result<Option<QuorumHandle>> {
    if !config.raft_enabled() {
        return Ok(None);
    }
    let cluster = config
        .cluster
        .as_ref()
        .context("raft is enabled without [cluster]")?;
    let key = tandem_heartbeat::load_key(&cluster.key_file)
        .with_context(|| format!("cluster key {}", cluster.key_file.display()))?;
    let members = config
        .raft_peers()
        .into_iter()
        .map(|(name, addr, role)| Member {
            name: name.to_string(),
            addr,
            role: match role {
                Role::Voter => MemberRole::Voter,
                Role::Arbiter => MemberRole::Arbiter,
            },
        })
        .collect();
    let handle = QuorumNode::start(QuorumConfig {
        me: config.node.name.clone(),
        cluster_name: cluster.name.clone(),
        members,
        state_dir: config.node.state_dir.clone(),
        key: key.as_bytes().to_vec(),
        timing: LeaseTiming {
            lease: cluster.lease,
            renew: cluster.lease_renew,
            margin: cluster.lease_margin,
        },
    })
    .context("starting the Raft member")?;
    Ok(Some(handle))
}

/// What one quorum instance reports: 0 while faulted (it cannot hold the group).
pub fn report(priority: u8, fault: bool, preempt: bool) -> GroupReport {
    GroupReport {
        priority: if fault { 0 } else { priority },
        preempt,
    }
}

/// The view as JSON for `tandem status`, with each lease's remaining time by our clock.
pub fn status_json(view: &QuorumView, now: Instant) -> serde_json::Value {
    let mut v = serde_json::to_value(view).unwrap_or(serde_json::Value::Null);
    if let Some(groups) = v.get_mut("groups").and_then(|g| g.as_object_mut()) {
        for (name, g) in groups.iter_mut() {
            let remaining = view
                .groups
                .get(name)
                .and_then(|gv| gv.held_until)
                .map(|t| t.saturating_duration_since(now).as_millis() as u64);
            if let Some(obj) = g.as_object_mut() {
                obj.insert("lease_remaining_ms".into(), remaining.into());
            }
        }
    }
    v
}

/// The group names (quorum instances) this node declares, with their reports.
pub fn reports<'a>(
    items: impl Iterator<Item = (&'a str, GroupReport)>,
) -> BTreeMap<String, GroupReport> {
    items.map(|(n, r)| (n.to_string(), r)).collect()
}
