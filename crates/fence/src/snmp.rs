//! The SNMP client the `pdu-snmp` and `switch-snmp` drivers share: v2c and v3 authPriv, by
//! driving net-snmp's `snmpget` / `snmpset` / `snmpwalk`.
//!
//! Why net-snmp's tools and not a Rust crate (checked on crates.io, Nov 2026): `snmp` and
//! `csnmp` speak v1/v2c only, and `snmp` is abandoned. `snmp2` (RoboPLC) is the one crate with
//! v3 authPriv (SHA / AES), behind features that pull in either OpenSSL or a second crypto
//! stack; its USM (key localisation, engine discovery, time-window resync after an agent
//! restart) had no interoperability record against net-snmp's agent we could point to, and a
//! fencing path is the last place to debug one. net-snmp is the reference implementation, is
//! what fence_apc_snmp / fence_ifmib use, and the project's simulators verify it. Revisit when
//! snmp2's v3 has been proven against the fixtures.
//!
//! Secrets stay off the command line: each run gets a private (mode 0700) directory holding an
//! `snmp.conf` (mode 0600) with `defCommunity` or `defSecurityName` / `defAuthPassphrase` /
//! `defPrivPassphrase`, named by `SNMPCONFPATH` (which also keeps the user's own snmp.conf
//! out) and `SNMP_PERSISTENT_DIR`. The directory is removed after the run.

use std::fmt;
use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::driver::FenceError;
use crate::exec::{describe, tail, Run};
use crate::secret::{scrub, Secret};

/// SNMPv3 authentication protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AuthProtocol {
    Md5,
    #[default]
    Sha,
    Sha256,
    Sha512,
}

/// SNMPv3 privacy protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PrivProtocol {
    Des,
    #[default]
    Aes,
}

/// Credentials: v2c community, or v3 user with authPriv.
#[derive(Clone)]
pub enum SnmpAuth {
    V2c {
        community: Secret,
    },
    V3 {
        user: String,
        auth_protocol: AuthProtocol,
        auth_password: Secret,
        priv_protocol: PrivProtocol,
        priv_password: Secret,
    },
}

impl fmt::Debug for SnmpAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SnmpAuth::V2c { community } => {
                f.debug_struct("V2c").field("community", community).finish()
            }
            SnmpAuth::V3 {
                user,
                auth_protocol,
                auth_password,
                priv_protocol,
                priv_password,
            } => f
                .debug_struct("V3")
                .field("user", user)
                .field("auth_protocol", auth_protocol)
                .field("auth_password", auth_password)
                .field("priv_protocol", priv_protocol)
                .field("priv_password", priv_password)
                .finish(),
        }
    }
}

/// One SNMP agent.
#[derive(Debug, Clone)]
pub struct SnmpTarget {
    pub host: String,
    /// UDP port (161).
    pub port: u16,
    pub auth: SnmpAuth,
    /// Wait for each answer (`-t`).
    pub timeout: Duration,
    /// Retransmissions (`-r`).
    pub retries: u32,
    /// Directory of snmpget / snmpset / snmpwalk (None: from PATH).
    pub tools_dir: Option<PathBuf>,
}

impl SnmpTarget {
    /// An agent with the defaults: 1 s per request, 1 retry.
    pub fn new(host: impl Into<String>, port: u16, auth: SnmpAuth) -> SnmpTarget {
        SnmpTarget {
            host: host.into(),
            port,
            auth,
            timeout: Duration::from_secs(1),
            retries: 1,
            tools_dir: None,
        }
    }

    pub(crate) fn validate(&self) -> Result<(), FenceError> {
        if self.host.is_empty()
            || self.host.starts_with('-')
            || self.host.contains(char::is_whitespace)
        {
            return Err(FenceError::Config(format!("bad SNMP host {:?}", self.host)));
        }
        let bad = |s: &str| s.is_empty() || s.contains(['\n', '\r', '\0']) || s.trim() != s;
        match &self.auth {
            SnmpAuth::V2c { community } => {
                if bad(community.expose()) {
                    return Err(FenceError::Config("unusable SNMP community".into()));
                }
            }
            SnmpAuth::V3 {
                user,
                auth_password,
                priv_password,
                ..
            } => {
                if bad(user) || user.contains(char::is_whitespace) {
                    return Err(FenceError::Config("unusable SNMPv3 user name".into()));
                }
                // net-snmp refuses pass phrases shorter than 8 characters
                for (what, p) in [("auth", auth_password), ("privacy", priv_password)] {
                    if bad(p.expose()) || p.expose().chars().count() < 8 {
                        return Err(FenceError::Config(format!(
                            "SNMPv3 {what} pass phrase must be 8 or more characters without line breaks or surrounding blanks"
                        )));
                    }
                }
            }
        }
        Ok(())
    }
}

/// A value read from the agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SnmpValue {
    Integer(i64),
    String(String),
    Other(String),
}

impl SnmpValue {
    pub fn as_int(&self) -> Option<i64> {
        match self {
            SnmpValue::Integer(i) => Some(*i),
            _ => None,
        }
    }
}

static CONF_SEQ: AtomicU64 = AtomicU64::new(0);

/// A private config directory, removed on drop.
struct ConfDir(PathBuf);

impl ConfDir {
    fn create(target: &SnmpTarget) -> Result<ConfDir, FenceError> {
        let n = CONF_SEQ.fetch_add(1, Ordering::Relaxed);
        let dir =
            std::env::temp_dir().join(format!("tandem-fence-snmp-{}-{n}", std::process::id()));
        let io =
            |e: std::io::Error| FenceError::Config(format!("cannot write SNMP client config: {e}"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&dir)
            .map_err(io)?;
        let conf = ConfDir(dir);
        let mut text = String::new();
        match &target.auth {
            SnmpAuth::V2c { community } => {
                text.push_str(&format!("defCommunity {}\n", community.expose()));
            }
            SnmpAuth::V3 {
                user,
                auth_protocol,
                auth_password,
                priv_protocol,
                priv_password,
            } => {
                let a = match auth_protocol {
                    AuthProtocol::Md5 => "MD5",
                    AuthProtocol::Sha => "SHA",
                    AuthProtocol::Sha256 => "SHA-256",
                    AuthProtocol::Sha512 => "SHA-512",
                };
                let p = match priv_protocol {
                    PrivProtocol::Des => "DES",
                    PrivProtocol::Aes => "AES",
                };
                text.push_str(&format!(
                    "defSecurityName {user}\ndefSecurityLevel authPriv\ndefAuthType {a}\ndefPrivType {p}\ndefAuthPassphrase {}\ndefPrivPassphrase {}\n",
                    auth_password.expose(),
                    priv_password.expose()
                ));
            }
        }
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(conf.0.join("snmp.conf"))
            .map_err(io)?;
        f.write_all(text.as_bytes()).map_err(io)?;
        Ok(conf)
    }
}

impl Drop for ConfDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// net-snmp command-line client for one target.
#[derive(Debug, Clone)]
pub struct SnmpClient {
    target: SnmpTarget,
}

impl SnmpClient {
    pub fn new(target: SnmpTarget) -> Result<SnmpClient, FenceError> {
        target.validate()?;
        Ok(SnmpClient { target })
    }

    pub fn target(&self) -> &SnmpTarget {
        &self.target
    }

    fn secrets(&self) -> Vec<&Secret> {
        match &self.target.auth {
            SnmpAuth::V2c { community } => vec![community],
            SnmpAuth::V3 {
                auth_password,
                priv_password,
                ..
            } => vec![auth_password, priv_password],
        }
    }

    fn program(&self, tool: &str) -> String {
        match &self.target.tools_dir {
            Some(dir) => dir.join(tool).display().to_string(),
            None => tool.to_string(),
        }
    }

    async fn run(&self, tool: &str, mut extra: Vec<String>) -> Result<String, FenceError> {
        let t = &self.target;
        let conf = ConfDir::create(t)?;
        let timeout_s = format!("{:.3}", t.timeout.as_secs_f64().max(0.1));
        let mut args = vec![
            "-m".to_string(),
            String::new(),
            "-On".into(),
            "-Oe".into(),
            match t.auth {
                SnmpAuth::V2c { .. } => "-v2c".into(),
                SnmpAuth::V3 { .. } => "-v3".into(),
            },
            "-t".into(),
            timeout_s,
            "-r".into(),
            t.retries.to_string(),
        ];
        let host = if t.host.contains(':') {
            format!("udp6:[{}]:{}", t.host, t.port)
        } else {
            format!("udp:{}:{}", t.host, t.port)
        };
        args.push(host);
        args.append(&mut extra);
        let per = t.timeout.max(Duration::from_millis(100));
        let mut limit = per * (t.retries + 1) + Duration::from_secs(2);
        if tool == "snmpwalk" {
            limit *= 4;
        }
        let dir = conf.0.display().to_string();
        let program = self.program(tool);
        let out = Run {
            program: &program,
            args,
            env: vec![
                ("SNMPCONFPATH".into(), dir.clone()),
                ("SNMP_PERSISTENT_DIR".into(), dir),
                ("MIBS".into(), String::new()),
            ],
            stdin: None,
            timeout: limit,
        }
        .run()
        .await?;
        drop(conf);
        let secrets = self.secrets();
        let stdout = scrub(&out.stdout, &secrets);
        let stderr = scrub(&out.stderr, &secrets);
        if out.status.success() {
            Ok(stdout)
        } else {
            Err(classify(&program, &describe(out.status), &stdout, &stderr))
        }
    }

    /// GET one OID.
    pub async fn get(&self, oid: &str) -> Result<SnmpValue, FenceError> {
        let out = self.run("snmpget", vec![oid.to_string()]).await?;
        let (_, v) = parse_varbinds(&out)?
            .into_iter()
            .next()
            .ok_or_else(|| FenceError::Protocol(format!("no value for {oid}")))?;
        Ok(v)
    }

    /// GET one integer OID.
    pub async fn get_int(&self, oid: &str) -> Result<i64, FenceError> {
        match self.get(oid).await? {
            SnmpValue::Integer(i) => Ok(i),
            other => Err(FenceError::Protocol(format!(
                "{oid} is not an integer: {other:?}"
            ))),
        }
    }

    /// SET one INTEGER OID.
    pub async fn set_int(&self, oid: &str, value: i64) -> Result<(), FenceError> {
        let out = self
            .run(
                "snmpset",
                vec![oid.to_string(), "i".into(), value.to_string()],
            )
            .await?;
        match parse_varbinds(&out)?.into_iter().next() {
            Some((_, SnmpValue::Integer(v))) if v == value => Ok(()),
            Some((_, v)) => Err(FenceError::Protocol(format!(
                "SET {oid} = {value} answered {v:?}"
            ))),
            None => Err(FenceError::Protocol(format!("no answer to SET {oid}"))),
        }
    }

    /// Walk a subtree: (OID, value) in agent order.
    pub async fn walk(&self, oid: &str) -> Result<Vec<(String, SnmpValue)>, FenceError> {
        let out = self.run("snmpwalk", vec![oid.to_string()]).await?;
        parse_varbinds(&out)
    }
}

/// Classifies a failed net-snmp tool run (output already scrubbed).
fn classify(program: &str, status: &str, stdout: &str, stderr: &str) -> FenceError {
    let all = format!("{stderr}\n{stdout}");
    let message = tail(&all);
    let lower = all.to_ascii_lowercase();
    if lower.contains("authentication failure")
        || lower.contains("unknown user name")
        || lower.contains("unknown security name")
        || lower.contains("decryption error")
        || lower.contains("unsupported security level")
        || lower.contains("authorizationerror")
    {
        FenceError::Auth(message)
    } else if lower.contains("timeout") || lower.contains("no response") {
        FenceError::Unreachable(format!(
            "{message} (no answer: nothing listens, or the agent dropped the request: wrong community or v3 privacy pass phrase)"
        ))
    } else if lower.contains("no such object")
        || lower.contains("no such instance")
        || lower.contains("nosuchname")
    {
        FenceError::NoSuchPlug(message)
    } else if lower.contains("reason:") || lower.contains("error in packet") {
        FenceError::Refused(message)
    } else if lower.contains("unknown host") {
        FenceError::Unreachable(message)
    } else {
        FenceError::Tool {
            program: program.to_string(),
            status: status.to_string(),
            message,
        }
    }
}

/// Parses `-On -Oe` output lines: `.1.3.6... = INTEGER: 2`, `... = STRING: "name"`.
fn parse_varbinds(out: &str) -> Result<Vec<(String, SnmpValue)>, FenceError> {
    let mut result = Vec::new();
    for line in out.lines() {
        let line = line.trim_end();
        if line.is_empty() {
            continue;
        }
        let Some((oid, rest)) = line.split_once(" = ") else {
            // a continuation line of a multi-line string: ignore
            continue;
        };
        if !oid.starts_with('.') {
            continue;
        }
        let rest = rest.trim();
        let lower = rest.to_ascii_lowercase();
        if lower.starts_with("no such object") || lower.starts_with("no such instance") {
            return Err(FenceError::NoSuchPlug(format!("{oid}: {rest}")));
        }
        if lower.starts_with("no more variables") {
            continue;
        }
        let value = if let Some(v) = rest.strip_prefix("INTEGER:") {
            let v = v.trim();
            // -Oe prints plain numbers; tolerate "name(2)" anyway
            let digits = v
                .rsplit_once('(')
                .map(|(_, d)| d.trim_end_matches(')'))
                .unwrap_or(v);
            SnmpValue::Integer(
                digits
                    .trim()
                    .parse()
                    .map_err(|_| FenceError::Protocol(format!("{oid}: bad INTEGER {v:?}")))?,
            )
        } else if let Some(v) = rest.strip_prefix("STRING:") {
            let v = v.trim();
            let v = v
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .unwrap_or(v);
            SnmpValue::String(v.replace("\\\"", "\""))
        } else if rest == "\"\"" {
            SnmpValue::String(String::new())
        } else {
            SnmpValue::Other(rest.to_string())
        };
        result.push((oid.to_string(), value));
    }
    Ok(result)
}

/// The last arc of an OID (the table index).
pub(crate) fn last_arc(oid: &str) -> Option<u32> {
    oid.rsplit('.').next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_tool_output() {
        let v = parse_varbinds(
            ".1.3.6.1.2.1.2.2.1.7.1 = INTEGER: 1\n.1.3.6.1.2.1.31.1.1.1.1.2 = STRING: \"port2\"\n.1.3.6.1.2.1.31.1.1.1.18.2 = \"\"\n.1.3.6.1.2.1.2.2.1.7.3 = INTEGER: down(2)\n",
        )
        .unwrap();
        assert_eq!(
            v[0],
            (".1.3.6.1.2.1.2.2.1.7.1".into(), SnmpValue::Integer(1))
        );
        assert_eq!(v[1].1, SnmpValue::String("port2".into()));
        assert_eq!(v[2].1, SnmpValue::String(String::new()));
        assert_eq!(v[3].1, SnmpValue::Integer(2));
        assert_eq!(last_arc(&v[1].0), Some(2));
        assert!(matches!(
            parse_varbinds(".1.3.6.1.4.1.318.1.1.12.3.5.1.1.4.9 = No Such Instance currently exists at this OID"),
            Err(FenceError::NoSuchPlug(_))
        ));
    }

    #[test]
    fn classifies_failures() {
        assert!(matches!(
            classify(
                "snmpget",
                "exit 1",
                "",
                "snmpget: Authentication failure (incorrect password, community or key)"
            ),
            FenceError::Auth(_)
        ));
        assert!(matches!(
            classify(
                "snmpget",
                "exit 1",
                "",
                "Timeout: No Response from 127.0.0.1:1161."
            ),
            FenceError::Unreachable(_)
        ));
        assert!(matches!(
            classify(
                "snmpset",
                "exit 2",
                "",
                "Error in packet.\nReason: noAccess"
            ),
            FenceError::Refused(_)
        ));
    }

    #[test]
    fn v3_validation_and_debug() {
        let t = SnmpTarget::new(
            "127.0.0.1",
            161,
            SnmpAuth::V3 {
                user: "u".into(),
                auth_protocol: AuthProtocol::Sha,
                auth_password: Secret::new("short"),
                priv_protocol: PrivProtocol::Aes,
                priv_password: Secret::new("longenough"),
            },
        );
        let e = SnmpClient::new(t.clone()).unwrap_err();
        assert!(!e.to_string().contains("short"));
        assert!(!format!("{t:?}").contains("longenough"));
    }
}
