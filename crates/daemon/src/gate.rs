//! Which kind of source woke the event loop.
//!
//! The loop waits on a dozen sources, but on an idle node every wake-up comes from two of
//! them: the timer and the VRRP sockets. Polling all the others (signals, control requests,
//! link events, health, heartbeats, quorum, fence results) on each of those wake-ups touched
//! a dozen cold data structures per advert for nothing, a measurable part of an idle
//! daemon's CPU. The rarely-ready sources are therefore polled with a waker of their own that
//! marks the gate before it wakes the task, and the loop polls them only when it is marked.
//!
//! Every source behind the gate must keep its registered waker after a poll returns Pending
//! and its future is dropped (tokio's mpsc receivers and `Signal` do); a source whose waiter
//! dies with its future, such as `watch::Receiver::changed`, needs a future that outlives
//! the loop iteration ([`Changes`]).

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Wake, Waker};

use tokio::sync::watch;

struct Mark {
    marked: AtomicBool,
    task: Mutex<Option<Waker>>,
}

impl Wake for Mark {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        // Mark first: the task, once woken, must find the mark.
        self.marked.store(true, Ordering::SeqCst);
        let task = self.task.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(w) = task.as_ref() {
            w.wake_by_ref();
        }
    }
}

pub(crate) struct Gate {
    mark: Arc<Mark>,
    waker: Waker,
    /// The task waker last stored in `mark`: the shared copy is only locked when it changes.
    task: Option<Waker>,
}

impl Gate {
    /// Marked: the first wait polls every source, which registers the gate's waker with it.
    pub fn new() -> Self {
        let mark = Arc::new(Mark {
            marked: AtomicBool::new(true),
            task: Mutex::new(None),
        });
        let waker = Waker::from(mark.clone());
        Gate {
            mark,
            waker,
            task: None,
        }
    }

    /// On each poll of the loop's wait: remembers the task to wake, and tells whether a
    /// gated source woke it since the last time (then the mark is cleared and the gated
    /// sources are to be polled with [`waker`](Self::waker)).
    pub fn open(&mut self, task: &Waker) -> bool {
        if !self.task.as_ref().is_some_and(|w| w.will_wake(task)) {
            self.task = Some(task.clone());
            *self
                .mark
                .task
                .lock()
                .unwrap_or_else(PoisonError::into_inner) = Some(task.clone());
        }
        self.mark.marked.swap(false, Ordering::SeqCst)
    }

    /// The waker to poll the gated sources with.
    pub fn waker(&self) -> &Waker {
        &self.waker
    }

    /// A gated source was ready: the ones after it were not polled and the ready one may
    /// hold more, so the next wait polls them all again.
    pub fn again(&self) {
        self.mark.marked.store(true, Ordering::SeqCst);
    }
}

type Wait<T> = Pin<Box<dyn Future<Output = (watch::Receiver<T>, bool)> + Send>>;

/// `watch::Receiver::changed` as a poll that keeps its waiter between polls: it waits on a
/// clone of the receiver inside a future that lives until the value changes. Ready(true) on
/// a change (the caller reads the value from its own receiver; a change that comes in between
/// only costs one more wake-up), Ready(false) once the sender is gone.
pub(crate) struct Changes<T> {
    wait: Wait<T>,
}

impl<T: Send + Sync + 'static> Changes<T> {
    pub fn new(rx: watch::Receiver<T>) -> Self {
        Changes {
            wait: Self::wait(rx),
        }
    }

    fn wait(mut rx: watch::Receiver<T>) -> Wait<T> {
        Box::pin(async move {
            let ok = rx.changed().await.is_ok();
            (rx, ok)
        })
    }

    pub fn poll_changed(&mut self, cx: &mut Context<'_>) -> Poll<bool> {
        match self.wait.as_mut().poll(cx) {
            Poll::Ready((rx, ok)) => {
                self.wait = Self::wait(rx);
                Poll::Ready(ok)
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::future::poll_fn;
    use std::time::Duration;
    use tokio::sync::mpsc;

    /// A message sent while the loop was busy elsewhere (the gated source not polled) still
    /// wakes the loop and is seen.
    #[tokio::test(flavor = "current_thread")]
    async fn a_gated_source_wakes_the_loop_and_is_polled() {
        let mut gate = Gate::new();
        let (tx, mut rx) = mpsc::channel::<u32>(4);
        let sender = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(20)).await;
            tx.send(7).await.unwrap();
            tx
        });
        let mut polls_gated = 0;
        let got = tokio::time::timeout(
            Duration::from_secs(5),
            poll_fn(|cx| {
                if gate.open(cx.waker()) {
                    polls_gated += 1;
                    if let Poll::Ready(v) = rx.poll_recv(&mut Context::from_waker(gate.waker())) {
                        gate.again();
                        return Poll::Ready(v);
                    }
                }
                Poll::Pending
            }),
        )
        .await
        .expect("woken by the gated source");
        assert_eq!(got, Some(7));
        // Once at the start (registers the waker), once after the send.
        assert_eq!(polls_gated, 2);
        drop(sender.await.unwrap());
    }

    /// Wake-ups that do not come through the gate leave it closed.
    #[tokio::test(flavor = "current_thread")]
    async fn other_wakeups_leave_the_gate_closed() {
        let mut gate = Gate::new();
        let (_tx, mut rx) = mpsc::channel::<u32>(4);
        let mut opened = 0;
        let mut polls = 0;
        poll_fn(|cx| {
            polls += 1;
            if gate.open(cx.waker()) {
                opened += 1;
                assert!(rx
                    .poll_recv(&mut Context::from_waker(gate.waker()))
                    .is_pending());
            }
            if polls < 5 {
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            Poll::Ready(())
        })
        .await;
        assert_eq!((polls, opened), (5, 1));
    }

    /// A change made between two waits is seen, and the waiter survives across polls.
    #[tokio::test(flavor = "current_thread")]
    async fn changes_keeps_its_waiter() {
        let (tx, rx) = watch::channel(0u32);
        let mut ch = Changes::new(rx.clone());
        assert!(ch
            .poll_changed(&mut Context::from_waker(Waker::noop()))
            .is_pending());
        tx.send(1).unwrap();
        let r = tokio::time::timeout(Duration::from_secs(5), poll_fn(|cx| ch.poll_changed(cx)))
            .await
            .expect("changed");
        assert!(r);
        assert_eq!(*rx.borrow(), 1);
        let setter = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(20)).await;
            tx.send(2).unwrap();
            tx
        });
        let r = tokio::time::timeout(Duration::from_secs(5), poll_fn(|cx| ch.poll_changed(cx)))
            .await
            .expect("woken by the second change");
        assert!(r);
        drop(setter.await.unwrap());
        let r = tokio::time::timeout(Duration::from_secs(5), poll_fn(|cx| ch.poll_changed(cx)))
            .await
            .expect("sender gone");
        assert!(!r);
    }
}
