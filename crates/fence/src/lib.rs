//! tandem's fencing (STONITH): drivers that switch a node off and on, and a topology that
//! tries a node's fencing levels in order and accepts only a fence it has verified.
//!
//! Role: for a node the cluster decided to fence, run `off` / `on` / `reboot` through the
//! node's [`FenceTopology`] and return a [`FenceReport`] with every attempt, outcome and reason.
//! *When* to fence (fence races, `fence_on_takeover`, recording the result in the Raft log) is
//! the daemon's policy, not this crate's.
//!
//! Layers:
//! * [`driver`]: the [`FenceDriver`] interface (`off`, `on`, `reboot`, `status`, `list`), typed
//!   [`PowerState`] / [`Plug`] / [`FenceError`] results, and [`Driver`], any of:
//!   * [`ipmi`]: IPMI v2.0 RMCP+ chassis power, through `ipmitool`;
//!   * [`pdu`]: switched-PDU outlets over SNMP v2c / v3 authPriv, per-model OID tables
//!     (APC PowerNet-MIB first);
//!   * [`switch`]: switch ports by IF-MIB `ifAdminStatus`;
//!   * [`agent`]: any fence-agents program through its stdin `key=value` protocol.
//! * [`snmp`]: the net-snmp client the two SNMP drivers share.
//! * [`topology`]: levels, per-device timeout and retries, read-back verification.
//! * [`secret`]: [`Secret`] values from files or the environment, printed as `<redacted>`.
//!
//! Must never:
//! * report a node as fenced unless its state was read back as wanted (a device that answers
//!   "done" without acting fails its level);
//! * let a secret reach a log line, an error, a `Debug` / `Display` output or a command line
//!   (secrets go to helpers through the environment, stdin or a 0600 file, and every piece of
//!   helper output is scrubbed of them before it is used);
//! * hang: every helper run has a hard timeout after which its whole process group is killed,
//!   and nothing of that group outlives the request;
//! * panic on a device's answer, however malformed.

#![forbid(unsafe_code)]

pub mod agent;
pub mod driver;
mod exec;
pub mod ipmi;
pub mod pdu;
pub mod secret;
pub mod snmp;
pub mod switch;
pub mod topology;

pub use crate::agent::{FenceAgentConfig, FenceAgentDriver};
pub use crate::driver::{Driver, FenceDriver, FenceError, Plug, PowerState};
pub use crate::ipmi::{IpmiConfig, IpmiDriver, Privilege};
pub use crate::pdu::{OutletRef, PduModel, PduSnmpConfig, PduSnmpDriver};
pub use crate::secret::{scrub, Secret, SecretError, SecretSource, REDACTED};
pub use crate::snmp::{AuthProtocol, PrivProtocol, SnmpAuth, SnmpTarget};
pub use crate::switch::{PortRef, SwitchSnmpConfig, SwitchSnmpDriver};
pub use crate::topology::{
    Attempt, AttemptOutcome, DeviceReport, FenceAction, FenceDevice, FenceLevel, FenceReport,
    FenceTopology, LevelReport,
};
