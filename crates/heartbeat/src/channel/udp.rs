//! UDP shells: a multicast group on one interface, or a list of unicast peers.
//!
//! Multicast (IPv4 or IPv6 group): the socket is bound to the group address and port, so
//! only that group's datagrams arrive; it joins the group on the configured interface only
//! (`IP_ADD_MEMBERSHIP` with `ip_mreqn`'s interface index / `IPV6_JOIN_GROUP`), with
//! `IP_MULTICAST_ALL` off so memberships of other sockets do not leak in; it sends out of that
//! interface (`IP_MULTICAST_IF` by index / `IPV6_MULTICAST_IF`), TTL / hop limit 1 (heartbeats
//! stay on the link), and multicast loop off (our own frames do not come back).
//!
//! Unicast: bound to the local address and port; every frame goes to every peer address;
//! datagrams from addresses whose IP is not a peer's are dropped and counted.
//!
//! Sends use `try_send_to`: a full socket buffer drops the frame (counted) instead of
//! waiting.
//!
//! With multicast loop off, two nodes in the *same* network namespace cannot hear each
//! other over multicast (the loop setting governs every local socket, not just ours): use
//! the unicast mode on one host, or one namespace per node (as the integration tests do).

use std::io;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::os::fd::AsRawFd;
use std::time::Duration;

use socket2::{Domain, InterfaceIndexOrAddress, Protocol, Socket, Type};
use tokio::net::UdpSocket;

use super::{runtime_check, spawn_attached, ChannelIo, Counters, ShellEnd, RECV_BUF};

fn ctx(e: io::Error, what: impl std::fmt::Display) -> io::Error {
    io::Error::new(e.kind(), format!("{what}: {e}"))
}

/// Interface index of `name`.
pub fn interface_index(name: &str) -> io::Result<u32> {
    nix::net::if_::if_nametoindex(name)
        .map_err(|e| io::Error::new(io::ErrorKind::NotFound, format!("interface {name}: {e}")))
}

/// `IP_MULTICAST_IF` by interface index (`struct ip_mreqn`), which socket2 only offers by
/// address.
fn set_multicast_if_v4_index(socket: &Socket, ifindex: u32) -> io::Result<()> {
    let mreqn = libc::ip_mreqn {
        imr_multiaddr: libc::in_addr { s_addr: 0 },
        imr_address: libc::in_addr { s_addr: 0 },
        imr_ifindex: ifindex as libc::c_int,
    };
    // SAFETY: the descriptor is open for the duration of the call; the option value points
    // to a live, correctly sized `ip_mreqn`, which Linux accepts for IP_MULTICAST_IF.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::IPPROTO_IP,
            libc::IP_MULTICAST_IF,
            (&mreqn as *const libc::ip_mreqn).cast(),
            std::mem::size_of::<libc::ip_mreqn>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// The multicast socket, set up as the module docs say (blocking mode off).
pub fn multicast_socket(interface: &str, group: SocketAddr) -> io::Result<std::net::UdpSocket> {
    let ifindex = interface_index(interface)?;
    let what = |step: &str| format!("multicast {group} on {interface}: {step}");
    let socket = match group.ip() {
        IpAddr::V4(g) => {
            let s = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))
                .map_err(|e| ctx(e, what("socket")))?;
            s.set_reuse_address(true)
                .map_err(|e| ctx(e, what("SO_REUSEADDR")))?;
            s.bind(&SocketAddr::new(IpAddr::V4(g), group.port()).into())
                .map_err(|e| ctx(e, what("bind")))?;
            s.set_multicast_all_v4(false)
                .map_err(|e| ctx(e, what("IP_MULTICAST_ALL")))?;
            s.join_multicast_v4_n(&g, &InterfaceIndexOrAddress::Index(ifindex))
                .map_err(|e| ctx(e, what("IP_ADD_MEMBERSHIP")))?;
            set_multicast_if_v4_index(&s, ifindex).map_err(|e| ctx(e, what("IP_MULTICAST_IF")))?;
            s.set_multicast_loop_v4(false)
                .map_err(|e| ctx(e, what("IP_MULTICAST_LOOP")))?;
            s.set_multicast_ttl_v4(1)
                .map_err(|e| ctx(e, what("IP_MULTICAST_TTL")))?;
            s
        }
        IpAddr::V6(g) => {
            let s = Socket::new(Domain::IPV6, Type::DGRAM, Some(Protocol::UDP))
                .map_err(|e| ctx(e, what("socket")))?;
            s.set_only_v6(true)
                .map_err(|e| ctx(e, what("IPV6_V6ONLY")))?;
            s.set_reuse_address(true)
                .map_err(|e| ctx(e, what("SO_REUSEADDR")))?;
            let scope = if is_link_local_multicast(&g) {
                ifindex
            } else {
                0
            };
            s.bind(&SocketAddr::V6(std::net::SocketAddrV6::new(g, group.port(), 0, scope)).into())
                .map_err(|e| ctx(e, what("bind")))?;
            s.set_multicast_all_v6(false)
                .map_err(|e| ctx(e, what("IPV6_MULTICAST_ALL")))?;
            s.join_multicast_v6(&g, ifindex)
                .map_err(|e| ctx(e, what("IPV6_JOIN_GROUP")))?;
            s.set_multicast_if_v6(ifindex)
                .map_err(|e| ctx(e, what("IPV6_MULTICAST_IF")))?;
            s.set_multicast_loop_v6(false)
                .map_err(|e| ctx(e, what("IPV6_MULTICAST_LOOP")))?;
            s.set_multicast_hops_v6(1)
                .map_err(|e| ctx(e, what("IPV6_MULTICAST_HOPS")))?;
            s
        }
    };
    socket
        .set_nonblocking(true)
        .map_err(|e| ctx(e, what("O_NONBLOCK")))?;
    Ok(socket.into())
}

fn is_link_local_multicast(g: &Ipv6Addr) -> bool {
    g.segments()[0] & 0xff0f == 0xff02
}

/// The unicast socket (blocking mode off).
pub fn unicast_socket(bind: SocketAddr) -> io::Result<std::net::UdpSocket> {
    let domain = if bind.is_ipv4() {
        Domain::IPV4
    } else {
        Domain::IPV6
    };
    let what = |step: &str| format!("udp unicast {bind}: {step}");
    let s = Socket::new(domain, Type::DGRAM, Some(Protocol::UDP))
        .map_err(|e| ctx(e, what("socket")))?;
    s.set_reuse_address(true)
        .map_err(|e| ctx(e, what("SO_REUSEADDR")))?;
    s.bind(&bind.into()).map_err(|e| ctx(e, what("bind")))?;
    s.set_nonblocking(true)
        .map_err(|e| ctx(e, what("O_NONBLOCK")))?;
    Ok(s.into())
}

/// Open a multicast channel. Must be called inside a tokio runtime; the socket belongs to
/// the network namespace of the calling thread.
pub fn open_multicast(
    label: String,
    interface: &str,
    group: SocketAddr,
    interval: Duration,
) -> io::Result<ChannelIo> {
    runtime_check("udp multicast channel")?;
    let mut dest = group;
    if let (SocketAddr::V6(d), IpAddr::V6(g)) = (&mut dest, group.ip()) {
        if is_link_local_multicast(&g) {
            d.set_scope_id(interface_index(interface)?);
        }
    }
    let socket = UdpSocket::from_std(multicast_socket(interface, group)?)?;
    Ok(start(label, socket, vec![dest], None, interval))
}

/// Open a unicast-list channel. Must be called inside a tokio runtime.
pub fn open_unicast(
    label: String,
    bind: SocketAddr,
    peers: Vec<SocketAddr>,
    interval: Duration,
) -> io::Result<ChannelIo> {
    runtime_check("udp unicast channel")?;
    let socket = UdpSocket::from_std(unicast_socket(bind)?)?;
    let allowed: Vec<IpAddr> = peers.iter().map(|p| canonical(p.ip())).collect();
    Ok(start(label, socket, peers, Some(allowed), interval))
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

fn start(
    label: String,
    socket: UdpSocket,
    dests: Vec<SocketAddr>,
    allowed: Option<Vec<IpAddr>>,
    interval: Duration,
) -> ChannelIo {
    let (mut io, end) = ChannelIo::pair(label);
    spawn_attached(&mut io, run(socket, dests, allowed, interval, end));
    io
}

async fn run(
    socket: UdpSocket,
    dests: Vec<SocketAddr>,
    allowed: Option<Vec<IpAddr>>,
    interval: Duration,
    mut end: ShellEnd,
) {
    let counters = end.counters.clone();
    let mut buf = vec![0u8; RECV_BUF];
    loop {
        tokio::select! {
            out = end.outbound.recv() => {
                let Some(out) = out else { return };
                if out.is_stale(interval) {
                    Counters::bump(&counters.stale_dropped);
                    continue;
                }
                for dest in &dests {
                    match socket.try_send_to(&out.frame, *dest) {
                        Ok(_) => Counters::bump(&counters.frames_sent),
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                            counters.error(&counters.send_queue_full, format_args!("send to {dest}: socket buffer full"));
                        }
                        Err(e) => counters.error(&counters.send_errors, format_args!("send to {dest}: {e}")),
                    }
                }
            }
            received = socket.recv_from(&mut buf) => match received {
                Ok((len, src)) => {
                    if let Some(allowed) = &allowed {
                        if !allowed.contains(&canonical(src.ip())) {
                            Counters::bump(&counters.rejected_sources);
                            continue;
                        }
                    }
                    end.deliver(buf[..len].to_vec());
                }
                Err(e) => {
                    counters.error(&counters.receive_errors, format_args!("receive: {e}"));
                    // A persistent error must not spin the task.
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            },
        }
    }
}
