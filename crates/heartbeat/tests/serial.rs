//! Serial channel end to end over two pseudo-terminals joined by a relay (what
//! `socat pty,raw,echo=0 pty,raw,echo=0` does, done here in threads so the test needs no
//! socat): the two nodes come up, garbage injected into the middle of the stream costs at
//! most the frame it hits, and cutting the line takes the peer down.

mod support;

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use support::*;
use tandem_heartbeat::{ChannelSpec, DownReason, EventKind, Heartbeat, State};

/// One pty: the master side stays with the relay, the slave path goes to a node.
struct Pty {
    master: File,
    /// Kept open so the master never sees a hang-up between node restarts.
    _slave: OwnedFd,
    path: PathBuf,
}

fn pty() -> Pty {
    let r = nix::pty::openpty(None, None).expect("openpty");
    let path = nix::unistd::ttyname(&r.slave).expect("ttyname");
    Pty {
        master: File::from(r.master),
        _slave: r.slave,
        path,
    }
}

#[derive(Default)]
struct RelayControl {
    /// Drop every byte (the cable is cut).
    cut: AtomicBool,
    /// Bytes to splice into the middle of the next chunk going one way.
    garbage: Mutex<Option<Vec<u8>>>,
    /// Chunks relayed, for the test's own bookkeeping.
    chunks: AtomicU64,
    stop: AtomicBool,
}

/// Copy from one master to the other until stopped (bounded: the test ends it).
fn relay(mut from: File, mut to: File, ctl: Arc<RelayControl>) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut buf = [0u8; 512];
        while !ctl.stop.load(Ordering::Relaxed) {
            let n = match from.read(&mut buf) {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            if ctl.cut.load(Ordering::Relaxed) {
                continue;
            }
            let chunk = &buf[..n];
            let garbage = ctl.garbage.lock().unwrap().take();
            let ok = match garbage {
                Some(g) => {
                    let mid = n / 2;
                    to.write_all(&chunk[..mid])
                        .and_then(|_| to.write_all(&g))
                        .and_then(|_| to.write_all(&chunk[mid..]))
                }
                None => to.write_all(chunk),
            };
            if ok.is_err() {
                return;
            }
            ctl.chunks.fetch_add(1, Ordering::Relaxed);
        }
    })
}

fn spec(path: &Path) -> ChannelSpec {
    ChannelSpec::serial(path, 115_200).with_timing(ms(50), ms(300))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serial_pair_with_garbage_and_a_cut() {
    let (pa, pb) = (pty(), pty());
    let a_to_b = Arc::new(RelayControl::default());
    let b_to_a = Arc::new(RelayControl::default());
    let t1 = relay(
        pa.master.try_clone().unwrap(),
        pb.master.try_clone().unwrap(),
        a_to_b.clone(),
    );
    let t2 = relay(
        pb.master.try_clone().unwrap(),
        pa.master.try_clone().unwrap(),
        b_to_a.clone(),
    );

    let names = ["a", "b"];
    let mut a = Heartbeat::start(config(&names, "a", vec![spec(&pa.path)])).unwrap();
    let mut b = Heartbeat::start(config(&names, "b", vec![spec(&pb.path)])).unwrap();
    wait_event(&mut a, ms(3000), "a sees b up", |k| is_peer_up(k, "b")).await;
    wait_event(&mut b, ms(3000), "b sees a up", |k| is_peer_up(k, "a")).await;

    // Garbage (zeros included) spliced into the middle of a frame, five times.
    let before = b.snapshot().await.unwrap();
    for i in 0..5u8 {
        let mut g: Vec<u8> = (0..40u8)
            .map(|x| x.wrapping_mul(37).wrapping_add(i))
            .collect();
        g[7] = 0;
        *a_to_b.garbage.lock().unwrap() = Some(g);
        tokio::time::sleep(ms(120)).await;
    }
    let during = events_for(&mut b, ms(300)).await;
    assert!(during.is_empty(), "garbage made b flap: {during:?}");
    let after = b.snapshot().await.unwrap();
    let t_before = before.channels[0].transport.as_ref().unwrap();
    let t_after = after.channels[0].transport.as_ref().unwrap();
    assert!(
        t_after.framing_errors > t_before.framing_errors,
        "{t_after:?}"
    );
    // Frames kept flowing after the garbage.
    assert!(
        after.peers[0].links[0].frames_received >= before.peers[0].links[0].frames_received + 8
    );
    assert_eq!(after.peers[0].state, State::Up);
    // Whatever got through the CRC by chance would still fail authentication: nothing did.
    assert_eq!(after.channels[0].drops.bad_auth, 0);
    assert_eq!(after.channels[0].drops.malformed, 0);

    // Cut the line: both sides see the peer down after the timeout; reconnect: back up.
    a_to_b.cut.store(true, Ordering::Relaxed);
    b_to_a.cut.store(true, Ordering::Relaxed);
    let seen = wait_event(&mut a, ms(3000), "a sees b down", |k| is_peer_down(k, "b")).await;
    assert!(matches!(
        seen.last().unwrap().kind,
        EventKind::PeerDown {
            reason: DownReason::Timeout,
            ..
        }
    ));
    wait_event(&mut b, ms(3000), "b sees a down", |k| is_peer_down(k, "a")).await;
    a_to_b.cut.store(false, Ordering::Relaxed);
    b_to_a.cut.store(false, Ordering::Relaxed);
    wait_event(&mut a, ms(3000), "a sees b again", |k| is_peer_up(k, "b")).await;
    wait_event(&mut b, ms(3000), "b sees a again", |k| is_peer_up(k, "a")).await;

    // A clean shutdown over the serial line.
    a.shutdown().await;
    let seen = wait_event(&mut b, ms(2000), "b sees a leave", |k| is_peer_down(k, "a")).await;
    assert!(matches!(
        seen.last().unwrap().kind,
        EventKind::PeerDown {
            reason: DownReason::Left,
            ..
        }
    ));
    drop(b);

    // Stop the relay threads: closing the slaves makes the masters' reads fail.
    a_to_b.stop.store(true, Ordering::Relaxed);
    b_to_a.stop.store(true, Ordering::Relaxed);
    drop(pa);
    drop(pb);
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    for t in [t1, t2] {
        while !t.is_finished() && std::time::Instant::now() < deadline {
            std::thread::sleep(ms(10));
        }
        if t.is_finished() {
            t.join().unwrap();
        }
    }
}

#[tokio::test]
async fn unsupported_baud_and_missing_device_are_errors() {
    let names = ["a", "b"];
    let err = Heartbeat::start(config(
        &names,
        "a",
        vec![ChannelSpec::serial("/dev/nonexistent-tty", 115_200)],
    ))
    .unwrap_err();
    assert!(err.to_string().contains("/dev/nonexistent-tty"), "{err}");
    let p = pty();
    let err = Heartbeat::start(config(
        &names,
        "a",
        vec![ChannelSpec::serial(p.path.clone(), 12_345)],
    ))
    .unwrap_err();
    assert!(err.to_string().contains("12345"), "{err}");
}
