//! Running a helper program (ipmitool, snmpget/snmpset, a fence agent): its own process
//! group, a hard timeout after which the whole group is killed, bounded output capture, and
//! secrets passed only through the environment or stdin.

use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWriteExt as _};
use tokio::process::{Child, Command};

use crate::driver::FenceError;

/// Bytes kept of each of stdout and stderr.
const CAPTURE: usize = 64 * 1024;

/// One program run.
#[derive(Debug, Default)]
pub(crate) struct Run<'a> {
    pub program: &'a str,
    pub args: Vec<String>,
    /// Set in the child's environment (on top of the daemon's).
    pub env: Vec<(String, String)>,
    /// Written to the child's stdin, which is then closed.
    pub stdin: Option<String>,
    pub timeout: Duration,
}

pub(crate) struct Output {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Run<'_> {
    /// Runs it to completion or until the timeout; on timeout (or when the future is
    /// dropped) the process group gets SIGKILL.
    pub(crate) async fn run(self) -> Result<Output, FenceError> {
        let mut cmd = Command::new(self.program);
        cmd.args(&self.args)
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(if self.stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(false);
        let mut child = cmd.spawn().map_err(|e| FenceError::Spawn {
            program: self.program.to_string(),
            reason: e.to_string(),
        })?;
        let stdin = child.stdin.take();
        let stdout = child.stdout.take();
        let stderr = child.stderr.take();
        let mut group = Group::new(child);
        let input = self.stdin;
        let work = async {
            let feed = async {
                if let (Some(mut pipe), Some(text)) = (stdin, input) {
                    // An agent that exits without reading gives EPIPE: not our error.
                    let _ = pipe.write_all(text.as_bytes()).await;
                    let _ = pipe.shutdown().await;
                }
            };
            let mut out = Vec::new();
            let mut err = Vec::new();
            let ((), (), ()) = tokio::join!(
                feed,
                read_capped(stdout, &mut out),
                read_capped(stderr, &mut err)
            );
            let status = group.wait().await;
            (status, out, err)
        };
        match tokio::time::timeout(self.timeout, work).await {
            Ok((status, out, err)) => {
                group.kill_remaining();
                let status = status.map_err(|e| FenceError::Tool {
                    program: self.program.to_string(),
                    status: "wait failed".into(),
                    message: e.to_string(),
                })?;
                Ok(Output {
                    status,
                    stdout: String::from_utf8_lossy(&out).into_owned(),
                    stderr: String::from_utf8_lossy(&err).into_owned(),
                })
            }
            Err(_) => {
                tracing::debug!(
                    program = self.program,
                    "helper timed out; killing its process group"
                );
                Err(FenceError::Timeout(self.timeout))
            }
        }
    }
}

async fn read_capped<R: AsyncRead + Unpin>(pipe: Option<R>, keep: &mut Vec<u8>) {
    let Some(mut pipe) = pipe else { return };
    let mut buf = [0u8; 4096];
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

/// The child and its process group; dropping it kills the group and reaps the child.
struct Group {
    pgid: Option<Pid>,
    child: Option<Child>,
}

impl Group {
    fn new(child: Child) -> Group {
        let pgid = child
            .id()
            .and_then(|id| i32::try_from(id).ok())
            .map(Pid::from_raw);
        Group {
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

    /// The leader exited: kill what it left in its group, once.
    fn kill_remaining(&mut self) {
        self.kill();
        self.pgid = None;
    }

    fn kill(&self) {
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

impl Drop for Group {
    fn drop(&mut self) {
        self.kill();
        let Some(mut child) = self.child.take() else {
            return;
        };
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            handle.spawn(async move {
                let _ = child.wait().await;
            });
        }
    }
}

/// "exit 3" / "killed by signal 9".
pub(crate) fn describe(status: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt as _;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit {code}"),
        (None, Some(sig)) => format!("killed by signal {sig}"),
        (None, None) => status.to_string(),
    }
}

/// Lines tools print that say nothing about a failure.
fn is_noise(line: &str) -> bool {
    line.starts_with("Loading IANA PEN Registry")
        || line.starts_with("Created directory:")
        || line.starts_with("Discovered IPMB address")
}

/// A fence agent's log prefix "2026-11-26 15:06:51,250 " (a date, a time, then the text).
fn strip_timestamp(line: &str) -> &str {
    let b = line.as_bytes();
    let looks_like = b.len() > 24
        && b[4] == b'-'
        && b[7] == b'-'
        && b[10] == b' '
        && b[13] == b':'
        && b[16] == b':'
        && b[19] == b','
        && b[..4].iter().all(u8::is_ascii_digit);
    if looks_like {
        line.get(23..).map_or(line, str::trim_start)
    } else {
        line
    }
}

/// The last few meaningful lines of a tool's output, on one line, at most 300 characters.
pub(crate) fn tail(text: &str) -> String {
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !is_noise(l))
        .map(strip_timestamp)
        .collect();
    let start = lines.len().saturating_sub(3);
    let joined = lines[start..].join(" | ");
    if joined.chars().count() > 300 {
        let cut: String = joined.chars().take(300).collect();
        format!("{cut}...")
    } else {
        joined
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn timeout_kills_the_group() {
        let dir = std::env::temp_dir().join(format!("tandem-fence-exec-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let marker = dir.join("late");
        let script = format!("(sleep 1; touch {}) & sleep 5", marker.display());
        let started = std::time::Instant::now();
        let err = Run {
            program: "sh",
            args: vec!["-c".into(), script],
            timeout: Duration::from_millis(200),
            ..Run::default()
        }
        .run()
        .await
        .err()
        .unwrap();
        assert_eq!(err, FenceError::Timeout(Duration::from_millis(200)));
        assert!(started.elapsed() < Duration::from_secs(2));
        tokio::time::sleep(Duration::from_millis(1300)).await;
        assert!(!marker.exists(), "a grandchild survived the timeout");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[tokio::test]
    async fn stdin_env_and_output() {
        let out = Run {
            program: "sh",
            args: vec![
                "-c".into(),
                "read a; echo \"$a $X\"; echo err >&2; exit 3".into(),
            ],
            env: vec![("X".into(), "y".into())],
            stdin: Some("hello\n".into()),
            timeout: Duration::from_secs(5),
        }
        .run()
        .await
        .unwrap();
        assert_eq!(out.stdout, "hello y\n");
        assert_eq!(out.stderr, "err\n");
        assert_eq!(describe(out.status), "exit 3");
        assert_eq!(tail("a\n\nb\nc\nd\n"), "b | c | d");
        assert_eq!(
            tail("Loading IANA PEN Registry...\n2026-11-26 15:06:51,250 ERROR: Failed: x\n"),
            "ERROR: Failed: x"
        );
    }
}
