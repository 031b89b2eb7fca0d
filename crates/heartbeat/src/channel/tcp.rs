//! TCP shell: every node listens, and keeps one outgoing connection to every peer.
//!
//! * Frames go out on our outgoing connections and come in on the connections peers open
//!   to us (and on our outgoing ones too, should a peer write there). Each frame is
//!   `u16` big-endian length + frame; a bad length closes the connection.
//! * One task per peer owns its outgoing connection: connect (with a timeout), then write
//!   frames; on any failure or EOF it waits and reconnects, the wait doubling from
//!   `backoff_initial` up to `backoff_max` (reset once a connection has stayed up for
//!   `backoff_max`). While it is not connected it discards frames (counted as stale): a
//!   heartbeat delivered after the outage would claim liveness for a moment that is gone.
//! * [`ChannelIo::send`] only hands the frame to each peer's bounded queue (`try_send`), so a
//!   peer that is unreachable, slow or reconnecting never blocks the driver or other peers.
//!   Writes have a timeout; a stuck peer gets its connection closed.
//! * The listener accepts only peer IPs (when a peer list is given) and at most
//!   `2 × peers + 2` connections at once; each incoming connection is closed after
//!   `idle_timeout` without a byte (a peer that died without a FIN).

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio::time::{sleep, timeout, Instant};

use super::framing::{encode_length_prefixed, LengthPrefixedDecoder};
use super::{runtime_check, spawn_attached, ChannelIo, Counters, Deliverer, Outbound};

/// Per-peer send queue: a couple of intervals' worth.
const PEER_QUEUE: usize = 4;

/// Timing knobs of the TCP shell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpOptions {
    pub backoff_initial: Duration,
    pub backoff_max: Duration,
    pub connect_timeout: Duration,
    pub write_timeout: Duration,
    /// Incoming connections silent this long are closed.
    pub idle_timeout: Duration,
    /// Frames older than this are not sent (one interval).
    pub stale_after: Duration,
}

impl TcpOptions {
    /// Defaults for a channel with this interval and timeout: backoff 50 ms doubling to
    /// 2 s, connect and write timeouts of one channel timeout, idle timeout three channel
    /// timeouts (at least 1 s).
    pub fn for_timing(interval: Duration, channel_timeout: Duration) -> TcpOptions {
        TcpOptions {
            backoff_initial: Duration::from_millis(50),
            backoff_max: Duration::from_secs(2),
            connect_timeout: channel_timeout.max(Duration::from_millis(200)),
            write_timeout: channel_timeout,
            idle_timeout: channel_timeout
                .saturating_mul(3)
                .max(Duration::from_secs(1)),
            stale_after: interval,
        }
    }
}

fn listener(bind: SocketAddr) -> io::Result<TcpListener> {
    let what = |step: &str, e: io::Error| {
        io::Error::new(e.kind(), format!("tcp listen {bind}: {step}: {e}"))
    };
    let domain = if bind.is_ipv4() {
        Domain::IPV4
    } else {
        Domain::IPV6
    };
    let s =
        Socket::new(domain, Type::STREAM, Some(Protocol::TCP)).map_err(|e| what("socket", e))?;
    s.set_reuse_address(true)
        .map_err(|e| what("SO_REUSEADDR", e))?;
    s.bind(&bind.into()).map_err(|e| what("bind", e))?;
    s.listen(64).map_err(|e| what("listen", e))?;
    s.set_nonblocking(true).map_err(|e| what("O_NONBLOCK", e))?;
    TcpListener::from_std(s.into())
}

fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map(IpAddr::V4)
            .unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
    }
}

/// Open the TCP channel: bind the listener now (so a port conflict is an error here), then
/// run the listener and one connector per peer as tasks. Must be called inside a tokio
/// runtime.
pub fn open(
    label: String,
    bind: SocketAddr,
    peers: Vec<SocketAddr>,
    options: TcpOptions,
) -> io::Result<ChannelIo> {
    runtime_check("tcp channel")?;
    let listener = listener(bind)?;
    let (mut io, mut end) = ChannelIo::pair(label);
    let counters = end.counters.clone();

    let mut queues = Vec::with_capacity(peers.len());
    for &peer in &peers {
        let (tx, rx) = mpsc::channel::<Outbound>(PEER_QUEUE);
        queues.push(tx);
        spawn_attached(&mut io, connector(peer, rx, end.deliverer(), options));
    }
    let allowed: Vec<IpAddr> = peers.iter().map(|p| canonical(p.ip())).collect();
    let max_inbound = 2 * peers.len() + 2;
    spawn_attached(
        &mut io,
        accept_loop(listener, allowed, max_inbound, end.deliverer(), options),
    );
    spawn_attached(&mut io, async move {
        while let Some(out) = end.outbound.recv().await {
            for q in &queues {
                if q.try_send(out.clone()).is_err() {
                    Counters::bump(&counters.send_queue_full);
                }
            }
        }
    });
    Ok(io)
}

/// Outcome of waiting for something while discarding queued frames.
enum Waited<T> {
    Done(T),
    /// The channel is shutting down.
    Closed,
}

/// Await `fut` while discarding (and counting) frames that arrive meanwhile.
async fn discarding<T>(
    fut: impl std::future::Future<Output = T>,
    rx: &mut mpsc::Receiver<Outbound>,
    counters: &Counters,
) -> Waited<T> {
    tokio::pin!(fut);
    loop {
        tokio::select! {
            out = &mut fut => return Waited::Done(out),
            frame = rx.recv() => match frame {
                Some(_) => Counters::bump(&counters.stale_dropped),
                None => return Waited::Closed,
            },
        }
    }
}

async fn connector(
    peer: SocketAddr,
    mut rx: mpsc::Receiver<Outbound>,
    deliver: Deliverer,
    options: TcpOptions,
) {
    let counters = deliver.counters.clone();
    let mut backoff = options.backoff_initial;
    loop {
        let connect = timeout(options.connect_timeout, TcpStream::connect(peer));
        let stream = match discarding(connect, &mut rx, &counters).await {
            Waited::Closed => return,
            Waited::Done(Ok(Ok(stream))) => Some(stream),
            Waited::Done(Ok(Err(e))) => {
                counters.error(
                    &counters.connect_failures,
                    format_args!("connect {peer}: {e}"),
                );
                None
            }
            Waited::Done(Err(_)) => {
                counters.error(
                    &counters.connect_failures,
                    format_args!("connect {peer}: timed out"),
                );
                None
            }
        };
        if let Some(stream) = stream {
            let _ = stream.set_nodelay(true);
            Counters::bump(&counters.connects);
            counters.connected.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(%peer, "heartbeat tcp connected");
            let started = Instant::now();
            let closed = session(peer, stream, &mut rx, &deliver, options).await;
            counters.connected.fetch_sub(1, Ordering::Relaxed);
            Counters::bump(&counters.disconnects);
            if closed {
                return;
            }
            if started.elapsed() >= options.backoff_max {
                backoff = options.backoff_initial;
            }
        }
        if let Waited::Closed = discarding(sleep(backoff), &mut rx, &counters).await {
            return;
        }
        backoff = backoff.saturating_mul(2).min(options.backoff_max);
    }
}

/// Run one outgoing connection until it fails. Returns true if the channel is shutting down.
async fn session(
    peer: SocketAddr,
    stream: TcpStream,
    rx: &mut mpsc::Receiver<Outbound>,
    deliver: &Deliverer,
    options: TcpOptions,
) -> bool {
    let counters = &deliver.counters;
    let (mut rd, mut wr) = stream.into_split();
    let mut decoder = LengthPrefixedDecoder::new();
    let mut buf = vec![0u8; super::RECV_BUF];
    loop {
        tokio::select! {
            out = rx.recv() => {
                let Some(out) = out else { return true };
                if out.is_stale(options.stale_after) {
                    Counters::bump(&counters.stale_dropped);
                    continue;
                }
                let bytes = encode_length_prefixed(&out.frame);
                match timeout(options.write_timeout, wr.write_all(&bytes)).await {
                    Ok(Ok(())) => Counters::bump(&counters.frames_sent),
                    Ok(Err(e)) => {
                        counters.error(&counters.send_errors, format_args!("write {peer}: {e}"));
                        return false;
                    }
                    Err(_) => {
                        counters.error(&counters.send_errors, format_args!("write {peer}: timed out"));
                        return false;
                    }
                }
            }
            // `read` is cancel-safe: no byte is lost when the other branch wins.
            read = rd.read(&mut buf) => match read {
                Ok(0) => return false,
                Ok(n) => {
                    if let Err(e) = decoder.push(&buf[..n], |f| deliver.deliver(f)) {
                        counters.error(&counters.framing_errors, format_args!("from {peer}: {e}"));
                        return false;
                    }
                }
                Err(e) => {
                    counters.error(&counters.receive_errors, format_args!("read {peer}: {e}"));
                    return false;
                }
            },
        }
    }
}

async fn accept_loop(
    listener: TcpListener,
    allowed: Vec<IpAddr>,
    max_inbound: usize,
    deliver: Deliverer,
    options: TcpOptions,
) {
    let counters = deliver.counters.clone();
    let active = Arc::new(AtomicUsize::new(0));
    // Dropped (and every reader aborted) when this task is aborted.
    let mut readers = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, src)) => {
                    if !allowed.is_empty() && !allowed.contains(&canonical(src.ip())) {
                        Counters::bump(&counters.rejected_sources);
                        continue;
                    }
                    if active.load(Ordering::Relaxed) >= max_inbound {
                        counters.error(&counters.rejected_sources, format_args!("too many connections, refused {src}"));
                        continue;
                    }
                    active.fetch_add(1, Ordering::Relaxed);
                    let active = active.clone();
                    let deliver = deliver.clone();
                    readers.spawn(async move {
                        read_incoming(src, stream, &deliver, options).await;
                        active.fetch_sub(1, Ordering::Relaxed);
                    });
                }
                Err(e) => {
                    counters.error(&counters.receive_errors, format_args!("accept: {e}"));
                    // EMFILE and friends persist: do not spin.
                    sleep(Duration::from_millis(50)).await;
                }
            },
            Some(_) = readers.join_next(), if !readers.is_empty() => {}
        }
    }
}

async fn read_incoming(
    src: SocketAddr,
    mut stream: TcpStream,
    deliver: &Deliverer,
    options: TcpOptions,
) {
    let counters = &deliver.counters;
    let mut decoder = LengthPrefixedDecoder::new();
    let mut buf = vec![0u8; super::RECV_BUF];
    loop {
        match timeout(options.idle_timeout, stream.read(&mut buf)).await {
            Ok(Ok(0)) => return,
            Ok(Ok(n)) => {
                if let Err(e) = decoder.push(&buf[..n], |f| deliver.deliver(f)) {
                    counters.error(&counters.framing_errors, format_args!("from {src}: {e}"));
                    return;
                }
            }
            Ok(Err(e)) => {
                counters.error(&counters.receive_errors, format_args!("read {src}: {e}"));
                return;
            }
            Err(_) => {
                tracing::debug!(%src, "heartbeat tcp: idle incoming connection closed");
                return;
            }
        }
    }
}
