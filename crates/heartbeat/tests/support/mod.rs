//! Shared helpers for the integration tests: cluster specs, free ports, bounded event
//! waits, and the network-namespace lab (root only) that always cleans up.
#![allow(dead_code)]

use std::time::Duration;

use tandem_heartbeat::{
    ChannelSpec, ClusterKey, ClusterSpec, Event, EventKind, Heartbeat, HeartbeatConfig, NodeSpec,
};

pub const KEY: &[u8] = b"integration-test-key";

pub fn cluster(names: &[&str]) -> ClusterSpec {
    ClusterSpec {
        name: "itest".into(),
        key: ClusterKey::new(KEY.to_vec()).unwrap(),
        nodes: names
            .iter()
            .map(|n| NodeSpec {
                name: (*n).into(),
                address: None,
            })
            .collect(),
    }
}

pub fn config(names: &[&str], node: &str, channels: Vec<ChannelSpec>) -> HeartbeatConfig {
    HeartbeatConfig {
        cluster: cluster(names),
        node: node.into(),
        channels,
        incarnation: None,
    }
}

pub fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// A port that was free on 127.0.0.1 a moment ago (UDP and TCP both checked).
pub fn free_port() -> u16 {
    for _ in 0..100 {
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = udp.local_addr().unwrap().port();
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port");
}

/// Collect events until one matches `pred`; panic after `limit`. Returns everything seen,
/// the matching event last.
pub async fn wait_event(
    hb: &mut Heartbeat,
    limit: Duration,
    what: &str,
    mut pred: impl FnMut(&EventKind) -> bool,
) -> Vec<Event> {
    let mut seen = Vec::new();
    let end = tokio::time::Instant::now() + limit;
    loop {
        match tokio::time::timeout_at(end, hb.next_event()).await {
            Ok(Some(e)) => {
                let hit = pred(&e.kind);
                seen.push(e);
                if hit {
                    return seen;
                }
            }
            Ok(None) => panic!("driver stopped while waiting for {what}; seen {seen:?}"),
            Err(_) => panic!("timed out after {limit:?} waiting for {what}; seen {seen:?}"),
        }
    }
}

/// Every event that arrives within `d`.
pub async fn events_for(hb: &mut Heartbeat, d: Duration) -> Vec<Event> {
    let mut seen = Vec::new();
    let end = tokio::time::Instant::now() + d;
    while let Ok(Some(e)) = tokio::time::timeout_at(end, hb.next_event()).await {
        seen.push(e);
    }
    seen
}

pub fn is_peer_up(k: &EventKind, who: &str) -> bool {
    matches!(k, EventKind::PeerUp { peer, .. } if peer == who)
}

pub fn is_peer_down(k: &EventKind, who: &str) -> bool {
    matches!(k, EventKind::PeerDown { peer, .. } if peer == who)
}

// ---------------------------------------------------------------------------------------
// Network namespaces: the shared two-namespace lab.

#[allow(unused_imports)] // not every test binary uses the lab
pub use tandem_netlab::{in_netns, ip, run_cmd, Lab};

/// Namespace prefix of these tests.
pub const PREFIX: &str = "thb-";
