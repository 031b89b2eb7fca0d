//! The event loop's wake-up: one CLOCK_MONOTONIC timerfd armed at an absolute deadline.
//!
//! Why not `tokio::time::sleep_until`: tokio's timer wheel rounds every deadline up to the
//! next whole millisecond and files far deadlines in coarse slots that cost extra wake-ups;
//! measured here, adverts went out 1–1.5 ms late and an idle master woke about three times
//! per advert. A timerfd with TFD_TIMER_ABSTIME fires at the deadline to the microsecond
//! and wakes the loop exactly once. `Instant` is CLOCK_MONOTONIC on Linux, so deadlines
//! convert by the offset between the two read back to back.

use std::io;
use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::time::{Duration, Instant};

use nix::sys::time::TimeSpec;
use nix::sys::timerfd::{ClockId, Expiration, TimerFd, TimerFlags, TimerSetTimeFlags};
use nix::time::{clock_gettime, ClockId as Clock};
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
        let now = Instant::now();
        let mono = clock_gettime(Clock::CLOCK_MONOTONIC).map_err(io::Error::from)?;
        let ahead = at.saturating_duration_since(now);
        let target = Duration::from(mono) + ahead;
        // An all-zero expiration would disarm the timer instead of firing it.
        let target = target.max(Duration::from_nanos(1));
        self.fd
            .get_ref()
            .0
            .set(
                Expiration::OneShot(TimeSpec::from_duration(target)),
                TimerSetTimeFlags::TFD_TIMER_ABSTIME,
            )
            .map_err(io::Error::from)?;
        self.armed = Some(at);
        Ok(())
    }

    /// Wait until the armed deadline has passed.
    pub async fn fired(&mut self) -> io::Result<()> {
        loop {
            let mut guard = self.fd.readable().await?;
            match guard.try_io(|fd| fd.get_ref().0.wait().map_err(io::Error::from)) {
                Ok(r) => {
                    // One read consumes every expiration: say so now rather than learn it
                    // from an EAGAIN (and an extra epoll round) on the next wait.
                    guard.clear_ready();
                    self.armed = None;
                    return r;
                }
                Err(_would_block) => continue,
            }
        }
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
