//! The status report the daemon serves on its control socket and the CLI renders.
//! Both ends share these types, so `tandem status --json` is exactly this, serialized.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StatusReport {
    pub node: String,
    pub pid: u32,
    pub uptime_ms: u64,
    pub instances: Vec<InstanceStatus>,
    /// Packets that could not be given to any instance (too short to name a VRID, or a VRID
    /// no instance on that interface serves), per receiving socket.
    pub sockets: Vec<SocketStatus>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InstanceStatus {
    pub name: String,
    pub interface: String,
    pub vrid: u8,
    /// "v2" or "v3".
    pub version: String,
    /// "ipv4" or "ipv6": the family of the adverts.
    pub family: String,
    /// "INIT", "BACKUP", "MASTER" or "FAULT" (keepalived's words).
    pub state: String,
    pub priority: u8,
    pub configured_priority: u8,
    pub preempt: bool,
    /// Address of the current master as last heard; ours when we are master.
    pub master: Option<String>,
    pub advert_int_ms: u64,
    pub master_adver_interval_ms: u64,
    pub master_down_interval_ms: u64,
    pub skew_time_ms: u64,
    /// Every configured VIP with its prefix.
    pub vips: Vec<String>,
    /// True while this node has the VIPs configured.
    pub vips_held: bool,
    /// Milliseconds since the last state change.
    pub in_state_ms: u64,
    pub counters: BTreeMap<String, u64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SocketStatus {
    pub interface: String,
    pub family: String,
    pub received: u64,
    pub dropped_truncated: u64,
    pub dropped_unknown_vrid: u64,
    /// Our own adverts looped back (multicast loop is off, so normally zero).
    pub own_ignored: u64,
    pub send_errors: u64,
}

impl StatusReport {
    /// The human table `tandem status` prints.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "node {}  pid {}  up {:.1}s",
            self.node,
            self.pid,
            self.uptime_ms as f64 / 1000.0
        );
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "{:<12} {:<10} {:>4} {:<3} {:<7} {:>4} {:<26} {:>9} VIPS",
            "INSTANCE", "INTERFACE", "VRID", "VER", "STATE", "PRIO", "MASTER", "IN STATE"
        );
        for i in &self.instances {
            let prio = if i.priority == i.configured_priority {
                i.priority.to_string()
            } else {
                format!("{}/{}", i.priority, i.configured_priority)
            };
            let vips = if i.vips_held {
                format!("{} (held)", i.vips.join(" "))
            } else {
                i.vips.join(" ")
            };
            let _ = writeln!(
                out,
                "{:<12} {:<10} {:>4} {:<3} {:<7} {:>4} {:<26} {:>8.1}s {}",
                i.name,
                i.interface,
                i.vrid,
                i.version,
                i.state,
                prio,
                i.master.as_deref().unwrap_or("-"),
                i.in_state_ms as f64 / 1000.0,
                vips
            );
        }
        for i in &self.instances {
            let _ = writeln!(out);
            let _ = writeln!(
                out,
                "{}: advert_int {}ms, Master_Adver_Interval {}ms, Master_Down_Interval {}ms, Skew_Time {}ms",
                i.name,
                i.advert_int_ms,
                i.master_adver_interval_ms,
                i.master_down_interval_ms,
                i.skew_time_ms
            );
            let (drops, other): (Vec<_>, Vec<_>) = i
                .counters
                .iter()
                .partition(|(k, _)| k.starts_with("dropped_"));
            let line = |v: &[(&String, &u64)], skip_zero: bool| {
                v.iter()
                    .filter(|(_, n)| !skip_zero || **n > 0)
                    .map(|(k, n)| format!("{}={}", k.trim_start_matches("dropped_"), n))
                    .collect::<Vec<_>>()
                    .join(" ")
            };
            let _ = writeln!(out, "  counters: {}", line(&other, false));
            let d = line(&drops, true);
            let _ = writeln!(
                out,
                "  dropped:  {}",
                if d.is_empty() { "none".into() } else { d }
            );
        }
        let busy: Vec<_> = self
            .sockets
            .iter()
            .filter(|s| s.dropped_truncated + s.dropped_unknown_vrid + s.send_errors > 0)
            .collect();
        if !busy.is_empty() {
            let _ = writeln!(out);
            for s in busy {
                let _ = writeln!(
                    out,
                    "socket {} {}: received={} dropped truncated={} unknown_vrid={} send_errors={}",
                    s.interface,
                    s.family,
                    s.received,
                    s.dropped_truncated,
                    s.dropped_unknown_vrid,
                    s.send_errors
                );
            }
        }
        out
    }
}
