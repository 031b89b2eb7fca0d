//! What a check is: plain data with public fields, produced by the config crate from a
//! `[[check]]` table (or written by hand in tests), and checked by [`CheckSpec::validate`].

use std::path::PathBuf;
use std::time::Duration;

use hyper::Uri;

/// One `[[check]]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckSpec {
    /// Unique among the checks of a node; `track_check` refers to it.
    pub name: String,
    pub kind: CheckKind,
    /// Start-to-start period of the probes. A probe never starts while the previous one
    /// runs, so with `timeout > interval` a hung probe delays the next one.
    pub interval: Duration,
    /// A probe without a result after this long counts as failed (and is cancelled; a script
    /// has its whole process group killed).
    pub timeout: Duration,
    /// Consecutive successes to become Up.
    pub rise: u32,
    /// Consecutive failures to become Down.
    pub fall: u32,
}

/// The kind of probe, with its parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckKind {
    Tcp(TcpCheck),
    Http(HttpCheck),
    Script(ScriptCheck),
}

/// Success = a TCP connection to `host:port` is established (then closed at once).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TcpCheck {
    /// An IP address or a host name (resolved on every probe).
    pub host: String,
    pub port: u16,
}

/// Success = a `GET` of `url` answers `expect_status` and, if `expect_body` is set, a body
/// whose first [`HttpCheck::MAX_BODY`] bytes contain it. Redirects are not followed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpCheck {
    /// `http://host[:port]/path[?query]` or `https://...`. No user info.
    pub url: String,
    /// Default 200.
    pub expect_status: u16,
    /// A substring the body must contain (byte-wise).
    pub expect_body: Option<String>,
    /// HTTPS only. `false` accepts any certificate (self-signed health endpoints); the
    /// handshake signatures are still checked. Default `true`.
    pub tls_verify: bool,
    /// HTTPS only: PEM file of the CA certificates to trust instead of the system store.
    pub ca_file: Option<PathBuf>,
}

impl HttpCheck {
    /// Bytes of body read at most when looking for `expect_body`.
    pub const MAX_BODY: usize = 64 * 1024;

    /// A check of `url` with the defaults: status 200, no body match, verified TLS with the
    /// system's CA store.
    pub fn new(url: impl Into<String>) -> HttpCheck {
        HttpCheck {
            url: url.into(),
            expect_status: 200,
            expect_body: None,
            tls_verify: true,
            ca_file: None,
        }
    }
}

/// Success = `program` run with `args` exits with code 0. It runs in its own process group
/// with stdin from /dev/null; stdout and stderr are captured (the first few hundred bytes go
/// into the status message). When the program exits, or at the timeout, whatever is left of
/// its process group is killed: a check script must not leave anything running.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptCheck {
    pub program: PathBuf,
    pub args: Vec<String>,
}

impl CheckKind {
    /// "tcp", "http" or "script", as in the config file.
    pub fn name(&self) -> &'static str {
        match self {
            CheckKind::Tcp(_) => "tcp",
            CheckKind::Http(_) => "http",
            CheckKind::Script(_) => "script",
        }
    }

    /// What the check probes, for status output: `host:port`, the URL, or the command line.
    pub fn target(&self) -> String {
        match self {
            CheckKind::Tcp(t) if t.host.contains(':') => format!("[{}]:{}", t.host, t.port),
            CheckKind::Tcp(t) => format!("{}:{}", t.host, t.port),
            CheckKind::Http(h) => h.url.clone(),
            CheckKind::Script(s) => {
                let mut line = s.program.display().to_string();
                for arg in &s.args {
                    line.push(' ');
                    line.push_str(arg);
                }
                line
            }
        }
    }
}

impl CheckSpec {
    pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(1);
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1);
    pub const DEFAULT_RISE: u32 = 1;
    pub const DEFAULT_FALL: u32 = 1;

    /// A check with keepalived's defaults: every 1 s, 1 s timeout, rise 1, fall 1.
    pub fn new(name: impl Into<String>, kind: CheckKind) -> CheckSpec {
        CheckSpec {
            name: name.into(),
            kind,
            interval: Self::DEFAULT_INTERVAL,
            timeout: Self::DEFAULT_TIMEOUT,
            rise: Self::DEFAULT_RISE,
            fall: Self::DEFAULT_FALL,
        }
    }

    /// Checks what the runner needs: a name, non-zero interval, timeout, rise and fall, and
    /// well-formed kind parameters. Files (CA file, program) are looked at only when the
    /// check is started or run.
    pub fn validate(&self) -> Result<(), SpecError> {
        let invalid = |reason: &str| SpecError::Invalid {
            check: self.name.clone(),
            reason: reason.to_string(),
        };
        if self.name.trim().is_empty() {
            return Err(invalid("the name is empty"));
        }
        if self.interval.is_zero() {
            return Err(invalid("interval must be greater than zero"));
        }
        if self.timeout.is_zero() {
            return Err(invalid("timeout must be greater than zero"));
        }
        if self.rise == 0 {
            return Err(invalid("rise must be at least 1"));
        }
        if self.fall == 0 {
            return Err(invalid("fall must be at least 1"));
        }
        match &self.kind {
            CheckKind::Tcp(t) => {
                if t.host.trim().is_empty() {
                    return Err(invalid("tcp check: host is empty"));
                }
                if t.port == 0 {
                    return Err(invalid("tcp check: port must not be 0"));
                }
            }
            CheckKind::Http(h) => {
                ParsedUrl::parse(&h.url).map_err(|reason| invalid(&reason))?;
                if !(100..=599).contains(&h.expect_status) {
                    return Err(invalid(
                        "http check: expect_status must be within 100..=599",
                    ));
                }
                if h.expect_body.as_deref() == Some("") {
                    return Err(invalid("http check: expect_body is empty"));
                }
            }
            CheckKind::Script(s) => {
                if s.program.as_os_str().is_empty() {
                    return Err(invalid("script check: program is empty"));
                }
            }
        }
        Ok(())
    }
}

/// An `http(s)://` URL split into what the probe needs.
#[derive(Debug, Clone)]
pub(crate) struct ParsedUrl {
    pub https: bool,
    /// Host to connect to and to name in TLS: an IPv6 address without brackets.
    pub host: String,
    pub port: u16,
    /// The `Host` header: the authority as written.
    pub authority: String,
    /// Origin-form request target: `/path?query`.
    pub path_and_query: String,
}

impl ParsedUrl {
    pub(crate) fn parse(url: &str) -> Result<ParsedUrl, String> {
        let uri: Uri = url
            .parse()
            .map_err(|e| format!("http check: invalid url {url:?}: {e}"))?;
        let https = match uri.scheme_str() {
            Some("http") => false,
            Some("https") => true,
            Some(other) => {
                return Err(format!(
                    "http check: url scheme must be http or https, not {other:?}"
                ))
            }
            None => {
                return Err(format!(
                    "http check: url {url:?} has no http:// or https://"
                ))
            }
        };
        let authority = uri
            .authority()
            .ok_or_else(|| format!("http check: url {url:?} has no host"))?;
        if authority.as_str().contains('@') {
            return Err("http check: user info in the url is not supported".to_string());
        }
        let host = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']');
        if host.is_empty() {
            return Err(format!("http check: url {url:?} has no host"));
        }
        let port = authority.port_u16().unwrap_or(if https { 443 } else { 80 });
        if port == 0 {
            return Err("http check: port must not be 0".to_string());
        }
        let path_and_query = uri
            .path_and_query()
            .map(|p| p.as_str())
            .filter(|p| !p.is_empty())
            .unwrap_or("/");
        let path_and_query = if path_and_query.starts_with('/') {
            path_and_query.to_string()
        } else {
            format!("/{path_and_query}")
        };
        Ok(ParsedUrl {
            https,
            host: host.to_string(),
            port,
            authority: authority.as_str().to_string(),
            path_and_query,
        })
    }
}

/// A check that cannot be started.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error("check {check:?}: {reason}")]
    Invalid { check: String, reason: String },
    #[error("two checks are named {0:?}")]
    DuplicateName(String),
    #[error("check {check:?}: reading CA file {path}: {source}")]
    CaFile {
        check: String,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("check {check:?}: TLS setup: {source}")]
    Tls {
        check: String,
        #[source]
        source: rustls::Error,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    fn http(url: &str) -> CheckSpec {
        CheckSpec::new("web", CheckKind::Http(HttpCheck::new(url)))
    }

    #[test]
    fn defaults() {
        let spec = http("http://127.0.0.1/");
        assert_eq!(spec.interval, Duration::from_secs(1));
        assert_eq!(spec.timeout, Duration::from_secs(1));
        assert_eq!((spec.rise, spec.fall), (1, 1));
        let CheckKind::Http(h) = &spec.kind else {
            unreachable!()
        };
        assert_eq!(h.expect_status, 200);
        assert!(h.tls_verify);
        assert!(spec.validate().is_ok());
    }

    #[test]
    fn url_parsing() {
        let u = ParsedUrl::parse("http://127.0.0.1:8404/health").unwrap();
        assert_eq!(
            (u.https, u.host.as_str(), u.port),
            (false, "127.0.0.1", 8404)
        );
        assert_eq!(u.authority, "127.0.0.1:8404");
        assert_eq!(u.path_and_query, "/health");

        let u = ParsedUrl::parse("https://lb.example/").unwrap();
        assert_eq!(
            (u.https, u.host.as_str(), u.port),
            (true, "lb.example", 443)
        );

        let u = ParsedUrl::parse("http://[::1]/a?b=c").unwrap();
        assert_eq!((u.host.as_str(), u.port), ("::1", 80));
        assert_eq!(u.authority, "[::1]");
        assert_eq!(u.path_and_query, "/a?b=c");

        let u = ParsedUrl::parse("http://example").unwrap();
        assert_eq!(u.path_and_query, "/");
    }

    #[test]
    fn invalid_specs_are_refused() {
        for url in [
            "ftp://x/",
            "127.0.0.1:80/x",
            "/health",
            "http://u:p@x/",
            "http://x:0/",
            "",
        ] {
            assert!(http(url).validate().is_err(), "{url}");
        }
        let mut s = http("http://x/");
        s.interval = Duration::ZERO;
        assert!(s.validate().is_err());
        let mut s = http("http://x/");
        s.timeout = Duration::ZERO;
        assert!(s.validate().is_err());
        let mut s = http("http://x/");
        s.rise = 0;
        assert!(s.validate().is_err());
        let mut s = http("http://x/");
        s.fall = 0;
        assert!(s.validate().is_err());
        let mut s = http("http://x/");
        s.name = " ".into();
        assert!(s.validate().is_err());
        let mut h = HttpCheck::new("http://x/");
        h.expect_status = 99;
        assert!(CheckSpec::new("h", CheckKind::Http(h)).validate().is_err());
        let mut h = HttpCheck::new("http://x/");
        h.expect_body = Some(String::new());
        assert!(CheckSpec::new("h", CheckKind::Http(h)).validate().is_err());

        let tcp = |host: &str, port| {
            CheckSpec::new(
                "t",
                CheckKind::Tcp(TcpCheck {
                    host: host.into(),
                    port,
                }),
            )
        };
        assert!(tcp("", 80).validate().is_err());
        assert!(tcp("127.0.0.1", 0).validate().is_err());
        assert!(tcp("127.0.0.1", 80).validate().is_ok());

        let script = CheckSpec::new(
            "s",
            CheckKind::Script(ScriptCheck {
                program: PathBuf::new(),
                args: vec![],
            }),
        );
        let err = script.validate().unwrap_err();
        assert_eq!(
            err.to_string(),
            "check \"s\": script check: program is empty"
        );
    }

    #[test]
    fn targets() {
        let tcp = CheckKind::Tcp(TcpCheck {
            host: "::1".into(),
            port: 22,
        });
        assert_eq!(tcp.target(), "[::1]:22");
        assert_eq!(tcp.name(), "tcp");
        let s = CheckKind::Script(ScriptCheck {
            program: "/bin/check".into(),
            args: vec!["-q".into(), "x".into()],
        });
        assert_eq!(s.target(), "/bin/check -q x");
        assert_eq!(s.name(), "script");
    }
}
