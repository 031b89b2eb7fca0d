//! Heartbeats for tandem: who in the cluster is alive, over which channels, how well.
//!
//! # Role
//!
//! Every node sends a small authenticated frame on each configured channel — UDP multicast
//! (or a UDP unicast list), TCP connections to every peer, a serial line — each channel
//! with its own interval and timeout. From what it receives, each node keeps, per peer and
//! per channel, an up/down state, sequence numbers, a round-trip-time estimate and a loss
//! rate, and reports transitions as timestamped events: [`EventKind::ChannelUp`] /
//! [`EventKind::ChannelDown`] per link, [`EventKind::PeerUp`] / [`EventKind::PeerDown`] per
//! peer (a peer is up while **any** of its channels is up, down only when **all** are), and
//! [`EventKind::PeerRestarted`] when a peer comes back with a new incarnation.
//!
//! # Layers
//!
//! * [`wire`]: the frame format (byte layout table there), HMAC-SHA256 with the cluster key,
//!   zero-panic decoding.
//! * [`liveness`]: the sans-IO core ([`Liveness`]): fed frames and `Instant`s, it returns
//!   frames to send, events and its next deadline. All the logic, testable over simulated
//!   time.
//! * [`channel`]: thin tokio shells, one per transport, all behind [`ChannelIo`] (send a
//!   frame / receive a frame).
//! * [`driver`]: the tokio task that owns the core and the shells ([`Heartbeat`]), emits
//!   events on an mpsc and answers [`Snapshot`] requests for `tandem status` /
//!   `tandem links`.
//! * [`spec`] and [`key`]: plain-data configuration ([`ClusterSpec`], [`ChannelSpec`]) and
//!   [`load_key`] for the cluster key file.
//!
//! # What this crate must never do
//!
//! * **Decide ownership or fencing.** It reports liveness and its quality; whether a peer's
//!   death means taking a VIP, waiting, or fencing is the policy engine's decision. Nothing
//!   here knows about VIPs, leases or fence devices.
//! * **Read the wall clock for liveness.** Every timeout, RTT and ordering decision uses the
//!   monotonic `Instant`s handed to the core; the frame's timestamp is the sender's
//!   monotonic uptime, carried for display only. The one wall-clock read
//!   ([`new_incarnation`]) only names this start of the process.
//! * **Block.** The core does no I/O. The shells never make the driver wait: sends are
//!   non-blocking queue pushes, connection attempts and backoff run in their own tasks,
//!   writes have timeouts, and a frame that cannot go out promptly is dropped and counted,
//!   never delivered late.
//! * **Trust input.** Malformed, unauthenticated, replayed, foreign-cluster, unknown-node
//!   and stale-incarnation frames are dropped, each with its own per-channel counter
//!   ([`DropReason`]); decoding never panics.
//!
//! # Use
//!
//! ```no_run
//! use std::time::Duration;
//! use tandem_heartbeat::{load_key, ChannelSpec, ClusterSpec, EventKind, Heartbeat, HeartbeatConfig, NodeSpec};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let cluster = ClusterSpec {
//!     name: "edge".into(),
//!     key: load_key("/etc/tandem/cluster.key")?,
//!     nodes: ["lb1", "lb2"]
//!         .iter()
//!         .map(|n| NodeSpec { name: (*n).into(), address: None })
//!         .collect(),
//! };
//! let channels = vec![
//!     ChannelSpec::udp_multicast("eth0", "239.192.0.1:5405".parse()?)
//!         .with_timing(Duration::from_millis(100), Duration::from_millis(500)),
//!     ChannelSpec::serial("/dev/ttyS1", 115_200),
//! ];
//! let mut hb = Heartbeat::start(HeartbeatConfig { cluster, node: "lb1".into(), channels, incarnation: None })?;
//! while let Some(event) = hb.next_event().await {
//!     if let EventKind::PeerDown { peer, reason } = &event.kind {
//!         // Hand it to the policy engine; this crate decides nothing.
//!         println!("{peer} down ({reason:?})");
//!     }
//! }
//! let status = hb.snapshot().await; // for `tandem status` / `tandem links`
//! # let _ = status;
//! # Ok(())
//! # }
//! ```

pub mod channel;
pub mod driver;
pub mod key;
pub mod liveness;
pub mod spec;
pub mod wire;

pub use channel::{ChannelIo, TransportStats};
pub use driver::{Heartbeat, HeartbeatConfig, StartError};
pub use key::{load_key, ClusterKey, KeyError};
pub use liveness::{
    new_incarnation, ChannelId, ChannelStatus, ChannelTiming, DownReason, DropCounters, DropReason,
    Event, EventKind, LinkStatus, Liveness, LivenessConfig, PeerStatus, Snapshot, State, Transmit,
    LOSS_WINDOW,
};
pub use spec::{ChannelKind, ChannelSpec, ClusterSpec, NodeSpec, SpecError};
