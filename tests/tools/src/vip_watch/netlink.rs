//! A minimal, synchronous NETLINK_ROUTE client: address dumps (is the VIP configured?) and
//! link dumps (which MACs belong to a node). The socket belongs to the network namespace it
//! was created in, so one socket per node namespace reads that node's state from this
//! process's own thread, without entering the namespace again.

use std::io;
use std::mem;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::Duration;

use crate::sys::{check, setsockopt};

const NLMSG_HDRLEN: usize = 16;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_DUMP: u16 = 0x300;
const NLM_F_DUMP_INTR: u16 = 0x10;
const RTM_NEWLINK: u16 = 16;
const RTM_GETLINK: u16 = 18;
const RTM_NEWADDR: u16 = 20;
const RTM_GETADDR: u16 = 22;
const IFA_ADDRESS: u16 = 1;
const IFA_LOCAL: u16 = 2;
const IFLA_ADDRESS: u16 = 1;
const IFLA_IFNAME: u16 = 3;
const IFADDRMSG_LEN: usize = 8;
const IFINFOMSG_LEN: usize = 16;
const NETLINK_GET_STRICT_CHK: libc::c_int = 12;

/// How long one dump may take before it counts as failed (the sampler never hangs).
const RECV_TIMEOUT: Duration = Duration::from_secs(2);
/// A dump whose data changed while it was being read (NLM_F_DUMP_INTR) is read again.
const DUMP_TRIES: usize = 3;

fn align4(n: usize) -> usize {
    (n + 3) & !3
}

/// One interface of a node, as a link dump reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub index: u32,
    pub name: String,
    pub mac: Option<[u8; 6]>,
}

pub struct Netlink {
    fd: OwnedFd,
    seq: u32,
    buf: Vec<u8>,
}

impl Netlink {
    /// A NETLINK_ROUTE socket in the calling thread's current network namespace.
    pub fn open() -> io::Result<Self> {
        // SAFETY: plain socket(2) call; the result is checked before use.
        let fd = check(unsafe {
            libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                libc::NETLINK_ROUTE,
            )
        })?;
        // SAFETY: fd is a fresh descriptor we own.
        let owned = unsafe { OwnedFd::from_raw_fd(fd) };
        let tv = libc::timeval {
            tv_sec: RECV_TIMEOUT.as_secs() as libc::time_t,
            tv_usec: 0,
        };
        setsockopt(fd, libc::SOL_SOCKET, libc::SO_RCVTIMEO, &tv)?;
        let size: libc::c_int = 1 << 20;
        if setsockopt(fd, libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, &size).is_err() {
            let _ = setsockopt(fd, libc::SOL_SOCKET, libc::SO_RCVBUF, &size);
        }
        // Strict checking, when the kernel has it, makes it filter address dumps by family.
        let one: libc::c_int = 1;
        let _ = setsockopt(fd, libc::SOL_NETLINK, NETLINK_GET_STRICT_CHK, &one);
        // SAFETY: sockaddr_nl is plain old data; pid 0 lets the kernel pick our port id.
        let mut sa: libc::sockaddr_nl = unsafe { mem::zeroed() };
        sa.nl_family = libc::AF_NETLINK as libc::sa_family_t;
        // SAFETY: sa is a valid sockaddr_nl of the given length.
        check(unsafe {
            libc::bind(
                fd,
                (&sa as *const libc::sockaddr_nl).cast(),
                mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t,
            )
        })?;
        Ok(Netlink {
            fd: owned,
            seq: 0,
            buf: vec![0u8; 64 * 1024],
        })
    }

    /// Send a dump request of `msg_type` with `body`, and hand every answer message (type,
    /// payload) of this request to `f`. Returns whether the kernel flagged the dump as
    /// interrupted (the data changed while it was being read).
    fn dump_once(
        &mut self,
        msg_type: u16,
        body: &[u8],
        f: &mut dyn FnMut(u16, &[u8]),
    ) -> io::Result<bool> {
        self.seq = self.seq.wrapping_add(1);
        let seq = self.seq;
        let len = NLMSG_HDRLEN + body.len();
        let mut req = Vec::with_capacity(align4(len));
        req.extend_from_slice(&(len as u32).to_ne_bytes());
        req.extend_from_slice(&msg_type.to_ne_bytes());
        req.extend_from_slice(&(NLM_F_REQUEST | NLM_F_DUMP).to_ne_bytes());
        req.extend_from_slice(&seq.to_ne_bytes());
        req.extend_from_slice(&0u32.to_ne_bytes());
        req.extend_from_slice(body);
        req.resize(align4(len), 0);
        // SAFETY: sockaddr_nl is plain old data; pid 0 is the kernel.
        let mut sa: libc::sockaddr_nl = unsafe { mem::zeroed() };
        sa.nl_family = libc::AF_NETLINK as libc::sa_family_t;
        // SAFETY: req and sa are valid for the lengths passed.
        let n = unsafe {
            libc::sendto(
                self.fd.as_raw_fd(),
                req.as_ptr().cast(),
                req.len(),
                0,
                (&sa as *const libc::sockaddr_nl).cast(),
                mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t,
            )
        };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        let mut interrupted = false;
        loop {
            // SAFETY: buf is valid for its length.
            let n = unsafe {
                libc::recv(
                    self.fd.as_raw_fd(),
                    self.buf.as_mut_ptr().cast(),
                    self.buf.len(),
                    0,
                )
            };
            if n < 0 {
                let e = io::Error::last_os_error();
                if e.raw_os_error() == Some(libc::EINTR) {
                    continue;
                }
                if e.raw_os_error() == Some(libc::EAGAIN) {
                    return Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "netlink dump timed out",
                    ));
                }
                return Err(e);
            }
            let mut msgs = &self.buf[..n as usize];
            while msgs.len() >= NLMSG_HDRLEN {
                let mlen = u32::from_ne_bytes(msgs[0..4].try_into().unwrap()) as usize;
                let mtype = u16::from_ne_bytes(msgs[4..6].try_into().unwrap());
                let mflags = u16::from_ne_bytes(msgs[6..8].try_into().unwrap());
                let mseq = u32::from_ne_bytes(msgs[8..12].try_into().unwrap());
                if mlen < NLMSG_HDRLEN || mlen > msgs.len() {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "malformed netlink message",
                    ));
                }
                let payload = &msgs[NLMSG_HDRLEN..mlen];
                msgs = &msgs[align4(mlen).min(msgs.len())..];
                if mseq != seq {
                    // A leftover of an earlier request that timed out.
                    continue;
                }
                if mflags & NLM_F_DUMP_INTR != 0 {
                    interrupted = true;
                }
                match mtype {
                    NLMSG_DONE => return Ok(interrupted),
                    NLMSG_ERROR => {
                        let code = payload
                            .get(0..4)
                            .map(|b| i32::from_ne_bytes(b.try_into().unwrap()))
                            .unwrap_or(-libc::EIO);
                        if code == 0 {
                            return Ok(interrupted);
                        }
                        return Err(io::Error::from_raw_os_error(-code));
                    }
                    t => f(t, payload),
                }
            }
        }
    }

    fn dump(
        &mut self,
        msg_type: u16,
        body: &[u8],
        f: &mut dyn FnMut(u16, &[u8]),
    ) -> io::Result<()> {
        for _ in 0..DUMP_TRIES - 1 {
            let mut got: Vec<(u16, Vec<u8>)> = Vec::new();
            let intr = self.dump_once(msg_type, body, &mut |t, p| got.push((t, p.to_vec())))?;
            if !intr {
                for (t, p) in &got {
                    f(*t, p);
                }
                return Ok(());
            }
        }
        // Still changing: take the last reading as it is.
        self.dump_once(msg_type, body, f).map(|_| ())
    }

    /// Every address of `family` (AF_INET or AF_INET6) configured in the namespace.
    pub fn addrs(&mut self, family: u8) -> io::Result<Vec<(u32, IpAddr)>> {
        let mut body = [0u8; IFADDRMSG_LEN];
        body[0] = family;
        let mut out = Vec::new();
        self.dump(RTM_GETADDR, &body, &mut |t, p| {
            if t == RTM_NEWADDR {
                out.extend(parse_addr_msg(family, p));
            }
        })?;
        Ok(out)
    }

    /// Is `addr` configured on any interface of the namespace?
    pub fn has_addr(&mut self, addr: IpAddr) -> io::Result<bool> {
        let family = match addr {
            IpAddr::V4(_) => libc::AF_INET,
            IpAddr::V6(_) => libc::AF_INET6,
        } as u8;
        Ok(self.addrs(family)?.iter().any(|(_, a)| *a == addr))
    }

    /// Every interface of the namespace, with its name and (Ethernet) MAC.
    pub fn links(&mut self) -> io::Result<Vec<Link>> {
        let body = [0u8; IFINFOMSG_LEN];
        let mut out = Vec::new();
        self.dump(RTM_GETLINK, &body, &mut |t, p| {
            if t == RTM_NEWLINK {
                out.extend(parse_link_msg(p));
            }
        })?;
        Ok(out)
    }
}

/// Walk the rtattrs of `b`: (type without the nested/byte-order bits, data).
fn attrs(mut b: &[u8]) -> impl Iterator<Item = (u16, &[u8])> {
    std::iter::from_fn(move || {
        if b.len() < 4 {
            return None;
        }
        let len = u16::from_ne_bytes([b[0], b[1]]) as usize;
        let typ = u16::from_ne_bytes([b[2], b[3]]) & 0x3fff;
        if len < 4 || len > b.len() {
            return None;
        }
        let data = &b[4..len];
        b = &b[align4(len).min(b.len())..];
        Some((typ, data))
    })
}

fn ip_from(family: u8, d: &[u8]) -> Option<IpAddr> {
    match (i32::from(family), d.len()) {
        (libc::AF_INET, 4) => Some(IpAddr::V4(Ipv4Addr::new(d[0], d[1], d[2], d[3]))),
        (libc::AF_INET6, 16) => {
            let a: [u8; 16] = d.try_into().ok()?;
            Some(IpAddr::V6(Ipv6Addr::from(a)))
        }
        _ => None,
    }
}

/// The addresses one RTM_NEWADDR message carries (IFA_LOCAL and IFA_ADDRESS, which differ
/// only on point-to-point links), with the interface index; only messages of `family` (a
/// kernel without strict checking dumps every family).
pub fn parse_addr_msg(family: u8, p: &[u8]) -> Vec<(u32, IpAddr)> {
    if p.len() < IFADDRMSG_LEN || p[0] != family {
        return Vec::new();
    }
    let index = u32::from_ne_bytes(p[4..8].try_into().unwrap());
    let mut out: Vec<(u32, IpAddr)> = Vec::new();
    for (t, d) in attrs(&p[IFADDRMSG_LEN..]) {
        if t == IFA_ADDRESS || t == IFA_LOCAL {
            if let Some(a) = ip_from(family, d) {
                if !out.iter().any(|(_, x)| *x == a) {
                    out.push((index, a));
                }
            }
        }
    }
    out
}

/// The interface one RTM_NEWLINK message describes.
pub fn parse_link_msg(p: &[u8]) -> Option<Link> {
    if p.len() < IFINFOMSG_LEN {
        return None;
    }
    let index = i32::from_ne_bytes(p[4..8].try_into().unwrap()) as u32;
    let mut name = String::new();
    let mut mac = None;
    for (t, d) in attrs(&p[IFINFOMSG_LEN..]) {
        match t {
            IFLA_IFNAME => {
                let d = d.split(|&b| b == 0).next().unwrap_or(&[]);
                name = String::from_utf8_lossy(d).into_owned();
            }
            IFLA_ADDRESS if d.len() == 6 => {
                let m: [u8; 6] = d.try_into().ok()?;
                if m != [0; 6] {
                    mac = Some(m);
                }
            }
            _ => {}
        }
    }
    Some(Link { index, name, mac })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attr(t: u16, d: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(&((4 + d.len()) as u16).to_ne_bytes());
        v.extend_from_slice(&t.to_ne_bytes());
        v.extend_from_slice(d);
        v.resize(align4(v.len()), 0);
        v
    }

    #[test]
    fn parses_ipv4_addr_message() {
        let mut p = vec![libc::AF_INET as u8, 32, 0, 0];
        p.extend_from_slice(&7u32.to_ne_bytes());
        p.extend(attr(IFA_ADDRESS, &[10, 0, 0, 100]));
        p.extend(attr(IFA_LOCAL, &[10, 0, 0, 100]));
        p.extend(attr(3, b"eth0\0"));
        let got = parse_addr_msg(libc::AF_INET as u8, &p);
        assert_eq!(got, vec![(7, "10.0.0.100".parse().unwrap())]);
        // Another family's message is ignored.
        assert!(parse_addr_msg(libc::AF_INET6 as u8, &p).is_empty());
    }

    #[test]
    fn parses_ipv6_addr_message() {
        let a: Ipv6Addr = "2001:db8::100".parse().unwrap();
        let mut p = vec![libc::AF_INET6 as u8, 128, 0, 0];
        p.extend_from_slice(&3u32.to_ne_bytes());
        p.extend(attr(IFA_ADDRESS, &a.octets()));
        let got = parse_addr_msg(libc::AF_INET6 as u8, &p);
        assert_eq!(got, vec![(3, IpAddr::V6(a))]);
    }

    #[test]
    fn parses_link_message() {
        let mut p = vec![0u8; IFINFOMSG_LEN];
        p[4..8].copy_from_slice(&2i32.to_ne_bytes());
        p.extend(attr(IFLA_IFNAME, b"eth0\0"));
        p.extend(attr(IFLA_ADDRESS, &[2, 0, 0, 0, 0, 1]));
        let l = parse_link_msg(&p).unwrap();
        assert_eq!(
            l,
            Link {
                index: 2,
                name: "eth0".into(),
                mac: Some([2, 0, 0, 0, 0, 1])
            }
        );
    }

    #[test]
    fn truncated_attributes_stop_the_walk() {
        let mut b = attr(1, &[1, 2, 3, 4]);
        b.extend_from_slice(&[200, 0, 1, 0]);
        assert_eq!(attrs(&b).count(), 1);
    }
}
