//! The status report the daemon serves on its control socket and the CLI renders.
//! Both ends share these types, so `tandem status --json` is exactly this, serialized.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};
use tandem_health::CheckStatus;

use crate::tracking::{Contribution, ItemKind};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StatusReport {
    pub node: String,
    pub pid: u32,
    pub uptime_ms: u64,
    pub instances: Vec<InstanceStatus>,
    /// Packets that could not be given to any instance (too short to name a VRID, or a VRID
    /// no instance on that interface serves), per receiving socket.
    pub sockets: Vec<SocketStatus>,
    /// Every `[[check]]` with its last result and rise/fall counters.
    #[serde(default)]
    pub checks: Vec<CheckStatus>,
    /// The heartbeat's view of peers and channels (`tandem links`), with `[cluster]` only.
    #[serde(default)]
    pub membership: Option<serde_json::Value>,
    /// Quorum mode: Raft term, leader, indexes, members and each group's lease.
    #[serde(default)]
    pub quorum: Option<serde_json::Value>,
    /// vrrp mode with `fence_on_takeover`: what the pair fencing is doing, when anything.
    #[serde(default)]
    pub fencing: Option<String>,
    /// vrrp mode with `fence_on_takeover`: pair fences (started, verified, failed) since start.
    #[serde(default)]
    pub pair_fences: Option<(u64, u64, u64)>,
    /// Fences this node ran outside the Raft log (vrrp mode), oldest first. Quorum mode keeps
    /// its history in the log: `quorum.fence_history`.
    #[serde(default)]
    pub fence_history: Vec<tandem_quorum::FenceRecord>,
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
    /// Faulted by tracking (an item with weight 0 is bad).
    #[serde(default)]
    pub fault: bool,
    /// What each tracked item adds to the configured priority, or whether it faults.
    #[serde(default)]
    pub tracked: Vec<Contribution>,
    #[serde(default)]
    pub sync_group: Option<String>,
    #[serde(default)]
    pub notify: Option<String>,
    /// Why this master's takeover looks like a network split (peer still up on heartbeat).
    #[serde(default)]
    pub split: Option<String>,
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
            if let Some(w) = &i.split {
                let _ = writeln!(out, "  WARNING: {w}");
            }
            if let Some(g) = &i.sync_group {
                let _ = writeln!(out, "  sync group: {g}");
            }
            let extra: Vec<String> = i
                .tracked
                .iter()
                .filter(|c| c.kind != ItemKind::OwnInterface || c.faults)
                .map(|c| {
                    let effect = if c.faults {
                        "FAULT".to_string()
                    } else if c.weight == 0 {
                        "fault if down".to_string()
                    } else {
                        format!("{:+}", c.delta)
                    };
                    let kind = match c.kind {
                        ItemKind::OwnInterface => "interface",
                        ItemKind::Interface => "interface",
                        ItemKind::Check => "check",
                        ItemKind::File => "file",
                    };
                    format!(
                        "{kind} {} {} (weight {}): {effect}",
                        c.target, c.state, c.weight
                    )
                })
                .collect();
            let _ = writeln!(
                out,
                "  priority: {} configured, {} effective{}",
                i.configured_priority,
                i.priority,
                if i.fault { ", FAULT" } else { "" }
            );
            for e in extra {
                let _ = writeln!(out, "    {e}");
            }
            let _ = writeln!(out, "  counters: {}", line(&other, false));
            let d = line(&drops, true);
            let _ = writeln!(
                out,
                "  dropped:  {}",
                if d.is_empty() { "none".into() } else { d }
            );
        }
        if let Some(q) = &self.quorum {
            render_quorum(&mut out, q);
        }
        if let Some(m) = &self.membership {
            let _ = writeln!(out);
            let _ = writeln!(
                out,
                "cluster {}  incarnation {}",
                m["cluster"].as_str().unwrap_or("?"),
                m["incarnation"].as_str().unwrap_or("?")
            );
            let _ = writeln!(
                out,
                "{:<14} {:<5} {:>8} {:>10}  INCARNATION",
                "PEER", "STATE", "CHANNELS", "SINCE"
            );
            for p in m["peers"].as_array().into_iter().flatten() {
                let links = p["links"].as_array().map(|l| l.as_slice()).unwrap_or(&[]);
                let up = links.iter().filter(|l| l["state"] == "up").count();
                let _ = writeln!(
                    out,
                    "{:<14} {:<5} {:>8} {:>10}  {}",
                    p["name"].as_str().unwrap_or("?"),
                    p["state"].as_str().unwrap_or("?"),
                    format!("{up}/{}", links.len()),
                    secs(&p["since_ms"]),
                    p["incarnation"].as_str().unwrap_or("-")
                );
            }
        }
        if !self.checks.is_empty() {
            let _ = writeln!(out);
            let _ = writeln!(
                out,
                "{:<14} {:<6} {:<8} {:>9} {:>9} {:>9}  LAST RESULT",
                "CHECK", "KIND", "STATUS", "LATENCY", "OK/RISE", "FAIL/FALL"
            );
            for c in &self.checks {
                let status = match c.status {
                    tandem_health::Status::Up => "up",
                    tandem_health::Status::Down => "down",
                    tandem_health::Status::Unknown => "unknown",
                };
                let latency = c
                    .last_latency_ms
                    .map(|l| format!("{l}ms"))
                    .unwrap_or_else(|| "-".into());
                let last = match (c.last_ok, &c.last_message) {
                    (None, _) => "-".to_string(),
                    (Some(ok), m) => format!(
                        "{} {}",
                        if ok { "ok" } else { "failed" },
                        m.as_deref().unwrap_or("")
                    ),
                };
                let _ = writeln!(
                    out,
                    "{:<14} {:<6} {:<8} {:>9} {:>9} {:>9}  {}",
                    c.name,
                    c.kind,
                    status,
                    latency,
                    format!("{}/{}", c.consecutive_ok, c.rise),
                    format!("{}/{}", c.consecutive_fail, c.fall),
                    last.trim_end()
                );
            }
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

fn secs(v: &serde_json::Value) -> String {
    v.as_f64()
        .map(|ms| format!("{:.1}s", ms / 1000.0))
        .unwrap_or_else(|| "-".into())
}

fn ms(v: &serde_json::Value) -> String {
    v.as_f64()
        .map(|ms| format!("{ms:.1}ms"))
        .unwrap_or_else(|| "-".into())
}

impl StatusReport {
    /// The table `tandem links` prints: every channel to every peer, then each channel's
    /// drop counters.
    pub fn render_links(&self) -> String {
        let mut out = String::new();
        let Some(m) = &self.membership else {
            return "no [cluster] configured: no heartbeat channels\n".into();
        };
        let channels = m["channels"]
            .as_array()
            .map(|c| c.as_slice())
            .unwrap_or(&[]);
        let describe = |id: &serde_json::Value| {
            channels
                .iter()
                .find(|c| &c["id"] == id)
                .and_then(|c| c["description"].as_str())
                .unwrap_or("?")
                .to_string()
        };
        let _ = writeln!(
            out,
            "{:<12} {:>2} {:<38} {:<5} {:>10} {:>9} {:>7}",
            "PEER", "CH", "CHANNEL", "STATE", "LAST SEEN", "RTT", "LOSS"
        );
        for p in m["peers"].as_array().into_iter().flatten() {
            for l in p["links"].as_array().into_iter().flatten() {
                let loss = l["loss_percent"]
                    .as_f64()
                    .map(|x| format!("{x:.1}%"))
                    .unwrap_or_else(|| "-".into());
                let _ = writeln!(
                    out,
                    "{:<12} {:>2} {:<38} {:<5} {:>10} {:>9} {:>7}",
                    p["name"].as_str().unwrap_or("?"),
                    l["channel"],
                    describe(&l["channel"]),
                    l["state"].as_str().unwrap_or("?"),
                    ms(&l["last_seen_ago_ms"]),
                    ms(&l["rtt_ms"]),
                    loss
                );
            }
        }
        let _ = writeln!(out);
        for c in channels {
            let drops: Vec<String> = c["drops"]
                .as_object()
                .into_iter()
                .flatten()
                .filter(|(_, v)| v.as_u64().unwrap_or(0) > 0)
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            let _ = writeln!(
                out,
                "channel {} {}: sent={} received={} dropped: {}",
                c["id"],
                c["description"].as_str().unwrap_or("?"),
                c["frames_sent"],
                c["frames_received"],
                if drops.is_empty() {
                    "none".to_string()
                } else {
                    drops.join(" ")
                }
            );
        }
        out
    }
}

/// The quorum section of `tandem status`.
fn render_quorum(out: &mut String, q: &serde_json::Value) {
    let opt = |v: &serde_json::Value| match v {
        serde_json::Value::Null => "-".to_string(),
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "raft {}  term {}  leader {}  quorum {}  log {}  commit {}  applied {}",
        opt(&q["state"]).to_lowercase(),
        opt(&q["term"]),
        opt(&q["leader"]),
        if q["quorum"] == true { "yes" } else { "NO" },
        opt(&q["last_log_index"]),
        opt(&q["commit_index"]),
        opt(&q["applied_index"]),
    );
    let _ = writeln!(out, "{:<14} {:<8} {:<8} STANDBY", "MEMBER", "ROLE", "VOTER");
    for m in q["members"].as_array().into_iter().flatten() {
        let _ = writeln!(
            out,
            "{:<14} {:<8} {:<8} {}",
            opt(&m["name"]),
            opt(&m["role"]),
            if m["voter"] == true { "yes" } else { "no" },
            if m["standby"] == true { "yes" } else { "no" },
        );
    }
    let _ = writeln!(
        out,
        "{:<14} {:<14} {:>6} {:>10} {:>9}  NOTE",
        "GROUP", "HOLDER", "EPOCH", "RENEWALS", "LEASE"
    );
    for (name, g) in q["groups"].as_object().into_iter().flatten() {
        let lease = match g["lease_remaining_ms"].as_u64() {
            Some(ms) => format!("{:.2}s", ms as f64 / 1000.0),
            None => "-".into(),
        };
        let mut note = Vec::new();
        if let Some(to) = g["releasing_to"].as_str() {
            note.push(format!("moving to {to}"));
        }
        if let Some(p) = g["preferred"].as_str() {
            note.push(format!("preferred {p}"));
        }
        let _ = writeln!(
            out,
            "{:<14} {:<14} {:>6} {:>10} {:>9}  {}",
            name,
            opt(&g["holder"]),
            opt(&g["epoch"]),
            opt(&g["renewals"]),
            lease,
            note.join(", ")
        );
    }
    let rpc = &q["rpc"];
    let _ = writeln!(
        out,
        "raft rpc: {} requests, {} connections, dropped {} bad_auth, {} malformed",
        opt(&rpc["requests"]),
        opt(&rpc["connections"]),
        opt(&rpc["bad_auth"]),
        opt(&rpc["malformed"]),
    );
}
