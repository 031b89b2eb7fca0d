//! `vip-watch`: the split-brain checker of the quorum-mode end-to-end tests.
//!
//! For the whole test it samples, every `--interval`:
//!
//! * **addresses**: one pass over every node reads the node's addresses through a
//!   NETLINK_ROUTE socket created inside the node's network namespace (an address dump of
//!   the VIP's family), and notes which nodes have the VIP configured. A pass in which two
//!   or more nodes have it is an `addr` violation. A pass takes time, so this is
//!   conservative: a node that drops the VIP before another adds it, between two reads, is
//!   not caught, but two nodes both seen holding it within one pass are reported (a correct
//!   lease protocol leaves a gap of at least twice its margin, far longer than a pass). The
//!   nodes are read in alternating order, so that an overlap is caught however the
//!   handover runs.
//! * **ARP** (IPv4 VIP and `--client` given): from the client's namespace, an ARP request
//!   for the VIP is broadcast out of `--client-if` and every reply addressed to the client
//!   is collected until the next request. Two different MACs answering one request is an
//!   `arp` violation. MACs are mapped to node names through the nodes' link tables (read at
//!   start and every second).
//!
//! It runs until SIGTERM/SIGINT or `--duration`, then writes a JSON report to `--out` and
//! prints one summary line. Exit status: 0 no violation, 1 a violation was seen, 2 a setup
//! or sampling error (a reading failed, or not one sample was taken).

mod arp;
mod netlink;
mod sys;

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::Parser;
use serde::Serialize;

use netlink::Netlink;

/// The longest run allowed: the watcher always ends by itself. Long enough for a long
/// nemesis soak; what it keeps grows only with holder changes, not with samples.
const MAX_DURATION: Duration = Duration::from_secs(6 * 3600);
/// How often the nodes' MACs are read again (interfaces come and go during a test).
const MAC_REFRESH_NS: i64 = 1_000_000_000;
/// At most this many address violations are listed (the count goes on).
const KEEP_MAX: usize = 1000;

#[derive(Parser, Debug)]
#[command(
    name = "vip-watch",
    about = "Split-brain checker: sample which nodes hold a VIP (addresses in every node's \
             network namespace, ARP replies seen by a client) until stopped, report \
             any instant with two holders",
    after_help = "Exit status: 0 no violation, 1 violation seen, 2 setup or sampling error."
)]
struct Args {
    /// The virtual address to watch (IPv4 or IPv6; the ARP check needs IPv4).
    #[arg(long)]
    vip: IpAddr,
    /// A node: NAME=NETNS (repeatable). NETNS is an `ip netns` name, or a path such as
    /// /proc/PID/ns/net. A bare NETNS names the node after its namespace.
    #[arg(long = "node", required = true, value_parser = parse_node)]
    nodes: Vec<NodeArg>,
    /// The client's network namespace (enables the ARP check).
    #[arg(long)]
    client: Option<String>,
    /// The client's interface on the nodes' segment.
    #[arg(long, default_value = "eth0")]
    client_if: String,
    /// Sampling interval (e.g. 5ms, 500us, 1s); at least 1ms, at most 10s.
    #[arg(long, default_value = "5ms", value_parser = parse_duration)]
    interval: Duration,
    /// Where to write the JSON report.
    #[arg(long)]
    out: PathBuf,
    /// Stop after this long (e.g. 60s, 2m) if no signal came first; at most 6h.
    #[arg(long, default_value = "600s", value_parser = parse_duration)]
    duration: Duration,
    /// Write this file once the first sample is taken (the watch is live).
    #[arg(long)]
    ready: Option<PathBuf>,
}

#[derive(Clone, Debug)]
struct NodeArg {
    name: String,
    netns: String,
}

fn parse_node(s: &str) -> Result<NodeArg, String> {
    let (name, netns) = match s.split_once('=') {
        Some((n, ns)) => (n, ns),
        None => (s, s),
    };
    if name.is_empty() || netns.is_empty() {
        return Err(format!("expected NAME=NETNS, got {s:?}"));
    }
    Ok(NodeArg {
        name: name.to_string(),
        netns: netns.to_string(),
    })
}

/// `5ms`, `500us`, `1.5s`, `2m`: a number and a unit.
fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .ok_or_else(|| format!("{s:?}: missing unit (us, ms, s or m)"))?;
    let (num, unit) = s.split_at(split);
    let v: f64 = num
        .parse()
        .map_err(|_| format!("{s:?}: not a number and a unit"))?;
    let secs = match unit.trim() {
        "us" | "µs" => v / 1e6,
        "ms" => v / 1e3,
        "s" => v,
        "m" | "min" => v * 60.0,
        u => return Err(format!("{s:?}: unknown unit {u:?} (us, ms, s or m)")),
    };
    if !secs.is_finite() || !(0.0..=1e6).contains(&secs) {
        return Err(format!("{s:?}: out of range"));
    }
    Ok(Duration::from_secs_f64(secs))
}

fn ms(ns: i64) -> f64 {
    (ns as f64 / 1e3).round() / 1e3
}

// ---------------------------------------------------------------------------------------
// The address timeline.

#[derive(Serialize, Debug, Clone, PartialEq)]
struct Violation {
    t_ms: f64,
    kind: &'static str,
    holders: Vec<String>,
    /// addr: when the pass ended.
    #[serde(skip_serializing_if = "Option::is_none")]
    t_end_ms: Option<f64>,
    /// arp: the MACs that answered the request.
    #[serde(skip_serializing_if = "Option::is_none")]
    macs: Option<Vec<String>>,
}

#[derive(Serialize, Debug, Clone, PartialEq)]
struct Change {
    t_ms: f64,
    holders: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    t_end_ms: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    macs: Option<Vec<String>>,
}

/// Follows the address samples: violations, the holder timeline, the gaps.
#[derive(Default)]
struct Tracker {
    samples: u64,
    incomplete: u64,
    max_holders: usize,
    violations: Vec<(i64, i64, Vec<usize>)>,
    violations_total: u64,
    /// (pass start, pass end, holders) each time the set of holders changed.
    changes: Vec<(i64, i64, Vec<usize>)>,
    /// When the last holder was first seen gone (a gap is only counted between holders).
    gap_start: Option<i64>,
    longest_gap_ns: i64,
    gap_count: u64,
    max_pass_ns: i64,
    total_pass_ns: i64,
}

impl Tracker {
    /// One pass, from `t0` to `t1` (ns since the watch began), that saw `holders` (node
    /// indices, sorted). An incomplete pass (a node could not be read) can still show a
    /// violation, but it does not move the timeline.
    fn observe(&mut self, t0: i64, t1: i64, holders: &[usize], complete: bool) {
        self.samples += 1;
        self.max_pass_ns = self.max_pass_ns.max(t1 - t0);
        self.total_pass_ns += t1 - t0;
        self.max_holders = self.max_holders.max(holders.len());
        if holders.len() >= 2 {
            self.violations_total += 1;
            if self.violations.len() < KEEP_MAX {
                self.violations.push((t0, t1, holders.to_vec()));
            }
        }
        if !complete {
            self.incomplete += 1;
            return;
        }
        let prev = self.changes.last().map(|c| c.2.as_slice());
        if prev == Some(holders) {
            return;
        }
        match (prev, holders.is_empty()) {
            (Some(p), true) if !p.is_empty() => self.gap_start = Some(t0),
            (_, false) => {
                if let Some(g) = self.gap_start.take() {
                    self.gap_count += 1;
                    self.longest_gap_ns = self.longest_gap_ns.max(t0 - g);
                }
            }
            _ => {}
        }
        self.changes.push((t0, t1, holders.to_vec()));
    }
}

// ---------------------------------------------------------------------------------------
// The report.

#[derive(Serialize)]
struct NodeReport {
    name: String,
    netns: String,
}

#[derive(Serialize)]
struct ClientReport {
    netns: String,
    interface: String,
    mac: String,
    ip: String,
}

#[derive(Serialize)]
struct Report {
    vip: String,
    /// Wall-clock time of `t_ms` = 0, in ms since the Unix epoch, to line the timeline up
    /// with other records (a nemesis's fault windows).
    started_unix_ms: f64,
    interval_ms: f64,
    duration_ms: f64,
    stopped_by: &'static str,
    nodes: Vec<NodeReport>,
    client: Option<ClientReport>,
    samples: u64,
    sample_errors: u64,
    sample_last_error: Option<String>,
    sample_pass_max_ms: f64,
    sample_pass_mean_ms: f64,
    arp_requests: u64,
    arp_replies: u64,
    arp_gratuitous: u64,
    arp_send_errors: u64,
    arp_recv_errors: u64,
    arp_last_error: Option<String>,
    violations: Vec<Violation>,
    violations_total: u64,
    max_holders: usize,
    max_addr_holders: usize,
    max_arp_repliers: usize,
    holder_changes: Vec<Change>,
    arp_changes: Vec<Change>,
    gaps: f64,
    gap_count: u64,
    macs: BTreeMap<String, Vec<String>>,
}

// ---------------------------------------------------------------------------------------
// The watch.

struct Node {
    name: String,
    nl: Netlink,
}

/// Which nodes own which MACs (every MAC seen on their interfaces during the run).
#[derive(Default)]
struct MacMap(BTreeMap<[u8; 6], BTreeSet<usize>>);

impl MacMap {
    fn refresh(&mut self, nodes: &mut [Node]) -> anyhow::Result<()> {
        for (i, n) in nodes.iter_mut().enumerate() {
            let links =
                n.nl.links()
                    .with_context(|| format!("reading the links of node {}", n.name))?;
            for l in links {
                if let Some(m) = l.mac {
                    self.0.entry(m).or_default().insert(i);
                }
            }
        }
        Ok(())
    }

    /// A node name for a MAC ("lb1", "lb1|lb2" when shared), or the MAC itself.
    fn label(&self, mac: &[u8; 6], nodes: &[Node]) -> String {
        match self.0.get(mac) {
            Some(s) if !s.is_empty() => s
                .iter()
                .map(|&i| nodes[i].name.as_str())
                .collect::<Vec<_>>()
                .join("|"),
            _ => sys::mac_str(mac),
        }
    }
}

struct Client {
    netns: String,
    interface: String,
    sock: arp::ArpSocket,
}

/// Open the client's ARP socket inside its namespace, with the interface's MAC and IPv4
/// address read through netlink there.
fn open_client(netns: &str, ifname: &str) -> anyhow::Result<Client> {
    let ns = sys::open_netns(netns).context("client namespace")?;
    let sock = sys::in_netns(&ns, || {
        let mut nl = Netlink::open()?;
        let link = nl
            .links()?
            .into_iter()
            .find(|l| l.name == ifname)
            .ok_or_else(|| std::io::Error::other(format!("no interface {ifname}")))?;
        let mac = link
            .mac
            .ok_or_else(|| std::io::Error::other(format!("{ifname} has no MAC")))?;
        let ip = nl
            .addrs(libc::AF_INET as u8)?
            .into_iter()
            .find_map(|(idx, a)| match a {
                IpAddr::V4(a) if idx == link.index => Some(a),
                _ => None,
            });
        let ip = ip.unwrap_or_else(|| {
            eprintln!(
                "vip-watch: {ifname} in {netns} has no IPv4 address; sending ARP probes from 0.0.0.0"
            );
            Ipv4Addr::UNSPECIFIED
        });
        arp::ArpSocket::open(link.index, mac, ip)
    })
    .with_context(|| format!("client {netns} interface {ifname}"))?;
    Ok(Client {
        netns: netns.to_string(),
        interface: ifname.to_string(),
        sock,
    })
}

fn run(args: Args) -> anyhow::Result<i32> {
    if args.interval < Duration::from_millis(1) || args.interval > Duration::from_secs(10) {
        bail!("--interval must be between 1ms and 10s");
    }
    if args.duration.is_zero() || args.duration > MAX_DURATION {
        bail!("--duration must be positive and at most {MAX_DURATION:?}");
    }
    let mut names = BTreeSet::new();
    for n in &args.nodes {
        if !names.insert(n.name.as_str()) {
            bail!("node {} given twice", n.name);
        }
    }
    sys::install_stop_handler().context("signal handlers")?;

    // Setup: one netlink socket inside every node's namespace, checked with a first dump.
    let mut nodes = Vec::with_capacity(args.nodes.len());
    for n in &args.nodes {
        let ns = sys::open_netns(&n.netns).with_context(|| format!("node {}", n.name))?;
        let mut nl = sys::in_netns(&ns, Netlink::open)
            .with_context(|| format!("netlink socket in {}", n.netns))?;
        nl.has_addr(args.vip)
            .with_context(|| format!("reading the addresses of node {}", n.name))?;
        nodes.push(Node {
            name: n.name.clone(),
            nl,
        });
    }
    let mut macs = MacMap::default();
    macs.refresh(&mut nodes)?;

    let client = match (&args.client, args.vip) {
        (Some(ns), IpAddr::V4(_)) => Some(open_client(ns, &args.client_if)?),
        (Some(_), IpAddr::V6(_)) => {
            eprintln!("vip-watch: IPv6 VIP: the ARP check is off (addresses only)");
            None
        }
        (None, _) => None,
    };

    let interval_ns = args.interval.as_nanos() as i64;
    let start = sys::monotonic_ns();
    let started_unix_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64() * 1000.0);
    let end = start + args.duration.as_nanos() as i64;

    let (arp_thread, client_report) = match client {
        Some(c) => {
            let report = ClientReport {
                netns: c.netns.clone(),
                interface: c.interface.clone(),
                mac: sys::mac_str(&c.sock.mac),
                ip: c.sock.ip.to_string(),
            };
            let IpAddr::V4(vip4) = args.vip else {
                unreachable!("the client is only opened for an IPv4 VIP")
            };
            let h = std::thread::Builder::new()
                .name("arp".into())
                .spawn(move || arp::run(&c.sock, vip4, interval_ns, end))
                .context("starting the ARP thread")?;
            (Some(h), Some(report))
        }
        None => (None, None),
    };

    // The sampler: one pass over every node per interval.
    let mut tr = Tracker::default();
    let mut sample_errors = 0u64;
    let mut sample_last_error = None;
    let mut next = start;
    let mut next_mac_refresh = start + MAC_REFRESH_NS;
    let mut ready_pending = args.ready.clone();
    let mut order: Vec<usize> = (0..nodes.len()).collect();
    let mut holding = vec![false; nodes.len()];
    let stopped_by = loop {
        if sys::stop_requested() {
            break "signal";
        }
        if sys::monotonic_ns() >= end {
            break "duration";
        }
        let t0 = sys::monotonic_ns();
        let mut complete = true;
        for &i in &order {
            match nodes[i].nl.has_addr(args.vip) {
                Ok(h) => holding[i] = h,
                Err(e) => {
                    holding[i] = false;
                    complete = false;
                    sample_errors += 1;
                    sample_last_error = Some(format!("{}: {e}", nodes[i].name));
                }
            }
        }
        let t1 = sys::monotonic_ns();
        order.reverse();
        let holders: Vec<usize> = (0..nodes.len()).filter(|&i| holding[i]).collect();
        tr.observe(t0 - start, t1 - start, &holders, complete);

        if let Some(p) = ready_pending.take() {
            std::fs::write(&p, b"ready\n").with_context(|| format!("{}", p.display()))?;
        }
        let now = sys::monotonic_ns();
        if now >= next_mac_refresh {
            if let Err(e) = macs.refresh(&mut nodes) {
                sample_errors += 1;
                sample_last_error = Some(format!("{e:#}"));
            }
            next_mac_refresh = now + MAC_REFRESH_NS;
        }
        next += interval_ns;
        let now = sys::monotonic_ns();
        if next <= now {
            // A pass took longer than the interval: go on at once, without a burst.
            next = now;
        } else {
            sys::sleep_until_monotonic(next.min(end));
        }
    };
    let stop = sys::monotonic_ns();
    sys::STOP.store(true, std::sync::atomic::Ordering::SeqCst);
    let arp = match arp_thread {
        Some(h) => Some(
            h.join()
                .map_err(|_| anyhow::anyhow!("the ARP thread panicked"))?,
        ),
        None => None,
    };
    // Catch the MACs of interfaces created late in the run.
    if let Err(e) = macs.refresh(&mut nodes) {
        sample_errors += 1;
        sample_last_error = Some(format!("{e:#}"));
    }

    let names_of =
        |hs: &[usize]| -> Vec<String> { hs.iter().map(|&i| nodes[i].name.clone()).collect() };
    let arp_labels = |ms: &[[u8; 6]]| -> (Vec<String>, Vec<String>) {
        let mut labels: Vec<String> = ms.iter().map(|m| macs.label(m, &nodes)).collect();
        labels.sort();
        labels.dedup();
        let mut strs: Vec<String> = ms.iter().map(sys::mac_str).collect();
        strs.sort();
        (labels, strs)
    };

    let mut violations: Vec<Violation> = tr
        .violations
        .iter()
        .map(|(t0, t1, hs)| Violation {
            t_ms: ms(*t0),
            kind: "addr",
            holders: names_of(hs),
            t_end_ms: Some(ms(*t1)),
            macs: None,
        })
        .collect();
    let mut arp_changes = Vec::new();
    let mut macs_seen = BTreeSet::new();
    if let Some(a) = &arp {
        for w in &a.violations {
            let (holders, m) = arp_labels(&w.macs);
            violations.push(Violation {
                t_ms: ms(w.t_ns - start),
                kind: "arp",
                holders,
                t_end_ms: None,
                macs: Some(m),
            });
        }
        for w in &a.changes {
            let (holders, m) = arp_labels(&w.macs);
            arp_changes.push(Change {
                t_ms: ms(w.t_ns - start),
                holders,
                t_end_ms: None,
                macs: Some(m),
            });
        }
        macs_seen.extend(a.macs_seen.iter().copied());
    }
    violations.sort_by(|a, b| a.t_ms.total_cmp(&b.t_ms));
    let violations_total = tr.violations_total + arp.as_ref().map_or(0, |a| a.violations_total);
    let max_arp = arp.as_ref().map_or(0, |a| a.max_repliers);
    let mut mac_table: BTreeMap<String, Vec<String>> = macs
        .0
        .iter()
        .map(|(m, s)| {
            (
                sys::mac_str(m),
                s.iter().map(|&i| nodes[i].name.clone()).collect(),
            )
        })
        .collect();
    for m in &macs_seen {
        mac_table.entry(sys::mac_str(m)).or_default();
    }

    let report = Report {
        vip: args.vip.to_string(),
        started_unix_ms,
        interval_ms: ms(interval_ns),
        duration_ms: ms(stop - start),
        stopped_by,
        nodes: args
            .nodes
            .iter()
            .map(|n| NodeReport {
                name: n.name.clone(),
                netns: n.netns.clone(),
            })
            .collect(),
        client: client_report,
        samples: tr.samples,
        sample_errors,
        sample_last_error,
        sample_pass_max_ms: ms(tr.max_pass_ns),
        sample_pass_mean_ms: if tr.samples > 0 {
            ms(tr.total_pass_ns / tr.samples as i64)
        } else {
            0.0
        },
        arp_requests: arp.as_ref().map_or(0, |a| a.requests),
        arp_replies: arp.as_ref().map_or(0, |a| a.replies),
        arp_gratuitous: arp.as_ref().map_or(0, |a| a.gratuitous),
        arp_send_errors: arp.as_ref().map_or(0, |a| a.send_errors),
        arp_recv_errors: arp.as_ref().map_or(0, |a| a.recv_errors),
        arp_last_error: arp.as_ref().and_then(|a| a.last_error.clone()),
        violations,
        violations_total,
        max_holders: tr.max_holders.max(max_arp),
        max_addr_holders: tr.max_holders,
        max_arp_repliers: max_arp,
        holder_changes: tr
            .changes
            .iter()
            .map(|(t0, t1, hs)| Change {
                t_ms: ms(*t0),
                holders: names_of(hs),
                t_end_ms: Some(ms(*t1)),
                macs: None,
            })
            .collect(),
        arp_changes,
        gaps: ms(tr.longest_gap_ns),
        gap_count: tr.gap_count,
        macs: mac_table,
    };
    let json = serde_json::to_vec_pretty(&report).context("encoding the report")?;
    let tmp = {
        let mut s = args.out.clone().into_os_string();
        s.push(".tmp");
        PathBuf::from(s)
    };
    std::fs::write(&tmp, &json).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, &args.out).with_context(|| format!("writing {}", args.out.display()))?;
    println!(
        "vip-watch: samples={} violations={} max_holders={} changes={}",
        report.samples,
        report.violations_total,
        report.max_holders,
        report.holder_changes.len()
    );

    if violations_total > 0 {
        return Ok(1);
    }
    if report.samples == 0 {
        eprintln!("vip-watch: no sample was taken");
        return Ok(2);
    }
    if sample_errors > 0 {
        eprintln!(
            "vip-watch: {sample_errors} sampling errors (last: {})",
            report.sample_last_error.as_deref().unwrap_or("?")
        );
        return Ok(2);
    }
    Ok(0)
}

fn main() {
    let args = Args::parse();
    let code = match run(args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("vip-watch: {e:#}");
            2
        }
    };
    std::process::exit(code);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("5ms"), Ok(Duration::from_millis(5)));
        assert_eq!(parse_duration("500us"), Ok(Duration::from_micros(500)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert!(parse_duration("5").is_err());
        assert!(parse_duration("5h").is_err());
        assert!(parse_duration("ms").is_err());
    }

    #[test]
    fn node_args() {
        let n = parse_node("lb1=ns-lb1").unwrap();
        assert_eq!((n.name.as_str(), n.netns.as_str()), ("lb1", "ns-lb1"));
        let n = parse_node("ns-lb2").unwrap();
        assert_eq!((n.name.as_str(), n.netns.as_str()), ("ns-lb2", "ns-lb2"));
        assert!(parse_node("=x").is_err());
        assert!(parse_node("x=").is_err());
    }

    #[test]
    fn cli_parses() {
        let a = Args::try_parse_from([
            "vip-watch",
            "--vip",
            "10.0.0.100",
            "--node",
            "lb1=ns-lb1",
            "--node",
            "lb2=ns-lb2",
            "--client",
            "ns-client",
            "--client-if",
            "eth0",
            "--interval",
            "5ms",
            "--out",
            "r.json",
            "--duration",
            "60s",
        ])
        .unwrap();
        assert_eq!(a.nodes.len(), 2);
        assert_eq!(a.interval, Duration::from_millis(5));
        assert_eq!(a.duration, Duration::from_secs(60));
        assert!(Args::try_parse_from(["vip-watch", "--vip", "10.0.0.1", "--out", "x"]).is_err());
    }

    #[test]
    fn tracker_timeline_gaps_and_violations() {
        let mut t = Tracker::default();
        // Nobody at first (not a gap), then node 0, a gap, node 1, then both, then node 1.
        t.observe(0, 1, &[], true);
        t.observe(10, 11, &[0], true);
        t.observe(20, 21, &[0], true);
        t.observe(30, 31, &[], true);
        t.observe(40, 41, &[], true);
        t.observe(90, 91, &[1], true);
        t.observe(100, 101, &[0, 1], true);
        t.observe(110, 111, &[1], true);
        // An incomplete pass: counted, but the timeline does not move.
        t.observe(120, 121, &[], false);
        assert_eq!(t.samples, 9);
        assert_eq!(t.incomplete, 1);
        assert_eq!(t.max_holders, 2);
        assert_eq!(t.violations_total, 1);
        assert_eq!(t.violations, vec![(100, 101, vec![0, 1])]);
        let starts: Vec<i64> = t.changes.iter().map(|c| c.0).collect();
        assert_eq!(starts, vec![0, 10, 30, 90, 100, 110]);
        assert_eq!(t.gap_count, 1);
        assert_eq!(t.longest_gap_ns, 60);
    }

    #[test]
    fn incomplete_pass_still_reports_two_holders() {
        let mut t = Tracker::default();
        t.observe(0, 1, &[0, 2], false);
        assert_eq!(t.violations_total, 1);
        assert!(t.changes.is_empty());
    }
}
