//! `ipmi` driver: chassis power over IPMI v2.0 LAN (RMCP+, "lanplus"), by driving
//! `ipmitool`.
//!
//! Why ipmitool and not a Rust RMCP+ client: the crates on crates.io were checked (Nov 2026).
//! `rust-ipmi` 0.1.1 (Jan 2024) describes itself as a hobby project "NOT meant for production
//! use" and points to ipmitool; `ipmi` 0.1.x is a very young single-author crate that
//! implements only HMAC-SHA1 / AES-CBC-128 (cipher suite 3) and has no track record against
//! real BMCs. ipmitool is what fence_ipmilan uses, it speaks every cipher suite, and it is
//! verified against OpenIPMI's `ipmi_sim` in this project's fixtures. Revisit when a
//! maintained client exists.
//!
//! How it is driven: `ipmitool -I lanplus -C <cipher> -L <privilege> -N <secs> -R <retries>
//! -H <host> -p <port> -U <user> -E -v chassis power status|off|on|cycle`. The password goes
//! through the `IPMI_PASSWORD` environment variable (`-E`), never on the command line. `-v`
//! makes ipmitool say *why* a session failed ("RAKP 2 HMAC is invalid" = wrong password,
//! "unauthorized name" = unknown user, no answer to Get Channel Authentication Capabilities =
//! unreachable), which becomes a typed [`FenceError`]. Always give a cipher suite (default 3):
//! without `-C`, ipmitool first asks for the suite list, which some BMCs (ipmi_sim among them)
//! drop, and every call then takes about 10 s.

use std::fmt;
use std::time::Duration;

use crate::driver::{FenceDriver, FenceError, Plug, PowerState};
use crate::exec::{describe, tail, Run};
use crate::secret::{scrub, Secret};

/// The privilege level the session asks for (`-L`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Privilege {
    Callback,
    User,
    Operator,
    #[default]
    Administrator,
}

impl Privilege {
    fn as_arg(self) -> &'static str {
        match self {
            Privilege::Callback => "CALLBACK",
            Privilege::User => "USER",
            Privilege::Operator => "OPERATOR",
            Privilege::Administrator => "ADMINISTRATOR",
        }
    }
}

/// Parameters of one BMC.
#[derive(Clone)]
pub struct IpmiConfig {
    pub host: String,
    /// UDP port (623).
    pub port: u16,
    pub username: String,
    pub password: Secret,
    /// RMCP+ cipher suite (`-C`, default 3 = HMAC-SHA1 / HMAC-SHA1-96 / AES-CBC-128).
    pub cipher_suite: u8,
    /// Requested privilege (`-L`, default ADMINISTRATOR).
    pub privilege: Privilege,
    /// Seconds ipmitool waits for each answer before retransmitting (`-N`, at least 1 s).
    pub timeout: Duration,
    /// Retransmissions (`-R`).
    pub retries: u32,
    /// The ipmitool binary (default "ipmitool" from PATH).
    pub program: String,
}

impl IpmiConfig {
    /// A BMC at `host:port` with the defaults: cipher 3, ADMINISTRATOR, 2 s, 1 retry.
    pub fn new(
        host: impl Into<String>,
        port: u16,
        username: impl Into<String>,
        password: Secret,
    ) -> IpmiConfig {
        IpmiConfig {
            host: host.into(),
            port,
            username: username.into(),
            password,
            cipher_suite: 3,
            privilege: Privilege::Administrator,
            timeout: Duration::from_secs(2),
            retries: 1,
            program: "ipmitool".into(),
        }
    }
}

impl fmt::Debug for IpmiConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IpmiConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("username", &self.username)
            .field("password", &self.password)
            .field("cipher_suite", &self.cipher_suite)
            .field("privilege", &self.privilege)
            .field("timeout", &self.timeout)
            .field("retries", &self.retries)
            .finish()
    }
}

/// The `ipmi` driver.
#[derive(Debug, Clone)]
pub struct IpmiDriver {
    config: IpmiConfig,
}

impl IpmiDriver {
    pub fn new(config: IpmiConfig) -> Result<IpmiDriver, FenceError> {
        if config.host.is_empty() || config.host.starts_with('-') {
            return Err(FenceError::Config(format!(
                "bad BMC host {:?}",
                config.host
            )));
        }
        if config.username.starts_with('-') || config.username.contains('\0') {
            return Err(FenceError::Config("bad BMC username".into()));
        }
        if config.cipher_suite > 17 {
            return Err(FenceError::Config(format!(
                "cipher suite {} out of range 0-17",
                config.cipher_suite
            )));
        }
        Ok(IpmiDriver { config })
    }

    fn args(&self, power_op: &str) -> Vec<String> {
        let c = &self.config;
        let secs = c.timeout.as_secs().max(1);
        vec![
            "-I".into(),
            "lanplus".into(),
            "-C".into(),
            c.cipher_suite.to_string(),
            "-L".into(),
            c.privilege.as_arg().into(),
            "-N".into(),
            secs.to_string(),
            "-R".into(),
            c.retries.to_string(),
            "-H".into(),
            c.host.clone(),
            "-p".into(),
            c.port.to_string(),
            "-U".into(),
            c.username.clone(),
            "-E".into(),
            "-v".into(),
            "chassis".into(),
            "power".into(),
            power_op.into(),
        ]
    }

    /// Hard limit for one ipmitool run: every retransmission plus session set-up slack.
    fn run_limit(&self) -> Duration {
        let per = self.config.timeout.max(Duration::from_secs(1));
        per * (self.config.retries + 1) * 2 + Duration::from_secs(2)
    }

    async fn ipmitool(&self, power_op: &str) -> Result<String, FenceError> {
        let c = &self.config;
        let out = Run {
            program: &c.program,
            args: self.args(power_op),
            env: vec![("IPMI_PASSWORD".into(), c.password.expose().to_string())],
            stdin: None,
            timeout: self.run_limit(),
        }
        .run()
        .await?;
        let secrets = [&c.password];
        let stdout = scrub(&out.stdout, &secrets);
        let stderr = scrub(&out.stderr, &secrets);
        if out.status.success() {
            Ok(stdout)
        } else {
            Err(classify(
                &c.program,
                &describe(out.status),
                &stdout,
                &stderr,
            ))
        }
    }

    async fn control(&self, power_op: &str, expect: &[&str]) -> Result<(), FenceError> {
        let stdout = self.ipmitool(power_op).await?;
        parse_control(&stdout, expect)
    }
}

/// Turns a failed ipmitool run into a typed error (output already scrubbed).
fn classify(program: &str, status: &str, stdout: &str, stderr: &str) -> FenceError {
    let all = format!("{stderr}\n{stdout}");
    let lower = all.to_ascii_lowercase();
    let auth_markers = [
        "rakp 2 hmac is invalid",
        "unauthorized name",
        "invalid user name",
        "insufficient resources for session",
        "invalid session id",
        "set session privilege level",
        "requested privilege level exceeds",
        "unsupported cipher suite id",
        "invalid role",
        "password",
    ];
    let unreachable_markers = [
        "get auth capabilities error",
        "error issuing get channel authentication capabilities",
        "no response",
        "address lookup",
        "connection refused",
        "unable to establish lan session",
    ];
    let message = tail(&all);
    if auth_markers.iter().any(|m| lower.contains(m)) {
        FenceError::Auth(message)
    } else if unreachable_markers.iter().any(|m| lower.contains(m)) {
        FenceError::Unreachable(message)
    } else {
        FenceError::Tool {
            program: program.to_string(),
            status: status.to_string(),
            message,
        }
    }
}

/// "Chassis Power is on|off" anywhere in the output (ipmitool's wording since 1.8).
fn parse_status(stdout: &str) -> Result<PowerState, FenceError> {
    for line in stdout.lines() {
        let l = line.trim().to_ascii_lowercase();
        if let Some(rest) = l.strip_prefix("chassis power is ") {
            return match rest.trim() {
                "on" => Ok(PowerState::On),
                "off" => Ok(PowerState::Off),
                other => Err(FenceError::Protocol(format!("power state {other:?}"))),
            };
        }
    }
    Err(FenceError::Protocol(format!(
        "no \"Chassis Power is\" line in ipmitool output: {}",
        tail(stdout)
    )))
}

/// "Chassis Power Control: Down/Off" (or Up/On, Cycle): the BMC accepted the command.
fn parse_control(stdout: &str, expect: &[&str]) -> Result<(), FenceError> {
    for line in stdout.lines() {
        let l = line.trim().to_ascii_lowercase();
        if let Some(rest) = l.strip_prefix("chassis power control:") {
            let rest = rest.trim();
            if expect.contains(&rest) {
                return Ok(());
            }
            return Err(FenceError::Protocol(format!("BMC answered {rest:?}")));
        }
    }
    Err(FenceError::Protocol(format!(
        "no \"Chassis Power Control\" line in ipmitool output: {}",
        tail(stdout)
    )))
}

impl FenceDriver for IpmiDriver {
    async fn off(&self) -> Result<(), FenceError> {
        self.control("off", &["down/off"]).await
    }

    async fn on(&self) -> Result<(), FenceError> {
        self.control("on", &["up/on"]).await
    }

    /// `power cycle`, or `power on` when the chassis is off (many BMCs refuse a cycle then).
    async fn reboot(&self) -> Result<(), FenceError> {
        match self.status().await? {
            PowerState::On => self.control("cycle", &["cycle"]).await,
            PowerState::Off => self.on().await,
        }
    }

    async fn status(&self) -> Result<PowerState, FenceError> {
        parse_status(&self.ipmitool("status").await?)
    }

    async fn list(&self) -> Result<Vec<Plug>, FenceError> {
        self.status().await?;
        Ok(vec![Plug {
            id: "chassis".into(),
            name: format!("{}:{}", self.config.host, self.config.port),
        }])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_ipmitool_output() {
        assert_eq!(
            parse_status("Chassis Power is on\n").unwrap(),
            PowerState::On
        );
        assert_eq!(
            parse_status("Discovered IPMB address 0x0\nChassis Power is off\n").unwrap(),
            PowerState::Off
        );
        assert!(matches!(
            parse_status("Chassis Power is weird"),
            Err(FenceError::Protocol(_))
        ));
        assert!(matches!(parse_status(""), Err(FenceError::Protocol(_))));
        parse_control("Chassis Power Control: Down/Off\n", &["down/off"]).unwrap();
        parse_control("  chassis power control: Up/On", &["up/on"]).unwrap();
        assert!(parse_control("Chassis Power Control: Up/On", &["down/off"]).is_err());
    }

    #[test]
    fn classifies_failures() {
        let e = classify(
            "ipmitool",
            "exit 1",
            "",
            "> RAKP 2 HMAC is invalid\nError: Unable to establish IPMI v2 / RMCP+ session",
        );
        assert!(matches!(e, FenceError::Auth(_)), "{e:?}");
        let e = classify(
            "ipmitool",
            "exit 1",
            "",
            "RAKP 2 message indicates an error : unauthorized name",
        );
        assert!(matches!(e, FenceError::Auth(_)));
        let e = classify("ipmitool", "exit 1", "", "Get Auth Capabilities error\nError issuing Get Channel Authentication Capabilities request");
        assert!(matches!(e, FenceError::Unreachable(_)), "{e:?}");
        let e = classify("ipmitool", "exit 1", "", "something else");
        assert!(matches!(e, FenceError::Tool { .. }));
    }

    #[test]
    fn password_never_in_args_or_debug() {
        let d = IpmiDriver::new(IpmiConfig::new(
            "127.0.0.1",
            623,
            "admin",
            Secret::new("pw-xyz"),
        ))
        .unwrap();
        assert!(d.args("status").iter().all(|a| !a.contains("pw-xyz")));
        assert!(d.args("status").contains(&"-E".to_string()));
        assert!(!format!("{d:?}").contains("pw-xyz"));
        assert!(IpmiDriver::new(IpmiConfig::new("-oops", 623, "admin", Secret::new("x"))).is_err());
    }
}
