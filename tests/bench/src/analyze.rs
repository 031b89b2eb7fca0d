//! Turn a prober or capture log into one measurement: the outage of one run, or the advert
//! interval jitter of one footprint window.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::Path;

use anyhow::{bail, Context as _};

use crate::record::{Jitter, Outage};
use crate::stats;

#[derive(Debug, Default)]
pub struct Log {
    pub sent: u64,
    /// (rx_ns, seq, node)
    pub answers: Vec<(i64, u64, String)>,
    /// (rx_ns, src, vrid, prio)
    pub adverts: Vec<(i64, Ipv4Addr, u8, u8)>,
    /// (rx_ns, sender_ip, target_ip)
    pub arps: Vec<(i64, Ipv4Addr, Ipv4Addr)>,
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
            Some("R") if f.len() >= 6 => log.arps.push((
                f[1].parse().with_context(bad)?,
                f[3].parse().with_context(bad)?,
                f[5].parse().with_context(bad)?,
            )),
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
            .find(|r| r.1 == i.vip && r.2 == i.vip && r.0 >= t)
            .map(|r| r.0)
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
