//! The driver interface every fencing device implements, and its typed results.

use std::fmt;
use std::future::Future;
use std::time::Duration;

/// Power (or, for a switch port, admin link) state read back from a device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PowerState {
    On,
    Off,
}

impl fmt::Display for PowerState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PowerState::On => "on",
            PowerState::Off => "off",
        })
    }
}

/// One outlet / port / chassis a device controls, as `list` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plug {
    /// What addresses it (outlet number, ifIndex, fence-agent plug id).
    pub id: String,
    /// Its name or alias on the device ("" when it has none).
    pub name: String,
}

/// Why a device action failed. Every message has been scrubbed of the device's secrets.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FenceError {
    /// The device answered and refused the credentials.
    #[error("authentication failed: {0}")]
    Auth(String),
    /// No answer (nothing listens, network down; for SNMP also a wrong community or v3
    /// privacy password, which the agent drops silently).
    #[error("device unreachable: {0}")]
    Unreachable(String),
    /// The action (one tool run, or the whole attempt) did not finish in time.
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    /// The device answered with an error (read-only community, no such object, ...).
    #[error("device refused the request: {0}")]
    Refused(String),
    /// The outlet / port to act on does not exist on the device.
    #[error("no such outlet or port: {0}")]
    NoSuchPlug(String),
    /// The tool or device answered something we cannot interpret.
    #[error("unexpected answer: {0}")]
    Protocol(String),
    /// A helper program failed for a reason not classified above.
    #[error("{program} failed ({status}): {message}")]
    Tool {
        program: String,
        status: String,
        message: String,
    },
    /// A helper program could not be started (not installed?).
    #[error("cannot run {program}: {reason}")]
    Spawn { program: String, reason: String },
    /// The device's parameters are not usable.
    #[error("bad device parameters: {0}")]
    Config(String),
}

/// A fencing device driver. Every method talks to the device once (with the driver's own
/// tool timeout and retransmissions) and reports what the device said; verifying that an
/// action took effect is the topology's job ([`crate::topology`]), which reads
/// [`FenceDriver::status`] back.
pub trait FenceDriver: Send + Sync {
    /// Switch the target off (power off, outlet off, port admin-down).
    fn off(&self) -> impl Future<Output = Result<(), FenceError>> + Send;
    /// Switch the target on.
    fn on(&self) -> impl Future<Output = Result<(), FenceError>> + Send;
    /// Power-cycle the target (the device's own reboot where it has one).
    fn reboot(&self) -> impl Future<Output = Result<(), FenceError>> + Send;
    /// Read the target's current state.
    fn status(&self) -> impl Future<Output = Result<PowerState, FenceError>> + Send;
    /// What the device can control.
    fn list(&self) -> impl Future<Output = Result<Vec<Plug>, FenceError>> + Send;
}

/// Any of tandem's drivers, so a topology can hold devices of different kinds.
#[derive(Debug, Clone)]
pub enum Driver {
    Ipmi(crate::ipmi::IpmiDriver),
    PduSnmp(crate::pdu::PduSnmpDriver),
    SwitchSnmp(crate::switch::SwitchSnmpDriver),
    FenceAgent(crate::agent::FenceAgentDriver),
}

impl Driver {
    /// The config name of the driver kind: "ipmi", "pdu-snmp", "switch-snmp", "fence-agent".
    pub fn kind(&self) -> &'static str {
        match self {
            Driver::Ipmi(_) => "ipmi",
            Driver::PduSnmp(_) => "pdu-snmp",
            Driver::SwitchSnmp(_) => "switch-snmp",
            Driver::FenceAgent(_) => "fence-agent",
        }
    }
}

macro_rules! dispatch {
    ($self:ident, $method:ident) => {
        match $self {
            Driver::Ipmi(d) => d.$method().await,
            Driver::PduSnmp(d) => d.$method().await,
            Driver::SwitchSnmp(d) => d.$method().await,
            Driver::FenceAgent(d) => d.$method().await,
        }
    };
}

impl FenceDriver for Driver {
    async fn off(&self) -> Result<(), FenceError> {
        dispatch!(self, off)
    }
    async fn on(&self) -> Result<(), FenceError> {
        dispatch!(self, on)
    }
    async fn reboot(&self) -> Result<(), FenceError> {
        dispatch!(self, reboot)
    }
    async fn status(&self) -> Result<PowerState, FenceError> {
        dispatch!(self, status)
    }
    async fn list(&self) -> Result<Vec<Plug>, FenceError> {
        dispatch!(self, list)
    }
}
