//! `fence-agent` driver: any fence-agents program (`fence_ipmilan`, `fence_apc_snmp`,
//! `fence_ifmib`, ...) through its standard interface, so every device those agents know works
//! with tandem.
//!
//! The agent gets `key=value` lines on stdin (`action=off`, then the device's options, secrets
//! included — never on its command line), and answers by exit status: 0 success; for
//! `status`, 0 = on, 2 = off, anything else an error. `list` prints `plug,alias` lines. The
//! agent runs in its own process group, which is killed when it exceeds its timeout (or exits
//! leaving children behind). `PYTHONWARNINGS=ignore::DeprecationWarning` silences the
//! harmless `pipes` warning the Python agents print on Python 3.11+.

use std::fmt;
use std::time::Duration;

use crate::driver::{FenceDriver, FenceError, Plug, PowerState};
use crate::exec::{describe, tail, Run};
use crate::secret::{scrub, Secret};

/// Parameters of one fence-agent device.
#[derive(Clone)]
pub struct FenceAgentConfig {
    /// The agent, e.g. "fence_ipmilan" (PATH) or "/usr/sbin/fence_apc_snmp".
    pub program: String,
    /// Plain options, e.g. ("ip", "10.0.9.2"), ("lanplus", "1"), ("plug", "3").
    pub options: Vec<(String, String)>,
    /// Secret options, e.g. ("password", ...), ("snmp_priv_passwd", ...).
    pub secret_options: Vec<(String, Secret)>,
    /// Hard limit for one agent run (its process group is killed after it).
    pub timeout: Duration,
}

impl fmt::Debug for FenceAgentConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FenceAgentConfig")
            .field("program", &self.program)
            .field("options", &self.options)
            .field("secret_options", &self.secret_options)
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// The `fence-agent` driver.
#[derive(Debug, Clone)]
pub struct FenceAgentDriver {
    config: FenceAgentConfig,
}

fn valid_key(k: &str) -> bool {
    !k.is_empty()
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

impl FenceAgentDriver {
    pub fn new(config: FenceAgentConfig) -> Result<FenceAgentDriver, FenceError> {
        if config.program.is_empty() {
            return Err(FenceError::Config("no fence agent program".into()));
        }
        for (k, v) in &config.options {
            if !valid_key(k) || k == "action" || v.contains(['\n', '\r', '\0']) {
                return Err(FenceError::Config(format!("bad fence agent option {k:?}")));
            }
        }
        for (k, v) in &config.secret_options {
            if !valid_key(k) || v.expose().contains(['\n', '\r', '\0']) {
                return Err(FenceError::Config(format!(
                    "bad fence agent secret option {k:?}"
                )));
            }
        }
        Ok(FenceAgentDriver { config })
    }

    fn stdin(&self, action: &str) -> String {
        let mut s = format!("action={action}\n");
        for (k, v) in &self.config.options {
            s.push_str(&format!("{k}={v}\n"));
        }
        for (k, v) in &self.config.secret_options {
            s.push_str(&format!("{k}={}\n", v.expose()));
        }
        s
    }

    /// Runs the agent; returns (exit code, scrubbed stdout, scrubbed stderr).
    async fn run(&self, action: &str) -> Result<(Option<i32>, String, String, String), FenceError> {
        let c = &self.config;
        let out = Run {
            program: &c.program,
            args: Vec::new(),
            env: vec![("PYTHONWARNINGS".into(), "ignore::DeprecationWarning".into())],
            stdin: Some(self.stdin(action)),
            timeout: c.timeout,
        }
        .run()
        .await?;
        let secrets: Vec<&Secret> = c.secret_options.iter().map(|(_, s)| s).collect();
        Ok((
            out.status.code(),
            describe(out.status),
            scrub(&out.stdout, &secrets),
            scrub(&out.stderr, &secrets),
        ))
    }

    fn failure(&self, action: &str, status: &str, stdout: &str, stderr: &str) -> FenceError {
        let message = tail(&format!("{stdout}\n{stderr}"));
        let lower = message.to_ascii_lowercase();
        let message = format!("action {action}: {message}");
        if lower.contains("timed out") || lower.contains("timeout") {
            FenceError::Unreachable(message)
        } else {
            FenceError::Tool {
                program: self.config.program.clone(),
                status: status.to_string(),
                message,
            }
        }
    }

    async fn act(&self, action: &str) -> Result<(), FenceError> {
        let (code, status, out, err) = self.run(action).await?;
        if code == Some(0) {
            Ok(())
        } else {
            Err(self.failure(action, &status, &out, &err))
        }
    }
}

impl FenceDriver for FenceAgentDriver {
    async fn off(&self) -> Result<(), FenceError> {
        self.act("off").await
    }

    async fn on(&self) -> Result<(), FenceError> {
        self.act("on").await
    }

    async fn reboot(&self) -> Result<(), FenceError> {
        self.act("reboot").await
    }

    async fn status(&self) -> Result<PowerState, FenceError> {
        let (code, status, out, err) = self.run("status").await?;
        match code {
            Some(0) => Ok(PowerState::On),
            Some(2) => Ok(PowerState::Off),
            _ => Err(self.failure("status", &status, &out, &err)),
        }
    }

    async fn list(&self) -> Result<Vec<Plug>, FenceError> {
        let (code, status, out, err) = self.run("list").await?;
        if code != Some(0) {
            return Err(self.failure("list", &status, &out, &err));
        }
        Ok(parse_list(&out))
    }
}

/// `id,alias` lines (alias may be empty or absent).
fn parse_list(out: &str) -> Vec<Plug> {
    out.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(|l| {
            let (id, name) = l.split_once(',').unwrap_or((l, ""));
            Plug {
                id: id.trim().to_string(),
                name: name.trim().to_string(),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agent(timeout: Duration) -> FenceAgentDriver {
        FenceAgentDriver::new(FenceAgentConfig {
            program: "/bin/sh".into(),
            options: vec![],
            secret_options: vec![("password".into(), Secret::new("agent-pw-1"))],
            timeout,
        })
        .unwrap()
    }

    #[test]
    fn list_and_stdin() {
        assert_eq!(
            parse_list("1,node1\n2,\n3\n"),
            vec![
                Plug {
                    id: "1".into(),
                    name: "node1".into()
                },
                Plug {
                    id: "2".into(),
                    name: "".into()
                },
                Plug {
                    id: "3".into(),
                    name: "".into()
                },
            ]
        );
        let d = agent(Duration::from_secs(1));
        assert_eq!(d.stdin("off"), "action=off\npassword=agent-pw-1\n");
        assert!(!format!("{d:?}").contains("agent-pw-1"));
        assert!(FenceAgentDriver::new(FenceAgentConfig {
            program: "x".into(),
            options: vec![("action".into(), "on".into())],
            secret_options: vec![],
            timeout: Duration::from_secs(1),
        })
        .is_err());
    }
}
