//! Running helper programs safely (fence tools and agents, script checks, notify scripts).
//!
//! Every program runs as the leader of its own process group, so whatever it starts can be
//! killed with it. Two promises hold whatever happens to the caller (success, timeout,
//! cancellation of its future, runtime shutdown):
//!
//! - nothing is left behind: the group gets SIGKILL when the caller is done with it (unless
//!   the caller explicitly [releases](ProcessGroup::release) what the leader started), and
//!   the leader is always reaped, so no zombie stays;
//! - the caller's runtime is never blocked: waiting is async, output is read concurrently
//!   (a program never stalls on a full pipe) and only a bounded amount of it is kept.

use std::io;
use std::os::unix::process::ExitStatusExt as _;
use std::process::ExitStatus;
use std::time::{Duration, Instant};

use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWriteExt as _};
use tokio::process::{Child, ChildStderr, ChildStdin, ChildStdout, Command};

/// A program that ran to completion within its timeout.
#[derive(Debug)]
pub struct Finished {
    pub status: ExitStatus,
    /// At most `capture_limit` bytes of stdout (empty if stdout was not piped).
    pub stdout: Vec<u8>,
    /// At most `capture_limit` bytes of stderr (empty if stderr was not piped).
    pub stderr: Vec<u8>,
    pub elapsed: Duration,
}

/// Why [`run`] has no [`Finished`] program to show.
#[derive(Debug)]
pub enum RunError {
    /// The program could not be started.
    Spawn(io::Error),
    /// It (or its output) was not done within the timeout; its group has been killed.
    Timeout(Duration),
    /// Waiting for its exit status failed.
    Wait(io::Error),
}

impl std::fmt::Display for RunError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RunError::Spawn(e) => write!(f, "could not start: {e}"),
            RunError::Timeout(t) => write!(f, "timed out after {t:?}"),
            RunError::Wait(e) => write!(f, "wait failed: {e}"),
        }
    }
}

impl std::error::Error for RunError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            RunError::Spawn(e) | RunError::Wait(e) => Some(e),
            RunError::Timeout(_) => None,
        }
    }
}

/// Runs `cmd` to completion or until `timeout`, keeping at most `capture_limit` bytes of each
/// of stdout and stderr (if the caller piped them; its stdio settings are left as they are).
pub async fn run(
    cmd: Command,
    timeout: Duration,
    capture_limit: usize,
) -> Result<Finished, RunError> {
    run_with_input(cmd, None, timeout, capture_limit).await
}

/// [`run`], writing `input` to the program's stdin (which the caller must have piped) and then
/// closing it.
///
/// Done means: the output pipes reached EOF and the leader exited; then whatever it left in
/// its group is killed. At the timeout (or when this future is dropped) the whole group gets
/// SIGKILL and the leader is reaped in the background, so the timeout is a hard bound.
pub async fn run_with_input(
    mut cmd: Command,
    input: Option<Vec<u8>>,
    timeout: Duration,
    capture_limit: usize,
) -> Result<Finished, RunError> {
    let started = Instant::now();
    let mut group = ProcessGroup::spawn(&mut cmd).map_err(RunError::Spawn)?;
    let (stdin, stdout, stderr) = group.take_pipes();
    let work = async {
        let feed = async {
            if let (Some(mut pipe), Some(bytes)) = (stdin, input) {
                // A program that exits without reading gives EPIPE: not an error of ours.
                let _ = pipe.write_all(&bytes).await;
                let _ = pipe.shutdown().await;
            }
        };
        let mut out = Vec::new();
        let mut err = Vec::new();
        let ((), (), ()) = tokio::join!(
            feed,
            read_capped(stdout, &mut out, capture_limit),
            read_capped(stderr, &mut err, capture_limit)
        );
        let status = group.wait().await;
        (status, out, err)
    };
    match tokio::time::timeout(timeout, work).await {
        Ok((status, stdout, stderr)) => {
            group.kill_remaining();
            Ok(Finished {
                status: status.map_err(RunError::Wait)?,
                stdout,
                stderr,
                elapsed: started.elapsed(),
            })
        }
        // Dropping `group` kills the group and reaps the leader.
        Err(_) => Err(RunError::Timeout(timeout)),
    }
}

/// Keeps the first `limit` bytes of `pipe` in `keep` and reads (discarding) the rest until
/// EOF, so the program never blocks on a full pipe. A read error ends it like EOF: the
/// output is only informative.
pub async fn read_capped<R: AsyncRead + Unpin>(pipe: Option<R>, keep: &mut Vec<u8>, limit: usize) {
    let Some(mut pipe) = pipe else { return };
    let mut buf = [0u8; 4096];
    loop {
        match pipe.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                let take = n.min(limit.saturating_sub(keep.len()));
                keep.extend_from_slice(&buf[..take]);
            }
        }
    }
}

/// "exit 3" / "killed by signal 9".
pub fn describe(status: ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit {code}"),
        (None, Some(signal)) => format!("killed by signal {signal}"),
        (None, None) => status.to_string(),
    }
}

/// A child and its process group (pgid = the child's pid, from `process_group(0)`).
/// Dropping it sends SIGKILL to the group and reaps the child in the background.
pub struct ProcessGroup {
    pgid: Option<Pid>,
    child: Option<Child>,
}

impl ProcessGroup {
    /// Spawns `cmd` as the leader of a new process group. tokio's `kill_on_drop` is turned
    /// off: it would kill only the leader, and this guard kills the whole group instead.
    pub fn spawn(cmd: &mut Command) -> io::Result<ProcessGroup> {
        let child = cmd.process_group(0).kill_on_drop(false).spawn()?;
        Ok(ProcessGroup::new(child))
    }

    /// Takes over a child that was spawned with `process_group(0)`.
    pub fn new(child: Child) -> ProcessGroup {
        let pgid = child
            .id()
            .and_then(|id| i32::try_from(id).ok())
            .map(Pid::from_raw);
        ProcessGroup {
            pgid,
            child: Some(child),
        }
    }

    /// The child's stdin, stdout and stderr, for those that were piped.
    pub fn take_pipes(&mut self) -> (Option<ChildStdin>, Option<ChildStdout>, Option<ChildStderr>) {
        match self.child.as_mut() {
            Some(child) => (child.stdin.take(), child.stdout.take(), child.stderr.take()),
            None => (None, None, None),
        }
    }

    /// Waits for the leader to exit (cancel-safe).
    pub async fn wait(&mut self) -> io::Result<ExitStatus> {
        match self.child.as_mut() {
            Some(child) => child.wait().await,
            None => Err(io::Error::other("child already reaped")),
        }
    }

    /// After the leader exited: kill what is left of its group, once (the group id is then
    /// forgotten, so a later drop cannot signal a reused id).
    pub fn kill_remaining(&mut self) {
        self.kill();
        self.pgid = None;
    }

    /// After the leader exited: let what it started live on (keepalived's notify scripts may
    /// start services), and forget the group id so a later drop cannot signal a reused id.
    pub fn release(&mut self) {
        self.pgid = None;
    }

    /// SIGKILL to every process of the group. ESRCH (nothing left) is the normal case after
    /// the program exited cleanly.
    pub fn kill(&self) {
        if let Some(pgid) = self.pgid {
            match killpg(pgid, Signal::SIGKILL) {
                Ok(()) | Err(nix::errno::Errno::ESRCH) => {}
                Err(err) => {
                    tracing::warn!(pgid = pgid.as_raw(), %err, "killing a helper's process group")
                }
            }
        }
    }
}

impl Drop for ProcessGroup {
    fn drop(&mut self) {
        self.kill();
        let Some(mut child) = self.child.take() else {
            return;
        };
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        // SIGKILL was sent; reap the leader as soon as it is gone so no zombie stays behind,
        // without making the dropping code wait. Without a runtime (shutdown), tokio's orphan
        // queue reaps it later.
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            handle.spawn(async move {
                let _ = child.wait().await;
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use std::process::Stdio;

    use super::*;

    fn sh(script: &str) -> Command {
        let mut cmd = Command::new("sh");
        cmd.arg("-c")
            .arg(script)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd
    }

    fn scratch(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("tandem-proc-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[tokio::test]
    async fn timeout_kills_the_group() {
        let dir = scratch("timeout");
        let marker = dir.join("late");
        let script = format!("(sleep 1; touch {}) & sleep 5", marker.display());
        let started = Instant::now();
        let err = run(sh(&script), Duration::from_millis(200), 64)
            .await
            .unwrap_err();
        assert!(matches!(err, RunError::Timeout(t) if t == Duration::from_millis(200)));
        assert!(started.elapsed() < Duration::from_secs(2));
        tokio::time::sleep(Duration::from_millis(1300)).await;
        assert!(!marker.exists(), "a grandchild survived the timeout");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[tokio::test]
    async fn done_kills_what_the_leader_left() {
        let dir = scratch("done");
        let marker = dir.join("late");
        // The background child lets go of the pipes, so the run ends when `sh` exits.
        let script = format!(
            "(sleep 1; touch {}) >/dev/null 2>&1 & exit 0",
            marker.display()
        );
        let done = run(sh(&script), Duration::from_secs(5), 64).await.unwrap();
        assert!(done.status.success());
        assert!(done.elapsed < Duration::from_secs(1));
        tokio::time::sleep(Duration::from_millis(1300)).await;
        assert!(!marker.exists(), "a leftover survived the leader");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[tokio::test]
    async fn input_and_capped_output() {
        let mut cmd = sh("read a; echo \"$a\"; head -c 100000 /dev/zero; echo err >&2; exit 3");
        cmd.stdin(Stdio::piped());
        let done = run_with_input(cmd, Some(b"hello\n".to_vec()), Duration::from_secs(5), 10)
            .await
            .unwrap();
        assert_eq!(done.stdout, b"hello\n\0\0\0\0");
        assert_eq!(done.stderr, b"err\n");
        assert_eq!(describe(done.status), "exit 3");
    }

    #[tokio::test]
    async fn spawn_error() {
        let cmd = Command::new("/nonexistent/tandem-proc-test");
        let err = run(cmd, Duration::from_secs(1), 0).await.unwrap_err();
        assert!(matches!(err, RunError::Spawn(_)), "{err}");
    }

    #[tokio::test]
    async fn drop_kills_and_reaps() {
        let mut cmd = sh("sleep 5");
        let group = ProcessGroup::spawn(&mut cmd).unwrap();
        let pid = group.pgid.unwrap();
        drop(group);
        // Reaped in the background: the pid disappears (no zombie left).
        for _ in 0..100 {
            if nix::sys::signal::kill(pid, None).is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("the dropped child was not killed and reaped");
    }

    #[test]
    fn describes_exit_status() {
        assert_eq!(describe(ExitStatus::from_raw(0)), "exit 0");
        assert_eq!(describe(ExitStatus::from_raw(3 << 8)), "exit 3");
        assert_eq!(describe(ExitStatus::from_raw(9)), "killed by signal 9");
    }
}
