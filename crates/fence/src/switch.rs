//! `switch-snmp` driver: fabric fencing by a managed switch port's IF-MIB `ifAdminStatus`
//! (`.1.3.6.1.2.1.2.2.1.7.<ifIndex>`): off = down(2), on = up(1). The port is given by its
//! ifIndex or by name, resolved by walking ifName (IF-MIB ifXTable) and then ifDescr.

use std::time::Duration;

use crate::driver::{FenceDriver, FenceError, Plug, PowerState};
use crate::snmp::{last_arc, SnmpClient, SnmpTarget, SnmpValue};

/// ifAdminStatus column.
pub const IF_ADMIN_STATUS: &str = ".1.3.6.1.2.1.2.2.1.7";
/// ifDescr column.
pub const IF_DESCR: &str = ".1.3.6.1.2.1.2.2.1.2";
/// ifName column (ifXTable).
pub const IF_NAME: &str = ".1.3.6.1.2.1.31.1.1.1.1";
/// ifAlias column (ifXTable).
pub const IF_ALIAS: &str = ".1.3.6.1.2.1.31.1.1.1.18";
const ADMIN_UP: i64 = 1;
const ADMIN_DOWN: i64 = 2;

/// Which port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PortRef {
    IfIndex(u32),
    /// Matched against ifName first, then ifDescr.
    Name(String),
}

/// Parameters of one switch port.
#[derive(Debug, Clone)]
pub struct SwitchSnmpConfig {
    pub target: SnmpTarget,
    pub port: PortRef,
    /// `reboot` = down, wait this long, up.
    pub reboot_off_time: Duration,
}

/// The `switch-snmp` driver.
#[derive(Debug, Clone)]
pub struct SwitchSnmpDriver {
    client: SnmpClient,
    port: PortRef,
    reboot_off_time: Duration,
}

impl SwitchSnmpDriver {
    pub fn new(config: SwitchSnmpConfig) -> Result<SwitchSnmpDriver, FenceError> {
        if let PortRef::IfIndex(0) = config.port {
            return Err(FenceError::Config("ifIndex starts at 1".into()));
        }
        Ok(SwitchSnmpDriver {
            client: SnmpClient::new(config.target)?,
            port: config.port,
            reboot_off_time: config.reboot_off_time,
        })
    }

    async fn if_index(&self) -> Result<u32, FenceError> {
        let name = match &self.port {
            PortRef::IfIndex(n) => return Ok(*n),
            PortRef::Name(name) => name,
        };
        for column in [IF_NAME, IF_DESCR] {
            let rows = match self.client.walk(column).await {
                Ok(rows) => rows,
                // an agent without ifXTable: fall through to ifDescr
                Err(FenceError::NoSuchPlug(_)) => continue,
                Err(e) => return Err(e),
            };
            for (oid, value) in rows {
                if matches!(&value, SnmpValue::String(s) if s == name) {
                    if let Some(n) = last_arc(&oid) {
                        return Ok(n);
                    }
                }
            }
        }
        Err(FenceError::NoSuchPlug(format!(
            "no port with ifName or ifDescr {name:?}"
        )))
    }

    async fn set_admin(&self, value: i64) -> Result<(), FenceError> {
        let n = self.if_index().await?;
        self.client
            .set_int(&format!("{IF_ADMIN_STATUS}.{n}"), value)
            .await
    }
}

impl FenceDriver for SwitchSnmpDriver {
    async fn off(&self) -> Result<(), FenceError> {
        self.set_admin(ADMIN_DOWN).await
    }

    async fn on(&self) -> Result<(), FenceError> {
        self.set_admin(ADMIN_UP).await
    }

    async fn reboot(&self) -> Result<(), FenceError> {
        self.off().await?;
        tokio::time::sleep(self.reboot_off_time).await;
        self.on().await
    }

    async fn status(&self) -> Result<PowerState, FenceError> {
        let n = self.if_index().await?;
        match self
            .client
            .get_int(&format!("{IF_ADMIN_STATUS}.{n}"))
            .await?
        {
            ADMIN_UP => Ok(PowerState::On),
            ADMIN_DOWN => Ok(PowerState::Off),
            v => Err(FenceError::Protocol(format!(
                "ifAdminStatus of ifIndex {n} is {v} (neither up nor down)"
            ))),
        }
    }

    async fn list(&self) -> Result<Vec<Plug>, FenceError> {
        let names = match self.client.walk(IF_NAME).await {
            Ok(rows) if !rows.is_empty() => rows,
            Ok(_) | Err(FenceError::NoSuchPlug(_)) => self.client.walk(IF_DESCR).await?,
            Err(e) => return Err(e),
        };
        Ok(names
            .into_iter()
            .filter_map(|(oid, v)| {
                Some(Plug {
                    id: last_arc(&oid)?.to_string(),
                    name: match v {
                        SnmpValue::String(s) => s,
                        _ => String::new(),
                    },
                })
            })
            .collect())
    }
}
