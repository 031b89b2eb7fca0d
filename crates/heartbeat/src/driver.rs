//! The driver: one tokio task that owns the [`Liveness`] core and the channel shells, moves
//! frames and timers between them, and publishes membership [`Event`]s.
//!
//! The task never blocks on I/O: sends are `try_send`s into the shells' queues, received
//! frames come from the shells' queues, and events go out on an unbounded channel (events
//! are transitions, bounded by the frame rate; a slow consumer must not stall heartbeats).
//! [`Heartbeat::snapshot`] and [`Heartbeat::shutdown`] are requests to the task.

use std::future::poll_fn;
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use crate::channel::{self, ChannelIo};
use crate::liveness::{ChannelId, Event, EventKind, Liveness, LivenessConfig, Snapshot};
use crate::spec::{ChannelSpec, ClusterSpec, SpecError};

/// Longest time [`Heartbeat::shutdown`] waits for the LEAVING frames to leave.
const SHUTDOWN_FLUSH: Duration = Duration::from_millis(200);

/// Everything needed to start the heartbeat of one node.
#[derive(Debug, Clone)]
pub struct HeartbeatConfig {
    pub cluster: ClusterSpec,
    /// This node's name.
    pub node: String,
    /// In wire-id order (the same on every node).
    pub channels: Vec<ChannelSpec>,
    /// `None`: draw one with [`crate::new_incarnation`].
    pub incarnation: Option<u64>,
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Spec(#[from] SpecError),
    #[error("heartbeat channel {index} ({description}): {source}")]
    Channel {
        index: usize,
        description: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{channels} channel shells for a core with {expected} channels")]
    ChannelCount { channels: usize, expected: usize },
}

enum Command {
    Snapshot(oneshot::Sender<Snapshot>),
    Shutdown(oneshot::Sender<()>),
}

/// Handle of a running heartbeat. Dropping it stops the driver and every channel at once
/// (no LEAVING frames); [`Heartbeat::shutdown`] stops cleanly.
#[derive(Debug)]
pub struct Heartbeat {
    events: mpsc::UnboundedReceiver<Event>,
    commands: mpsc::Sender<Command>,
    /// The held list frames carry (a watch: only the latest value matters, and setting it
    /// never waits).
    held: watch::Sender<Option<Vec<u32>>>,
    task: JoinHandle<()>,
    incarnation: u64,
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Command::Snapshot(_) => "Snapshot",
            Command::Shutdown(_) => "Shutdown",
        })
    }
}

impl Heartbeat {
    /// Validate, open every channel, start the driver. Must be called inside a tokio
    /// runtime; sockets belong to the calling thread's network namespace.
    pub fn start(config: HeartbeatConfig) -> Result<Heartbeat, StartError> {
        let incarnation = config.incarnation.unwrap_or_else(crate::new_incarnation);
        let core_config = LivenessConfig::from_specs(
            &config.cluster,
            &config.node,
            &config.channels,
            incarnation,
        )?;
        let mut shells = Vec::with_capacity(config.channels.len());
        for (index, spec) in config.channels.iter().enumerate() {
            let io = channel::open(spec).map_err(|source| StartError::Channel {
                index,
                description: spec.describe(),
                source,
            })?;
            shells.push(io);
        }
        let core = Liveness::new(core_config, Instant::now())?;
        Heartbeat::with_channels(core, shells)
    }

    /// Run a core over ready-made shells (custom transports, tests). `channels[i]` carries
    /// [`ChannelId`] `i`.
    pub fn with_channels(
        core: Liveness,
        channels: Vec<ChannelIo>,
    ) -> Result<Heartbeat, StartError> {
        if channels.len() != core.channel_count() {
            return Err(StartError::ChannelCount {
                channels: channels.len(),
                expected: core.channel_count(),
            });
        }
        let (event_tx, events) = mpsc::unbounded_channel();
        let (commands, command_rx) = mpsc::channel(8);
        let (held, held_rx) = watch::channel(None);
        let incarnation = core.incarnation();
        let task = tokio::spawn(run(core, channels, event_tx, command_rx, held_rx));
        Ok(Heartbeat {
            events,
            commands,
            held,
            task,
            incarnation,
        })
    }

    /// The held list every frame carries from now on ([`Liveness::set_held`]). Never
    /// waits; the next frame carries it.
    pub fn set_held(&self, held: Option<Vec<u32>>) {
        self.held.send_if_modified(|h| {
            let changed = *h != held;
            *h = held;
            changed
        });
    }

    pub fn incarnation(&self) -> u64 {
        self.incarnation
    }

    /// The next membership event; `None` once the driver has stopped.
    pub async fn next_event(&mut self) -> Option<Event> {
        self.events.recv().await
    }

    /// An event if one is waiting.
    pub fn try_next_event(&mut self) -> Option<Event> {
        self.events.try_recv().ok()
    }

    /// The event receiver itself (for `select!` loops).
    pub fn events(&mut self) -> &mut mpsc::UnboundedReceiver<Event> {
        &mut self.events
    }

    /// Hands the event stream to whoever waits on it apart from this handle (the daemon's
    /// forwarding task); [`next_event`](Self::next_event) returns `None` afterwards.
    pub fn take_events(&mut self) -> mpsc::UnboundedReceiver<Event> {
        std::mem::replace(&mut self.events, mpsc::unbounded_channel().1)
    }

    /// State of every peer, link and channel now; `None` if the driver has stopped.
    pub async fn snapshot(&self) -> Option<Snapshot> {
        let (tx, rx) = oneshot::channel();
        self.commands.send(Command::Snapshot(tx)).await.ok()?;
        rx.await.ok()
    }

    /// Send a LEAVING frame on every channel (peers mark us down at once), wait briefly for
    /// them to go out, stop.
    pub async fn shutdown(self) {
        let (tx, rx) = oneshot::channel();
        if self.commands.send(Command::Shutdown(tx)).await.is_ok() {
            let _ = rx.await;
        }
    }
}

impl Drop for Heartbeat {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn log_event(event: &Event) {
    match &event.kind {
        EventKind::ChannelUp { peer, channel } => {
            tracing::info!(%peer, %channel, "heartbeat link up")
        }
        EventKind::ChannelDown {
            peer,
            channel,
            reason,
        } => {
            tracing::warn!(%peer, %channel, ?reason, "heartbeat link down")
        }
        EventKind::PeerUp { peer, incarnation } => {
            tracing::info!(%peer, incarnation = format_args!("{incarnation:016x}"), "peer up")
        }
        EventKind::PeerDown { peer, reason } => tracing::warn!(%peer, ?reason, "peer down"),
        EventKind::PeerHeld { peer, held } => {
            tracing::info!(%peer, instances = held.len(), "the peer's held instances changed")
        }
        EventKind::PeerRestarted {
            peer,
            old_incarnation,
            new_incarnation,
        } => tracing::warn!(
            %peer,
            old = format_args!("{old_incarnation:016x}"),
            new = format_args!("{new_incarnation:016x}"),
            "peer restarted"
        ),
    }
}

/// Hand every due frame to its shell and every event to the consumer.
fn pump(
    core: &mut Liveness,
    channels: &[ChannelIo],
    events: &mpsc::UnboundedSender<Event>,
    now: Instant,
) {
    while let Some(t) = core.poll_transmit(now) {
        if let Some(io) = channels.get(t.channel.index()) {
            io.send(Arc::from(t.payload));
        }
    }
    while let Some(e) = core.poll_event() {
        log_event(&e);
        // A consumer that went away does not stop the heartbeat.
        let _ = events.send(e);
    }
}

fn snapshot(core: &Liveness, channels: &[ChannelIo]) -> Snapshot {
    let mut snap = core.snapshot(Instant::now());
    for (status, io) in snap.channels.iter_mut().zip(channels) {
        status.description = Some(io.label().to_owned());
        status.transport = Some(io.stats());
    }
    snap
}

async fn run(
    mut core: Liveness,
    mut channels: Vec<ChannelIo>,
    events: mpsc::UnboundedSender<Event>,
    mut commands: mpsc::Receiver<Command>,
    mut held: watch::Receiver<Option<Vec<u32>>>,
) {
    let mut held_open = true;
    let mut closed = vec![false; channels.len()];
    let mut next = 0usize;
    loop {
        let now = Instant::now();
        core.handle_timeout(now);
        pump(&mut core, &channels, &events, now);
        let deadline = core.poll_timeout();
        let received = poll_fn(|cx| {
            let n = channels.len();
            for i in 0..n {
                let idx = (next + i) % n;
                if closed[idx] {
                    continue;
                }
                match channels[idx].poll_recv(cx) {
                    Poll::Ready(Some(frame)) => {
                        next = idx + 1;
                        return Poll::Ready((idx, frame));
                    }
                    Poll::Ready(None) => {
                        tracing::error!(
                            channel = idx,
                            label = channels[idx].label(),
                            "heartbeat channel shell stopped"
                        );
                        closed[idx] = true;
                    }
                    Poll::Pending => {}
                }
            }
            Poll::Pending
        });
        let sleep = async {
            match deadline {
                Some(d) => tokio::time::sleep_until(tokio::time::Instant::from_std(d)).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            biased;
            command = commands.recv() => match command {
                Some(Command::Snapshot(reply)) => {
                    let _ = reply.send(snapshot(&core, &channels));
                }
                Some(Command::Shutdown(done)) => {
                    let now = Instant::now();
                    core.shutdown(now);
                    pump(&mut core, &channels, &events, now);
                    for io in &channels {
                        io.flush(SHUTDOWN_FLUSH).await;
                    }
                    // The shells took the frames; give them a moment to write them.
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    let _ = done.send(());
                    return;
                }
                // Every handle is gone (the handle's Drop also aborts us).
                None => return,
            },
            (idx, frame) = received => {
                let _ = core.handle_frame(Instant::now(), ChannelId(idx as u8), &frame);
            }
            changed = held.changed(), if held_open => match changed {
                Ok(()) => core.set_held(held.borrow_and_update().clone()),
                // The handle is gone; `commands` closing ends the task.
                Err(_) => held_open = false,
            },
            () = sleep => {}
        }
    }
}
