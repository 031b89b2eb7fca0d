//! One JSON line per measurement in the results file; `report` reads them all back.

use std::io::Write as _;
use std::path::Path;

use anyhow::Context as _;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Outage {
    /// "tandem" or "keepalived".
    pub daemon: String,
    /// "linkcut", "kill9" or "sigterm".
    pub scenario: String,
    pub version: u8,
    pub interval_ms: u64,
    pub run: u32,
    /// Priority of the node that takes over (its Skew_Time and Master_Down_Interval).
    pub new_priority: u8,
    /// Last answer from the old node → first answer from the new one (client, kernel
    /// receive timestamps).
    pub client_ms: Option<f64>,
    /// Wire: the old master's priority-0 advert (sigterm) or its last advert (otherwise) → the
    /// new master's first advert.
    pub wire_ms: Option<f64>,
    /// Which old advert `wire_ms` starts from: "prio0" or "last".
    pub wire_from: String,
    /// The same old advert → first answer from the new node: the client outage as it is when
    /// the event falls right after an advert (the worst phase), free of the random phase of the
    /// event, so it compares daemons run by run.
    #[serde(default)]
    pub advert_to_answer_ms: Option<f64>,
    /// The script's event (date +%s%N just before the cut / kill / signal) → the new master's
    /// first advert, and → the client's first answer from the new node.
    pub event_to_advert_ms: Option<f64>,
    pub event_to_answer_ms: Option<f64>,
    /// New master's first advert → first gratuitous ARP for the VIP.
    pub advert_to_garp_ms: Option<f64>,
    /// The old master sent a priority-0 advert (expected only for sigterm).
    pub old_prio0: bool,
    /// Answers from the old node after the new node first answered (kill9: the dead
    /// daemon's VIP is still configured and the kernel still answers).
    pub old_answers_after: u64,
    pub probes_sent: u64,
    pub answers: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Footprint {
    pub daemon: String,
    pub instances: u32,
    /// "master" or "backup".
    pub role: String,
    pub secs: f64,
    /// Processes in the daemon's tree (keepalived: parent + VRRP child).
    pub procs: u32,
    /// Sum of VmRSS over the tree, sampled every second: mean and max, KiB.
    pub rss_kib_mean: f64,
    pub rss_kib_max: f64,
    /// CPU time (user + system) over the window, seconds, from per-thread schedstat (ns).
    pub cpu_s: f64,
    /// The same from /proc/PID/stat utime + stime (clock ticks), as a cross-check.
    pub cpu_s_ticks: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Jitter {
    pub daemon: String,
    pub instances: u32,
    pub interval_ms: u64,
    pub secs: f64,
    /// VRIDs seen advertising from the master, and adverts counted.
    pub vrids: u32,
    pub adverts: u64,
    /// Adverts expected over the window (instances × secs / interval).
    pub expected: u64,
    /// |gap between consecutive adverts of one VRID − interval|, pooled over VRIDs, ms.
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    /// Mean gap minus the interval (systematic drift), ms.
    pub mean_gap_error_ms: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Record {
    Outage(Outage),
    Footprint(Footprint),
    Jitter(Jitter),
}

pub fn append(path: &Path, r: &Record) -> anyhow::Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("opening {}", path.display()))?;
    writeln!(f, "{}", serde_json::to_string(r)?)?;
    Ok(())
}

pub fn load(path: &Path) -> anyhow::Result<Vec<Record>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            serde_json::from_str(l).with_context(|| format!("{}:{}", path.display(), i + 1))
        })
        .collect()
}
