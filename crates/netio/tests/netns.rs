//! Root-only integration tests in throw-away network namespaces (see `support`). Without root
//! they print why and pass.

mod support;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsFd, AsRawFd};
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};
use support::*;
use tandem_netio::{
    garp_frame, unsolicited_na_frame, vrrp_group, Gratuitous, Netlink, RecvMeta, VrrpSocket,
};

const LIMIT: Duration = Duration::from_secs(30);
const RECV_WAIT: Duration = Duration::from_secs(5);

/// Waits on the socket's descriptor as the daemon's epoll loop does, then reads.
fn recv_one(sock: &VrrpSocket, buf: &mut [u8]) -> RecvMeta {
    let mut pfd = libc::pollfd {
        fd: sock.as_fd().as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd, borrowed for the call.
    let n = unsafe { libc::poll(&mut pfd, 1, RECV_WAIT.as_millis() as libc::c_int) };
    assert_eq!(n, 1, "no VRRP packet within 5 s");
    sock.try_recv(buf)
        .expect("recv")
        .expect("readable socket had no packet")
}

/// A plain raw protocol-112 socket with an ordinary TTL, as a misbehaving or remote sender.
fn plain_raw(v6: bool, ifindex: u32, ttl: u32) -> Socket {
    let dom = if v6 { Domain::IPV6 } else { Domain::IPV4 };
    let s = Socket::new(dom, Type::RAW, Some(Protocol::from(112))).unwrap();
    s.bind_device(Some(b"eth0")).unwrap();
    if v6 {
        s.set_multicast_if_v6(ifindex).unwrap();
        s.set_multicast_hops_v6(ttl).unwrap();
        s.set_unicast_hops_v6(ttl).unwrap();
    } else {
        s.set_ttl_v4(ttl).unwrap();
        s.set_multicast_ttl_v4(ttl).unwrap();
    }
    s
}

fn sockaddr(ip: IpAddr, scope: u32) -> socket2::SockAddr {
    match ip {
        IpAddr::V4(a) => std::net::SocketAddr::from((a, 0)).into(),
        IpAddr::V6(a) => std::net::SocketAddrV6::new(a, 0, 0, scope).into(),
    }
}

#[test]
fn vrrp_socket_v4() {
    let Some(lab) = Lab::new(PREFIX, "v4") else {
        return;
    };
    let (a, b) = (lab.a.clone(), lab.b.clone());
    let (ia, ib) = (lab.ifindex(&a), lab.ifindex(&b));
    // A VIP added after the socket was opened must not become the source address.
    let vip_ns = a.clone();
    run_bounded(LIMIT, move || async move {
        let sa = in_netns(&a, || VrrpSocket::open(ia, "eth0", IpAddr::V4(V4_A))).unwrap();
        let sb = in_netns(&b, || VrrpSocket::open(ib, "eth0", IpAddr::V4(V4_B))).unwrap();
        assert!(!sa.is_v6());
        ip(&vip_ns, &["addr", "add", "192.0.2.100/32", "dev", "eth0"]);
        ip(&vip_ns, &["addr", "add", "192.0.2.200/24", "dev", "eth0"]);
        let mut buf = [0u8; 1500];

        // Empty queue: try_recv says so without waiting.
        assert!(sb.try_recv(&mut buf).unwrap().is_none());

        // Multicast.
        sa.send_to(b"advert-multicast", vrrp_group(false)).unwrap();
        let m = recv_one(&sb, &mut buf);
        assert_eq!(m.src, IpAddr::V4(V4_A));
        assert_eq!(m.dst, vrrp_group(false));
        assert_eq!(m.ttl, 255);
        assert_eq!(m.payload_offset, 20);
        assert_eq!(m.payload(&buf), b"advert-multicast");

        // Unicast to the peer.
        sa.send_to(b"advert-unicast", IpAddr::V4(V4_B)).unwrap();
        let m = recv_one(&sb, &mut buf);
        assert_eq!(m.src, IpAddr::V4(V4_A));
        assert_eq!(m.dst, IpAddr::V4(V4_B));
        assert_eq!(m.ttl, 255);
        assert_eq!(m.payload(&buf), b"advert-unicast");

        // The other direction, and try_recv on a queued packet.
        sb.send_to(b"from-b", vrrp_group(false)).unwrap();
        let m = recv_one(&sa, &mut buf);
        assert_eq!((m.src, m.ttl), (IpAddr::V4(V4_B), 255));
        sa.send_to(b"queued", vrrp_group(false)).unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
        let m = sb.try_recv(&mut buf).unwrap().expect("queued packet");
        assert_eq!(m.payload(&buf), b"queued");
        assert!(sb.try_recv(&mut buf).unwrap().is_none());

        // Multicast loop is off: A never saw its own adverts.
        assert!(sa.try_recv(&mut buf).unwrap().is_none());

        // A forged advert with TTL 64 is delivered with ttl 64 (the caller must drop it).
        let raw = in_netns(&a, || plain_raw(false, ia, 64));
        raw.send_to(b"ttl64-u", &sockaddr(IpAddr::V4(V4_B), 0))
            .unwrap();
        let m = recv_one(&sb, &mut buf);
        assert_eq!((m.ttl, m.payload(&buf)), (64, &b"ttl64-u"[..]));
        raw.send_to(b"ttl64-m", &sockaddr(vrrp_group(false), 0))
            .unwrap();
        let m = recv_one(&sb, &mut buf);
        assert_eq!(
            (m.ttl, m.dst, m.payload(&buf)),
            (64, vrrp_group(false), &b"ttl64-m"[..])
        );

        // The source is whatever the caller chose (unicast_src_ip), even a secondary address
        // the kernel would never pick by itself.
        let sa2 = in_netns(&a, || {
            VrrpSocket::open(ia, "eth0", IpAddr::V4(Ipv4Addr::new(192, 0, 2, 200)))
        })
        .unwrap();
        for dst in [vrrp_group(false), IpAddr::V4(V4_B)] {
            sa2.send_to(b"chosen-src", dst).unwrap();
            let m = recv_one(&sb, &mut buf);
            assert_eq!(m.src, IpAddr::V4(Ipv4Addr::new(192, 0, 2, 200)), "to {dst}");
            assert_eq!(m.dst, dst);
        }

        // Wrong family is refused, not sent.
        assert!(sa.send_to(b"x", IpAddr::V6(LL_B)).is_err());
    });
}

#[test]
fn vrrp_socket_v6() {
    let Some(lab) = Lab::new(PREFIX, "v6") else {
        return;
    };
    let (a, b) = (lab.a.clone(), lab.b.clone());
    let (ia, ib) = (lab.ifindex(&a), lab.ifindex(&b));
    run_bounded(LIMIT, move || async move {
        let sa = in_netns(&a, || VrrpSocket::open(ia, "eth0", IpAddr::V6(LL_A))).unwrap();
        let sb = in_netns(&b, || VrrpSocket::open(ib, "eth0", IpAddr::V6(LL_B))).unwrap();
        assert!(sa.is_v6());
        let mut buf = [0u8; 1500];
        assert!(sb.try_recv(&mut buf).unwrap().is_none());

        // Bytes 6..8 would be the VRRPv3 checksum: the kernel must leave them as sent
        // (no IPV6_CHECKSUM), so that the caller can verify and count bad ones.
        let advert = [0x31, 7, 100, 1, 0, 100, 0xde, 0xad, 0x20, 0x01, 0x0d, 0xb8];
        for dst in [vrrp_group(true), IpAddr::V6(LL_B), IpAddr::V6(G6_B)] {
            sa.send_to(&advert, dst).unwrap();
            let m = recv_one(&sb, &mut buf);
            assert_eq!(m.src, IpAddr::V6(LL_A), "to {dst}");
            assert_eq!(m.dst, dst);
            assert_eq!(m.ttl, 255);
            assert_eq!(m.payload_offset, 0);
            assert_eq!(m.payload(&buf), advert);
        }

        sb.send_to(b"from-b", vrrp_group(true)).unwrap();
        let m = recv_one(&sa, &mut buf);
        assert_eq!((m.src, m.ttl), (IpAddr::V6(LL_B), 255));
        assert_eq!(m.payload(&buf), b"from-b");
        // Multicast loop is off.
        assert!(sa.try_recv(&mut buf).unwrap().is_none());

        // Hop limit 64 is reported as such.
        let raw = in_netns(&a, || plain_raw(true, ia, 64));
        raw.send_to(b"hl64-m", &sockaddr(vrrp_group(true), ia))
            .unwrap();
        let m = recv_one(&sb, &mut buf);
        assert_eq!(
            (m.ttl, m.dst, m.payload(&buf)),
            (64, vrrp_group(true), &b"hl64-m"[..])
        );
        raw.send_to(b"hl64-u", &sockaddr(IpAddr::V6(LL_B), ia))
            .unwrap();
        let m = recv_one(&sb, &mut buf);
        assert_eq!(
            (m.ttl, m.dst, m.payload(&buf)),
            (64, IpAddr::V6(LL_B), &b"hl64-u"[..])
        );

        // A global source, if the caller asks for one.
        let sa2 = in_netns(&a, || VrrpSocket::open(ia, "eth0", IpAddr::V6(G6_A))).unwrap();
        sa2.send_to(b"global-src", vrrp_group(true)).unwrap();
        let m = recv_one(&sb, &mut buf);
        assert_eq!(
            (m.src, m.payload(&buf)),
            (IpAddr::V6(G6_A), &b"global-src"[..])
        );

        // try_recv of a queued packet.
        sa.send_to(b"queued", vrrp_group(true)).unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
        let m = sb.try_recv(&mut buf).unwrap().expect("queued packet");
        assert_eq!(m.payload(&buf), b"queued");
        assert_eq!(m.ttl, 255);
    });
}

fn addr_lines(ns: &str) -> String {
    ip(ns, &["-o", "addr", "show", "dev", "eth0"])
}

#[test]
fn netlink_interface_and_addresses() {
    let Some(lab) = Lab::new(PREFIX, "nl") else {
        return;
    };
    let a = lab.a.clone();
    let ia = lab.ifindex(&a);
    // Secondary in the same subnet as the primary: must not be reported as primary.
    lab.ip(&a, &["addr", "add", "192.0.2.50/24", "dev", "eth0"]);
    let b = lab.b.clone();
    run_bounded(LIMIT, move || async move {
        let nl = in_netns(&a, Netlink::new).unwrap();
        let info = nl.interface("eth0").await.unwrap();
        assert_eq!(info.name, "eth0");
        assert_eq!(info.index, ia);
        assert_eq!(info.mac, MAC_A);
        assert!(info.up);
        assert_eq!(info.primary_v4, Some(V4_A));
        assert_eq!(info.link_local_v6, Some(LL_A));

        let lo = nl.interface("lo").await.unwrap();
        assert_eq!(lo.primary_v4, Some(Ipv4Addr::LOCALHOST));
        assert_eq!(lo.link_local_v6, None);

        let err = nl.interface("nosuch0").await.unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::NotFound);
        assert!(err.to_string().contains("nosuch0"), "{err}");

        // IPv4 VIP: add twice, visible, primary unchanged, delete twice, gone.
        let vip4 = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 100));
        nl.add_address(ia, vip4, 32).await.unwrap();
        nl.add_address(ia, vip4, 32).await.unwrap();
        assert!(addr_lines(&a).contains("inet 192.0.2.100/32"));
        assert_eq!(nl.interface("eth0").await.unwrap().primary_v4, Some(V4_A));
        nl.del_address(ia, vip4, 32).await.unwrap();
        nl.del_address(ia, vip4, 32).await.unwrap();
        assert!(!addr_lines(&a).contains("192.0.2.100"));

        // IPv6 VIP: nodad, so never tentative.
        let vip6 = IpAddr::V6("2001:db8::100".parse().unwrap());
        nl.add_address(ia, vip6, 64).await.unwrap();
        nl.add_address(ia, vip6, 64).await.unwrap();
        let line = addr_lines(&a)
            .lines()
            .find(|l| l.contains("2001:db8::100/64"))
            .expect("IPv6 VIP listed")
            .to_owned();
        assert!(
            line.contains("nodad") && !line.contains("tentative"),
            "{line}"
        );
        nl.del_address(ia, vip6, 64).await.unwrap();
        nl.del_address(ia, vip6, 64).await.unwrap();
        assert!(!addr_lines(&a).contains("2001:db8::100"));

        // Real failures are errors naming what failed.
        let err = nl.add_address(999_999, vip4, 32).await.unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("192.0.2.100/32") && msg.contains("999999"),
            "{msg}"
        );
        assert!(nl.del_address(999_999, vip4, 32).await.is_err());
        assert!(nl.add_address(ia, vip4, 33).await.is_err());

        // "up" means admin up and carrier: peer down -> NO-CARRIER -> not up.
        ip(&b, &["link", "set", "eth0", "down"]);
        assert!(!nl.interface("eth0").await.unwrap().up);
        ip(&b, &["link", "set", "eth0", "up"]);
        ip(&a, &["link", "set", "eth0", "down"]);
        assert!(!nl.interface("eth0").await.unwrap().up);
        ip(&a, &["link", "set", "eth0", "up"]);
        let mut up = false;
        for _ in 0..100 {
            if nl.interface("eth0").await.unwrap().up {
                up = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(up, "eth0 up again");
    });
}

fn neigh(lab: &Lab, ns: &str, v6: bool, addr: &str) -> String {
    let fam = if v6 { "-6" } else { "-4" };
    lab.ip(ns, &[fam, "neigh", "show", addr, "dev", "eth0"])
}

#[test]
fn gratuitous_arp() {
    let Some(lab) = Lab::new(PREFIX, "garp") else {
        return;
    };
    let (a, b) = (lab.a.clone(), lab.b.clone());
    let (ia, ib) = (lab.ifindex(&a), lab.ifindex(&b));
    let mac_a = mac_str(MAC_A);

    // Case 1: the receiver has a stale entry for the VIP pointing elsewhere (a failover):
    // a GARP updates it with the default arp_accept=0.
    let moved = Ipv4Addr::new(192, 0, 2, 100);
    lab.ip(
        &b,
        &[
            "neigh",
            "add",
            &moved.to_string(),
            "lladdr",
            "02:00:00:00:00:99",
            "dev",
            "eth0",
            "nud",
            "stale",
        ],
    );
    let cap = in_netns(&b, || Capture::open(ib, 0x0806));
    let mut g = Gratuitous::open(ia, "eth0", MAC_A).unwrap();
    in_netns(&a, || g.send_garp(moved)).unwrap();
    let expected = garp_frame(MAC_A, moved);
    let got = cap
        .find(RECV_WAIT, |f| {
            f.len() >= 42 && f[6..12] == MAC_A && f[38..42] == moved.octets()
        })
        .expect("GARP captured on the receiver");
    assert_eq!(got[..42], expected[..], "GARP bytes on the wire");
    assert!(
        got[42..].iter().all(|&b| b == 0),
        "only zero padding after the ARP body"
    );
    lab.wait_for(
        RECV_WAIT,
        "GARP to update the existing neighbour entry",
        || neigh(&lab, &b, false, "192.0.2.100").contains(&mac_a),
    );

    // Case 2: no entry yet; Linux creates one from a GARP only with arp_accept=1.
    lab.sysctl(&b, "net.ipv4.conf.all.arp_accept", "1");
    let fresh = Ipv4Addr::new(192, 0, 2, 101);
    assert!(!neigh(&lab, &b, false, "192.0.2.101").contains("lladdr"));
    // The socket was opened lazily inside namespace A on the first send and is kept: this
    // send happens from the test thread's own namespace and still goes out on A's eth0.
    g.send_garp(fresh).unwrap();
    lab.wait_for(
        RECV_WAIT,
        "GARP to create a neighbour entry (arp_accept=1)",
        || neigh(&lab, &b, false, "192.0.2.101").contains(&mac_a),
    );
    drop(cap);
}

#[test]
fn unsolicited_na() {
    let Some(lab) = Lab::new(PREFIX, "na") else {
        return;
    };
    let (a, b) = (lab.a.clone(), lab.b.clone());
    let (ia, ib) = (lab.ifindex(&a), lab.ifindex(&b));
    let mac_a = mac_str(MAC_A);

    // Case 1: existing (stale, other MAC) entry is overridden by the Override flag.
    let moved: Ipv6Addr = "2001:db8::100".parse().unwrap();
    lab.ip(
        &b,
        &[
            "-6",
            "neigh",
            "add",
            &moved.to_string(),
            "lladdr",
            "02:00:00:00:00:99",
            "dev",
            "eth0",
            "nud",
            "stale",
        ],
    );
    let cap = in_netns(&b, || Capture::open(ib, 0x86dd));
    let mut g = in_netns(&a, || Gratuitous::open(ia, "eth0", MAC_A)).unwrap();
    in_netns(&a, || g.send_unsolicited_na(moved, LL_A)).unwrap();
    let expected = unsolicited_na_frame(MAC_A, LL_A, moved);
    let got = cap
        .find(RECV_WAIT, |f| {
            f.len() >= 86 && f[20] == 58 && f[54] == 136 && f[62..78] == moved.octets()
        })
        .expect("NA captured on the receiver");
    assert_eq!(got[..], expected[..], "NA bytes on the wire");
    lab.wait_for(
        RECV_WAIT,
        "NA to override the existing neighbour entry",
        || neigh(&lab, &b, true, "2001:db8::100").contains(&mac_a),
    );

    // Case 2: no entry; RFC 9131 accept_untracked_na=1 lets the NA create one (STALE) on a
    // router.
    let fresh: Ipv6Addr = "2001:db8::101".parse().unwrap();
    let has_knob = std::process::Command::new("ip")
        .args([
            "netns",
            "exec",
            &b,
            "test",
            "-e",
            "/proc/sys/net/ipv6/conf/eth0/accept_untracked_na",
        ])
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if has_knob {
        lab.sysctl(&b, "net.ipv6.conf.eth0.accept_untracked_na", "1");
        // The kernel (checked on 6.18) applies accept_untracked_na only on routers: without
        // forwarding=1 the NA is ignored and no entry appears.
        lab.sysctl(&b, "net.ipv6.conf.eth0.forwarding", "1");
        in_netns(&a, || g.send_unsolicited_na(fresh, LL_A)).unwrap();
        lab.wait_for(
            RECV_WAIT,
            "NA to create a neighbour entry (accept_untracked_na=1)",
            || neigh(&lab, &b, true, "2001:db8::101").contains(&mac_a),
        );
    } else {
        eprintln!("kernel has no accept_untracked_na: skipping the new-entry NA case");
    }
    drop(cap);
}
