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

/// Quorum mode: one kill -9 of the lease holder's daemon, or one `tandem move` of its group
/// (lb1 holds, lb2 takes over, an arbiter votes). Times from the kill (the move command) are
/// from the script's clock just before it (`date +%s%N`) to a kernel receive timestamp at
/// the client.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct QuorumOutage {
    /// "lease" (no fencing: the killed node keeps the VIP) or "fence" (`fence_on_takeover`,
    /// a simulated BMC per node), both kill -9; or "move" (`tandem move`, no fencing).
    pub variant: String,
    pub run: u32,
    /// The holder killed and the node expected to take over.
    pub old: String,
    pub new: String,
    /// The Raft leader just before the kill, as the arbiter saw it.
    pub leader: Option<String>,
    /// `[cluster]` lease timing, and the election timeout's upper end it implies
    /// (crates/quorum/src/node.rs: 2 × clamp(lease / 8, 100 ms, 2 s)).
    pub lease_ms: u64,
    pub renew_ms: u64,
    pub margin_ms: u64,
    pub election_max_ms: u64,
    /// Kill → the new holder's first ARP for the VIP (an answer to the client's ARP probe
    /// or its gratuitous ARP): from here it answers for the VIP.
    pub event_to_arp_ms: Option<f64>,
    /// Kill → the new holder's first gratuitous ARP for the VIP.
    pub event_to_garp_ms: Option<f64>,
    /// Kill → the first UDP answer from the new holder's node.
    pub event_to_answer_ms: Option<f64>,
    /// Kill → the new holder's first VRRP advert.
    pub event_to_advert_ms: Option<f64>,
    /// The old node's last UDP answer → the new node's first (the gap the client saw).
    pub client_ms: Option<f64>,
    /// ARP answers for the VIP from the old node after the new holder's first one (lease
    /// only: the killed daemon's VIP is still configured and its kernel answers).
    pub old_arp_after: u64,
    /// UDP answers from the old node after the new node first answered.
    pub old_answers_after: u64,
    /// Fence variant, from the Raft log's fence history (wall-clock ms): kill → the attempt
    /// record, attempt → the verified result, and whether it was verified.
    pub event_to_fence_attempt_ms: Option<f64>,
    pub fence_ms: Option<f64>,
    pub fence_verified: Option<bool>,
    /// Fence variant: kill → the simulated BMC switched the node off (its power log).
    pub event_to_power_off_ms: Option<f64>,
    /// Grants of the group from the kill until the new node held it, from the group's epoch
    /// before the kill and after: 1 when it went straight to the new node; 2 or more when
    /// the leader first granted it to the killed holder again.
    #[serde(default)]
    pub grants: Option<u64>,
    pub probes_sent: u64,
    pub answers: u64,
}

/// Quorum mode: commit latency of the holder's lease renewals over a window, from its
/// `tandem status --json` (`.quorum.renew_latency_us`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RenewLatency {
    /// Raft voters (load balancers and the arbiter).
    pub voters: u32,
    pub members: Vec<String>,
    pub holder: String,
    /// The Raft leader at the end of the window; when it is not the holder, every renewal
    /// is forwarded to it.
    pub leader: Option<String>,
    pub secs: f64,
    pub renew_ms: u64,
    /// Every renewal committed in the window, µs, in order.
    pub samples_us: Vec<u64>,
    /// Over `samples_us` (none when the window has no renewal).
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub max_ms: Option<f64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Record {
    Outage(Outage),
    Footprint(Footprint),
    Jitter(Jitter),
    #[serde(rename = "quorum_outage")]
    QuorumOutage(QuorumOutage),
    #[serde(rename = "renew_latency")]
    RenewLatency(RenewLatency),
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
