//! tandem's configuration: one TOML file per node, parsed and validated into a [`Config`].
//!
//! This crate only reads text and judges it. It must never touch the network or the running
//! system (no sockets, no netlink, no interface lookups, no files other than the one it is
//! asked to read): `tandem check` runs it on configs for other machines, and a reload that fails
//! here must leave the running daemon exactly as it was.
//!
//! Every problem in a file is reported at once, each as a [`Diagnostic`] with the file's
//! `line:col` of the offending value and a hint, so that one `tandem check` shows everything to
//! fix. That is why the file is parsed with `toml_edit` (which keeps every span) and walked by
//! hand instead of deserialized with serde, which stops at the first error.
//!
//! The format (see ARCHITECTURE.md, "The config users write") uses keepalived's vocabulary
//! where it has one. Durations are strings like `"100ms"` or `"1.5s"` ([`parse_duration`]).
//! This build supports `[node]` and `[[vrrp_instance]]`; the other documented sections
//! (`[cluster]`, `[[heartbeat]]`, `[[check]]`, `[[fence_device]]`, `[[fence_level]]`) are
//! refused with a message saying they are not supported yet.
//!
//! In a `[[vrrp_instance]]`, the first `virtual_ipaddress` decides the advert family (IPv4 or
//! IPv6, see [`VrrpInstance::advert_family`]). With `version = 3`, addresses of the other family
//! may follow: they are configured and removed with the others but not listed in the adverts,
//! like keepalived's `virtual_ipaddress_excluded`.

use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

mod duration;
mod position;
mod suggest;
mod tree;
mod validate;

pub use duration::{format_duration, parse_duration, DurationError};

/// Where `tandem` looks for its config when not told otherwise.
pub const DEFAULT_CONFIG_PATH: &str = "/etc/tandem/tandem.toml";
/// `[node] state_dir` when absent.
pub const DEFAULT_STATE_DIR: &str = "/var/lib/tandem";
/// `[node] control_socket` when absent.
pub const DEFAULT_CONTROL_SOCKET: &str = "/run/tandem/tandem.sock";

/// A whole, validated node config.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// The file it was read from (for messages).
    pub path: PathBuf,
    pub node: NodeConfig,
    pub vrrp_instances: Vec<VrrpInstance>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct NodeConfig {
    pub name: String,
    pub role: Role,
    /// default /var/lib/tandem
    pub state_dir: PathBuf,
    /// default /run/tandem/tandem.sock
    pub control_socket: PathBuf,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Voter,
    Arbiter,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VrrpVersion {
    V2,
    V3,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Vrrp,
}

#[derive(Clone, PartialEq, Eq)]
pub enum Authentication {
    /// auth_type = "PASS": the password, 1..=8 bytes.
    Pass(String),
}

/// Redacted: secrets never appear in logs or status output, and a `{:?}` of a config is the
/// easiest way for one to get there.
impl fmt::Debug for Authentication {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Authentication::Pass(_) => f.write_str("Pass(<redacted>)"),
        }
    }
}

/// IPv4 or IPv6.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AddressFamily {
    V4,
    V6,
}

impl AddressFamily {
    pub fn of(addr: IpAddr) -> Self {
        match addr {
            IpAddr::V4(_) => AddressFamily::V4,
            IpAddr::V6(_) => AddressFamily::V6,
        }
    }

    /// The longest prefix length of the family: 32 or 128.
    pub fn max_prefix_len(self) -> u8 {
        match self {
            AddressFamily::V4 => 32,
            AddressFamily::V6 => 128,
        }
    }
}

impl fmt::Display for AddressFamily {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AddressFamily::V4 => "IPv4",
            AddressFamily::V6 => "IPv6",
        })
    }
}

/// An address with its prefix length, e.g. `192.168.1.100/24`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpPrefix {
    pub addr: IpAddr,
    pub prefix_len: u8,
}

impl IpPrefix {
    pub fn family(&self) -> AddressFamily {
        AddressFamily::of(self.addr)
    }
}

/// `addr/prefix_len`, always with the prefix length; parses back with `FromStr`.
impl fmt::Display for IpPrefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix_len)
    }
}

/// Why a string is not an `addr` or `addr/prefix`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IpPrefixError {
    #[error("{0:?} is not an IPv4 or IPv6 address")]
    Address(String),
    #[error("prefix length {0:?} is not a number")]
    PrefixNotNumber(String),
    #[error("prefix length {len} is too long for {family} (at most {})", family.max_prefix_len())]
    PrefixTooLong { len: String, family: AddressFamily },
}

/// `"192.0.2.100/24"`, or `"192.0.2.100"` meaning a host prefix (/32, or /128 for IPv6).
impl FromStr for IpPrefix {
    type Err = IpPrefixError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (addr_text, len_text) = match s.split_once('/') {
            Some((a, l)) => (a, Some(l)),
            None => (s, None),
        };
        let addr: IpAddr = addr_text
            .parse()
            .map_err(|_| IpPrefixError::Address(addr_text.to_string()))?;
        let family = AddressFamily::of(addr);
        let prefix_len = match len_text {
            None => family.max_prefix_len(),
            Some(l) => {
                // Digits only: u32::from_str would also take "+24".
                if l.is_empty() || !l.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(IpPrefixError::PrefixNotNumber(l.to_string()));
                }
                match l.parse::<u8>() {
                    Ok(len) if len <= family.max_prefix_len() => len,
                    _ => {
                        return Err(IpPrefixError::PrefixTooLong {
                            len: l.to_string(),
                            family,
                        })
                    }
                }
            }
        };
        Ok(IpPrefix { addr, prefix_len })
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct VrrpInstance {
    pub name: String,
    pub interface: String,
    pub virtual_router_id: u8,
    pub priority: u8,
    pub version: VrrpVersion,
    pub advert_int: Duration,
    pub virtual_ipaddress: Vec<IpPrefix>,
    pub preempt: bool,
    pub preempt_delay: Duration,
    pub accept_mode: bool,
    pub mode: Mode,
    pub unicast_src_ip: Option<IpAddr>,
    pub unicast_peer: Vec<IpAddr>,
    pub authentication: Option<Authentication>,
    pub garp_master_delay: Duration,
    pub garp_master_repeat: u32,
    pub garp_master_refresh: Duration,
    pub garp_master_refresh_repeat: u32,
    pub garp_lower_prio_repeat: u32,
    pub higher_prio_send_advert: bool,
}

impl VrrpInstance {
    /// The family the adverts are sent in: that of the first virtual IP. (A validated instance
    /// always has one; an empty list, possible only when built by hand, counts as IPv4.)
    pub fn advert_family(&self) -> AddressFamily {
        self.virtual_ipaddress
            .first()
            .map_or(AddressFamily::V4, IpPrefix::family)
    }

    /// The virtual IPs listed in adverts: those of the advert family, in config order.
    pub fn advertised_addresses(&self) -> impl Iterator<Item = &IpPrefix> {
        let family = self.advert_family();
        self.virtual_ipaddress
            .iter()
            .filter(move |p| p.family() == family)
    }

    /// The virtual IPs of the other family: configured and removed with the instance but not
    /// in its adverts (keepalived's `virtual_ipaddress_excluded`). Only possible with VRRPv3.
    pub fn carried_addresses(&self) -> impl Iterator<Item = &IpPrefix> {
        let family = self.advert_family();
        self.virtual_ipaddress
            .iter()
            .filter(move |p| p.family() != family)
    }
}

/// One problem in a config file, printed as `file:line:col: message` then `  hint: ...`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub file: String,
    pub line: usize,
    pub col: usize,
    pub message: String,
    pub hint: Option<String>,
}

/// `FILE:LINE:COL: MESSAGE`, and `  hint: HINT` on a second line when there is a hint. No
/// trailing newline.
impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.file, self.line, self.col, self.message
        )?;
        if let Some(hint) = &self.hint {
            write!(f, "\n  hint: {hint}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Diagnostic {}

/// Every problem found in a file (never just the first one when more can be found).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl Diagnostics {
    pub fn iter(&self) -> std::slice::Iter<'_, Diagnostic> {
        self.0.iter()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl<'a> IntoIterator for &'a Diagnostics {
    type Item = &'a Diagnostic;
    type IntoIter = std::slice::Iter<'a, Diagnostic>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

/// Each diagnostic followed by a newline, ready for `eprint!`.
impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for d in &self.0 {
            writeln!(f, "{d}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Diagnostics {}

/// Read and validate a config file.
///
/// A file that cannot be read (missing, unreadable, not UTF-8) gives one diagnostic at 1:1.
pub fn load(path: &Path) -> Result<Config, Diagnostics> {
    match std::fs::read_to_string(path) {
        Ok(text) => parse(&text, path),
        Err(e) => Err(Diagnostics(vec![Diagnostic {
            file: path.display().to_string(),
            line: 1,
            col: 1,
            message: format!("cannot read the config: {e}"),
            hint: None,
        }])),
    }
}

/// Validate config text; `file` names it in diagnostics.
///
/// On failure the diagnostics are in file order. A TOML syntax error is a single diagnostic:
/// past it there is no tree to check.
pub fn parse(text: &str, file: &Path) -> Result<Config, Diagnostics> {
    let mut ctx = validate::Ctx::new(file, text);
    let doc = match toml_edit::ImDocument::parse(text) {
        Ok(doc) => doc,
        Err(e) => {
            // toml_edit's message is "what failed" then "expected ..." lines: the first is the
            // message, the rest make the hint.
            let mut lines = e.message().lines().filter(|l| !l.trim().is_empty());
            let message = format!(
                "TOML syntax error: {}",
                lines.next().unwrap_or("invalid TOML")
            );
            let rest: Vec<&str> = lines.collect();
            let hint = (!rest.is_empty()).then(|| rest.join("; "));
            ctx.error(e.span(), message, hint);
            return Err(Diagnostics(ctx.diags));
        }
    };
    match validate::check(doc.as_table(), &mut ctx, file) {
        Some(config) => Ok(config),
        None => {
            let mut diags = ctx.diags;
            if diags.is_empty() {
                // Every path that yields no config records why; this guards that promise
                // without panicking in the daemon.
                diags.push(Diagnostic {
                    file: file.display().to_string(),
                    line: 1,
                    col: 1,
                    message: "internal error: the config was refused without a reason".into(),
                    hint: Some("please report this as a tandem bug".into()),
                });
            }
            // Stable: diagnostics at the same position keep the order they were found in.
            diags.sort_by_key(|d| (d.line, d.col));
            Err(Diagnostics(diags))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_ok(text: &str) -> Config {
        match parse(text, Path::new("t.toml")) {
            Ok(c) => c,
            Err(d) => panic!("unexpected diagnostics:\n{d}"),
        }
    }

    fn parse_err(text: &str) -> String {
        match parse(text, Path::new("t.toml")) {
            Ok(c) => panic!("accepted: {c:?}"),
            Err(d) => d.to_string(),
        }
    }

    const MINIMAL: &str = r#"
[node]
name = "lb1"

[[vrrp_instance]]
name = "VI_1"
interface = "eth0"
virtual_router_id = 51
virtual_ipaddress = ["192.0.2.100/24"]
"#;

    #[test]
    fn minimal_config_gets_keepalived_defaults() {
        let c = parse_ok(MINIMAL);
        assert_eq!(c.path, Path::new("t.toml"));
        assert_eq!(c.node.role, Role::Voter);
        assert_eq!(c.node.state_dir, Path::new(DEFAULT_STATE_DIR));
        assert_eq!(c.node.control_socket, Path::new(DEFAULT_CONTROL_SOCKET));
        let i = &c.vrrp_instances[0];
        assert_eq!(i.priority, 100);
        assert_eq!(i.version, VrrpVersion::V3);
        assert_eq!(i.advert_int, Duration::from_secs(1));
        assert!(i.preempt);
        assert_eq!(i.preempt_delay, Duration::ZERO);
        assert!(i.accept_mode);
        assert_eq!(i.mode, Mode::Vrrp);
        assert_eq!(i.unicast_src_ip, None);
        assert!(i.unicast_peer.is_empty());
        assert_eq!(i.authentication, None);
        assert_eq!(i.garp_master_delay, Duration::from_secs(5));
        assert_eq!(i.garp_master_repeat, 5);
        assert_eq!(i.garp_master_refresh, Duration::ZERO);
        assert_eq!(i.garp_master_refresh_repeat, 1);
        assert_eq!(i.garp_lower_prio_repeat, 5);
        assert!(i.higher_prio_send_advert);
        assert_eq!(
            i.virtual_ipaddress,
            vec![IpPrefix {
                addr: "192.0.2.100".parse().unwrap(),
                prefix_len: 24
            }]
        );
    }

    #[test]
    fn host_prefix_is_the_default() {
        let c = parse_ok(
            &MINIMAL.replace(r#"["192.0.2.100/24"]"#, r#"["192.0.2.100", "2001:db8::1"]"#),
        );
        let vips = &c.vrrp_instances[0].virtual_ipaddress;
        assert_eq!(vips[0].prefix_len, 32);
        assert_eq!(vips[1].prefix_len, 128);
    }

    #[test]
    fn other_family_addresses_are_carried_not_advertised() {
        let c = parse_ok(&MINIMAL.replace(
            r#"["192.0.2.100/24"]"#,
            r#"["192.0.2.100/24", "2001:db8::100/64", "192.0.2.101/24"]"#,
        ));
        let i = &c.vrrp_instances[0];
        assert_eq!(i.advert_family(), AddressFamily::V4);
        let adv: Vec<String> = i.advertised_addresses().map(|p| p.to_string()).collect();
        let carried: Vec<String> = i.carried_addresses().map(|p| p.to_string()).collect();
        assert_eq!(adv, ["192.0.2.100/24", "192.0.2.101/24"]);
        assert_eq!(carried, ["2001:db8::100/64"]);
    }

    #[test]
    fn inline_tables_and_dotted_keys_are_the_same_config() {
        let a = parse_ok(
            r#"
node = { name = "lb1" }
vrrp_instance = [{ name = "VI_1", interface = "eth0", virtual_router_id = 1, version = 2, virtual_ipaddress = ["10.0.0.1"], authentication.auth_type = "PASS", authentication.auth_pass = "x" }]
"#,
        );
        let b = parse_ok(
            r#"
[node]
name = "lb1"
[[vrrp_instance]]
name = "VI_1"
interface = "eth0"
virtual_router_id = 1
version = 2
virtual_ipaddress = ["10.0.0.1"]
[vrrp_instance.authentication]
auth_type = "PASS"
auth_pass = "x"
"#,
        );
        assert_eq!(a, b);
        assert_eq!(
            a.vrrp_instances[0].authentication,
            Some(Authentication::Pass("x".into()))
        );
    }

    #[test]
    fn arbiter_needs_no_instance_and_may_not_have_one() {
        let c = parse_ok("[node]\nname = \"arb\"\nrole = \"arbiter\"\n");
        assert_eq!(c.node.role, Role::Arbiter);
        assert!(c.vrrp_instances.is_empty());
        let e = parse_err(&MINIMAL.replace("name = \"lb1\"", "name = \"lb1\"\nrole = \"arbiter\""));
        assert!(e.contains("an arbiter never holds a virtual IP"), "{e}");
    }

    #[test]
    fn a_voter_needs_an_instance() {
        let e = parse_err("[node]\nname = \"lb1\"\n");
        assert_eq!(
            e,
            "t.toml:1:1: no [[vrrp_instance]]: a voter needs at least one\n  hint: add \
             [[vrrp_instance]] with name, interface, virtual_router_id and virtual_ipaddress\n"
        );
    }

    #[test]
    fn unreadable_file_is_one_diagnostic_at_1_1() {
        let d = load(Path::new("/nonexistent/tandem.toml")).unwrap_err();
        assert_eq!(d.len(), 1);
        assert_eq!((d.0[0].line, d.0[0].col), (1, 1));
        assert!(d.0[0].message.starts_with("cannot read the config: "));
        assert_eq!(d.0[0].file, "/nonexistent/tandem.toml");
    }

    #[test]
    fn not_utf8_is_one_diagnostic() {
        let path = std::env::temp_dir().join(format!("tandem-config-{}.toml", std::process::id()));
        std::fs::write(&path, b"[node]\nname = \"\xff\"\n").unwrap();
        let d = load(&path).unwrap_err();
        std::fs::remove_file(&path).unwrap();
        assert_eq!(d.len(), 1);
        assert!(d.0[0].message.contains("UTF-8"), "{d}");
    }

    #[test]
    fn column_counts_characters_after_multibyte_text() {
        // "Zürich" has a 2-byte "ü": the bad value starts at character 25, byte 26.
        let text = MINIMAL.replace("name = \"lb1\"", "name = \"lb1\" # Zürich ✓\nrole = 5");
        let d = parse(&text, Path::new("t.toml")).unwrap_err();
        assert_eq!(d.0[0].message, "role: expected a string, found an integer");
        assert_eq!((d.0[0].line, d.0[0].col), (4, 8));
        let text = MINIMAL.replace("\"VI_1\"", "\"VI_ü\"");
        let d = parse(&text, Path::new("t.toml")).unwrap_err();
        assert_eq!((d.0[0].line, d.0[0].col), (6, 8));
        let text = "[node]\nname = \"Zürich\"; x\n";
        let d = parse(text, Path::new("t.toml")).unwrap_err();
        // The stray ';' is the 16th character but the 17th byte of its line.
        assert_eq!((d.0[0].line, d.0[0].col), (2, 16), "{d}");
    }

    #[test]
    fn display_formats() {
        let d = Diagnostic {
            file: "a.toml".into(),
            line: 3,
            col: 7,
            message: "m".into(),
            hint: Some("h".into()),
        };
        assert_eq!(d.to_string(), "a.toml:3:7: m\n  hint: h");
        let e = Diagnostic {
            hint: None,
            ..d.clone()
        };
        assert_eq!(e.to_string(), "a.toml:3:7: m");
        assert_eq!(
            Diagnostics(vec![d, e]).to_string(),
            "a.toml:3:7: m\n  hint: h\na.toml:3:7: m\n"
        );
    }

    #[test]
    fn ip_prefix_parses_and_displays() {
        let p: IpPrefix = "192.0.2.1/24".parse().unwrap();
        assert_eq!(p.to_string(), "192.0.2.1/24");
        assert_eq!(
            "fd00::1".parse::<IpPrefix>().unwrap().to_string(),
            "fd00::1/128"
        );
        assert_eq!(
            "10.0.0.1/33".parse::<IpPrefix>(),
            Err(IpPrefixError::PrefixTooLong {
                len: "33".into(),
                family: AddressFamily::V4
            })
        );
        assert_eq!(
            "10.0.0.1/+3".parse::<IpPrefix>(),
            Err(IpPrefixError::PrefixNotNumber("+3".into()))
        );
        assert_eq!(
            "10.0.0.1/99999999999"
                .parse::<IpPrefix>()
                .unwrap_err()
                .to_string(),
            "prefix length 99999999999 is too long for IPv4 (at most 32)"
        );
        assert!("fe80::1%eth0".parse::<IpPrefix>().is_err());
    }

    /// Rules not covered by a fixture of their own: each line adds keys to MINIMAL's instance
    /// and expects one diagnostic containing the given text.
    #[test]
    fn instance_rules() {
        let cases: &[(&str, &str)] = &[
            (
                "advert_int = \"5ms\"",
                "5ms is out of range for VRRPv3 (10ms to 40.95s)",
            ),
            ("advert_int = \"41s\"", "41s is out of range for VRRPv3"),
            ("advert_int = \"0s\"", "0s is out of range for VRRPv3"),
            (
                "version = 2\nadvert_int = \"0s\"",
                "0s is out of range for VRRPv2 (1s to 255s)",
            ),
            (
                "version = 2\nadvert_int = \"256s\"",
                "out of range for VRRPv2",
            ),
            ("version = 4", "version: must be 2 or 3, found 4"),
            ("priority = 256", "priority: must be 1 to 255, found 256"),
            (
                "preempt_delay = \"1001s\"",
                "longer than the maximum of 1000s",
            ),
            ("garp_master_refresh = \"100ms\"", "is too frequent"),
            (
                "garp_master_repeat = 0",
                "garp_master_repeat: must be 1 to 255, found 0",
            ),
            ("garp_lower_prio_repeat = 256", "must be 0 to 255"),
            ("mode = \"vrp\"", "did you mean \"vrrp\"?"),
            (
                "unicast_peer = [\"10.0.0.1\"]\nunicast_src_ip = \"10.0.0.1\"",
                "is this node's own unicast_src_ip",
            ),
            (
                "unicast_src_ip = \"192.0.2.100\"",
                "is one of this instance's virtual IPs",
            ),
            (
                "unicast_peer = [\"224.0.0.18\"]",
                "cannot be a unicast address",
            ),
            (
                "fence_on_takeover = true",
                "is not supported by this build yet",
            ),
            (
                "version = 2\nauthentication = { auth_type = \"pass\", auth_pass = \"x\" }",
                "did you mean \"PASS\"?",
            ),
            (
                "version = 2\nauthentication = { auth_type = \"PASS\", auth_pass = \"\" }",
                "auth_pass: must not be empty",
            ),
            (
                "version = 2\nauthentication = \"PASS\"",
                "authentication: expected a table, found a string",
            ),
            (
                "advert_int = 1.5",
                "expected a duration string, found a float",
            ),
        ];
        for (extra, want) in cases {
            let text = MINIMAL.replace(
                "virtual_router_id = 51",
                &format!("virtual_router_id = 51\n{extra}"),
            );
            let got = parse_err(&text);
            assert!(got.contains(want), "{extra:?}: wanted {want:?} in\n{got}");
            assert_eq!(
                got.matches("t.toml:").count(),
                1,
                "{extra:?}: one diagnostic\n{got}"
            );
        }
    }

    #[test]
    fn value_rules() {
        let cases: &[(&str, &str, &str)] = &[
            ("\"192.0.2.100/24\"", "\"127.0.0.1\"", "a loopback address"),
            (
                "\"192.0.2.100/24\"",
                "\"0.0.0.0\"",
                "the unspecified address",
            ),
            ("\"192.0.2.100/24\"", "\"ff02::1\"", "a multicast address"),
            (
                "\"192.0.2.100/24\"",
                "\"255.255.255.255\"",
                "the broadcast address",
            ),
            (
                "\"192.0.2.100/24\"",
                "\"2001:db8::1/129\"",
                "too long for IPv6 (at most 128)",
            ),
            (
                "\"192.0.2.100/24\"",
                "\"10.0.0.1/x\"",
                "prefix length \"x\" is not a number",
            ),
            (
                "\"192.0.2.100/24\"",
                "5",
                "virtual_ipaddress: expected a string, found an integer",
            ),
            ("\"eth0\"", "\"eth0:1\"", "contains \":\""),
            ("\"eth0\"", "\"..\"", "not a valid interface name"),
            ("\"eth0\"", "\"\"", "interface: must not be empty"),
            ("\"VI_1\"", "\"VI 1\"", "contains \" \""),
        ];
        for (from, to, want) in cases {
            let text = MINIMAL.replacen(from, to, 1);
            assert_ne!(text, MINIMAL);
            let got = parse_err(&text);
            assert!(got.contains(want), "{to}: wanted {want:?} in\n{got}");
        }
        // 15 bytes is the longest interface name Linux takes.
        parse_ok(&MINIMAL.replace("\"eth0\"", "\"abcdefghijklmno\""));
    }

    #[test]
    fn node_rules() {
        let long = format!("/run/{}.sock", "x".repeat(100));
        let cases: &[(&str, &str)] = &[
            ("role = \"arbitre\"", "did you mean \"arbiter\"?"),
            (
                &format!("control_socket = \"{long}\""),
                "longer than a Unix socket path can be (107)",
            ),
            (
                "control_socket = \"tandem.sock\"",
                "control_socket: must be an absolute path",
            ),
            ("nmae = \"x\"", "did you mean \"name\"?"),
        ];
        for (extra, want) in cases {
            let text = MINIMAL.replace("name = \"lb1\"", &format!("name = \"lb1\"\n{extra}"));
            let got = parse_err(&text);
            assert!(got.contains(want), "{extra:?}: wanted {want:?} in\n{got}");
        }
        let got = parse_err(&MINIMAL.replace("[node]\nname = \"lb1\"", "node = \"lb1\""));
        assert!(
            got.contains("node: expected a table, found a string"),
            "{got}"
        );
        let got = parse_err(&MINIMAL.replace("name = \"lb1\"", "name = \"\""));
        assert!(got.contains("name: must not be empty"), "{got}");
    }

    #[test]
    fn same_vrid_is_fine_on_another_interface() {
        let second = MINIMAL
            .split("[[vrrp_instance]]")
            .nth(1)
            .unwrap()
            .replace("VI_1", "VI_2")
            .replace("eth0", "eth1")
            .replace("192.0.2.100", "192.0.2.200");
        let c = parse_ok(&format!("{MINIMAL}\n[[vrrp_instance]]{second}"));
        assert_eq!(c.vrrp_instances.len(), 2);
        assert_eq!(c.vrrp_instances[1].interface, "eth1");
    }

    #[test]
    fn top_level_strays() {
        let got = parse_err(&format!("prority = 1\n{MINIMAL}"));
        assert!(
            got.starts_with("t.toml:1:1: unknown key \"prority\" at the top level"),
            "{got}"
        );
        let got = parse_err(&MINIMAL.replace("[node]", "[nod]"));
        assert!(
            got.contains("unknown section [nod]\n  hint: did you mean [node]?"),
            "{got}"
        );
        assert!(!got.contains("missing [node] section"), "{got}");
        // A key after a [[table]] belongs to that table, however it is indented.
        let got = parse_err(&format!("{MINIMAL}\nvrrp_instance = 3"));
        assert!(
            got.contains("unknown key \"vrrp_instance\" in [[vrrp_instance]]"),
            "{got}"
        );
    }

    #[test]
    fn syntax_error_keeps_the_parser_detail_as_hint() {
        let d = parse("[node\nname = \"x\"\n", Path::new("t.toml")).unwrap_err();
        assert_eq!(d.len(), 1);
        let d = &d.0[0];
        assert_eq!((d.line, d.col), (1, 6));
        assert_eq!(d.message, "TOML syntax error: invalid table header");
        assert!(
            d.hint.as_deref().unwrap_or("").starts_with("expected"),
            "{d}"
        );
    }

    #[test]
    fn password_is_not_in_debug_output() {
        let a = Authentication::Pass("s3cret".into());
        assert!(!format!("{a:?}").contains("s3cret"));
    }
}
