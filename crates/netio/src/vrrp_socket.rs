//! Raw IP protocol 112 socket, one per (interface, family).

use std::io;
use std::mem;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};

use socket2::{Domain, InterfaceIndexOrAddress, Protocol, Socket, Type};

/// Attempts of `send_to` against a full send buffer before it gives up.
const SEND_RETRIES: usize = 5;

use crate::sys::{self, CmsgBuf};
use crate::{vrrp_group, RecvMeta, IPPROTO_VRRP, VRRP_TTL};

/// Raw IP protocol 112 socket bound to one interface and one family. Sends with TTL / hop
/// limit 255, joined to 224.0.0.18 / ff02::12 on the interface, multicast loop off.
///
/// The source address of every packet is set per packet with `IP_PKTINFO` /
/// `IPV6_PKTINFO` rather than with `bind()`: a raw socket bound to an address only receives
/// packets *addressed* to that address, which would drop every multicast advert (IPv4) or
/// every unicast advert sent to another of our addresses (IPv6). With the source pinned per
/// packet, a VIP added later to the interface can never become the advert's source.
///
/// Non-blocking and registered with no reactor: the daemon's VRRP loop waits on it with an
/// epoll set of its own ([`AsFd`]), so that an idle node's adverts never pass through an
/// async runtime's scheduler (see the daemon's `runtime` module).
pub struct VrrpSocket {
    fd: Socket,
    ifindex: u32,
    ifname: String,
    src: IpAddr,
}

impl AsFd for VrrpSocket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl std::fmt::Debug for VrrpSocket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VrrpSocket")
            .field("fd", &self.fd.as_raw_fd())
            .field("ifindex", &self.ifindex)
            .field("ifname", &self.ifname)
            .field("src", &self.src)
            .finish()
    }
}

fn ctx(err: io::Error, what: impl std::fmt::Display) -> io::Error {
    io::Error::new(err.kind(), format!("{what}: {err}"))
}

impl VrrpSocket {
    /// `src` is the source address for sending (IPv4 primary / unicast_src_ip, or the IPv6
    /// link-local address).
    ///
    /// The family of the socket is the family of `src`.
    pub fn open(ifindex: u32, ifname: &str, src: IpAddr) -> io::Result<Self> {
        if ifindex == 0 || ifname.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("VrrpSocket::open: invalid interface {ifname:?} (index {ifindex})"),
            ));
        }
        let what = |step: &str| format!("VRRP socket on {ifname} ({src}): {step}");
        let socket = match src {
            IpAddr::V4(src4) => {
                open_v4(ifindex, ifname, src4).map_err(|(e, step)| ctx(e, what(step)))?
            }
            IpAddr::V6(_) => open_v6(ifindex, ifname).map_err(|(e, step)| ctx(e, what(step)))?,
        };
        Ok(VrrpSocket {
            fd: socket,
            ifindex,
            ifname: ifname.to_owned(),
            src,
        })
    }

    /// Interface index this socket is bound to.
    pub fn ifindex(&self) -> u32 {
        self.ifindex
    }

    /// Interface name this socket is bound to.
    pub fn ifname(&self) -> &str {
        &self.ifname
    }

    /// Source address used for sending.
    pub fn src(&self) -> IpAddr {
        self.src
    }

    /// True for the IPv6 socket.
    pub fn is_v6(&self) -> bool {
        self.src.is_ipv6()
    }

    /// The VRRP multicast group of this socket's family.
    pub fn group(&self) -> IpAddr {
        vrrp_group(self.is_v6())
    }

    /// Send one VRRP message (no IP header) to `dst` (multicast group or unicast peer).
    ///
    /// A full send buffer is retried a few times a millisecond apart and then reported as
    /// `WouldBlock`: a late advert is worse than a lost one, and the next one follows within
    /// an interval. A raw socket's send buffer is practically never full.
    pub fn send_to(&self, payload: &[u8], dst: IpAddr) -> io::Result<()> {
        self.check_family(dst)?;
        for _ in 0..SEND_RETRIES {
            match self.send_now(self.fd.as_raw_fd(), payload, dst) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    std::thread::sleep(std::time::Duration::from_millis(1));
                }
                other => return other,
            }
        }
        self.send_now(self.fd.as_raw_fd(), payload, dst)
    }

    /// Receive one already-queued packet without waiting (`Ok(None)` when the queue is empty).
    pub fn try_recv(&self, buf: &mut [u8]) -> io::Result<Option<RecvMeta>> {
        match self.recv_now(self.fd.as_raw_fd(), buf) {
            Ok(meta) => Ok(Some(meta)),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn check_family(&self, dst: IpAddr) -> io::Result<()> {
        if dst.is_ipv6() != self.is_v6() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "VRRP socket on {} ({}): cannot send to {dst} (other address family)",
                    self.ifname, self.src
                ),
            ));
        }
        Ok(())
    }

    fn send_now(&self, fd: RawFd, payload: &[u8], dst: IpAddr) -> io::Result<()> {
        let n = match (self.src, dst) {
            (IpAddr::V4(src), IpAddr::V4(dst)) => send_v4(fd, self.ifindex, src, dst, payload),
            (IpAddr::V6(src), IpAddr::V6(dst)) => send_v6(fd, self.ifindex, src, dst, payload),
            _ => unreachable!("family checked by the caller"),
        };
        // Keep WouldBlock untouched: callers retry on its kind.
        let n = n.map_err(|e| {
            if e.kind() == io::ErrorKind::WouldBlock || e.kind() == io::ErrorKind::Interrupted {
                e
            } else {
                ctx(
                    e,
                    format_args!("send VRRP on {} from {} to {dst}", self.ifname, self.src),
                )
            }
        })?;
        if n != payload.len() {
            return Err(io::Error::new(
                io::ErrorKind::WriteZero,
                format!(
                    "send VRRP on {} to {dst}: short write {n}/{}",
                    self.ifname,
                    payload.len()
                ),
            ));
        }
        Ok(())
    }

    fn recv_now(&self, fd: RawFd, buf: &mut [u8]) -> io::Result<RecvMeta> {
        loop {
            let res = if self.is_v6() {
                recv_v6(fd, buf)
            } else {
                recv_v4(fd, buf)
            };
            match res {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                other => return other,
            }
        }
    }
}

type StepResult<T> = Result<T, (io::Error, &'static str)>;

trait Step<T> {
    fn step(self, what: &'static str) -> StepResult<T>;
}

impl<T> Step<T> for io::Result<T> {
    fn step(self, what: &'static str) -> StepResult<T> {
        self.map_err(|e| (e, what))
    }
}

fn open_v4(ifindex: u32, ifname: &str, src: Ipv4Addr) -> StepResult<Socket> {
    let s = Socket::new(
        Domain::IPV4,
        Type::RAW,
        Some(Protocol::from(i32::from(IPPROTO_VRRP))),
    )
    .step("socket(AF_INET, SOCK_RAW, 112)")?;
    s.set_nonblocking(true).step("O_NONBLOCK")?;
    // Only packets that arrived on this interface, and egress through it.
    s.bind_device(Some(ifname.as_bytes()))
        .step("SO_BINDTODEVICE")?;
    // ip_mreqn with the index: the interface may have no address yet, or several.
    let mreqn = libc::ip_mreqn {
        imr_multiaddr: sys::in_addr(Ipv4Addr::UNSPECIFIED),
        imr_address: sys::in_addr(src),
        imr_ifindex: ifindex as libc::c_int,
    };
    sys::setsockopt(
        s.as_raw_fd(),
        libc::IPPROTO_IP,
        libc::IP_MULTICAST_IF,
        &mreqn,
    )
    .step("IP_MULTICAST_IF")?;
    s.set_multicast_ttl_v4(u32::from(VRRP_TTL))
        .step("IP_MULTICAST_TTL")?;
    s.set_ttl_v4(u32::from(VRRP_TTL)).step("IP_TTL")?;
    // Our own adverts must not come back to us (RFC: a master must ignore its own).
    s.set_multicast_loop_v4(false).step("IP_MULTICAST_LOOP")?;
    // Linux default IP_MULTICAST_ALL=1 would deliver groups joined by *other* sockets too.
    s.set_multicast_all_v4(false).step("IP_MULTICAST_ALL")?;
    let IpAddr::V4(group) = vrrp_group(false) else {
        unreachable!()
    };
    s.join_multicast_v4_n(&group, &InterfaceIndexOrAddress::Index(ifindex))
        .step("IP_ADD_MEMBERSHIP 224.0.0.18")?;
    Ok(s)
}

fn open_v6(ifindex: u32, ifname: &str) -> StepResult<Socket> {
    let s = Socket::new(
        Domain::IPV6,
        Type::RAW,
        Some(Protocol::from(i32::from(IPPROTO_VRRP))),
    )
    .step("socket(AF_INET6, SOCK_RAW, 112)")?;
    s.set_nonblocking(true).step("O_NONBLOCK")?;
    s.bind_device(Some(ifname.as_bytes()))
        .step("SO_BINDTODEVICE")?;
    s.set_multicast_if_v6(ifindex).step("IPV6_MULTICAST_IF")?;
    s.set_multicast_hops_v6(u32::from(VRRP_TTL))
        .step("IPV6_MULTICAST_HOPS")?;
    s.set_unicast_hops_v6(u32::from(VRRP_TTL))
        .step("IPV6_UNICAST_HOPS")?;
    s.set_multicast_loop_v6(false).step("IPV6_MULTICAST_LOOP")?;
    s.set_multicast_all_v6(false).step("IPV6_MULTICAST_ALL")?;
    let IpAddr::V6(group) = vrrp_group(true) else {
        unreachable!()
    };
    s.join_multicast_v6(&group, ifindex)
        .step("IPV6_JOIN_GROUP ff02::12")?;
    // The IPv6 header is not delivered on raw sockets: hop limit and destination come as
    // control messages. IPV6_CHECKSUM is deliberately left unset (see the crate docs).
    s.set_recv_hoplimit_v6(true).step("IPV6_RECVHOPLIMIT")?;
    let on: libc::c_int = 1;
    sys::setsockopt(
        s.as_raw_fd(),
        libc::IPPROTO_IPV6,
        libc::IPV6_RECVPKTINFO,
        &on,
    )
    .step("IPV6_RECVPKTINFO")?;
    Ok(s)
}

fn send_v4(
    fd: RawFd,
    ifindex: u32,
    src: Ipv4Addr,
    dst: Ipv4Addr,
    payload: &[u8],
) -> io::Result<usize> {
    // SAFETY: all-zero is a valid sockaddr_in / msghdr.
    let mut sa: libc::sockaddr_in = unsafe { mem::zeroed() };
    sa.sin_family = libc::AF_INET as libc::sa_family_t;
    sa.sin_addr = sys::in_addr(dst);
    let mut iov = libc::iovec {
        iov_base: payload.as_ptr() as *mut libc::c_void,
        iov_len: payload.len(),
    };
    let mut msg: libc::msghdr = unsafe { mem::zeroed() };
    msg.msg_name = (&mut sa as *mut libc::sockaddr_in).cast();
    msg.msg_namelen = mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    let mut cbuf = CmsgBuf::new();
    // ipi_spec_dst is the source address the kernel puts in the header it builds.
    let info = libc::in_pktinfo {
        ipi_ifindex: ifindex as libc::c_int,
        ipi_spec_dst: sys::in_addr(src),
        ipi_addr: sys::in_addr(Ipv4Addr::UNSPECIFIED),
    };
    // SAFETY: msg_control points to cbuf, alive until sendmsg returns.
    unsafe {
        sys::put_single_cmsg(
            &mut msg,
            &mut cbuf,
            libc::IPPROTO_IP,
            libc::IP_PKTINFO,
            info,
        );
        sys::cvt_len(libc::sendmsg(fd, &msg, 0))
    }
}

fn send_v6(
    fd: RawFd,
    ifindex: u32,
    src: Ipv6Addr,
    dst: Ipv6Addr,
    payload: &[u8],
) -> io::Result<usize> {
    let mut sa: libc::sockaddr_in6 = unsafe { mem::zeroed() };
    sa.sin6_family = libc::AF_INET6 as libc::sa_family_t;
    sa.sin6_addr = sys::in6_addr(dst);
    // Link-local unicast and link-scope multicast need the interface as scope.
    if is_link_scoped(dst) {
        sa.sin6_scope_id = ifindex;
    }
    let mut iov = libc::iovec {
        iov_base: payload.as_ptr() as *mut libc::c_void,
        iov_len: payload.len(),
    };
    let mut msg: libc::msghdr = unsafe { mem::zeroed() };
    msg.msg_name = (&mut sa as *mut libc::sockaddr_in6).cast();
    msg.msg_namelen = mem::size_of::<libc::sockaddr_in6>() as libc::socklen_t;
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    let mut cbuf = CmsgBuf::new();
    let info = libc::in6_pktinfo {
        ipi6_addr: sys::in6_addr(src),
        ipi6_ifindex: ifindex,
    };
    // SAFETY: msg_control points to cbuf, alive until sendmsg returns.
    unsafe {
        sys::put_single_cmsg(
            &mut msg,
            &mut cbuf,
            libc::IPPROTO_IPV6,
            libc::IPV6_PKTINFO,
            info,
        );
        sys::cvt_len(libc::sendmsg(fd, &msg, 0))
    }
}

fn is_link_scoped(a: Ipv6Addr) -> bool {
    let s = a.segments();
    (s[0] & 0xffc0) == 0xfe80 || (a.is_multicast() && (s[0] & 0x000f) <= 2)
}

fn recv_v4(fd: RawFd, buf: &mut [u8]) -> io::Result<RecvMeta> {
    // SAFETY: buf is valid for writes of buf.len() bytes.
    let n = sys::cvt_len(unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), 0) })?;
    parse_ipv4_header(&buf[..n])
}

/// Parse the IPv4 header a raw socket hands back in front of the payload.
pub(crate) fn parse_ipv4_header(pkt: &[u8]) -> io::Result<RecvMeta> {
    let bad = |why: &str| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("received IPv4 packet: {why}"),
        )
    };
    if pkt.len() < 20 {
        return Err(bad(
            "shorter than an IPv4 header (receive buffer too small?)",
        ));
    }
    if pkt[0] >> 4 != 4 {
        return Err(bad("not IPv4"));
    }
    let hlen = usize::from(pkt[0] & 0x0f) * 4;
    if hlen < 20 || hlen > pkt.len() {
        return Err(bad("bad header length"));
    }
    // The kernel delivers exactly the datagram, but trust the total length if it is smaller
    // (padding can never be part of the VRRP message).
    let total = usize::from(u16::from_be_bytes([pkt[2], pkt[3]]));
    let end = if total >= hlen && total < pkt.len() {
        total
    } else {
        pkt.len()
    };
    Ok(RecvMeta {
        src: IpAddr::V4(Ipv4Addr::new(pkt[12], pkt[13], pkt[14], pkt[15])),
        dst: IpAddr::V4(Ipv4Addr::new(pkt[16], pkt[17], pkt[18], pkt[19])),
        ttl: pkt[8],
        payload_offset: hlen,
        len: end - hlen,
    })
}

fn recv_v6(fd: RawFd, buf: &mut [u8]) -> io::Result<RecvMeta> {
    let mut sa: libc::sockaddr_in6 = unsafe { mem::zeroed() };
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    let mut cbuf = CmsgBuf::new();
    let mut msg: libc::msghdr = unsafe { mem::zeroed() };
    msg.msg_name = (&mut sa as *mut libc::sockaddr_in6).cast();
    msg.msg_namelen = mem::size_of::<libc::sockaddr_in6>() as libc::socklen_t;
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = cbuf.0.as_mut_ptr().cast();
    msg.msg_controllen = cbuf.0.len() as _;
    // SAFETY: every pointer in msg refers to live stack / caller memory of the given size.
    let n = sys::cvt_len(unsafe { libc::recvmsg(fd, &mut msg, 0) })?;
    let mut ttl = 0u8;
    let mut dst = Ipv6Addr::UNSPECIFIED;
    // SAFETY: walking the control messages the kernel wrote within msg_controllen.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(&msg);
        while !cmsg.is_null() {
            let c = &*cmsg;
            if c.cmsg_level == libc::IPPROTO_IPV6 {
                let data = libc::CMSG_DATA(cmsg);
                if c.cmsg_type == libc::IPV6_HOPLIMIT {
                    let hl = std::ptr::read_unaligned(data.cast::<libc::c_int>());
                    ttl = u8::try_from(hl).unwrap_or(0);
                } else if c.cmsg_type == libc::IPV6_PKTINFO {
                    let info = std::ptr::read_unaligned(data.cast::<libc::in6_pktinfo>());
                    dst = Ipv6Addr::from(info.ipi6_addr.s6_addr);
                }
            }
            cmsg = libc::CMSG_NXTHDR(&msg, cmsg);
        }
    }
    Ok(RecvMeta {
        src: IpAddr::V6(Ipv6Addr::from(sa.sin6_addr.s6_addr)),
        dst: IpAddr::V6(dst),
        ttl,
        payload_offset: 0,
        len: n.min(buf.len()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_ipv4_header_with_options() {
        let mut pkt = [0u8; 24 + 8];
        pkt[0] = 0x46; // IHL 6
        pkt[2..4].copy_from_slice(&(32u16).to_be_bytes());
        pkt[8] = 255;
        pkt[9] = 112;
        pkt[12..16].copy_from_slice(&[192, 0, 2, 1]);
        pkt[16..20].copy_from_slice(&[224, 0, 0, 18]);
        pkt[24..].copy_from_slice(b"VRRPDATA");
        let m = parse_ipv4_header(&pkt).unwrap();
        assert_eq!(m.ttl, 255);
        assert_eq!(m.src, IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)));
        assert_eq!(m.dst, IpAddr::V4(Ipv4Addr::new(224, 0, 0, 18)));
        assert_eq!(m.payload_offset, 24);
        assert_eq!(m.len, 8);
        assert_eq!(m.payload(&pkt), b"VRRPDATA");
    }

    #[test]
    fn rejects_short_or_bad_ipv4() {
        assert!(parse_ipv4_header(&[0x45; 10]).is_err());
        let mut pkt = [0u8; 20];
        pkt[0] = 0x65;
        assert!(parse_ipv4_header(&pkt).is_err());
        pkt[0] = 0x4f; // IHL 15 = 60 bytes > 20
        assert!(parse_ipv4_header(&pkt).is_err());
    }

    #[test]
    fn netlink_outside_runtime_is_an_error_not_a_panic() {
        assert!(crate::Netlink::new().is_err());
    }

    #[test]
    fn link_scope() {
        assert!(is_link_scoped("fe80::1".parse().unwrap()));
        assert!(is_link_scoped("ff02::12".parse().unwrap()));
        assert!(!is_link_scoped("2001:db8::1".parse().unwrap()));
        assert!(!is_link_scoped("ff05::1".parse().unwrap()));
    }
}
