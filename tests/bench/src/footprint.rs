//! Resident memory and CPU time of a daemon's whole process tree, read from /proc.
//!
//! CPU comes from /proc/PID/task/TID/schedstat (time on CPU in ns, per thread), summed over
//! the threads alive at both ends of the window; /proc/PID/stat utime + stime (clock ticks,
//! dead threads included) is recorded beside it as a cross-check. RSS is VmRSS summed over
//! the tree (pages shared between keepalived's two processes count twice, as `ps` shows them).

use std::collections::BTreeMap;

use anyhow::{bail, Context as _};

use crate::record::Footprint;
use crate::sys;

/// `pid` and every descendant.
pub fn process_tree(pid: u32) -> Vec<u32> {
    let mut parent: Vec<(u32, u32)> = Vec::new();
    if let Ok(rd) = std::fs::read_dir("/proc") {
        for e in rd.flatten() {
            let Some(p) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
                continue;
            };
            if let Some(pp) = stat_fields(p).and_then(|f| f.get(1).and_then(|s| s.parse().ok())) {
                parent.push((p, pp));
            }
        }
    }
    let mut out = vec![pid];
    let mut i = 0;
    while i < out.len() {
        let cur = out[i];
        out.extend(parent.iter().filter(|(_, pp)| *pp == cur).map(|(p, _)| *p));
        i += 1;
    }
    out
}

/// Fields of /proc/PID/stat after the command name: [0] = state, [1] = ppid, ...,
/// [11] = utime, [12] = stime.
fn stat_fields(pid: u32) -> Option<Vec<String>> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &s[s.rfind(')')? + 1..];
    Some(rest.split_whitespace().map(str::to_string).collect())
}

fn rss_kib(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
}

fn ticks(pid: u32) -> Option<u64> {
    let f = stat_fields(pid)?;
    Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
}

/// (pid, tid) → ns on CPU.
fn schedstat(pids: &[u32]) -> BTreeMap<(u32, u32), u64> {
    let mut m = BTreeMap::new();
    for &p in pids {
        let Ok(rd) = std::fs::read_dir(format!("/proc/{p}/task")) else {
            continue;
        };
        for e in rd.flatten() {
            let Some(t) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
                continue;
            };
            if let Some(ns) = std::fs::read_to_string(format!("/proc/{p}/task/{t}/schedstat"))
                .ok()
                .and_then(|s| s.split_whitespace().next().and_then(|v| v.parse().ok()))
            {
                m.insert((p, t), ns);
            }
        }
    }
    m
}

pub struct Target {
    pub role: String,
    pub pid: u32,
}

/// Sample every target's tree every second for `secs`; one record per target.
pub fn sample(
    targets: &[Target],
    secs: f64,
    daemon: &str,
    instances: u32,
) -> anyhow::Result<Vec<Footprint>> {
    if secs <= 0.0 {
        bail!("--secs must be positive");
    }
    let trees: Vec<Vec<u32>> = targets.iter().map(|t| process_tree(t.pid)).collect();
    for t in targets {
        if ticks(t.pid).is_none() {
            bail!("{} (pid {}) is not running", t.role, t.pid);
        }
    }
    let start_ns = sys::monotonic_ns();
    let start_sched: Vec<_> = trees.iter().map(|t| schedstat(t)).collect();
    let start_ticks: Vec<u64> = trees
        .iter()
        .map(|t| t.iter().filter_map(|&p| ticks(p)).sum())
        .collect();
    let mut rss: Vec<Vec<u64>> = vec![Vec::new(); targets.len()];
    let end_ns = start_ns + (secs * 1e9) as i64;
    let mut next = start_ns;
    loop {
        for (i, tree) in trees.iter().enumerate() {
            rss[i].push(tree.iter().filter_map(|&p| rss_kib(p)).sum());
        }
        next += 1_000_000_000;
        if next >= end_ns {
            sys::sleep_until_monotonic(end_ns);
            break;
        }
        sys::sleep_until_monotonic(next);
    }
    let real = (sys::monotonic_ns() - start_ns) as f64 / 1e9;
    let tck = sys::clk_tck();
    let mut out = Vec::new();
    for (i, t) in targets.iter().enumerate() {
        let tree = &trees[i];
        if ticks(t.pid).is_none() {
            bail!("{} (pid {}) exited during the window", t.role, t.pid);
        }
        let end_sched = schedstat(tree);
        let cpu_ns: u64 = end_sched
            .iter()
            .filter_map(|(k, v)| start_sched[i].get(k).map(|s| v.saturating_sub(*s)))
            .sum();
        let end_ticks: u64 = tree.iter().filter_map(|&p| ticks(p)).sum();
        let r = &rss[i];
        out.push(Footprint {
            daemon: daemon.to_string(),
            instances,
            role: t.role.clone(),
            secs: real,
            procs: tree.len() as u32,
            rss_kib_mean: r.iter().sum::<u64>() as f64 / r.len().max(1) as f64,
            rss_kib_max: r.iter().copied().max().unwrap_or(0) as f64,
            cpu_s: cpu_ns as f64 / 1e9,
            cpu_s_ticks: end_ticks.saturating_sub(start_ticks[i]) as f64 / tck,
        });
    }
    Ok(out)
}

/// `ROLE=PID`
pub fn parse_target(s: &str) -> anyhow::Result<Target> {
    let (role, pid) = s
        .split_once('=')
        .with_context(|| format!("{s:?}: expected ROLE=PID"))?;
    Ok(Target {
        role: role.to_string(),
        pid: pid.parse().with_context(|| format!("{s:?}: bad pid"))?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_this_process() {
        let me = std::process::id();
        let tree = process_tree(me);
        assert_eq!(tree[0], me);
        assert!(rss_kib(me).unwrap() > 0);
        assert!(!schedstat(&[me]).is_empty() || ticks(me).is_some());
        let t = parse_target(&format!("master={me}")).unwrap();
        let r = sample(&[t], 0.2, "self", 1).unwrap();
        assert_eq!(r.len(), 1);
        assert!(r[0].rss_kib_max > 0.0);
    }
}
