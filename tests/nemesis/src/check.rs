//! The checker: the invariants of ../shared/ARCHITECTURE.md, judged from outside the nodes
//! (vip-watch's samples of every namespace's addresses and the client's ARP replies) and
//! from inside (each daemon's log, each Raft store after the run).
//!
//! * **one holder** (`quorum` mode): no instant with two holders, by address or by ARP;
//! * **fenced before stolen**: follows from the above in this lab, where a fence is the only
//!   thing that removes a dead or hung node's VIPs (a killed daemon leaves them configured),
//!   so a VIP taken from an unfenced node shows as two holders; the fence history is also
//!   checked to have an attempt before every verified fence;
//! * **no holder without a lease** (`quorum` mode): in every daemon's log, an instance
//!   becomes MASTER only while its last lease line says `held=true`;
//! * **no committed entry lost**: every write the nemesis saw acknowledged (index, term) is in
//!   every store, and the stores agree on every index they all hold up to the lowest commit;
//! * **a holder within the failover bound**: a spell without a holder may last through a
//!   fault, but not longer than the bound after the last fault that overlapped it ended.
//!
//! Pure functions over parsed records, so each rule is unit-tested on made-up timelines.

use serde::Serialize;
use serde_json::Value;

/// One broken invariant.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Violation {
    pub invariant: &'static str,
    /// Unix ms (0 when the record has no time).
    pub at_ms: f64,
    pub detail: String,
}

/// A fault window, Unix ms.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Window {
    pub label: String,
    pub start_ms: f64,
    pub end_ms: f64,
}

/// The holder timeline from vip-watch: (Unix ms from, holders) in order.
pub fn timeline(watch: &Value) -> Vec<(f64, Vec<String>)> {
    let t0 = watch["started_unix_ms"].as_f64().unwrap_or(0.0);
    watch["holder_changes"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|c| {
                    let holders = c["holders"]
                        .as_array()
                        .map(|h| {
                            h.iter()
                                .filter_map(|x| x.as_str().map(String::from))
                                .collect()
                        })
                        .unwrap_or_default();
                    (t0 + c["t_ms"].as_f64().unwrap_or(0.0), holders)
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The end of the watch, Unix ms.
pub fn watch_end(watch: &Value) -> f64 {
    watch["started_unix_ms"].as_f64().unwrap_or(0.0) + watch["duration_ms"].as_f64().unwrap_or(0.0)
}

/// vip-watch's two-holder samples, one violation per spell: samples of the same kind and
/// holders no more than [`SPELL_GAP_MS`] apart are one spell (a report of 300 lines for one
/// 700 ms overlap hides the other violations).
pub fn two_holders(watch: &Value) -> Vec<Violation> {
    let t0 = watch["started_unix_ms"].as_f64().unwrap_or(0.0);
    // (kind, holders, first, last, samples)
    let mut spells: Vec<(String, String, f64, f64, usize)> = Vec::new();
    for v in watch["violations"].as_array().into_iter().flatten() {
        let kind = v["kind"].as_str().unwrap_or("?").to_string();
        let holders = v["holders"].to_string();
        let t = t0 + v["t_ms"].as_f64().unwrap_or(0.0);
        match spells
            .iter_mut()
            .rev()
            .find(|s| s.0 == kind && s.1 == holders)
        {
            Some(s) if t - s.3 <= SPELL_GAP_MS => {
                s.3 = t;
                s.4 += 1;
            }
            _ => spells.push((kind, holders, t, t, 1)),
        }
    }
    let stored: usize = spells.iter().map(|s| s.4).sum();
    let mut out: Vec<Violation> = spells
        .into_iter()
        .map(|(kind, holders, first, last, n)| Violation {
            invariant: "one holder",
            at_ms: first,
            detail: if n == 1 {
                format!("{holders} seen holding the VIP at once ({kind})")
            } else {
                format!(
                    "{holders} seen holding the VIP at once ({kind}) for {:.0} ms, {n} samples",
                    last - first
                )
            },
        })
        .collect();
    out.sort_by(|a, b| a.at_ms.total_cmp(&b.at_ms));
    let total = watch["violations_total"].as_u64().unwrap_or(0);
    if total as usize > stored {
        out.push(Violation {
            invariant: "one holder",
            at_ms: 0.0,
            detail: format!(
                "{} more samples with two holders (vip-watch keeps the first {stored})",
                total as usize - stored
            ),
        });
    }
    out
}

/// Two-holder samples further apart than this are separate spells.
pub const SPELL_GAP_MS: f64 = 100.0;

/// The spells without a holder, (from, to) Unix ms, after the first holder appeared.
pub fn gaps(timeline: &[(f64, Vec<String>)], end_ms: f64) -> Vec<(f64, f64)> {
    let mut out = Vec::new();
    let mut seen_holder = false;
    for (i, (t, holders)) in timeline.iter().enumerate() {
        if !holders.is_empty() {
            seen_holder = true;
            continue;
        }
        if !seen_holder {
            continue;
        }
        let to = timeline.get(i + 1).map_or(end_ms, |n| n.0);
        out.push((*t, to));
    }
    out
}

/// Share of `[from, to]` with exactly one holder.
pub fn availability(timeline: &[(f64, Vec<String>)], from: f64, to: f64) -> f64 {
    if to <= from {
        return 0.0;
    }
    let mut one = 0.0;
    for (i, (t, holders)) in timeline.iter().enumerate() {
        let next = timeline.get(i + 1).map_or(to, |n| n.0);
        let (a, b) = (t.max(from), next.min(to));
        if b > a && holders.len() == 1 {
            one += b - a;
        }
    }
    one / (to - from)
}

/// Spells without a holder that outlast the bound: the bound counts from the gap's start,
/// or from the end of a fault that was under way by then; a fault that starts later excuses
/// the gap only if it started while the gap was still within the bound (so a fault cannot
/// excuse an outage that had already gone on too long before it).
pub fn late_failovers(gaps: &[(f64, f64)], faults: &[Window], bound_ms: f64) -> Vec<Violation> {
    let mut out = Vec::new();
    let mut sorted: Vec<&Window> = faults.iter().collect();
    sorted.sort_by(|a, b| a.start_ms.total_cmp(&b.start_ms));
    for &(from, to) in gaps {
        let mut excuse = from;
        for w in &sorted {
            if w.start_ms >= to || w.start_ms > excuse + bound_ms {
                continue;
            }
            excuse = excuse.max(w.end_ms);
        }
        if to - excuse > bound_ms {
            out.push(Violation {
                invariant: "holder within the failover bound",
                at_ms: from,
                detail: format!(
                    "no holder for {:.0} ms, {:.0} ms past the bound of {:.0} ms after the last fault",
                    to - from,
                    to - excuse - bound_ms,
                    bound_ms
                ),
            });
        }
    }
    out
}

/// "no holder without a lease", from one daemon's log (appended across restarts).
pub fn masters_without_lease(node: &str, log: &str) -> Vec<Violation> {
    let mut out = Vec::new();
    let mut held: std::collections::BTreeMap<String, bool> = Default::default();
    for line in log.lines() {
        if line.contains("tandem running") || line.contains("tandem_daemon: starting") {
            held.clear();
        }
        let Some(inst) = field(line, "instance=") else {
            continue;
        };
        if line.contains(" lease ") || line.contains("runtime: lease") {
            if let Some(h) = field(line, "held=") {
                held.insert(inst.to_string(), h == "true");
            }
        } else if line.contains("transition")
            && line.contains("to=\"MASTER\"")
            && !held.get(inst).copied().unwrap_or(false)
        {
            out.push(Violation {
                invariant: "no holder without a lease",
                at_ms: 0.0,
                detail: format!(
                    "{node}: {inst} became MASTER without a lease: {}",
                    line.trim()
                ),
            });
        }
    }
    out
}

fn field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    let at = line.find(key)? + key.len();
    let rest = &line[at..];
    Some(rest.split(|c: char| c.is_whitespace()).next().unwrap_or(""))
}

/// An acknowledged write: where the log said it committed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Ack {
    pub what: String,
    pub index: u64,
    pub term: u64,
}

/// "no committed entry lost", from every store (`tandem raft-log` output) after the run.
pub fn lost_entries(stores: &[(String, Value)], acks: &[Ack]) -> Vec<Violation> {
    let mut out = Vec::new();
    let entry_term = |store: &Value, index: u64| -> Option<u64> {
        store["entries"]
            .as_array()?
            .iter()
            .find(|e| e["log_id"]["index"].as_u64() == Some(index))
            .and_then(|e| e["log_id"]["leader_id"]["term"].as_u64())
    };
    let first_index = |store: &Value| -> u64 {
        store["entries"]
            .as_array()
            .and_then(|a| a.iter().filter_map(|e| e["log_id"]["index"].as_u64()).min())
            .unwrap_or(u64::MAX)
    };
    for (node, store) in stores {
        for ack in acks {
            // Below the first entry the log was compacted into a snapshot.
            if ack.index < first_index(store) {
                continue;
            }
            if entry_term(store, ack.index) != Some(ack.term) {
                out.push(Violation {
                    invariant: "no committed entry lost",
                    at_ms: 0.0,
                    detail: format!(
                        "{node}: acknowledged {} at index {} term {} is {}",
                        ack.what,
                        ack.index,
                        ack.term,
                        match entry_term(store, ack.index) {
                            Some(t) => format!("there with term {t}"),
                            None => "missing".into(),
                        }
                    ),
                });
            }
        }
    }
    let commit = stores
        .iter()
        .filter_map(|(_, s)| s["committed"]["index"].as_u64())
        .min()
        .unwrap_or(0);
    let start = stores
        .iter()
        .map(|(_, s)| first_index(s))
        .max()
        .unwrap_or(0);
    for index in start..=commit {
        let terms: Vec<(String, Option<u64>)> = stores
            .iter()
            .map(|(n, s)| (n.clone(), entry_term(s, index)))
            .collect();
        let first = terms.first().and_then(|t| t.1);
        if terms.iter().any(|t| t.1 != first) {
            out.push(Violation {
                invariant: "no committed entry lost",
                at_ms: 0.0,
                detail: format!("the stores disagree at committed index {index}: {terms:?}"),
            });
        }
    }
    out
}

/// Every verified fence in the history has its attempt before it.
pub fn fences_without_attempt(history: &Value) -> Vec<Violation> {
    let mut out = Vec::new();
    let records = history.as_array().cloned().unwrap_or_default();
    for (i, r) in records.iter().enumerate() {
        let verified_off = r["stage"] == "result" && r["ok"] == true && r["action"] == "off";
        let by_operator = r["by"].as_str().is_some_and(|b| b.contains("operator"));
        if !verified_off || by_operator {
            continue;
        }
        let attempted = records[..i]
            .iter()
            .any(|a| a["stage"] == "attempt" && a["node"] == r["node"] && a["by"] == r["by"]);
        if !attempted {
            out.push(Violation {
                invariant: "fenced before stolen",
                at_ms: r["at_unix_ms"].as_f64().unwrap_or(0.0),
                detail: format!(
                    "a verified fence of {} without a recorded attempt",
                    r["node"]
                ),
            });
        }
    }
    out
}

/// min, median, p99, max of `xs` (empty: None).
pub fn summary(xs: &[f64]) -> Option<[f64; 4]> {
    if xs.is_empty() {
        return None;
    }
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    let q = |p: f64| v[((v.len() - 1) as f64 * p).round() as usize];
    Some([v[0], q(0.5), q(0.99), v[v.len() - 1]])
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn tl(points: &[(f64, &[&str])]) -> Vec<(f64, Vec<String>)> {
        points
            .iter()
            .map(|(t, h)| (*t, h.iter().map(|s| s.to_string()).collect()))
            .collect()
    }

    #[test]
    fn timeline_and_two_holders_come_in_unix_time() {
        let w = json!({
            "started_unix_ms": 1000.0, "duration_ms": 50.0,
            "holder_changes": [{"t_ms": 1.0, "holders": ["lb1"]}, {"t_ms": 20.0, "holders": []}],
            "violations": [{"t_ms": 5.0, "kind": "arp", "holders": ["lb1", "lb2"]}],
            "violations_total": 3
        });
        assert_eq!(timeline(&w), tl(&[(1001.0, &["lb1"]), (1020.0, &[])]));
        let v = two_holders(&w);
        assert_eq!(v.len(), 2);
        assert_eq!(v[0].at_ms, 1005.0);
        assert!(v[1].detail.contains("2 more"));
        assert_eq!(watch_end(&w), 1050.0);
    }

    #[test]
    fn two_holder_samples_close_together_are_one_spell_per_kind() {
        let s = |t: f64, kind: &str| json!({"t_ms": t, "kind": kind, "holders": ["lb1", "lb2"]});
        let w = json!({
            "started_unix_ms": 0.0, "duration_ms": 5000.0,
            "violations": [s(100.0, "addr"), s(105.0, "arp"), s(150.0, "addr"), s(240.0, "addr"),
                           s(900.0, "addr")],
            "violations_total": 5
        });
        let v = two_holders(&w);
        let got: Vec<(f64, &str)> = v.iter().map(|v| (v.at_ms, v.detail.as_str())).collect();
        assert_eq!(
            got,
            [
                (
                    100.0,
                    r#"["lb1","lb2"] seen holding the VIP at once (addr) for 140 ms, 3 samples"#
                ),
                (105.0, r#"["lb1","lb2"] seen holding the VIP at once (arp)"#),
                (
                    900.0,
                    r#"["lb1","lb2"] seen holding the VIP at once (addr)"#
                ),
            ]
        );
    }

    #[test]
    fn gaps_start_after_the_first_holder() {
        let t = tl(&[
            (0.0, &[]),
            (10.0, &["lb1"]),
            (20.0, &[]),
            (35.0, &["lb2"]),
            (50.0, &[]),
        ]);
        assert_eq!(gaps(&t, 60.0), vec![(20.0, 35.0), (50.0, 60.0)]);
        let a = availability(&t, 10.0, 60.0);
        assert!((a - 25.0 / 50.0).abs() < 1e-9, "{a}");
    }

    #[test]
    fn a_gap_is_late_only_past_the_bound_after_its_faults() {
        let faults = vec![Window {
            label: "isolate lb1".into(),
            start_ms: 100.0,
            end_ms: 4000.0,
        }];
        // Through the fault and 2 s after it: fine with a 3 s bound.
        assert!(late_failovers(&[(1000.0, 6000.0)], &faults, 3000.0).is_empty());
        // 5 s after the fault ended: late.
        let late = late_failovers(&[(1000.0, 9000.0)], &faults, 3000.0);
        assert_eq!(late.len(), 1);
        assert!(
            late[0].detail.contains("2000 ms past"),
            "{}",
            late[0].detail
        );
        // No fault at all: the bound counts from the gap's start.
        assert_eq!(
            late_failovers(&[(10_000.0, 14_000.0)], &faults, 3000.0).len(),
            1
        );
        // A fault that starts when the outage has already lasted past the bound excuses
        // nothing before it.
        let later = vec![Window {
            label: "partition".into(),
            start_ms: 15_000.0,
            end_ms: 18_000.0,
        }];
        assert_eq!(late_failovers(&[(0.0, 20_000.0)], &later, 3000.0).len(), 1);
        // Faults back to back chain: each started within the bound of the one before.
        let chain = vec![
            Window {
                label: "a".into(),
                start_ms: 0.0,
                end_ms: 4000.0,
            },
            Window {
                label: "b".into(),
                start_ms: 6000.0,
                end_ms: 9000.0,
            },
        ];
        assert!(late_failovers(&[(1000.0, 11_000.0)], &chain, 3000.0).is_empty());
    }

    #[test]
    fn master_needs_a_held_lease_in_the_log() {
        let ok = "x INFO tandem_daemon::runtime: lease instance=VI_1 held=true epoch=1\n\
                  x INFO tandem_daemon::runtime: transition instance=VI_1 vrid=51 from=\"BACKUP\" to=\"MASTER\"\n";
        assert!(masters_without_lease("lb1", ok).is_empty());
        let bad = "x INFO tandem_daemon::runtime: lease instance=VI_1 held=true epoch=1\n\
                   x INFO tandem_daemon::runtime: lease instance=VI_1 held=false epoch=1\n\
                   x INFO tandem_daemon::runtime: transition instance=VI_1 vrid=51 from=\"BACKUP\" to=\"MASTER\"\n";
        assert_eq!(masters_without_lease("lb1", bad).len(), 1);
        // A restart forgets the lease the previous process held.
        let restarted = "x lease instance=VI_1 held=true\nx INFO tandem running node=lb1\n\
                         x transition instance=VI_1 from=\"BACKUP\" to=\"MASTER\"\n";
        assert_eq!(masters_without_lease("lb1", restarted).len(), 1);
    }

    fn store(committed: u64, entries: &[(u64, u64)]) -> Value {
        json!({
            "committed": {"index": committed},
            "entries": entries.iter().map(|(i, t)| json!({"log_id": {"index": i, "leader_id": {"term": t}}})).collect::<Vec<_>>()
        })
    }

    #[test]
    fn acknowledged_writes_must_be_in_every_store_and_stores_agree() {
        let acks = vec![Ack {
            what: "standby lb1".into(),
            index: 3,
            term: 2,
        }];
        let good = vec![
            ("a".to_string(), store(4, &[(1, 1), (2, 1), (3, 2), (4, 2)])),
            ("b".to_string(), store(3, &[(1, 1), (2, 1), (3, 2)])),
        ];
        assert!(lost_entries(&good, &acks).is_empty());
        let lost = vec![
            ("a".to_string(), store(4, &[(1, 1), (2, 1), (3, 2), (4, 2)])),
            ("b".to_string(), store(3, &[(1, 1), (2, 1), (3, 3)])),
        ];
        let v = lost_entries(&lost, &acks);
        assert_eq!(v.len(), 2, "{v:?}");
        // Compacted below the first entry: not judged.
        let compacted = vec![("a".to_string(), store(9, &[(8, 2), (9, 2)]))];
        assert!(lost_entries(&compacted, &acks).is_empty());
    }

    #[test]
    fn a_verified_fence_needs_its_attempt() {
        let h = json!([
            {"node": "lb1", "by": "arb", "action": "off", "stage": "attempt", "ok": false},
            {"node": "lb1", "by": "arb", "action": "off", "stage": "result", "ok": true},
            {"node": "lb2", "by": "arb", "action": "off", "stage": "result", "ok": true, "at_unix_ms": 5},
            {"node": "lb2", "by": "lb1 (operator)", "action": "off", "stage": "result", "ok": true},
        ]);
        let v = fences_without_attempt(&h);
        assert_eq!(v.len(), 1);
        assert!(v[0].detail.contains("lb2"));
    }

    #[test]
    fn summary_gives_min_median_p99_max() {
        assert_eq!(summary(&[]), None);
        assert_eq!(summary(&[3.0, 1.0, 2.0]), Some([1.0, 2.0, 3.0, 3.0]));
    }
}
