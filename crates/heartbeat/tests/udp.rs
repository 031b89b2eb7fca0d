//! UDP channels end to end: unicast-list mode on 127.0.0.1, multicast in a pair of network
//! namespaces (multicast loop is off, so two nodes on one host's `lo` cannot hear each other
//! by design).

mod support;

use std::net::SocketAddr;

use support::*;
use tandem_heartbeat::{ChannelSpec, DownReason, EventKind, Heartbeat, State};

/// Starts `a` and `b` on two free ports, with fresh ones when a port was taken between the
/// probe and the bind (another test's ephemeral socket can land on it). Returns the ports too.
fn start_pair(
    make: impl Fn(u16, u16) -> (Vec<ChannelSpec>, Vec<ChannelSpec>),
) -> (Heartbeat, Heartbeat, u16, u16) {
    let names = ["a", "b"];
    for _ in 0..10 {
        let (pa, pb) = (free_port(), free_port());
        let (ca, cb) = make(pa, pb);
        let Ok(a) = Heartbeat::start(config(&names, "a", ca)) else {
            continue;
        };
        if let Ok(b) = Heartbeat::start(config(&names, "b", cb)) {
            return (a, b, pa, pb);
        }
    }
    panic!("no two free ports in 10 tries");
}

fn unicast(port: u16, peer_port: u16) -> ChannelSpec {
    let peer: SocketAddr = ([127, 0, 0, 1], peer_port).into();
    ChannelSpec::udp_unicast(port, vec![peer])
        .with_bind([127, 0, 0, 1].into())
        .with_timing(ms(50), ms(250))
}

#[tokio::test]
async fn unicast_list_on_loopback() {
    let (mut a, mut b, pa, _) = start_pair(|pa, pb| (vec![unicast(pa, pb)], vec![unicast(pb, pa)]));

    let seen = wait_event(&mut a, ms(3000), "a sees b up", |k| is_peer_up(k, "b")).await;
    assert!(matches!(&seen[0].kind, EventKind::ChannelUp { peer, .. } if peer == "b"));
    wait_event(&mut b, ms(3000), "b sees a up", |k| is_peer_up(k, "a")).await;

    // Garbage and a frame of another cluster reach a's socket from 127.0.0.1 (a peer IP):
    // the shell passes them on, the core drops and counts them; nothing else changes.
    let junk = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    junk.send_to(b"not a heartbeat", ("127.0.0.1", pa)).unwrap();
    junk.send_to(b"TNHB\x01", ("127.0.0.1", pa)).unwrap();
    // Let a few intervals pass so RTT and loss have samples.
    assert!(events_for(&mut a, ms(400)).await.is_empty());

    let snap = a.snapshot().await.unwrap();
    let peer = &snap.peers[0];
    assert_eq!(peer.name, "b");
    assert_eq!(peer.state, State::Up);
    let link = &peer.links[0];
    assert_eq!(link.state, State::Up);
    assert!(link.rtt_ms.is_some_and(|r| r < 50.0), "{link:?}");
    assert!(link.last_seen_ago_ms.is_some_and(|t| t < 100.0), "{link:?}");
    assert!(link.loss_percent.is_some_and(|l| l < 10.0), "{link:?}");
    let ch = &snap.channels[0];
    assert_eq!(ch.drops.malformed, 2, "{ch:?}");
    assert!(ch
        .description
        .as_deref()
        .unwrap()
        .starts_with("udp-unicast"));
    let transport = ch.transport.as_ref().unwrap();
    assert!(
        transport.frames_sent >= 5 && transport.frames_received >= 5,
        "{transport:?}"
    );
    // The snapshot is what `tandem links --json` prints.
    let json = serde_json::to_string(&snap).unwrap();
    assert!(json.contains("\"loss_percent\""));

    // A clean shutdown of b: a sees it leave (reason Left), not time out.
    b.shutdown().await;
    let seen = wait_event(&mut a, ms(2000), "a sees b leave", |k| is_peer_down(k, "b")).await;
    assert!(matches!(
        seen.last().unwrap().kind,
        EventKind::PeerDown {
            reason: DownReason::Left,
            ..
        }
    ));
}

#[tokio::test]
async fn unicast_rejects_other_sources_and_times_out() {
    // a only accepts datagrams from 127.0.0.2.
    let (mut a, b, _, _) = start_pair(|pa, pb| {
        let spec_a = ChannelSpec::udp_unicast(pa, vec![([127, 0, 0, 2], pb).into()])
            .with_bind([127, 0, 0, 1].into())
            .with_timing(ms(50), ms(250));
        (vec![spec_a], vec![unicast(pb, pa)])
    });
    assert!(events_for(&mut a, ms(500)).await.is_empty());
    let snap = a.snapshot().await.unwrap();
    assert_eq!(snap.peers[0].state, State::Down);
    assert!(
        snap.channels[0]
            .transport
            .as_ref()
            .unwrap()
            .rejected_sources
            >= 5
    );
    drop(b);
}

#[test]
fn multicast_in_network_namespaces() {
    let Some(lab) = Lab::new(PREFIX, "mc4") else {
        return;
    };
    multicast_pair(&lab, "239.192.0.1:5405".parse().unwrap());
}

#[test]
fn multicast_ipv6_link_local_group() {
    let Some(lab) = Lab::new(PREFIX, "mc6") else {
        return;
    };
    multicast_pair(&lab, "[ff02::1:5405]:5405".parse().unwrap());
}

fn multicast_pair(lab: &Lab, group: SocketAddr) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let names = ["a", "b"];
        let spec = ChannelSpec::udp_multicast("eth0", group).with_timing(ms(50), ms(250));
        // Each node's socket is created inside its own namespace.
        let mut a = in_netns(&lab.a, || {
            Heartbeat::start(config(&names, "a", vec![spec.clone()]))
        })
        .unwrap();
        let mut b = in_netns(&lab.b, || {
            Heartbeat::start(config(&names, "b", vec![spec.clone()]))
        })
        .unwrap();
        wait_event(&mut a, ms(3000), "a sees b up", |k| is_peer_up(k, "b")).await;
        wait_event(&mut b, ms(3000), "b sees a up", |k| is_peer_up(k, "a")).await;
        assert!(events_for(&mut a, ms(300)).await.is_empty());
        let snap = a.snapshot().await.unwrap();
        // Multicast loop is off: a never hears itself.
        assert_eq!(snap.channels[0].drops.from_self, 0);
        assert!(snap.peers[0].links[0].rtt_ms.is_some());

        // Cut b's link: a sees b down after the 250 ms timeout; heal: back up.
        let cut = std::time::Instant::now();
        lab.link(&lab.b, false);
        let seen = wait_event(&mut a, ms(3000), "a sees b down", |k| is_peer_down(k, "b")).await;
        assert!(matches!(
            seen.last().unwrap().kind,
            EventKind::PeerDown {
                reason: DownReason::Timeout,
                ..
            }
        ));
        let took = cut.elapsed();
        // The last frame before the cut came at most one interval earlier.
        assert!(took >= ms(150) && took < ms(2000), "{took:?}");
        lab.link(&lab.b, true);
        let seen = wait_event(&mut a, ms(5000), "a sees b again", |k| is_peer_up(k, "b")).await;
        // Same process, same incarnation: no restart event.
        assert!(!seen
            .iter()
            .any(|e| matches!(e.kind, EventKind::PeerRestarted { .. })));
        drop(a);
        drop(b);
    });
}
