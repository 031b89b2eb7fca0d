//! A network-namespace lab for the root-only integration tests of the I/O crates.
//!
//! Each [`Lab`] makes two namespaces `<prefix><pid>-<tag>-a` / `-b` joined by a veth pair
//! (`eth0` on both sides, fixed MACs and addresses below) and deletes them on drop, also when
//! the test panics. Namespaces left behind by a test process that was killed are removed by
//! the next run with the same prefix (their pid is dead). Test code enters a namespace per
//! socket with [`in_netns`]: a socket belongs to the namespace of the thread that created it,
//! wherever it is used afterwards.
//!
//! Must never touch anything outside the namespaces it created.

use std::fs::File;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::os::fd::AsRawFd;
use std::process::Command;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub const MAC_A: [u8; 6] = [0x02, 0, 0, 0, 0, 0x0a];
pub const MAC_B: [u8; 6] = [0x02, 0, 0, 0, 0, 0x0b];
pub const V4_A: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
pub const V4_B: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);
pub const LL_A: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0xa);
pub const LL_B: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0xb);
pub const G6_A: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0xa);
pub const G6_B: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0xb);

pub fn mac_str(m: [u8; 6]) -> String {
    m.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Run a command, panic with its output if it fails; return stdout.
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

pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// Delete namespaces named with `prefix` whose process is gone (killed before its Drop ran);
/// once per prefix and test process.
fn reap_stale(prefix: &'static str) {
    static DONE: Mutex<Vec<&'static str>> = Mutex::new(Vec::new());
    {
        let mut done = DONE.lock().unwrap_or_else(|p| p.into_inner());
        if done.contains(&prefix) {
            return;
        }
        done.push(prefix);
    }
    let Ok(out) = Command::new("ip").args(["netns", "list"]).output() else {
        return;
    };
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let name = line.split_whitespace().next().unwrap_or("");
        let Some(rest) = name.strip_prefix(prefix) else {
            continue;
        };
        let Some(pid) = rest.split('-').next().and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            let _ = Command::new("ip").args(["netns", "del", name]).status();
        }
    }
}

/// Two namespaces joined by a veth pair: `a` has `eth0` with [`MAC_A`], [`V4_A`]/24,
/// [`LL_A`]/64 and [`G6_A`]/64; `b` the same with the `_B` values.
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
    /// `None` (after saying why) when the tests cannot run here: not root.
    pub fn new(prefix: &'static str, tag: &str) -> Option<Lab> {
        if !is_root() {
            eprintln!("SKIP: network-namespace test `{tag}` needs root (euid != 0)");
            return None;
        }
        reap_stale(prefix);
        let pid = std::process::id();
        let mut lab = Lab {
            a: format!("{prefix}{pid}-{tag}-a"),
            b: format!("{prefix}{pid}-{tag}-b"),
            created: Vec::new(),
        };
        for ns in [lab.a.clone(), lab.b.clone()] {
            run_cmd(&["ip", "netns", "add", &ns]);
            lab.created.push(ns.clone());
            // New interfaces inherit "default": no DAD, so addresses are usable at once.
            sysctl(&ns, "net.ipv6.conf.all.accept_dad", "0");
            sysctl(&ns, "net.ipv6.conf.default.accept_dad", "0");
            ip(&ns, &["link", "set", "lo", "up"]);
        }
        ip(
            &lab.a,
            &[
                "link", "add", "eth0", "type", "veth", "peer", "name", "eth0", "netns", &lab.b,
            ],
        );
        for (ns, mac, v4, ll, g6) in [
            (&lab.a, MAC_A, V4_A, LL_A, G6_A),
            (&lab.b, MAC_B, V4_B, LL_B, G6_B),
        ] {
            // No kernel-made link-local: only the deterministic one below.
            ip(ns, &["link", "set", "eth0", "addrgenmode", "none"]);
            ip(ns, &["link", "set", "eth0", "address", &mac_str(mac)]);
            ip(ns, &["addr", "add", &format!("{v4}/24"), "dev", "eth0"]);
            ip(
                ns,
                &["addr", "add", &format!("{ll}/64"), "dev", "eth0", "nodad"],
            );
            ip(
                ns,
                &["addr", "add", &format!("{g6}/64"), "dev", "eth0", "nodad"],
            );
            ip(ns, &["link", "set", "eth0", "up"]);
        }
        for ns in [lab.a.clone(), lab.b.clone()] {
            wait_for(Duration::from_secs(5), "eth0 carrier", || {
                ip(&ns, &["link", "show", "eth0"]).contains("LOWER_UP")
            });
        }
        Some(lab)
    }

    pub fn ip(&self, ns: &str, args: &[&str]) -> String {
        ip(ns, args)
    }

    pub fn sysctl(&self, ns: &str, key: &str, value: &str) {
        sysctl(ns, key, value)
    }

    pub fn ifindex(&self, ns: &str) -> u32 {
        ifindex(ns)
    }

    pub fn wait_for(&self, limit: Duration, what: &str, cond: impl FnMut() -> bool) {
        wait_for(limit, what, cond)
    }

    /// Take `eth0` of `ns` down or up. The kernel flushes IPv6 link-local addresses on
    /// `down` (`keep_addr_on_down` keeps only global ones): put ours back on `up`.
    pub fn link(&self, ns: &str, up: bool) {
        ip(ns, &["link", "set", "eth0", if up { "up" } else { "down" }]);
        if up {
            let ll = if ns == self.a { LL_A } else { LL_B };
            ip(
                ns,
                &[
                    "addr",
                    "replace",
                    &format!("{ll}/64"),
                    "dev",
                    "eth0",
                    "nodad",
                ],
            );
        }
    }
}

/// `ip -n NS ARGS...`, panicking on failure.
pub fn ip(ns: &str, args: &[&str]) -> String {
    let mut v = vec!["ip", "-n", ns];
    v.extend_from_slice(args);
    run_cmd(&v)
}

pub fn sysctl(ns: &str, key: &str, value: &str) {
    run_cmd(&[
        "ip",
        "netns",
        "exec",
        ns,
        "sysctl",
        "-qw",
        &format!("{key}={value}"),
    ]);
}

/// Index of `eth0` inside `ns`.
pub fn ifindex(ns: &str) -> u32 {
    let out = ip(ns, &["-o", "link", "show", "eth0"]);
    out.split(':').next().unwrap().trim().parse().unwrap()
}

/// Poll `cond` until it holds or `limit` passes (then panic naming `what`).
pub fn wait_for(limit: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let end = Instant::now() + limit;
    while !cond() {
        assert!(
            Instant::now() < end,
            "timed out after {limit:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Restores the thread's original namespace, also on panic.
struct Restore(File);

impl Drop for Restore {
    fn drop(&mut self) {
        // SAFETY: plain syscall on an fd we own.
        let rc = unsafe { libc::setns(self.0.as_raw_fd(), libc::CLONE_NEWNET) };
        if rc != 0 {
            // Not panicking in drop; the thread is a dedicated test thread anyway.
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
