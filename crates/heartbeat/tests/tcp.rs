//! TCP channel end to end on 127.0.0.1: connect, reconnect after the peer's listener
//! restarts, and connection churn to a dead peer that blocks nothing.

mod support;

use std::net::SocketAddr;

use support::*;
use tandem_heartbeat::{ChannelSpec, EventKind, Heartbeat, State};

fn tcp(port: u16, peers: &[u16]) -> ChannelSpec {
    let peers: Vec<SocketAddr> = peers.iter().map(|p| ([127, 0, 0, 1], *p).into()).collect();
    ChannelSpec::tcp(port, peers)
        .with_bind([127, 0, 0, 1].into())
        .with_timing(ms(50), ms(250))
}

#[tokio::test]
async fn reconnects_after_the_listener_restarts() {
    let (pa, pb) = (free_port(), free_port());
    let names = ["a", "b"];
    let mut a = Heartbeat::start(config(&names, "a", vec![tcp(pa, &[pb])])).unwrap();
    let b = Heartbeat::start(config(&names, "b", vec![tcp(pb, &[pa])])).unwrap();
    wait_event(&mut a, ms(3000), "a sees b up", |k| is_peer_up(k, "b")).await;
    let first_incarnation = b.incarnation();

    // b dies: its listener and connections close at once.
    drop(b);
    wait_event(&mut a, ms(3000), "a sees b down", |k| is_peer_down(k, "b")).await;
    // a keeps retrying with backoff while b's port is closed.
    tokio::time::sleep(ms(300)).await;
    let stats = a.snapshot().await.unwrap().channels[0]
        .transport
        .clone()
        .unwrap();
    assert!(stats.connect_failures >= 1, "{stats:?}");
    assert_eq!(stats.connected, 0);

    // b comes back on the same port with a new incarnation.
    let b = Heartbeat::start(config(&names, "b", vec![tcp(pb, &[pa])])).unwrap();
    assert_ne!(b.incarnation(), first_incarnation);
    let seen = wait_event(&mut a, ms(5000), "a sees b again", |k| is_peer_up(k, "b")).await;
    assert!(
        seen.iter().any(|e| matches!(
            e.kind,
            EventKind::PeerRestarted { old_incarnation, new_incarnation, .. }
                if old_incarnation == first_incarnation && new_incarnation == b.incarnation()
        )),
        "{seen:?}"
    );
    let stats = a.snapshot().await.unwrap().channels[0]
        .transport
        .clone()
        .unwrap();
    assert!(stats.connects >= 2, "{stats:?}");
    assert_eq!(stats.connected, 1);
    drop(b);
}

#[tokio::test]
async fn churn_towards_a_dead_peer_blocks_nothing() {
    let (pa, pb) = (free_port(), free_port());
    // c's port: a listener that accepts and closes at once, then nothing at all.
    let pc = free_port();
    let churn = std::net::TcpListener::bind(("127.0.0.1", pc)).unwrap();
    churn.set_nonblocking(true).unwrap();
    let names = ["a", "b", "c"];
    let udp = |port: u16, peer: u16| {
        ChannelSpec::udp_unicast(port, vec![([127, 0, 0, 1], peer).into()])
            .with_bind([127, 0, 0, 1].into())
            .with_timing(ms(50), ms(250))
    };
    let (ua, ub) = (free_port(), free_port());
    let mut a =
        Heartbeat::start(config(&names, "a", vec![tcp(pa, &[pb, pc]), udp(ua, ub)])).unwrap();
    let mut b =
        Heartbeat::start(config(&names, "b", vec![tcp(pb, &[pa, pc]), udp(ub, ua)])).unwrap();
    let seen = wait_event(&mut a, ms(3000), "a sees b up", |k| is_peer_up(k, "b")).await;
    // Both channels come up.
    let _ = seen;
    let mut up_links = 1;
    let end = tokio::time::Instant::now() + ms(2000);
    while up_links < 2 && tokio::time::Instant::now() < end {
        if let Ok(Some(e)) = tokio::time::timeout(ms(100), a.next_event()).await {
            if matches!(e.kind, EventKind::ChannelUp { .. }) {
                up_links += 1;
            }
        }
    }
    assert_eq!(up_links, 2);

    // 1.5 s of churn: accept-and-close for a while, then the port closes entirely.
    let mut accepted = 0;
    let end = tokio::time::Instant::now() + ms(750);
    while tokio::time::Instant::now() < end {
        while let Ok((s, _)) = churn.accept() {
            drop(s);
            accepted += 1;
        }
        tokio::time::sleep(ms(10)).await;
    }
    drop(churn);
    let events_a = events_for(&mut a, ms(750)).await;
    let events_b = events_for(&mut b, ms(10)).await;
    // Not a single link flap between a and b (b's list still holds its start-up ups).
    let down = |e: &tandem_heartbeat::Event| {
        matches!(
            e.kind,
            EventKind::ChannelDown { .. } | EventKind::PeerDown { .. }
        )
    };
    assert!(
        events_a.iter().all(|e| e.kind.peer() != "b"),
        "{events_a:?}"
    );
    assert!(!events_b.iter().any(down), "{events_b:?}");
    assert!(accepted >= 2, "accepted {accepted}");
    let snap = a.snapshot().await.unwrap();
    let stats = snap.channels[0].transport.clone().unwrap();
    assert!(stats.connects >= 3 && stats.disconnects >= 2, "{stats:?}");
    assert!(stats.connect_failures >= 1, "{stats:?}");
    let b_status = snap.peers.iter().find(|p| p.name == "b").unwrap();
    assert_eq!(b_status.state, State::Up);
    assert!(b_status.links.iter().all(|l| l.state == State::Up));
    let c_status = snap.peers.iter().find(|p| p.name == "c").unwrap();
    assert_eq!(c_status.state, State::Down);
}
