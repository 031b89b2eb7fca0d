//! docs/benchmarks.md: tables, goals, one SVG per figure, and the one-line-per-figure
//! summary (`metric tandem=X keepalived=Y ratio=Z`).

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;

use crate::quorum_report;
use crate::record::{Footprint, Jitter, Outage, QuorumOutage, Record, RenewLatency};
use crate::stats::{self, Summary};
use crate::svg;

pub const DAEMONS: [&str; 2] = ["tandem", "keepalived"];
const SCENARIOS: [&str; 3] = ["linkcut", "kill9", "sigterm"];
/// Slack the goals allow above an RFC bound.
const SLACK_MS: f64 = 10.0;
const JITTER_GOAL_MS: f64 = 5.0;
/// Outage medians closer than this (or 1 %) are a tie for "≤ keepalived's".
const TIE_MS: f64 = 1.0;

pub struct Meta {
    pub command: String,
    pub mode: String,
    pub date: String,
    pub tandem_rev: String,
    pub keepalived_version: String,
    pub notes: Vec<String>,
}

/// Skew_Time in ms: v2 (256 − p) / 256 s; v3 (256 − p) × interval / 256.
pub fn skew_ms(version: u8, interval_ms: u64, prio: u8) -> f64 {
    let f = (256.0 - f64::from(prio)) / 256.0;
    if version == 2 {
        f * 1000.0
    } else {
        f * interval_ms as f64
    }
}

pub fn mdi_ms(version: u8, interval_ms: u64, prio: u8) -> f64 {
    3.0 * interval_ms as f64 + skew_ms(version, interval_ms, prio)
}

/// The RFC's bound for a scenario: Master_Down_Interval for an unplanned failover,
/// Skew_Time for a priority-0 handover; both of the node taking over.
fn bound_ms(scenario: &str, version: u8, interval_ms: u64, prio: u8) -> f64 {
    if scenario == "sigterm" {
        skew_ms(version, interval_ms, prio)
    } else {
        mdi_ms(version, interval_ms, prio)
    }
}

fn interval_label(version: u8, interval_ms: u64) -> String {
    if interval_ms % 1000 == 0 {
        format!("v{version} {} s", interval_ms / 1000)
    } else {
        format!("v{version} {interval_ms} ms")
    }
}

fn interval_key(version: u8, interval_ms: u64) -> String {
    if interval_ms % 1000 == 0 {
        format!("v{version}-{}s", interval_ms / 1000)
    } else {
        format!("v{version}-{interval_ms}ms")
    }
}

fn scenario_title(s: &str) -> &'static str {
    match s {
        "linkcut" => "Unplanned failover: the master's link is cut (machine death)",
        "kill9" => "Unplanned failover: kill -9 of the master daemon (the node stays up)",
        "sigterm" => "Planned switchover: graceful stop (SIGTERM, priority-0 advert)",
        _ => "other",
    }
}

/// One daemon's footprint windows for one instance count and role, taken together.
struct Pooled {
    procs: u32,
    rss_kib_mean: f64,
    rss_kib_max: f64,
    cpu_s: f64,
    secs: f64,
    /// CPU % of each window, in the order taken.
    cpu_pct: Vec<f64>,
}

impl Pooled {
    fn of<'a>(windows: impl Iterator<Item = &'a Footprint>) -> Option<Pooled> {
        let w: Vec<&Footprint> = windows.filter(|f| f.secs > 0.0).collect();
        if w.is_empty() {
            return None;
        }
        Some(Pooled {
            procs: w.iter().map(|f| f.procs).max().unwrap_or(0),
            rss_kib_mean: w.iter().map(|f| f.rss_kib_mean).sum::<f64>() / w.len() as f64,
            rss_kib_max: w.iter().map(|f| f.rss_kib_max).fold(0.0, f64::max),
            cpu_s: w.iter().map(|f| f.cpu_s).sum(),
            secs: w.iter().map(|f| f.secs).sum(),
            cpu_pct: w.iter().map(|f| 100.0 * f.cpu_s / f.secs).collect(),
        })
    }

    /// Total CPU over total time: a long window's figure counts for its length.
    fn pct(&self) -> f64 {
        100.0 * self.cpu_s / self.secs
    }
}

pub(crate) fn f1(v: f64) -> String {
    if !v.is_finite() {
        "–".into()
    } else if v.abs() >= 100.0 {
        format!("{v:.0}")
    } else if v.abs() >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

pub(crate) fn triple(s: Option<Summary>) -> String {
    s.map_or("–".into(), |s| {
        format!("{} / {} / {}", f1(s.median), f1(s.p90), f1(s.max))
    })
}

fn ratio(t: Option<f64>, k: Option<f64>) -> String {
    match (t, k) {
        (Some(t), Some(k)) if k != 0.0 && t.is_finite() && k.is_finite() => format!("{:.3}", t / k),
        _ => "n/a".into(),
    }
}

fn opt(v: Option<f64>) -> String {
    v.filter(|v| v.is_finite())
        .map_or("n/a".into(), |v| format!("{v:.3}"))
}

pub(crate) fn metric_line(name: &str, t: Option<f64>, k: Option<f64>) -> String {
    format!(
        "{name} tandem={} keepalived={} ratio={}",
        opt(t),
        opt(k),
        ratio(t, k)
    )
}

pub(crate) struct Goal {
    pub goal: String,
    pub figure: String,
    pub tandem: String,
    pub reference: String,
    pub met: Option<bool>,
}

fn verdict(m: Option<bool>) -> &'static str {
    match m {
        Some(true) => "yes",
        Some(false) => "**no**",
        None => "no data",
    }
}

pub struct Output {
    pub metrics: Vec<String>,
    pub files: Vec<PathBuf>,
}

pub fn write(
    records: &[Record],
    meta: &Meta,
    out_md: &Path,
    plots_dir: &Path,
) -> anyhow::Result<Output> {
    let outages: Vec<&Outage> = records
        .iter()
        .filter_map(|r| match r {
            Record::Outage(o) => Some(o),
            _ => None,
        })
        .collect();
    let foots: Vec<&Footprint> = records
        .iter()
        .filter_map(|r| match r {
            Record::Footprint(f) => Some(f),
            _ => None,
        })
        .collect();
    let jitters: Vec<&Jitter> = records
        .iter()
        .filter_map(|r| match r {
            Record::Jitter(j) => Some(j),
            _ => None,
        })
        .collect();
    let quorum_outs: Vec<&QuorumOutage> = records
        .iter()
        .filter_map(|r| match r {
            Record::QuorumOutage(q) => Some(q),
            _ => None,
        })
        .collect();
    let renew_lats: Vec<&RenewLatency> = records
        .iter()
        .filter_map(|r| match r {
            Record::RenewLatency(l) => Some(l),
            _ => None,
        })
        .collect();
    std::fs::create_dir_all(plots_dir)
        .with_context(|| format!("creating {}", plots_dir.display()))?;
    let md_dir = out_md.parent().unwrap_or(Path::new("."));
    let link = |name: &str| -> String {
        let p = plots_dir.join(name);
        p.strip_prefix(md_dir)
            .map(|r| r.display().to_string())
            .unwrap_or_else(|_| p.display().to_string())
    };
    let mut files = Vec::new();
    let mut metrics = Vec::new();
    let mut goals: Vec<Goal> = Vec::new();

    // Intervals present, longest first.
    let mut intervals: Vec<(u8, u64)> = outages
        .iter()
        .map(|o| (o.version, o.interval_ms))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    intervals.sort_by_key(|iv| std::cmp::Reverse(iv.1));
    let new_prio = outages.first().map_or(100, |o| o.new_priority);

    let pick = |d: &str, s: &str, iv: (u8, u64)| -> Vec<&Outage> {
        outages
            .iter()
            .copied()
            .filter(|o| {
                o.daemon == d && o.scenario == s && o.version == iv.0 && o.interval_ms == iv.1
            })
            .collect()
    };
    let col = |v: &[&Outage], f: fn(&Outage) -> Option<f64>| -> Vec<f64> {
        v.iter().filter_map(|o| f(o)).collect()
    };

    let mut md = String::new();
    let _ = writeln!(md, "# Benchmarks: tandem and keepalived\n");
    let _ = writeln!(
        md,
        "Generated by `scripts/bench` (the measuring tool is `tests/bench`, binary \
         `tandem-bench`); do not edit by hand, run the command again.\n"
    );
    if meta.mode != "full" {
        let _ = writeln!(
            md,
            "> **{} run**: fewer runs and shorter windows than the benchmark the issue asks \
             for; indicative only. The full benchmark is `sudo scripts/bench`.\n",
            meta.mode
        );
    }
    let _ = writeln!(md, "| | |\n|---|---|");
    let _ = writeln!(md, "| command | `{}` |", meta.command);
    let _ = writeln!(md, "| mode | {} |", meta.mode);
    let _ = writeln!(md, "| date | {} |", meta.date);
    let _ = writeln!(md, "| machine | {} |", machine());
    let _ = writeln!(md, "| tandem | {} (release build) |", meta.tandem_rev);
    let _ = writeln!(md, "| keepalived | {} |", meta.keepalived_version);
    for n in &meta.notes {
        let _ = writeln!(md, "| note | {n} |");
    }
    let _ = writeln!(md);

    // ---- outage ----
    let mut outage_md = String::new();
    for s in SCENARIOS {
        let any = outages.iter().any(|o| o.scenario == s);
        if !any {
            continue;
        }
        let _ = writeln!(outage_md, "### {}\n", scenario_title(s));
        let _ = writeln!(outage_md, "{}\n", scenario_method(s));
        let bound_name = if s == "sigterm" {
            "Skew_Time"
        } else {
            "MDI = 3 × advert + Skew_Time"
        };
        let _ = writeln!(
            outage_md,
            "| advert | daemon | runs | client outage ms | old advert → new answer ms | wire ms | event → new advert ms | advert → GARP ms | RFC bound ms ({bound_name}) |"
        );
        let _ = writeln!(outage_md, "|---|---|---|---|---|---|---|---|---|");
        let mut panels = Vec::new();
        for &iv in &intervals {
            let bound = bound_ms(s, iv.0, iv.1, new_prio);
            let mut rows = Vec::new();
            // [daemon][figure]: figures are client, old advert → new answer, wire.
            let mut med = [[None; 3]; 2];
            let mut max = [[None; 3]; 2];
            for (di, d) in DAEMONS.iter().enumerate() {
                let v = pick(d, s, iv);
                if v.is_empty() {
                    continue;
                }
                let figs = [
                    col(&v, |o| o.client_ms),
                    col(&v, |o| o.advert_to_answer_ms),
                    col(&v, |o| o.wire_ms),
                ];
                let sums: Vec<Option<Summary>> = figs.iter().map(|f| stats::summarize(f)).collect();
                for f in 0..3 {
                    med[di][f] = sums[f].map(|s| s.median);
                    max[di][f] = sums[f].map(|s| s.max);
                }
                let ev = stats::summarize(&col(&v, |o| o.event_to_advert_ms));
                let garp = stats::summarize(&col(&v, |o| o.advert_to_garp_ms));
                let mut extra = String::new();
                if s == "kill9" {
                    let still = v.iter().filter(|o| o.old_answers_after > 0).count();
                    let _ = write!(
                        extra,
                        " (dead node answered after the switch in {still} of {} runs)",
                        v.len()
                    );
                }
                let p0 = v.iter().filter(|o| o.old_prio0).count();
                if s != "sigterm" && p0 > 0 {
                    let _ = write!(extra, " ({p0} runs saw a priority-0 advert!)");
                } else if s == "sigterm" && p0 < v.len() {
                    let _ = write!(
                        extra,
                        " (priority-0 advert seen in {p0} of {} runs)",
                        v.len()
                    );
                }
                let missing = v.iter().filter(|o| o.client_ms.is_none()).count();
                if missing > 0 {
                    let _ = write!(extra, " ({missing} runs without a switch!)");
                }
                let _ = writeln!(
                    outage_md,
                    "| {} | {d}{extra} | {} | {} | {} | {} | {} | {} | {} |",
                    interval_label(iv.0, iv.1),
                    v.len(),
                    triple(sums[0]),
                    triple(sums[1]),
                    triple(sums[2]),
                    ev.map_or("–".into(), |s| f1(s.median)),
                    garp.map_or("–".into(), |s| f1(s.median)),
                    f1(bound)
                );
                let color = if di == 0 {
                    svg::TANDEM
                } else {
                    svg::KEEPALIVED
                };
                for (f, name) in ["client", "advert → answer", "wire"].iter().enumerate() {
                    rows.push(svg::Row {
                        label: format!("{d} · {name}"),
                        color,
                        values: figs[f].clone(),
                    });
                }
            }
            let key = interval_key(iv.0, iv.1);
            for (f, fname) in ["client", "advert_to_answer", "wire"].iter().enumerate() {
                metrics.push(metric_line(
                    &format!("outage.{s}.{key}.{fname}_median_ms"),
                    med[0][f],
                    med[1][f],
                ));
            }
            // Goals. The figure that stands for the client-visible outage: for a link cut the
            // outage from the old master's last advert (the random phase of the cut removed, so
            // it is the worst case the RFC bounds); for kill -9 the wire (the dead node keeps the
            // VIP and answers, so the client sees no gap); for SIGTERM the client outage itself.
            let fig = match s {
                "linkcut" => 1,
                "kill9" => 2,
                _ => 0,
            };
            let fig_name = [
                "client outage",
                "client outage from the last advert",
                "wire detection",
            ][fig];
            let lbl = interval_label(iv.0, iv.1);
            if s != "sigterm" {
                goals.push(Goal {
                    goal: "unplanned outage ≤ keepalived's".into(),
                    figure: format!("{}: {fig_name}, median, {lbl}", short(s)),
                    tandem: med[0][fig].map_or("–".into(), f1),
                    reference: format!("keepalived {}", med[1][fig].map_or("–".into(), f1)),
                    met: med[0][fig].zip(med[1][fig]).map(|(t, k)| le_tie(t, k)),
                });
                goals.push(Goal {
                    goal: "unplanned outage within 10 ms of the RFC bound".into(),
                    figure: format!("{}: {fig_name}, max, {lbl}", short(s)),
                    tandem: max[0][fig].map_or("–".into(), f1),
                    reference: format!("MDI {} + 10", f1(bound)),
                    met: max[0][fig].map(|t| t <= bound + SLACK_MS),
                });
            } else {
                goals.push(Goal {
                    goal: "planned switchover ≤ Skew_Time + 10 ms".into(),
                    figure: format!("SIGTERM: client outage, max, {lbl}"),
                    tandem: max[0][0].map_or("–".into(), f1),
                    reference: format!(
                        "Skew_Time {} + 10 (keepalived {})",
                        f1(bound),
                        max[1][0].map_or("–".into(), f1)
                    ),
                    met: max[0][0].map(|t| t <= bound + SLACK_MS),
                });
            }
            panels.push(svg::Panel {
                title: lbl,
                unit: "ms".into(),
                rows,
                refs: vec![
                    svg::RefLine {
                        value: bound,
                        label: format!("RFC {} {}", bound_name_short(s), f1(bound)),
                        dash: "5 3",
                    },
                    svg::RefLine {
                        value: bound + SLACK_MS,
                        label: "+10 ms".into(),
                        dash: "1 3",
                    },
                ],
                min_xmax: 0.0,
            });
        }
        let name = format!("outage-{s}.svg");
        let path = plots_dir.join(&name);
        std::fs::write(&path, svg::strip_chart(scenario_title(s), &panels))?;
        files.push(path);
        let _ = writeln!(outage_md, "\n![{}]({})\n", scenario_title(s), link(&name));
    }
    let _ = writeln!(
        outage_md,
        "### Planned switchover: `tandem move`\n\n`tandem move` is a quorum-mode command \
         (section 3 measures it); in plain VRRP mode tandem, like keepalived, has none, and \
         the graceful stop above is the planned switchover both daemons offer.\n"
    );

    // ---- footprint ----
    let counts: Vec<u32> = foots
        .iter()
        .map(|f| f.instances)
        .chain(jitters.iter().map(|j| j.instances))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let roles = ["master", "backup"];
    let fp = |d: &str, n: u32, role: &str| -> Option<Pooled> {
        Pooled::of(
            foots
                .iter()
                .copied()
                .filter(|f| f.daemon == d && f.instances == n && f.role == role),
        )
    };
    let jt = |d: &str, n: u32| -> Option<&Jitter> {
        jitters
            .iter()
            .copied()
            .find(|j| j.daemon == d && j.instances == n)
    };
    let mut foot_md = String::new();
    if !counts.is_empty() {
        let secs = foots.first().map_or(0.0, |f| f.secs);
        let windows = DAEMONS
            .iter()
            .flat_map(|d| counts.iter().map(move |&n| (*d, n)))
            .filter_map(|(d, n)| fp(d, n, "master").map(|p| p.cpu_pct.len()))
            .max()
            .unwrap_or(0);
        let _ = writeln!(
            foot_md,
            "{} s idle windows, {windows} per daemon and instance count, taken in turn (tandem, \
             keepalived, keepalived, tandem, ...; each daemon pair started afresh for its window), \
             VRRPv3 at 100 ms adverts, the master (priority 150) and the backup (priority 100) of \
             one pair running, no other daemon running. RSS is VmRSS summed over the daemon's \
             processes (keepalived: parent and VRRP child), mean of one sample per second, \
             averaged over the windows; CPU is user + system time from per-thread schedstat, \
             pooled over the windows (total CPU seconds over total seconds), with each window's \
             own figure beside it: one idle window varies by a few tens of percent from the next, \
             more than the daemons differ at one instance. Jitter: a capture in the client \
             namespace (kernel timestamps) of every advert the master sent during the first \
             window; for each VRID the \
             gap between consecutive adverts minus the configured 100 ms, pooled over all VRIDs. \
             The mean gap minus the interval shows drift: above zero, a daemon that re-arms \
             its advert timer from the moment it ran rather than from the previous deadline \
             sends fewer adverts than it should, and its backups' Master_Down_Timer margin \
             shrinks accordingly.\n",
            f1(secs)
        );
        let _ = writeln!(
            foot_md,
            "| instances | daemon | role | procs | RSS MiB (mean / max) | CPU s | CPU % | CPU % per window |"
        );
        let _ = writeln!(foot_md, "|---|---|---|---|---|---|---|---|");
        let mut rss_vals = Vec::new();
        let mut cpu_vals = Vec::new();
        for &n in &counts {
            let mut rrow = Vec::new();
            let mut crow = Vec::new();
            for d in DAEMONS {
                for role in roles {
                    let f = fp(d, n, role);
                    if let Some(f) = &f {
                        let each: Vec<String> =
                            f.cpu_pct.iter().map(|c| format!("{c:.3}")).collect();
                        let _ = writeln!(
                            foot_md,
                            "| {n} | {d} | {role} | {} | {} / {} | {:.3} | {:.3} | {} |",
                            f.procs,
                            f1(f.rss_kib_mean / 1024.0),
                            f1(f.rss_kib_max / 1024.0),
                            f.cpu_s,
                            f.pct(),
                            each.join(" · ")
                        );
                    }
                    rrow.push(f.as_ref().map(|f| f.rss_kib_mean / 1024.0));
                    crow.push(f.as_ref().map(Pooled::pct));
                }
            }
            for (ri, role) in roles.iter().enumerate() {
                let rss = |di: usize| rrow[di * 2 + ri];
                let cpu = |di: usize| crow[di * 2 + ri];
                metrics.push(metric_line(
                    &format!("footprint.n{n}.{role}.rss_mib"),
                    rss(0),
                    rss(1),
                ));
                metrics.push(metric_line(
                    &format!("footprint.n{n}.{role}.cpu_pct"),
                    cpu(0),
                    cpu(1),
                ));
                goals.push(Goal {
                    goal: "RSS ≤ keepalived's".into(),
                    figure: format!("{role}, {n} instance(s), MiB"),
                    tandem: rss(0).map_or("–".into(), f1),
                    reference: format!("keepalived {}", rss(1).map_or("–".into(), f1)),
                    met: rss(0).zip(rss(1)).map(|(t, k)| t <= k),
                });
                goals.push(Goal {
                    goal: "idle CPU ≤ keepalived's".into(),
                    figure: format!("{role}, {n} instance(s), %, pooled over the windows"),
                    tandem: cpu(0).map_or("–".into(), |c| format!("{c:.3}")),
                    reference: format!(
                        "keepalived {}",
                        cpu(1).map_or("–".into(), |c| format!("{c:.3}"))
                    ),
                    met: cpu(0).zip(cpu(1)).map(|(t, k)| t <= k),
                });
            }
            rss_vals.push(rrow);
            cpu_vals.push(crow);
        }
        let series: Vec<svg::Series> = DAEMONS
            .iter()
            .flat_map(|d| {
                roles.iter().map(move |r| svg::Series {
                    name: format!("{d} {r}"),
                    color: if *d == "tandem" {
                        svg::TANDEM
                    } else {
                        svg::KEEPALIVED
                    },
                    opacity: if *r == "master" { 1.0 } else { 0.45 },
                })
            })
            .collect();
        let groups: Vec<String> = counts.iter().map(|n| format!("{n} instance(s)")).collect();
        for (name, title, unit, vals) in [
            (
                "footprint-rss.svg",
                "Resident memory, idle, 100 ms adverts",
                "RSS MiB",
                &rss_vals,
            ),
            (
                "footprint-cpu.svg",
                "CPU, idle, 100 ms adverts",
                "CPU % of one core",
                &cpu_vals,
            ),
        ] {
            let path = plots_dir.join(name);
            std::fs::write(
                &path,
                svg::bar_chart(title, unit, &groups, &series, vals, None),
            )?;
            files.push(path);
            let _ = writeln!(foot_md, "\n![{title}]({})", link(name));
        }
        let _ = writeln!(foot_md);

        let _ = writeln!(foot_md, "#### Advert interval jitter (master)\n");
        let _ = writeln!(
            foot_md,
            "| instances | daemon | VRIDs seen | adverts (expected) | deviation ms p50 / p99 / max | mean gap − interval ms |"
        );
        let _ = writeln!(foot_md, "|---|---|---|---|---|---|");
        let mut jvals = Vec::new();
        for &n in &counts {
            let mut row = Vec::new();
            for d in DAEMONS {
                let j = jt(d, n);
                if let Some(j) = j {
                    let _ = writeln!(
                        foot_md,
                        "| {n} | {d} | {} | {} ({}) | {} / {} / {} | {:+.3} |",
                        j.vrids,
                        j.adverts,
                        j.expected,
                        f1(j.p50_ms),
                        f1(j.p99_ms),
                        f1(j.max_ms),
                        j.mean_gap_error_ms
                    );
                }
                row.push(j.map(|j| j.p99_ms));
            }
            metrics.push(metric_line(&format!("jitter.n{n}.p99_ms"), row[0], row[1]));
            if n == 255 {
                goals.push(Goal {
                    goal: "advert jitter p99 ≤ 5 ms at 255 instances".into(),
                    figure: "master, 100 ms adverts, ms".into(),
                    tandem: row[0].map_or("–".into(), f1),
                    reference: format!("goal 5 (keepalived {})", row[1].map_or("–".into(), f1)),
                    met: row[0].map(|t| t <= JITTER_GOAL_MS),
                });
            }
            jvals.push(row);
        }
        let jseries: Vec<svg::Series> = DAEMONS
            .iter()
            .map(|d| svg::Series {
                name: d.to_string(),
                color: if *d == "tandem" {
                    svg::TANDEM
                } else {
                    svg::KEEPALIVED
                },
                opacity: 1.0,
            })
            .collect();
        let path = plots_dir.join("jitter.svg");
        std::fs::write(
            &path,
            svg::bar_chart(
                "Advert interval jitter, p99 deviation from 100 ms",
                "ms",
                &groups,
                &jseries,
                &jvals,
                Some((JITTER_GOAL_MS, "goal: 5 ms at 255 instances".into())),
            ),
        )?;
        files.push(path);
        let _ = writeln!(
            foot_md,
            "\n![Advert interval jitter]({})\n",
            link("jitter.svg")
        );
    }

    // ---- quorum mode ----
    let quorum = quorum_report::section(&quorum_outs, &renew_lats, plots_dir, &link)?;
    metrics.extend(quorum.metrics);
    goals.extend(quorum.goals);
    files.extend(quorum.files);

    // ---- assemble ----
    let _ = writeln!(md, "## Goals (issue 8)\n");
    let _ = writeln!(
        md,
        "Outage figures are in ms. \"≤ keepalived's\" compares medians; a difference within \
         1 ms (or 1 % of a longer outage) is a tie and counts as met. The RFC goals take the \
         worst run (max).\n"
    );
    let _ = writeln!(md, "| goal | figure | tandem | against | met |");
    let _ = writeln!(md, "|---|---|---|---|---|");
    for g in &goals {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} |",
            g.goal,
            g.figure,
            g.tandem,
            g.reference,
            verdict(g.met)
        );
    }
    let _ = writeln!(md);
    let _ = writeln!(md, "## Summary lines\n\n```");
    for m in &metrics {
        let _ = writeln!(md, "{m}");
    }
    let _ = writeln!(md, "```\n");
    let _ = writeln!(md, "## 1. Client-visible outage\n");
    md.push_str(METHOD);
    if outages.is_empty() {
        let _ = writeln!(md, "Not measured in this run.\n");
    }
    md.push_str(&outage_md);
    let _ = writeln!(md, "## 2. Footprint\n");
    if counts.is_empty() {
        let _ = writeln!(md, "Not measured in this run.\n");
    }
    md.push_str(&foot_md);
    md.push_str(&quorum.md);
    let _ = writeln!(
        md,
        "## Raw data\n\nEvery run is one JSON line in [results.jsonl]({}).",
        link("results.jsonl")
    );
    std::fs::write(out_md, md).with_context(|| format!("writing {}", out_md.display()))?;
    files.push(out_md.to_path_buf());
    Ok(Output { metrics, files })
}

/// `t ≤ k`, where a difference within the measurement's resolution (1 ms, or 1 % of a long
/// outage) counts as a tie.
fn le_tie(t: f64, k: f64) -> bool {
    t <= k + TIE_MS.max(0.01 * k)
}

fn short(s: &str) -> &'static str {
    match s {
        "linkcut" => "link cut",
        "kill9" => "kill -9",
        _ => "SIGTERM",
    }
}

fn bound_name_short(s: &str) -> &'static str {
    if s == "sigterm" {
        "Skew_Time"
    } else {
        "MDI"
    }
}

const METHOD: &str = "\
The lab is `scripts/lib/lab.sh`'s: one bridge namespace (multicast snooping off) and one \
namespace per host, each with a veth `eth0`. tandem runs on t1 (192.0.2.1, priority 150) and \
t2 (192.0.2.2, priority 100) with VRID 51 and VIP 192.0.2.100; keepalived runs on k1 \
(192.0.2.3, priority 150) and k2 (192.0.2.4, priority 100) with VRID 52 and VIP 192.0.2.101, \
from the same settings (preempt on, no authentication, gratuitous ARP defaults: 5 at takeover, \
5 more after 5 s). Both pairs run side by side and the runs alternate tandem, keepalived, \
tandem, keepalived, ... Every node runs `tandem-bench respond`, a UDP echo responder bound to \
0.0.0.0 that answers with its node name from the address it was asked on. The client \
(192.0.2.50) runs `tandem-bench probe`: one UDP probe to the VIP every 1 ms, every answer and \
every VRRP advert and ARP on its interface recorded with the kernel's receive timestamp \
(SO_TIMESTAMPNS). Once the prober has an answer and an advert, the script waits a random \
fraction of one advert interval (so the event lands anywhere in the interval) and acts.\n\n\
- **client outage**: the last answer from the old master's node to the first answer from the \
new master's node, at the client. Figures are median / p90 / max over the runs, in ms.\n\
- **old advert → new answer**: the old master's last advert as the client saw it (for \
SIGTERM its priority-0 advert) to the first answer from the new master's node. A link cut \
lands at a random point of the advert interval, so the client outage spreads between \
MDI − advert and MDI; this figure is the outage when the cut falls right after an advert \
(the worst case), free of that randomness, and is the one the goals compare for a link cut.\n\
- **wire**: on the same capture, the old master's last advert (for SIGTERM its priority-0 \
advert) to the new master's first advert: the detection time the RFC bounds.\n\
- **event → new advert**: from the script's clock just before the cut / kill / signal (a few \
ms of process start-up included) to the new master's first advert. **advert → GARP**: the new \
master's first advert to its first gratuitous ARP for the VIP.\n\
- **RFC bound**: of the node taking over (priority 100): Master_Down_Interval = 3 × advert + \
Skew_Time for an unplanned failover, Skew_Time = (256 − 100) / 256 × advert (v2: \
(256 − 100) / 256 s) for a priority-0 handover.\n\
- Client gaps below about 10 ms are at the limit of what a 2-vCPU VM resolves (the prober \
itself is sometimes not scheduled for several ms); the wire figures are the fine ones.\n\n";

fn scenario_method(s: &str) -> &'static str {
    match s {
        "linkcut" => {
            "`ip link set eth0 down` inside the master's namespace: the node vanishes from the \
             network at once, daemon and kernel alike, as when a machine dies. Restored with \
             `ip link set eth0 up`; the next run starts once the master (priority 150) holds the \
             VIP again and the backup has dropped it."
        }
        "kill9" => {
            "SIGKILL to every process of the master's daemon (keepalived: the VRRP child first, \
             then the parent, so neither can send a priority-0 advert). The node stays up with \
             the VIP still configured, so its kernel keeps answering ARP and the probes until \
             the new master's gratuitous ARP moves the client: the client gap says little \
             (the VIP is on two nodes at once), the wire figure is the failover. Restored by \
             removing the stale VIP and starting the daemon again."
        }
        "sigterm" => {
            "SIGTERM to the master's daemon (keepalived: to its parent process): it sends a \
             priority-0 advert and removes the VIP, and the backup takes over after its \
             Skew_Time. Restored by starting the daemon again; it preempts the backup after its \
             Master_Down_Interval."
        }
        _ => "",
    }
}

fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cores = cpuinfo
        .lines()
        .filter(|l| l.starts_with("processor"))
        .count();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|m| m.trim_start_matches([' ', '\t', ':']).trim().to_string())
        .unwrap_or_else(|| "unknown CPU".into());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "unknown".into());
    let debian = std::fs::read_to_string("/etc/debian_version")
        .map(|s| format!(", Debian {}", s.trim()))
        .unwrap_or_default();
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
        })
        .map(|kib| format!(", {:.0} GiB RAM", kib / 1024.0 / 1024.0))
        .unwrap_or_default();
    format!("{cores} cores ({model}){mem}, Linux {kernel}{debian}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window(cpu_s: f64, secs: f64, rss: f64) -> Footprint {
        Footprint {
            daemon: "tandem".into(),
            instances: 1,
            role: "master".into(),
            secs,
            procs: 1,
            rss_kib_mean: rss,
            rss_kib_max: rss + 10.0,
            cpu_s,
            cpu_s_ticks: cpu_s,
        }
    }

    #[test]
    fn footprint_windows_pool_by_time() {
        let w = [window(0.06, 60.0, 100.0), window(0.03, 30.0, 200.0)];
        let p = Pooled::of(w.iter()).unwrap();
        assert!((p.pct() - 0.1).abs() < 1e-12, "{}", p.pct());
        assert_eq!(p.cpu_pct.len(), 2);
        assert!((p.cpu_pct[1] - 0.1).abs() < 1e-12);
        assert!((p.rss_kib_mean - 150.0).abs() < 1e-12);
        assert!((p.rss_kib_max - 210.0).abs() < 1e-12);
        assert!(Pooled::of([].iter()).is_none());
        assert!(Pooled::of([window(0.0, 0.0, 1.0)].iter()).is_none());
    }

    #[test]
    fn rfc_bounds() {
        assert!((mdi_ms(2, 1000, 100) - 3609.375).abs() < 1e-9);
        assert!((skew_ms(3, 100, 100) - 60.9375).abs() < 1e-9);
        assert!((mdi_ms(3, 20, 100) - 72.1875).abs() < 1e-9);
    }

    fn quorum_outage(variant: &str, run: u32, arp: f64) -> Record {
        Record::QuorumOutage(crate::record::QuorumOutage {
            variant: variant.into(),
            run,
            old: "lb1".into(),
            new: "lb2".into(),
            leader: Some(if run == 1 { "lb1" } else { "arb" }.into()),
            lease_ms: 1000,
            renew_ms: 250,
            margin_ms: 100,
            election_max_ms: 250,
            event_to_arp_ms: Some(arp),
            event_to_garp_ms: Some(arp),
            event_to_answer_ms: Some(arp + 1.0),
            event_to_advert_ms: Some(arp - 0.5),
            client_ms: Some(2.0),
            old_arp_after: u64::from(variant == "lease") * 300,
            old_answers_after: 0,
            event_to_fence_attempt_ms: (variant == "fence").then_some(500.0),
            fence_ms: (variant == "fence").then_some(180.0),
            fence_verified: (variant == "fence").then_some(true),
            event_to_power_off_ms: None,
            grants: Some(if run == 1 { 2 } else { 1 }),
            probes_sent: 1500,
            answers: 1400,
        })
    }

    #[test]
    fn quorum_section_goals_and_metrics() {
        let dir = std::env::temp_dir().join(format!("tandem-bench-report-{}", std::process::id()));
        let recs = vec![
            quorum_outage("lease", 1, 1300.0),
            quorum_outage("lease", 2, 1000.0),
            quorum_outage("fence", 1, 720.0),
            quorum_outage("move", 1, 20.0),
            quorum_outage("move", 2, 30.0),
            Record::RenewLatency(crate::record::RenewLatency {
                voters: 3,
                members: vec!["lb1".into(), "lb2".into(), "arb".into()],
                holder: "lb1".into(),
                leader: Some("arb".into()),
                secs: 1.0,
                renew_ms: 250,
                samples_us: vec![1000, 2000, 3000, 4000],
                p50_ms: Some(2.5),
                p99_ms: Some(4.0),
                max_ms: Some(4.0),
            }),
        ];
        let meta = Meta {
            command: "x".into(),
            mode: "quick".into(),
            date: "d".into(),
            tandem_rev: "r".into(),
            keepalived_version: "k".into(),
            notes: vec![],
        };
        let out = write(&recs, &meta, &dir.join("b.md"), &dir.join("b")).unwrap();
        let md = std::fs::read_to_string(dir.join("b.md")).unwrap();
        assert!(md.contains("## 3. Quorum mode"), "{md}");
        assert!(
            md.contains("leader at the kill: arb ×1, lb1 (the holder) ×1"),
            "{md}"
        );
        assert!(md.contains("(1 runs: granted to the killed holder again first)"));
        assert!(md.contains("In 1 of 2 lease-only runs the group's epoch grew"));
        assert!(
            md.contains("| 1000 + 100 + 250 = 1350 + 10 (keepalived n/a) | yes |"),
            "{md}"
        );
        assert!(
            md.contains("| 3 | tandem | lb1, lb2, arb | arb (forwarded by lb1) |"),
            "{md}"
        );
        assert!(md.contains("| both | keepalived | n/a |"), "{md}");
        assert!(md.contains("](b/quorum-kill9.svg)"), "{md}");
        // The move runs have their own table and goal, not rows of the kill table.
        assert!(
            md.contains("### Planned switchover: `tandem move`\n\nThe lease-only"),
            "{md}"
        );
        assert!(
            md.contains(
                "| tandem | 2 | 25.0 / 30.0 / 30.0 | 26.0 / 31.0 / 31.0 | 2.00 / 2.00 / 2.00 | 70.9 |"
            ),
            "{md}"
        );
        assert!(
            md.contains("| planned switchover ≤ Skew_Time + 10 ms | quorum mode, tandem move: client gap, max | 2.00 | Skew_Time 60.9 + 10 (keepalived: no move) | yes |"),
            "{md}"
        );
        assert!(!md.contains("| move |"), "{md}");
        for m in [
            "quorum.kill9.lease.kill_to_arp_median_ms tandem=1150.000 keepalived=n/a ratio=n/a",
            "quorum.kill9.lease.kill_to_arp_max_ms tandem=1300.000 keepalived=n/a ratio=n/a",
            "quorum.kill9.fence.attempt_to_verified_median_ms tandem=180.000 keepalived=n/a ratio=n/a",
            "quorum.renew.voters3.p99_ms tandem=4.000 keepalived=n/a ratio=n/a",
            "quorum.move.client_gap_max_ms tandem=2.000 keepalived=n/a ratio=n/a",
        ] {
            assert!(out.metrics.iter().any(|l| l == m), "{m} not in {:?}", out.metrics);
        }
        for f in [
            "quorum-kill9.svg",
            "quorum-move.svg",
            "quorum-renew-latency.svg",
        ] {
            let svg = std::fs::read_to_string(dir.join("b").join(f)).unwrap();
            assert!(svg.starts_with("<svg") && svg.ends_with("</svg>\n"));
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn metric_lines() {
        assert_eq!(
            metric_line("x", Some(1.0), Some(2.0)),
            "x tandem=1.000 keepalived=2.000 ratio=0.500"
        );
        assert_eq!(
            metric_line("x", None, Some(2.0)),
            "x tandem=n/a keepalived=2.000 ratio=n/a"
        );
    }
}
