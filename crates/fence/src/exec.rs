//! Running a helper program (ipmitool, snmpget/snmpset, a fence agent): its own process
//! group, a hard timeout after which the whole group is killed, bounded output capture, and
//! secrets passed only through the environment or stdin.

use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use tokio::process::Command;

use crate::driver::FenceError;

pub(crate) use tandem_proc::describe;

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
            .stderr(Stdio::piped());
        let input = self.stdin.map(String::into_bytes);
        match tandem_proc::run_with_input(cmd, input, self.timeout, CAPTURE).await {
            Ok(done) => Ok(Output {
                status: done.status,
                stdout: String::from_utf8_lossy(&done.stdout).into_owned(),
                stderr: String::from_utf8_lossy(&done.stderr).into_owned(),
            }),
            Err(tandem_proc::RunError::Spawn(e)) => Err(FenceError::Spawn {
                program: self.program.to_string(),
                reason: e.to_string(),
            }),
            Err(tandem_proc::RunError::Wait(e)) => Err(FenceError::Tool {
                program: self.program.to_string(),
                status: "wait failed".into(),
                message: e.to_string(),
            }),
            Err(tandem_proc::RunError::Timeout(_)) => {
                tracing::debug!(
                    program = self.program,
                    "helper timed out; killing its process group"
                );
                Err(FenceError::Timeout(self.timeout))
            }
        }
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

    /// That the group dies with it is tandem-proc's test; here: the error and its bound.
    #[tokio::test]
    async fn timeout_is_a_fence_error() {
        let started = std::time::Instant::now();
        let err = Run {
            program: "sh",
            args: vec!["-c".into(), "sleep 5".into()],
            timeout: Duration::from_millis(200),
            ..Run::default()
        }
        .run()
        .await
        .err()
        .unwrap();
        assert_eq!(err, FenceError::Timeout(Duration::from_millis(200)));
        assert!(started.elapsed() < Duration::from_secs(2));
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
