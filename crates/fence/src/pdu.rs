//! `pdu-snmp` driver: one outlet of a switched PDU over SNMP (v2c or v3 authPriv).
//!
//! What to read and write is a [`PduModel`] table entry (state OID and values, command OID
//! and values, outlet-name OID), so another vendor is one more entry in [`MODELS`]. The first
//! entries are APC's PowerNet-MIB (the rPDU tables of switched rack PDUs and the older
//! MasterSwitch sPDU table), with the values fence_apc_snmp uses.

use std::time::Duration;

use crate::driver::{FenceDriver, FenceError, Plug, PowerState};
use crate::snmp::{last_arc, SnmpClient, SnmpTarget, SnmpValue};

/// OIDs and values of one PDU family. Table OIDs are given without the outlet index, which
/// is appended (`<oid>.<n>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PduModel {
    /// Config name ("apc-rpdu").
    pub name: &'static str,
    /// Outlet state column (read).
    pub state_oid: &'static str,
    pub state_on: i64,
    pub state_off: i64,
    /// Outlet command column (INTEGER write).
    pub command_oid: &'static str,
    pub command_on: i64,
    pub command_off: i64,
    /// The device's own power-cycle command, if it has one.
    pub command_reboot: Option<i64>,
    /// Outlet name column (walked for `list` and to resolve an outlet by name).
    pub name_oid: &'static str,
}

/// APC switched rack PDU (PowerNet-MIB rPDUOutletControlTable / rPDUOutletStatusTable;
/// sysObjectID .1.3.6.1.4.1.318.1.3.4.x).
pub const APC_RPDU: PduModel = PduModel {
    name: "apc-rpdu",
    // rPDUOutletStatusOutletState: outletStatusOn(1), outletStatusOff(2)
    state_oid: ".1.3.6.1.4.1.318.1.1.12.3.5.1.1.4",
    state_on: 1,
    state_off: 2,
    // rPDUOutletControlOutletCommand: immediateOn(1), immediateOff(2), immediateReboot(3)
    command_oid: ".1.3.6.1.4.1.318.1.1.12.3.3.1.1.4",
    command_on: 1,
    command_off: 2,
    command_reboot: Some(3),
    // rPDUOutletStatusOutletName
    name_oid: ".1.3.6.1.4.1.318.1.1.12.3.5.1.1.2",
};

/// APC MasterSwitch (PowerNet-MIB sPDUOutletControlTable): one column is read and written.
pub const APC_MASTERSWITCH: PduModel = PduModel {
    name: "apc-masterswitch",
    // sPDUOutletCtl: outletOn(1), outletOff(2), outletReboot(3)
    state_oid: ".1.3.6.1.4.1.318.1.1.4.4.2.1.3",
    state_on: 1,
    state_off: 2,
    command_oid: ".1.3.6.1.4.1.318.1.1.4.4.2.1.3",
    command_on: 1,
    command_off: 2,
    command_reboot: Some(3),
    // sPDUOutletCtlName
    name_oid: ".1.3.6.1.4.1.318.1.1.4.4.2.1.4",
};

/// Every known PDU model.
pub const MODELS: &[PduModel] = &[APC_RPDU, APC_MASTERSWITCH];

/// Looks a model up by its config name.
pub fn model(name: &str) -> Option<&'static PduModel> {
    MODELS.iter().find(|m| m.name == name)
}

/// Which outlet: its number, or its name on the PDU (resolved by walking the name column).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutletRef {
    Index(u32),
    Name(String),
}

/// Parameters of one PDU outlet.
#[derive(Debug, Clone)]
pub struct PduSnmpConfig {
    pub target: SnmpTarget,
    pub model: &'static PduModel,
    pub outlet: OutletRef,
    /// Used when the model has no reboot command: time between off and on.
    pub reboot_off_time: Duration,
}

/// The `pdu-snmp` driver.
#[derive(Debug, Clone)]
pub struct PduSnmpDriver {
    client: SnmpClient,
    model: &'static PduModel,
    outlet: OutletRef,
    reboot_off_time: Duration,
}

impl PduSnmpDriver {
    pub fn new(config: PduSnmpConfig) -> Result<PduSnmpDriver, FenceError> {
        if let OutletRef::Index(0) = config.outlet {
            return Err(FenceError::Config("outlet numbers start at 1".into()));
        }
        Ok(PduSnmpDriver {
            client: SnmpClient::new(config.target)?,
            model: config.model,
            outlet: config.outlet,
            reboot_off_time: config.reboot_off_time,
        })
    }

    async fn index(&self) -> Result<u32, FenceError> {
        match &self.outlet {
            OutletRef::Index(n) => Ok(*n),
            OutletRef::Name(name) => {
                for (oid, value) in self.client.walk(self.model.name_oid).await? {
                    if matches!(&value, SnmpValue::String(s) if s == name) {
                        if let Some(n) = last_arc(&oid) {
                            return Ok(n);
                        }
                    }
                }
                Err(FenceError::NoSuchPlug(format!("no outlet named {name:?}")))
            }
        }
    }

    async fn command(&self, value: i64) -> Result<(), FenceError> {
        let n = self.index().await?;
        self.client
            .set_int(&format!("{}.{n}", self.model.command_oid), value)
            .await
    }
}

impl FenceDriver for PduSnmpDriver {
    async fn off(&self) -> Result<(), FenceError> {
        self.command(self.model.command_off).await
    }

    async fn on(&self) -> Result<(), FenceError> {
        self.command(self.model.command_on).await
    }

    async fn reboot(&self) -> Result<(), FenceError> {
        match self.model.command_reboot {
            Some(cmd) => self.command(cmd).await,
            None => {
                self.off().await?;
                tokio::time::sleep(self.reboot_off_time).await;
                self.on().await
            }
        }
    }

    async fn status(&self) -> Result<PowerState, FenceError> {
        let n = self.index().await?;
        let v = self
            .client
            .get_int(&format!("{}.{n}", self.model.state_oid))
            .await?;
        if v == self.model.state_on {
            Ok(PowerState::On)
        } else if v == self.model.state_off {
            Ok(PowerState::Off)
        } else {
            Err(FenceError::Protocol(format!(
                "outlet {n} is in state {v} (neither on nor off)"
            )))
        }
    }

    async fn list(&self) -> Result<Vec<Plug>, FenceError> {
        Ok(self
            .client
            .walk(self.model.name_oid)
            .await?
            .into_iter()
            .filter_map(|(oid, v)| {
                let n = last_arc(&oid)?;
                let name = match v {
                    SnmpValue::String(s) => s,
                    _ => String::new(),
                };
                Some(Plug {
                    id: n.to_string(),
                    name,
                })
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_table() {
        assert_eq!(model("apc-rpdu"), Some(&APC_RPDU));
        assert!(model("nope").is_none());
        for m in MODELS {
            assert!(m.state_oid.starts_with('.') && m.command_oid.starts_with('.'));
            assert_ne!(m.state_on, m.state_off);
            assert_ne!(m.command_on, m.command_off);
        }
    }
}
