//! Plain-data configuration: what the config crate produces from `[cluster]` and
//! `[[heartbeat]]`, already parsed (durations, addresses) but validated here too, so that the
//! heartbeat crate never runs on a spec it cannot honour.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use crate::key::ClusterKey;
use crate::wire::{ECHO_FIXED_LEN, HEADER_LEN, MAX_ECHOES, MAX_FRAME_LEN, MAX_NAME_LEN, TAG_LEN};

/// Heartbeat interval when the config gives none.
pub const DEFAULT_INTERVAL: Duration = Duration::from_millis(100);
/// Channel timeout when the config gives none: five intervals.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_millis(500);
/// Serial line speed when the config gives none.
pub const DEFAULT_BAUD: u32 = 115_200;
/// Shortest interval accepted: below this the frames are noise on a serial line and a
/// CPU cost elsewhere.
pub const MIN_INTERVAL: Duration = Duration::from_millis(10);

/// One cluster member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeSpec {
    /// Unique in the cluster; 1–64 bytes.
    pub name: String,
    /// The node's address (`[cluster] nodes = [{ address = ... }]`), if given. Used by
    /// callers to derive unicast / TCP peer lists; the liveness core does not need it.
    pub address: Option<IpAddr>,
}

/// The cluster-wide facts the heartbeat needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterSpec {
    /// 1–64 bytes; frames naming another cluster are dropped.
    pub name: String,
    /// From [`crate::load_key`].
    pub key: ClusterKey,
    /// Every member, this node included.
    pub nodes: Vec<NodeSpec>,
}

/// Transport of one heartbeat channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ChannelKind {
    /// UDP to a multicast group on one interface (`kind = "udp-multicast"`).
    UdpMulticast,
    /// UDP to a list of unicast peer addresses (`kind = "udp-unicast"`).
    UdpUnicast,
    /// TCP connections to every peer, length-prefixed frames (`kind = "tcp"`).
    Tcp,
    /// A serial line (`kind = "serial"`).
    Serial,
}

impl ChannelKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ChannelKind::UdpMulticast => "udp-multicast",
            ChannelKind::UdpUnicast => "udp-unicast",
            ChannelKind::Tcp => "tcp",
            ChannelKind::Serial => "serial",
        }
    }
}

impl std::fmt::Display for ChannelKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One `[[heartbeat]]` channel. Which fields matter depends on `kind`:
///
/// | kind | required | optional |
/// |---|---|---|
/// | `udp-multicast` | `interface`, `group` (e.g. `239.192.0.1:5405`; IPv4 or IPv6) | |
/// | `udp-unicast` | `port` (local), `peers` (peer `ip:port`s) | `bind` (local address) |
/// | `tcp` | `port` (listening), `peers` (peer `ip:port`s to connect to) | `bind` |
/// | `serial` | `device` | `baud` (default 115200) |
///
/// A channel's position in the list is its id on the wire: every node must list its
/// channels in the same order (the cluster fingerprint covers this).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelSpec {
    pub kind: ChannelKind,
    pub interface: Option<String>,
    pub group: Option<SocketAddr>,
    pub peers: Vec<SocketAddr>,
    pub port: Option<u16>,
    /// Local address to bind (UDP unicast, TCP); unspecified address when `None`.
    pub bind: Option<IpAddr>,
    pub device: Option<PathBuf>,
    pub baud: Option<u32>,
    /// How often a frame is sent on this channel.
    pub interval: Duration,
    /// A peer is down on this channel after this long without a valid frame.
    pub timeout: Duration,
}

impl ChannelSpec {
    fn blank(kind: ChannelKind) -> ChannelSpec {
        ChannelSpec {
            kind,
            interface: None,
            group: None,
            peers: Vec::new(),
            port: None,
            bind: None,
            device: None,
            baud: None,
            interval: DEFAULT_INTERVAL,
            timeout: DEFAULT_TIMEOUT,
        }
    }

    pub fn udp_multicast(interface: impl Into<String>, group: SocketAddr) -> ChannelSpec {
        ChannelSpec {
            interface: Some(interface.into()),
            group: Some(group),
            ..ChannelSpec::blank(ChannelKind::UdpMulticast)
        }
    }

    pub fn udp_unicast(port: u16, peers: Vec<SocketAddr>) -> ChannelSpec {
        ChannelSpec {
            port: Some(port),
            peers,
            ..ChannelSpec::blank(ChannelKind::UdpUnicast)
        }
    }

    pub fn tcp(port: u16, peers: Vec<SocketAddr>) -> ChannelSpec {
        ChannelSpec {
            port: Some(port),
            peers,
            ..ChannelSpec::blank(ChannelKind::Tcp)
        }
    }

    pub fn serial(device: impl Into<PathBuf>, baud: u32) -> ChannelSpec {
        ChannelSpec {
            device: Some(device.into()),
            baud: Some(baud),
            ..ChannelSpec::blank(ChannelKind::Serial)
        }
    }

    pub fn with_bind(mut self, bind: IpAddr) -> ChannelSpec {
        self.bind = Some(bind);
        self
    }

    pub fn with_timing(mut self, interval: Duration, timeout: Duration) -> ChannelSpec {
        self.interval = interval;
        self.timeout = timeout;
        self
    }

    /// Check that the fields `kind` needs are there and the timing makes sense.
    pub fn validate(&self) -> Result<(), SpecError> {
        let missing = |field: &'static str| SpecError::MissingField {
            kind: self.kind,
            field,
        };
        if self.interval < MIN_INTERVAL {
            return Err(SpecError::IntervalTooShort(self.interval));
        }
        if self.timeout <= self.interval {
            return Err(SpecError::TimeoutNotAboveInterval {
                interval: self.interval,
                timeout: self.timeout,
            });
        }
        match self.kind {
            ChannelKind::UdpMulticast => {
                let iface = self
                    .interface
                    .as_deref()
                    .ok_or_else(|| missing("interface"))?;
                if iface.is_empty() {
                    return Err(missing("interface"));
                }
                let group = self.group.ok_or_else(|| missing("group"))?;
                if !group.ip().is_multicast() {
                    return Err(SpecError::NotMulticast(group));
                }
                if group.port() == 0 {
                    return Err(SpecError::ZeroPort);
                }
            }
            ChannelKind::UdpUnicast | ChannelKind::Tcp => {
                if self.port.ok_or_else(|| missing("port"))? == 0 {
                    return Err(SpecError::ZeroPort);
                }
                if self.peers.is_empty() {
                    return Err(missing("peers"));
                }
                if self.peers.iter().any(|p| p.port() == 0) {
                    return Err(SpecError::ZeroPort);
                }
            }
            ChannelKind::Serial => {
                if self.device.is_none() {
                    return Err(missing("device"));
                }
                let baud = self.baud.unwrap_or(DEFAULT_BAUD);
                if crate::channel::serial::baud_rate(baud).is_none() {
                    return Err(SpecError::UnsupportedBaud(baud));
                }
            }
        }
        Ok(())
    }

    /// A short human description for status output (`udp-multicast eth0 239.192.0.1:5405`).
    pub fn describe(&self) -> String {
        match self.kind {
            ChannelKind::UdpMulticast => format!(
                "udp-multicast {} {}",
                self.interface.as_deref().unwrap_or("?"),
                self.group.map(|g| g.to_string()).unwrap_or_default()
            ),
            ChannelKind::UdpUnicast | ChannelKind::Tcp => format!(
                "{} :{} -> {}",
                self.kind,
                self.port.unwrap_or(0),
                self.peers
                    .iter()
                    .map(|p| p.to_string())
                    .collect::<Vec<_>>()
                    .join(",")
            ),
            ChannelKind::Serial => format!(
                "serial {} {}",
                self.device
                    .as_deref()
                    .map(|d| d.display().to_string())
                    .unwrap_or_default(),
                self.baud.unwrap_or(DEFAULT_BAUD)
            ),
        }
    }
}

/// A spec the heartbeat cannot run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpecError {
    #[error("{kind} heartbeat needs `{field}`")]
    MissingField {
        kind: ChannelKind,
        field: &'static str,
    },
    #[error("heartbeat interval {0:?} is below the minimum of 10ms")]
    IntervalTooShort(Duration),
    #[error("heartbeat timeout {timeout:?} must be longer than the interval {interval:?}")]
    TimeoutNotAboveInterval {
        interval: Duration,
        timeout: Duration,
    },
    #[error("{0} is not a multicast address")]
    NotMulticast(SocketAddr),
    #[error("port 0 is not allowed")]
    ZeroPort,
    #[error("unsupported serial speed {0}")]
    UnsupportedBaud(u32),
    #[error("cluster name {0:?} must be 1 to 64 bytes")]
    BadClusterName(String),
    #[error("node name {0:?} must be 1 to 64 bytes")]
    BadNodeName(String),
    #[error("node {0:?} is listed twice")]
    DuplicateNode(String),
    #[error("this node {0:?} is not a cluster member")]
    LocalNodeNotMember(String),
    #[error("at most {max} heartbeat channels", max = u8::MAX as usize + 1)]
    TooManyChannels,
    #[error("no heartbeat channels")]
    NoChannels,
    #[error(
        "cluster too large for one heartbeat frame ({len} bytes > {max}): fewer nodes or \
         shorter names",
        max = MAX_FRAME_LEN
    )]
    FrameTooLarge { len: usize },
}

impl ClusterSpec {
    /// Check names (1–64 bytes, unique), that `local` is a member, and that a frame with
    /// the largest possible echo list (two entries per peer) fits [`MAX_FRAME_LEN`].
    pub fn validate(&self, local: &str) -> Result<(), SpecError> {
        let name_ok = |n: &str| (1..=MAX_NAME_LEN).contains(&n.len());
        if !name_ok(&self.name) {
            return Err(SpecError::BadClusterName(self.name.clone()));
        }
        for (i, node) in self.nodes.iter().enumerate() {
            if !name_ok(&node.name) {
                return Err(SpecError::BadNodeName(node.name.clone()));
            }
            if self.nodes[..i].iter().any(|n| n.name == node.name) {
                return Err(SpecError::DuplicateNode(node.name.clone()));
            }
        }
        if !self.nodes.iter().any(|n| n.name == local) {
            return Err(SpecError::LocalNodeNotMember(local.to_owned()));
        }
        let peers = self.nodes.iter().filter(|n| n.name != local);
        let echo_len: usize = peers
            .clone()
            .map(|n| 2 * (ECHO_FIXED_LEN + n.name.len()))
            .sum();
        let len = HEADER_LEN + self.name.len() + local.len() + echo_len + TAG_LEN;
        if len > MAX_FRAME_LEN || 2 * peers.count() > MAX_ECHOES {
            return Err(SpecError::FrameTooLarge { len });
        }
        Ok(())
    }

    /// Names of every member but `local`, in configuration order.
    pub fn peer_names(&self, local: &str) -> Vec<String> {
        self.nodes
            .iter()
            .filter(|n| n.name != local)
            .map(|n| n.name.clone())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cluster(names: &[&str]) -> ClusterSpec {
        ClusterSpec {
            name: "edge".into(),
            key: ClusterKey::new(b"k".to_vec()).unwrap(),
            nodes: names
                .iter()
                .map(|n| NodeSpec {
                    name: (*n).into(),
                    address: None,
                })
                .collect(),
        }
    }

    #[test]
    fn cluster_validation() {
        assert!(cluster(&["lb1", "lb2", "arb"]).validate("lb1").is_ok());
        assert_eq!(
            cluster(&["lb1", "lb2"]).validate("lb3"),
            Err(SpecError::LocalNodeNotMember("lb3".into()))
        );
        assert_eq!(
            cluster(&["lb1", "lb1"]).validate("lb1"),
            Err(SpecError::DuplicateNode("lb1".into()))
        );
        assert!(matches!(
            cluster(&["lb1", ""]).validate("lb1"),
            Err(SpecError::BadNodeName(_))
        ));
        let long = "x".repeat(65);
        assert!(matches!(
            cluster(&["lb1", &long]).validate("lb1"),
            Err(SpecError::BadNodeName(_))
        ));
        // 16 peers with 64-byte names cannot fit two echo entries each.
        let names: Vec<String> = (0..17).map(|i| format!("{i:064}")).collect();
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        assert!(matches!(
            cluster(&refs).validate(&names[0]),
            Err(SpecError::FrameTooLarge { .. })
        ));
        assert_eq!(cluster(&["a", "b", "c"]).peer_names("b"), vec!["a", "c"]);
    }

    #[test]
    fn channel_validation() {
        let group: SocketAddr = "239.192.0.1:5405".parse().unwrap();
        assert!(ChannelSpec::udp_multicast("eth0", group).validate().is_ok());
        assert_eq!(
            ChannelSpec::udp_multicast("eth0", "10.0.0.1:5405".parse().unwrap()).validate(),
            Err(SpecError::NotMulticast("10.0.0.1:5405".parse().unwrap()))
        );
        let mut s = ChannelSpec::udp_multicast("eth0", group);
        s.interface = None;
        assert!(matches!(
            s.validate(),
            Err(SpecError::MissingField {
                field: "interface",
                ..
            })
        ));
        assert!(matches!(
            ChannelSpec::tcp(5406, vec![]).validate(),
            Err(SpecError::MissingField { field: "peers", .. })
        ));
        assert!(
            ChannelSpec::tcp(5406, vec!["10.0.0.2:5406".parse().unwrap()])
                .validate()
                .is_ok()
        );
        assert!(ChannelSpec::serial("/dev/ttyS1", 115_200)
            .validate()
            .is_ok());
        assert_eq!(
            ChannelSpec::serial("/dev/ttyS1", 12_345).validate(),
            Err(SpecError::UnsupportedBaud(12_345))
        );
        let t = ChannelSpec::serial("/dev/ttyS1", 9600)
            .with_timing(Duration::from_millis(100), Duration::from_millis(100));
        assert!(matches!(
            t.validate(),
            Err(SpecError::TimeoutNotAboveInterval { .. })
        ));
        let t = ChannelSpec::serial("/dev/ttyS1", 9600)
            .with_timing(Duration::from_millis(1), Duration::from_millis(100));
        assert!(matches!(t.validate(), Err(SpecError::IntervalTooShort(_))));
    }
}
