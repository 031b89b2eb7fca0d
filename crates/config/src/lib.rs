//! API CONTRACT for the daemon (bodies to be written).
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

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

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Authentication {
    /// auth_type = "PASS": the password, 1..=8 bytes.
    Pass(String),
}

/// An address with its prefix length, e.g. `192.168.1.100/24`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpPrefix {
    pub addr: IpAddr,
    pub prefix_len: u8,
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

/// One problem in a config file, printed as `file:line:col: message` then `  hint: ...`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub file: String,
    pub line: usize,
    pub col: usize,
    pub message: String,
    pub hint: Option<String>,
}

/// Every problem found in a file (never just the first one when more can be found).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostics(pub Vec<Diagnostic>);

/// Read and validate a config file.
pub fn load(path: &Path) -> Result<Config, Diagnostics> {
    let _ = path;
    unimplemented!()
}

/// Validate config text; `file` names it in diagnostics.
pub fn parse(text: &str, file: &Path) -> Result<Config, Diagnostics> {
    let _ = (text, file);
    unimplemented!()
}
