//! The sans-IO liveness core: who is alive, on which channel, how well.
//!
//! Sans-IO in the manner of quinn-proto and `tandem-vrrp`'s `Instance`: inputs are method
//! calls carrying the current monotonic `Instant` ([`Liveness::handle_frame`],
//! [`Liveness::handle_timeout`], [`Liveness::shutdown`]); outputs are frames to send
//! ([`Liveness::poll_transmit`]), timestamped membership [`Event`]s
//! ([`Liveness::poll_event`]) and the next deadline ([`Liveness::poll_timeout`]). No sockets,
//! no clock reads, no tokio.
//!
//! # Model
//!
//! Every node sends one frame per channel every `interval` of that channel, to every peer
//! the channel reaches (multicast group, each unicast address, each TCP connection, the
//! serial line). A frame is per channel, not per peer: its sequence number counts frames on
//! that channel, so every receiver sees the same sequence and gaps mean loss.
//!
//! For each (peer, channel) pair — a *link* — the core keeps:
//!
//! * **state**: up after a valid frame; down once `timeout` passes without one (the event is
//!   stamped with the deadline, `last_valid_frame + timeout`, not with the instant the timer
//!   was serviced), or at once on a frame flagged LEAVING (clean shutdown of the peer);
//! * **sequence**: the last accepted sequence number; anything `<=` is a replay;
//! * **loss**: the share of missing sequence numbers among the last [`LOSS_WINDOW`] (a
//!   bitmap sliding with the highest sequence number seen);
//! * **RTT**: from echo entries (see [`crate::wire`]): `now − send_time(echoed seq) − hold`,
//!   smoothed like TCP's SRTT (gain 1/8). A sample whose hold exceeds the elapsed time is
//!   discarded, never clamped into a bogus value.
//!
//! A **peer is up while at least one of its links is up** and down when all are.
//!
//! # Incarnations and freshness
//!
//! A node draws a new incarnation at every start ([`new_incarnation`]: time-based, so a
//! later start normally has a larger number). A frame of an incarnation other than the
//! peer's current one is accepted only if it **echoes one of our own recent frames on that
//! channel** (our current incarnation, a sequence number we sent within the channel's
//! timeout). That proves the frame was built after hearing us, so a recording of an old
//! incarnation replayed later cannot make a dead peer look alive, and it needs no clock
//! agreement. Until then such frames are dropped as
//! [`DropReason::UnconfirmedIncarnation`], but remembered, so that our next frame echoes them
//! and the peer can prove itself one frame later: two nodes starting together see each other
//! up within about one interval plus a round trip.
//!
//! A proven new incarnation replaces the current one if it is larger, or if the peer is down
//! (a peer whose clock went backwards across a restart is accepted once its old incarnation
//! has timed out); otherwise its frames are [`DropReason::StaleIncarnation`] (late frames of
//! a previous life, or two processes claiming one node name — the higher wins). Replacing an
//! incarnation emits [`EventKind::PeerRestarted`] and starts new sequence spaces on every
//! channel; link states carry over (the machine is alive; a link not yet heard in the new
//! incarnation times out as usual).
//!
//! # Receive checks, in order, each with its own per-channel counter
//!
//! well formed ([`DropReason::Malformed`], [`DropReason::BadVersion`]) → our cluster name
//! ([`DropReason::WrongCluster`]) → HMAC ([`DropReason::BadAuth`]) → channel id equal to the
//! channel it arrived on ([`DropReason::WrongChannel`], so a frame cannot be replayed from
//! one channel onto another) → sender not us ([`DropReason::FromSelf`]) and a configured
//! peer ([`DropReason::UnknownNode`]) → incarnation (above) → sequence
//! ([`DropReason::Replay`]). A dropped frame changes nothing but its counter (and, for an
//! authenticated frame of another incarnation, what we echo).
//!
//! # Time
//!
//! Only the `Instant`s passed in are used. The frame's timestamp field is the sender's
//! monotonic uptime, carried for status display only; nothing here reads it back into a
//! decision, so a sender whose wall clock jumps — or a frame with a wild timestamp — changes
//! nothing. Timers fire at most once per call however late the call comes. A frame handled
//! at exactly a link's deadline keeps the link up (frames are handled before timeouts of the
//! same instant); a frame handled after a missed deadline first takes the link down at the
//! deadline, then up again.
//!
//! Sending stays on a grid: the next frame of a channel is due one interval after the
//! previous *due* time, or one interval after `now` when a call came so late that the grid
//! slot has passed (one frame after a stall, never a burst).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::channel::TransportStats;
use crate::key::ClusterKey;
use crate::spec::{ChannelSpec, ClusterSpec, SpecError};
use crate::wire::{
    self, DecodeError, EchoRepr, Echoes, HeldIds, HmacSha256, Packet, Repr, FLAG_LEAVING,
    MAX_FRAME_LEN, MAX_HELD,
};

/// Sequence numbers covered by the loss estimate of each link.
pub const LOSS_WINDOW: u32 = 128;
/// Own frames remembered per channel for RTT and freshness: far more than fit in any sane
/// timeout (64 × the 10 ms minimum interval).
const SENT_HISTORY: usize = 64;
/// Smoothing gain of the RTT estimate (TCP SRTT, RFC 6298).
const RTT_GAIN: u32 = 8;

/// Index of a channel in the configured list; also its id on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub struct ChannelId(pub u8);

impl ChannelId {
    pub fn index(self) -> usize {
        usize::from(self.0)
    }
}

impl std::fmt::Display for ChannelId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Timing of one channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChannelTiming {
    pub interval: Duration,
    pub timeout: Duration,
}

/// Everything the core needs, already validated (see [`LivenessConfig::from_specs`]).
#[derive(Debug, Clone)]
pub struct LivenessConfig {
    pub cluster: String,
    /// This node's name.
    pub node: String,
    /// Every other member.
    pub peers: Vec<String>,
    /// Indexed by [`ChannelId`].
    pub channels: Vec<ChannelTiming>,
    pub key: ClusterKey,
    /// This start's incarnation ([`new_incarnation`]).
    pub incarnation: u64,
}

impl LivenessConfig {
    /// Build and validate from the plain-data specs.
    pub fn from_specs(
        cluster: &ClusterSpec,
        node: &str,
        channels: &[ChannelSpec],
        incarnation: u64,
    ) -> Result<LivenessConfig, SpecError> {
        cluster.validate(node)?;
        for ch in channels {
            ch.validate()?;
        }
        Ok(LivenessConfig {
            cluster: cluster.name.clone(),
            node: node.to_owned(),
            peers: cluster.peer_names(node),
            channels: channels
                .iter()
                .map(|c| ChannelTiming {
                    interval: c.interval,
                    timeout: c.timeout,
                })
                .collect(),
            key: cluster.key.clone(),
            incarnation,
        })
    }

    fn validate(&self) -> Result<(), SpecError> {
        let nodes = std::iter::once(&self.node)
            .chain(&self.peers)
            .map(|n| crate::spec::NodeSpec {
                name: n.clone(),
                address: None,
            })
            .collect();
        ClusterSpec {
            name: self.cluster.clone(),
            key: self.key.clone(),
            nodes,
        }
        .validate(&self.node)?;
        if self.channels.is_empty() {
            return Err(SpecError::NoChannels);
        }
        if self.channels.len() > usize::from(u8::MAX) + 1 {
            return Err(SpecError::TooManyChannels);
        }
        for t in &self.channels {
            if t.interval < crate::spec::MIN_INTERVAL {
                return Err(SpecError::IntervalTooShort(t.interval));
            }
            if t.timeout <= t.interval {
                return Err(SpecError::TimeoutNotAboveInterval {
                    interval: t.interval,
                    timeout: t.timeout,
                });
            }
        }
        Ok(())
    }
}

/// A fresh incarnation for this start of the process: wall-clock microseconds since the
/// UNIX epoch with the low 16 bits replaced by random bits. Time-based so that a restart
/// normally draws a larger number than the previous life (see the module docs for what
/// happens when it does not), random in the low bits so that two starts within the same
/// 65 ms never collide.
///
/// This is the only wall-clock read in the crate, and it only names the incarnation: no
/// liveness decision depends on it.
pub fn new_incarnation() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let micros = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0);
    // RandomState is seeded from the OS's random source.
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(micros);
    h.write_u32(std::process::id());
    let random = h.finish() & 0xffff;
    let inc = (micros & !0xffff) | random;
    inc.max(1)
}

/// Up or down.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    Up,
    Down,
}

/// Why a link or a peer went down.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DownReason {
    /// No valid frame for the channel's timeout.
    Timeout,
    /// The peer said it was shutting down (LEAVING flag).
    Left,
}

/// A membership change, stamped with the instant it happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub at: Instant,
    pub kind: EventKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventKind {
    ChannelUp {
        peer: String,
        channel: ChannelId,
    },
    ChannelDown {
        peer: String,
        channel: ChannelId,
        reason: DownReason,
    },
    /// The first link of the peer came up.
    PeerUp {
        peer: String,
        incarnation: u64,
    },
    /// The last link of the peer went down; `reason` is that link's.
    PeerDown {
        peer: String,
        reason: DownReason,
    },
    /// The peer started again (a new, proven incarnation replaced the old one). Comes before
    /// the `ChannelUp` / `PeerUp` the same frame causes.
    PeerRestarted {
        peer: String,
        old_incarnation: u64,
        new_incarnation: u64,
    },
    /// The peer's held list changed: the [`wire::held_id`]s of the VRRP instances whose
    /// VIPs it has configured, sorted (empty when its frames carry no list). Comes before
    /// the `ChannelUp` / `PeerUp` the same frame causes, so a consumer knows it when the
    /// peer comes up.
    PeerHeld {
        peer: String,
        held: Vec<u32>,
    },
}

impl EventKind {
    /// The peer the event is about.
    pub fn peer(&self) -> &str {
        match self {
            EventKind::ChannelUp { peer, .. }
            | EventKind::ChannelDown { peer, .. }
            | EventKind::PeerUp { peer, .. }
            | EventKind::PeerDown { peer, .. }
            | EventKind::PeerRestarted { peer, .. }
            | EventKind::PeerHeld { peer, .. } => peer,
        }
    }
}

/// Why a received frame was dropped. One counter each, per channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DropReason {
    /// Not a well-formed frame (truncated, bad magic, bad lengths, trailing bytes, ...).
    Malformed,
    /// A heartbeat frame of a version we do not speak.
    BadVersion,
    /// Another cluster's frame.
    WrongCluster,
    /// HMAC-SHA256 does not verify with our key.
    BadAuth,
    /// Authenticated, but sent for another channel (or handed in with an unknown id).
    WrongChannel,
    /// Our own name: multicast looped back, or another process using our name.
    FromSelf,
    /// Authenticated, but the sender is not a configured member.
    UnknownNode,
    /// A new incarnation of the peer that has not yet echoed a recent frame of ours.
    UnconfirmedIncarnation,
    /// A proven incarnation older than the current one while the peer is up.
    StaleIncarnation,
    /// Sequence number not above the last accepted one for this peer, channel, incarnation.
    Replay,
}

impl DropReason {
    pub const ALL: [DropReason; 10] = [
        DropReason::Malformed,
        DropReason::BadVersion,
        DropReason::WrongCluster,
        DropReason::BadAuth,
        DropReason::WrongChannel,
        DropReason::FromSelf,
        DropReason::UnknownNode,
        DropReason::UnconfirmedIncarnation,
        DropReason::StaleIncarnation,
        DropReason::Replay,
    ];
}

impl From<DecodeError> for DropReason {
    fn from(e: DecodeError) -> DropReason {
        match e {
            DecodeError::BadVersion => DropReason::BadVersion,
            _ => DropReason::Malformed,
        }
    }
}

/// Drop counters of one channel.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct DropCounters {
    pub malformed: u64,
    pub bad_version: u64,
    pub wrong_cluster: u64,
    pub bad_auth: u64,
    pub wrong_channel: u64,
    pub from_self: u64,
    pub unknown_node: u64,
    pub unconfirmed_incarnation: u64,
    pub stale_incarnation: u64,
    pub replay: u64,
}

impl DropCounters {
    fn slot(&mut self, r: DropReason) -> &mut u64 {
        match r {
            DropReason::Malformed => &mut self.malformed,
            DropReason::BadVersion => &mut self.bad_version,
            DropReason::WrongCluster => &mut self.wrong_cluster,
            DropReason::BadAuth => &mut self.bad_auth,
            DropReason::WrongChannel => &mut self.wrong_channel,
            DropReason::FromSelf => &mut self.from_self,
            DropReason::UnknownNode => &mut self.unknown_node,
            DropReason::UnconfirmedIncarnation => &mut self.unconfirmed_incarnation,
            DropReason::StaleIncarnation => &mut self.stale_incarnation,
            DropReason::Replay => &mut self.replay,
        }
    }

    pub fn count(&mut self, r: DropReason) {
        let slot = self.slot(r);
        *slot = slot.saturating_add(1);
    }

    pub fn get(&self, r: DropReason) -> u64 {
        let mut copy = *self;
        *copy.slot(r)
    }

    pub fn total(&self) -> u64 {
        DropReason::ALL
            .iter()
            .fold(0u64, |acc, &r| acc.saturating_add(self.get(r)))
    }
}

/// One frame to send on `channel`, to every peer the channel reaches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    pub channel: ChannelId,
    pub payload: Vec<u8>,
}

/// Sliding window of received sequence numbers.
#[derive(Debug, Clone, Copy, Default)]
struct LossWindow {
    highest: u64,
    /// Bit i set: `highest − i` was received.
    bits: u128,
    /// Sequence numbers covered, ≤ LOSS_WINDOW; 0 before the first frame.
    span: u32,
}

impl LossWindow {
    /// `seq` is above every sequence number recorded so far (the replay check sees to it).
    fn record(&mut self, seq: u64) {
        if self.span == 0 || seq <= self.highest {
            *self = LossWindow {
                highest: seq,
                bits: 1,
                span: 1,
            };
            return;
        }
        let shift = seq - self.highest;
        self.bits = if shift >= u64::from(LOSS_WINDOW) {
            1
        } else {
            (self.bits << shift) | 1
        };
        self.span = (u64::from(self.span) + shift).min(u64::from(LOSS_WINDOW)) as u32;
        self.highest = seq;
    }

    /// Lost share in [0, 1], `None` before the first frame.
    fn loss(&self) -> Option<f64> {
        if self.span == 0 {
            return None;
        }
        let mask = if self.span >= 128 {
            u128::MAX
        } else {
            (1u128 << self.span) - 1
        };
        let received = (self.bits & mask).count_ones();
        Some(f64::from(self.span - received) / f64::from(self.span))
    }
}

/// An authenticated frame of an incarnation that is not (yet) the peer's current one.
#[derive(Debug, Clone, Copy)]
struct Heard {
    incarnation: u64,
    seq: u64,
    at: Instant,
}

#[derive(Debug, Clone, Default)]
struct Link {
    up: bool,
    since: Option<Instant>,
    last_rx: Option<Instant>,
    /// Last accepted sequence number of the current incarnation; 0 = none yet.
    last_seq: u64,
    loss: LossWindow,
    srtt: Option<Duration>,
    rtt_last: Option<Duration>,
    frames: u64,
    candidate: Option<Heard>,
}

impl Link {
    fn deadline(&self, timeout: Duration) -> Option<Instant> {
        self.last_rx?.checked_add(timeout)
    }

    fn rtt_sample(&mut self, rtt: Duration) {
        self.rtt_last = Some(rtt);
        self.srtt = Some(match self.srtt {
            None => rtt,
            Some(s) => s.saturating_mul(RTT_GAIN - 1).saturating_add(rtt) / RTT_GAIN,
        });
    }
}

#[derive(Debug, Clone)]
struct Peer {
    name: String,
    incarnation: Option<u64>,
    up: bool,
    since: Option<Instant>,
    restarts: u64,
    timestamp_us: Option<u64>,
    /// The held list of its last accepted frame, sorted.
    held: Vec<u32>,
    links: Vec<Link>,
}

#[derive(Debug, Clone, Copy)]
struct Sent {
    seq: u64,
    at: Instant,
}

#[derive(Debug, Clone)]
struct Channel {
    timing: ChannelTiming,
    next_send: Instant,
    /// Last sequence number sent.
    seq: u64,
    sent: [Option<Sent>; SENT_HISTORY],
    leave_pending: bool,
    frames_sent: u64,
    frames_received: u64,
    encode_errors: u64,
    drops: DropCounters,
}

impl Channel {
    fn sent_at(&self, seq: u64) -> Option<Instant> {
        let slot = self.sent[(seq % SENT_HISTORY as u64) as usize]?;
        (slot.seq == seq).then_some(slot.at)
    }
}

/// What an echo of our own frame in a received frame tells.
#[derive(Debug, Clone, Copy)]
struct EchoCheck {
    /// The echoed frame is ours, of this incarnation, sent within the channel's timeout.
    fresh: bool,
    rtt: Option<Duration>,
}

fn micros_u32(d: Duration) -> u32 {
    u32::try_from(d.as_micros()).unwrap_or(u32::MAX)
}

fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// The liveness core of one node.
#[derive(Debug)]
pub struct Liveness {
    cluster: String,
    node: String,
    incarnation: u64,
    mac: HmacSha256,
    started: Instant,
    peers: Vec<Peer>,
    channels: Vec<Channel>,
    events: VecDeque<Event>,
    /// `Some(when)` after [`Liveness::shutdown`].
    shutdown_at: Option<Instant>,
    /// [`Liveness::handle_frame`] calls with a channel id we do not have.
    misrouted: u64,
    /// The held list every frame carries ([`Liveness::set_held`]); `None`: no list.
    held: Option<Vec<u32>>,
    /// Frames sent without the held list because it did not fit (never in a pair).
    held_omitted: std::cell::Cell<u64>,
}

impl Liveness {
    /// A core that starts sending at once (every channel's first frame is due at `now`).
    pub fn new(config: LivenessConfig, now: Instant) -> Result<Liveness, SpecError> {
        config.validate()?;
        let links = vec![Link::default(); config.channels.len()];
        Ok(Liveness {
            mac: wire::keyed_mac(config.key.as_bytes()),
            started: now,
            peers: config
                .peers
                .iter()
                .map(|name| Peer {
                    name: name.clone(),
                    incarnation: None,
                    up: false,
                    since: None,
                    restarts: 0,
                    timestamp_us: None,
                    held: Vec::new(),
                    links: links.clone(),
                })
                .collect(),
            channels: config
                .channels
                .iter()
                .map(|&timing| Channel {
                    timing,
                    next_send: now,
                    seq: 0,
                    sent: [None; SENT_HISTORY],
                    leave_pending: false,
                    frames_sent: 0,
                    frames_received: 0,
                    encode_errors: 0,
                    drops: DropCounters::default(),
                })
                .collect(),
            events: VecDeque::new(),
            shutdown_at: None,
            misrouted: 0,
            held: None,
            held_omitted: std::cell::Cell::new(0),
            cluster: config.cluster,
            node: config.node,
            incarnation: config.incarnation,
        })
    }

    pub fn node(&self) -> &str {
        &self.node
    }

    pub fn cluster(&self) -> &str {
        &self.cluster
    }

    pub fn incarnation(&self) -> u64 {
        self.incarnation
    }

    /// The held list every frame carries from now on: the [`wire::held_id`]s of the VRRP
    /// instances whose VIPs this node has configured (`None`: frames carry no list). Sorted
    /// and deduplicated here; at most [`MAX_HELD`] ids are kept (a pair has at most 255
    /// instances per address family and interface, and a longer list would not fit a frame).
    pub fn set_held(&mut self, held: Option<Vec<u32>>) {
        self.held = held.map(|mut h| {
            h.sort_unstable();
            h.dedup();
            h.truncate(MAX_HELD);
            h
        });
    }

    /// The held list of the peer's last accepted frame, sorted.
    pub fn peer_held(&self, name: &str) -> Option<&[u32]> {
        self.peers
            .iter()
            .find(|p| p.name == name)
            .map(|p| p.held.as_slice())
    }

    /// Frames sent without the held list because it would not fit beside the echo entries
    /// (many peers and a long list; a pair always fits).
    pub fn held_omitted(&self) -> u64 {
        self.held_omitted.get()
    }

    pub fn channel_count(&self) -> usize {
        self.channels.len()
    }

    /// Peer names in configuration order.
    pub fn peers(&self) -> impl Iterator<Item = &str> {
        self.peers.iter().map(|p| p.name.as_str())
    }

    fn peer_index(&self, name: &str) -> Option<usize> {
        self.peers.iter().position(|p| p.name == name)
    }

    /// `None` for a name that is not a peer.
    pub fn peer_state(&self, name: &str) -> Option<State> {
        let p = &self.peers[self.peer_index(name)?];
        Some(if p.up { State::Up } else { State::Down })
    }

    /// `None` for an unknown peer or channel.
    pub fn link_state(&self, name: &str, channel: ChannelId) -> Option<State> {
        let l = self.peers[self.peer_index(name)?]
            .links
            .get(channel.index())?;
        Some(if l.up { State::Up } else { State::Down })
    }

    /// The peer's current (proven) incarnation.
    pub fn peer_incarnation(&self, name: &str) -> Option<u64> {
        self.peers[self.peer_index(name)?].incarnation
    }

    /// Smoothed RTT of a link.
    pub fn link_rtt(&self, name: &str, channel: ChannelId) -> Option<Duration> {
        self.peers[self.peer_index(name)?]
            .links
            .get(channel.index())?
            .srtt
    }

    /// Lost share of the last [`LOSS_WINDOW`] sequence numbers of a link, in [0, 1].
    pub fn link_loss(&self, name: &str, channel: ChannelId) -> Option<f64> {
        self.peers[self.peer_index(name)?]
            .links
            .get(channel.index())?
            .loss
            .loss()
    }

    pub fn drop_counters(&self, channel: ChannelId) -> Option<&DropCounters> {
        Some(&self.channels.get(channel.index())?.drops)
    }

    /// Frames handed in with a channel id we do not have (a driver bug).
    pub fn misrouted(&self) -> u64 {
        self.misrouted
    }

    /// A frame arrived on `channel` at `now`. Returns why it was dropped, if it was (the
    /// reason is also counted on the channel).
    pub fn handle_frame(
        &mut self,
        now: Instant,
        channel: ChannelId,
        bytes: &[u8],
    ) -> Result<(), DropReason> {
        let c = channel.index();
        if c >= self.channels.len() {
            self.misrouted = self.misrouted.saturating_add(1);
            return Err(DropReason::WrongChannel);
        }
        // Deadlines strictly before now were missed by the driver: apply them first, at
        // their own instants, so the event order is the real one.
        self.expire(now, false);
        let result = self.process(now, c, bytes);
        let ch = &mut self.channels[c];
        match result {
            Ok(()) => ch.frames_received = ch.frames_received.saturating_add(1),
            Err(r) => ch.drops.count(r),
        }
        result
    }

    fn process(&mut self, now: Instant, c: usize, bytes: &[u8]) -> Result<(), DropReason> {
        let packet = Packet::new_checked(bytes)?;
        if packet.cluster_name() != self.cluster.as_bytes() {
            return Err(DropReason::WrongCluster);
        }
        if !packet.verify(&self.mac) {
            return Err(DropReason::BadAuth);
        }
        if usize::from(packet.channel()) != c {
            return Err(DropReason::WrongChannel);
        }
        let name = packet.node_name();
        if name == self.node.as_bytes() {
            return Err(DropReason::FromSelf);
        }
        let p = self
            .peers
            .iter()
            .position(|peer| peer.name.as_bytes() == name)
            .ok_or(DropReason::UnknownNode)?;
        let incarnation = packet.incarnation();
        let seq = packet.seq();
        let echo = self.check_echo(&packet, c, now);

        let peer = &mut self.peers[p];
        if peer.incarnation != Some(incarnation) {
            let link = &mut peer.links[c];
            let newer_than_known = match link.candidate {
                Some(h) => h.incarnation != incarnation || seq > h.seq,
                None => true,
            };
            if newer_than_known {
                link.candidate = Some(Heard {
                    incarnation,
                    seq,
                    at: now,
                });
            }
            if !echo.is_some_and(|e| e.fresh) {
                return Err(DropReason::UnconfirmedIncarnation);
            }
            let allowed = match peer.incarnation {
                None => true,
                Some(current) => incarnation > current || !peer.up,
            };
            if !allowed {
                return Err(DropReason::StaleIncarnation);
            }
            self.switch_incarnation(p, incarnation, now);
        } else if seq <= peer.links[c].last_seq {
            return Err(DropReason::Replay);
        }

        let peer = &mut self.peers[p];
        peer.timestamp_us = Some(packet.timestamp_us());
        // Every frame carries the list: compare it in place (our senders sort it), and only
        // on a difference build the sorted copy, so a list in another order is not a change.
        let unchanged = match packet.held() {
            Some(h) => h.iter().eq(peer.held.iter().copied()),
            None => peer.held.is_empty(),
        };
        if !unchanged {
            let mut held: Vec<u32> = packet.held().map_or(Vec::new(), |h| h.iter().collect());
            held.sort_unstable();
            if held != peer.held {
                peer.held.clone_from(&held);
                self.events.push_back(Event {
                    at: now,
                    kind: EventKind::PeerHeld {
                        peer: peer.name.clone(),
                        held,
                    },
                });
            }
        }
        let link = &mut peer.links[c];
        link.last_seq = seq;
        link.loss.record(seq);
        link.last_rx = Some(now);
        link.frames = link.frames.saturating_add(1);
        if let Some(rtt) = echo.and_then(|e| e.rtt) {
            link.rtt_sample(rtt);
        }
        if packet.leaving() {
            if link.up {
                self.link_down(p, c, now, DownReason::Left);
            }
        } else if !link.up {
            link.up = true;
            link.since = Some(now);
            let name = peer.name.clone();
            self.events.push_back(Event {
                at: now,
                kind: EventKind::ChannelUp {
                    peer: name.clone(),
                    channel: ChannelId(c as u8),
                },
            });
            if !peer.up {
                peer.up = true;
                peer.since = Some(now);
                self.events.push_back(Event {
                    at: now,
                    kind: EventKind::PeerUp {
                        peer: name,
                        incarnation,
                    },
                });
            }
        }
        Ok(())
    }

    fn check_echo<T: AsRef<[u8]>>(
        &self,
        packet: &Packet<T>,
        c: usize,
        now: Instant,
    ) -> Option<EchoCheck> {
        let ours = packet
            .echoes()
            .find(|e| e.node == self.node.as_bytes() && e.incarnation == self.incarnation)?;
        let ch = &self.channels[c];
        let sent_at = ch.sent_at(ours.seq)?;
        let elapsed = now.saturating_duration_since(sent_at);
        let hold = Duration::from_micros(u64::from(ours.hold_us));
        Some(EchoCheck {
            fresh: elapsed <= ch.timing.timeout,
            rtt: elapsed.checked_sub(hold),
        })
    }

    fn switch_incarnation(&mut self, p: usize, incarnation: u64, now: Instant) {
        let peer = &mut self.peers[p];
        let old = peer.incarnation.replace(incarnation);
        peer.timestamp_us = None;
        for link in &mut peer.links {
            link.last_seq = 0;
            link.loss = LossWindow::default();
            if link.candidate.is_some_and(|h| h.incarnation == incarnation) {
                link.candidate = None;
            }
        }
        if let Some(old) = old {
            peer.restarts = peer.restarts.saturating_add(1);
            self.events.push_back(Event {
                at: now,
                kind: EventKind::PeerRestarted {
                    peer: peer.name.clone(),
                    old_incarnation: old,
                    new_incarnation: incarnation,
                },
            });
        }
    }

    fn link_down(&mut self, p: usize, c: usize, at: Instant, reason: DownReason) {
        let peer = &mut self.peers[p];
        let link = &mut peer.links[c];
        if !link.up {
            return;
        }
        link.up = false;
        link.since = Some(at);
        self.events.push_back(Event {
            at,
            kind: EventKind::ChannelDown {
                peer: peer.name.clone(),
                channel: ChannelId(c as u8),
                reason,
            },
        });
        if peer.up && !peer.links.iter().any(|l| l.up) {
            peer.up = false;
            peer.since = Some(at);
            self.events.push_back(Event {
                at,
                kind: EventKind::PeerDown {
                    peer: peer.name.clone(),
                    reason,
                },
            });
        }
    }

    /// Take down every up link whose deadline is before `now` (or at `now` when
    /// `inclusive`), in deadline order.
    fn expire(&mut self, now: Instant, inclusive: bool) {
        let mut expired: Vec<(Instant, usize, usize)> = Vec::new();
        for (p, peer) in self.peers.iter().enumerate() {
            for (c, link) in peer.links.iter().enumerate() {
                if !link.up {
                    continue;
                }
                let Some(deadline) = link.deadline(self.channels[c].timing.timeout) else {
                    continue;
                };
                if deadline < now || (inclusive && deadline == now) {
                    expired.push((deadline, p, c));
                }
            }
        }
        expired.sort_unstable();
        for (deadline, p, c) in expired {
            self.link_down(p, c, deadline, DownReason::Timeout);
        }
    }

    /// Service timers: links whose timeout has passed go down.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.expire(now, true);
    }

    /// The next instant [`Liveness::handle_timeout`] or [`Liveness::poll_transmit`] has
    /// something to do. `None`: nothing until a frame arrives.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let sends = self.channels.iter().filter_map(|ch| {
            if ch.leave_pending {
                self.shutdown_at
            } else if self.shutdown_at.is_some() {
                None
            } else {
                Some(ch.next_send)
            }
        });
        let deadlines = self.peers.iter().flat_map(|peer| {
            peer.links
                .iter()
                .zip(&self.channels)
                .filter(|(l, _)| l.up)
                .filter_map(|(l, ch)| l.deadline(ch.timing.timeout))
        });
        sends.chain(deadlines).min()
    }

    /// The next frame to send, if one is due at `now`. Call until `None`.
    pub fn poll_transmit(&mut self, now: Instant) -> Option<Transmit> {
        loop {
            let c = self.channels.iter().position(|ch| {
                ch.leave_pending || (self.shutdown_at.is_none() && ch.next_send <= now)
            })?;
            let leaving = self.channels[c].leave_pending;
            let seq = self.channels[c].seq + 1;
            let encoded = self.encode(now, c, seq, leaving);
            let ch = &mut self.channels[c];
            if leaving {
                ch.leave_pending = false;
            } else {
                let next = ch.next_send.checked_add(ch.timing.interval);
                ch.next_send = match next {
                    Some(n) if n > now => n,
                    _ => now.checked_add(ch.timing.interval).unwrap_or(now),
                };
            }
            match encoded {
                Ok(payload) => {
                    ch.seq = seq;
                    ch.sent[(seq % SENT_HISTORY as u64) as usize] = Some(Sent { seq, at: now });
                    ch.frames_sent = ch.frames_sent.saturating_add(1);
                    return Some(Transmit {
                        channel: ChannelId(c as u8),
                        payload,
                    });
                }
                // Unreachable with a validated config; counted rather than panicking, and
                // the channel's schedule moved on so this cannot spin.
                Err(_) => ch.encode_errors = ch.encode_errors.saturating_add(1),
            }
        }
    }

    fn encode(
        &self,
        now: Instant,
        c: usize,
        seq: u64,
        leaving: bool,
    ) -> Result<Vec<u8>, wire::EmitError> {
        let timeout = self.channels[c].timing.timeout;
        let fresh = |at: Instant| now.saturating_duration_since(at) <= timeout;
        let mut echoes: Vec<EchoRepr<'_>> = Vec::with_capacity(2 * self.peers.len());
        for peer in &self.peers {
            let link = &peer.links[c];
            if let (Some(incarnation), Some(at)) = (peer.incarnation, link.last_rx) {
                if link.last_seq > 0 && fresh(at) {
                    echoes.push(EchoRepr {
                        node: peer.name.as_bytes(),
                        incarnation,
                        seq: link.last_seq,
                        hold_us: micros_u32(now.saturating_duration_since(at)),
                    });
                }
            }
            if let Some(h) = link.candidate {
                if fresh(h.at) {
                    echoes.push(EchoRepr {
                        node: peer.name.as_bytes(),
                        incarnation: h.incarnation,
                        seq: h.seq,
                        hold_us: micros_u32(now.saturating_duration_since(h.at)),
                    });
                }
            }
        }
        let mut repr = Repr {
            flags: if leaving { FLAG_LEAVING } else { 0 },
            channel: c as u8,
            cluster: &self.cluster,
            node: &self.node,
            incarnation: self.incarnation,
            seq,
            timestamp_us: now.saturating_duration_since(self.started).as_micros() as u64,
            echoes: Echoes::List(&echoes),
            held: self.held.as_deref().map(HeldIds::List),
        };
        // The heartbeat must go out whatever the list: a frame that is not sent makes the
        // peers see this node die.
        if repr.held.is_some() && repr.buffer_len() > MAX_FRAME_LEN {
            repr.held = None;
            self.held_omitted.set(self.held_omitted.get() + 1);
        }
        repr.encode(&self.mac)
    }

    /// Membership events in the order they happened.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// Stop sending periodic frames and send one frame flagged LEAVING on every channel, so
    /// peers see us down at once instead of after their timeout. Receiving goes on.
    pub fn shutdown(&mut self, now: Instant) {
        if self.shutdown_at.is_some() {
            return;
        }
        self.shutdown_at = Some(now);
        for ch in &mut self.channels {
            ch.leave_pending = true;
        }
    }

    pub fn is_shut_down(&self) -> bool {
        self.shutdown_at.is_some()
    }

    /// Everything `tandem status` / `tandem links` show, with ages computed at `now`.
    pub fn snapshot(&self, now: Instant) -> Snapshot {
        let ago = |at: Option<Instant>| at.map(|t| millis(now.saturating_duration_since(t)));
        Snapshot {
            cluster: self.cluster.clone(),
            node: self.node.clone(),
            incarnation: format!("{:016x}", self.incarnation),
            uptime_ms: millis(now.saturating_duration_since(self.started)),
            peers: self
                .peers
                .iter()
                .map(|peer| PeerStatus {
                    name: peer.name.clone(),
                    state: if peer.up { State::Up } else { State::Down },
                    since_ms: ago(peer.since),
                    incarnation: peer.incarnation.map(|i| format!("{i:016x}")),
                    restarts: peer.restarts,
                    reported_uptime_ms: peer.timestamp_us.map(|us| us as f64 / 1000.0),
                    links: peer
                        .links
                        .iter()
                        .enumerate()
                        .map(|(c, l)| LinkStatus {
                            channel: ChannelId(c as u8),
                            state: if l.up { State::Up } else { State::Down },
                            since_ms: ago(l.since),
                            last_seen_ago_ms: ago(l.last_rx),
                            rtt_ms: l.srtt.map(millis),
                            rtt_last_ms: l.rtt_last.map(millis),
                            loss_percent: l.loss.loss().map(|x| x * 100.0),
                            frames_received: l.frames,
                            last_seq: l.last_seq,
                        })
                        .collect(),
                })
                .collect(),
            channels: self
                .channels
                .iter()
                .enumerate()
                .map(|(c, ch)| ChannelStatus {
                    id: ChannelId(c as u8),
                    description: None,
                    interval_ms: millis(ch.timing.interval),
                    timeout_ms: millis(ch.timing.timeout),
                    frames_sent: ch.frames_sent,
                    frames_received: ch.frames_received,
                    drops: ch.drops,
                    dropped_total: ch.drops.total(),
                    encode_errors: ch.encode_errors,
                    transport: None,
                })
                .collect(),
        }
    }
}

/// State of every peer and channel (`tandem status`, `tandem links`). Durations are in
/// milliseconds (fractional); incarnations are 16 hex digits.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Snapshot {
    pub cluster: String,
    pub node: String,
    pub incarnation: String,
    pub uptime_ms: f64,
    pub peers: Vec<PeerStatus>,
    pub channels: Vec<ChannelStatus>,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct PeerStatus {
    pub name: String,
    pub state: State,
    /// Time since the last state change; `None` if it never changed.
    pub since_ms: Option<f64>,
    pub incarnation: Option<String>,
    pub restarts: u64,
    /// The peer's own uptime as its last frame said (display only).
    pub reported_uptime_ms: Option<f64>,
    /// One per channel, in channel order.
    pub links: Vec<LinkStatus>,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct LinkStatus {
    pub channel: ChannelId,
    pub state: State,
    pub since_ms: Option<f64>,
    pub last_seen_ago_ms: Option<f64>,
    /// Smoothed round-trip time.
    pub rtt_ms: Option<f64>,
    pub rtt_last_ms: Option<f64>,
    /// Over the last [`LOSS_WINDOW`] sequence numbers.
    pub loss_percent: Option<f64>,
    pub frames_received: u64,
    pub last_seq: u64,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ChannelStatus {
    pub id: ChannelId,
    /// Filled in by the driver (`udp-multicast eth0 239.192.0.1:5405`).
    pub description: Option<String>,
    pub interval_ms: f64,
    pub timeout_ms: f64,
    pub frames_sent: u64,
    /// Accepted frames.
    pub frames_received: u64,
    pub drops: DropCounters,
    pub dropped_total: u64,
    pub encode_errors: u64,
    /// The I/O shell's own counters, filled in by the driver.
    pub transport: Option<TransportStats>,
}

#[cfg(test)]
mod tests;
