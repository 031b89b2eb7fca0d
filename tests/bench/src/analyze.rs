//! Turn a prober or capture log into one measurement: the outage of one run, or the advert
//! interval jitter of one footprint window.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::Path;

use anyhow::{bail, Context as _};

use crate::record::{Jitter, Outage, QuorumOutage, RenewLatency};
use crate::stats;

#[derive(Debug, Default)]
pub struct Log {
    pub sent: u64,
    /// (rx_ns, seq, node)
    pub answers: Vec<(i64, u64, String)>,
    /// (rx_ns, src, vrid, prio)
    pub adverts: Vec<(i64, Ipv4Addr, u8, u8)>,
    pub arps: Vec<Arp>,
}

/// An ARP frame seen on the wire.
#[derive(Debug, Clone, PartialEq)]
pub struct Arp {
    pub ts: i64,
    /// 1 request, 2 reply.
    pub op: u16,
    pub sender_ip: Ipv4Addr,
    /// aa:bb:cc:dd:ee:ff
    pub sender_mac: String,
    pub target_ip: Ipv4Addr,
}

pub fn parse_log(text: &str) -> anyhow::Result<Log> {
    let mut log = Log::default();
    for (i, line) in text.lines().enumerate() {
        let f: Vec<&str> = line.split_whitespace().collect();
        let bad = || format!("line {}: {line:?}", i + 1);
        match f.first().copied() {
            Some("#") => {
                if let Some(s) = f.iter().find_map(|w| w.strip_prefix("sent=")) {
                    log.sent = s.parse().with_context(bad)?;
                }
            }
            Some("A") if f.len() >= 4 => log.answers.push((
                f[1].parse().with_context(bad)?,
                f[2].parse().with_context(bad)?,
                f[3].to_string(),
            )),
            Some("V") if f.len() >= 5 => log.adverts.push((
                f[1].parse().with_context(bad)?,
                f[2].parse().with_context(bad)?,
                f[3].parse().with_context(bad)?,
                f[4].parse().with_context(bad)?,
            )),
            Some("R") if f.len() >= 6 => log.arps.push(Arp {
                ts: f[1].parse().with_context(bad)?,
                op: f[2].parse().with_context(bad)?,
                sender_ip: f[3].parse().with_context(bad)?,
                sender_mac: f[4].to_ascii_lowercase(),
                target_ip: f[5].parse().with_context(bad)?,
            }),
            None => {}
            _ => bail!("unrecognised {}", bad()),
        }
    }
    Ok(log)
}

pub fn read_log(path: &Path) -> anyhow::Result<Log> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    parse_log(&text).with_context(|| format!("parsing {}", path.display()))
}

fn ms(a: i64, b: i64) -> f64 {
    (b - a) as f64 / 1e6
}

pub struct OutageInput<'a> {
    pub daemon: &'a str,
    pub scenario: &'a str,
    pub version: u8,
    pub interval_ms: u64,
    pub run: u32,
    pub old: &'a str,
    pub new: &'a str,
    pub old_ip: Ipv4Addr,
    pub new_ip: Ipv4Addr,
    pub vip: Ipv4Addr,
    pub vrid: u8,
    pub new_priority: u8,
    pub event_ns: i64,
}

/// The figures of one failover run; see [`Outage`] for each field's definition.
pub fn outage(log: &Log, i: &OutageInput) -> Outage {
    let first_new = log
        .answers
        .iter()
        .find(|a| a.2 == i.new && a.0 >= i.event_ns)
        .map(|a| a.0);
    let last_old = first_new.and_then(|t| {
        log.answers
            .iter()
            .filter(|a| a.2 == i.old && a.0 < t)
            .map(|a| a.0)
            .next_back()
    });
    let old_answers_after = first_new.map_or(0, |t| {
        log.answers
            .iter()
            .filter(|a| a.2 == i.old && a.0 > t)
            .count() as u64
    });
    let adverts: Vec<_> = log.adverts.iter().filter(|a| a.2 == i.vrid).collect();
    let new_adv = adverts
        .iter()
        .find(|a| a.1 == i.new_ip && a.3 > 0 && a.0 >= i.event_ns)
        .map(|a| a.0);
    let before = |t: i64| adverts.iter().filter(move |a| a.1 == i.old_ip && a.0 < t);
    let (old_prio0, old_last) = match new_adv {
        Some(t) => (
            before(t).find(|a| a.3 == 0).map(|a| a.0),
            before(t).filter(|a| a.3 > 0).map(|a| a.0).next_back(),
        ),
        None => (None, None),
    };
    let (wire_from, wire_start) = match (i.scenario, old_prio0) {
        ("sigterm", Some(t)) => ("prio0", Some(t)),
        _ => ("last", old_last),
    };
    let garp = new_adv.and_then(|t| {
        log.arps
            .iter()
            .find(|r| r.sender_ip == i.vip && r.target_ip == i.vip && r.ts >= t)
            .map(|r| r.ts)
    });
    Outage {
        daemon: i.daemon.to_string(),
        scenario: i.scenario.to_string(),
        version: i.version,
        interval_ms: i.interval_ms,
        run: i.run,
        new_priority: i.new_priority,
        client_ms: first_new.zip(last_old).map(|(n, o)| ms(o, n)),
        wire_ms: new_adv.zip(wire_start).map(|(n, o)| ms(o, n)),
        wire_from: wire_from.to_string(),
        advert_to_answer_ms: first_new.zip(wire_start).map(|(n, o)| ms(o, n)),
        event_to_advert_ms: new_adv.map(|t| ms(i.event_ns, t)),
        event_to_answer_ms: first_new.map(|t| ms(i.event_ns, t)),
        advert_to_garp_ms: new_adv.zip(garp).map(|(a, g)| ms(a, g)),
        old_prio0: old_prio0.is_some(),
        old_answers_after,
        probes_sent: log.sent,
        answers: log.answers.len() as u64,
    }
}

pub struct QuorumInput<'a> {
    pub variant: &'a str,
    pub run: u32,
    pub old: &'a str,
    pub new: &'a str,
    pub old_mac: &'a str,
    pub new_mac: &'a str,
    pub new_ip: Ipv4Addr,
    pub vip: Ipv4Addr,
    pub vrid: u8,
    pub event_ns: i64,
    pub leader: Option<String>,
    pub lease_ms: u64,
    pub renew_ms: u64,
    pub margin_ms: u64,
    /// `tandem status --json` of a member after the run (its `.quorum.fence_history`).
    pub status: Option<&'a serde_json::Value>,
    /// The simulated BMC's power-off time, ns since the epoch.
    pub power_off_ns: Option<i64>,
    /// The group (its name in `.quorum.groups`) and its epoch just before the kill.
    pub group: &'a str,
    pub epoch_before: Option<u64>,
}

/// The upper end of the Raft election timeout for a lease, as crates/quorum/src/node.rs sets
/// it: `election_timeout_max = 2 × clamp(lease / 8, 100 ms, 2 s)`.
pub fn election_max_ms(lease_ms: u64) -> u64 {
    2 * (lease_ms / 8).clamp(100, 2000)
}

/// The first fence of `node` (switched off) attempted at or after `event_ms`, and its
/// result: (attempt, result, verified), wall-clock ms.
fn fence_times(
    status: &serde_json::Value,
    node: &str,
    event_ms: f64,
) -> Option<(f64, Option<(f64, bool)>)> {
    let hist = status.pointer("/quorum/fence_history")?.as_array()?;
    let of = |r: &&serde_json::Value, stage: &str| {
        r.get("node").and_then(|v| v.as_str()) == Some(node)
            && r.get("action").and_then(|v| v.as_str()) == Some("off")
            && r.get("stage").and_then(|v| v.as_str()) == Some(stage)
    };
    let at = |r: &serde_json::Value| r.get("at_unix_ms").and_then(|v| v.as_f64());
    // The record's time is the proposer's clock in whole ms: allow for the truncation.
    let attempt = hist
        .iter()
        .filter(|r| of(r, "attempt"))
        .filter_map(at)
        .find(|t| *t >= event_ms.floor() - 1.0)?;
    let result = hist
        .iter()
        .filter(|r| of(r, "result"))
        .filter_map(|r| Some((at(r)?, r.get("ok")?.as_bool()?)))
        .find(|(t, _)| *t >= attempt);
    Some((attempt, result))
}

/// The figures of one quorum-mode kill -9 run; see [`QuorumOutage`] for each field.
pub fn quorum_outage(log: &Log, i: &QuorumInput) -> QuorumOutage {
    let ev = i.event_ns;
    let first_new = log
        .answers
        .iter()
        .find(|a| a.2 == i.new && a.0 >= ev)
        .map(|a| a.0);
    let last_old = first_new.and_then(|t| {
        log.answers
            .iter()
            .filter(|a| a.2 == i.old && a.0 < t)
            .map(|a| a.0)
            .next_back()
    });
    let old_answers_after = first_new.map_or(0, |t| {
        log.answers
            .iter()
            .filter(|a| a.2 == i.old && a.0 > t)
            .count() as u64
    });
    let for_vip = |mac: &str| {
        let mac = mac.to_ascii_lowercase();
        log.arps
            .iter()
            .filter(move |r| r.sender_ip == i.vip && r.sender_mac == mac)
    };
    let new_arp = for_vip(i.new_mac).find(|r| r.ts >= ev).map(|r| r.ts);
    let new_garp = for_vip(i.new_mac)
        .find(|r| r.ts >= ev && r.target_ip == i.vip)
        .map(|r| r.ts);
    let old_arp_after =
        new_arp.map_or(0, |t| for_vip(i.old_mac).filter(|r| r.ts > t).count()) as u64;
    let new_adv = log
        .adverts
        .iter()
        .find(|a| a.2 == i.vrid && a.1 == i.new_ip && a.3 > 0 && a.0 >= ev)
        .map(|a| a.0);
    let event_ms = ev as f64 / 1e6;
    let fence = i.status.and_then(|s| fence_times(s, i.old, event_ms));
    // The epoch grows by one per grant; only count it once the new node holds the group.
    let grants = i.status.and_then(|s| {
        let g = s.pointer("/quorum/groups")?.get(i.group)?;
        (g.get("holder")?.as_str()? == i.new)
            .then(|| g.get("epoch")?.as_u64()?.checked_sub(i.epoch_before?))
            .flatten()
    });
    QuorumOutage {
        variant: i.variant.to_string(),
        run: i.run,
        old: i.old.to_string(),
        new: i.new.to_string(),
        leader: i.leader.clone(),
        lease_ms: i.lease_ms,
        renew_ms: i.renew_ms,
        margin_ms: i.margin_ms,
        election_max_ms: election_max_ms(i.lease_ms),
        event_to_arp_ms: new_arp.map(|t| ms(ev, t)),
        event_to_garp_ms: new_garp.map(|t| ms(ev, t)),
        event_to_answer_ms: first_new.map(|t| ms(ev, t)),
        event_to_advert_ms: new_adv.map(|t| ms(ev, t)),
        client_ms: first_new.zip(last_old).map(|(n, o)| ms(o, n)),
        old_arp_after,
        old_answers_after,
        event_to_fence_attempt_ms: fence.map(|(a, _)| a - event_ms),
        fence_ms: fence.and_then(|(a, r)| r.map(|(t, _)| t - a)),
        fence_verified: fence.and_then(|(_, r)| r.map(|(_, ok)| ok)),
        event_to_power_off_ms: i.power_off_ns.filter(|t| *t >= ev).map(|t| ms(ev, t)),
        grants,
        probes_sent: log.sent,
        answers: log.answers.len() as u64,
    }
}

/// Samples the ring of `.quorum.renew_latency_us` keeps at most (crates/quorum/src/node.rs).
pub const RENEW_RING: usize = 4096;

/// The holder's renewal latencies committed during a window: its `tandem status --json`
/// after the window, less the first `skip` samples (those it had before).
pub fn renew_latency(
    status: &serde_json::Value,
    skip: usize,
    voters: u32,
    members: Vec<String>,
    holder: &str,
    secs: f64,
    renew_ms: u64,
) -> anyhow::Result<RenewLatency> {
    let all: Vec<u64> = status
        .pointer("/quorum/renew_latency_us")
        .and_then(|v| v.as_array())
        .context("no .quorum.renew_latency_us in the status (a tandem without it?)")?
        .iter()
        .map(|v| v.as_u64().context("a latency that is not an integer"))
        .collect::<anyhow::Result<_>>()?;
    if all.len() >= RENEW_RING {
        bail!(
            "the latency ring is full ({} samples): the window's first samples may be gone; \
             use a shorter window",
            all.len()
        );
    }
    if skip > all.len() {
        bail!("{skip} samples before the window but {} after", all.len());
    }
    let samples_us = all[skip..].to_vec();
    let msv: Vec<f64> = samples_us.iter().map(|u| *u as f64 / 1000.0).collect();
    let s = stats::summarize(&msv);
    Ok(RenewLatency {
        voters,
        members,
        holder: holder.to_string(),
        leader: status
            .pointer("/quorum/leader")
            .and_then(|v| v.as_str())
            .map(str::to_string),
        secs,
        renew_ms,
        samples_us,
        p50_ms: s.map(|s| s.median),
        p99_ms: s.map(|s| s.p99),
        max_ms: s.map(|s| s.max),
    })
}

/// Interval jitter of the adverts `src` sent: for each VRID the gaps between consecutive
/// adverts (priority > 0), each gap's deviation from the configured interval, pooled.
pub fn jitter(
    log: &Log,
    src: Ipv4Addr,
    daemon: &str,
    instances: u32,
    interval_ms: u64,
    secs: f64,
) -> Jitter {
    let mut by_vrid: BTreeMap<u8, Vec<i64>> = BTreeMap::new();
    for a in log.adverts.iter().filter(|a| a.1 == src && a.3 > 0) {
        by_vrid.entry(a.2).or_default().push(a.0);
    }
    let int = interval_ms as f64;
    let mut dev = Vec::new();
    let mut err_sum = 0.0;
    let mut adverts = 0u64;
    for ts in by_vrid.values_mut() {
        ts.sort_unstable();
        adverts += ts.len() as u64;
        for w in ts.windows(2) {
            let gap = ms(w[0], w[1]);
            dev.push((gap - int).abs());
            err_sum += gap - int;
        }
    }
    let s = stats::summarize(&dev);
    Jitter {
        daemon: daemon.to_string(),
        instances,
        interval_ms,
        secs,
        vrids: by_vrid.len() as u32,
        adverts,
        expected: (f64::from(instances) * secs * 1000.0 / int).round() as u64,
        p50_ms: s.map_or(f64::NAN, |s| s.median),
        p99_ms: s.map_or(f64::NAN, |s| s.p99),
        max_ms: s.map_or(f64::NAN, |s| s.max),
        mean_gap_error_ms: if dev.is_empty() {
            f64::NAN
        } else {
            err_sum / dev.len() as f64
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOG: &str = "\
# probe target=192.0.2.100:7777 sent=500 period_us=1000 answers=6
V 1000000000 192.0.2.1 51 150 3 100
A 1050000000 1 lb1
V 1100000000 192.0.2.1 51 150 3 100
V 1100000001 192.0.2.3 52 150 3 100
A 1150000000 2 lb1
V 1460000000 192.0.2.2 51 100 3 100
R 1460300000 1 192.0.2.100 00:00:5e:00:01:33 192.0.2.100
A 1462000000 400 lb2
A 1463000000 401 lb1
A 1464000000 402 lb2
";

    fn input(scenario: &str) -> OutageInput<'static> {
        OutageInput {
            daemon: "tandem",
            scenario: if scenario == "sigterm" {
                "sigterm"
            } else {
                "linkcut"
            },
            version: 3,
            interval_ms: 100,
            run: 1,
            old: "lb1",
            new: "lb2",
            old_ip: "192.0.2.1".parse().unwrap(),
            new_ip: "192.0.2.2".parse().unwrap(),
            vip: "192.0.2.100".parse().unwrap(),
            vrid: 51,
            new_priority: 100,
            event_ns: 1_120_000_000,
        }
    }

    #[test]
    fn outage_figures() {
        let log = parse_log(LOG).unwrap();
        let o = outage(&log, &input("linkcut"));
        assert_eq!(o.client_ms, Some(312.0));
        assert_eq!(o.wire_ms, Some(360.0));
        assert_eq!(o.wire_from, "last");
        assert_eq!(o.advert_to_answer_ms, Some(362.0));
        assert_eq!(o.event_to_advert_ms, Some(340.0));
        assert_eq!(o.event_to_answer_ms, Some(342.0));
        assert_eq!(o.advert_to_garp_ms, Some(0.3));
        assert_eq!(o.old_answers_after, 1);
        assert!(!o.old_prio0);
        assert_eq!((o.probes_sent, o.answers), (500, 5));
    }

    #[test]
    fn sigterm_starts_at_priority_zero() {
        let text = LOG.replace(
            "A 1150000000 2 lb1\n",
            "A 1150000000 2 lb1\nV 1400000000 192.0.2.1 51 0 3 100\n",
        );
        let o = outage(&parse_log(&text).unwrap(), &input("sigterm"));
        assert!(o.old_prio0);
        assert_eq!(o.wire_from, "prio0");
        assert_eq!(o.wire_ms, Some(60.0));
    }

    const QLOG: &str = "\
# probe target=192.0.2.110:7777 sent=1500 period_us=1000 answers=5 arp=192.0.2.110 arp_sent=1500
V 1000000000 192.0.2.11 61 200 3 100
A 1000500000 1 lb1
R 1000600000 2 192.0.2.110 aa:aa:aa:aa:aa:01 0.0.0.0
A 1100000000 2 lb1
R 2100000000 1 192.0.2.110 AA:AA:AA:AA:AA:02 192.0.2.110
V 2100100000 192.0.2.12 61 100 3 100
R 2100600000 2 192.0.2.110 aa:aa:aa:aa:aa:02 0.0.0.0
R 2100700000 2 192.0.2.110 aa:aa:aa:aa:aa:01 0.0.0.0
A 2102000000 900 lb2
A 2103000000 901 lb1
";

    fn qinput(status: Option<&serde_json::Value>) -> QuorumInput<'_> {
        QuorumInput {
            variant: "fence",
            run: 3,
            old: "lb1",
            new: "lb2",
            old_mac: "aa:aa:aa:aa:aa:01",
            new_mac: "aa:aa:aa:aa:aa:02",
            new_ip: "192.0.2.12".parse().unwrap(),
            vip: "192.0.2.110".parse().unwrap(),
            vrid: 61,
            event_ns: 1_050_000_000,
            leader: Some("arb".into()),
            lease_ms: 1000,
            renew_ms: 250,
            margin_ms: 100,
            status,
            power_off_ns: Some(1_900_000_000),
            group: "VI_1",
            epoch_before: Some(4),
        }
    }

    #[test]
    fn quorum_outage_figures() {
        let log = parse_log(QLOG).unwrap();
        assert_eq!(log.arps[1].sender_mac, "aa:aa:aa:aa:aa:02");
        let status = serde_json::json!({"quorum": {
        "groups": {"VI_1": {"holder": "lb2", "epoch": 6}},
        "fence_history": [
            {"at_unix_ms": 900, "node": "lb1", "action": "off", "stage": "attempt", "ok": false},
            {"at_unix_ms": 1650, "node": "lb1", "action": "off", "stage": "attempt", "ok": false},
            {"at_unix_ms": 1700, "node": "lb2", "action": "off", "stage": "result", "ok": true},
            {"at_unix_ms": 1950, "node": "lb1", "action": "off", "stage": "result", "ok": true},
            {"at_unix_ms": 2500, "node": "lb1", "action": "on", "stage": "result", "ok": true}
        ]}});
        let q = quorum_outage(&log, &qinput(Some(&status)));
        assert_eq!(q.event_to_arp_ms, Some(1050.0));
        assert_eq!(q.event_to_garp_ms, Some(1050.0));
        assert_eq!(q.event_to_advert_ms, Some(1050.1));
        assert_eq!(q.event_to_answer_ms, Some(1052.0));
        assert_eq!(q.client_ms, Some(1002.0));
        assert_eq!((q.old_arp_after, q.old_answers_after), (1, 1));
        assert_eq!(q.event_to_fence_attempt_ms, Some(600.0));
        assert_eq!(q.fence_ms, Some(300.0));
        assert_eq!(q.fence_verified, Some(true));
        assert_eq!(q.event_to_power_off_ms, Some(850.0));
        assert_eq!(q.grants, Some(2));
        assert_eq!(q.election_max_ms, 250);
        assert_eq!((q.probes_sent, q.answers), (1500, 4));
        let none = quorum_outage(&log, &qinput(None));
        assert_eq!((none.fence_ms, none.fence_verified), (None, None));
        assert_eq!(none.grants, None);
    }

    #[test]
    fn election_timeout_follows_the_lease() {
        assert_eq!(election_max_ms(1000), 250);
        assert_eq!(election_max_ms(400), 200);
        assert_eq!(election_max_ms(30_000), 4000);
        assert_eq!(election_max_ms(60_000), 4000);
    }

    #[test]
    fn renew_latency_of_the_window() {
        let status = serde_json::json!({"quorum": {
            "leader": "arb",
            "renew_latency_us": [90000, 80000, 1000, 2000, 3000, 4000]
        }});
        let members = vec!["lb1".into(), "lb2".into(), "arb".into()];
        let r = renew_latency(&status, 2, 3, members, "lb1", 1.0, 250).unwrap();
        assert_eq!(r.samples_us, vec![1000, 2000, 3000, 4000]);
        assert_eq!(r.p50_ms, Some(2.5));
        assert_eq!(r.p99_ms, Some(4.0));
        assert_eq!(r.leader.as_deref(), Some("arb"));
        let empty = renew_latency(&status, 6, 3, vec![], "lb1", 1.0, 250).unwrap();
        assert_eq!(empty.p99_ms, None);
        assert!(renew_latency(&status, 7, 3, vec![], "lb1", 1.0, 250).is_err());
        let full = serde_json::json!({"quorum": {"renew_latency_us": vec![1; RENEW_RING]}});
        assert!(renew_latency(&full, 0, 3, vec![], "lb1", 1.0, 250).is_err());
        assert!(renew_latency(&serde_json::json!({}), 0, 3, vec![], "lb1", 1.0, 250).is_err());
    }

    #[test]
    fn jitter_of_two_vrids() {
        let mut text = String::new();
        for (k, t) in [0i64, 100, 201, 300].iter().enumerate() {
            text += &format!("V {} 192.0.2.1 1 150 3 100\n", t * 1_000_000);
            text += &format!("V {} 192.0.2.1 2 150 3 100\n", t * 1_000_000 + 5 + k as i64);
        }
        let j = jitter(
            &parse_log(&text).unwrap(),
            "192.0.2.1".parse().unwrap(),
            "tandem",
            2,
            100,
            0.4,
        );
        assert_eq!((j.vrids, j.adverts, j.expected), (2, 8, 8));
        assert!((j.max_ms - 1.0).abs() < 1e-3, "{j:?}");
    }
}
