//! Notify scripts: keepalived-compatible `notify` calls, one at a time, in transition order.
//!
//! A script runs as `SCRIPT INSTANCE NAME STATE PRIORITY` (keepalived's `notify` arguments),
//! in its own process group, with stdin, stdout and stderr on /dev/null. Scripts run one
//! after the other on their own task, so the event loop never waits for them and a slow
//! script cannot reorder transitions; at its timeout the whole process group is killed.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use tandem_proc::ProcessGroup;
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
        .stderr(Stdio::null());
    // If this task is aborted mid-script (daemon exit), dropping `group` kills the script's
    // whole group and reaps it.
    let mut group = match ProcessGroup::spawn(&mut cmd) {
        Ok(g) => g,
        Err(e) => {
            tracing::warn!(script = %job.script.display(), error = %e, "notify script could not start");
            return;
        }
    };
    match tokio::time::timeout(job.timeout, group.wait()).await {
        Ok(result) => {
            // A notify script may start services that must outlive it (as with keepalived):
            // only a script that overran its timeout takes its group down.
            group.release();
            match result {
                Ok(status) if status.success() => {
                    tracing::debug!(script = %job.script.display(), args = ?job.args, "notify script done");
                }
                Ok(status) => {
                    tracing::warn!(script = %job.script.display(), args = ?job.args, %status, "notify script failed");
                }
                Err(e) => {
                    tracing::warn!(script = %job.script.display(), error = %e, "notify script: wait failed");
                }
            }
        }
        Err(_) => {
            // The script leads its own group: take its children down with it, and reap it
            // before the next script runs, so scripts never overlap.
            group.kill();
            let _ = group.wait().await;
            tracing::warn!(script = %job.script.display(), args = ?job.args, timeout = ?job.timeout, "notify script killed at its timeout");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A script over its timeout is stopped with everything it started; one that exits in
    /// time may leave something running (keepalived's behaviour).
    #[tokio::test]
    async fn timeout_kills_the_group_but_exit_does_not() {
        let dir = std::env::temp_dir().join(format!("tandem-notify-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let job = |script: String, name: &str| Job {
            script: "sh".into(),
            args: [
                "-c".into(),
                format!("(sleep 1; touch {}/{name}) & {script}", dir.display()),
                "x".into(),
                "y".into(),
            ],
            timeout: Duration::from_millis(200),
        };
        let started = std::time::Instant::now();
        run_one(job("sleep 5".into(), "killed")).await;
        assert!(started.elapsed() < Duration::from_secs(2));
        run_one(job("exit 0".into(), "kept")).await;
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert!(
            !dir.join("killed").exists(),
            "a timed-out script's child survived"
        );
        assert!(
            dir.join("kept").exists(),
            "a finished script's child was killed"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
