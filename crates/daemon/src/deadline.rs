//! The event loop's wake-up: one CLOCK_MONOTONIC timerfd armed for the time left until the
//! next deadline.
//!
//! Why not `tokio::time::sleep_until`: tokio's timer wheel rounds every deadline up to the
//! next whole millisecond and files far deadlines in coarse slots that cost extra wake-ups;
//! measured here, adverts went out 1–1.5 ms late and an idle master woke about three times
//! per advert. A timerfd fires at the deadline to the microsecond and wakes the loop exactly
//! once.
//!
//! Why relative rather than TFD_TIMER_ABSTIME: the time left is computed from the same
//! `Instant::now()` the core's deadlines come from, so the daemon's whole sense of time is
//! the process's clock. The lab's clock-drift fault (`scripts/lab clock`, libfaketime) runs
//! that clock fast or slow; libfaketime scales relative timers but mistranslates absolute
//! ones (libfaketime 0.9.10 at x0.5, x0.95 and x1.05: an absolute timer 200 ms ahead had not
//! fired 3 s later). The cost is the few microseconds
//! between reading the clock and arming, added to the wait only if the thread is preempted
//! right there.

use std::io;
use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use nix::sys::time::TimeSpec;
use nix::sys::timerfd::{ClockId, Expiration, TimerFd, TimerFlags, TimerSetTimeFlags};
use tokio::io::unix::AsyncFd;

struct Fd(TimerFd);

impl AsRawFd for Fd {
    fn as_raw_fd(&self) -> RawFd {
        self.0.as_fd().as_raw_fd()
    }
}

pub(crate) struct Deadline {
    fd: AsyncFd<Fd>,
    armed: Option<Instant>,
}

impl Deadline {
    pub fn new() -> io::Result<Self> {
        let t = TimerFd::new(
            ClockId::CLOCK_MONOTONIC,
            TimerFlags::TFD_NONBLOCK | TimerFlags::TFD_CLOEXEC,
        )
        .map_err(io::Error::from)?;
        // SAFETY: `Fd` owns the timerfd and keeps it open until the AsyncFd that owns `Fd`
        // is dropped; as_raw_fd always returns that same descriptor.
        let fd = unsafe { AsyncFd::register(Fd(t)) }.map_err(io::Error::from)?;
        Ok(Deadline { fd, armed: None })
    }

    /// Fire at `at` (at once if it has passed). Re-arming to the same instant is free.
    pub fn arm(&mut self, at: Instant) -> io::Result<()> {
        if self.armed == Some(at) {
            return Ok(());
        }
        // An all-zero expiration would disarm the timer instead of firing it.
        let ahead = at
            .saturating_duration_since(Instant::now())
            .max(Duration::from_nanos(1));
        self.fd
            .get_ref()
            .0
            .set(
                Expiration::OneShot(TimeSpec::from_duration(ahead)),
                TimerSetTimeFlags::empty(),
            )
            .map_err(io::Error::from)?;
        self.armed = Some(at);
        Ok(())
    }

    /// Ready once the armed deadline has passed. Polled straight on the descriptor's
    /// readiness (no per-wait future, no waiter list): the event loop polls it on every
    /// wake-up.
    pub fn poll_fired(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        loop {
            let mut guard = match self.fd.poll_read_ready(cx) {
                Poll::Ready(Ok(g)) => g,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            };
            match guard.try_io(|fd| fd.get_ref().0.wait().map_err(io::Error::from)) {
                Ok(r) => {
                    // One read consumes every expiration: say so now rather than learn it
                    // from an EAGAIN (and an extra epoll round) on the next wait.
                    guard.clear_ready();
                    self.armed = None;
                    return Poll::Ready(r);
                }
                Err(_would_block) => continue,
            }
        }
    }

    /// Wait until the armed deadline has passed.
    #[cfg(test)]
    pub async fn fired(&mut self) -> io::Result<()> {
        std::future::poll_fn(|cx| self.poll_fired(cx)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "current_thread")]
    async fn fires_at_the_deadline_not_before() {
        let mut d = Deadline::new().unwrap();
        for ms in [0u64, 1, 7, 30] {
            let at = Instant::now() + Duration::from_millis(ms);
            d.arm(at).unwrap();
            tokio::time::timeout(Duration::from_secs(5), d.fired())
                .await
                .expect("timer fired")
                .unwrap();
            assert!(Instant::now() >= at, "fired early for {ms} ms");
        }
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_past_deadline_fires_at_once() {
        let mut d = Deadline::new().unwrap();
        let at = Instant::now() - Duration::from_millis(50);
        d.arm(at).unwrap();
        tokio::time::timeout(Duration::from_secs(1), d.fired())
            .await
            .expect("fired")
            .unwrap();
    }
}
