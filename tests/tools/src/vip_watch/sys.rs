//! Thin libc wrappers: the monotonic clock, absolute sleeps, the SIGTERM/SIGINT stop flag, and
//! running a closure with the calling thread inside another network namespace.

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

pub fn check(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

pub fn setsockopt<T>(
    fd: libc::c_int,
    level: libc::c_int,
    name: libc::c_int,
    val: &T,
) -> io::Result<()> {
    // SAFETY: `val` points to a live T of the length we pass.
    check(unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            (val as *const T).cast(),
            std::mem::size_of::<T>() as libc::socklen_t,
        )
    })
    .map(|_| ())
}

/// CLOCK_MONOTONIC in nanoseconds.
pub fn monotonic_ns() -> i64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: ts is a valid out-pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec * 1_000_000_000 + ts.tv_nsec
}

pub fn timespec(ns: i64) -> libc::timespec {
    let ns = ns.max(0);
    libc::timespec {
        tv_sec: (ns / 1_000_000_000) as libc::time_t,
        tv_nsec: (ns % 1_000_000_000) as _,
    }
}

/// Sleep until CLOCK_MONOTONIC reaches `deadline_ns` (absolute, so lateness never adds up).
/// A signal ends the sleep early; the caller checks its stop flag.
pub fn sleep_until_monotonic(deadline_ns: i64) {
    let ts = timespec(deadline_ns);
    // SAFETY: ts is valid; the remainder pointer may be null with TIMER_ABSTIME.
    unsafe {
        libc::clock_nanosleep(
            libc::CLOCK_MONOTONIC,
            libc::TIMER_ABSTIME,
            &ts,
            std::ptr::null_mut(),
        )
    };
}

pub static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    STOP.store(true, Ordering::SeqCst);
}

/// SIGTERM and SIGINT set the stop flag instead of killing the process, so that the watcher
/// still writes its report.
pub fn install_stop_handler() -> io::Result<()> {
    let handler: extern "C" fn(libc::c_int) = on_signal;
    for sig in [libc::SIGTERM, libc::SIGINT] {
        // SAFETY: sigaction is plain old data; the handler only stores to an atomic, which is
        // async-signal-safe.
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = handler as libc::sighandler_t;
            libc::sigemptyset(&mut sa.sa_mask);
            check(libc::sigaction(sig, &sa, std::ptr::null_mut()))?;
        }
    }
    Ok(())
}

pub fn stop_requested() -> bool {
    STOP.load(Ordering::SeqCst)
}

/// Where a namespace argument lives: a bare name is one of `ip netns`'s
/// (/var/run/netns/NAME); anything with a slash is a path (e.g. /proc/PID/ns/net).
pub fn netns_path(arg: &str) -> PathBuf {
    if arg.contains('/') {
        PathBuf::from(arg)
    } else {
        Path::new("/var/run/netns").join(arg)
    }
}

pub fn open_netns(arg: &str) -> io::Result<File> {
    let p = netns_path(arg);
    File::open(&p).map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", p.display())))
}

fn setns(f: &File) -> io::Result<()> {
    // SAFETY: plain setns(2) on a descriptor we hold open.
    check(unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) }).map(|_| ())
}

/// Run `f` with the calling thread in network namespace `ns`, then move the thread back.
/// Sockets created by `f` stay bound to `ns` for their whole life. If the thread cannot be
/// moved back, the process exits (code 2): everything it did next would happen in the wrong
/// namespace.
pub fn in_netns<T>(ns: &File, f: impl FnOnce() -> io::Result<T>) -> io::Result<T> {
    let orig = File::open("/proc/thread-self/ns/net")?;
    setns(ns)?;
    let r = f();
    if let Err(e) = setns(&orig) {
        eprintln!("vip-watch: cannot return to the original network namespace: {e}");
        std::process::exit(2);
    }
    r
}

pub fn mac_str(m: &[u8; 6]) -> String {
    m.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}
