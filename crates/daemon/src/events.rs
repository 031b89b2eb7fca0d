//! The event stream behind `tandem events [--follow]`: one JSON object per line for every
//! transition, check verdict, link change and tracked priority change, with the last few
//! hundred kept for a client that connects later.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use tokio::sync::broadcast;

const BACKLOG: usize = 256;

#[derive(Clone)]
pub(crate) struct EventLog {
    inner: Arc<Inner>,
}

struct Inner {
    tx: broadcast::Sender<Arc<str>>,
    backlog: Mutex<VecDeque<Arc<str>>>,
}

impl EventLog {
    pub fn new() -> Self {
        let (tx, _) = broadcast::channel(BACKLOG);
        EventLog {
            inner: Arc::new(Inner {
                tx,
                backlog: Mutex::new(VecDeque::with_capacity(BACKLOG)),
            }),
        }
    }

    /// Publish one event; `ts_ms` (wall clock, for people reading the stream) is added here.
    pub fn emit(&self, mut event: serde_json::Value) {
        let ts = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        if let serde_json::Value::Object(m) = &mut event {
            m.insert("ts_ms".into(), ts.into());
        }
        let line: Arc<str> = event.to_string().into();
        {
            let mut b = self.inner.backlog.lock().unwrap_or_else(|p| p.into_inner());
            if b.len() == BACKLOG {
                b.pop_front();
            }
            b.push_back(line.clone());
        }
        let _ = self.inner.tx.send(line);
    }

    /// The kept events and a subscription to the next ones, without a gap between them.
    pub fn subscribe(&self) -> (Vec<Arc<str>>, broadcast::Receiver<Arc<str>>) {
        let b = self.inner.backlog.lock().unwrap_or_else(|p| p.into_inner());
        let rx = self.inner.tx.subscribe();
        (b.iter().cloned().collect(), rx)
    }
}
