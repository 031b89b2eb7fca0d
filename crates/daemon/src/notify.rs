//! Notify scripts: keepalived-compatible `notify` calls, one at a time, in transition order.
//!
//! A script runs as `SCRIPT INSTANCE NAME STATE PRIORITY` (keepalived's `notify` arguments),
//! in its own process group, with stdin, stdout and stderr on /dev/null. Scripts run one
//! after the other on their own task, so the event loop never waits for them and a slow
//! script cannot reorder transitions; at its timeout the whole process group is killed.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

struct Job {
    script: PathBuf,
    args: [String; 4],
    timeout: Duration,
}

pub(crate) struct Notifier {
    tx: Option<mpsc::UnboundedSender<Job>>,
    task: JoinHandle<()>,
}

impl Notifier {
    pub fn spawn() -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        Notifier {
            tx: Some(tx),
            task: tokio::spawn(run(rx)),
        }
    }

    /// Queue `SCRIPT KIND NAME STATE PRIORITY`.
    pub fn notify(
        &self,
        script: PathBuf,
        kind: &str,
        name: &str,
        state: &str,
        priority: u8,
        timeout: Duration,
    ) {
        if let Some(tx) = &self.tx {
            let _ = tx.send(Job {
                script,
                args: [
                    kind.to_string(),
                    name.to_string(),
                    state.to_string(),
                    priority.to_string(),
                ],
                timeout,
            });
        }
    }

    /// Let the queued scripts finish (each is bounded by its own timeout), at most `limit`.
    pub async fn finish(mut self, limit: Duration) {
        self.tx = None;
        if tokio::time::timeout(limit, &mut self.task).await.is_err() {
            tracing::warn!("notify scripts still running at exit; abandoned");
            self.task.abort();
        }
    }
}

async fn run(mut rx: mpsc::UnboundedReceiver<Job>) {
    while let Some(job) = rx.recv().await {
        run_one(job).await;
    }
}

async fn run_one(job: Job) {
    let mut cmd = tokio::process::Command::new(&job.script);
    cmd.args(&job.args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .kill_on_drop(true);
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(script = %job.script.display(), error = %e, "notify script could not start");
            return;
        }
    };
    let pid = child.id();
    match tokio::time::timeout(job.timeout, child.wait()).await {
        Ok(Ok(status)) if status.success() => {
            tracing::debug!(script = %job.script.display(), args = ?job.args, "notify script done");
        }
        Ok(Ok(status)) => {
            tracing::warn!(script = %job.script.display(), args = ?job.args, %status, "notify script failed");
        }
        Ok(Err(e)) => {
            tracing::warn!(script = %job.script.display(), error = %e, "notify script: wait failed");
        }
        Err(_) => {
            if let Some(pid) = pid {
                // The script leads its own group: take its children down with it.
                let _ = nix::sys::signal::killpg(
                    nix::unistd::Pid::from_raw(pid as i32),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
            let _ = child.wait().await;
            tracing::warn!(script = %job.script.display(), args = ?job.args, timeout = ?job.timeout, "notify script killed at its timeout");
        }
    }
}
