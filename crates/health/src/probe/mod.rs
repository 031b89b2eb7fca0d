//! The I/O of a check: one probe, bounded by the check's timeout.

use std::io;
use std::time::Duration;

use tokio::net::TcpStream;

use crate::spec::{CheckKind, CheckSpec, SpecError, TcpCheck};
use crate::state::Outcome;

mod http;
mod script;

/// Why a probe failed. Its `Display` is the status message of the failed probe.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    #[error("connect to {target}: {source}")]
    Connect {
        target: String,
        #[source]
        source: io::Error,
    },
    #[error("TLS handshake with {host}: {source}")]
    Tls {
        host: String,
        #[source]
        source: io::Error,
    },
    #[error("HTTP: {0}")]
    Http(#[from] hyper::Error),
    #[error("building the HTTP request: {0}")]
    Request(#[from] hyper::http::Error),
    #[error("HTTP status {got}, expected {expected}")]
    Status { got: u16, expected: u16 },
    #[error("HTTP {status}: body does not contain {expected:?} (read {read} bytes)")]
    Body {
        status: u16,
        expected: String,
        read: usize,
    },
    #[error("running {program}: {source}")]
    Spawn {
        program: String,
        #[source]
        source: io::Error,
    },
    #[error("waiting for the script: {0}")]
    Wait(#[source] io::Error),
    #[error("{status}{}", if output.is_empty() { String::new() } else { format!(": {output}") })]
    Script { status: String, output: String },
}

/// A ready-to-run probe for one check: the URL parsed and the TLS client built once, so each
/// run does only the I/O.
pub struct Probe {
    inner: Inner,
}

enum Inner {
    Tcp(TcpCheck),
    Http(http::HttpProbe),
    Script(script::ScriptProbe),
}

impl Probe {
    /// Validates the spec and prepares the probe (for HTTPS: loads the CA certificates).
    pub fn new(spec: &CheckSpec) -> Result<Probe, SpecError> {
        spec.validate()?;
        let inner = match &spec.kind {
            CheckKind::Tcp(t) => Inner::Tcp(t.clone()),
            CheckKind::Http(h) => Inner::Http(http::HttpProbe::new(&spec.name, h)?),
            CheckKind::Script(s) => Inner::Script(script::ScriptProbe::new(s)),
        };
        Ok(Probe { inner })
    }

    /// Runs the probe once, cancelling it after `timeout` (a cancelled script has its whole
    /// process group killed). Never fails: a failure is an [`Outcome`] with `ok == false`.
    pub async fn run(&self, timeout: Duration) -> Outcome {
        let start = tokio::time::Instant::now();
        let result = tokio::time::timeout(timeout, self.attempt()).await;
        let latency = start.elapsed();
        match result {
            Ok(Ok(message)) => Outcome::success(latency, message),
            Ok(Err(err)) => Outcome::failure(latency, err.to_string()),
            Err(_) => Outcome::failure(latency, ProbeError::Timeout(timeout).to_string()),
        }
    }

    /// One attempt without a time limit: the success message, or why it failed.
    pub async fn attempt(&self) -> Result<String, ProbeError> {
        match &self.inner {
            Inner::Tcp(t) => tcp(t).await,
            Inner::Http(h) => h.run().await,
            Inner::Script(s) => s.run().await,
        }
    }
}

async fn tcp(check: &TcpCheck) -> Result<String, ProbeError> {
    let stream = TcpStream::connect((check.host.as_str(), check.port))
        .await
        .map_err(|source| ProbeError::Connect {
            target: CheckKind::Tcp(check.clone()).target(),
            source,
        })?;
    let message = match stream.peer_addr() {
        Ok(peer) => format!("connected to {peer}"),
        Err(_) => "connected".to_string(),
    };
    drop(stream);
    Ok(message)
}

/// At most `max` bytes of `text`, cut on a character boundary, whitespace runs folded to one
/// space (status output is one line).
pub(crate) fn one_line(text: &str, max: usize) -> String {
    let folded = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if folded.len() <= max {
        return folded;
    }
    let mut end = max;
    while !folded.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &folded[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_folds_and_truncates() {
        assert_eq!(one_line("  a\n\tb  c \n", 100), "a b c");
        assert_eq!(one_line("abcdef", 3), "abc...");
        // 'é' is two bytes: never cut inside it.
        assert_eq!(one_line("aé", 2), "a...");
    }

    #[test]
    fn error_messages() {
        let e = ProbeError::Script {
            status: "exit 3".into(),
            output: "boom".into(),
        };
        assert_eq!(e.to_string(), "exit 3: boom");
        let e = ProbeError::Script {
            status: "killed by signal 9".into(),
            output: String::new(),
        };
        assert_eq!(e.to_string(), "killed by signal 9");
        let e = ProbeError::Status {
            got: 500,
            expected: 200,
        };
        assert_eq!(e.to_string(), "HTTP status 500, expected 200");
        assert_eq!(
            ProbeError::Timeout(Duration::from_millis(300)).to_string(),
            "timed out after 300ms"
        );
    }
}
