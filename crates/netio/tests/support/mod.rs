//! Support for the root-only integration tests: the shared two-namespace lab
//! (`tandem-netlab`), a bounded async runner and an AF_PACKET capture.

#![allow(dead_code)]

use std::future::Future;
use std::os::fd::AsRawFd;
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub use tandem_netlab::*;

/// Namespace prefix of these tests.
pub const PREFIX: &str = "tnio-";

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
