//! Script checks: a program in its own process group; nothing of that group outlives the
//! probe, whether the program exits, the probe times out, or the runner is stopped.

use std::process::Stdio;
use std::time::Duration;

use tandem_proc::{describe, read_capped, ProcessGroup};
use tokio::process::Command;

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
            .stderr(Stdio::piped());
        // From here on, dropping `group` (probe cancelled at its timeout, runner stopped)
        // kills the whole process group.
        let mut group = ProcessGroup::spawn(&mut cmd).map_err(|source| ProbeError::Spawn {
            program: self.check.program.display().to_string(),
            source,
        })?;
        let (_, stdout, stderr) = group.take_pipes();

        let mut out = Vec::new();
        let mut err = Vec::new();
        let (status, output_done) = {
            let readers = async {
                tokio::join!(
                    read_capped(stdout, &mut out, CAPTURE),
                    read_capped(stderr, &mut err, CAPTURE)
                );
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

fn message_of(out: &[u8], err: &[u8]) -> String {
    let parts: Vec<String> = [out, err]
        .iter()
        .map(|b| String::from_utf8_lossy(b).trim().to_string())
        .filter(|s| !s.is_empty())
        .collect();
    one_line(&parts.join(" | "), MESSAGE)
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
}
