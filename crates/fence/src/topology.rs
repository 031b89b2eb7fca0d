//! Fencing topology: a node's ordered levels, each a set of devices that must all succeed,
//! every action verified by reading the state back.
//!
//! Rules (Pacemaker's fencing-topology semantics, plus mandatory verification):
//! * levels are tried in order; the first level whose every device is verified wins, and no
//!   further level is tried;
//! * a device's step is: the action, then read `status` until it shows the wanted state (or
//!   the verify window closes); "the device said done" never counts by itself;
//! * each attempt is bounded by the device's `timeout`, and a failed or unverified attempt is
//!   repeated up to `retries` more times;
//! * `off` = every device of the level off; `on` = every device on; `reboot` = every device
//!   off (all verified, so a dual-PSU server really loses power), then every device on. The
//!   node counts as fenced once the off half is verified; a failed on half is reported but
//!   does not undo the fence;
//! * every attempt's outcome and reason is recorded in the [`FenceReport`].

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::driver::{Driver, FenceDriver, FenceError, PowerState};

/// What a fencing request asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FenceAction {
    Off,
    On,
    Reboot,
}

impl fmt::Display for FenceAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FenceAction::Off => "off",
            FenceAction::On => "on",
            FenceAction::Reboot => "reboot",
        })
    }
}

/// A configured device: a driver plus how patiently to use it.
#[derive(Debug, Clone)]
pub struct FenceDevice {
    /// The `[[fence_device]]` name.
    pub name: String,
    pub driver: Driver,
    /// Limit for one attempt's action (the verification has its own window).
    pub timeout: Duration,
    /// Further attempts after a failed or unverified one.
    pub retries: u32,
    /// How long to keep reading the state back after the action.
    pub verify_timeout: Duration,
    /// Pause between two reads while verifying.
    pub verify_interval: Duration,
}

impl FenceDevice {
    /// A device with the defaults: 20 s per attempt, 1 retry, 5 s verify window read every
    /// 250 ms.
    pub fn new(name: impl Into<String>, driver: Driver) -> FenceDevice {
        FenceDevice {
            name: name.into(),
            driver,
            timeout: Duration::from_secs(20),
            retries: 1,
            verify_timeout: Duration::from_secs(5),
            verify_interval: Duration::from_millis(250),
        }
    }
}

/// One `[[fence_level]]`: devices that must all be verified.
#[derive(Debug, Clone)]
pub struct FenceLevel {
    /// The level number (1 is tried first).
    pub level: u32,
    pub devices: Vec<Arc<FenceDevice>>,
}

/// One node's levels.
#[derive(Debug, Clone)]
pub struct FenceTopology {
    pub node: String,
    /// Tried in ascending `level` order.
    pub levels: Vec<FenceLevel>,
}

/// Why one attempt did not count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttemptOutcome {
    /// The action was done and the state read back as wanted.
    Verified,
    /// The action failed (error from the device or its tool).
    ActionFailed(FenceError),
    /// The action did not finish within the device's timeout.
    ActionTimedOut(Duration),
    /// The device accepted the action but its state did not change within the verify window.
    NotVerified {
        wanted: PowerState,
        /// Last state read, or why reading failed.
        seen: Result<PowerState, FenceError>,
    },
}

impl fmt::Display for AttemptOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AttemptOutcome::Verified => f.write_str("verified"),
            AttemptOutcome::ActionFailed(e) => write!(f, "action failed: {e}"),
            AttemptOutcome::ActionTimedOut(d) => write!(f, "action timed out after {d:?}"),
            AttemptOutcome::NotVerified {
                wanted,
                seen: Ok(s),
            } => write!(
                f,
                "device accepted the action but the state read back is {s}, not {wanted}"
            ),
            AttemptOutcome::NotVerified {
                wanted,
                seen: Err(e),
            } => write!(
                f,
                "device accepted the action but its state could not be read back as {wanted}: {e}"
            ),
        }
    }
}

/// One attempt of one step on one device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    /// 1-based.
    pub attempt: u32,
    pub outcome: AttemptOutcome,
    pub elapsed: Duration,
}

/// One step (off or on) on one device, with all its attempts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceReport {
    pub device: String,
    pub driver: &'static str,
    /// The state this step had to reach.
    pub wanted: PowerState,
    pub attempts: Vec<Attempt>,
    pub verified: bool,
}

impl DeviceReport {
    /// The last attempt's failure, for messages.
    pub fn reason(&self) -> Option<String> {
        if self.verified {
            return None;
        }
        self.attempts.last().map(|a| a.outcome.to_string())
    }
}

/// One level's result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LevelReport {
    pub level: u32,
    /// Steps in the order they ran (reboot: every off, then every on).
    pub devices: Vec<DeviceReport>,
    /// Every required step verified (for reboot: the off half).
    pub success: bool,
    /// Why the level failed, or (reboot) why the on half failed.
    pub reason: Option<String>,
}

/// The whole request's result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FenceReport {
    pub node: String,
    pub action: FenceAction,
    pub levels: Vec<LevelReport>,
    /// The level that succeeded, if any.
    pub succeeded_level: Option<u32>,
}

impl FenceReport {
    /// True only when a level was verified: for off / reboot, the node is fenced.
    pub fn success(&self) -> bool {
        self.succeeded_level.is_some()
    }

    /// One line for logs and status: which level worked, or every level's reason.
    pub fn summary(&self) -> String {
        match self.succeeded_level {
            Some(l) => format!("{} {}: verified by level {l}", self.action, self.node),
            None if self.levels.is_empty() => {
                format!(
                    "{} {}: failed: no fence levels configured",
                    self.action, self.node
                )
            }
            None => {
                let reasons: Vec<String> = self
                    .levels
                    .iter()
                    .map(|l| {
                        format!(
                            "level {}: {}",
                            l.level,
                            l.reason.clone().unwrap_or_else(|| "failed".into())
                        )
                    })
                    .collect();
                format!(
                    "{} {}: failed: {}",
                    self.action,
                    self.node,
                    reasons.join("; ")
                )
            }
        }
    }
}

impl FenceTopology {
    /// Runs the request through the levels. Never panics and never returns early on a
    /// device error: everything goes into the report.
    pub async fn fence(&self, action: FenceAction) -> FenceReport {
        let mut levels: Vec<&FenceLevel> = self.levels.iter().collect();
        levels.sort_by_key(|l| l.level);
        let mut report = FenceReport {
            node: self.node.clone(),
            action,
            levels: Vec::new(),
            succeeded_level: None,
        };
        for level in levels {
            tracing::info!(node = %self.node, %action, level = level.level, "fencing: trying level");
            let lr = run_level(level, action).await;
            let ok = lr.success;
            if ok {
                tracing::info!(node = %self.node, %action, level = level.level, "fencing: level verified");
            } else {
                tracing::warn!(
                    node = %self.node,
                    %action,
                    level = level.level,
                    reason = lr.reason.as_deref().unwrap_or("failed"),
                    "fencing: level failed"
                );
            }
            report.levels.push(lr);
            if ok {
                report.succeeded_level = Some(level.level);
                break;
            }
        }
        if report.succeeded_level.is_none() {
            tracing::error!(node = %self.node, %action, summary = %report.summary(), "fencing failed on every level");
        }
        report
    }
}

async fn run_level(level: &FenceLevel, action: FenceAction) -> LevelReport {
    let mut lr = LevelReport {
        level: level.level,
        devices: Vec::new(),
        success: false,
        reason: None,
    };
    if level.devices.is_empty() {
        lr.reason = Some("level has no devices".into());
        return lr;
    }
    let first = match action {
        FenceAction::Off | FenceAction::Reboot => PowerState::Off,
        FenceAction::On => PowerState::On,
    };
    for dev in &level.devices {
        let dr = run_step(dev, first).await;
        let failed = dr.reason().map(|r| format!("device {}: {r}", dev.name));
        lr.devices.push(dr);
        if let Some(reason) = failed {
            lr.reason = Some(reason);
            return lr;
        }
    }
    lr.success = true;
    if action == FenceAction::Reboot {
        let mut failures = Vec::new();
        for dev in &level.devices {
            let dr = run_step(dev, PowerState::On).await;
            if let Some(r) = dr.reason() {
                failures.push(format!(
                    "device {}: power on after the verified off: {r}",
                    dev.name
                ));
            }
            lr.devices.push(dr);
        }
        if !failures.is_empty() {
            lr.reason = Some(failures.join("; "));
        }
    }
    lr
}

async fn run_step(dev: &FenceDevice, wanted: PowerState) -> DeviceReport {
    let mut report = DeviceReport {
        device: dev.name.clone(),
        driver: dev.driver.kind(),
        wanted,
        attempts: Vec::new(),
        verified: false,
    };
    for attempt in 1..=dev.retries.saturating_add(1) {
        let started = Instant::now();
        let outcome = attempt_once(dev, wanted).await;
        let verified = outcome == AttemptOutcome::Verified;
        if verified {
            tracing::info!(device = %dev.name, attempt, state = %wanted, "fence device verified");
        } else {
            tracing::warn!(device = %dev.name, attempt, state = %wanted, reason = %outcome, "fence device attempt failed");
        }
        report.attempts.push(Attempt {
            attempt,
            outcome,
            elapsed: started.elapsed(),
        });
        if verified {
            report.verified = true;
            break;
        }
    }
    report
}

async fn attempt_once(dev: &FenceDevice, wanted: PowerState) -> AttemptOutcome {
    let action = async {
        match wanted {
            PowerState::Off => dev.driver.off().await,
            PowerState::On => dev.driver.on().await,
        }
    };
    match tokio::time::timeout(dev.timeout, action).await {
        Err(_) => return AttemptOutcome::ActionTimedOut(dev.timeout),
        Ok(Err(e)) => return AttemptOutcome::ActionFailed(e),
        Ok(Ok(())) => {}
    }
    // Read the state back until it is what we wanted or the window closes; a status read is
    // bounded by the device timeout too.
    let deadline = Instant::now() + dev.verify_timeout;
    loop {
        let seen = match tokio::time::timeout(dev.timeout, dev.driver.status()).await {
            Ok(r) => r,
            Err(_) => Err(FenceError::Timeout(dev.timeout)),
        };
        if seen == Ok(wanted) {
            return AttemptOutcome::Verified;
        }
        if Instant::now() + dev.verify_interval > deadline {
            return AttemptOutcome::NotVerified { wanted, seen };
        }
        tokio::time::sleep(dev.verify_interval).await;
    }
}
