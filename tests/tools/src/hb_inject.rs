//! `hb-inject`: put forged, replayed and garbage frames on tandem's heartbeat channels, for
//! the end-to-end test of the heartbeat's input checks (issue 3, acceptance 3).
//!
//! One subcommand per transport. Each frames what it sends exactly as `tandem-heartbeat`'s
//! shell for that transport does, with the crate's own public encoder and framing functions
//! (`wire::Repr::encode`, `channel::framing::encode_length_prefixed` / `encode_serial`), so
//! that a forged frame differs from a genuine one only where the test means it to:
//!
//! * `udp`: datagrams to a channel's multicast group (or any address), out of `--src-if`.
//! * `tcp`: connect to a node's heartbeat port and write `u16`-length-prefixed frames. A node
//!   accepts heartbeat connections only from its peers' addresses: run this in a peer's
//!   network namespace (or give `--src` one of the peer's addresses).
//! * `serial`: write to a tty, normally the far end of a pty pair relayed by socat (writing
//!   to `lb2`'s end reaches `lb1`). Each frame goes out in one `write`, so it cannot
//!   interleave with the frames of the node that also has that end open.
//!
//! What to send (one of):
//!
//! * `--wrong-key KEY`: frames right in every field (magic, version, flags, `--channel`,
//!   `--cluster`, a member's name `--node`, `--incarnation`, `--seq` counting up) but
//!   authenticated with another key. A receiver must count them as `bad_auth` and nothing
//!   else. Pass the peer's real incarnation and a sequence number ahead of its own, so that a
//!   receiver that skipped the check would visibly accept them (and then count the peer's
//!   genuine frames as replays).
//! * `--random N`: garbage. UDP: datagrams of N random bytes (`malformed`). TCP and serial,
//!   by `--framing`: `framed` wraps N random bytes (at most the longest frame) in the
//!   transport's framing, so they reach the core (`malformed`); `raw` writes N random bytes
//!   as they are (TCP: one connection, almost surely a bad length prefix, counted by the
//!   transport as a framing error, or else frames the core counts as malformed; serial:
//!   framing errors, the garbage ended by a `0x00` delimiter so it is reported at once).
//! * A replay of a genuine frame, resent unchanged `--count` times after `--replay-delay-ms`
//!   (by then the receiver has accepted the original and later frames, so a copy is a
//!   `replay`; resent on another channel than the one it was captured on, it is a
//!   `wrong_channel`, the id being covered by the HMAC):
//!   - `udp --replay-capture GROUP:PORT --iface IF --from NODE`: join the group and take one
//!     frame of NODE carrying `--channel`;
//!   - `tcp --replay-sniff --from NODE`: take one frame of NODE carrying `--channel` from the
//!     TCP segments to or from the `--dst` port, with a packet socket (run in NODE's
//!     namespace: it sees NODE's own outgoing heartbeat connection);
//!   - `serial --replay-socat-log FILE --from NODE`: take one frame of NODE carrying
//!     `--channel` from the hex dump of the pty relay (`socat -x ... 2>FILE`);
//!   - `--replay FILE` (every transport): a frame saved by a capture's `--save FILE`.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr, TcpStream, UdpSocket};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::thread::sleep;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use clap::{ArgGroup, Args, Parser, Subcommand, ValueEnum};
use socket2::{Domain, Protocol, Socket, Type};
use tandem_heartbeat::channel::framing::{encode_length_prefixed, encode_serial, SerialDecoder};
use tandem_heartbeat::wire::{keyed_mac, Echoes, Packet, Repr, MAX_FRAME_LEN};

#[derive(Parser)]
#[command(
    name = "hb-inject",
    about = "Send forged, replayed or garbage heartbeat frames on a UDP, TCP or serial channel"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// UDP datagrams (multicast group or unicast address).
    Udp(UdpArgs),
    /// Length-prefixed frames over a TCP connection to a node's heartbeat port.
    Tcp(TcpArgs),
    /// COBS + CRC-32 framed frames written to a tty.
    Serial(SerialArgs),
}

/// Options every transport has.
#[derive(Args)]
struct Common {
    /// How many frames (or pieces of garbage) to send.
    #[arg(long, default_value_t = 3)]
    count: u32,
    /// Pause between two sends, in milliseconds.
    #[arg(long, default_value_t = 20)]
    gap_ms: u64,
    /// Wire channel id (the position of the channel's `[[heartbeat]]` entry, from 0): put in
    /// forged frames, and required of captured ones.
    #[arg(long, default_value_t = 0)]
    channel: u8,
}

/// What forged frames say about themselves.
#[derive(Args)]
struct Forge {
    /// Authenticate with this key instead of the cluster's: the contents of the file KEY
    /// (trailing newlines removed, as tandem reads key files) if it names one, else the
    /// string itself.
    #[arg(long, value_name = "KEYFILE-OR-STRING")]
    wrong_key: Option<String>,
    /// Cluster name in forged frames.
    #[arg(long, default_value = "lab")]
    cluster: String,
    /// Sender node name in forged frames: a real member, so that only the key is wrong.
    #[arg(long)]
    node: Option<String>,
    /// Sender incarnation (decimal, or hex with 0x); default: a fresh one, drawn the way
    /// tandem draws its own.
    #[arg(long, value_parser = parse_u64)]
    incarnation: Option<u64>,
    /// Sequence number of the first forged frame; the next ones count up from it.
    #[arg(long, default_value_t = 1000)]
    seq: u64,
}

/// Options of the captures.
#[derive(Args)]
struct Capture {
    /// Node whose genuine frame is captured for a replay.
    #[arg(long, value_name = "NODE")]
    from: Option<String>,
    /// Give up capturing after this many milliseconds.
    #[arg(long, default_value_t = 5000)]
    capture_timeout_ms: u64,
    /// Wait between capturing and resending, so that the receiver has accepted the original
    /// (and later frames) before the first copy arrives.
    #[arg(long, default_value_t = 300)]
    replay_delay_ms: u64,
    /// Also save the captured frame to FILE (for `--replay FILE` on another channel).
    #[arg(long, value_name = "FILE")]
    save: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Framing {
    /// Random bytes as they are.
    Raw,
    /// Random bytes wrapped in the transport's framing, so that they reach the core.
    Framed,
    /// Framed, then raw.
    Both,
}

#[derive(Args)]
#[command(group(ArgGroup::new("what").required(true)
    .args(["wrong_key", "random", "replay_capture", "replay"])))]
struct UdpArgs {
    /// Destination: the channel's multicast group and port, or a node's address and port.
    #[arg(long, value_name = "IP:PORT")]
    dst: SocketAddr,
    /// Send out of this interface (default: `--iface` when capturing).
    #[arg(long, value_name = "IF")]
    src_if: Option<String>,
    /// Datagrams of N random bytes.
    #[arg(long, value_name = "N")]
    random: Option<usize>,
    /// Join GROUP:PORT on `--iface`, capture one genuine frame of `--from`, resend it.
    #[arg(long, value_name = "GROUP:PORT", requires_all = ["iface", "from"])]
    replay_capture: Option<SocketAddr>,
    /// Interface to join the capture group on.
    #[arg(long, value_name = "IF")]
    iface: Option<String>,
    /// Resend the frame saved in FILE.
    #[arg(long, value_name = "FILE")]
    replay: Option<PathBuf>,
    #[command(flatten)]
    common: Common,
    #[command(flatten)]
    forge: Forge,
    #[command(flatten)]
    capture: Capture,
}

#[derive(Args)]
#[command(group(ArgGroup::new("what").required(true)
    .args(["wrong_key", "random", "replay", "replay_sniff"])))]
struct TcpArgs {
    /// The node's heartbeat listener.
    #[arg(long, value_name = "IP:PORT")]
    dst: SocketAddr,
    /// Local address to connect from (default: the kernel's choice).
    #[arg(long, value_name = "IP")]
    src: Option<IpAddr>,
    /// Garbage of N random bytes (see --framing).
    #[arg(long, value_name = "N")]
    random: Option<usize>,
    /// How to send --random.
    #[arg(long, value_enum, default_value_t = Framing::Both)]
    framing: Framing,
    /// Resend the frame saved in FILE.
    #[arg(long, value_name = "FILE")]
    replay: Option<PathBuf>,
    /// Capture a genuine frame of `--from` from TCP segments to or from the `--dst` port (a
    /// packet socket, in this network namespace), resend it.
    #[arg(long, requires = "from")]
    replay_sniff: bool,
    #[command(flatten)]
    common: Common,
    #[command(flatten)]
    forge: Forge,
    #[command(flatten)]
    capture: Capture,
}

#[derive(Args)]
#[command(group(ArgGroup::new("what").required(true)
    .args(["wrong_key", "random", "replay", "replay_socat_log"])))]
struct SerialArgs {
    /// The tty to write to (for a socat pty pair: the end the *other* node uses).
    #[arg(long, value_name = "PATH")]
    device: PathBuf,
    /// Line speed set on the tty.
    #[arg(long, default_value_t = 115_200)]
    baud: u32,
    /// Garbage of N random bytes (see --framing).
    #[arg(long, value_name = "N")]
    random: Option<usize>,
    /// How to send --random.
    #[arg(long, value_enum, default_value_t = Framing::Both)]
    framing: Framing,
    /// Resend the frame saved in FILE.
    #[arg(long, value_name = "FILE")]
    replay: Option<PathBuf>,
    /// Capture a genuine frame of `--from` from the hex dump socat writes with `-x`, resend it.
    #[arg(long, value_name = "FILE", requires = "from")]
    replay_socat_log: Option<PathBuf>,
    #[command(flatten)]
    common: Common,
    #[command(flatten)]
    forge: Forge,
    #[command(flatten)]
    capture: Capture,
}

fn parse_u64(s: &str) -> Result<u64, String> {
    let r = match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(h) => u64::from_str_radix(h, 16),
        None => s.parse(),
    };
    r.map_err(|e| e.to_string())
}

fn random_bytes(n: usize) -> anyhow::Result<Vec<u8>> {
    let mut buf = vec![0u8; n];
    File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut buf))
        .context("reading /dev/urandom")?;
    Ok(buf)
}

/// The bytes of `--wrong-key`: a file's contents without trailing newlines, or the string.
fn wrong_key_bytes(arg: &str) -> anyhow::Result<Vec<u8>> {
    let path = Path::new(arg);
    let mut key = if path.is_file() {
        std::fs::read(path).with_context(|| format!("reading key file {arg}"))?
    } else {
        arg.as_bytes().to_vec()
    };
    while matches!(key.last(), Some(b'\n' | b'\r')) {
        key.pop();
    }
    if key.is_empty() {
        bail!("--wrong-key: empty key");
    }
    Ok(key)
}

/// `count` frames signed with the wrong key, sequence numbers counting up from `--seq`.
fn forge_frames(f: &Forge, channel: u8, count: u32) -> anyhow::Result<Vec<Vec<u8>>> {
    let key = wrong_key_bytes(f.wrong_key.as_deref().unwrap_or_default())?;
    let node = f
        .node
        .as_deref()
        .context("--wrong-key needs --node (a member of the cluster)")?;
    let mac = keyed_mac(&key);
    let incarnation = f
        .incarnation
        .unwrap_or_else(tandem_heartbeat::new_incarnation);
    (0..u64::from(count))
        .map(|i| {
            Repr {
                flags: 0,
                channel,
                cluster: &f.cluster,
                node,
                incarnation,
                seq: f.seq.saturating_add(i).max(1),
                // The sender's uptime, display only: an hour.
                timestamp_us: 3_600_000_000,
                echoes: Echoes::List(&[]),
                held: None,
            }
            .encode(&mac)
            .map_err(|e| anyhow!("encoding the forged frame: {e}"))
        })
        .collect()
}

/// One line about a frame, for the log.
fn describe(frame: &[u8]) -> String {
    match Packet::new_checked(frame) {
        Ok(p) => format!(
            "node {} cluster {} channel {} incarnation {:#018x} seq {} ({} bytes)",
            String::from_utf8_lossy(p.node_name()),
            String::from_utf8_lossy(p.cluster_name()),
            p.channel(),
            p.incarnation(),
            p.seq(),
            frame.len()
        ),
        Err(e) => format!("not a frame: {e} ({} bytes)", frame.len()),
    }
}

/// A well-formed frame sent by `from` for `channel`.
fn is_frame_of(frame: &[u8], from: &str, channel: u8) -> bool {
    Packet::new_checked(frame)
        .is_ok_and(|p| p.node_name() == from.as_bytes() && p.channel() == channel)
}

fn load_frame(path: &Path) -> anyhow::Result<Vec<u8>> {
    let frame = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    Packet::new_checked(&frame[..])
        .map_err(|e| anyhow!("{}: not a heartbeat frame: {e}", path.display()))?;
    Ok(frame)
}

/// After a capture: save it if asked, wait, and return `count` copies.
fn replay_copies(frame: Vec<u8>, c: &Capture, count: u32) -> anyhow::Result<Vec<Vec<u8>>> {
    println!("hb-inject: captured {}", describe(&frame));
    if let Some(path) = &c.save {
        std::fs::write(path, &frame).with_context(|| format!("writing {}", path.display()))?;
    }
    sleep(Duration::from_millis(c.replay_delay_ms));
    Ok(vec![frame; count as usize])
}

fn from_node(c: &Capture) -> anyhow::Result<&str> {
    c.from.as_deref().context("a capture needs --from NODE")
}

// ---------------------------------------------------------------------------------------------
// UDP

fn udp_sender(dst: SocketAddr, iface: Option<&str>) -> anyhow::Result<UdpSocket> {
    let (domain, any) = match dst {
        SocketAddr::V4(_) => (Domain::IPV4, IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
        SocketAddr::V6(_) => (Domain::IPV6, IpAddr::V6(Ipv6Addr::UNSPECIFIED)),
    };
    let s = Socket::new(domain, Type::DGRAM, Some(Protocol::UDP)).context("udp socket")?;
    s.bind(&SocketAddr::new(any, 0).into()).context("bind")?;
    if let Some(ifn) = iface {
        // SO_BINDTODEVICE: multicast leaves by this interface even without a route.
        s.bind_device(Some(ifn.as_bytes()))
            .with_context(|| format!("SO_BINDTODEVICE {ifn}"))?;
    }
    if dst.ip().is_multicast() {
        match dst {
            SocketAddr::V4(_) => {
                s.set_multicast_ttl_v4(1)?;
                s.set_multicast_loop_v4(false)?;
            }
            SocketAddr::V6(_) => {
                s.set_multicast_hops_v6(1)?;
                s.set_multicast_loop_v6(false)?;
            }
        }
    }
    Ok(s.into())
}

fn capture_udp(a: &UdpArgs, group: SocketAddr) -> anyhow::Result<Vec<u8>> {
    let from = from_node(&a.capture)?;
    let iface = a
        .iface
        .as_deref()
        .context("--replay-capture needs --iface")?;
    // The very socket the heartbeat channel itself would open: bound to the group, joined
    // on the interface only.
    let s = tandem_heartbeat::channel::udp::multicast_socket(iface, group)
        .with_context(|| format!("joining {group} on {iface}"))?;
    s.set_nonblocking(false)?;
    let deadline = Instant::now() + Duration::from_millis(a.capture.capture_timeout_ms);
    let mut buf = vec![0u8; 2048];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            bail!(
                "no frame of {from} on channel {} in {group} on {iface} within {} ms",
                a.common.channel,
                a.capture.capture_timeout_ms
            );
        }
        s.set_read_timeout(Some(left))?;
        match s.recv_from(&mut buf) {
            Ok((n, src)) => {
                if is_frame_of(&buf[..n], from, a.common.channel) {
                    println!("hb-inject: captured from {src}");
                    return Ok(buf[..n].to_vec());
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) => {}
            Err(e) => return Err(e).context("receiving"),
        }
    }
}

fn udp(a: UdpArgs) -> anyhow::Result<()> {
    let n = a.common.count;
    let (what, payloads) = if a.forge.wrong_key.is_some() {
        (
            "wrong-key frame",
            forge_frames(&a.forge, a.common.channel, n)?,
        )
    } else if let Some(len) = a.random {
        let p = (0..n)
            .map(|_| random_bytes(len))
            .collect::<anyhow::Result<_>>()?;
        ("random datagram", p)
    } else if let Some(group) = a.replay_capture {
        let frame = capture_udp(&a, group)?;
        ("replayed frame", replay_copies(frame, &a.capture, n)?)
    } else if let Some(path) = &a.replay {
        ("replayed frame", vec![load_frame(path)?; n as usize])
    } else {
        bail!("nothing to send");
    };
    let iface = a.src_if.as_deref().or(a.iface.as_deref());
    let s = udp_sender(a.dst, iface)?;
    for (i, p) in payloads.iter().enumerate() {
        if i > 0 {
            sleep(Duration::from_millis(a.common.gap_ms));
        }
        s.send_to(p, a.dst)
            .with_context(|| format!("sending to {}", a.dst))?;
    }
    println!(
        "hb-inject: udp: sent {} × {what} to {}: {}",
        payloads.len(),
        a.dst,
        payloads.first().map(|p| describe(p)).unwrap_or_default()
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// TCP

/// The TCP payload of an IPv4 packet if it is a segment from or to `port`.
fn tcp_payload(pkt: &[u8], port: u16) -> Option<&[u8]> {
    if pkt.len() < 20 || pkt[0] >> 4 != 4 || pkt[9] != 6 {
        return None;
    }
    let ihl = usize::from(pkt[0] & 0x0f) * 4;
    let total = usize::from(u16::from_be_bytes([pkt[2], pkt[3]])).min(pkt.len());
    let tcp = pkt.get(ihl..total)?;
    if tcp.len() < 20 {
        return None;
    }
    let sport = u16::from_be_bytes([tcp[0], tcp[1]]);
    let dport = u16::from_be_bytes([tcp[2], tcp[3]]);
    if sport != port && dport != port {
        return None;
    }
    tcp.get(usize::from(tcp[12] >> 4) * 4..)
}

/// Length-prefixed frames that a segment's payload holds whole, from its start.
fn prefixed_frames(mut payload: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    while payload.len() >= 2 {
        let len = usize::from(u16::from_be_bytes([payload[0], payload[1]]));
        if len == 0 || len > MAX_FRAME_LEN {
            break;
        }
        let Some(frame) = payload.get(2..2 + len) else {
            break;
        };
        out.push(frame);
        payload = &payload[2 + len..];
    }
    out
}

fn sniff_tcp(a: &TcpArgs) -> anyhow::Result<Vec<u8>> {
    let from = from_node(&a.capture)?;
    let port = a.dst.port();
    // ETH_P_ALL, not ETH_P_IP: only "all protocols" taps see outgoing packets too.
    const ETH_P_ALL: u16 = 0x0003;
    let s = Socket::new(
        Domain::PACKET,
        Type::DGRAM,
        Some(Protocol::from(i32::from(ETH_P_ALL.to_be()))),
    )
    .context("packet socket (needs root / CAP_NET_RAW)")?;
    let deadline = Instant::now() + Duration::from_millis(a.capture.capture_timeout_ms);
    let mut buf = vec![0u8; 65536];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            bail!(
                "no frame of {from} on channel {} in TCP segments of port {port} within {} ms",
                a.common.channel,
                a.capture.capture_timeout_ms
            );
        }
        s.set_read_timeout(Some(left))?;
        match (&s).read(&mut buf) {
            Ok(n) => {
                let Some(payload) = tcp_payload(&buf[..n], port) else {
                    continue;
                };
                if let Some(f) = prefixed_frames(payload)
                    .into_iter()
                    .find(|f| is_frame_of(f, from, a.common.channel))
                {
                    return Ok(f.to_vec());
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) => {}
            Err(e) => return Err(e).context("receiving from the packet socket"),
        }
    }
}

fn tcp_connect(dst: SocketAddr, src: Option<IpAddr>) -> anyhow::Result<TcpStream> {
    let timeout = Duration::from_secs(2);
    let stream = match src {
        None => TcpStream::connect_timeout(&dst, timeout)?,
        Some(ip) => {
            let s = Socket::new(Domain::for_address(dst), Type::STREAM, Some(Protocol::TCP))?;
            s.bind(&SocketAddr::new(ip, 0).into())
                .with_context(|| format!("binding {ip}"))?;
            s.connect_timeout(&dst.into(), timeout)?;
            s.into()
        }
    };
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// One connection: write each piece (pausing `gap` between them), half-close, and wait
/// (bounded) until the node closes its side: it has then read, and handled, everything.
/// Returns how many pieces were written: a node may hang up early (on raw garbage, or at
/// once on a connection from an address that is not a peer), which is reported, not an
/// error.
fn tcp_session(a: &TcpArgs, pieces: &[Vec<u8>]) -> anyhow::Result<usize> {
    let mut stream =
        tcp_connect(a.dst, a.src).with_context(|| format!("connecting to {}", a.dst))?;
    let mut written = 0;
    for (i, p) in pieces.iter().enumerate() {
        if i > 0 {
            sleep(Duration::from_millis(a.common.gap_ms));
        }
        match stream.write_all(p) {
            Ok(()) => written += 1,
            Err(e) => {
                println!("hb-inject: tcp: the node hung up: {e}");
                break;
            }
        }
    }
    let _ = stream.shutdown(Shutdown::Write);
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    let mut sink = [0u8; 256];
    let deadline = Instant::now() + Duration::from_secs(3);
    while Instant::now() < deadline {
        match stream.read(&mut sink) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
    }
    Ok(written)
}

fn tcp(a: TcpArgs) -> anyhow::Result<()> {
    let n = a.common.count;
    let report = |what: &str, pieces: &[Vec<u8>], written: usize, first: String| {
        println!(
            "hb-inject: tcp: wrote {written} of {} × {what} to {}: {first}",
            pieces.len(),
            a.dst
        );
    };
    if let Some(len) = a.random {
        if matches!(a.framing, Framing::Framed | Framing::Both) {
            let len = len.clamp(1, MAX_FRAME_LEN);
            let pieces = (0..n)
                .map(|_| random_bytes(len).map(|r| encode_length_prefixed(&r)))
                .collect::<anyhow::Result<Vec<_>>>()?;
            let w = tcp_session(&a, &pieces)?;
            report(
                "length-prefixed random frame",
                &pieces,
                w,
                format!("{len} bytes each"),
            );
        }
        if matches!(a.framing, Framing::Raw | Framing::Both) {
            let pieces = vec![random_bytes(len.max(2))?];
            let w = tcp_session(&a, &pieces)?;
            let prefix = u16::from_be_bytes([pieces[0][0], pieces[0][1]]);
            report(
                "raw random bytes",
                &pieces,
                w,
                format!("{} bytes, first length prefix {prefix}", pieces[0].len()),
            );
        }
        return Ok(());
    }
    let (what, frames) = if a.forge.wrong_key.is_some() {
        (
            "wrong-key frame",
            forge_frames(&a.forge, a.common.channel, n)?,
        )
    } else if a.replay_sniff {
        let frame = sniff_tcp(&a)?;
        ("replayed frame", replay_copies(frame, &a.capture, n)?)
    } else if let Some(path) = &a.replay {
        ("replayed frame", vec![load_frame(path)?; n as usize])
    } else {
        bail!("nothing to send");
    };
    let pieces: Vec<Vec<u8>> = frames.iter().map(|f| encode_length_prefixed(f)).collect();
    let w = tcp_session(&a, &pieces)?;
    report(what, &pieces, w, describe(&frames[0]));
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Serial

/// Open the tty without becoming its controlling process, and put it in raw mode at `baud`
/// (no flush: the node using the same tty keeps whatever is in flight).
fn open_tty(path: &Path, baud: u32) -> anyhow::Result<File> {
    use nix::sys::termios::{self, SetArg};
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(nix::libc::O_NOCTTY | nix::libc::O_NONBLOCK)
        .open(path)
        .with_context(|| format!("opening {}", path.display()))?;
    let speed = tandem_heartbeat::channel::serial::baud_rate(baud)
        .with_context(|| format!("unsupported speed {baud}"))?;
    let mut t = termios::tcgetattr(&file).context("tcgetattr")?;
    termios::cfmakeraw(&mut t);
    termios::cfsetspeed(&mut t, speed).context("cfsetspeed")?;
    termios::tcsetattr(&file, SetArg::TCSANOW, &t).context("tcsetattr")?;
    Ok(file)
}

/// Write all of `bytes`, normally in one `write` (atomic against other writers of the tty),
/// giving up after two seconds of a stalled line.
fn tty_write(file: &mut File, mut bytes: &[u8]) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(2);
    while !bytes.is_empty() {
        match file.write(bytes) {
            Ok(0) => bail!("the tty accepted no bytes"),
            Ok(k) => bytes = &bytes[k..],
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                if Instant::now() > deadline {
                    bail!("the tty stalled (is the relay running?)");
                }
                sleep(Duration::from_millis(1));
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e).context("writing to the tty"),
        }
    }
    Ok(())
}

/// Frames in a `socat -x` hex dump: each direction (`>` / `<` headers) is its own byte
/// stream, decoded like the serial shell does.
fn frames_in_socat_log(text: &str) -> Vec<Vec<u8>> {
    let mut streams: [Vec<u8>; 2] = [Vec::new(), Vec::new()];
    let mut dir: Option<usize> = None;
    for line in text.lines() {
        if line.starts_with('>') {
            dir = Some(0);
        } else if line.starts_with('<') {
            dir = Some(1);
        } else if line.starts_with(' ') {
            if let Some(d) = dir {
                streams[d].extend(
                    line.split_whitespace()
                        .filter(|t| t.len() == 2)
                        .filter_map(|t| u8::from_str_radix(t, 16).ok()),
                );
            }
        } else {
            dir = None;
        }
    }
    let mut frames = Vec::new();
    for s in &streams {
        SerialDecoder::new().push(s, |r| {
            if let Ok(f) = r {
                frames.push(f);
            }
        });
    }
    frames
}

fn capture_socat_log(a: &SerialArgs, path: &Path) -> anyhow::Result<Vec<u8>> {
    let from = from_node(&a.capture)?;
    let deadline = Instant::now() + Duration::from_millis(a.capture.capture_timeout_ms);
    loop {
        let text = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        if let Some(f) = frames_in_socat_log(&String::from_utf8_lossy(&text))
            .into_iter()
            .rev()
            .find(|f| is_frame_of(f, from, a.common.channel))
        {
            return Ok(f);
        }
        if Instant::now() > deadline {
            bail!(
                "no frame of {from} on channel {} in {} within {} ms",
                a.common.channel,
                path.display(),
                a.capture.capture_timeout_ms
            );
        }
        sleep(Duration::from_millis(100));
    }
}

fn serial(a: SerialArgs) -> anyhow::Result<()> {
    let n = a.common.count;
    let mut batches: Vec<(String, Vec<Vec<u8>>)> = Vec::new();
    if let Some(len) = a.random {
        if matches!(a.framing, Framing::Framed | Framing::Both) {
            let len = len.clamp(1, MAX_FRAME_LEN);
            let pieces = (0..n)
                .map(|_| random_bytes(len).map(|r| encode_serial(&r)))
                .collect::<anyhow::Result<_>>()?;
            batches.push((format!("COBS-framed random frame ({len} bytes)"), pieces));
        }
        if matches!(a.framing, Framing::Raw | Framing::Both) {
            let pieces = (0..n)
                .map(|_| {
                    random_bytes(len.max(1)).map(|mut r| {
                        r.push(0);
                        r
                    })
                })
                .collect::<anyhow::Result<_>>()?;
            batches.push((format!("raw random bytes ({len} + delimiter)"), pieces));
        }
    } else {
        let (what, frames) = if a.forge.wrong_key.is_some() {
            (
                "wrong-key frame",
                forge_frames(&a.forge, a.common.channel, n)?,
            )
        } else if let Some(log) = &a.replay_socat_log {
            let frame = capture_socat_log(&a, log)?;
            ("replayed frame", replay_copies(frame, &a.capture, n)?)
        } else if let Some(path) = &a.replay {
            ("replayed frame", vec![load_frame(path)?; n as usize])
        } else {
            bail!("nothing to send");
        };
        let what = format!("{what}: {}", describe(&frames[0]));
        batches.push((what, frames.iter().map(|f| encode_serial(f)).collect()));
    }
    let mut tty = open_tty(&a.device, a.baud)?;
    for (what, pieces) in &batches {
        for (i, p) in pieces.iter().enumerate() {
            if i > 0 {
                sleep(Duration::from_millis(a.common.gap_ms));
            }
            tty_write(&mut tty, p)?;
        }
        println!(
            "hb-inject: serial: wrote {} × {what} to {}",
            pieces.len(),
            a.device.display()
        );
        sleep(Duration::from_millis(a.common.gap_ms));
    }
    Ok(())
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().cmd {
        Cmd::Udp(a) => udp(a),
        Cmd::Tcp(a) => tcp(a),
        Cmd::Serial(a) => serial(a),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
        assert!(Cli::try_parse_from(["hb-inject", "udp", "--dst", "239.192.0.1:5405"]).is_err());
        assert!(Cli::try_parse_from([
            "hb-inject",
            "tcp",
            "--dst",
            "10.0.0.1:5406",
            "--random",
            "5",
            "--replay",
            "x"
        ])
        .is_err());
        assert!(Cli::try_parse_from([
            "hb-inject",
            "udp",
            "--dst",
            "239.192.0.1:5405",
            "--replay-capture",
            "239.192.0.1:5405"
        ])
        .is_err());
    }

    fn forge(key: &str) -> Forge {
        Forge {
            wrong_key: Some(key.into()),
            cluster: "lab".into(),
            node: Some("lb2".into()),
            incarnation: Some(0x1234),
            seq: 7,
        }
    }

    #[test]
    fn forged_frames_are_perfect_but_for_the_key() {
        let frames = forge_frames(&forge("not-the-key"), 2, 3).unwrap();
        assert_eq!(frames.len(), 3);
        for (i, f) in frames.iter().enumerate() {
            let p = Packet::new_checked(&f[..]).unwrap();
            assert_eq!(p.cluster_name(), b"lab");
            assert_eq!(p.node_name(), b"lb2");
            assert_eq!(p.channel(), 2);
            assert_eq!(p.incarnation(), 0x1234);
            assert_eq!(p.seq(), 7 + i as u64);
            assert!(p.verify(&keyed_mac(b"not-the-key")));
            assert!(!p.verify(&keyed_mac(b"the-cluster-key")));
        }
    }

    #[test]
    fn socat_log_frames_per_direction() {
        let a = forge_frames(&forge("k"), 2, 1).unwrap().remove(0);
        let b = forge_frames(&forge("other"), 2, 1).unwrap().remove(0);
        let hex = |bytes: &[u8]| {
            bytes
                .chunks(16)
                .map(|c| {
                    let h: Vec<String> = c.iter().map(|x| format!("{x:02x}")).collect();
                    format!(" {}\n", h.join(" "))
                })
                .collect::<String>()
        };
        let ea = encode_serial(&a);
        let eb = encode_serial(&b);
        // Interleaved blocks of the two directions, each frame split across blocks.
        let mut log = String::new();
        log += "> 2026/01/01 00:00:00.000001  length=10 from=0 to=9\n";
        log += &hex(&ea[..10]);
        log += "--\n< 2026/01/01 00:00:00.000002  length=5 from=0 to=4\n";
        log += &hex(&eb[..5]);
        log += "> 2026/01/01 00:00:00.000003  length=1 from=10 to=10\n";
        log += &hex(&ea[10..]);
        log += "< 2026/01/01 00:00:00.000004  length=1 from=5 to=5\n";
        log += &hex(&eb[5..]);
        let frames = frames_in_socat_log(&log);
        assert_eq!(frames, vec![a.clone(), b]);
        assert!(is_frame_of(&frames[0], "lb2", 2));
        assert!(!is_frame_of(&frames[0], "lb2", 0));
        assert!(!is_frame_of(&frames[0], "lb1", 2));
    }

    #[test]
    fn tcp_segment_parsing() {
        let frame = forge_frames(&forge("k"), 1, 1).unwrap().remove(0);
        let mut payload = encode_length_prefixed(&frame);
        payload.extend(encode_length_prefixed(&frame));
        payload.extend([0x00, 0x10, 1, 2]); // a cut frame at the end
        let mut pkt = vec![0u8; 20 + 20];
        pkt[0] = 0x45;
        pkt[9] = 6;
        let total = (pkt.len() + payload.len()) as u16;
        pkt[2..4].copy_from_slice(&total.to_be_bytes());
        pkt[20..22].copy_from_slice(&40000u16.to_be_bytes());
        pkt[22..24].copy_from_slice(&5406u16.to_be_bytes());
        pkt[32] = 5 << 4;
        pkt.extend(&payload);
        assert_eq!(tcp_payload(&pkt, 5406), Some(&payload[..]));
        assert_eq!(tcp_payload(&pkt, 5405), None);
        let frames = prefixed_frames(tcp_payload(&pkt, 5406).unwrap());
        assert_eq!(frames, vec![&frame[..], &frame[..]]);
        assert_eq!(parse_u64("0x10").unwrap(), 16);
        assert_eq!(parse_u64("10").unwrap(), 10);
    }
}
