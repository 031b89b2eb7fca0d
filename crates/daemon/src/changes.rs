//! `watch::Receiver::changed` as a poll whose waiter outlives the poll.
//!
//! The daemon's runtime thread polls all the sources it forwards in one `poll_fn`, a fresh
//! future on every wait. `changed()` registers its waiter inside its own future, which would
//! die with each poll and miss the change; [`Changes`] keeps that future between polls.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::sync::watch;

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
    use std::task::Waker;
    use std::time::Duration;

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
