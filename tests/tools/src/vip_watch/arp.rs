//! The client's view: every interval, broadcast one ARP request for the VIP out of the
//! client's interface and collect the replies until the next request. Two different MACs
//! answering one request means two nodes held the VIP at the moment the request reached
//! them (a broadcast reaches every node at the same instant, give or take the bridge).

use std::collections::BTreeSet;
use std::io;
use std::mem;
use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use crate::sys::{self, check};

const ETH_P_ARP: u16 = 0x0806;
const ARP_LEN: usize = 28;
const FRAME_MIN: usize = 60;
/// At most this many violation windows are kept (the count goes on).
pub const KEEP_MAX: usize = 1000;

/// The client's side, opened in the client's namespace.
pub struct ArpSocket {
    fd: OwnedFd,
    ifindex: u32,
    pub mac: [u8; 6],
    pub ip: Ipv4Addr,
}

impl ArpSocket {
    /// An AF_PACKET socket for ARP frames on interface `ifindex`, in the calling thread's
    /// current network namespace. `mac` and `ip` are the interface's own (sender fields).
    pub fn open(ifindex: u32, mac: [u8; 6], ip: Ipv4Addr) -> io::Result<Self> {
        let proto = ETH_P_ARP.to_be();
        // SAFETY: plain socket(2) call; the result is checked before use.
        let fd = check(unsafe {
            libc::socket(
                libc::AF_PACKET,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
                proto as libc::c_int,
            )
        })?;
        // SAFETY: fd is a fresh descriptor we own.
        let owned = unsafe { OwnedFd::from_raw_fd(fd) };
        // SAFETY: sockaddr_ll is plain old data.
        let mut sll: libc::sockaddr_ll = unsafe { mem::zeroed() };
        sll.sll_family = libc::AF_PACKET as u16;
        sll.sll_protocol = proto;
        sll.sll_ifindex = ifindex as libc::c_int;
        // SAFETY: sll is a valid sockaddr_ll of the given length.
        check(unsafe {
            libc::bind(
                fd,
                (&sll as *const libc::sockaddr_ll).cast(),
                mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        })?;
        Ok(ArpSocket {
            fd: owned,
            ifindex,
            mac,
            ip,
        })
    }

    fn send(&self, frame: &[u8]) -> io::Result<()> {
        // SAFETY: sockaddr_ll is plain old data.
        let mut sll: libc::sockaddr_ll = unsafe { mem::zeroed() };
        sll.sll_family = libc::AF_PACKET as u16;
        sll.sll_protocol = ETH_P_ARP.to_be();
        sll.sll_ifindex = self.ifindex as libc::c_int;
        sll.sll_halen = 6;
        sll.sll_addr[..6].copy_from_slice(&[0xff; 6]);
        // SAFETY: frame and sll are valid for the lengths passed.
        let n = unsafe {
            libc::sendto(
                self.fd.as_raw_fd(),
                frame.as_ptr().cast(),
                frame.len(),
                0,
                (&sll as *const libc::sockaddr_ll).cast(),
                mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        };
        if n < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(())
        }
    }

    /// One frame, without blocking: `Ok(None)` when there is nothing to read. Frames the
    /// client sent itself are skipped.
    fn recv(&self, buf: &mut [u8]) -> io::Result<Option<usize>> {
        loop {
            // SAFETY: sockaddr_ll is plain old data.
            let mut sll: libc::sockaddr_ll = unsafe { mem::zeroed() };
            let mut len = mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t;
            // SAFETY: buf, sll and len are valid for the call.
            let n = unsafe {
                libc::recvfrom(
                    self.fd.as_raw_fd(),
                    buf.as_mut_ptr().cast(),
                    buf.len(),
                    libc::MSG_DONTWAIT,
                    (&mut sll as *mut libc::sockaddr_ll).cast(),
                    &mut len,
                )
            };
            if n < 0 {
                let e = io::Error::last_os_error();
                return match e.raw_os_error() {
                    Some(libc::EAGAIN) | Some(libc::EINTR) => Ok(None),
                    _ => Err(e),
                };
            }
            if sll.sll_pkttype == libc::PACKET_OUTGOING {
                continue;
            }
            return Ok(Some(n as usize));
        }
    }

    /// Wait until a frame can be read or CLOCK_MONOTONIC reaches `deadline_ns`.
    fn wait(&self, deadline_ns: i64) {
        let ts = sys::timespec(deadline_ns - sys::monotonic_ns());
        let mut pfd = libc::pollfd {
            fd: self.fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: pfd and ts are valid; a null sigmask keeps the current one. A signal or an
        // error only ends the wait early.
        unsafe { libc::ppoll(&mut pfd, 1, &ts, std::ptr::null()) };
    }
}

/// A broadcast ARP request for `target` from `mac`/`ip`, padded to the Ethernet minimum.
pub fn build_request(mac: [u8; 6], ip: Ipv4Addr, target: Ipv4Addr) -> Vec<u8> {
    let mut f = Vec::with_capacity(FRAME_MIN);
    f.extend_from_slice(&[0xff; 6]);
    f.extend_from_slice(&mac);
    f.extend_from_slice(&ETH_P_ARP.to_be_bytes());
    f.extend_from_slice(&[0, 1, 0x08, 0x00, 6, 4, 0, 1]);
    f.extend_from_slice(&mac);
    f.extend_from_slice(&ip.octets());
    f.extend_from_slice(&[0; 6]);
    f.extend_from_slice(&target.octets());
    f.resize(FRAME_MIN, 0);
    f
}

/// What an ARP frame on the client's wire means for the check.
#[derive(Debug, PartialEq, Eq)]
pub enum Seen {
    /// A reply for the VIP addressed to the client: an answer to one of its requests. The
    /// MAC is the one the reply announces (the sender hardware address).
    Reply([u8; 6]),
    /// A gratuitous ARP (request or reply) announcing the VIP: counted, not an answer.
    Gratuitous([u8; 6]),
    Other,
}

pub fn classify(f: &[u8], vip: Ipv4Addr, our_mac: [u8; 6]) -> Seen {
    if f.len() < 14 + ARP_LEN || f[12..14] != ETH_P_ARP.to_be_bytes() {
        return Seen::Other;
    }
    let a = &f[14..14 + ARP_LEN];
    if a[0..6] != [0, 1, 0x08, 0x00, 6, 4] {
        return Seen::Other;
    }
    let op = u16::from_be_bytes([a[6], a[7]]);
    let sha: [u8; 6] = a[8..14].try_into().unwrap();
    let spa = Ipv4Addr::new(a[14], a[15], a[16], a[17]);
    let tha: [u8; 6] = a[18..24].try_into().unwrap();
    let tpa = Ipv4Addr::new(a[24], a[25], a[26], a[27]);
    if spa != vip {
        return Seen::Other;
    }
    if tpa == vip {
        return Seen::Gratuitous(sha);
    }
    if op == 2 && tha == our_mac {
        return Seen::Reply(sha);
    }
    Seen::Other
}

/// The replies to one request: when it was sent (monotonic ns) and the distinct MACs that
/// answered it, in order of arrival.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Window {
    pub t_ns: i64,
    pub macs: Vec<[u8; 6]>,
}

#[derive(Debug, Default)]
pub struct ArpOutcome {
    pub requests: u64,
    pub replies: u64,
    pub gratuitous: u64,
    pub send_errors: u64,
    pub recv_errors: u64,
    pub last_error: Option<String>,
    /// Windows in which two or more different MACs answered (the first KEEP_MAX).
    pub violations: Vec<Window>,
    pub violations_total: u64,
    /// The timeline of the answering set: a window is kept when its set of MACs differs
    /// from the previous window's (empty sets included).
    pub changes: Vec<Window>,
    pub max_repliers: usize,
    /// Every MAC that answered or announced the VIP.
    pub macs_seen: BTreeSet<[u8; 6]>,
}

impl ArpOutcome {
    fn close(&mut self, w: Window) {
        self.max_repliers = self.max_repliers.max(w.macs.len());
        if w.macs.len() >= 2 {
            self.violations_total += 1;
            if self.violations.len() < KEEP_MAX {
                self.violations.push(w.clone());
            }
        }
        let mut set = w.macs.clone();
        set.sort_unstable();
        let changed = match self.changes.last() {
            None => true,
            Some(prev) => {
                let mut p = prev.macs.clone();
                p.sort_unstable();
                p != set
            }
        };
        if changed {
            self.changes.push(w);
        }
    }

    fn error(&mut self, e: &io::Error) {
        self.last_error = Some(e.to_string());
    }
}

/// Probe until `end_ns` (monotonic) or the stop flag, one request every `interval_ns`.
pub fn run(sock: &ArpSocket, vip: Ipv4Addr, interval_ns: i64, end_ns: i64) -> ArpOutcome {
    let req = build_request(sock.mac, sock.ip, vip);
    let mut out = ArpOutcome::default();
    let mut buf = vec![0u8; 2048];
    let mut window: Option<Window> = None;
    let mut next = sys::monotonic_ns();
    loop {
        let now = sys::monotonic_ns();
        if sys::stop_requested() || now >= end_ns {
            break;
        }
        if now >= next {
            if let Some(w) = window.take() {
                out.close(w);
            }
            match sock.send(&req) {
                Ok(()) => {
                    out.requests += 1;
                    window = Some(Window {
                        t_ns: now,
                        macs: Vec::new(),
                    });
                }
                Err(e) => {
                    // The client's link is down, say: no request, no window.
                    out.send_errors += 1;
                    out.error(&e);
                }
            }
            next += interval_ns;
            if next <= now {
                // Descheduled for more than an interval: do not burst to catch up.
                next = now + interval_ns;
            }
        }
        sock.wait(next.min(end_ns));
        loop {
            match sock.recv(&mut buf) {
                Ok(None) => break,
                Ok(Some(n)) => match classify(&buf[..n.min(buf.len())], vip, sock.mac) {
                    Seen::Reply(mac) => {
                        out.replies += 1;
                        out.macs_seen.insert(mac);
                        if let Some(w) = window.as_mut() {
                            if !w.macs.contains(&mac) {
                                w.macs.push(mac);
                            }
                        }
                    }
                    Seen::Gratuitous(mac) => {
                        out.gratuitous += 1;
                        out.macs_seen.insert(mac);
                    }
                    Seen::Other => {}
                },
                Err(e) => {
                    out.recv_errors += 1;
                    out.error(&e);
                    // Do not spin on a persistent error.
                    sys::sleep_until_monotonic(sys::monotonic_ns() + interval_ns);
                    break;
                }
            }
        }
    }
    if let Some(w) = window.take() {
        out.close(w);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const CLIENT: [u8; 6] = [2, 0, 0, 0, 0, 3];
    const NODE: [u8; 6] = [2, 0, 0, 0, 0, 1];

    fn arp(op: u16, sha: [u8; 6], spa: [u8; 4], tha: [u8; 6], tpa: [u8; 4]) -> Vec<u8> {
        let mut f = Vec::new();
        f.extend_from_slice(&tha);
        f.extend_from_slice(&sha);
        f.extend_from_slice(&[0x08, 0x06, 0, 1, 0x08, 0, 6, 4]);
        f.extend_from_slice(&op.to_be_bytes());
        f.extend_from_slice(&sha);
        f.extend_from_slice(&spa);
        f.extend_from_slice(&tha);
        f.extend_from_slice(&tpa);
        f
    }

    #[test]
    fn request_layout() {
        let f = build_request(
            CLIENT,
            Ipv4Addr::new(192, 0, 2, 3),
            Ipv4Addr::new(10, 0, 0, 9),
        );
        assert_eq!(f.len(), 60);
        assert_eq!(&f[..6], &[0xff; 6]);
        assert_eq!(&f[6..12], &CLIENT);
        assert_eq!(&f[12..22], &[0x08, 0x06, 0, 1, 0x08, 0, 6, 4, 0, 1]);
        assert_eq!(&f[22..28], &CLIENT);
        assert_eq!(&f[28..32], &[192, 0, 2, 3]);
        assert_eq!(&f[32..38], &[0; 6]);
        assert_eq!(&f[38..42], &[10, 0, 0, 9]);
    }

    #[test]
    fn classifies_replies_and_announcements() {
        let vip = Ipv4Addr::new(10, 0, 0, 9);
        let reply = arp(2, NODE, [10, 0, 0, 9], CLIENT, [192, 0, 2, 3]);
        assert_eq!(classify(&reply, vip, CLIENT), Seen::Reply(NODE));
        // A reply to someone else's request is not ours.
        let other = arp(2, NODE, [10, 0, 0, 9], [2, 9, 9, 9, 9, 9], [192, 0, 2, 4]);
        assert_eq!(classify(&other, vip, CLIENT), Seen::Other);
        let garp = arp(1, NODE, [10, 0, 0, 9], [0xff; 6], [10, 0, 0, 9]);
        assert_eq!(classify(&garp, vip, CLIENT), Seen::Gratuitous(NODE));
        let garp_reply = arp(2, NODE, [10, 0, 0, 9], CLIENT, [10, 0, 0, 9]);
        assert_eq!(classify(&garp_reply, vip, CLIENT), Seen::Gratuitous(NODE));
        let for_other_ip = arp(2, NODE, [10, 0, 0, 8], CLIENT, [192, 0, 2, 3]);
        assert_eq!(classify(&for_other_ip, vip, CLIENT), Seen::Other);
        assert_eq!(classify(&reply[..30], vip, CLIENT), Seen::Other);
    }

    #[test]
    fn windows_make_violations_and_a_timeline() {
        let mut o = ArpOutcome::default();
        let a = [1; 6];
        let b = [2; 6];
        o.close(Window {
            t_ns: 1,
            macs: vec![a],
        });
        o.close(Window {
            t_ns: 2,
            macs: vec![a],
        });
        o.close(Window {
            t_ns: 3,
            macs: vec![b, a],
        });
        o.close(Window {
            t_ns: 4,
            macs: vec![a, b],
        });
        o.close(Window {
            t_ns: 5,
            macs: vec![],
        });
        assert_eq!(o.violations_total, 2);
        assert_eq!(o.max_repliers, 2);
        let times: Vec<i64> = o.changes.iter().map(|w| w.t_ns).collect();
        assert_eq!(times, vec![1, 3, 5]);
    }
}
