//! The "Quorum mode" section of docs/benchmarks.md: kill -9 of the lease holder (lease only
//! and with `fence_on_takeover`), the planned switchover with `tandem move`, and the Raft
//! commit latency of lease renewals with 3 and 5 voters. tandem only: keepalived has no quorum mode, so its cells say "n/a".

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::record::{QuorumOutage, RenewLatency};
use crate::report::{f1, metric_line, skew_ms, triple, Goal};
use crate::stats;
use crate::svg;

/// Slack the quorum goal allows above its bound, as the RFC goals do.
const SLACK_MS: f64 = 10.0;

pub struct Section {
    pub md: String,
    pub metrics: Vec<String>,
    pub goals: Vec<Goal>,
    pub files: Vec<PathBuf>,
}

const VARIANTS: [&str; 2] = ["lease", "fence"];

fn variant_label(v: &str) -> &'static str {
    match v {
        "lease" => "lease only",
        "fence" => "fence_on_takeover",
        _ => "other",
    }
}

/// Lease-only bound: the leader reassigns lease + margin after the last committed renewal
/// (which came before the kill); when the holder also led, the survivors first elect a
/// leader (at most election_timeout_max after the last heartbeat), which counts every lease
/// from its election.
pub fn lease_bound_ms(o: &QuorumOutage) -> f64 {
    (o.lease_ms + o.margin_ms + o.election_max_ms) as f64
}

/// "arb 6, lb2 4": who led at the kill, over the runs.
fn leaders(v: &[&QuorumOutage]) -> String {
    let mut n: BTreeMap<String, usize> = BTreeMap::new();
    for o in v {
        let l = o.leader.clone().unwrap_or_else(|| "unknown".into());
        let l = if l == o.old {
            format!("{l} (the holder)")
        } else {
            l
        };
        *n.entry(l).or_default() += 1;
    }
    n.iter()
        .map(|(l, c)| format!("{l} ×{c}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Gives every panel the x scale of the widest, so that they compare at a glance.
fn one_scale(panels: &mut [svg::Panel]) {
    let max = panels
        .iter()
        .flat_map(|p| {
            p.rows
                .iter()
                .flat_map(|r| r.values.iter().copied())
                .chain(p.refs.iter().map(|r| r.value))
        })
        .filter(|v| v.is_finite())
        .fold(0.0f64, f64::max);
    for p in panels {
        p.min_xmax = max * 1.08;
    }
}

fn col(v: &[&QuorumOutage], f: fn(&QuorumOutage) -> Option<f64>) -> Vec<f64> {
    v.iter().filter_map(|o| f(o)).collect()
}

pub fn section(
    outs: &[&QuorumOutage],
    lats: &[&RenewLatency],
    plots_dir: &Path,
    link: &dyn Fn(&str) -> String,
) -> anyhow::Result<Section> {
    let mut md = String::new();
    let mut metrics = Vec::new();
    let mut goals = Vec::new();
    let mut files = Vec::new();
    let _ = writeln!(md, "## 3. Quorum mode\n");
    if outs.is_empty() && lats.is_empty() {
        let _ = writeln!(md, "Not measured in this run.\n");
        return Ok(Section {
            md,
            metrics,
            goals,
            files,
        });
    }
    let t = outs.first().copied();
    let (lease, renew, margin, elect) = t.map_or((1000, 250, 100, 250), |o| {
        (o.lease_ms, o.renew_ms, o.margin_ms, o.election_max_ms)
    });
    let _ = writeln!(
        md,
        "tandem only: keepalived has no quorum mode (no Raft, no leases, no fencing), so its \
         rows say n/a. The members are more namespaces on the same bridge as above: lb1 \
         (192.0.2.11, priority 200) and lb2 (192.0.2.12, priority 100) share one `mode = \
         \"quorum\"` instance (VRID 61, VIP 192.0.2.110, VRRPv3 adverts every 100 ms, \
         preempt on) and arb (192.0.2.15) is the arbiter; `[cluster]` lease {lease} ms, \
         lease_renew {renew} ms, lease_margin {margin} ms (the defaults), so a Raft election \
         times out after {}–{elect} ms (lease / 8 .. lease / 4). Each cluster starts from \
         empty stores with lb1 last: lb2 is granted the group first and lb1 preempts it, so \
         lb1 holds the group without leading Raft (the leader at each kill is in the table). \
         Every member runs `tandem-bench respond` like the VRRP nodes.\n",
        elect / 2
    );

    let (moves, outs): (Vec<&QuorumOutage>, Vec<&QuorumOutage>) =
        outs.iter().partition(|o| o.variant == "move");

    // ---- kill -9 ----
    if !outs.is_empty() {
        let fence_after = 2 * renew + margin;
        let _ = writeln!(
            md,
            "### Unplanned failover: kill -9 of the lease holder's daemon\n\n\
             The client runs the prober of section 1 with one more probe: with every UDP probe \
             (1 ms) an ARP request for the VIP, from sender address 0.0.0.0 and a made-up MAC \
             (an RFC 5227 probe), so that every node with the VIP configured answers it and the \
             answers reach the capture without changing any neighbour table. Once the prober \
             has an answer and an advert, the script waits a random fraction of lease_renew \
             (the kill lands anywhere in the renewal cycle) and sends SIGKILL to lb1's daemon. \
             Times are from the script's clock just before the kill to the kernel's receive \
             timestamp at the client; median / p90 / max over the runs, ms.\n\n\
             - **lease only** (no fencing): the killed node's kernel keeps the VIP configured \
             and keeps answering ARP and the probes, so from the takeover on both nodes answer \
             (as in the VRRP kill -9 above) and the client's gap says nothing. The figure is \
             **kill → the new holder's first ARP answer** for the VIP (an answer to an ARP \
             probe or its gratuitous ARP): from then on it has the VIP. Its bound is lease + \
             lease_margin + election_timeout_max = {lease} + {margin} + {elect} = {} ms: the \
             leader gives a silent holder's group away lease + margin after the holder's last \
             committed renewal, which came before the kill; when the holder was also the \
             leader, the survivors first elect a new one (at most election_timeout_max after \
             the last heartbeat) and it counts every lease from its election. The \
             coordinator's 20 ms tick, the grant's commit and the new holder's takeover come \
             on top (a few ms), so the goal allows 10 ms above the bound like the RFC goals. \
             When the holder does not lead, the tighter bound is lease + margin = {} ms.\n\
             - **fence_on_takeover**: every member has `fence_on_takeover = true` and a \
             `[[fence_level]]` for each load balancer with its simulated BMC (OpenIPMI \
             `ipmi_sim` in a namespace of its own, `tests/fixtures/sims/ipmi/start-bmc.sh`, \
             driven over RMCP+ with `ipmitool`), whose power-off kills the node's daemon and \
             takes its eth0 down with its addresses (as the e2e test t17 does). The leader \
             fences a holder that has been silent for 2 × lease_renew + lease_margin = \
             {fence_after} ms and grants its group at once once the fence is verified. The \
             figures are kill → the new holder's first ARP answer and first UDP answer (the \
             old node is off the network from its power-off on), and the fence from the Raft \
             log's fence history (`tandem fence history`: kill → the attempt record, and the \
             attempt to the verified result; wall-clock ms, so ±1 ms). Restored by switching \
             the simulated BMC on out of band (its power-on hook brings lb1's link and \
             addresses back) and starting lb1's daemon, which preempts.\n\
             - **client gap**: the old node's last UDP answer to the new node's first, at the \
             client. Lease only it is about the probe period (the old node answers until the \
             new holder's gratuitous ARP moves the client); fenced, it runs from the power-off \
             (the old node leaves the network) to the new holder's first answer: the outage of \
             a service that survived its node's tandem.\n\
             - Lease only is restored by removing the stale VIP from lb1 and starting its \
             daemon again; every run starts with lb1 holding the VIP alone.\n",
            lease + margin + elect,
            lease + margin
        );
        let _ = writeln!(
            md,
            "| variant | daemon | runs | kill → new holder's first ARP answer ms | kill → first UDP answer from it ms | kill → its first advert ms | client gap ms | old node answered ARP after the switch | kill → fence attempt ms | fence attempt → verified ms | bound ms |"
        );
        let _ = writeln!(md, "|---|---|---|---|---|---|---|---|---|---|---|");
        let mut panels = Vec::new();
        let mut regrants = None;
        for v in VARIANTS {
            let runs: Vec<&QuorumOutage> =
                outs.iter().copied().filter(|o| o.variant == v).collect();
            if runs.is_empty() {
                continue;
            }
            let arp = col(&runs, |o| o.event_to_arp_ms);
            let ans = col(&runs, |o| o.event_to_answer_ms);
            let adv = stats::summarize(&col(&runs, |o| o.event_to_advert_ms));
            let gap = stats::summarize(&col(&runs, |o| o.client_ms));
            let att = col(&runs, |o| o.event_to_fence_attempt_ms);
            let fen = col(&runs, |o| o.fence_ms);
            let s_arp = stats::summarize(&arp);
            let old_after = runs.iter().filter(|o| o.old_arp_after > 0).count();
            let mut extra = format!(" (leader at the kill: {})", leaders(&runs));
            let regranted = runs
                .iter()
                .filter(|o| o.grants.is_some_and(|g| g >= 2))
                .count();
            if regranted > 0 {
                let _ = write!(
                    extra,
                    " ({regranted} runs: granted to the killed holder again first)"
                );
                if v == "lease" {
                    regrants = Some((regranted, runs.len()));
                }
            }
            let missing = runs.iter().filter(|o| o.event_to_arp_ms.is_none()).count();
            if missing > 0 {
                let _ = write!(extra, " ({missing} runs without a new holder!)");
            }
            if v == "fence" {
                let unverified = runs
                    .iter()
                    .filter(|o| o.fence_verified != Some(true))
                    .count();
                if unverified > 0 {
                    let _ = write!(extra, " ({unverified} runs without a verified fence!)");
                }
            }
            let bound = if v == "lease" {
                let b = lease_bound_ms(runs[0]);
                format!("{} (lease + margin + election)", f1(b))
            } else {
                format!("{fence_after} + fence (2 × renew + margin, then the fence)")
            };
            let fence_cells = if v == "fence" {
                (
                    triple(stats::summarize(&att)),
                    triple(stats::summarize(&fen)),
                )
            } else {
                ("–".to_string(), "–".to_string())
            };
            let _ = writeln!(
                md,
                "| {} | tandem{extra} | {} | {} | {} | {} | {} | {old_after} of {} runs | {} | {} | {bound} |",
                variant_label(v),
                runs.len(),
                triple(s_arp),
                triple(stats::summarize(&ans)),
                adv.map_or("–".into(), |s| f1(s.median)),
                triple(gap),
                runs.len(),
                fence_cells.0,
                fence_cells.1,
            );
            metrics.push(metric_line(
                &format!("quorum.kill9.{v}.kill_to_arp_median_ms"),
                s_arp.map(|s| s.median),
                None,
            ));
            metrics.push(metric_line(
                &format!("quorum.kill9.{v}.kill_to_arp_max_ms"),
                s_arp.map(|s| s.max),
                None,
            ));
            metrics.push(metric_line(
                &format!("quorum.kill9.{v}.kill_to_answer_median_ms"),
                stats::summarize(&ans).map(|s| s.median),
                None,
            ));
            let mut rows = vec![
                svg::Row {
                    label: "kill → new holder's ARP".into(),
                    color: svg::TANDEM,
                    values: arp.clone(),
                },
                svg::Row {
                    label: "kill → UDP answer".into(),
                    color: svg::TANDEM,
                    values: ans.clone(),
                },
            ];
            let refs = if v == "lease" {
                let b = lease_bound_ms(runs[0]);
                goals.push(Goal {
                    goal: "quorum failover within lease + margin + election + 10 ms".into(),
                    figure: "kill -9 of the holder, lease only: kill → new holder's first ARP \
                             answer, max"
                        .into(),
                    tandem: s_arp.map_or("–".into(), |s| f1(s.max)),
                    reference: format!(
                        "{lease} + {margin} + {elect} = {} + 10 (keepalived n/a)",
                        f1(b)
                    ),
                    met: s_arp.map(|s| s.max <= b + SLACK_MS),
                });
                vec![
                    svg::RefLine {
                        value: (lease + margin) as f64,
                        label: format!("lease + margin {}", lease + margin),
                        dash: "1 3",
                    },
                    svg::RefLine {
                        value: b,
                        label: format!("+ election {}", f1(b)),
                        dash: "5 3",
                    },
                ]
            } else {
                metrics.push(metric_line(
                    "quorum.kill9.fence.kill_to_attempt_median_ms",
                    stats::summarize(&att).map(|s| s.median),
                    None,
                ));
                metrics.push(metric_line(
                    "quorum.kill9.fence.attempt_to_verified_median_ms",
                    stats::summarize(&fen).map(|s| s.median),
                    None,
                ));
                rows.push(svg::Row {
                    label: "kill → fence attempt".into(),
                    color: svg::TANDEM,
                    values: att,
                });
                rows.push(svg::Row {
                    label: "fence attempt → verified".into(),
                    color: svg::TANDEM,
                    values: fen,
                });
                vec![svg::RefLine {
                    value: fence_after as f64,
                    label: format!("2 × renew + margin {fence_after}"),
                    dash: "5 3",
                }]
            };
            panels.push(svg::Panel {
                title: format!("{} ({} runs)", variant_label(v), runs.len()),
                unit: "ms".into(),
                rows,
                refs,
                min_xmax: 0.0,
            });
        }
        let _ = writeln!(
            md,
            "| both | keepalived | n/a | n/a | n/a | n/a | n/a | n/a | n/a | n/a | n/a |"
        );
        if let Some((k, n)) = regrants {
            let _ = writeln!(
                md,
                "\nIn {k} of {n} lease-only runs the group's epoch grew by two or more before lb2 \
                 held it: once the lease had run out, the leader granted the group to the killed \
                 lb1 once more (the highest priority among the members it counts as alive), and \
                 gave it to lb2 only when that grant had run out too, a second lease + margin \
                 later. The leader counts a member as alive while it heard from it within one \
                 lease, and a holder's reports (every lease_renew, not logged) can come up to a \
                 renew interval after its last committed renewal: when the last one came more \
                 than lease_margin after it, the killed holder is still alive when its group is \
                 reassigned (lease + margin after the renewal). Those runs are over the bound."
            );
        }
        one_scale(&mut panels);
        let title = "Quorum mode: kill -9 of the lease holder's daemon";
        let name = "quorum-kill9.svg";
        let path = plots_dir.join(name);
        std::fs::write(&path, svg::strip_chart(title, &panels))?;
        files.push(path);
        let _ = writeln!(md, "\n![{title}]({})\n", link(name));
    }

    // ---- tandem move ----
    if !moves.is_empty() {
        move_section(&moves, &mut md, &mut metrics, &mut goals);
        let arp = col(&moves, |o| o.event_to_arp_ms);
        let ans = col(&moves, |o| o.event_to_answer_ms);
        let gap = col(&moves, |o| o.client_ms);
        let skew = move_skew_ms();
        let mut panels = vec![svg::Panel {
            title: format!("tandem move, lb1 → lb2 ({} runs)", moves.len()),
            unit: "ms".into(),
            rows: vec![
                svg::Row {
                    label: "move → lb2's ARP".into(),
                    color: svg::TANDEM,
                    values: arp,
                },
                svg::Row {
                    label: "move → UDP answer".into(),
                    color: svg::TANDEM,
                    values: ans,
                },
                svg::Row {
                    label: "client gap".into(),
                    color: svg::TANDEM,
                    values: gap,
                },
            ],
            refs: vec![svg::RefLine {
                value: skew + SLACK_MS,
                label: format!("Skew_Time + 10 = {}", f1(skew + SLACK_MS)),
                dash: "5 3",
            }],
            min_xmax: 0.0,
        }];
        one_scale(&mut panels);
        let title = "Quorum mode: planned switchover with tandem move";
        let name = "quorum-move.svg";
        let path = plots_dir.join(name);
        std::fs::write(&path, svg::strip_chart(title, &panels))?;
        files.push(path);
        let _ = writeln!(md, "\n![{title}]({})\n", link(name));
    }

    // ---- renewal commit latency ----
    if !lats.is_empty() {
        let _ = writeln!(
            md,
            "### Raft commit latency of lease renewals\n\n\
             The holder's daemon times each successful renewal from sending its `Renew` (to \
             its own Raft when it leads, else forwarded over the authenticated transport to \
             the leader) to the committed reply, and keeps the last 4096 in `tandem status \
             --json` (`.quorum.renew_latency_us`, µs). A commit is the leader's append and \
             fsync (redb) and a majority of followers' append and fsync; the stores are in \
             the lab directory. The script starts a fresh cluster of one group, lb1 last (so \
             another member leads and every renewal is forwarded: one more round trip), waits \
             until lb1 holds the group alone, and takes every renewal committed during the \
             window (one per lease_renew). 3 voters: lb1, lb2, arb; 5 voters: lb1–lb4 \
             (lb3 and lb4 at priority 90 and 80) and arb; lease timing as above. A 30 s \
             window holds 120 renewals, so the p99 (nearest rank) is the second highest.\n"
        );
        let _ = writeln!(
            md,
            "| voters | daemon | members | leader (renewal path) | window s | renewals | p50 ms | p99 ms | max ms |"
        );
        let _ = writeln!(md, "|---|---|---|---|---|---|---|---|---|");
        let mut panels = Vec::new();
        let mut voters: Vec<u32> = lats.iter().map(|l| l.voters).collect();
        voters.sort_unstable();
        voters.dedup();
        for n in &voters {
            for l in lats.iter().filter(|l| l.voters == *n) {
                let leader = match l.leader.as_deref() {
                    Some(x) if x == l.holder => format!("{x} (the holder: local)"),
                    Some(x) => format!("{x} (forwarded by {})", l.holder),
                    None => "unknown".into(),
                };
                let o = |v: Option<f64>| v.map_or("–".into(), f1);
                let _ = writeln!(
                    md,
                    "| {n} | tandem | {} | {leader} | {} | {} | {} | {} | {} |",
                    l.members.join(", "),
                    f1(l.secs),
                    l.samples_us.len(),
                    o(l.p50_ms),
                    o(l.p99_ms),
                    o(l.max_ms)
                );
                metrics.push(metric_line(
                    &format!("quorum.renew.voters{n}.p50_ms"),
                    l.p50_ms,
                    None,
                ));
                metrics.push(metric_line(
                    &format!("quorum.renew.voters{n}.p99_ms"),
                    l.p99_ms,
                    None,
                ));
                let vals: Vec<f64> = l.samples_us.iter().map(|u| *u as f64 / 1000.0).collect();
                panels.push(svg::Panel {
                    title: format!(
                        "{n} voters, leader {} ({} renewals in {} s)",
                        l.leader.as_deref().unwrap_or("unknown"),
                        l.samples_us.len(),
                        f1(l.secs)
                    ),
                    unit: "ms".into(),
                    rows: vec![svg::Row {
                        label: format!("{} · renewal commit", l.holder),
                        color: svg::TANDEM,
                        values: vals,
                    }],
                    refs: l
                        .p99_ms
                        .map(|p| svg::RefLine {
                            value: p,
                            label: format!("p99 {}", f1(p)),
                            dash: "5 3",
                        })
                        .into_iter()
                        .collect(),
                    min_xmax: 0.0,
                });
            }
        }
        let _ = writeln!(
            md,
            "| {} | keepalived | n/a | n/a | n/a | n/a | n/a | n/a | n/a |",
            voters
                .iter()
                .map(u32::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        );
        one_scale(&mut panels);
        let title = "Quorum mode: Raft commit latency of lease renewals";
        let name = "quorum-renew-latency.svg";
        let path = plots_dir.join(name);
        std::fs::write(
            &path,
            svg::strip_chart_note(title, &panels, "dots: renewals; bar: median; dashed: p99"),
        )?;
        files.push(path);
        let _ = writeln!(md, "\n![{title}]({})\n", link(name));
    }
    Ok(Section {
        md,
        metrics,
        goals,
        files,
    })
}

/// lb2's priority and the instance's advert interval (VRRPv3) in the quorum configs
/// scripts/bench writes (`bench_quorum_conf`): the planned-move goal is lb2's Skew_Time, as
/// for a VRRP planned switchover.
const Q_BACKUP_PRIORITY: u8 = 100;
const Q_ADVERT_MS: u64 = 100;

fn move_skew_ms() -> f64 {
    skew_ms(3, Q_ADVERT_MS, Q_BACKUP_PRIORITY)
}

/// The text, table, metric lines and goal of the `tandem move` runs.
fn move_section(
    moves: &[&QuorumOutage],
    md: &mut String,
    metrics: &mut Vec<String>,
    goals: &mut Vec<Goal>,
) {
    let skew = move_skew_ms();
    let _ = writeln!(
        md,
        "### Planned switchover: `tandem move`\n\n\
         The lease-only cluster above, lb1 holding the group. At a random point of the renewal \
         cycle the script runs `tandem move VI_1 lb2` against the arbiter's control socket \
         (as an operator would from any member: the request goes to the leader). The leader \
         commits a `Move`; lb1 removes its VIP and commits `Release`; the leader grants the \
         group to lb2, which configures the VIP and sends its gratuitous ARP. Two holders at \
         once are never allowed, so the client sees a gap: **client gap** is lb1's last UDP \
         answer to lb2's first, at the client, the planned switchover's outage. Beside it, \
         from the command: lb2's first ARP for the VIP and its first UDP answer. The goal is \
         the one for a VRRP planned switchover: at most lb2's Skew_Time ((256 − {}) × {} ms / \
         256 = {} ms) + 10 ms. Restored by `tandem move VI_1 --clear`, after which lb1 \
         preempts. keepalived has no move command (its planned switchover is the SIGTERM of \
         section 1).\n",
        Q_BACKUP_PRIORITY,
        Q_ADVERT_MS,
        f1(skew)
    );
    let arp = stats::summarize(&col(moves, |o| o.event_to_arp_ms));
    let ans = stats::summarize(&col(moves, |o| o.event_to_answer_ms));
    let gap = stats::summarize(&col(moves, |o| o.client_ms));
    let mut extra = String::new();
    let missing = moves.iter().filter(|o| o.client_ms.is_none()).count();
    if missing > 0 {
        let _ = write!(extra, " ({missing} runs without a switch seen!)");
    }
    let both = moves.iter().filter(|o| o.old_answers_after > 0).count();
    if both > 0 {
        let _ = write!(extra, " ({both} runs: lb1 answered after lb2!)");
    }
    let _ = writeln!(
        md,
        "| daemon | runs | move → lb2's first ARP ms | move → its first UDP answer ms | client gap ms | goal ms |\n\
         |---|---|---|---|---|---|\n\
         | tandem{extra} | {} | {} | {} | {} | {} |\n\
         | keepalived | n/a | n/a | n/a | n/a | n/a |\n",
        moves.len(),
        triple(arp),
        triple(ans),
        triple(gap),
        f1(skew + SLACK_MS)
    );
    metrics.push(metric_line(
        "quorum.move.client_gap_median_ms",
        gap.map(|s| s.median),
        None,
    ));
    metrics.push(metric_line(
        "quorum.move.client_gap_max_ms",
        gap.map(|s| s.max),
        None,
    ));
    metrics.push(metric_line(
        "quorum.move.move_to_arp_median_ms",
        arp.map(|s| s.median),
        None,
    ));
    goals.push(Goal {
        goal: "planned switchover ≤ Skew_Time + 10 ms".into(),
        figure: "quorum mode, tandem move: client gap, max".into(),
        tandem: gap.map_or("–".into(), |s| f1(s.max)),
        reference: format!("Skew_Time {} + 10 (keepalived: no move)", f1(skew)),
        met: gap.map(|s| s.max <= skew + SLACK_MS),
    });
}
