//! The tokio shell: one task per check runs its probe on the core's schedule, feeds the
//! result to the core, and reports every status change on a channel. The daemon's loop only
//! ever receives events and reads snapshots; nothing here waits on it except a full event
//! channel, which pauses only the check that has an event to deliver.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::probe::Probe;
use crate::spec::{CheckSpec, SpecError};
use crate::state::{CheckState, Outcome, Status, Transition};

/// A status change of one check.
#[derive(Debug, Clone)]
pub struct HealthEvent {
    /// The check's name (`CheckSpec::name`).
    pub check: String,
    /// The check's position in the `specs` given to [`HealthRunner::spawn`].
    pub index: usize,
    pub transition: Transition,
    /// The probe result that completed the streak.
    pub outcome: Outcome,
    pub at: Instant,
}

/// One check's state for `tandem status` (`--json` prints it as is).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckStatus {
    pub name: String,
    /// "tcp", "http" or "script".
    pub kind: String,
    /// `host:port`, the URL, or the command line.
    pub target: String,
    pub status: Status,
    pub rise: u32,
    pub fall: u32,
    pub interval_ms: u64,
    pub timeout_ms: u64,
    pub consecutive_ok: u32,
    pub consecutive_fail: u32,
    pub total_ok: u64,
    pub total_fail: u64,
    /// Result of the last finished probe; `None` before the first one.
    pub last_ok: Option<bool>,
    pub last_message: Option<String>,
    pub last_latency_ms: Option<u64>,
    /// Milliseconds since the last probe finished.
    pub last_run_ago_ms: Option<u64>,
    /// Milliseconds in the current status (since start while `unknown`).
    pub in_state_ms: u64,
    /// A probe is running now.
    pub running: bool,
}

struct Slot {
    spec: CheckSpec,
    state: Mutex<CheckState>,
}

impl Slot {
    fn state(&self) -> MutexGuard<'_, CheckState> {
        // A panic cannot happen while the lock is held (plain field updates), but never let a
        // poisoned lock take status reporting down with it.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn snapshot(&self, now: Instant) -> CheckStatus {
        let st = self.state();
        let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        CheckStatus {
            name: self.spec.name.clone(),
            kind: self.spec.kind.name().to_string(),
            target: self.spec.kind.target(),
            status: st.status(),
            rise: st.rise(),
            fall: st.fall(),
            interval_ms: ms(self.spec.interval),
            timeout_ms: ms(self.spec.timeout),
            consecutive_ok: st.consecutive_ok(),
            consecutive_fail: st.consecutive_fail(),
            total_ok: st.total_ok(),
            total_fail: st.total_fail(),
            last_ok: st.last().map(|o| o.ok),
            last_message: st.last().map(|o| o.message.clone()),
            last_latency_ms: st.last_latency().map(ms),
            last_run_ago_ms: st
                .last_finished()
                .map(|t| ms(now.saturating_duration_since(t))),
            in_state_ms: ms(now.saturating_duration_since(st.status_since())),
            running: st.running_since().is_some(),
        }
    }
}

/// A cheap, cloneable read-only view of every check's state (for the control socket).
#[derive(Clone)]
pub struct HealthView {
    slots: Arc<[Slot]>,
}

impl HealthView {
    /// Every check, in the order of the specs.
    pub fn snapshot(&self) -> Vec<CheckStatus> {
        let now = Instant::now();
        self.slots.iter().map(|s| s.snapshot(now)).collect()
    }

    /// One check by name.
    pub fn get(&self, name: &str) -> Option<CheckStatus> {
        let now = Instant::now();
        self.slots
            .iter()
            .find(|s| s.spec.name == name)
            .map(|s| s.snapshot(now))
    }

    /// The current status of one check by name.
    pub fn status(&self, name: &str) -> Option<Status> {
        self.slots
            .iter()
            .find(|s| s.spec.name == name)
            .map(|s| s.state().status())
    }
}

/// Owns the check tasks. Dropping it (or [`HealthHandle::shutdown`]) stops every check at
/// once; a script being run then has its process group killed.
pub struct HealthHandle {
    view: HealthView,
    tasks: Vec<JoinHandle<()>>,
}

impl HealthHandle {
    pub fn view(&self) -> HealthView {
        self.view.clone()
    }

    /// Every check, in the order of the specs.
    pub fn snapshot(&self) -> Vec<CheckStatus> {
        self.view.snapshot()
    }

    pub fn get(&self, name: &str) -> Option<CheckStatus> {
        self.view.get(name)
    }

    pub fn status(&self, name: &str) -> Option<Status> {
        self.view.status(name)
    }

    /// Stops every check and waits until their tasks are gone (probes cancelled, script
    /// process groups killed).
    pub async fn shutdown(mut self) {
        let tasks = std::mem::take(&mut self.tasks);
        for task in &tasks {
            task.abort();
        }
        for task in tasks {
            let _ = task.await;
        }
    }
}

impl Drop for HealthHandle {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// Starts the checks.
pub struct HealthRunner;

impl HealthRunner {
    /// Validates every spec (and refuses duplicate names), then starts one task per check;
    /// each runs its first probe at once. Every status change, including the first verdict
    /// out of `Unknown`, arrives on the returned channel. Must be called within a tokio
    /// runtime with time, I/O and signal drivers enabled (scripts need SIGCHLD).
    ///
    /// If the receiver is dropped the checks go on running (snapshots stay current).
    pub fn spawn(
        specs: Vec<CheckSpec>,
    ) -> Result<(HealthHandle, mpsc::Receiver<HealthEvent>), SpecError> {
        let mut names = HashSet::new();
        let mut probes = Vec::with_capacity(specs.len());
        for spec in &specs {
            if !names.insert(spec.name.as_str()) {
                return Err(SpecError::DuplicateName(spec.name.clone()));
            }
            probes.push(Probe::new(spec)?);
        }
        let now = Instant::now();
        let slots: Arc<[Slot]> = specs
            .into_iter()
            .map(|spec| Slot {
                state: Mutex::new(CheckState::new(spec.rise, spec.fall, spec.interval, now)),
                spec,
            })
            .collect();
        let (tx, rx) = mpsc::channel(16usize.max(4 * slots.len()));
        let tasks = probes
            .into_iter()
            .enumerate()
            .map(|(index, probe)| tokio::spawn(run_check(slots.clone(), index, probe, tx.clone())))
            .collect();
        Ok((
            HealthHandle {
                view: HealthView { slots },
                tasks,
            },
            rx,
        ))
    }
}

async fn run_check(slots: Arc<[Slot]>, index: usize, probe: Probe, tx: mpsc::Sender<HealthEvent>) {
    let slot = &slots[index];
    let name = slot.spec.name.as_str();
    let timeout = slot.spec.timeout;
    let mut receiver_gone = false;
    tracing::debug!(check = name, kind = slot.spec.kind.name(), target = %slot.spec.kind.target(), "health check started");
    loop {
        let due = slot.state().poll_timeout();
        if let Some(due) = due {
            tokio::time::sleep_until(tokio::time::Instant::from_std(due)).await;
        }
        slot.state().start_probe(Instant::now());
        let outcome = probe.run(timeout).await;
        let now = Instant::now();
        tracing::trace!(check = name, ok = outcome.ok, latency = ?outcome.latency, message = %outcome.message, "probe");
        let transition = slot.state().record(now, outcome.clone());
        let Some(transition) = transition else {
            continue;
        };
        match transition.to {
            Status::Down => {
                tracing::warn!(check = name, from = %transition.from, to = %transition.to, message = %outcome.message, "health check is down")
            }
            _ => {
                tracing::info!(check = name, from = %transition.from, to = %transition.to, message = %outcome.message, "health check is up")
            }
        }
        if receiver_gone {
            continue;
        }
        let event = HealthEvent {
            check: name.to_string(),
            index,
            transition,
            outcome,
            at: now,
        };
        if tx.send(event).await.is_err() {
            tracing::debug!(check = name, "health event receiver dropped; checks go on");
            receiver_gone = true;
        }
    }
}
