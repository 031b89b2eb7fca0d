//! Script checks: a program in its own process group; nothing of that group outlives the
//! probe, whether the program exits, the probe times out, or the runner is stopped.

use std::os::unix::process::ExitStatusExt as _;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use tokio::io::{AsyncRead, AsyncReadExt as _};
use tokio::process::{Child, Command};

use super::{one_line, ProbeError};
use crate::spec::ScriptCheck;

/// Bytes kept of each of stdout and stderr.
const CAPTURE: usize = 512;
/// Bytes of captured output put into the status message.
const MESSAGE: usize = 256;
/// After the program exited and its group was killed, how long to wait for the pipes to
/// close (a process that escaped the group with `setsid` may hold them open).
const DRAIN_GRACE: Duration = Duration::from_millis(100);

pub(super) struct ScriptProbe {
    check: ScriptCheck,
}

impl ScriptProbe {
    pub(super) fn new(check: &ScriptCheck) -> ScriptProbe {
        ScriptProbe {
            check: check.clone(),
        }
    }

    pub(super) async fn run(&self) -> Result<String, ProbeError> {
        let mut cmd = Command::new(&self.check.program);
        cmd.args(&self.check.args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(false);
        let mut child = cmd.spawn().map_err(|source| ProbeError::Spawn {
            program: self.check.program.display().to_string(),
            source,
        })?;
        let stdout = child.stdout.take();
        let stderr = child.stderr.take();
        // From here on, dropping `group` (probe cancelled at its timeout, runner stopped)
        // kills the whole process group.
        let mut group = ProcessGroup::new(child);

        let mut out = Vec::new();
        let mut err = Vec::new();
        let (status, output_done) = {
            let readers = async {
                tokio::join!(read_capped(stdout, &mut out), read_capped(stderr, &mut err));
            };
            tokio::pin!(readers);
            let mut readers_done = false;
            let status = loop {
                tokio::select! {
                    status = group.wait() => break status,
                    () = &mut readers, if !readers_done => readers_done = true,
                }
            };
            // The program is gone: whatever it left in its group goes too, so the pipes close.
            group.kill_remaining();
            if !readers_done {
                readers_done = tokio::time::timeout(DRAIN_GRACE, &mut readers)
                    .await
                    .is_ok();
            }
            (status, readers_done)
        };
        let status = status.map_err(ProbeError::Wait)?;
        if !output_done {
            tracing::debug!(program = %self.check.program.display(), "script output still open after exit");
        }
        let output = message_of(&out, &err);
        if status.success() {
            Ok(if output.is_empty() {
                "exit 0".to_string()
            } else {
                format!("exit 0: {output}")
            })
        } else {
            Err(ProbeError::Script {
                status: describe(status),
                output,
            })
        }
    }
}

fn describe(status: ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit {code}"),
        (None, Some(signal)) => format!("killed by signal {signal}"),
        (None, None) => status.to_string(),
    }
}

fn message_of(out: &[u8], err: &[u8]) -> String {
    let parts: Vec<String> = [out, err]
        .iter()
        .map(|b| String::from_utf8_lossy(b).trim().to_string())
        .filter(|s| !s.is_empty())
        .collect();
    one_line(&parts.join(" | "), MESSAGE)
}

/// Keeps the first [`CAPTURE`] bytes and reads (discarding) the rest until EOF, so the
/// program never blocks on a full pipe.
async fn read_capped<R: AsyncRead + Unpin>(pipe: Option<R>, keep: &mut Vec<u8>) {
    let Some(mut pipe) = pipe else { return };
    let mut buf = [0u8; 1024];
    loop {
        match pipe.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                let take = n.min(CAPTURE.saturating_sub(keep.len()));
                keep.extend_from_slice(&buf[..take]);
            }
        }
    }
}

/// The child and its process group (pgid = the child's pid, from `process_group(0)`).
/// Dropping it sends SIGKILL to the group and reaps the child in the background.
struct ProcessGroup {
    pgid: Option<Pid>,
    child: Option<Child>,
}

impl ProcessGroup {
    fn new(child: Child) -> ProcessGroup {
        let pgid = child
            .id()
            .and_then(|id| i32::try_from(id).ok())
            .map(Pid::from_raw);
        ProcessGroup {
            pgid,
            child: Some(child),
        }
    }

    async fn wait(&mut self) -> std::io::Result<ExitStatus> {
        match self.child.as_mut() {
            Some(child) => child.wait().await,
            None => Err(std::io::Error::other("child already reaped")),
        }
    }

    /// After the leader exited: kill what is left of its group, once (the group id is then
    /// forgotten, so a later drop cannot signal a reused id).
    fn kill_remaining(&mut self) {
        self.kill();
        self.pgid = None;
    }

    /// SIGKILL to every process of the group. ESRCH (nothing left) is the normal case after
    /// the program exited cleanly.
    fn kill(&self) {
        if let Some(pgid) = self.pgid {
            match killpg(pgid, Signal::SIGKILL) {
                Ok(()) | Err(nix::errno::Errno::ESRCH) => {}
                Err(err) => {
                    tracing::warn!(pgid = pgid.as_raw(), %err, "killing a check's process group")
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
        // SIGKILL was sent; reap the leader as soon as it is gone so no zombie stays behind.
        // Without a runtime (shutdown), tokio's orphan queue reaps it later.
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            handle.spawn(async move {
                let _ = child.wait().await;
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages() {
        assert_eq!(message_of(b" hello\n", b""), "hello");
        assert_eq!(message_of(b"", b"oops\n"), "oops");
        assert_eq!(message_of(b"a\nb", b"c"), "a b | c");
        let long = vec![b'x'; 600];
        let m = message_of(&long, b"");
        assert_eq!(m.len(), MESSAGE + 3);
        assert!(m.ends_with("..."));
    }

    #[test]
    fn describes_exit_status() {
        assert_eq!(describe(ExitStatus::from_raw(0)), "exit 0");
        assert_eq!(describe(ExitStatus::from_raw(3 << 8)), "exit 3");
        assert_eq!(describe(ExitStatus::from_raw(9)), "killed by signal 9");
    }
}
