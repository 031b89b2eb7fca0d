//! Network-namespace lab for the root-only integration tests.
//!
//! Each [`Lab`] makes two namespaces `tnio-<pid>-<tag>-a` / `-b` joined by a veth pair
//! (`eth0` on both sides) and deletes them on drop, also when the test panics. Namespaces left
//! behind by a test process that was killed are removed by the next run (their pid is dead).
//! Test code enters a namespace per socket with [`in_netns`]: a socket belongs to the
//! namespace of the thread that created it, wherever it is used afterwards.
#![allow(dead_code)]

use std::fs::File;
use std::future::Future;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::os::fd::AsRawFd;
use std::process::Command;
use std::sync::{mpsc, Once};
use std::time::{Duration, Instant};

pub const MAC_A: [u8; 6] = [0x02, 0, 0, 0, 0, 0x0a];
pub const MAC_B: [u8; 6] = [0x02, 0, 0, 0, 0, 0x0b];
pub const V4_A: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
pub const V4_B: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);
pub const LL_A: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0xa);
pub const LL_B: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0xb);
pub const G6_A: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0xa);
pub const G6_B: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0xb);

const PREFIX: &str = "tnio-";

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

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
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
    pub fn new(tag: &str) -> Option<Lab> {
        if !is_root() {
            eprintln!("SKIP: network-namespace test `{tag}` needs root (euid != 0)");
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
            // New interfaces inherit "default": no DAD, so addresses are usable at once.
            lab.sysctl(&ns, "net.ipv6.conf.all.accept_dad", "0");
            lab.sysctl(&ns, "net.ipv6.conf.default.accept_dad", "0");
            lab.ip(&ns, &["link", "set", "lo", "up"]);
        }
        lab.ip(
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
            lab.ip(ns, &["link", "set", "eth0", "addrgenmode", "none"]);
            lab.ip(ns, &["link", "set", "eth0", "address", &mac_str(mac)]);
            lab.ip(ns, &["addr", "add", &format!("{v4}/24"), "dev", "eth0"]);
            lab.ip(
                ns,
                &["addr", "add", &format!("{ll}/64"), "dev", "eth0", "nodad"],
            );
            lab.ip(
                ns,
                &["addr", "add", &format!("{g6}/64"), "dev", "eth0", "nodad"],
            );
            lab.ip(ns, &["link", "set", "eth0", "up"]);
        }
        for ns in [lab.a.clone(), lab.b.clone()] {
            lab.wait_for(Duration::from_secs(5), "eth0 carrier", || {
                lab.ip(&ns, &["link", "show", "eth0"]).contains("LOWER_UP")
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
        std::thread::sleep(Duration::from_millis(50));
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

/// Run `f` with the current thread inside network namespace `ns`.
pub fn in_netns<R>(ns: &str, f: impl FnOnce() -> R) -> R {
    let orig = File::open("/proc/thread-self/ns/net").expect("open own netns");
    let target = File::open(format!("/run/netns/{ns}")).expect("open target netns");
    // SAFETY: plain syscall on an fd we own; only this thread changes namespace.
    let rc = unsafe { libc::setns(target.as_raw_fd(), libc::CLONE_NEWNET) };
    assert_eq!(rc, 0, "setns({ns}): {}", std::io::Error::last_os_error());
    let _restore = Restore(orig);
    f()
}

/// Run an async test body on a dedicated thread with its own current-thread runtime, bounded
/// by `limit` (the thread is abandoned if it overruns; the Lab's Drop still cleans up).
pub fn run_bounded<F, Fut>(limit: Duration, f: F)
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = ()>,
{
    let (tx, rx) = mpsc::channel();
    let t = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let res = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            rt.block_on(async {
                tokio::time::timeout(limit, f())
                    .await
                    .expect("test body timed out");
            })
        }));
        let _ = tx.send(res.is_ok());
        if let Err(p) = res {
            std::panic::resume_unwind(p);
        }
    });
    match rx.recv_timeout(limit + Duration::from_secs(10)) {
        Ok(true) => t.join().expect("test thread"),
        Ok(false) => {
            // Propagate the original panic message.
            if let Err(p) = t.join() {
                std::panic::resume_unwind(p);
            }
            panic!("test body failed");
        }
        Err(_) => panic!("test thread did not finish within {limit:?} + 10 s"),
    }
}

/// A receive-only AF_PACKET socket on one interface for one EtherType, with a short receive
/// timeout so reads are bounded. Create it inside the namespace ([`in_netns`]).
pub struct Capture {
    fd: socket2::Socket,
}

impl Capture {
    pub fn open(ifindex: u32, ethertype: u16) -> Capture {
        let proto = i32::from(ethertype.to_be());
        let fd = socket2::Socket::new(
            socket2::Domain::PACKET,
            socket2::Type::RAW,
            Some(socket2::Protocol::from(proto)),
        )
        .expect("AF_PACKET socket");
        // SAFETY: zeroed sockaddr_ll is valid; bind with its size.
        unsafe {
            let mut sll: libc::sockaddr_ll = std::mem::zeroed();
            sll.sll_family = libc::AF_PACKET as u16;
            sll.sll_protocol = ethertype.to_be();
            sll.sll_ifindex = ifindex as i32;
            let rc = libc::bind(
                fd.as_raw_fd(),
                (&sll as *const libc::sockaddr_ll).cast(),
                std::mem::size_of::<libc::sockaddr_ll>() as u32,
            );
            assert_eq!(rc, 0, "bind AF_PACKET: {}", std::io::Error::last_os_error());
        }
        fd.set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        Capture { fd }
    }

    /// First incoming frame for which `pick` holds, within `limit`.
    pub fn find(&self, limit: Duration, mut pick: impl FnMut(&[u8]) -> bool) -> Option<Vec<u8>> {
        let end = Instant::now() + limit;
        let mut buf = [0u8; 2048];
        while Instant::now() < end {
            // SAFETY: buf is writable for its length.
            let n =
                unsafe { libc::recv(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
            if n > 0 && pick(&buf[..n as usize]) {
                return Some(buf[..n as usize].to_vec());
            }
        }
        None
    }
}
