//! `tandem-nemesis`: a Jepsen-style soak. It builds a cluster with `scripts/lab`, drives a
//! seeded schedule of faults against it (partitions of every shape, isolation, kill -9 and
//! restart, hangs, link flaps, packet loss, operator writes, fence devices that fail, clocks
//! running fast or slow), records from outside every instant's VIP holders with `vip-watch`,
//! and afterwards checks the cluster's invariants (see [`check`]) from those samples, the daemons' logs and every Raft
//! store. It writes `report.json`, `report.md` and `timeline.svg` to `--out`, and exits 1 on
//! any violation (or, with `--expect-violations`, when it found none).
//!
//! Role: a test driver. It never changes how tandem runs; everything it does to the cluster
//! goes through `scripts/lab`, the operator's own lab tool.

mod check;
mod report;
mod schedule;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use clap::Parser;
use serde_json::Value;

use check::{Ack, Violation, Window};
use schedule::{Fault, Shape, Step, Target};

const VIP: &str = "192.0.2.100";

#[derive(Parser, Debug)]
#[command(about = "Seeded fault schedule against a scripts/lab cluster, with an invariant checker")]
struct Args {
    /// Number of fault events.
    #[arg(long, default_value_t = 50)]
    events: usize,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Where the report, the watch data and the lab's files go.
    #[arg(long)]
    out: PathBuf,
    /// The lab's name (namespaces tl<NAME>-*), [a-z0-9]{1,8}.
    #[arg(long, default_value = "soak")]
    name: String,
    /// `quorum`: lb1, lb2 and an arbiter in quorum mode. `vrrp`: two plain VRRP nodes, no
    /// cluster, no fencing: unsafe under partitions, for showing that the checker catches a
    /// split brain.
    #[arg(long, default_value = "quorum")]
    mode: String,
    /// Quorum mode without fence devices (kills and hangs are then left out of the schedule).
    #[arg(long)]
    no_fence: bool,
    /// Clock faults run a node's clocks up to this many per mille fast or slow (quorum mode;
    /// 0: none). The lab's lease_margin / lease is 100 per mille: within it tandem promises a
    /// single holder, and the default keeps to half of it so that scheduling delays in the
    /// lab do not eat the rest. Beyond it (with --no-fence) is how to see the checker catch a
    /// split brain caused by clocks.
    #[arg(long, default_value_t = 50)]
    max_drift_permille: u32,
    /// How long after the last fault a spell without a holder may last.
    #[arg(long, default_value = "10s", value_parser = parse_secs)]
    bound: Duration,
    /// Succeed only if a violation was found (the checker's own test).
    #[arg(long)]
    expect_violations: bool,
    /// Keep the lab running at the end.
    #[arg(long)]
    keep: bool,
    /// Print the schedule the seed gives and exit (no lab, no root needed).
    #[arg(long)]
    dry_run: bool,
}

fn parse_secs(s: &str) -> Result<Duration, String> {
    let n = s.strip_suffix('s').unwrap_or(s);
    n.parse::<f64>()
        .map(Duration::from_secs_f64)
        .map_err(|e| format!("{s:?}: {e}"))
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn unix_ms() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
}

/// The lab, through `scripts/lab`.
struct Lab {
    name: String,
    dir: PathBuf,
}

impl Lab {
    fn state(&self) -> PathBuf {
        self.dir.join(&self.name)
    }

    fn ns(&self, host: &str) -> String {
        format!("tl{}-{host}", self.name)
    }

    /// Runs `scripts/lab --name NAME ARGS`, bounded; the output, or why it failed.
    fn run(&self, args: &[&str]) -> anyhow::Result<String> {
        let mut cmd = Command::new(repo().join("scripts/lab"));
        cmd.arg("--name")
            .arg(&self.name)
            .args(args)
            .env("TANDEM_LAB_DIR", &self.dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let child = cmd.spawn().context("running scripts/lab")?;
        let out = wait_bounded(child, Duration::from_secs(120))
            .with_context(|| format!("scripts/lab {}", args.join(" ")))?;
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        if !out.status.success() {
            bail!(
                "scripts/lab {} failed ({}): {}{}",
                args.join(" "),
                out.status,
                text,
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(text)
    }

    fn status(&self) -> anyhow::Result<Value> {
        let out = self.run(&["status", "--json"])?;
        serde_json::from_str(&out).context("scripts/lab status --json")
    }

    fn holders(&self) -> Vec<String> {
        self.status()
            .ok()
            .and_then(|s| {
                s["holders"].as_array().map(|a| {
                    a.iter()
                        .filter_map(|h| h.as_str().map(String::from))
                        .collect()
                })
            })
            .unwrap_or_default()
    }

    /// Waits, bounded, until `pred` holds for the lab's status.
    fn wait(&self, what: &str, limit: Duration, pred: impl Fn(&Value) -> bool) -> bool {
        let end = Instant::now() + limit;
        while Instant::now() < end {
            if self.status().is_ok_and(|s| pred(&s)) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        eprintln!("nemesis: gave up waiting ({limit:?}) for {what}");
        false
    }
}

fn wait_bounded(mut child: Child, limit: Duration) -> anyhow::Result<std::process::Output> {
    let end = Instant::now() + limit;
    loop {
        if child.try_wait()?.is_some() {
            return Ok(child.wait_with_output()?);
        }
        if Instant::now() >= end {
            let _ = child.kill();
            let _ = child.wait();
            bail!("did not finish within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `… (raft log index 22, term 2)` from a committed operator write.
fn parse_ack(what: &str, out: &str) -> Option<Ack> {
    let at = out.find("raft log index ")? + "raft log index ".len();
    let rest = &out[at..];
    let (index, rest) = rest.split_once(", term ")?;
    let term = rest.split(')').next()?;
    Some(Ack {
        what: what.to_string(),
        index: index.trim().parse().ok()?,
        term: term.trim().parse().ok()?,
    })
}

struct Soak<'a> {
    lab: &'a Lab,
    voters: Vec<String>,
    acks: Vec<Ack>,
    windows: Vec<Window>,
    notes: Vec<String>,
}

impl Soak<'_> {
    fn resolve(&self, t: &Target) -> String {
        match t {
            Target::Node(n) => n.clone(),
            Target::Holder => self
                .lab
                .holders()
                .into_iter()
                .find(|h| self.voters.contains(h))
                .unwrap_or_else(|| self.voters[0].clone()),
        }
    }

    fn standby(&mut self, node: &str, on: bool) {
        let cmd = if on { "standby" } else { "unstandby" };
        match self.lab.run(&["tandem", "arb", cmd, node]) {
            Ok(out) => match parse_ack(&format!("{cmd} {node}"), &out) {
                Some(a) => self.acks.push(a),
                None => self
                    .notes
                    .push(format!("{cmd} {node}: no log index in {out:?}")),
            },
            // Not committed (no quorum at that moment): not acknowledged, nothing to check.
            Err(e) => self
                .notes
                .push(format!("{cmd} {node} not acknowledged: {e:#}")),
        }
    }

    /// Brings back every member that is not running or is powered off (fenced during the
    /// fault: any silent holder is, an isolated one included), as an operator would.
    fn recover(&mut self, members: &[String]) -> anyhow::Result<Vec<String>> {
        let status = self.lab.status()?;
        let down: Vec<String> = status["nodes"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|n| n["running"] == false || n["powered"] == false)
            .filter_map(|n| n["name"].as_str().map(String::from))
            .filter(|n| members.contains(n))
            .collect();
        for n in &down {
            self.lab.run(&["restart", n])?;
        }
        Ok(down)
    }

    /// Applies one step, holds it, undoes it; returns the label with real node names.
    fn step(&mut self, step: &Step) -> anyhow::Result<String> {
        let lab = self.lab;
        let hold = || std::thread::sleep(step.hold);
        let label = match &step.fault {
            Fault::Partition { groups } => {
                let gs: Vec<String> = groups.iter().map(|g| g.join(",")).collect();
                let mut args = vec!["partition"];
                args.extend(gs.iter().map(String::as_str));
                lab.run(&args)?;
                hold();
                lab.run(&["heal"])?;
                step.fault.label()
            }
            Fault::Isolate { node } => {
                let n = self.resolve(node);
                lab.run(&["isolate", &n])?;
                hold();
                lab.run(&["heal"])?;
                format!("isolate {n}")
            }
            Fault::Kill { node } => {
                let n = self.resolve(node);
                lab.run(&["kill", &n])?;
                hold();
                lab.run(&["restart", &n])?;
                format!("kill -9 {n}, restart")
            }
            Fault::Pause { node } => {
                let n = self.resolve(node);
                lab.run(&["pause", &n])?;
                hold();
                lab.run(&["resume", &n])?;
                // A paused holder is fenced (powered off) meanwhile: bring it back.
                let status = lab.status()?;
                let off = status["nodes"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|x| x["name"] == n.as_str() && x["powered"] == false);
                if off {
                    lab.run(&["restart", &n])?;
                }
                format!("pause {n}")
            }
            Fault::Flap { node, count } => {
                let n = self.resolve(node);
                lab.run(&["flap", &n, &count.to_string()])?;
                hold();
                format!("flap {n} x{count}")
            }
            Fault::Loss { node, percent } => {
                let n = self.resolve(node);
                lab.run(&["netem", &n, "loss", &format!("{percent}%")])?;
                hold();
                lab.run(&["netem", &n, "off"])?;
                format!("loss {n} {percent}%")
            }
            Fault::Standby { node } => {
                self.standby(node, true);
                hold();
                self.standby(node, false);
                format!("standby {node}")
            }
            Fault::FenceFails { node } => {
                let n = self.resolve(node);
                lab.run(&["bmc", &n, "fail"])?;
                lab.run(&["kill", &n])?;
                hold();
                lab.run(&["bmc", &n, "ok"])?;
                // The leader retries every 5 s; once the fence works the node is off.
                let fenced = lab.wait(&format!("{n} fenced"), Duration::from_secs(30), |s| {
                    s["nodes"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .any(|x| x["name"] == n.as_str() && x["powered"] == false)
                });
                if !fenced {
                    self.notes.push(format!(
                        "{n} was not fenced within 30 s after its BMC worked again"
                    ));
                }
                lab.run(&["restart", &n])?;
                format!("fence fails + kill -9 {n}")
            }
            Fault::Clock { node, permille } => {
                let n = self.resolve(node);
                let r = schedule::rate(*permille);
                lab.run(&["clock", &n, &r])?;
                hold();
                Fault::Clock {
                    node: Target::Node(n),
                    permille: *permille,
                }
                .label()
            }
        };
        Ok(label)
    }
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(violations) => {
            let found = !violations.is_empty();
            if args.expect_violations {
                if found {
                    println!(
                        "nemesis: found the expected violations (seed {})",
                        args.seed
                    );
                    std::process::ExitCode::SUCCESS
                } else {
                    eprintln!(
                        "nemesis: expected violations, found none (seed {})",
                        args.seed
                    );
                    std::process::ExitCode::from(1)
                }
            } else if found {
                eprintln!(
                    "nemesis: {} violation(s); replay with --seed {}",
                    violations.len(),
                    args.seed
                );
                std::process::ExitCode::from(1)
            } else {
                std::process::ExitCode::SUCCESS
            }
        }
        Err(e) => {
            eprintln!("nemesis: {e:#}");
            std::process::ExitCode::from(2)
        }
    }
}

fn run(args: &Args) -> anyhow::Result<Vec<Violation>> {
    let quorum = match args.mode.as_str() {
        "quorum" => true,
        "vrrp" => false,
        m => bail!("--mode {m}: quorum or vrrp"),
    };
    let fence = quorum && !args.no_fence;
    let voters = vec!["lb1".to_string(), "lb2".to_string()];
    let mut members = voters.clone();
    if quorum {
        members.push("arb".into());
    }
    let shape = Shape {
        voters: voters.clone(),
        members: members.clone(),
        fence,
        quorum,
        max_drift_permille: if quorum { args.max_drift_permille } else { 0 },
    };
    let plan = schedule::plan(args.seed, args.events, &shape);
    if args.dry_run {
        for (i, s) in plan.iter().enumerate() {
            println!(
                "[{:>3}] {} (hold {} ms, settle {} ms)",
                i + 1,
                s.fault.label(),
                s.hold.as_millis(),
                s.settle.as_millis()
            );
        }
        return Ok(Vec::new());
    }
    std::fs::create_dir_all(&args.out)?;
    let out = std::fs::canonicalize(&args.out)?;
    let lab = Lab {
        name: args.name.clone(),
        dir: out.join("lab"),
    };

    let mut up = vec!["up", "--nodes", "2", "--mode", &args.mode];
    if quorum {
        up.push("--arbiter");
    }
    if fence {
        up.push("--fence");
    }
    let _ = lab.run(&["down"]);
    lab.run(&up)?;
    let result = soak(args, &lab, &plan, &voters, &members, quorum, fence, &out);
    if !args.keep {
        if let Err(e) = lab.run(&["down"]) {
            eprintln!("nemesis: {e:#}");
        }
    }
    result
}

#[allow(clippy::too_many_arguments)]
fn soak(
    args: &Args,
    lab: &Lab,
    plan: &[Step],
    voters: &[String],
    members: &[String],
    quorum: bool,
    fence: bool,
    out: &Path,
) -> anyhow::Result<Vec<Violation>> {
    let watch_bin = std::env::current_exe()?
        .parent()
        .context("own directory")?
        .join("vip-watch");
    let ready = out.join("watch.ready");
    let _ = std::fs::remove_file(&ready);
    let mut watch = Command::new(&watch_bin);
    watch.args(["--vip", VIP, "--interval", "5ms", "--duration", "21600s"]);
    for m in members {
        watch.arg("--node").arg(format!("{m}={}", lab.ns(m)));
    }
    watch
        .args(["--client", &lab.ns("client"), "--client-if", "eth0"])
        .arg("--out")
        .arg(out.join("watch.json"))
        .arg("--ready")
        .arg(&ready)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(out.join("watch.log"))?);
    let mut watch = watch
        .spawn()
        .with_context(|| format!("starting {}", watch_bin.display()))?;
    let end = Instant::now() + Duration::from_secs(10);
    while !ready.exists() {
        if Instant::now() > end || watch.try_wait()?.is_some() {
            bail!(
                "vip-watch did not start (see {})",
                out.join("watch.log").display()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }

    let mut s = Soak {
        lab,
        voters: voters.to_vec(),
        acks: Vec::new(),
        windows: Vec::new(),
        notes: Vec::new(),
    };
    let started = unix_ms();
    let mut failed = None;
    for (i, step) in plan.iter().enumerate() {
        let start = unix_ms();
        match s.step(step).and_then(|label| {
            let back = s.recover(members)?;
            Ok(if back.is_empty() {
                label
            } else {
                format!("{label} (restarted {})", back.join(", "))
            })
        }) {
            Ok(label) => {
                println!("[{:>3}/{}] {label}", i + 1, plan.len());
                s.windows.push(Window {
                    label,
                    start_ms: start,
                    end_ms: unix_ms(),
                });
            }
            Err(e) => {
                failed = Some(e.context(format!("event {} ({})", i + 1, step.fault.label())));
                break;
            }
        }
        std::thread::sleep(step.settle);
    }
    let _ = lab.run(&["heal"]);
    lab.wait("one holder at the end", args.bound, |st| {
        st["holders"].as_array().is_some_and(|h| h.len() == 1)
    });
    std::thread::sleep(Duration::from_secs(2));
    // vip-watch writes its report when it gets SIGTERM.
    let _ = Command::new("kill")
        .args(["-TERM", &watch.id().to_string()])
        .status();
    let _ = wait_bounded(watch, Duration::from_secs(10));
    if let Some(e) = failed {
        return Err(e);
    }

    let watch: Value = serde_json::from_slice(&std::fs::read(out.join("watch.json"))?)
        .context("vip-watch's report")?;
    let history = if quorum {
        lab.run(&["tandem", "arb", "fence", "history", "--json"])
            .ok()
            .and_then(|h| serde_json::from_str::<Value>(&h).ok())
            .unwrap_or(Value::Null)
    } else {
        Value::Null
    };
    let mut stores = Vec::new();
    if quorum {
        for m in members {
            let _ = lab.run(&["stop", m]);
        }
        for m in members {
            let cfg = std::fs::read_to_string(lab.state().join(format!("{m}.toml")))?;
            let dir = cfg
                .lines()
                .find_map(|l| l.strip_prefix("state_dir = "))
                .map(|v| v.trim_matches('"').to_string())
                .context("state_dir in the lab's config")?;
            let tandem = std::env::var("TANDEM_BIN")
                .map(PathBuf::from)
                .unwrap_or_else(|_| repo().join("target/debug/tandem"));
            let o = Command::new(tandem)
                .args(["raft-log", "--state-dir", &dir])
                .output()?;
            if !o.status.success() {
                stores.push((m.clone(), Value::Null));
                s.notes.push(format!(
                    "{m}: the store does not open: {}",
                    String::from_utf8_lossy(&o.stderr)
                ));
                continue;
            }
            stores.push((m.clone(), serde_json::from_slice(&o.stdout)?));
        }
    }

    let mut violations = check::two_holders(&watch);
    let tl = check::timeline(&watch);
    let end = check::watch_end(&watch);
    let gaps = check::gaps(&tl, end);
    if quorum {
        violations.extend(check::late_failovers(
            &gaps,
            &s.windows,
            args.bound.as_secs_f64() * 1000.0,
        ));
        for m in voters {
            let log =
                std::fs::read_to_string(lab.state().join(format!("{m}.log"))).unwrap_or_default();
            violations.extend(check::masters_without_lease(m, &log));
        }
        let good: Vec<(String, Value)> = stores
            .iter()
            .filter(|(_, v)| !v.is_null())
            .cloned()
            .collect();
        violations.extend(check::lost_entries(&good, &s.acks));
        for (m, v) in &stores {
            if v.is_null() {
                violations.push(Violation {
                    invariant: "no committed entry lost",
                    at_ms: 0.0,
                    detail: format!("{m}'s store does not open after the run"),
                });
            }
        }
        violations.extend(check::fences_without_attempt(&history));
    }
    let durations: Vec<f64> = gaps.iter().map(|(a, b)| b - a).collect();
    let first_holder = tl
        .iter()
        .find(|(_, h)| !h.is_empty())
        .map_or(started, |(t, _)| *t);
    let report = report::Report {
        command: std::env::args().collect::<Vec<_>>().join(" "),
        seed: args.seed,
        mode: args.mode.clone(),
        fence,
        events: s.windows.clone(),
        violations: violations.clone(),
        availability: check::availability(&tl, first_holder, end),
        failover_ms: check::summary(&durations),
        failovers: durations.len(),
        samples: watch["samples"].as_u64().unwrap_or(0),
        duration_s: (end - started) / 1000.0,
        started_unix_ms: started,
        acked_writes: s.acks.len(),
        fences: history.as_array().map_or(0, Vec::len),
    };
    std::fs::write(out.join("report.json"), serde_json::to_vec_pretty(&report)?)?;
    let mut md = report::markdown(&report);
    if !s.notes.is_empty() {
        md.push_str("\n## Notes\n\n");
        for n in &s.notes {
            md.push_str(&format!("- {n}\n"));
        }
    }
    std::fs::write(out.join("report.md"), md)?;
    std::fs::write(
        out.join("timeline.svg"),
        report::svg(members, &tl, &s.windows, started, end),
    )?;
    println!(
        "nemesis: {} events, {} violations, availability {:.2} %, report in {}",
        s.windows.len(),
        violations.len(),
        report.availability * 100.0,
        out.join("report.md").display()
    );
    for v in &violations {
        println!("  violation: {}: {}", v.invariant, v.detail);
    }
    Ok(violations)
}

#[cfg(test)]
mod tests {
    #[test]
    fn acks_are_read_from_the_cli_output() {
        let a = super::parse_ack(
            "standby lb1",
            "lb1 is on standby (raft log index 22, term 2)\n",
        )
        .unwrap();
        assert_eq!((a.index, a.term), (22, 2));
        assert!(super::parse_ack("x", "refused").is_none());
    }
}
