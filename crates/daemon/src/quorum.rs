//! The daemon's side of `quorum` mode: start the Raft member from the config, and turn its
//! view into what the event loop needs (lease held or not per instance, reports, status).
//!
//! The lease deadline is enforced by the event loop itself, from `held_until` on its own
//! timerfd: a stuck Raft thread cannot keep a VIP configured past the lease.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

use crate::fencing::TopologyFencer;
use anyhow::Context as _;
use tandem_config::{Config, Role};
use tandem_quorum::net::MembershipChange;
use tandem_quorum::node::Op;
use tandem_quorum::{
    Fencer, GroupReport, LeaseTiming, Member, MemberRole, QuorumConfig, QuorumHandle, QuorumNode,
    QuorumView,
};

/// Starts the Raft member when the config asks for one (`[cluster]` with a quorum group or an
/// arbiter).
pub fn start(config: &Config, join: bool) -> anyhow::Result<Option<QuorumHandle>> {
    if !config.raft_enabled() {
        return Ok(None);
    }
    let cluster = config
        .cluster
        .as_ref()
        .context("raft is enabled without [cluster]")?;
    if config.fence_levels.is_empty() {
        // Validation cannot see this from here: another member's instance may have
        // fence_on_takeover, and whoever leads Raft fences for the cluster.
        tracing::warn!(
            "this member has no [[fence_level]]: while it leads Raft, a silent holder of a \
             fence_on_takeover group cannot be fenced and its group stays put; give every \
             member, the arbiter too, the voters' fence devices"
        );
    }
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
        // Any member may lead and then fence a silent holder, so every member with fencing
        // configured offers it; without, such a fence fails and is recorded as failed.
        fencer: (!config.fence_levels.is_empty())
            .then(|| Arc::new(TopologyFencer::new(config.clone())) as Arc<dyn Fencer>),
        unfence_auto: cluster.unfence == tandem_config::Unfence::Auto,
        join,
    })
    .context("starting the Raft member")?;
    Ok(Some(handle))
}

/// `tandem node add NAME ADDRESS`: the membership change, with the address completed by the
/// cluster's `raft_port` when only an IP is given.
pub fn node_add(
    config: &Config,
    name: String,
    address: &str,
    role: MemberRole,
) -> Result<Op, String> {
    let valid = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if !valid {
        return Err(format!(
            "{name:?} is not a node name (letters, digits, '-', '_' and '.', at most 64)"
        ));
    }
    let port = config.cluster.as_ref().map_or(5410, |c| c.raft_port);
    let addr = match (address.parse::<SocketAddr>(), address.parse::<IpAddr>()) {
        (Ok(sa), _) => sa,
        (_, Ok(ip)) => SocketAddr::new(ip, port),
        _ => {
            return Err(format!(
                "{address:?} is not an IP address or IP:port (the node's Raft address)"
            ))
        }
    };
    Ok(Op::Membership(MembershipChange::Add {
        name,
        addr: addr.to_string(),
        role,
    }))
}

/// What one quorum instance reports: 0 while faulted (it cannot hold the group).
pub fn report(priority: u8, fault: bool, preempt: bool, fence: bool) -> GroupReport {
    GroupReport {
        priority: if fault { 0 } else { priority },
        preempt,
        fence,
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

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> Config {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../tests/configs/valid/quorum-lb1.toml"
        );
        tandem_config::load(std::path::Path::new(path)).expect("fixture loads")
    }

    fn added(op: Op) -> (String, String, MemberRole) {
        match op {
            Op::Membership(MembershipChange::Add { name, addr, role }) => (name, addr, role),
            other => panic!("not an add: {other:?}"),
        }
    }

    #[test]
    fn node_add_completes_the_address_with_raft_port() {
        let cfg = config();
        let port = cfg.cluster.as_ref().unwrap().raft_port;
        let (name, addr, role) =
            added(node_add(&cfg, "lb3".into(), "10.0.0.4", MemberRole::Voter).unwrap());
        assert_eq!((name.as_str(), role), ("lb3", MemberRole::Voter));
        assert_eq!(addr, format!("10.0.0.4:{port}"));
        let (_, addr, _) =
            added(node_add(&cfg, "lb3".into(), "[fd00::4]:7000", MemberRole::Arbiter).unwrap());
        assert_eq!(addr, "[fd00::4]:7000");
        let (_, addr, _) =
            added(node_add(&cfg, "lb3".into(), "fd00::4", MemberRole::Voter).unwrap());
        assert_eq!(addr, format!("[fd00::4]:{port}"));
    }

    #[test]
    fn node_add_refuses_bad_names_and_addresses() {
        let cfg = config();
        for bad in ["", "lb 3", "lb3/x", &"x".repeat(65)] {
            let e = node_add(&cfg, bad.into(), "10.0.0.4", MemberRole::Voter).unwrap_err();
            assert!(e.contains("is not a node name"), "{bad:?}: {e}");
        }
        for bad in ["lb3", "10.0.0.4:", "10.0.0.256", ""] {
            let e = node_add(&cfg, "lb3".into(), bad, MemberRole::Voter).unwrap_err();
            assert!(
                e.contains("is not an IP address or IP:port"),
                "{bad:?}: {e}"
            );
        }
    }
}
