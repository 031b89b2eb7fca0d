//! Secrets (passwords, communities, passphrases): loaded from a file or an environment
//! variable, never printable, and scrubbed from any text a tool produced before that text goes
//! into an error or a log line.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

/// What replaces a secret in every output.
pub const REDACTED: &str = "<redacted>";

/// A secret value. `Debug` and `Display` print `<redacted>`; only [`Secret::expose`] gives
/// the value, and the drivers hand it to a child process through its environment, its stdin
/// or a mode-0600 file, never on a command line.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Arc<str>);

impl Secret {
    /// Wraps a value (from a config layer that already read it, or a test).
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(Arc::from(value.into()))
    }

    /// The value, for handing to a device. Never format it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

/// Where a secret comes from (`password_file = "..."` or `password_env = "..."`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    /// A file whose content (one trailing newline removed) is the secret.
    File(PathBuf),
    /// An environment variable of the daemon.
    Env(String),
}

/// Why a secret could not be loaded. Names the file or variable, never the value.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum SecretError {
    #[error("cannot read secret file {path}: {reason}")]
    File { path: String, reason: String },
    #[error("environment variable {0} is not set or not UTF-8")]
    Env(String),
    #[error("secret from {0} is empty")]
    Empty(String),
    #[error("secret from {0} contains a line break or NUL")]
    Invalid(String),
}

impl SecretSource {
    /// Reads the secret now.
    pub fn load(&self) -> Result<Secret, SecretError> {
        let (value, origin) = match self {
            SecretSource::File(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| SecretError::File {
                    path: path.display().to_string(),
                    reason: e.kind().to_string(),
                })?;
                (text, format!("file {}", path.display()))
            }
            SecretSource::Env(var) => (
                std::env::var(var).map_err(|_| SecretError::Env(var.clone()))?,
                format!("variable {var}"),
            ),
        };
        let value = value
            .strip_suffix('\n')
            .map(|v| v.strip_suffix('\r').unwrap_or(v))
            .unwrap_or(&value)
            .to_string();
        if value.is_empty() {
            return Err(SecretError::Empty(origin));
        }
        if value.contains(['\n', '\r', '\0']) {
            return Err(SecretError::Invalid(origin));
        }
        Ok(Secret::new(value))
    }
}

/// Replaces every occurrence of any of `secrets` in `text` by `<redacted>`. Longer secrets
/// first, so a secret that contains another is removed whole.
pub fn scrub(text: &str, secrets: &[&Secret]) -> String {
    let mut sorted: Vec<&Secret> = secrets.iter().copied().filter(|s| !s.is_empty()).collect();
    sorted.sort_by_key(|s| std::cmp::Reverse(s.expose().len()));
    let mut out = text.to_string();
    for s in sorted {
        if out.contains(s.expose()) {
            out = out.replace(s.expose(), REDACTED);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_printed() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s}"), REDACTED);
        assert_eq!(format!("{s:?}"), REDACTED);
        assert_eq!(format!("{:?}", Some(s.clone())), "Some(<redacted>)");
        assert_eq!(s.expose(), "hunter2");
    }

    #[test]
    fn scrubs_longest_first() {
        let a = Secret::new("abc");
        let b = Secret::new("xabcx");
        let e = Secret::new("");
        assert_eq!(
            scrub("p=xabcx q=abc", &[&a, &b, &e]),
            "p=<redacted> q=<redacted>"
        );
    }

    #[test]
    fn loads_from_file_and_env() {
        let dir = std::env::temp_dir().join(format!("tandem-fence-secret-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("pw");
        std::fs::write(&f, "s3cret\n").unwrap();
        assert_eq!(
            SecretSource::File(f.clone()).load().unwrap().expose(),
            "s3cret"
        );
        std::fs::write(&f, "two\nlines\n").unwrap();
        let err = SecretSource::File(f.clone()).load().unwrap_err();
        assert!(!err.to_string().contains("two"));
        std::fs::write(&f, "\n").unwrap();
        assert!(matches!(
            SecretSource::File(f).load(),
            Err(SecretError::Empty(_))
        ));
        let missing = SecretSource::File(dir.join("missing")).load().unwrap_err();
        assert!(missing.to_string().contains("missing"));
        if let Ok(path) = std::env::var("PATH") {
            assert_eq!(
                SecretSource::Env("PATH".into()).load().unwrap().expose(),
                path
            );
        }
        assert!(matches!(
            SecretSource::Env("TANDEM_FENCE_SURELY_UNSET_VAR".into()).load(),
            Err(SecretError::Env(_))
        ));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
