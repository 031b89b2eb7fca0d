//! `tandem-bench`: the measuring tool behind `scripts/bench` (issue 8).
//!
//! The script builds the namespace lab and drives the daemons; this tool does everything that
//! needs precision or arithmetic:
//! - `respond`: UDP echo responder in each node, answering with the node's name;
//! - `probe`: the client, probing the VIP every 1 ms and capturing adverts and ARP, all with
//!   kernel receive timestamps;
//! - `capture`: adverts and ARP alone, for the jitter of a footprint window;
//! - `outage` / `jitter`: one measurement from a log, appended to the results file;
//! - `quorum-outage` / `renew-latency`: quorum mode (kill -9 of the lease holder, and the
//!   holder's renewal commit latency from `tandem status --json`), appended likewise;
//! - `footprint`: RSS and CPU of daemons' process trees from /proc over a window;
//! - `report`: docs/benchmarks.md, one SVG per figure, and one
//!   `metric tandem=X keepalived=Y ratio=Z` line per figure on stdout.

mod analyze;
mod footprint;
mod probe;
mod quorum_report;
mod record;
mod report;
mod stats;
mod svg;
mod sys;

use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "tandem-bench",
    about = "tandem's benchmark tool (used by scripts/bench)"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// UDP echo responder: answers each probe with the probe plus this node's name.
    Respond {
        #[arg(long)]
        id: String,
        #[arg(long, default_value_t = 7777)]
        port: u16,
    },
    /// Probe TARGET every period; record answers, adverts and ARP with kernel timestamps.
    Probe {
        /// VIP:PORT
        #[arg(long)]
        target: SocketAddrV4,
        #[arg(long, default_value = "eth0")]
        iface: String,
        /// Capture adverts of this VRID only (and wait for one before writing --ready).
        #[arg(long)]
        vrid: Option<u8>,
        /// File written once an answer (and an advert) has been seen.
        #[arg(long)]
        ready: Option<PathBuf>,
        #[arg(long)]
        out: PathBuf,
        /// Hard stop.
        #[arg(long, default_value_t = 10.0)]
        max_secs: f64,
        /// Stop this long after a second node first answered.
        #[arg(long, default_value_t = 300)]
        linger_ms: u64,
        #[arg(long, default_value_t = 1000)]
        period_us: u64,
        /// Do not capture the wire.
        #[arg(long)]
        no_capture: bool,
        /// Also send an ARP probe for this address with every UDP probe (the answers are
        /// captured).
        #[arg(long)]
        arp: Option<Ipv4Addr>,
    },
    /// Capture adverts and ARP on IFACE for SECS.
    Capture {
        #[arg(long, default_value = "eth0")]
        iface: String,
        #[arg(long)]
        secs: f64,
        #[arg(long)]
        out: PathBuf,
    },
    /// One failover run from a probe log; appends one JSON line to --results.
    Outage {
        #[arg(long)]
        log: PathBuf,
        #[arg(long)]
        results: PathBuf,
        #[arg(long)]
        daemon: String,
        #[arg(long)]
        scenario: String,
        #[arg(long)]
        version: u8,
        #[arg(long)]
        interval_ms: u64,
        #[arg(long)]
        run: u32,
        #[arg(long)]
        old: String,
        #[arg(long)]
        new: String,
        #[arg(long)]
        old_ip: Ipv4Addr,
        #[arg(long)]
        new_ip: Ipv4Addr,
        #[arg(long)]
        vip: Ipv4Addr,
        #[arg(long)]
        vrid: u8,
        #[arg(long, default_value_t = 100)]
        new_priority: u8,
        /// CLOCK_REALTIME ns of the event (date +%s%N).
        #[arg(long)]
        event_ns: i64,
    },
    /// One quorum-mode run (kill -9 of the holder, or a `tandem move`) from a probe log
    /// (probed with --arp); appends one JSON line to --results.
    QuorumOutage {
        #[arg(long)]
        log: PathBuf,
        #[arg(long)]
        results: PathBuf,
        /// "lease" or "fence" (kill -9), or "move" (`tandem move`; --event-ns is the command).
        #[arg(long)]
        variant: String,
        #[arg(long)]
        run: u32,
        #[arg(long)]
        old: String,
        #[arg(long)]
        new: String,
        #[arg(long)]
        old_mac: String,
        #[arg(long)]
        new_mac: String,
        #[arg(long)]
        new_ip: Ipv4Addr,
        #[arg(long)]
        vip: Ipv4Addr,
        #[arg(long)]
        vrid: u8,
        /// CLOCK_REALTIME ns of the kill (date +%s%N).
        #[arg(long)]
        event_ns: i64,
        /// The Raft leader before the kill.
        #[arg(long)]
        leader: Option<String>,
        #[arg(long)]
        lease_ms: u64,
        #[arg(long)]
        renew_ms: u64,
        #[arg(long)]
        margin_ms: u64,
        /// A member's `tandem status --json` after the run (for its fence history).
        #[arg(long)]
        status: Option<PathBuf>,
        /// When the simulated BMC switched the old node off, ns since the epoch.
        #[arg(long)]
        power_off_ns: Option<i64>,
        /// The quorum group (instance name) and its epoch just before the kill.
        #[arg(long, default_value = "VI_1")]
        group: String,
        #[arg(long)]
        epoch_before: Option<u64>,
    },
    /// The lease holder's renewal commit latencies over a window from its `tandem status
    /// --json` after the window; appends one JSON line to --results.
    RenewLatency {
        #[arg(long)]
        status: PathBuf,
        /// Samples the holder had before the window (they are left out).
        #[arg(long, default_value_t = 0)]
        skip: usize,
        #[arg(long)]
        results: PathBuf,
        /// The Raft members, comma-separated (voters, arbiter included).
        #[arg(long, value_delimiter = ',')]
        members: Vec<String>,
        #[arg(long)]
        holder: String,
        #[arg(long)]
        secs: f64,
        #[arg(long)]
        renew_ms: u64,
    },
    /// Advert interval jitter of SRC from a capture log; appends one JSON line.
    Jitter {
        #[arg(long)]
        log: PathBuf,
        #[arg(long)]
        results: PathBuf,
        #[arg(long)]
        src: Ipv4Addr,
        #[arg(long)]
        daemon: String,
        #[arg(long)]
        instances: u32,
        #[arg(long)]
        interval_ms: u64,
        #[arg(long)]
        secs: f64,
    },
    /// RSS and CPU of each ROLE=PID process tree over SECS; appends one JSON line per role.
    Footprint {
        #[arg(long = "proc", required = true)]
        procs: Vec<String>,
        #[arg(long)]
        secs: f64,
        #[arg(long)]
        daemon: String,
        #[arg(long)]
        instances: u32,
        #[arg(long)]
        results: PathBuf,
    },
    /// Write the markdown report and its SVG plots; print one metric line per figure.
    Report {
        #[arg(long)]
        results: PathBuf,
        #[arg(long)]
        out: PathBuf,
        #[arg(long)]
        plots_dir: PathBuf,
        #[arg(long)]
        command: String,
        #[arg(long, default_value = "full")]
        mode: String,
        #[arg(long)]
        date: String,
        #[arg(long, default_value = "unknown")]
        tandem_rev: String,
        #[arg(long, default_value = "unknown")]
        keepalived_version: String,
        #[arg(long)]
        note: Vec<String>,
    },
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.cmd {
        Cmd::Respond { id, port } => probe::respond(&id, port),
        Cmd::Probe {
            target,
            iface,
            vrid,
            ready,
            out,
            max_secs,
            linger_ms,
            period_us,
            no_capture,
            arp,
        } => probe::probe(&probe::ProbeOpts {
            target,
            iface,
            vrid,
            ready,
            out,
            max_secs,
            linger_ms,
            period_us,
            capture: !no_capture,
            arp,
        }),
        Cmd::Capture { iface, secs, out } => probe::capture(&iface, secs, &out),
        Cmd::Outage {
            log,
            results,
            daemon,
            scenario,
            version,
            interval_ms,
            run,
            old,
            new,
            old_ip,
            new_ip,
            vip,
            vrid,
            new_priority,
            event_ns,
        } => {
            let l = analyze::read_log(&log)?;
            let o = analyze::outage(
                &l,
                &analyze::OutageInput {
                    daemon: &daemon,
                    scenario: &scenario,
                    version,
                    interval_ms,
                    run,
                    old: &old,
                    new: &new,
                    old_ip,
                    new_ip,
                    vip,
                    vrid,
                    new_priority,
                    event_ns,
                },
            );
            let f = |v: Option<f64>| v.map_or("none".to_string(), |v| format!("{v:.1}"));
            println!(
                "{daemon} {scenario} v{version} {interval_ms}ms run {run}: client {} ms, wire {} ms ({}), event→advert {} ms, answers {}/{}{}",
                f(o.client_ms),
                f(o.wire_ms),
                o.wire_from,
                f(o.event_to_advert_ms),
                o.answers,
                o.probes_sent,
                if o.old_answers_after > 0 {
                    format!(", old node answered {} more", o.old_answers_after)
                } else {
                    String::new()
                }
            );
            record::append(&results, &record::Record::Outage(o))
        }
        Cmd::QuorumOutage {
            log,
            results,
            variant,
            run,
            old,
            new,
            old_mac,
            new_mac,
            new_ip,
            vip,
            vrid,
            event_ns,
            leader,
            lease_ms,
            renew_ms,
            margin_ms,
            status,
            power_off_ns,
            group,
            epoch_before,
        } => {
            let l = analyze::read_log(&log)?;
            // Without a readable status the fence and grant figures are missing, not the run.
            let status = status.and_then(|p| {
                read_json(&p)
                    .map_err(|e| eprintln!("tandem-bench: no fence history or epoch: {e:#}"))
                    .ok()
            });
            let q = analyze::quorum_outage(
                &l,
                &analyze::QuorumInput {
                    variant: &variant,
                    run,
                    old: &old,
                    new: &new,
                    old_mac: &old_mac,
                    new_mac: &new_mac,
                    new_ip,
                    vip,
                    vrid,
                    event_ns,
                    leader,
                    lease_ms,
                    renew_ms,
                    margin_ms,
                    status: status.as_ref(),
                    power_off_ns,
                    group: &group,
                    epoch_before,
                },
            );
            let f = |v: Option<f64>| v.map_or("none".to_string(), |v| format!("{v:.1}"));
            println!(
                "quorum {variant} run {run} (leader {}, grants {}): {} → {new} ARP {} ms, answer {} ms, advert {} ms; client gap {} ms; {old} answered ARP {} more{}",
                q.leader.as_deref().unwrap_or("?"),
                q.grants.map_or("?".into(), |g| g.to_string()),
                if variant == "move" { "move" } else { "kill" },
                f(q.event_to_arp_ms),
                f(q.event_to_answer_ms),
                f(q.event_to_advert_ms),
                f(q.client_ms),
                q.old_arp_after,
                if variant == "fence" {
                    format!(
                        "; fence attempt at {} ms, attempt → result {} ms (verified {})",
                        f(q.event_to_fence_attempt_ms),
                        f(q.fence_ms),
                        q.fence_verified.map_or("?".into(), |v| v.to_string())
                    )
                } else {
                    String::new()
                }
            );
            record::append(&results, &record::Record::QuorumOutage(q))
        }
        Cmd::RenewLatency {
            status,
            skip,
            results,
            members,
            holder,
            secs,
            renew_ms,
        } => {
            let v = read_json(&status)?;
            let voters = members.len() as u32;
            let r = analyze::renew_latency(&v, skip, voters, members, &holder, secs, renew_ms)?;
            let f = |v: Option<f64>| v.map_or("none".to_string(), |v| format!("{v:.2}"));
            println!(
                "renew latency, {voters} voters, holder {holder}, leader {}: {} renewals in {secs} s, p50 {} ms, p99 {} ms, max {} ms",
                r.leader.as_deref().unwrap_or("?"),
                r.samples_us.len(),
                f(r.p50_ms),
                f(r.p99_ms),
                f(r.max_ms)
            );
            record::append(&results, &record::Record::RenewLatency(r))
        }
        Cmd::Jitter {
            log,
            results,
            src,
            daemon,
            instances,
            interval_ms,
            secs,
        } => {
            let l = analyze::read_log(&log)?;
            let j = analyze::jitter(&l, src, &daemon, instances, interval_ms, secs);
            println!(
                "{daemon} {instances} instance(s): {} adverts from {} VRIDs (expected {}), deviation p50 {:.2} p99 {:.2} max {:.2} ms",
                j.adverts, j.vrids, j.expected, j.p50_ms, j.p99_ms, j.max_ms
            );
            record::append(&results, &record::Record::Jitter(j))
        }
        Cmd::Footprint {
            procs,
            secs,
            daemon,
            instances,
            results,
        } => {
            let targets = procs
                .iter()
                .map(|s| footprint::parse_target(s))
                .collect::<anyhow::Result<Vec<_>>>()?;
            for f in footprint::sample(&targets, secs, &daemon, instances)? {
                println!(
                    "{daemon} {instances} instance(s) {}: {} procs, RSS {:.1} MiB, CPU {:.3} s ({:.2} %)",
                    f.role,
                    f.procs,
                    f.rss_kib_mean / 1024.0,
                    f.cpu_s,
                    100.0 * f.cpu_s / f.secs
                );
                record::append(&results, &record::Record::Footprint(f))?;
            }
            Ok(())
        }
        Cmd::Report {
            results,
            out,
            plots_dir,
            command,
            mode,
            date,
            tandem_rev,
            keepalived_version,
            note,
        } => {
            let recs = record::load(&results)?;
            let o = report::write(
                &recs,
                &report::Meta {
                    command,
                    mode,
                    date,
                    tandem_rev,
                    keepalived_version,
                    notes: note,
                },
                &out,
                &plots_dir,
            )
            .context("writing the report")?;
            for m in &o.metrics {
                println!("{m}");
            }
            for f in &o.files {
                eprintln!("wrote {}", f.display());
            }
            Ok(())
        }
    }
}

fn read_json(path: &std::path::Path) -> anyhow::Result<serde_json::Value> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tandem-bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}
