//! tandem's configuration: one TOML file per node, parsed and validated into a [`Config`].
//!
//! [`parse`] and [`load`] only read text and judge it. They never touch the network or the
//! running system (no sockets, no netlink, no interface lookups, no files other than the one
//! [`load`] is asked to read): `tandem check` runs them on configs for other machines, and a
//! reload that fails here must leave the running daemon exactly as it was. What can only be
//! judged on the machine that will run the config (the cluster key file's existence and mode,
//! a serial heartbeat's device) is checked by a separate function, [`check_local`], for
//! `tandem check` to call after a successful parse when the config is meant for the machine it
//! runs on (and to skip for a config written for another machine). It looks at file metadata
//! only and reads no file's contents.
//!
//! Every problem in a file is reported at once, each as a [`Diagnostic`] with the file's
//! `line:col` of the offending value and a hint, so that one `tandem check` shows everything to
//! fix. That is why the file is parsed with `toml_edit` (which keeps every span) and walked by
//! hand instead of deserialized with serde, which stops at the first error.
//!
//! The format (see ARCHITECTURE.md, "The config users write") uses keepalived's vocabulary
//! where it has one. Durations are strings like `"100ms"` or `"1.5s"` ([`parse_duration`]).
//! This build supports `[node]`, `[cluster]`, `[[heartbeat]]`, `[[vrrp_instance]]`,
//! `[[check]]`, `[[vrrp_sync_group]]`, `[[fence_device]]` and `[[fence_level]]`.
//!
//! Fencing: a `[[fence_device]]` ([`FenceDeviceConfig`]) is a driver (`"ipmi"`, `"pdu-snmp"`,
//! `"switch-snmp"`, `"fence-agent"`) with its parameters; a `[[fence_level]]`
//! ([`FenceLevelConfig`]) gives one level of a node's fencing topology, the devices that must
//! all succeed. Secrets are never written in the file: each is a [`SecretRef`], a `*_file` path
//! or a `*_env` variable name, which this crate never reads.
//!
//! Fencing before a takeover: `fence_on_takeover = true` on an instance
//! ([`VrrpInstance::fence_on_takeover`]) needs a `[cluster]`, and a `[[fence_level]]` for every
//! other voter of `[cluster] nodes` (the nodes this one may have to fence). In `vrrp` mode it is
//! for a pair: exactly two nodes, neither an arbiter; with more members the majority decides,
//! in `mode = "quorum"`. `[node] fence_delay` and `fence_random_delay`
//! ([`NodeConfig::fence_delay`]) settle a pair's fence race, and `[cluster] unfence`
//! ([`Unfence`]) says who switches a fenced node back on.
//!
//! Cluster: `[cluster]` ([`Cluster`]) names the cluster, the key file every heartbeat frame is
//! authenticated with, and every member ([`ClusterNode`]), this node included: `[node] name`
//! must be one of them, with the same role. A `[cluster]` needs at least one `[[heartbeat]]`
//! ([`Heartbeat`]) and a `[[heartbeat]]` needs a `[cluster]`. **The order of the
//! `[[heartbeat]]` entries is each channel's id on the wire: every node must list the same
//! channels in the same order** (the cluster-wide facts are compared between nodes). UDP
//! unicast and TCP channels have no peer list: they send to every other node's
//! [`ClusterNode::address`] on the channel's port ([`Config::heartbeat_peers`]), and bind this
//! node's own address unless `bind` says otherwise ([`Config::heartbeat_bind`]).
//!
//! Quorum: an instance with `mode = "quorum"` ([`Mode::Quorum`]) holds its VIPs only under a
//! lease granted through the cluster's Raft log, so it needs a `[cluster]` of at least three
//! members (voters and arbiters): a majority of two is both nodes, and one failure would stop
//! every lease. An arbiter (`[node] role = "arbiter"`) exists only to vote, so it needs a
//! `[cluster]` and declares no instance. The lease timing and the Raft port are cluster-wide
//! `[cluster]` keys ([`Cluster::lease`] and the fields after it); which nodes run Raft and whom
//! they talk to: [`Config::raft_enabled`], [`Config::raft_peers`].
//!
//! Health: a `[[check]]` ([`Check`]: kind `"tcp"`, `"http"` or `"script"`) is probed on its own
//! interval; an instance follows checks with `track_check`, interfaces with `track_interface`
//! and weight files with `track_file`, each entry a [`Track`] with a weight (0: FAULT while the
//! item is bad). A check that no instance tracks is valid: it runs and shows in status. The
//! instance's `notify` program is run on every transition. A `[[vrrp_sync_group]]`
//! ([`SyncGroup`]) makes instances move together. Names are resolved here: every
//! `track_check` names a declared check and every sync group member a declared instance, so the
//! daemon can look them up with [`Config::check`] and [`Config::instance`] without failing.
//!
//! In a `[[vrrp_instance]]`, the first `virtual_ipaddress` decides the advert family (IPv4 or
//! IPv6, see [`VrrpInstance::advert_family`]). With `version = 3`, addresses of the other family
//! may follow: they are configured and removed with the others but not listed in the adverts,
//! like keepalived's `virtual_ipaddress_excluded`.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

mod duration;
mod local;
mod position;
mod suggest;
mod tree;
mod validate;

pub use duration::{format_duration, parse_duration, DurationError};
pub use local::check_local;

/// Where `tandem` looks for its config when not told otherwise.
pub const DEFAULT_CONFIG_PATH: &str = "/etc/tandem/tandem.toml";
/// `[node] state_dir` when absent.
pub const DEFAULT_STATE_DIR: &str = "/var/lib/tandem";
/// `[node] control_socket` when absent.
pub const DEFAULT_CONTROL_SOCKET: &str = "/run/tandem/tandem.sock";
/// `[[check]] interval` when absent.
pub const DEFAULT_CHECK_INTERVAL: Duration = Duration::from_secs(2);
/// `[[check]] timeout` when absent.
pub const DEFAULT_CHECK_TIMEOUT: Duration = Duration::from_secs(1);
/// `[[vrrp_instance]] notify_timeout` when absent.
pub const DEFAULT_NOTIFY_TIMEOUT: Duration = Duration::from_secs(10);
/// `[cluster] lease` when absent.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(1);
/// The shortest `[cluster] lease` accepted: every renewal is a Raft commit (an fsync on a
/// majority), and a few must fit in one lease.
pub const MIN_LEASE: Duration = Duration::from_millis(100);
/// The longest `[cluster] lease` accepted: after a holder fails its VIP stays down for about
/// one lease, and a longer one is more likely a unit slip than intent.
pub const MAX_LEASE: Duration = Duration::from_secs(60);
/// The shortest `[cluster] lease_renew` accepted, for the same fsync cost as [`MIN_LEASE`].
pub const MIN_LEASE_RENEW: Duration = Duration::from_millis(10);
/// `[cluster] raft_port` when absent.
pub const DEFAULT_RAFT_PORT: u16 = 5410;
/// `[[heartbeat]] interval` when absent (tandem-heartbeat's `DEFAULT_INTERVAL`).
pub const DEFAULT_HEARTBEAT_INTERVAL: Duration = Duration::from_millis(100);
/// `[[heartbeat]] timeout` when absent (tandem-heartbeat's `DEFAULT_TIMEOUT`).
pub const DEFAULT_HEARTBEAT_TIMEOUT: Duration = Duration::from_millis(500);
/// The shortest `[[heartbeat]] interval` accepted (tandem-heartbeat's `MIN_INTERVAL`).
pub const MIN_HEARTBEAT_INTERVAL: Duration = Duration::from_millis(10);
/// The most `[[heartbeat]]` entries: a channel's id on the wire is one byte.
pub const MAX_HEARTBEATS: usize = 256;
/// `baud` of a serial `[[heartbeat]]` when absent (tandem-heartbeat's `DEFAULT_BAUD`).
pub const DEFAULT_SERIAL_BAUD: u32 = 115_200;
/// The serial speeds a serial `[[heartbeat]]` accepts: the termios rates from 1200 to 4000000
/// that tandem-heartbeat's serial channel can set (`channel::serial::baud_rate`).
pub const SERIAL_BAUD_RATES: &[u32] = &[
    1_200, 2_400, 4_800, 9_600, 19_200, 38_400, 57_600, 115_200, 230_400, 460_800, 500_000,
    576_000, 921_600, 1_000_000, 1_152_000, 1_500_000, 2_000_000, 2_500_000, 3_000_000, 3_500_000,
    4_000_000,
];

/// A whole, validated node config.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// The file it was read from (for messages).
    pub path: PathBuf,
    pub node: NodeConfig,
    pub vrrp_instances: Vec<VrrpInstance>,
    /// `[[check]]`: health checks that instances track by name.
    pub checks: Vec<Check>,
    /// `[[vrrp_sync_group]]`: instances that move together.
    pub sync_groups: Vec<SyncGroup>,
    /// `[cluster]`: absent for a keepalived-style node that runs VRRP alone.
    pub cluster: Option<Cluster>,
    /// `[[heartbeat]]`: in file order, which is each channel's id on the wire (every node
    /// lists the same channels in the same order). Empty exactly when `cluster` is `None`.
    pub heartbeats: Vec<Heartbeat>,
    /// `[[fence_device]]`, in file order; names unique.
    pub fence_devices: Vec<FenceDeviceConfig>,
    /// `[[fence_level]]`, in file order; (node, level) unique, every device declared.
    pub fence_levels: Vec<FenceLevelConfig>,
}

/// Default `timeout` of a `[[fence_device]]`: the limit for one attempt.
pub const DEFAULT_FENCE_TIMEOUT: Duration = Duration::from_secs(20);
/// Default `retries` of a `[[fence_device]]`.
pub const DEFAULT_FENCE_RETRIES: u32 = 1;
/// Default IPMI (RMCP+) UDP port.
pub const DEFAULT_IPMI_PORT: u16 = 623;
/// Default SNMP UDP port.
pub const DEFAULT_SNMP_PORT: u16 = 161;
/// Default IPMI cipher suite.
pub const DEFAULT_IPMI_CIPHER: u8 = 3;

/// One `[[fence_device]]`.
///
/// ```toml
/// [[fence_device]]
/// name = "lb2-bmc"
/// driver = "ipmi"
/// address = "10.0.9.2:623"
/// username = "admin"
/// password_file = "/etc/tandem/secrets/lb2-bmc"
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct FenceDeviceConfig {
    /// Unique among the devices; same characters as node names.
    pub name: String,
    pub driver: FenceDriverConfig,
    /// Limit for one attempt (default "20s").
    pub timeout: Duration,
    /// Further attempts after a failed or unverified one (default 1).
    pub retries: u32,
    /// Where the entry is, for messages.
    pub origin: Origin,
}

/// Where a secret comes from: `X_file = "/abs/path"` or `X_env = "VARIABLE"`. This crate never
/// reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretRef {
    File(PathBuf),
    Env(String),
}

/// An outlet or a switch port: its number (outlet number, ifIndex) or its name on the device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlugRef {
    Number(u32),
    Name(String),
}

impl fmt::Display for PlugRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PlugRef::Number(n) => write!(f, "{n}"),
            PlugRef::Name(n) => f.write_str(n),
        }
    }
}

/// SNMP credentials of a `pdu-snmp` or `switch-snmp` device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SnmpCredentials {
    /// snmp_version = "2c": `community_file` / `community_env`.
    V2c { community: SecretRef },
    /// snmp_version = "3" (authPriv): `user`, `auth_protocol` ("MD5", "SHA" (default),
    /// "SHA-256", "SHA-512"), `auth_pass_file` / `auth_pass_env`, `priv_protocol` ("DES",
    /// "AES" (default)), `priv_pass_file` / `priv_pass_env`.
    V3 {
        user: String,
        auth_protocol: String,
        auth_pass: SecretRef,
        priv_protocol: String,
        priv_pass: SecretRef,
    },
}

/// The driver of a [`FenceDeviceConfig`] and its parameters.
#[derive(Debug, Clone, PartialEq)]
pub enum FenceDriverConfig {
    /// driver = "ipmi": a BMC over IPMI v2.0 RMCP+.
    Ipmi {
        host: String,
        /// Default 623.
        port: u16,
        username: String,
        password: SecretRef,
        /// RMCP+ cipher suite, default 3.
        cipher: u8,
        /// "CALLBACK", "USER", "OPERATOR" or "ADMINISTRATOR" (default).
        privilege: String,
    },
    /// driver = "pdu-snmp": one outlet of a switched PDU.
    PduSnmp {
        host: String,
        /// Default 161.
        port: u16,
        outlet: PlugRef,
        /// Default "apc-rpdu".
        model: String,
        snmp: SnmpCredentials,
    },
    /// driver = "switch-snmp": one switch port by IF-MIB ifAdminStatus.
    SwitchSnmp {
        host: String,
        /// Default 161.
        port: u16,
        /// The `port` key: ifIndex or ifName.
        switch_port: PlugRef,
        snmp: SnmpCredentials,
    },
    /// driver = "fence-agent": a fence-agents program.
    FenceAgent {
        /// Absolute path.
        program: PathBuf,
        /// `options = { ip = "10.0.9.2", lanplus = "1" }`, in file order.
        options: Vec<(String, String)>,
        /// `secret_files = { password = "/etc/tandem/secrets/x" }`, in file order.
        secret_options: Vec<(String, SecretRef)>,
    },
}

impl FenceDriverConfig {
    /// The `driver` value: "ipmi", "pdu-snmp", "switch-snmp" or "fence-agent".
    pub fn name(&self) -> &'static str {
        match self {
            FenceDriverConfig::Ipmi { .. } => "ipmi",
            FenceDriverConfig::PduSnmp { .. } => "pdu-snmp",
            FenceDriverConfig::SwitchSnmp { .. } => "switch-snmp",
            FenceDriverConfig::FenceAgent { .. } => "fence-agent",
        }
    }

    /// What the device acts on, for tables: "10.0.9.2:623", "10.0.9.3:161 outlet 4", ...
    pub fn target(&self) -> String {
        fn hp(host: &str, port: u16) -> String {
            if host.contains(':') {
                format!("[{host}]:{port}")
            } else {
                format!("{host}:{port}")
            }
        }
        match self {
            FenceDriverConfig::Ipmi { host, port, .. } => hp(host, *port),
            FenceDriverConfig::PduSnmp {
                host, port, outlet, ..
            } => format!("{} outlet {outlet}", hp(host, *port)),
            FenceDriverConfig::SwitchSnmp {
                host,
                port,
                switch_port,
                ..
            } => format!("{} port {switch_port}", hp(host, *port)),
            FenceDriverConfig::FenceAgent { program, .. } => program.display().to_string(),
        }
    }
}

/// One `[[fence_level]]`: `node = "lb2"`, `level = 1`, `devices = [{ device = "lb2-bmc" }]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FenceLevelConfig {
    pub node: String,
    /// 1 to 9; level 1 is tried first.
    pub level: u8,
    /// Names of declared `[[fence_device]]`s, all of which must succeed.
    pub devices: Vec<String>,
}

/// Where a value is in the config file, for messages about it that come after parsing (the
/// daemon's, [`check_local`]'s). Displays as `FILE:LINE:COL`, like [`Track::origin`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub file: String,
    /// 1-based.
    pub line: usize,
    /// 1-based, in characters.
    pub col: usize,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.col)
    }
}

/// `[cluster]`: the cluster-wide facts, the same on every node.
///
/// ```toml
/// [cluster]
/// name = "edge"
/// key_file = "/etc/tandem/cluster.key"
/// nodes = [
///   { name = "lb1", address = "10.0.0.1" },
///   { name = "lb2", address = "10.0.0.2" },
///   { name = "arb", address = "10.0.0.3", role = "arbiter" },
/// ]
/// lease = "1s"
/// ```
///
/// The lease keys always have values (their defaults when absent) and are accepted whether or
/// not this node runs Raft ([`Config::raft_enabled`]): they are cluster-wide facts, compared
/// between nodes, and a node without a quorum instance may share its cluster with one.
/// Together they satisfy `lease_renew + lease_margin < lease / 2`, i.e.
/// `2 × lease_renew + lease_margin < lease − lease_margin`: when one renewal is lost, the next
/// one, sent `2 × lease_renew` after the last committed one, still has a whole margin to commit
/// before the holder must let go. The defaults (lease / 4, lease / 10) leave room to spare.
#[derive(Debug, Clone, PartialEq)]
pub struct Cluster {
    /// 1 to 64 bytes of letters, digits, "_", "." and "-"; frames naming another cluster are
    /// dropped.
    pub name: String,
    /// The shared secret's file (absolute path). Never read by this crate: the daemon loads it
    /// (and refuses a mode with group or other bits); [`check_local`] checks its metadata.
    pub key_file: PathBuf,
    /// Every member, this node included (its `[node] name` is one of them, with the same
    /// role): at least two, names and addresses unique, in config order.
    pub nodes: Vec<ClusterNode>,
    /// Where the `key_file` value is, for messages about the file.
    pub key_file_origin: Origin,
    /// How long a VIP holder in quorum mode may keep its VIPs without a committed renewal
    /// (default "1s", [`MIN_LEASE`] to [`MAX_LEASE`]). Shorter fails over faster and commits
    /// more often.
    pub lease: Duration,
    /// How often the holder renews its lease through the Raft log (default lease / 4, at least
    /// [`MIN_LEASE_RENEW`], shorter than lease / 2).
    pub lease_renew: Duration,
    /// Clock-rate allowance (default lease / 10, above zero, shorter than lease / 2). The holder
    /// lets go at `send time of its last committed renewal + lease − lease_margin`; the leader
    /// reassigns only after `lease + lease_margin` without a renewal. The gap of two margins is
    /// what keeps two holders apart while their clocks run at slightly different rates.
    pub lease_margin: Duration,
    /// TCP port of the Raft transport on every member's [`ClusterNode::address`] (default
    /// [`DEFAULT_RAFT_PORT`]); the same on every node because peers are dialled on it.
    pub raft_port: u16,
    /// `unfence = "manual"` (the default) or `"auto"`: who switches a fenced node's fence
    /// devices on again once it is heard again, the operator or the cluster (see [`Unfence`]).
    pub unfence: Unfence,
}

/// `[cluster] unfence`: what happens to the fence devices of a node that was fenced and is
/// heard again (it came back, e.g. over a heartbeat path its fence did not cut).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Unfence {
    /// `"manual"` (the default): only the operator switches the devices on again
    /// (`tandem fence NODE --action on`); the node stays fenced until then.
    #[default]
    Manual,
    /// `"auto"`: the node that hears the fenced node again switches its fence devices on
    /// again by itself.
    Auto,
}

impl Unfence {
    /// `"manual"` or `"auto"`, as in the config file.
    pub fn name(self) -> &'static str {
        match self {
            Unfence::Manual => "manual",
            Unfence::Auto => "auto",
        }
    }
}

/// One entry of `[cluster] nodes`: `{ name = "lb1", address = "10.0.0.1", role = "voter" }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterNode {
    /// Unique in the cluster; 1 to 64 bytes of letters, digits, "_", "." and "-".
    pub name: String,
    /// Unique in the cluster. UDP unicast and TCP heartbeats are sent to it, and bound to it
    /// on the node itself unless the channel sets `bind`.
    pub address: IpAddr,
    /// Default voter.
    pub role: Role,
}

impl Cluster {
    /// The member named `name`.
    pub fn node(&self, name: &str) -> Option<&ClusterNode> {
        self.nodes.iter().find(|n| n.name == name)
    }

    /// Every member but `local`, in config order.
    pub fn peers<'a>(&'a self, local: &'a str) -> impl Iterator<Item = &'a ClusterNode> + 'a {
        self.nodes.iter().filter(move |n| n.name != local)
    }

    /// The members that may hold VIPs (role voter), in config order.
    pub fn voters(&self) -> impl Iterator<Item = &ClusterNode> {
        self.nodes.iter().filter(|n| n.role == Role::Voter)
    }
}

/// One `[[heartbeat]]` channel. Its position in [`Config::heartbeats`] is its id on the wire.
#[derive(Debug, Clone, PartialEq)]
pub struct Heartbeat {
    pub kind: HeartbeatKind,
    /// How often a frame is sent; default "100ms", at least "10ms".
    pub interval: Duration,
    /// A peer is down on this channel after this long without a valid frame; default "500ms",
    /// always longer than `interval`.
    pub timeout: Duration,
    /// Where the entry is (its `[[heartbeat]]` header), for the daemon's messages.
    pub origin: Origin,
    /// Where the `device` value is, for a serial channel; `None` for the other kinds.
    pub device_origin: Option<Origin>,
}

/// Transport of a [`Heartbeat`], from `kind = "..."`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeartbeatKind {
    /// kind = "udp-multicast": `interface` (required) and `group` (required, `"IP:port"`, a
    /// multicast IPv4 or IPv6 address, IPv6 in brackets: `"[ff12::1]:5405"`).
    UdpMulticast {
        interface: String,
        group: SocketAddr,
    },
    /// kind = "udp-unicast": `port` (required) and `bind` (optional). Frames go to every other
    /// node's [`ClusterNode::address`] on `port`; `bind: None` means this node's own address
    /// from `[cluster] nodes` ([`Config::heartbeat_bind`]).
    UdpUnicast { port: u16, bind: Option<IpAddr> },
    /// kind = "tcp": like `UdpUnicast`, over TCP connections to every other node.
    Tcp { port: u16, bind: Option<IpAddr> },
    /// kind = "serial": `device` (required, absolute path; [`check_local`] checks it exists)
    /// and `baud` (default 115200, one of [`SERIAL_BAUD_RATES`]).
    Serial { device: PathBuf, baud: u32 },
}

impl HeartbeatKind {
    /// `"udp-multicast"`, `"udp-unicast"`, `"tcp"` or `"serial"`, as in the config file.
    pub fn name(&self) -> &'static str {
        match self {
            HeartbeatKind::UdpMulticast { .. } => "udp-multicast",
            HeartbeatKind::UdpUnicast { .. } => "udp-unicast",
            HeartbeatKind::Tcp { .. } => "tcp",
            HeartbeatKind::Serial { .. } => "serial",
        }
    }
}

/// `[[check]]`: one health check, referenced by `track_check` in instances.
#[derive(Debug, Clone, PartialEq)]
pub struct Check {
    /// Unique among checks.
    pub name: String,
    pub kind: CheckKind,
    /// Start-to-start period, default "2s".
    pub interval: Duration,
    /// A probe still running at this point has failed; default "1s"; must be < interval.
    pub timeout: Duration,
    /// Successes in a row that make a check up, default 1 (1..=100).
    pub rise: u32,
    /// Failures in a row that make a check down, default 1 (1..=100).
    pub fall: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub enum CheckKind {
    /// kind = "tcp": `host` (IP or name, required) and `port` (required): a TCP connect.
    Tcp { host: String, port: u16 },
    /// kind = "http": `url` (http:// or https://, required), `expect_status` (default 200),
    /// `expect_body` (substring, optional), `tls_verify` (default true), `ca_file` (optional).
    Http {
        url: String,
        expect_status: u16,
        expect_body: Option<String>,
        tls_verify: bool,
        ca_file: Option<PathBuf>,
    },
    /// kind = "script": `script` = a string split on whitespace (keepalived style) or an array
    /// of strings; the first element is the program (absolute path). Exit 0 = success.
    Script { command: Vec<String> },
}

/// One tracked item's effect: weight 0 faults the instance while the item is bad; any other
/// weight (-254..=254) is added to the priority while the item is good (positive weight) or
/// while it is bad (negative weight), keepalived's rule.
#[derive(Debug, Clone, PartialEq)]
pub struct Track {
    /// The interface name, check name, or file path.
    pub target: String,
    pub weight: i32,
    /// Where the entry is in the file, for the daemon's messages ("file:line:col").
    pub origin: String,
}

/// `[[vrrp_sync_group]]`: `name` and `group = ["VI_1", "VI_2"]` (at least two instances,
/// each in at most one group), keepalived's vrrp_sync_group.
#[derive(Debug, Clone, PartialEq)]
pub struct SyncGroup {
    pub name: String,
    pub group: Vec<String>,
}

impl Config {
    /// The `[[check]]` named `name`. Every `track_check` of a validated config finds one.
    pub fn check(&self, name: &str) -> Option<&Check> {
        self.checks.iter().find(|c| c.name == name)
    }

    /// The `[[vrrp_instance]]` named `name`. Every sync group member of a validated config
    /// finds one.
    pub fn instance(&self, name: &str) -> Option<&VrrpInstance> {
        self.vrrp_instances.iter().find(|i| i.name == name)
    }

    /// This node's entry in `[cluster] nodes`; `None` without a `[cluster]`.
    pub fn cluster_node(&self) -> Option<&ClusterNode> {
        self.cluster.as_ref()?.node(&self.node.name)
    }

    /// Whether this node runs the Raft layer: it has a `[cluster]` and either an instance in
    /// quorum mode or an arbiter among the members. An arbiter's only job is to vote, which it
    /// can only do in a log the voters share, so its presence turns Raft on everywhere.
    pub fn raft_enabled(&self) -> bool {
        let Some(cluster) = &self.cluster else {
            return false;
        };
        self.vrrp_instances.iter().any(|i| i.mode == Mode::Quorum)
            || cluster.nodes.iter().any(|n| n.role == Role::Arbiter)
    }

    /// Every member's Raft endpoint, this node included, in config order: (name,
    /// `address:raft_port`, role). Empty without a `[cluster]`; not filtered by
    /// [`Config::raft_enabled`].
    pub fn raft_peers(&self) -> Vec<(&str, SocketAddr, Role)> {
        match &self.cluster {
            Some(c) => c
                .nodes
                .iter()
                .map(|n| {
                    (
                        n.name.as_str(),
                        SocketAddr::new(n.address, c.raft_port),
                        n.role,
                    )
                })
                .collect(),
            None => Vec::new(),
        }
    }

    /// Where a UDP unicast or TCP heartbeat sends: every other cluster node's address on the
    /// channel's port, in config order. Empty for the other kinds (and without a cluster).
    pub fn heartbeat_peers(&self, hb: &Heartbeat) -> Vec<SocketAddr> {
        let (HeartbeatKind::UdpUnicast { port, .. } | HeartbeatKind::Tcp { port, .. }) = hb.kind
        else {
            return Vec::new();
        };
        match &self.cluster {
            Some(c) => c
                .peers(&self.node.name)
                .map(|n| SocketAddr::new(n.address, port))
                .collect(),
            None => Vec::new(),
        }
    }

    /// The local address a UDP unicast or TCP heartbeat binds: its `bind`, else this node's
    /// own address from `[cluster] nodes`. `None` for the other kinds.
    pub fn heartbeat_bind(&self, hb: &Heartbeat) -> Option<IpAddr> {
        match hb.kind {
            HeartbeatKind::UdpUnicast { bind, .. } | HeartbeatKind::Tcp { bind, .. } => {
                bind.or_else(|| self.cluster_node().map(|n| n.address))
            }
            _ => None,
        }
    }

    /// The sync group the instance named `instance` is in, if any (at most one).
    pub fn sync_group_of(&self, instance: &str) -> Option<&SyncGroup> {
        self.sync_groups
            .iter()
            .find(|g| g.group.iter().any(|m| m == instance))
    }

    /// The `[[fence_device]]` named `name`.
    pub fn fence_device(&self, name: &str) -> Option<&FenceDeviceConfig> {
        self.fence_devices.iter().find(|d| d.name == name)
    }

    /// `node`'s `[[fence_level]]`s, by ascending level.
    pub fn fence_levels_of(&self, node: &str) -> Vec<&FenceLevelConfig> {
        let mut levels: Vec<&FenceLevelConfig> = self
            .fence_levels
            .iter()
            .filter(|l| l.node == node)
            .collect();
        levels.sort_by_key(|l| l.level);
        levels
    }
}

impl CheckKind {
    /// `"tcp"`, `"http"` or `"script"`, as in the config file.
    pub fn name(&self) -> &'static str {
        match self {
            CheckKind::Tcp { .. } => "tcp",
            CheckKind::Http { .. } => "http",
            CheckKind::Script { .. } => "script",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct NodeConfig {
    pub name: String,
    pub role: Role,
    /// Default /var/lib/tandem. When this node runs Raft ([`Config::raft_enabled`]: quorum
    /// mode, or an arbiter in the cluster), the Raft log and state machine live here; it must
    /// be on persistent storage, since a committed entry has to survive a restart.
    pub state_dir: PathBuf,
    /// default /run/tandem/tandem.sock
    pub control_socket: PathBuf,
    /// `fence_delay` (default 0, at most [`MAX_FENCE_DELAY`]): in vrrp mode with
    /// `fence_on_takeover`, this node waits `fence_delay` plus a random time of up to
    /// `fence_random_delay` before fencing its peer, so that in a full split (both nodes alive,
    /// neither hearing the other) exactly one node fences the other: the node without a delay
    /// wins the race and survives. Set it on one node of the pair only. Not used in quorum
    /// mode, where the Raft leader fences.
    pub fence_delay: Duration,
    /// `fence_random_delay` (default 0, at most [`MAX_FENCE_DELAY`]): the bound of the random
    /// part added to [`NodeConfig::fence_delay`] before each fence of the peer, for a pair
    /// where neither node is preferred or as extra spread on top of a fixed delay.
    pub fence_random_delay: Duration,
}

/// The longest `[node] fence_delay` and `fence_random_delay` accepted (5 minutes): the VIPs
/// stay down for the delay when the peer really failed, and a longer one is more likely a unit
/// slip than intent.
pub const MAX_FENCE_DELAY: Duration = Duration::from_secs(300);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// May hold VIPs; votes in the Raft quorum when the cluster runs one.
    Voter,
    /// Votes but never holds a VIP: the third member that lets a pair of load balancers keep
    /// a majority when one fails. Needs a `[cluster]`; its Raft log is in `[node] state_dir`.
    Arbiter,
}

impl Role {
    /// `"voter"` or `"arbiter"`, as in the config file.
    pub fn name(self) -> &'static str {
        match self {
            Role::Voter => "voter",
            Role::Arbiter => "arbiter",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VrrpVersion {
    V2,
    V3,
}

/// An instance's safety mode, `mode = "vrrp"` (default) or `"quorum"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// The master elected on the wire holds the VIPs, as with keepalived.
    Vrrp,
    /// Only the holder of the group's lease, granted through the Raft log by the majority
    /// side, holds the VIPs, so a partitioned minority lets go before its lease ends. Needs a
    /// `[cluster]` of at least three members (voters and arbiters); timing in [`Cluster::lease`]
    /// and the fields after it; the Raft log lives in `[node] state_dir`.
    Quorum,
}

impl Mode {
    /// `"vrrp"` or `"quorum"`, as in the config file.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Vrrp => "vrrp",
            Mode::Quorum => "quorum",
        }
    }
}

#[derive(Clone, PartialEq, Eq)]
pub enum Authentication {
    /// auth_type = "PASS": the password, 1..=8 bytes.
    Pass(String),
}

/// Redacted: secrets never appear in logs or status output, and a `{:?}` of a config is the
/// easiest way for one to get there.
impl fmt::Debug for Authentication {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Authentication::Pass(_) => f.write_str("Pass(<redacted>)"),
        }
    }
}

/// IPv4 or IPv6.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AddressFamily {
    V4,
    V6,
}

impl AddressFamily {
    pub fn of(addr: IpAddr) -> Self {
        match addr {
            IpAddr::V4(_) => AddressFamily::V4,
            IpAddr::V6(_) => AddressFamily::V6,
        }
    }

    /// The longest prefix length of the family: 32 or 128.
    pub fn max_prefix_len(self) -> u8 {
        match self {
            AddressFamily::V4 => 32,
            AddressFamily::V6 => 128,
        }
    }
}

impl fmt::Display for AddressFamily {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AddressFamily::V4 => "IPv4",
            AddressFamily::V6 => "IPv6",
        })
    }
}

/// An address with its prefix length, e.g. `192.168.1.100/24`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpPrefix {
    pub addr: IpAddr,
    pub prefix_len: u8,
}

impl IpPrefix {
    pub fn family(&self) -> AddressFamily {
        AddressFamily::of(self.addr)
    }
}

/// `addr/prefix_len`, always with the prefix length; parses back with `FromStr`.
impl fmt::Display for IpPrefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix_len)
    }
}

/// Why a string is not an `addr` or `addr/prefix`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IpPrefixError {
    #[error("{0:?} is not an IPv4 or IPv6 address")]
    Address(String),
    #[error("prefix length {0:?} is not a number")]
    PrefixNotNumber(String),
    #[error("prefix length {len} is too long for {family} (at most {})", family.max_prefix_len())]
    PrefixTooLong { len: String, family: AddressFamily },
}

/// `"192.0.2.100/24"`, or `"192.0.2.100"` meaning a host prefix (/32, or /128 for IPv6).
impl FromStr for IpPrefix {
    type Err = IpPrefixError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (addr_text, len_text) = match s.split_once('/') {
            Some((a, l)) => (a, Some(l)),
            None => (s, None),
        };
        let addr: IpAddr = addr_text
            .parse()
            .map_err(|_| IpPrefixError::Address(addr_text.to_string()))?;
        let family = AddressFamily::of(addr);
        let prefix_len = match len_text {
            None => family.max_prefix_len(),
            Some(l) => {
                // Digits only: u32::from_str would also take "+24".
                if l.is_empty() || !l.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(IpPrefixError::PrefixNotNumber(l.to_string()));
                }
                match l.parse::<u8>() {
                    Ok(len) if len <= family.max_prefix_len() => len,
                    _ => {
                        return Err(IpPrefixError::PrefixTooLong {
                            len: l.to_string(),
                            family,
                        })
                    }
                }
            }
        };
        Ok(IpPrefix { addr, prefix_len })
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct VrrpInstance {
    pub name: String,
    pub interface: String,
    pub virtual_router_id: u8,
    pub priority: u8,
    pub version: VrrpVersion,
    pub advert_int: Duration,
    pub virtual_ipaddress: Vec<IpPrefix>,
    pub preempt: bool,
    pub preempt_delay: Duration,
    pub accept_mode: bool,
    pub mode: Mode,
    pub unicast_src_ip: Option<IpAddr>,
    pub unicast_peer: Vec<IpAddr>,
    pub authentication: Option<Authentication>,
    pub garp_master_delay: Duration,
    pub garp_master_repeat: u32,
    pub garp_master_refresh: Duration,
    pub garp_master_refresh_repeat: u32,
    pub garp_lower_prio_repeat: u32,
    pub higher_prio_send_advert: bool,
    /// `fence_on_takeover = true` (default false): the node that would take over fences the
    /// holder first and takes the VIPs only once the fence is verified. In `vrrp` mode the
    /// backup fences a peer that is silent on every heartbeat channel (after
    /// [`NodeConfig::fence_delay`]); in `quorum` mode the Raft leader fences a silent holder
    /// and then reassigns at once. Needs a `[cluster]`; in `vrrp` mode it must be a pair (two
    /// nodes, no arbiter); every other voter of `[cluster] nodes` needs a `[[fence_level]]`.
    pub fence_on_takeover: bool,
    /// `track_interface = ["eth1", { interface = "eth2", weight = -20 }]`: a bare name is
    /// weight 0 (down = FAULT).
    pub track_interface: Vec<Track>,
    /// `track_check = [{ check = "haproxy", weight = 0 }]`: names a `[[check]]`.
    pub track_check: Vec<Track>,
    /// `track_file = [{ file = "/run/lb/weight", weight = 10 }]`: keepalived's track_file; the
    /// file holds an integer; weight 0: a non-zero value faults; else value × weight is added.
    pub track_file: Vec<Track>,
    /// `notify = "/etc/tandem/notify.sh"`: run on every transition as
    /// `notify INSTANCE NAME STATE PRIORITY` (keepalived's arguments). Absolute path.
    pub notify: Option<PathBuf>,
    /// `notify_timeout`, default "10s": a notify script still running then is killed.
    pub notify_timeout: Duration,
}

impl VrrpInstance {
    /// The family the adverts are sent in: that of the first virtual IP. (A validated instance
    /// always has one; an empty list, possible only when built by hand, counts as IPv4.)
    pub fn advert_family(&self) -> AddressFamily {
        self.virtual_ipaddress
            .first()
            .map_or(AddressFamily::V4, IpPrefix::family)
    }

    /// The virtual IPs listed in adverts: those of the advert family, in config order.
    pub fn advertised_addresses(&self) -> impl Iterator<Item = &IpPrefix> {
        let family = self.advert_family();
        self.virtual_ipaddress
            .iter()
            .filter(move |p| p.family() == family)
    }

    /// The virtual IPs of the other family: configured and removed with the instance but not
    /// in its adverts (keepalived's `virtual_ipaddress_excluded`). Only possible with VRRPv3.
    pub fn carried_addresses(&self) -> impl Iterator<Item = &IpPrefix> {
        let family = self.advert_family();
        self.virtual_ipaddress
            .iter()
            .filter(move |p| p.family() != family)
    }
}

/// One problem in a config file, printed as `file:line:col: message` then `  hint: ...`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub file: String,
    pub line: usize,
    pub col: usize,
    pub message: String,
    pub hint: Option<String>,
}

/// `FILE:LINE:COL: MESSAGE`, and `  hint: HINT` on a second line when there is a hint. No
/// trailing newline.
impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.file, self.line, self.col, self.message
        )?;
        if let Some(hint) = &self.hint {
            write!(f, "\n  hint: {hint}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Diagnostic {}

/// Every problem found in a file (never just the first one when more can be found).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl Diagnostics {
    pub fn iter(&self) -> std::slice::Iter<'_, Diagnostic> {
        self.0.iter()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl<'a> IntoIterator for &'a Diagnostics {
    type Item = &'a Diagnostic;
    type IntoIter = std::slice::Iter<'a, Diagnostic>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

/// Each diagnostic followed by a newline, ready for `eprint!`.
impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for d in &self.0 {
            writeln!(f, "{d}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Diagnostics {}

/// Read and validate a config file.
///
/// A file that cannot be read (missing, unreadable, not UTF-8) gives one diagnostic at 1:1.
pub fn load(path: &Path) -> Result<Config, Diagnostics> {
    match std::fs::read_to_string(path) {
        Ok(text) => parse(&text, path),
        Err(e) => Err(Diagnostics(vec![Diagnostic {
            file: path.display().to_string(),
            line: 1,
            col: 1,
            message: format!("cannot read the config: {e}"),
            hint: None,
        }])),
    }
}

/// Validate config text; `file` names it in diagnostics.
///
/// On failure the diagnostics are in file order. A TOML syntax error is a single diagnostic:
/// past it there is no tree to check.
pub fn parse(text: &str, file: &Path) -> Result<Config, Diagnostics> {
    let mut ctx = validate::Ctx::new(file, text);
    let doc = match toml_edit::ImDocument::parse(text) {
        Ok(doc) => doc,
        Err(e) => {
            // toml_edit's message is "what failed" then "expected ..." lines: the first is the
            // message, the rest make the hint.
            let mut lines = e.message().lines().filter(|l| !l.trim().is_empty());
            let message = format!(
                "TOML syntax error: {}",
                lines.next().unwrap_or("invalid TOML")
            );
            let rest: Vec<&str> = lines.collect();
            let hint = (!rest.is_empty()).then(|| rest.join("; "));
            ctx.error(e.span(), message, hint);
            return Err(Diagnostics(ctx.diags));
        }
    };
    match validate::check(doc.as_table(), &mut ctx, file) {
        Some(config) => Ok(config),
        None => {
            let mut diags = ctx.diags;
            if diags.is_empty() {
                // Every path that yields no config records why; this guards that promise
                // without panicking in the daemon.
                diags.push(Diagnostic {
                    file: file.display().to_string(),
                    line: 1,
                    col: 1,
                    message: "internal error: the config was refused without a reason".into(),
                    hint: Some("please report this as a tandem bug".into()),
                });
            }
            // Stable: diagnostics at the same position keep the order they were found in.
            diags.sort_by_key(|d| (d.line, d.col));
            Err(Diagnostics(diags))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_ok(text: &str) -> Config {
        match parse(text, Path::new("t.toml")) {
            Ok(c) => c,
            Err(d) => panic!("unexpected diagnostics:\n{d}"),
        }
    }

    fn parse_err(text: &str) -> String {
        match parse(text, Path::new("t.toml")) {
            Ok(c) => panic!("accepted: {c:?}"),
            Err(d) => d.to_string(),
        }
    }

    const MINIMAL: &str = r#"
[node]
name = "lb1"

[[vrrp_instance]]
name = "VI_1"
interface = "eth0"
virtual_router_id = 51
virtual_ipaddress = ["192.0.2.100/24"]
"#;

    #[test]
    fn minimal_config_gets_keepalived_defaults() {
        let c = parse_ok(MINIMAL);
        assert_eq!(c.path, Path::new("t.toml"));
        assert_eq!(c.node.role, Role::Voter);
        assert_eq!(c.node.state_dir, Path::new(DEFAULT_STATE_DIR));
        assert_eq!(c.node.control_socket, Path::new(DEFAULT_CONTROL_SOCKET));
        assert_eq!(c.node.fence_delay, Duration::ZERO);
        assert_eq!(c.node.fence_random_delay, Duration::ZERO);
        let i = &c.vrrp_instances[0];
        assert_eq!(i.priority, 100);
        assert_eq!(i.version, VrrpVersion::V3);
        assert_eq!(i.advert_int, Duration::from_secs(1));
        assert!(i.preempt);
        assert_eq!(i.preempt_delay, Duration::ZERO);
        assert!(i.accept_mode);
        assert_eq!(i.mode, Mode::Vrrp);
        assert_eq!(i.unicast_src_ip, None);
        assert!(i.unicast_peer.is_empty());
        assert_eq!(i.authentication, None);
        assert_eq!(i.garp_master_delay, Duration::from_secs(5));
        assert_eq!(i.garp_master_repeat, 5);
        assert_eq!(i.garp_master_refresh, Duration::ZERO);
        assert_eq!(i.garp_master_refresh_repeat, 1);
        assert_eq!(i.garp_lower_prio_repeat, 5);
        assert!(i.higher_prio_send_advert);
        assert!(!i.fence_on_takeover);
        assert!(i.track_interface.is_empty());
        assert!(i.track_check.is_empty());
        assert!(i.track_file.is_empty());
        assert_eq!(i.notify, None);
        assert_eq!(i.notify_timeout, Duration::from_secs(10));
        assert!(c.checks.is_empty());
        assert!(c.sync_groups.is_empty());
        assert_eq!(c.cluster, None);
        assert!(c.heartbeats.is_empty());
        assert_eq!(
            i.virtual_ipaddress,
            vec![IpPrefix {
                addr: "192.0.2.100".parse().unwrap(),
                prefix_len: 24
            }]
        );
    }

    #[test]
    fn host_prefix_is_the_default() {
        let c = parse_ok(
            &MINIMAL.replace(r#"["192.0.2.100/24"]"#, r#"["192.0.2.100", "2001:db8::1"]"#),
        );
        let vips = &c.vrrp_instances[0].virtual_ipaddress;
        assert_eq!(vips[0].prefix_len, 32);
        assert_eq!(vips[1].prefix_len, 128);
    }

    #[test]
    fn other_family_addresses_are_carried_not_advertised() {
        let c = parse_ok(&MINIMAL.replace(
            r#"["192.0.2.100/24"]"#,
            r#"["192.0.2.100/24", "2001:db8::100/64", "192.0.2.101/24"]"#,
        ));
        let i = &c.vrrp_instances[0];
        assert_eq!(i.advert_family(), AddressFamily::V4);
        let adv: Vec<String> = i.advertised_addresses().map(|p| p.to_string()).collect();
        let carried: Vec<String> = i.carried_addresses().map(|p| p.to_string()).collect();
        assert_eq!(adv, ["192.0.2.100/24", "192.0.2.101/24"]);
        assert_eq!(carried, ["2001:db8::100/64"]);
    }

    #[test]
    fn inline_tables_and_dotted_keys_are_the_same_config() {
        let a = parse_ok(
            r#"
node = { name = "lb1" }
vrrp_instance = [{ name = "VI_1", interface = "eth0", virtual_router_id = 1, version = 2, virtual_ipaddress = ["10.0.0.1"], authentication.auth_type = "PASS", authentication.auth_pass = "x" }]
"#,
        );
        let b = parse_ok(
            r#"
[node]
name = "lb1"
[[vrrp_instance]]
name = "VI_1"
interface = "eth0"
virtual_router_id = 1
version = 2
virtual_ipaddress = ["10.0.0.1"]
[vrrp_instance.authentication]
auth_type = "PASS"
auth_pass = "x"
"#,
        );
        assert_eq!(a, b);
        assert_eq!(
            a.vrrp_instances[0].authentication,
            Some(Authentication::Pass("x".into()))
        );
    }

    /// An arbiter in a cluster, with its heartbeat: what every arbiter needs.
    const ARBITER: &str =
        "[node]\nname = \"arb\"\nrole = \"arbiter\"\n[cluster]\nname = \"edge\"\n\
         key_file = \"/k\"\nnodes = [{ name = \"lb1\", address = \"10.0.0.1\" }, \
         { name = \"arb\", address = \"10.0.0.3\", role = \"arbiter\" }]\n\
         [[heartbeat]]\nkind = \"tcp\"\nport = 5406\n";

    #[test]
    fn arbiter_needs_no_instance_and_may_not_have_one() {
        let c = parse_ok(ARBITER);
        assert_eq!(c.node.role, Role::Arbiter);
        assert!(c.vrrp_instances.is_empty());
        let e = parse_err(&MINIMAL.replace("name = \"lb1\"", "name = \"lb1\"\nrole = \"arbiter\""));
        assert!(e.contains("an arbiter never holds a virtual IP"), "{e}");
    }

    #[test]
    fn a_voter_needs_an_instance() {
        let e = parse_err("[node]\nname = \"lb1\"\n");
        assert_eq!(
            e,
            "t.toml:1:1: no [[vrrp_instance]]: a voter needs at least one\n  hint: add \
             [[vrrp_instance]] with name, interface, virtual_router_id and virtual_ipaddress\n"
        );
    }

    #[test]
    fn unreadable_file_is_one_diagnostic_at_1_1() {
        let d = load(Path::new("/nonexistent/tandem.toml")).unwrap_err();
        assert_eq!(d.len(), 1);
        assert_eq!((d.0[0].line, d.0[0].col), (1, 1));
        assert!(d.0[0].message.starts_with("cannot read the config: "));
        assert_eq!(d.0[0].file, "/nonexistent/tandem.toml");
    }

    #[test]
    fn not_utf8_is_one_diagnostic() {
        let path = std::env::temp_dir().join(format!("tandem-config-{}.toml", std::process::id()));
        std::fs::write(&path, b"[node]\nname = \"\xff\"\n").unwrap();
        let d = load(&path).unwrap_err();
        std::fs::remove_file(&path).unwrap();
        assert_eq!(d.len(), 1);
        assert!(d.0[0].message.contains("UTF-8"), "{d}");
    }

    #[test]
    fn column_counts_characters_after_multibyte_text() {
        // "Zürich" has a 2-byte "ü": the bad value starts at character 25, byte 26.
        let text = MINIMAL.replace("name = \"lb1\"", "name = \"lb1\" # Zürich ✓\nrole = 5");
        let d = parse(&text, Path::new("t.toml")).unwrap_err();
        assert_eq!(d.0[0].message, "role: expected a string, found an integer");
        assert_eq!((d.0[0].line, d.0[0].col), (4, 8));
        let text = MINIMAL.replace("\"VI_1\"", "\"VI_ü\"");
        let d = parse(&text, Path::new("t.toml")).unwrap_err();
        assert_eq!((d.0[0].line, d.0[0].col), (6, 8));
        let text = "[node]\nname = \"Zürich\"; x\n";
        let d = parse(text, Path::new("t.toml")).unwrap_err();
        // The stray ';' is the 16th character but the 17th byte of its line.
        assert_eq!((d.0[0].line, d.0[0].col), (2, 16), "{d}");
    }

    #[test]
    fn display_formats() {
        let d = Diagnostic {
            file: "a.toml".into(),
            line: 3,
            col: 7,
            message: "m".into(),
            hint: Some("h".into()),
        };
        assert_eq!(d.to_string(), "a.toml:3:7: m\n  hint: h");
        let e = Diagnostic {
            hint: None,
            ..d.clone()
        };
        assert_eq!(e.to_string(), "a.toml:3:7: m");
        assert_eq!(
            Diagnostics(vec![d, e]).to_string(),
            "a.toml:3:7: m\n  hint: h\na.toml:3:7: m\n"
        );
    }

    #[test]
    fn ip_prefix_parses_and_displays() {
        let p: IpPrefix = "192.0.2.1/24".parse().unwrap();
        assert_eq!(p.to_string(), "192.0.2.1/24");
        assert_eq!(
            "fd00::1".parse::<IpPrefix>().unwrap().to_string(),
            "fd00::1/128"
        );
        assert_eq!(
            "10.0.0.1/33".parse::<IpPrefix>(),
            Err(IpPrefixError::PrefixTooLong {
                len: "33".into(),
                family: AddressFamily::V4
            })
        );
        assert_eq!(
            "10.0.0.1/+3".parse::<IpPrefix>(),
            Err(IpPrefixError::PrefixNotNumber("+3".into()))
        );
        assert_eq!(
            "10.0.0.1/99999999999"
                .parse::<IpPrefix>()
                .unwrap_err()
                .to_string(),
            "prefix length 99999999999 is too long for IPv4 (at most 32)"
        );
        assert!("fe80::1%eth0".parse::<IpPrefix>().is_err());
    }

    /// Rules not covered by a fixture of their own: each line adds keys to MINIMAL's instance
    /// and expects one diagnostic containing the given text.
    #[test]
    fn instance_rules() {
        let cases: &[(&str, &str)] = &[
            (
                "advert_int = \"5ms\"",
                "5ms is out of range for VRRPv3 (10ms to 40.95s)",
            ),
            ("advert_int = \"41s\"", "41s is out of range for VRRPv3"),
            ("advert_int = \"0s\"", "0s is out of range for VRRPv3"),
            (
                "version = 2\nadvert_int = \"0s\"",
                "0s is out of range for VRRPv2 (1s to 255s)",
            ),
            (
                "version = 2\nadvert_int = \"256s\"",
                "out of range for VRRPv2",
            ),
            ("version = 4", "version: must be 2 or 3, found 4"),
            ("priority = 256", "priority: must be 1 to 255, found 256"),
            (
                "preempt_delay = \"1001s\"",
                "longer than the maximum of 1000s",
            ),
            ("garp_master_refresh = \"100ms\"", "is too frequent"),
            (
                "garp_master_repeat = 0",
                "garp_master_repeat: must be 1 to 255, found 0",
            ),
            ("garp_lower_prio_repeat = 256", "must be 0 to 255"),
            ("mode = \"vrp\"", "did you mean \"vrrp\"?"),
            (
                "unicast_peer = [\"10.0.0.1\"]\nunicast_src_ip = \"10.0.0.1\"",
                "is this node's own unicast_src_ip",
            ),
            (
                "unicast_src_ip = \"192.0.2.100\"",
                "is one of this instance's virtual IPs",
            ),
            (
                "unicast_peer = [\"224.0.0.18\"]",
                "cannot be a unicast address",
            ),
            (
                "fence_on_takeover = true",
                "fence_on_takeover: needs a [cluster] section",
            ),
            (
                "fence_on_takeover = 1",
                "expected true or false, found an integer",
            ),
            (
                "version = 2\nauthentication = { auth_type = \"pass\", auth_pass = \"x\" }",
                "did you mean \"PASS\"?",
            ),
            (
                "version = 2\nauthentication = { auth_type = \"PASS\", auth_pass = \"\" }",
                "auth_pass: must not be empty",
            ),
            (
                "version = 2\nauthentication = \"PASS\"",
                "authentication: expected a table, found a string",
            ),
            (
                "advert_int = 1.5",
                "expected a duration string, found a float",
            ),
        ];
        for (extra, want) in cases {
            let text = MINIMAL.replace(
                "virtual_router_id = 51",
                &format!("virtual_router_id = 51\n{extra}"),
            );
            let got = parse_err(&text);
            assert!(got.contains(want), "{extra:?}: wanted {want:?} in\n{got}");
            assert_eq!(
                got.matches("t.toml:").count(),
                1,
                "{extra:?}: one diagnostic\n{got}"
            );
        }
    }

    #[test]
    fn value_rules() {
        let cases: &[(&str, &str, &str)] = &[
            ("\"192.0.2.100/24\"", "\"127.0.0.1\"", "a loopback address"),
            (
                "\"192.0.2.100/24\"",
                "\"0.0.0.0\"",
                "the unspecified address",
            ),
            ("\"192.0.2.100/24\"", "\"ff02::1\"", "a multicast address"),
            (
                "\"192.0.2.100/24\"",
                "\"255.255.255.255\"",
                "the broadcast address",
            ),
            (
                "\"192.0.2.100/24\"",
                "\"2001:db8::1/129\"",
                "too long for IPv6 (at most 128)",
            ),
            (
                "\"192.0.2.100/24\"",
                "\"10.0.0.1/x\"",
                "prefix length \"x\" is not a number",
            ),
            (
                "\"192.0.2.100/24\"",
                "5",
                "virtual_ipaddress: expected a string, found an integer",
            ),
            ("\"eth0\"", "\"eth0:1\"", "contains \":\""),
            ("\"eth0\"", "\"..\"", "not a valid interface name"),
            ("\"eth0\"", "\"\"", "interface: must not be empty"),
            ("\"VI_1\"", "\"VI 1\"", "contains \" \""),
        ];
        for (from, to, want) in cases {
            let text = MINIMAL.replacen(from, to, 1);
            assert_ne!(text, MINIMAL);
            let got = parse_err(&text);
            assert!(got.contains(want), "{to}: wanted {want:?} in\n{got}");
        }
        // 15 bytes is the longest interface name Linux takes.
        parse_ok(&MINIMAL.replace("\"eth0\"", "\"abcdefghijklmno\""));
    }

    #[test]
    fn node_rules() {
        let long = format!("/run/{}.sock", "x".repeat(100));
        let cases: &[(&str, &str)] = &[
            ("role = \"arbitre\"", "did you mean \"arbiter\"?"),
            (
                &format!("control_socket = \"{long}\""),
                "longer than a Unix socket path can be (107)",
            ),
            (
                "control_socket = \"tandem.sock\"",
                "control_socket: must be an absolute path",
            ),
            ("nmae = \"x\"", "did you mean \"name\"?"),
            (
                "fence_delay = \"10m\"",
                "t.toml:4:15: fence_delay: 10m is longer than the maximum of 5m",
            ),
            (
                "fence_random_delay = \"301s\"",
                "t.toml:4:22: fence_random_delay: 301s is longer than the maximum of 5m",
            ),
            ("fence_delay = 5", "fence_delay: expected a duration string"),
            ("fence_dleay = \"1s\"", "did you mean \"fence_delay\"?"),
        ];
        for (extra, want) in cases {
            let text = MINIMAL.replace("name = \"lb1\"", &format!("name = \"lb1\"\n{extra}"));
            let got = parse_err(&text);
            assert!(got.contains(want), "{extra:?}: wanted {want:?} in\n{got}");
        }
        let got = parse_err(&MINIMAL.replace("[node]\nname = \"lb1\"", "node = \"lb1\""));
        assert!(
            got.contains("node: expected a table, found a string"),
            "{got}"
        );
        let got = parse_err(&MINIMAL.replace("name = \"lb1\"", "name = \"\""));
        assert!(got.contains("name: must not be empty"), "{got}");
    }

    #[test]
    fn fence_delays_are_read_up_to_the_maximum() {
        let c = parse_ok(&MINIMAL.replace(
            "name = \"lb1\"",
            "name = \"lb1\"\nfence_delay = \"5m\"\nfence_random_delay = \"1.5s\"",
        ));
        assert_eq!(c.node.fence_delay, MAX_FENCE_DELAY);
        assert_eq!(c.node.fence_random_delay, Duration::from_millis(1500));
        let c =
            parse_ok(&MINIMAL.replace("name = \"lb1\"", "name = \"lb1\"\nfence_delay = \"0s\""));
        assert_eq!(c.node.fence_delay, Duration::ZERO);
    }

    #[test]
    fn same_vrid_is_fine_on_another_interface() {
        let second = MINIMAL
            .split("[[vrrp_instance]]")
            .nth(1)
            .unwrap()
            .replace("VI_1", "VI_2")
            .replace("eth0", "eth1")
            .replace("192.0.2.100", "192.0.2.200");
        let c = parse_ok(&format!("{MINIMAL}\n[[vrrp_instance]]{second}"));
        assert_eq!(c.vrrp_instances.len(), 2);
        assert_eq!(c.vrrp_instances[1].interface, "eth1");
    }

    #[test]
    fn top_level_strays() {
        let got = parse_err(&format!("prority = 1\n{MINIMAL}"));
        assert!(
            got.starts_with("t.toml:1:1: unknown key \"prority\" at the top level"),
            "{got}"
        );
        let got = parse_err(&MINIMAL.replace("[node]", "[nod]"));
        assert!(
            got.contains("unknown section [nod]\n  hint: did you mean [node]?"),
            "{got}"
        );
        assert!(!got.contains("missing [node] section"), "{got}");
        // A key after a [[table]] belongs to that table, however it is indented.
        let got = parse_err(&format!("{MINIMAL}\nvrrp_instance = 3"));
        assert!(
            got.contains("unknown key \"vrrp_instance\" in [[vrrp_instance]]"),
            "{got}"
        );
    }

    #[test]
    fn syntax_error_keeps_the_parser_detail_as_hint() {
        let d = parse("[node\nname = \"x\"\n", Path::new("t.toml")).unwrap_err();
        assert_eq!(d.len(), 1);
        let d = &d.0[0];
        assert_eq!((d.line, d.col), (1, 6));
        assert_eq!(d.message, "TOML syntax error: invalid table header");
        assert!(
            d.hint.as_deref().unwrap_or("").starts_with("expected"),
            "{d}"
        );
    }

    /// MINIMAL with `extra` added to its instance, then `rest` (more sections) appended.
    fn with_instance_keys(extra: &str, rest: &str) -> String {
        let text = MINIMAL.replace(
            "virtual_router_id = 51",
            &format!("virtual_router_id = 51\n{extra}"),
        );
        format!("{text}{rest}")
    }

    /// Exactly one diagnostic, containing `want`.
    fn assert_one_error(text: &str, want: &str, what: &str) {
        let got = parse_err(text);
        assert!(got.contains(want), "{what}: wanted {want:?} in\n{got}");
        assert_eq!(
            got.matches("t.toml:").count(),
            1,
            "{what}: one diagnostic\n{got}"
        );
    }

    const WEB_CHECK: &str =
        "\n[[check]]\nname = \"web\"\nkind = \"http\"\nurl = \"http://127.0.0.1/\"\n";

    #[test]
    fn checks_get_their_defaults() {
        let c = parse_ok(&format!(
            r#"{MINIMAL}
[[check]]
name = "db"
kind = "tcp"
host = "::1"
port = 5432

[[check]]
name = "web"
kind = "http"
url = "https://lb.example/health"

[[check]]
name = "s1"
kind = "script"
script = "  /usr/bin/pgrep   -x haproxy "

[[check]]
name = "s2"
kind = "script"
script = ["/bin/sh", "-c", "test -e /run/ok"]
interval = "500ms"
timeout = "100ms"
rise = 3
fall = 100
"#
        ));
        // Nothing tracks these checks, which is fine: they run and show in status.
        assert!(c.vrrp_instances[0].track_check.is_empty());
        assert_eq!(
            c.checks[0],
            Check {
                name: "db".into(),
                kind: CheckKind::Tcp {
                    host: "::1".into(),
                    port: 5432
                },
                interval: DEFAULT_CHECK_INTERVAL,
                timeout: DEFAULT_CHECK_TIMEOUT,
                rise: 1,
                fall: 1,
            }
        );
        assert_eq!(DEFAULT_CHECK_INTERVAL, Duration::from_secs(2));
        assert_eq!(DEFAULT_CHECK_TIMEOUT, Duration::from_secs(1));
        assert_eq!(
            c.check("web").unwrap().kind,
            CheckKind::Http {
                url: "https://lb.example/health".into(),
                expect_status: 200,
                expect_body: None,
                tls_verify: true,
                ca_file: None,
            }
        );
        assert_eq!(
            c.check("s1").unwrap().kind,
            CheckKind::Script {
                command: vec!["/usr/bin/pgrep".into(), "-x".into(), "haproxy".into()]
            }
        );
        let s2 = c.check("s2").unwrap();
        assert_eq!(
            s2.kind,
            CheckKind::Script {
                command: vec!["/bin/sh".into(), "-c".into(), "test -e /run/ok".into()]
            }
        );
        assert_eq!(
            (s2.interval, s2.timeout, s2.rise, s2.fall),
            (
                Duration::from_millis(500),
                Duration::from_millis(100),
                3,
                100
            )
        );
        let kinds: Vec<&str> = c.checks.iter().map(|c| c.kind.name()).collect();
        assert_eq!(kinds, ["tcp", "http", "script", "script"]);
        assert!(c.check("nope").is_none());
    }

    #[test]
    fn tracks_and_notify_with_their_origins() {
        let c = parse_ok(&with_instance_keys(
            r#"track_interface = ["eth1", { interface = "eth2", weight = -20 }]
track_check = [{ check = "web", weight = 30 }]
track_file = [{ file = "/run/w" }]
notify = "/etc/tandem/notify.sh"
notify_timeout = "100ms""#,
            WEB_CHECK,
        ));
        let i = &c.vrrp_instances[0];
        let t = |target: &str, weight: i32, origin: &str| Track {
            target: target.into(),
            weight,
            origin: origin.into(),
        };
        // MINIMAL starts with an empty line: the instance's keys start on line 6.
        assert_eq!(
            i.track_interface,
            [t("eth1", 0, "t.toml:9:20"), t("eth2", -20, "t.toml:9:28")]
        );
        assert_eq!(i.track_check, [t("web", 30, "t.toml:10:16")]);
        assert_eq!(i.track_file, [t("/run/w", 0, "t.toml:11:15")]);
        assert_eq!(
            i.notify.as_deref(),
            Some(Path::new("/etc/tandem/notify.sh"))
        );
        assert_eq!(i.notify_timeout, Duration::from_millis(100));
    }

    #[test]
    fn track_entries_may_be_written_as_tables() {
        let c = parse_ok(&format!(
            "{MINIMAL}\n[[vrrp_instance.track_check]]\ncheck = \"web\"\nweight = -5\n{WEB_CHECK}"
        ));
        let tracks = &c.vrrp_instances[0].track_check;
        assert_eq!(tracks.len(), 1);
        assert_eq!((tracks[0].target.as_str(), tracks[0].weight), ("web", -5));
        assert_eq!(tracks[0].origin, "t.toml:11:1");
    }

    #[test]
    fn an_address_owner_may_track_with_weight_zero() {
        let c = parse_ok(&with_instance_keys(
            "priority = 255\ntrack_interface = [\"eth1\"]\ntrack_check = [{ check = \"web\" }]",
            WEB_CHECK,
        ));
        assert_eq!(c.vrrp_instances[0].track_check[0].weight, 0);
    }

    #[test]
    fn sync_groups_and_lookups() {
        let second = MINIMAL
            .split("[[vrrp_instance]]")
            .nth(1)
            .unwrap()
            .replace("VI_1", "VI_2")
            .replace("eth0", "eth1")
            .replace("192.0.2.100", "198.51.100.1");
        let c = parse_ok(&format!(
            "{MINIMAL}\n[[vrrp_instance]]{second}\n[[vrrp_sync_group]]\nname = \"G\"\n\
             group = [\"VI_2\", \"VI_1\"]\n"
        ));
        assert_eq!(
            c.sync_groups,
            [SyncGroup {
                name: "G".into(),
                group: vec!["VI_2".into(), "VI_1".into()]
            }]
        );
        assert_eq!(c.sync_group_of("VI_1").unwrap().name, "G");
        assert!(c.sync_group_of("VI_3").is_none());
        assert_eq!(c.instance("VI_2").unwrap().interface, "eth1");
        assert!(c.instance("VI_3").is_none());
    }

    #[test]
    fn an_arbiter_may_run_checks() {
        let c = parse_ok(&format!("{ARBITER}{WEB_CHECK}"));
        assert_eq!(c.checks.len(), 1);
    }

    /// Each case is the body of a [[check]] named "c" and gives one diagnostic.
    #[test]
    fn check_rules() {
        let cases: &[(&str, &str)] = &[
            (
                "kind = \"tcp\"\nhost = \"10.0.0.1\"\nport = 0",
                "port: must be 1 to 65535, found 0",
            ),
            (
                "kind = \"tcp\"\nhost = \"10.0.0.1\"\nport = 65536",
                "port: must be 1 to 65535, found 65536",
            ),
            (
                "kind = \"tcp\"\nhost = \"db.example:5432\"\nport = 5432",
                "\"db.example:5432\" includes a port",
            ),
            ("kind = \"tcp\"\nhost = \"a..b\"\nport = 1", "empty label"),
            (
                "kind = \"tcp\"\nhost = \"10.0.0.256\"\nport = 1",
                "not a valid IPv4 address",
            ),
            ("kind = \"tcp\"\nhost = \"[::1]\"\nport = 1", "has brackets"),
            (
                "kind = \"tcp\"\nhost = \"224.0.0.18\"\nport = 1",
                "is a multicast address",
            ),
            (
                "kind = \"tcp\"\nhost = \"\"\nport = 1",
                "host: must not be empty",
            ),
            (
                "kind = \"tcp\"\nhost = \"-lb.example\"\nport = 1",
                "starts or ends with \"-\"",
            ),
            (
                "kind = \"tcp\"\nport = 1",
                "[[check]] is missing the required key \"host\"",
            ),
            (
                "kind = \"http\"\nurl = \"http://x/\"\nexpect_status = 600",
                "expect_status: must be 100 to 599, found 600",
            ),
            (
                "kind = \"http\"\nurl = \"http://x/\"\nexpect_body = \"\"",
                "expect_body: must not be empty",
            ),
            (
                "kind = \"http\"\nurl = \"https://x/\"\nca_file = \"ca.pem\"",
                "ca_file: must be an absolute path, found \"ca.pem\"",
            ),
            (
                "kind = \"http\"\nurl = \"https://x/\"\ntls_verify = false\nca_file = \"/ca.pem\"",
                "ca_file: unused with tls_verify = false",
            ),
            (
                "kind = \"http\"\nurl = \"http://x/\"\ntls_verify = true",
                "tls_verify: only applies to https:// URLs",
            ),
            (
                "kind = \"http\"\nurl = \"http://x/\"\nca_file = \"/ca.pem\"",
                "ca_file: only applies to https:// URLs",
            ),
            ("kind = \"http\"\nurl = \"http://x/#top\"", "has a fragment"),
            ("kind = \"http\"\nurl = \"http://x/a b\"", "contains ' '"),
            (
                "kind = \"http\"\nurl = \"http://x/<a>\"",
                "percent-encode it, like %3C",
            ),
            (
                "kind = \"http\"\nurl = \"HTTP://x/\"",
                "write the scheme in lower case",
            ),
            (
                "kind = \"http\"\nurl = \"http://x:/\"",
                "port \"\" is not a number",
            ),
            ("kind = \"http\"\nurl = \"http://[::1/\"", "no \"]\" after"),
            (
                "kind = \"http\"\nurl = \"http://[::1]x/\"",
                "has \"x\" after its IPv6",
            ),
            (
                "kind = \"http\"\nurl = \"http://[1.2.3.4]/\"",
                "is not an IPv6 address",
            ),
            (
                "kind = \"http\"\nurl = \"http://a_b!/\"",
                "host \"a_b!\" contains \"!\"",
            ),
            (
                "kind = \"http\"\nurl = \"http://u:hunter2@x/\"",
                "user info (\"user:password@\") in a URL is not supported",
            ),
            (
                "kind = \"http\"",
                "[[check]] is missing the required key \"url\"",
            ),
            (
                "kind = \"script\"\nscript = \"pgrep haproxy\"",
                "script: the program must be an absolute path, found \"pgrep\"",
            ),
            (
                "kind = \"script\"\nscript = [\"pgrep\", \"haproxy\"]",
                "the program must be an absolute path",
            ),
            (
                "kind = \"script\"\nscript = \"/bin/pidof haproxy || exit 1\"",
                "run without a shell",
            ),
            (
                "kind = \"script\"\nscript = \"/bin/check 'a b'\"",
                "contains a single quote",
            ),
            (
                "kind = \"script\"\nscript = \"   \"",
                "script: must name a program",
            ),
            (
                "kind = \"script\"\nscript = []",
                "script: must name a program",
            ),
            (
                "kind = \"script\"\nscript = [\"\"]",
                "script: must name a program",
            ),
            (
                "kind = \"script\"\nscript = [\"/bin/true\", 1]",
                "script: expected a string, found an integer",
            ),
            (
                "kind = \"script\"\nscript = 5",
                "script: expected a string or an array of strings, found an integer",
            ),
            (
                "kind = \"script\"\nscript = \"/bin/true\"\ninterval = \"0s\"",
                "interval: must be longer than 0s",
            ),
            (
                "kind = \"script\"\nscript = \"/bin/true\"\ntimeout = \"0s\"",
                "timeout: must be longer than 0s",
            ),
            (
                "kind = \"script\"\nscript = \"/bin/true\"\ntimeout = \"3s\"",
                "timeout: 3s is not shorter than the default interval (2s)",
            ),
            (
                "kind = \"script\"\nscript = \"/bin/true\"\ninterval = \"1s\"\ntimeout = \"2s\"",
                "like timeout = \"500ms\"",
            ),
            (
                "kind = \"script\"\nscript = \"/bin/true\"\ninterval = 5",
                "write \"5s\" if you mean seconds",
            ),
            (
                "kind = \"script\"\nscript = \"/bin/true\"\nrise = 0",
                "rise: must be 1 to 100, found 0",
            ),
            (
                "kind = \"script\"\nscript = \"/bin/true\"\nfall = 101",
                "fall: must be 1 to 100, found 101",
            ),
            (
                "kind = \"script\"\nscript = \"/bin/true\"\nweight = -20",
                "the weight goes in the instance that tracks the check",
            ),
            (
                "kind = \"script\"\nscript = \"/bin/true\"\nintervall = \"1s\"",
                "did you mean \"interval\"?",
            ),
            ("kind = \"TCP_CHECK\"", "did you mean \"tcp\"?"),
            ("kind = \"HTTP_GET\"", "did you mean \"http\"?"),
            ("kind = \"https\"", "did you mean \"http\"?"),
            (
                "kind = \"tcp\"\nhost = \"h\"\nport = 1\nscript = \"/bin/true\"",
                "\"script\" is for kind = \"script\" checks, and this check is kind = \"tcp\"",
            ),
            (
                "kind = \"http\"\nurl = \"http://x/\"\nhost = \"x\"",
                "the host and port go in url",
            ),
            ("kind = 3", "kind: expected a string, found an integer"),
            (
                "host = \"h\"",
                "[[check]] is missing the required key \"kind\"",
            ),
        ];
        for (body, want) in cases {
            let text = format!("{MINIMAL}\n[[check]]\nname = \"c\"\n{body}\n");
            assert_one_error(&text, want, body);
        }
        assert_one_error(
            &format!(
                "{MINIMAL}\n[[check]]\nname = \"c d\"\nkind = \"tcp\"\nhost = \"h\"\nport = 1\n"
            ),
            "name: \"c d\" contains \" \"",
            "check name",
        );
        assert_one_error(
            &format!("{MINIMAL}\n[check]\nname = \"c\"\nkind = \"tcp\"\nhost = \"h\"\nport = 1\n"),
            "check: expected an array of tables, found a table",
            "[check]",
        );
    }

    /// Each case adds keys to MINIMAL's instance (with a check "web" declared) and gives one
    /// diagnostic.
    #[test]
    fn track_rules() {
        let cases: &[(&str, &str)] = &[
            (
                "track_check = [{ check = \"wbe\" }]",
                "track_check: no [[check]] is named \"wbe\"\n  hint: did you mean \"web\"? \
                 declared checks: \"web\"",
            ),
            (
                "track_check = [\"web\"]",
                "track_check: expected a table, found a string\n  hint: write \
                 { check = \"web\", weight = 0 }",
            ),
            (
                "track_check = [\"web weight -20\"]",
                "write { check = \"web\", weight = -20 }",
            ),
            (
                "track_check = { check = \"web\" }",
                "track_check: expected an array, found a table",
            ),
            (
                "track_check = [{ check = \"web\", weight = 1.5 }]",
                "weight: expected an integer, found a float",
            ),
            (
                "track_check = [{ check = \"web\", name = \"x\" }]",
                "unknown key \"name\" in a track_check entry",
            ),
            (
                "track_check = [{ weight = 2 }]",
                "a track_check entry is missing the required key \"check\"",
            ),
            (
                "track_check = [{ check = \"web\" }, { check = \"web\", weight = 2 }]",
                "track_check: \"web\" is listed twice",
            ),
            (
                "track_file = [{ file = \"weight\" }]",
                "track_file: must be an absolute path, found \"weight\"",
            ),
            (
                "track_file = [{ file = \"/a\" }, { file = \"/a\", weight = 2 }]",
                "track_file: \"/a\" is listed twice",
            ),
            (
                "track_file = [\"/run/w\"]",
                "write { file = \"/run/w\", weight = 0 }",
            ),
            (
                "track_file = [{ file = \"/a\", weight = -255 }]",
                "weight: must be -254 to 254, found -255",
            ),
            (
                "track_interface = [\"eth1\", { interface = \"eth1\", weight = -2 }]",
                "track_interface: \"eth1\" is listed twice",
            ),
            (
                "track_interface = [{ interface = \"a/b\" }]",
                "track_interface: \"a/b\" contains \"/\"",
            ),
            (
                "track_interface = [\"\"]",
                "track_interface: must not be empty",
            ),
            (
                "track_interface = \"eth1\"",
                "track_interface: expected an array, found a string",
            ),
            (
                "track_interface = [true]",
                "track_interface: expected an interface name or a table, found a boolean",
            ),
            ("notify = \"\"", "notify: must not be empty"),
            ("notify = 1", "notify: expected a string, found an integer"),
            (
                "notify = \"notify.sh\"",
                "notify: must be an absolute path, found \"notify.sh\"",
            ),
            (
                "notify = \"/bin/notify MASTER\"",
                "notify: \"/bin/notify MASTER\" contains a space",
            ),
            (
                "notify_timeout = \"99ms\"",
                "notify_timeout: 99ms is shorter than the minimum of 100ms",
            ),
            (
                "priority = 255\ntrack_interface = [{ interface = \"eth1\", weight = 10 }]",
                "weight: 10 would move the priority of an address owner (priority = 255)",
            ),
            (
                "track_script = [\"chk\"]",
                "use track_check with a [[check]] of kind = \\\"script\\\"",
            ),
            (
                "notify_backup = \"/x\"",
                "tandem runs one notify script with the state as argument",
            ),
        ];
        for (extra, want) in cases {
            let want = want.replace("\\\"", "\"");
            assert_one_error(&with_instance_keys(extra, WEB_CHECK), &want, extra);
        }
        // With no [[check]] at all, the hint says so.
        assert_one_error(
            &with_instance_keys("track_check = [{ check = \"web\" }]", ""),
            "hint: this config declares no [[check]]; add one with name = \"web\"",
            "no checks",
        );
        // A misspelt name reports both problems of the entry at once.
        let got = parse_err(&with_instance_keys("track_check = [\"wbe\"]", WEB_CHECK));
        assert!(got.contains("no [[check]] is named \"wbe\""), "{got}");
        assert!(got.contains("expected a table, found a string"), "{got}");
    }

    /// A reference to a check or instance whose own name is wrong or unknown is not reported
    /// a second time.
    #[test]
    fn unresolvable_names_are_not_echoed() {
        let cases: &[(&str, &str, &str)] = &[
            (
                "track_check = [{ check = \"we b\" }]",
                "\n[[check]]\nname = \"we b\"\nkind = \"tcp\"\nhost = \"h\"\nport = 1\n",
                "name: \"we b\" contains \" \"",
            ),
            (
                "track_check = [{ check = \"web\" }]",
                "\n[[check]]\nkind = \"tcp\"\nhost = \"h\"\nport = 1\n",
                "[[check]] is missing the required key \"name\"",
            ),
            (
                "track_check = [{ check = \"web\" }]",
                "\n[[chek]]\nname = \"web\"\n",
                "did you mean [[check]]?",
            ),
            (
                "track_check = [{ check = \"web\" }]",
                "\ncheck = 5\n",
                "check: expected an array of tables, found an integer",
            ),
            (
                "track_check = [{ check = \"web\" }]",
                "\n[vrrp_script.web]\nscript = \"/bin/true\"\n",
                "keepalived's vrrp_script is a [[check]] with kind = \"script\"",
            ),
            (
                "",
                "\n[[vrrp_instance]]\ninterface = \"eth1\"\nvirtual_router_id = 2\n\
                 virtual_ipaddress = [\"10.0.0.1\"]\n\n[[vrrp_sync_group]]\nname = \"G\"\n\
                 group = [\"VI_1\", \"VI_9\"]\n",
                "[[vrrp_instance]] is missing the required key \"name\"",
            ),
        ];
        for (extra, rest, want) in cases {
            // `rest` may hold keys for the top level: put it first, where they belong.
            let text = if rest.contains("check = 5") {
                format!("check = 5\n{}", with_instance_keys(extra, ""))
            } else {
                with_instance_keys(extra, rest)
            };
            assert_one_error(&text, want, rest);
        }
    }

    #[test]
    fn sync_group_rules() {
        let two = format!(
            "{MINIMAL}\n[[vrrp_instance]]\nname = \"VI_2\"\ninterface = \"eth1\"\n\
             virtual_router_id = 2\nvirtual_ipaddress = [\"10.0.0.1\"]\n\n[[vrrp_sync_group]]\n"
        );
        let cases: &[(&str, &str)] = &[
            (
                "name = \"G\"\ngroup = \"VI_1\"",
                "group: expected an array, found a string",
            ),
            (
                "name = \"G\"\ngroup = [\"VI_1\", 2]",
                "group: expected a string, found an integer",
            ),
            (
                "name = \"G\"",
                "[[vrrp_sync_group]] is missing the required key \"group\"",
            ),
            (
                "group = [\"VI_1\", \"VI_2\"]",
                "[[vrrp_sync_group]] is missing the required key \"name\"",
            ),
            (
                "name = \"G 1\"\ngroup = [\"VI_1\", \"VI_2\"]",
                "sync group names use letters",
            ),
            (
                "name = \"G\"\ngroup = [\"VI_1\", \"VI_1\"]",
                "group: \"VI_1\" is listed twice",
            ),
            (
                "name = \"G\"\ngroup = [\"VI_1\", \"vi_2\"]",
                "did you mean \"VI_2\"?",
            ),
            (
                "name = \"G\"\ngroup = [\"VI_1\", \"VI_2\"]\nnotify_master = \"/x\"",
                "set notify in the group's [[vrrp_instance]] sections",
            ),
            (
                "name = \"G\"\ngroup = [\"VI_1\", \"VI_2\"]\ngrop = 1",
                "did you mean \"group\"?",
            ),
        ];
        for (body, want) in cases {
            assert_one_error(&format!("{two}{body}\n"), want, body);
        }
        assert_one_error(
            &format!("{MINIMAL}\n[[vrrp_sync_groups]]\nname = \"G\"\n"),
            "did you mean [[vrrp_sync_group]]?",
            "misspelt section",
        );
        // An arbiter has no instances to group.
        let got = parse_err(
            "[node]\nname = \"arb\"\nrole = \"arbiter\"\n[[vrrp_sync_group]]\nname = \"G\"\n\
             group = [\"VI_1\", \"VI_2\"]\n",
        );
        assert!(
            got.contains("group: no [[vrrp_instance]] is named \"VI_1\"\n  hint: this config declares no [[vrrp_instance]]"),
            "{got}"
        );
    }

    #[test]
    fn password_is_not_in_debug_output() {
        let a = Authentication::Pass("s3cret".into());
        assert!(!format!("{a:?}").contains("s3cret"));
    }
}
