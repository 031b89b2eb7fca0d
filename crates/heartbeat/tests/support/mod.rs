//! Shared helpers for the integration tests: cluster specs, free ports, bounded event
//! waits, and a network-namespace lab (root only) that always cleans up.
#![allow(dead_code)]

use std::fs::File;
use std::os::fd::AsRawFd;
use std::process::Command;
use std::sync::Once;
use std::time::{Duration, Instant};

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
// Network namespaces.

const PREFIX: &str = "thb-";

pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

pub fn run_cmd(args: &[&str]) -> String {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .unwrap_or_else(|e| panic!("spawn {args:?}: {e}"));
    assert!(
        out.status.success(),
        "{args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Delete namespaces of earlier runs whose process is gone (killed before its Drop ran).
fn reap_stale() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let Ok(out) = Command::new("ip").args(["netns", "list"]).output() else {
            return;
        };
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            let name = line.split_whitespace().next().unwrap_or("");
            let Some(rest) = name.strip_prefix(PREFIX) else {
                continue;
            };
            let Some(pid) = rest.split('-').next().and_then(|p| p.parse::<u32>().ok()) else {
                continue;
            };
            if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
                let _ = Command::new("ip").args(["netns", "del", name]).status();
            }
        }
    });
}

/// Two namespaces `thb-<pid>-<tag>-a` / `-b` joined by a veth pair (`eth0` on both sides,
/// 192.0.2.1/24 and 192.0.2.2/24, fe80::a / fe80::b), deleted on drop, panics included.
pub struct Lab {
    pub a: String,
    pub b: String,
    created: Vec<String>,
}

impl Drop for Lab {
    fn drop(&mut self) {
        for ns in self.created.drain(..) {
            let ok = Command::new("ip")
                .args(["netns", "del", &ns])
                .status()
                .map(|s| s.success())
                .unwrap_or(false);
            if !ok {
                eprintln!("warning: could not delete network namespace {ns}");
            }
        }
    }
}

impl Lab {
    /// `None` (after saying why) when not root.
    pub fn new(tag: &str) -> Option<Lab> {
        if !is_root() {
            eprintln!("SKIP: network-namespace test `{tag}` needs root");
            return None;
        }
        reap_stale();
        let pid = std::process::id();
        let mut lab = Lab {
            a: format!("{PREFIX}{pid}-{tag}-a"),
            b: format!("{PREFIX}{pid}-{tag}-b"),
            created: Vec::new(),
        };
        for ns in [lab.a.clone(), lab.b.clone()] {
            run_cmd(&["ip", "netns", "add", &ns]);
            lab.created.push(ns.clone());
            run_cmd(&[
                "ip",
                "netns",
                "exec",
                &ns,
                "sysctl",
                "-qw",
                "net.ipv6.conf.all.accept_dad=0",
            ]);
            run_cmd(&[
                "ip",
                "netns",
                "exec",
                &ns,
                "sysctl",
                "-qw",
                "net.ipv6.conf.default.accept_dad=0",
            ]);
            ip(&ns, &["link", "set", "lo", "up"]);
        }
        ip(
            &lab.a,
            &[
                "link", "add", "eth0", "type", "veth", "peer", "name", "eth0", "netns", &lab.b,
            ],
        );
        for (ns, v4, ll) in [
            (&lab.a, "192.0.2.1", "fe80::a"),
            (&lab.b, "192.0.2.2", "fe80::b"),
        ] {
            ip(ns, &["link", "set", "eth0", "addrgenmode", "none"]);
            ip(ns, &["addr", "add", &format!("{v4}/24"), "dev", "eth0"]);
            ip(
                ns,
                &["addr", "add", &format!("{ll}/64"), "dev", "eth0", "nodad"],
            );
            ip(ns, &["link", "set", "eth0", "up"]);
        }
        for ns in [lab.a.clone(), lab.b.clone()] {
            let end = Instant::now() + Duration::from_secs(5);
            while !ip(&ns, &["link", "show", "eth0"]).contains("LOWER_UP") {
                assert!(Instant::now() < end, "eth0 carrier in {ns}");
                std::thread::sleep(ms(20));
            }
        }
        Some(lab)
    }

    /// Take `eth0` of `ns` down or up. The kernel flushes IPv6 link-local addresses on
    /// `down` (`keep_addr_on_down` keeps only global ones): put ours back on `up`.
    pub fn link(&self, ns: &str, up: bool) {
        ip(ns, &["link", "set", "eth0", if up { "up" } else { "down" }]);
        if up {
            let ll = if ns == self.a {
                "fe80::a/64"
            } else {
                "fe80::b/64"
            };
            ip(ns, &["addr", "replace", ll, "dev", "eth0", "nodad"]);
        }
    }
}

pub fn ip(ns: &str, args: &[&str]) -> String {
    let mut v = vec!["ip", "-n", ns];
    v.extend_from_slice(args);
    run_cmd(&v)
}

/// Restores the thread's original namespace, also on panic.
struct Restore(File);

impl Drop for Restore {
    fn drop(&mut self) {
        // SAFETY: plain syscall on an fd we own.
        let rc = unsafe { libc::setns(self.0.as_raw_fd(), libc::CLONE_NEWNET) };
        if rc != 0 {
            eprintln!("setns back failed: {}", std::io::Error::last_os_error());
        }
    }
}

/// Run `f` with the current thread inside network namespace `ns`: sockets created in `f`
/// belong to `ns` wherever they are used afterwards.
pub fn in_netns<R>(ns: &str, f: impl FnOnce() -> R) -> R {
    let orig = File::open("/proc/thread-self/ns/net").expect("open own netns");
    let target = File::open(format!("/run/netns/{ns}")).expect("open target netns");
    // SAFETY: plain syscall on an fd we own; only this thread changes namespace.
    let rc = unsafe { libc::setns(target.as_raw_fd(), libc::CLONE_NEWNET) };
    assert_eq!(rc, 0, "setns({ns}): {}", std::io::Error::last_os_error());
    let _restore = Restore(orig);
    f()
}
