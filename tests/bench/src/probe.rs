//! The live side of the benchmark: the UDP echo responder that runs in every node, the
//! 1 ms prober that runs in the client, and the wire capture (VRRP adverts and ARP) that runs
//! beside the prober or alone.
//!
//! Every reception is stamped by the kernel (SO_TIMESTAMPNS, CLOCK_REALTIME), so a prober that
//! is scheduled late still knows when each answer and each advert reached the client's
//! interface. The prober writes one text log per run:
//!
//! ```text
//! # probe target=192.0.2.100:7777 sent=4210 period_us=1000
//! A <rx_ns> <seq> <node>                          answer from the node named <node>
//! V <rx_ns> <src> <vrid> <prio> <version> <int_ms>  VRRP advert seen on the wire
//! R <rx_ns> <op> <sender_ip> <sender_mac> <target_ip>  ARP seen on the wire
//! ```
//!
//! With `--arp`, the prober also sends an ARP probe for the VIP with every UDP probe (sender
//! address 0.0.0.0 and a made-up sender MAC, so the answers reach the capture but neither the
//! client's neighbour table nor the answering nodes' tables): every node that has the VIP
//! configured answers each one, whether or not a daemon still runs on it.

use std::fmt::Write as _;
use std::io::Write as _;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{bail, Context as _};

use crate::sys;

const MAGIC: &[u8; 2] = b"TB";
const POLL: Duration = Duration::from_millis(50);
/// Source MAC of the ARP probes (locally administered): the answers are unicast to it, so
/// the client's kernel drops them (not its MAC) after the capture has seen them.
pub const ARP_PROBE_MAC: [u8; 6] = [0x02, 0x74, 0x62, 0x00, 0x00, 0x01];

/// An ARP request for `target` in an Ethernet broadcast, from [`ARP_PROBE_MAC`] with sender
/// address 0.0.0.0 (an RFC 5227 probe: answered by whoever has `target`, learnt by no one).
pub fn arp_probe_frame(target: Ipv4Addr) -> [u8; 42] {
    let mut f = [0u8; 42];
    f[..6].copy_from_slice(&[0xff; 6]);
    f[6..12].copy_from_slice(&ARP_PROBE_MAC);
    f[12..14].copy_from_slice(&[0x08, 0x06]);
    // htype Ethernet, ptype IPv4, hlen 6, plen 4, op request
    f[14..22].copy_from_slice(&[0, 1, 0x08, 0x00, 6, 4, 0, 1]);
    f[22..28].copy_from_slice(&ARP_PROBE_MAC);
    // sender IP 0.0.0.0 (f[28..32]) and target MAC 00:00:00:00:00:00 (f[32..38]) stay zero
    f[38..42].copy_from_slice(&target.octets());
    f
}

/// A frame of interest seen by the capture.
#[derive(Debug, Clone)]
pub enum Frame {
    Advert {
        src: Ipv4Addr,
        vrid: u8,
        prio: u8,
        version: u8,
        int_ms: u32,
    },
    Arp {
        op: u16,
        sender_ip: Ipv4Addr,
        sender_mac: [u8; 6],
        target_ip: Ipv4Addr,
    },
}

/// Parse an Ethernet frame: IPv4 protocol 112 (VRRP v2/v3 advert) or ARP.
pub fn parse_frame(f: &[u8]) -> Option<Frame> {
    if f.len() < 14 {
        return None;
    }
    let ethertype = u16::from_be_bytes([f[12], f[13]]);
    let p = &f[14..];
    match ethertype {
        0x0800 => {
            if p.len() < 20 || p[0] >> 4 != 4 || p[9] != 112 {
                return None;
            }
            let ihl = usize::from(p[0] & 0x0f) * 4;
            let v = p.get(ihl..)?;
            if v.len() < 8 {
                return None;
            }
            let version = v[0] >> 4;
            let int_ms = match version {
                2 => u32::from(v[5]) * 1000,
                _ => u32::from(u16::from_be_bytes([v[4], v[5]]) & 0x0fff) * 10,
            };
            Some(Frame::Advert {
                src: Ipv4Addr::new(p[12], p[13], p[14], p[15]),
                vrid: v[1],
                prio: v[2],
                version,
                int_ms,
            })
        }
        0x0806 => {
            if p.len() < 28 {
                return None;
            }
            let mut mac = [0u8; 6];
            mac.copy_from_slice(&p[8..14]);
            Some(Frame::Arp {
                op: u16::from_be_bytes([p[6], p[7]]),
                sender_ip: Ipv4Addr::new(p[14], p[15], p[16], p[17]),
                sender_mac: mac,
                target_ip: Ipv4Addr::new(p[24], p[25], p[26], p[27]),
            })
        }
        _ => None,
    }
}

fn mac_str(m: &[u8; 6]) -> String {
    m.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Capture adverts (optionally of one VRID) and ARP on `iface` until the stop flag is set.
/// `saw_advert` is raised at the first advert kept.
fn capture_loop(
    iface: &str,
    vrid: Option<u8>,
    saw_advert: &AtomicBool,
) -> anyhow::Result<Vec<(i64, Frame)>> {
    let idx = sys::ifindex(iface).with_context(|| format!("interface {iface}"))?;
    let fd = sys::packet_socket(idx, POLL).context("AF_PACKET socket (needs root)")?;
    let mut buf = vec![0u8; 2048];
    let mut out = Vec::new();
    while !sys::stop_requested() {
        let Some(r) = sys::recv(&fd, &mut buf).context("capture")? else {
            continue;
        };
        if r.pkttype == Some(libc::PACKET_OUTGOING) {
            continue;
        }
        let Some(frame) = parse_frame(&buf[..r.len.min(buf.len())]) else {
            continue;
        };
        if let Frame::Advert { vrid: v, .. } = frame {
            if vrid.is_some_and(|want| want != v) {
                continue;
            }
            saw_advert.store(true, Ordering::SeqCst);
        }
        out.push((r.ts_ns.unwrap_or_else(sys::realtime_ns), frame));
    }
    Ok(out)
}

fn frame_line(ts: i64, f: &Frame) -> String {
    match f {
        Frame::Advert {
            src,
            vrid,
            prio,
            version,
            int_ms,
        } => format!("V {ts} {src} {vrid} {prio} {version} {int_ms}"),
        Frame::Arp {
            op,
            sender_ip,
            sender_mac,
            target_ip,
        } => format!(
            "R {ts} {op} {sender_ip} {} {target_ip}",
            mac_str(sender_mac)
        ),
    }
}

/// `tandem-bench respond`: answer every probe with the probe's bytes plus this node's name,
/// from the address the probe was sent to. Runs until killed.
pub fn respond(id: &str, port: u16) -> anyhow::Result<()> {
    let fd = sys::udp_socket(
        SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, port),
        Duration::from_secs(3600),
    )
    .with_context(|| format!("binding UDP port {port}"))?;
    let mut buf = vec![0u8; 2048];
    loop {
        let Some(r) = sys::recv(&fd, &mut buf)? else {
            continue;
        };
        let (Some(src), true) = (r.src, r.len >= 10 && buf[..2] == MAGIC[..]) else {
            continue;
        };
        let mut reply = buf[..10].to_vec();
        reply.extend_from_slice(id.as_bytes());
        // A failed reply (the link is being cut) is just a lost answer.
        let _ = sys::send_to(&fd, &reply, src, r.dst);
    }
}

pub struct ProbeOpts {
    pub target: SocketAddrV4,
    pub iface: String,
    pub vrid: Option<u8>,
    pub ready: Option<PathBuf>,
    pub out: PathBuf,
    pub max_secs: f64,
    pub linger_ms: u64,
    pub period_us: u64,
    pub capture: bool,
    /// Send an ARP probe for this address with every UDP probe.
    pub arp: Option<Ipv4Addr>,
}

struct Answer {
    ts: i64,
    seq: u64,
    node: String,
}

/// State the receiver shares with the sender: who answered first, and when (monotonic) a
/// different node first answered, which starts the linger countdown.
struct Shared {
    first_node: Mutex<Option<String>>,
    switch_mono: AtomicI64,
    answers: AtomicU64,
    saw_advert: AtomicBool,
}

fn receive_loop(fd: &std::os::fd::OwnedFd, sh: &Shared) -> anyhow::Result<Vec<Answer>> {
    let mut buf = vec![0u8; 2048];
    let mut out = Vec::new();
    while !sys::stop_requested() {
        let Some(r) = sys::recv(fd, &mut buf).context("receiving answers")? else {
            continue;
        };
        if r.len < 10 || buf[..2] != MAGIC[..] {
            continue;
        }
        let mut s = [0u8; 8];
        s.copy_from_slice(&buf[2..10]);
        let node = String::from_utf8_lossy(&buf[10..r.len]).into_owned();
        {
            let mut first = sh.first_node.lock().expect("lock");
            match first.as_deref() {
                None => *first = Some(node.clone()),
                Some(f) if f != node && sh.switch_mono.load(Ordering::SeqCst) == 0 => {
                    sh.switch_mono.store(sys::monotonic_ns(), Ordering::SeqCst);
                }
                Some(_) => {}
            }
        }
        sh.answers.fetch_add(1, Ordering::SeqCst);
        out.push(Answer {
            ts: r.ts_ns.unwrap_or_else(sys::realtime_ns),
            seq: u64::from_le_bytes(s),
            node,
        });
    }
    Ok(out)
}

/// `tandem-bench probe`: send a numbered UDP probe to the target every `period_us`, record
/// every answer (kernel timestamp, node name) and, with `capture`, every advert and ARP on
/// the wire. Stops `linger_ms` after a second node first answered, at `max_secs`, or on
/// SIGTERM/SIGINT; then writes the log.
pub fn probe(o: &ProbeOpts) -> anyhow::Result<()> {
    sys::install_stop_handler();
    let fd = Arc::new(
        sys::udp_socket(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0), POLL)
            .context("client UDP socket")?,
    );
    let sh = Arc::new(Shared {
        first_node: Mutex::new(None),
        switch_mono: AtomicI64::new(0),
        answers: AtomicU64::new(0),
        saw_advert: AtomicBool::new(!o.capture || o.vrid.is_none()),
    });
    let rx = {
        let (fd, sh) = (fd.clone(), sh.clone());
        std::thread::spawn(move || receive_loop(&fd, &sh))
    };
    let cap = o.capture.then(|| {
        let (iface, vrid, sh) = (o.iface.clone(), o.vrid, sh.clone());
        std::thread::spawn(move || capture_loop(&iface, vrid, &sh.saw_advert))
    });

    let arp = match o.arp {
        Some(vip) => {
            let idx = sys::ifindex(&o.iface).with_context(|| format!("interface {}", o.iface))?;
            let fd = sys::packet_sender().context("AF_PACKET socket for ARP (needs root)")?;
            Some((fd, idx, arp_probe_frame(vip)))
        }
        None => None,
    };
    let mut arp_sent: u64 = 0;
    let period = (o.period_us.max(100) * 1000) as i64;
    let start = sys::monotonic_ns();
    let end = start + (o.max_secs * 1e9) as i64;
    let linger = (o.linger_ms * 1_000_000) as i64;
    let mut next = start;
    let mut seq: u64 = 0;
    let mut ready_written = o.ready.is_none();
    let mut pkt = [0u8; 10];
    pkt[..2].copy_from_slice(MAGIC);
    while !sys::stop_requested() {
        let now = sys::monotonic_ns();
        if now >= end {
            break;
        }
        let sw = sh.switch_mono.load(Ordering::SeqCst);
        if sw != 0 && now - sw >= linger {
            break;
        }
        if !ready_written
            && sh.answers.load(Ordering::SeqCst) > 0
            && sh.saw_advert.load(Ordering::SeqCst)
        {
            if let Some(p) = &o.ready {
                std::fs::write(p, b"ready\n").with_context(|| format!("{}", p.display()))?;
            }
            ready_written = true;
        }
        pkt[2..].copy_from_slice(&seq.to_le_bytes());
        // Sending fails while the client has no neighbour entry yet; that is a lost probe.
        let _ = sys::send_to(&fd, &pkt, o.target, None);
        if let Some((afd, idx, frame)) = &arp {
            if sys::packet_send(afd, *idx, frame).is_ok() {
                arp_sent += 1;
            }
        }
        seq += 1;
        next += period;
        if next < now {
            // We were descheduled for more than a period: do not burst to catch up.
            next = now + period;
        }
        sys::sleep_until_monotonic(next);
    }
    sys::request_stop();
    let answers = rx
        .join()
        .map_err(|_| anyhow::anyhow!("receiver thread panicked"))??;
    let frames = match cap {
        Some(h) => h
            .join()
            .map_err(|_| anyhow::anyhow!("capture thread panicked"))??,
        None => Vec::new(),
    };
    let mut lines: Vec<(i64, String)> = answers
        .iter()
        .map(|a| (a.ts, format!("A {} {} {}", a.ts, a.seq, a.node)))
        .collect();
    lines.extend(frames.iter().map(|(ts, f)| (*ts, frame_line(*ts, f))));
    lines.sort_by_key(|l| l.0);
    let header = format!(
        "# probe target={} sent={seq} period_us={} answers={}{}\n",
        o.target,
        o.period_us,
        answers.len(),
        o.arp.map_or(String::new(), |vip| format!(
            " arp={vip} arp_sent={arp_sent}"
        ))
    );
    write_log(&o.out, &header, &lines)
}

fn write_log(path: &Path, header: &str, lines: &[(i64, String)]) -> anyhow::Result<()> {
    let mut text = String::with_capacity(lines.len() * 48 + header.len());
    text.push_str(header);
    for (_, l) in lines {
        let _ = writeln!(text, "{l}");
    }
    let mut f =
        std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
    f.write_all(text.as_bytes())?;
    Ok(())
}

/// `tandem-bench capture`: record adverts and ARP on `iface` for `secs` (or until
/// SIGTERM/SIGINT), then write the log.
pub fn capture(iface: &str, secs: f64, out: &Path) -> anyhow::Result<()> {
    if secs <= 0.0 {
        bail!("--secs must be positive");
    }
    sys::install_stop_handler();
    let saw = Arc::new(AtomicBool::new(false));
    let h = {
        let (iface, saw) = (iface.to_string(), saw.clone());
        std::thread::spawn(move || capture_loop(&iface, None, &saw))
    };
    let end = sys::monotonic_ns() + (secs * 1e9) as i64;
    while !sys::stop_requested() && sys::monotonic_ns() < end {
        std::thread::sleep(Duration::from_millis(20));
    }
    sys::request_stop();
    let frames = h
        .join()
        .map_err(|_| anyhow::anyhow!("capture thread panicked"))??;
    let lines: Vec<(i64, String)> = frames
        .iter()
        .map(|(ts, f)| (*ts, frame_line(*ts, f)))
        .collect();
    write_log(
        out,
        &format!(
            "# capture iface={iface} secs={secs} frames={}\n",
            frames.len()
        ),
        &lines,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_v3_advert() {
        let mut f = vec![0u8; 14];
        f[12] = 0x08;
        let mut ip = vec![
            0x45, 0, 0, 32, 0, 0, 0, 0, 255, 112, 0, 0, 192, 0, 2, 1, 224, 0, 0, 18,
        ];
        ip.extend_from_slice(&[0x31, 51, 150, 1, 0x00, 10, 0, 0, 192, 0, 2, 100]);
        f.extend_from_slice(&ip);
        match parse_frame(&f) {
            Some(Frame::Advert {
                src,
                vrid,
                prio,
                version,
                int_ms,
            }) => {
                assert_eq!(src, Ipv4Addr::new(192, 0, 2, 1));
                assert_eq!((vrid, prio, version, int_ms), (51, 150, 3, 100));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn arp_probe_parses_back() {
        let vip = Ipv4Addr::new(192, 0, 2, 110);
        let f = arp_probe_frame(vip);
        match parse_frame(&f) {
            Some(Frame::Arp {
                op,
                sender_ip,
                sender_mac,
                target_ip,
            }) => {
                assert_eq!((op, sender_ip, target_ip), (1, Ipv4Addr::UNSPECIFIED, vip));
                assert_eq!(sender_mac, ARP_PROBE_MAC);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(&f[..6], &[0xff; 6]);
    }

    #[test]
    fn parses_v2_interval_in_seconds() {
        let mut f = vec![0u8; 14];
        f[12] = 0x08;
        let mut ip = vec![
            0x45, 0, 0, 40, 0, 0, 0, 0, 255, 112, 0, 0, 192, 0, 2, 3, 224, 0, 0, 18,
        ];
        ip.extend_from_slice(&[0x21, 52, 0, 1, 0, 1, 0, 0, 192, 0, 2, 101, 0, 0, 0, 0]);
        f.extend_from_slice(&ip);
        match parse_frame(&f) {
            Some(Frame::Advert {
                prio,
                version,
                int_ms,
                ..
            }) => assert_eq!((prio, version, int_ms), (0, 2, 1000)),
            other => panic!("{other:?}"),
        }
    }
}
