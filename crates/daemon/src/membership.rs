//! Membership: starts the heartbeat channels from `[cluster]` / `[[heartbeat]]` and keeps
//! which peers are up, for status and for the split warning in `vrrp` mode.
//!
//! The liveness decisions are the heartbeat crate's sans-IO core; this module only maps the
//! config onto it and records the verdicts it reports.

use std::collections::BTreeMap;

use anyhow::Context as _;
use tandem_config::{Config, HeartbeatKind};
use tandem_heartbeat::{
    load_key, ChannelSpec, ClusterSpec, EventKind, Heartbeat, HeartbeatConfig, NodeSpec,
};

/// Start the heartbeat of this node, or `None` without a `[cluster]` section.
pub(crate) fn start(config: &Config) -> anyhow::Result<Option<Heartbeat>> {
    let Some(cluster) = &config.cluster else {
        return Ok(None);
    };
    let key = load_key(&cluster.key_file).with_context(|| {
        format!(
            "cluster key {} (it must be a file readable by root only)",
            cluster.key_file.display()
        )
    })?;
    let me = &config.node.name;
    // Validation guarantees this node is in `nodes`, which is where the default bind and
    // the unicast / TCP peers come from (`Config::heartbeat_bind` / `heartbeat_peers`).
    let own = config
        .cluster_node()
        .map(|n| n.address)
        .with_context(|| format!("node {me} is not in [cluster] nodes"))?;
    let channels = config
        .heartbeats
        .iter()
        .map(|h| {
            let spec = match &h.kind {
                HeartbeatKind::UdpMulticast { interface, group } => {
                    ChannelSpec::udp_multicast(interface.clone(), *group)
                }
                HeartbeatKind::UdpUnicast { port, .. } => {
                    ChannelSpec::udp_unicast(*port, config.heartbeat_peers(h))
                        .with_bind(config.heartbeat_bind(h).unwrap_or(own))
                }
                HeartbeatKind::Tcp { port, .. } => {
                    ChannelSpec::tcp(*port, config.heartbeat_peers(h))
                        .with_bind(config.heartbeat_bind(h).unwrap_or(own))
                }
                HeartbeatKind::Serial { device, baud } => {
                    ChannelSpec::serial(device.clone(), *baud)
                }
            };
            spec.with_timing(h.interval, h.timeout)
        })
        .collect();
    let hb = Heartbeat::start(HeartbeatConfig {
        cluster: ClusterSpec {
            name: cluster.name.clone(),
            key,
            nodes: cluster
                .nodes
                .iter()
                .map(|n| NodeSpec {
                    name: n.name.clone(),
                    address: Some(n.address),
                })
                .collect(),
        },
        node: me.clone(),
        channels,
        incarnation: None,
    })
    .context("starting the heartbeat channels")?;
    Ok(Some(hb))
}

/// Which peers are up, and on which channels, as the heartbeat last reported.
#[derive(Default)]
pub(crate) struct Peers {
    /// Peer name → channel ids that are up.
    up: BTreeMap<String, Vec<u8>>,
}

impl Peers {
    pub fn new(config: &Config) -> Self {
        let up = config
            .cluster
            .iter()
            .flat_map(|c| c.peers(&config.node.name))
            .map(|n| (n.name.clone(), Vec::new()))
            .collect();
        Peers { up }
    }

    /// Apply one heartbeat event; returns it as a JSON event for the stream.
    pub fn apply(&mut self, kind: &EventKind) -> serde_json::Value {
        match kind {
            EventKind::ChannelUp { peer, channel } => {
                let l = self.up.entry(peer.clone()).or_default();
                if !l.contains(&channel.0) {
                    l.push(channel.0);
                    l.sort_unstable();
                }
                serde_json::json!({"type": "channel", "peer": peer, "channel": channel.0, "up": true})
            }
            EventKind::ChannelDown {
                peer,
                channel,
                reason,
            } => {
                if let Some(l) = self.up.get_mut(peer) {
                    l.retain(|c| *c != channel.0);
                }
                serde_json::json!({"type": "channel", "peer": peer, "channel": channel.0, "up": false, "reason": reason})
            }
            EventKind::PeerUp { peer, incarnation } => {
                serde_json::json!({"type": "peer", "peer": peer, "up": true, "incarnation": format!("{incarnation:016x}")})
            }
            EventKind::PeerDown { peer, reason } => {
                if let Some(l) = self.up.get_mut(peer) {
                    l.clear();
                }
                serde_json::json!({"type": "peer", "peer": peer, "up": false, "reason": reason})
            }
            EventKind::PeerRestarted {
                peer,
                old_incarnation,
                new_incarnation,
            } => serde_json::json!({
                "type": "peer_restarted", "peer": peer,
                "old_incarnation": format!("{old_incarnation:016x}"),
                "new_incarnation": format!("{new_incarnation:016x}"),
            }),
            // The ids are hashes of instance names: the count is what an operator can read.
            EventKind::PeerHeld { peer, held } => serde_json::json!({
                "type": "peer_held", "peer": peer, "instances": held.len(),
            }),
        }
    }

    /// Peers still up on at least one channel, with those channels.
    pub fn alive(&self) -> Vec<(String, Vec<u8>)> {
        self.up
            .iter()
            .filter(|(_, l)| !l.is_empty())
            .map(|(n, l)| (n.clone(), l.clone()))
            .collect()
    }
}
