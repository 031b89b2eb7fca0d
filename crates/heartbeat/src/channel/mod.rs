//! Thin tokio I/O shells, one per channel kind, all behind the same small interface,
//! [`ChannelIo`]: the driver hands a frame to [`ChannelIo::send`] (never blocks, never
//! waits for a connection) and takes received frames from [`ChannelIo::recv`] /
//! [`ChannelIo::poll_recv`].
//!
//! A shell moves opaque frames. It does not parse or authenticate them, holds no liveness
//! state and decides nothing: it only adds and removes its transport's framing (TCP length
//! prefix, serial COBS + CRC-32), counts what went wrong in [`TransportStats`], and drops
//! frames it cannot deliver promptly — a late heartbeat is worse than a lost one, because
//! it would make a peer look alive after it stopped.
//!
//! * [`udp`]: multicast group on one interface, or a list of unicast peers.
//! * [`tcp`]: a listener plus one reconnecting (exponential backoff, capped) connection to
//!   each peer, `u16` length-prefixed frames.
//! * [`serial`]: a tty in raw mode, frames `0x00 · COBS(frame · CRC-32) · 0x00`.
//!
//! Every shell runs as tokio tasks that are aborted when the [`ChannelIo`] is dropped.

pub mod framing;
pub mod serial;
pub mod tcp;
pub mod udp;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio::task::AbortHandle;

/// Frames waiting to be sent, per channel. Small on purpose: heartbeats are perishable.
pub const OUTBOUND_QUEUE: usize = 16;
/// Received frames waiting for the driver.
pub const INBOUND_QUEUE: usize = 256;
/// Receive buffer: any valid frame fits; longer datagrams arrive cut and are dropped by the
/// core as malformed.
pub(crate) const RECV_BUF: usize = 2048;

/// One frame queued for sending.
#[derive(Debug, Clone)]
pub struct Outbound {
    /// When the driver queued it; shells drop frames that waited longer than their
    /// channel's interval.
    pub queued_at: Instant,
    pub frame: Arc<[u8]>,
}

impl Outbound {
    pub fn is_stale(&self, max_age: Duration) -> bool {
        self.queued_at.elapsed() > max_age
    }
}

/// Counters of one shell (atomics shared between its tasks and [`ChannelIo::stats`]).
#[derive(Debug, Default)]
pub struct Counters {
    pub frames_sent: AtomicU64,
    pub frames_received: AtomicU64,
    pub send_queue_full: AtomicU64,
    pub send_errors: AtomicU64,
    pub stale_dropped: AtomicU64,
    pub receive_queue_full: AtomicU64,
    pub receive_errors: AtomicU64,
    pub framing_errors: AtomicU64,
    pub rejected_sources: AtomicU64,
    pub connects: AtomicU64,
    pub disconnects: AtomicU64,
    pub connect_failures: AtomicU64,
    pub connected: AtomicU64,
    last_error: Mutex<Option<String>>,
}

impl Counters {
    pub fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Count an error on `counter` and remember its text for status output.
    pub fn error(&self, counter: &AtomicU64, what: impl std::fmt::Display) {
        Counters::bump(counter);
        let text = what.to_string();
        tracing::debug!(error = %text, "heartbeat transport");
        if let Ok(mut last) = self.last_error.lock() {
            *last = Some(text);
        }
    }

    fn snapshot(&self) -> TransportStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        TransportStats {
            frames_sent: get(&self.frames_sent),
            frames_received: get(&self.frames_received),
            send_queue_full: get(&self.send_queue_full),
            send_errors: get(&self.send_errors),
            stale_dropped: get(&self.stale_dropped),
            receive_queue_full: get(&self.receive_queue_full),
            receive_errors: get(&self.receive_errors),
            framing_errors: get(&self.framing_errors),
            rejected_sources: get(&self.rejected_sources),
            connects: get(&self.connects),
            disconnects: get(&self.disconnects),
            connect_failures: get(&self.connect_failures),
            connected: get(&self.connected),
            last_error: self.last_error.lock().ok().and_then(|l| l.clone()),
        }
    }
}

/// What a shell counted (`tandem links`). Connection fields are TCP only.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct TransportStats {
    /// Frames written (TCP / unicast UDP: once per peer).
    pub frames_sent: u64,
    /// Frames handed to the driver (before authentication).
    pub frames_received: u64,
    /// Frames refused because a send queue was full.
    pub send_queue_full: u64,
    pub send_errors: u64,
    /// Frames dropped because they waited longer than one interval (no connection yet, a
    /// stalled line).
    pub stale_dropped: u64,
    /// Received frames dropped because the driver was behind.
    pub receive_queue_full: u64,
    pub receive_errors: u64,
    /// Serial: bad COBS / CRC / oversized; TCP: bad length prefix.
    pub framing_errors: u64,
    /// Datagrams or connections from addresses that are not peers.
    pub rejected_sources: u64,
    pub connects: u64,
    pub disconnects: u64,
    pub connect_failures: u64,
    /// Outgoing connections up now.
    pub connected: u64,
    pub last_error: Option<String>,
}

/// The shell's end of a [`ChannelIo`]: what a transport task reads frames to send from and
/// hands received frames to. Public so that other transports (and tests) can be plugged in.
#[derive(Debug)]
pub struct ShellEnd {
    pub outbound: mpsc::Receiver<Outbound>,
    inbound: mpsc::Sender<Vec<u8>>,
    pub counters: Arc<Counters>,
}

impl ShellEnd {
    /// Hand a received frame to the driver; never waits (a full queue drops and counts).
    pub fn deliver(&self, frame: Vec<u8>) {
        match self.inbound.try_send(frame) {
            Ok(()) => Counters::bump(&self.counters.frames_received),
            Err(_) => Counters::bump(&self.counters.receive_queue_full),
        }
    }

    /// A sender for received frames, for shells that read in several tasks.
    pub fn deliverer(&self) -> Deliverer {
        Deliverer {
            inbound: self.inbound.clone(),
            counters: self.counters.clone(),
        }
    }
}

/// A clonable [`ShellEnd::deliver`].
#[derive(Debug, Clone)]
pub struct Deliverer {
    inbound: mpsc::Sender<Vec<u8>>,
    pub counters: Arc<Counters>,
}

impl Deliverer {
    pub fn deliver(&self, frame: Vec<u8>) {
        match self.inbound.try_send(frame) {
            Ok(()) => Counters::bump(&self.counters.frames_received),
            Err(_) => Counters::bump(&self.counters.receive_queue_full),
        }
    }
}

/// The driver's view of one channel: send a frame, receive frames, read counters.
#[derive(Debug)]
pub struct ChannelIo {
    label: String,
    outbound: mpsc::Sender<Outbound>,
    inbound: mpsc::Receiver<Vec<u8>>,
    counters: Arc<Counters>,
    tasks: Vec<AbortHandle>,
}

impl ChannelIo {
    /// A channel with no transport yet: the caller runs a task on the [`ShellEnd`] and
    /// registers it with [`ChannelIo::attach`].
    pub fn pair(label: impl Into<String>) -> (ChannelIo, ShellEnd) {
        let (out_tx, out_rx) = mpsc::channel(OUTBOUND_QUEUE);
        let (in_tx, in_rx) = mpsc::channel(INBOUND_QUEUE);
        let counters = Arc::new(Counters::default());
        (
            ChannelIo {
                label: label.into(),
                outbound: out_tx,
                inbound: in_rx,
                counters: counters.clone(),
                tasks: Vec::new(),
            },
            ShellEnd {
                outbound: out_rx,
                inbound: in_tx,
                counters,
            },
        )
    }

    /// Tie a task's lifetime to this channel: it is aborted when the channel is dropped.
    pub fn attach(&mut self, task: AbortHandle) {
        self.tasks.push(task);
    }

    pub fn label(&self) -> &str {
        &self.label
    }

    /// Queue a frame for every peer the channel reaches. Never blocks: `false` if the queue
    /// is full (counted) or the shell has stopped.
    pub fn send(&self, frame: Arc<[u8]>) -> bool {
        let ok = self
            .outbound
            .try_send(Outbound {
                queued_at: Instant::now(),
                frame,
            })
            .is_ok();
        if !ok {
            Counters::bump(&self.counters.send_queue_full);
        }
        ok
    }

    /// The next received frame; `None` once the shell has stopped.
    pub async fn recv(&mut self) -> Option<Vec<u8>> {
        self.inbound.recv().await
    }

    pub fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<Vec<u8>>> {
        self.inbound.poll_recv(cx)
    }

    /// A received frame if one is waiting.
    pub fn try_recv(&mut self) -> Option<Vec<u8>> {
        self.inbound.try_recv().ok()
    }

    pub fn stats(&self) -> TransportStats {
        self.counters.snapshot()
    }

    /// Wait (at most `max`) until the shell has taken every queued frame.
    pub async fn flush(&self, max: Duration) {
        let deadline = tokio::time::Instant::now() + max;
        while self.outbound.capacity() < self.outbound.max_capacity()
            && !self.outbound.is_closed()
            && tokio::time::Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
}

impl Drop for ChannelIo {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// Open the shell a spec asks for. Must be called inside a tokio runtime.
pub fn open(spec: &crate::spec::ChannelSpec) -> std::io::Result<ChannelIo> {
    use crate::spec::ChannelKind;
    use std::io::{Error, ErrorKind};
    spec.validate()
        .map_err(|e| Error::new(ErrorKind::InvalidInput, e.to_string()))?;
    let label = spec.describe();
    let bind = |port: u16| {
        std::net::SocketAddr::new(
            spec.bind
                .unwrap_or(std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED)),
            port,
        )
    };
    // validate() has checked that every field the kind needs is present.
    let missing = |f: &str| Error::new(ErrorKind::InvalidInput, format!("missing {f}"));
    match spec.kind {
        ChannelKind::UdpMulticast => udp::open_multicast(
            label,
            spec.interface
                .as_deref()
                .ok_or_else(|| missing("interface"))?,
            spec.group.ok_or_else(|| missing("group"))?,
            spec.interval,
        ),
        ChannelKind::UdpUnicast => udp::open_unicast(
            label,
            bind(spec.port.ok_or_else(|| missing("port"))?),
            spec.peers.clone(),
            spec.interval,
        ),
        ChannelKind::Tcp => tcp::open(
            label,
            bind(spec.port.ok_or_else(|| missing("port"))?),
            spec.peers.clone(),
            tcp::TcpOptions::for_timing(spec.interval, spec.timeout),
        ),
        ChannelKind::Serial => serial::open(
            label,
            spec.device.as_deref().ok_or_else(|| missing("device"))?,
            spec.baud.unwrap_or(crate::spec::DEFAULT_BAUD),
            serial::SerialOptions::for_timing(spec.interval, spec.timeout),
        ),
    }
}

/// Spawn `fut` on the current runtime, tied to `io`.
pub(crate) fn spawn_attached<F>(io: &mut ChannelIo, fut: F)
where
    F: std::future::Future<Output = ()> + Send + 'static,
{
    let handle = tokio::spawn(fut);
    io.attach(handle.abort_handle());
}

fn runtime_check(what: &str) -> std::io::Result<()> {
    tokio::runtime::Handle::try_current()
        .map(|_| ())
        .map_err(|e| std::io::Error::other(format!("{what} outside a tokio runtime: {e}")))
}
