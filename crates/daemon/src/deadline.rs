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
use std::os::fd::{AsFd, BorrowedFd};
use std::time::{Duration, Instant};

use nix::sys::time::TimeSpec;
use nix::sys::timerfd::{ClockId, Expiration, TimerFd, TimerFlags, TimerSetTimeFlags};

/// Non-blocking, and registered with no reactor: the VRRP loop waits on it in its own epoll
/// set.
pub(crate) struct Deadline {
    fd: TimerFd,
    armed: Option<Instant>,
}

impl AsFd for Deadline {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl Deadline {
    pub fn new() -> io::Result<Self> {
        let fd = TimerFd::new(
            ClockId::CLOCK_MONOTONIC,
            TimerFlags::TFD_NONBLOCK | TimerFlags::TFD_CLOEXEC,
        )
        .map_err(io::Error::from)?;
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
            .set(
                Expiration::OneShot(TimeSpec::from_duration(ahead)),
                TimerSetTimeFlags::empty(),
            )
            .map_err(io::Error::from)?;
        self.armed = Some(at);
        Ok(())
    }

    /// The descriptor was readable: the armed deadline has passed.
    ///
    /// The expiration count is not read. Setting the timer again (the loop always arms
    /// it before it waits, and [`arm`](Self::arm) always sets it once this has been called)
    /// clears the count and with it the readability, so a read here would be one more
    /// system call per advert for nothing.
    pub fn fired(&mut self) {
        self.armed = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

    fn readable(d: &Deadline, wait_ms: u16) -> bool {
        let mut fds = [PollFd::new(d.as_fd(), PollFlags::POLLIN)];
        poll(&mut fds, PollTimeout::from(wait_ms)).unwrap() == 1
    }

    #[test]
    fn fires_at_the_deadline_not_before() {
        let mut d = Deadline::new().unwrap();
        for ms in [0u64, 1, 7, 30] {
            let at = Instant::now() + Duration::from_millis(ms);
            d.arm(at).unwrap();
            assert!(readable(&d, 5000), "fired for {ms} ms");
            assert!(Instant::now() >= at, "fired early for {ms} ms");
            d.fired();
        }
    }

    #[test]
    fn a_past_deadline_fires_at_once() {
        let mut d = Deadline::new().unwrap();
        d.arm(Instant::now() - Duration::from_millis(50)).unwrap();
        assert!(readable(&d, 1000));
    }

    /// What `fired` relies on: arming again clears an expiration nobody read, so the loop's
    /// level-triggered wait does not spin on it.
    #[test]
    fn arming_again_clears_an_unread_expiration() {
        let mut d = Deadline::new().unwrap();
        d.arm(Instant::now()).unwrap();
        assert!(readable(&d, 1000));
        d.fired();
        d.arm(Instant::now() + Duration::from_secs(60)).unwrap();
        assert!(!readable(&d, 50), "still readable after re-arming");
    }
}
