//! From the validated config (`[[fence_device]]`, `[[fence_level]]`) to `tandem-fence`'s
//! drivers and topologies, loading every secret through [`SecretSource`].
//!
//! Role: the one place that turns config data into live fencing devices, for the operator's
//! `tandem fence` commands and the daemon's own fences (the quorum coordinator's
//! [`TopologyFencer`], the vrrp pair's [`fence_node`]).
//!
//! Must never: put a secret's value in an error (errors name the device and the file or
//! variable, never the value), or build a device whose secret could not be loaded.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use tandem_config::{
    Config, FenceDeviceConfig, FenceDriverConfig, PlugRef, SecretRef, SnmpCredentials,
};
use tandem_fence::{
    pdu, AuthProtocol, Driver, FenceAction, FenceAgentConfig, FenceAgentDriver, FenceDevice,
    FenceLevel, FenceTopology, IpmiConfig, IpmiDriver, OutletRef, PduSnmpConfig, PduSnmpDriver,
    PortRef, PrivProtocol, Privilege, Secret, SecretSource, SnmpAuth, SnmpTarget, SwitchSnmpConfig,
    SwitchSnmpDriver,
};
use tandem_quorum::{FenceOutcome, Fencer};

/// Why a device or topology could not be built. Never contains a secret.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum FencingError {
    #[error("no [[fence_device]] is named {0:?}")]
    NoSuchDevice(String),
    #[error("no [[fence_level]] for node {0:?}")]
    NoLevels(String),
    #[error("fence device {device:?}: {reason}")]
    Secret { device: String, reason: String },
    #[error("fence device {device:?}: {reason}")]
    Driver { device: String, reason: String },
}

/// Time between off and on for a PDU outlet or switch port that has no reboot command.
const REBOOT_OFF_TIME: std::time::Duration = std::time::Duration::from_secs(5);

fn source(s: &SecretRef) -> SecretSource {
    match s {
        SecretRef::File(p) => SecretSource::File(p.clone()),
        SecretRef::Env(v) => SecretSource::Env(v.clone()),
    }
}

fn load(device: &str, s: &SecretRef) -> Result<Secret, FencingError> {
    source(s).load().map_err(|e| FencingError::Secret {
        device: device.to_string(),
        reason: e.to_string(),
    })
}

fn snmp_target(
    device: &str,
    host: &str,
    port: u16,
    creds: &SnmpCredentials,
) -> Result<SnmpTarget, FencingError> {
    let auth = match creds {
        SnmpCredentials::V2c { community } => SnmpAuth::V2c {
            community: load(device, community)?,
        },
        SnmpCredentials::V3 {
            user,
            auth_protocol,
            auth_pass,
            priv_protocol,
            priv_pass,
        } => SnmpAuth::V3 {
            user: user.clone(),
            auth_protocol: match auth_protocol.as_str() {
                "MD5" => AuthProtocol::Md5,
                "SHA-256" => AuthProtocol::Sha256,
                "SHA-512" => AuthProtocol::Sha512,
                _ => AuthProtocol::Sha,
            },
            auth_password: load(device, auth_pass)?,
            priv_protocol: match priv_protocol.as_str() {
                "DES" => PrivProtocol::Des,
                _ => PrivProtocol::Aes,
            },
            priv_password: load(device, priv_pass)?,
        },
    };
    Ok(SnmpTarget::new(host, port, auth))
}

/// The live device for one `[[fence_device]]`, its secrets loaded now.
pub fn build_device(dev: &FenceDeviceConfig) -> Result<FenceDevice, FencingError> {
    let name = dev.name.as_str();
    let driver_err = |e: tandem_fence::FenceError| FencingError::Driver {
        device: name.to_string(),
        reason: e.to_string(),
    };
    let driver = match &dev.driver {
        FenceDriverConfig::Ipmi {
            host,
            port,
            username,
            password,
            cipher,
            privilege,
        } => {
            let mut c = IpmiConfig::new(host, *port, username, load(name, password)?);
            c.cipher_suite = *cipher;
            c.privilege = match privilege.as_str() {
                "CALLBACK" => Privilege::Callback,
                "USER" => Privilege::User,
                "OPERATOR" => Privilege::Operator,
                _ => Privilege::Administrator,
            };
            Driver::Ipmi(IpmiDriver::new(c).map_err(driver_err)?)
        }
        FenceDriverConfig::PduSnmp {
            host,
            port,
            outlet,
            model,
            snmp,
        } => {
            let model = pdu::model(model).ok_or_else(|| FencingError::Driver {
                device: name.to_string(),
                reason: format!("unknown PDU model {model:?}"),
            })?;
            Driver::PduSnmp(
                PduSnmpDriver::new(PduSnmpConfig {
                    target: snmp_target(name, host, *port, snmp)?,
                    model,
                    outlet: match outlet {
                        PlugRef::Number(n) => OutletRef::Index(*n),
                        PlugRef::Name(s) => OutletRef::Name(s.clone()),
                    },
                    reboot_off_time: REBOOT_OFF_TIME,
                })
                .map_err(driver_err)?,
            )
        }
        FenceDriverConfig::SwitchSnmp {
            host,
            port,
            switch_port,
            snmp,
        } => Driver::SwitchSnmp(
            SwitchSnmpDriver::new(SwitchSnmpConfig {
                target: snmp_target(name, host, *port, snmp)?,
                port: match switch_port {
                    PlugRef::Number(n) => PortRef::IfIndex(*n),
                    PlugRef::Name(s) => PortRef::Name(s.clone()),
                },
                reboot_off_time: REBOOT_OFF_TIME,
            })
            .map_err(driver_err)?,
        ),
        FenceDriverConfig::FenceAgent {
            program,
            options,
            secret_options,
        } => {
            let secret_options = secret_options
                .iter()
                .map(|(k, s)| Ok((k.clone(), load(name, s)?)))
                .collect::<Result<Vec<_>, FencingError>>()?;
            Driver::FenceAgent(
                FenceAgentDriver::new(FenceAgentConfig {
                    program: program.display().to_string(),
                    options: options.clone(),
                    secret_options,
                    timeout: dev.timeout,
                })
                .map_err(driver_err)?,
            )
        }
    };
    let mut device = FenceDevice::new(name, driver);
    device.timeout = dev.timeout;
    device.retries = dev.retries;
    Ok(device)
}

/// The live device named `name`.
pub fn device(config: &Config, name: &str) -> Result<FenceDevice, FencingError> {
    let dev = config
        .fence_device(name)
        .ok_or_else(|| FencingError::NoSuchDevice(name.to_string()))?;
    build_device(dev)
}

/// `node`'s fencing topology: its levels in ascending order, each device built once even when
/// several levels share it.
pub fn topology_for(config: &Config, node: &str) -> Result<FenceTopology, FencingError> {
    let levels = config.fence_levels_of(node);
    if levels.is_empty() {
        return Err(FencingError::NoLevels(node.to_string()));
    }
    let mut built: Vec<Arc<FenceDevice>> = Vec::new();
    let mut out = Vec::with_capacity(levels.len());
    for l in levels {
        let mut devices = Vec::with_capacity(l.devices.len());
        for d in &l.devices {
            let dev = match built.iter().find(|b| &b.name == d) {
                Some(b) => b.clone(),
                None => {
                    let b = Arc::new(device(config, d)?);
                    built.push(b.clone());
                    b
                }
            };
            devices.push(dev);
        }
        out.push(FenceLevel {
            level: u32::from(l.level),
            devices,
        });
    }
    Ok(FenceTopology {
        node: node.to_string(),
        levels: out,
    })
}

/// Runs `action` on `node` through its levels, for the daemon's own fencing (the coordinator
/// in quorum mode, the pair policy in vrrp mode, `unfence = "auto"`). The topology is built
/// at each fence, so a secret file changed since start is read again and a missing one is
/// this fence's error.
pub async fn fence_node(config: &Config, node: &str, action: FenceAction) -> FenceOutcome {
    match topology_for(config, node) {
        Err(e) => FenceOutcome {
            verified: false,
            detail: e.to_string(),
        },
        Ok(t) => {
            let report = t.fence(action).await;
            FenceOutcome {
                verified: report.success(),
                detail: report.summary(),
            }
        }
    }
}

/// The quorum coordinator's [`Fencer`]: [`fence_node`] with this node's config.
pub struct TopologyFencer {
    config: Arc<Config>,
}

impl TopologyFencer {
    pub fn new(config: Config) -> TopologyFencer {
        TopologyFencer {
            config: Arc::new(config),
        }
    }
}

// By hand: the config names secret files, and a Debug dump has no business listing them.
impl std::fmt::Debug for TopologyFencer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TopologyFencer")
    }
}

impl Fencer for TopologyFencer {
    fn fence(&self, node: String) -> Pin<Box<dyn Future<Output = FenceOutcome> + Send>> {
        let config = self.config.clone();
        Box::pin(async move { fence_node(&config, &node, FenceAction::Off).await })
    }

    fn unfence(&self, node: String) -> Pin<Box<dyn Future<Output = FenceOutcome> + Send>> {
        let config = self.config.clone();
        Box::pin(async move { fence_node(&config, &node, FenceAction::On).await })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn config(dir: &Path) -> Config {
        let text = format!(
            r#"
[node]
name = "lb1"

[cluster]
name = "edge"
key_file = "/etc/tandem/cluster.key"
nodes = [{{ name = "lb1", address = "10.0.0.1" }}, {{ name = "lb2", address = "10.0.0.2" }}]

[[heartbeat]]
kind = "tcp"
port = 5406

[[vrrp_instance]]
name = "VI_1"
interface = "eth0"
virtual_router_id = 51
virtual_ipaddress = ["192.0.2.100/24"]

[[fence_device]]
name = "bmc"
driver = "ipmi"
address = "127.0.0.1:6230"
username = "admin"
password_file = "{dir}/bmc"
timeout = "7s"
retries = 2

[[fence_device]]
name = "psu1"
driver = "pdu-snmp"
address = "127.0.0.1:1610"
outlet = 1
snmp_version = "2c"
community_file = "{dir}/community"

[[fence_device]]
name = "psu2"
driver = "pdu-snmp"
address = "127.0.0.1:1610"
outlet = 2
snmp_version = "2c"
community_file = "{dir}/community"

[[fence_level]]
node = "lb2"
level = 2
devices = [{{ device = "psu1" }}, {{ device = "psu2" }}]

[[fence_level]]
node = "lb2"
level = 1
devices = [{{ device = "bmc" }}]
"#,
            dir = dir.display()
        );
        tandem_config::parse(&text, Path::new("t.toml")).unwrap()
    }

    #[test]
    fn builds_levels_in_order_with_secrets_loaded() {
        let dir = std::env::temp_dir().join(format!("tandem-fencing-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("bmc"), "pw-bmc-xyzzy\n").unwrap();
        std::fs::write(dir.join("community"), "comm-xyzzy\n").unwrap();
        let c = config(&dir);
        let t = topology_for(&c, "lb2").unwrap();
        assert_eq!(t.node, "lb2");
        let levels: Vec<(u32, Vec<&str>)> = t
            .levels
            .iter()
            .map(|l| (l.level, l.devices.iter().map(|d| d.name.as_str()).collect()))
            .collect();
        assert_eq!(levels, vec![(1, vec!["bmc"]), (2, vec!["psu1", "psu2"])]);
        let bmc = &t.levels[0].devices[0];
        assert_eq!(bmc.timeout, std::time::Duration::from_secs(7));
        assert_eq!(bmc.retries, 2);
        assert_eq!(bmc.driver.kind(), "ipmi");
        let shown = format!("{t:?}");
        assert!(!shown.contains("xyzzy"), "{shown}");
        assert_eq!(
            topology_for(&c, "lb1").unwrap_err(),
            FencingError::NoLevels("lb1".into())
        );
        assert!(matches!(
            device(&c, "nope"),
            Err(FencingError::NoSuchDevice(_))
        ));

        std::fs::remove_file(dir.join("community")).unwrap();
        let err = topology_for(&c, "lb2").unwrap_err();
        assert!(matches!(&err, FencingError::Secret { device, .. } if device == "psu1"));
        assert!(err.to_string().contains("community"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
