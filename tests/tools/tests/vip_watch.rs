//! `vip-watch` against a real lab: a bridge namespace and three hosts (two nodes and a
//! client) on one L2 segment, built like scripts/lib/lab.sh does (veth pairs into a bridge
//! in its own namespace). Every name carries a per-run prefix, and a drop guard deletes the
//! namespaces also when the test fails. Needs root and `ip`; skipped otherwise.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::sleep;
use std::time::{Duration, Instant};

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_vip-watch");
const VIP4: &str = "192.0.2.100";
const VIP6: &str = "2001:db8::100";

static LABS: AtomicUsize = AtomicUsize::new(0);

fn can_run() -> bool {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        println!("skipping: not root");
        return false;
    }
    let ip = Command::new("ip")
        .arg("-V")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    if !matches!(ip, Ok(s) if s.success()) {
        println!("skipping: `ip` not found");
        return false;
    }
    true
}

fn run(cmd: &str, args: &[&str]) {
    let out = Command::new(cmd)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{cmd} {args:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd} {args:?}: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

fn ip(args: &[&str]) {
    run("ip", args);
}

/// The lab: namespaces `<prefix>br`, `<prefix>lb1`, `<prefix>lb2`, `<prefix>cl`, and a
/// scratch directory. Dropping it deletes them all.
struct Lab {
    prefix: String,
    namespaces: Vec<String>,
    dir: PathBuf,
}

impl Lab {
    fn new() -> Lab {
        let n = LABS.fetch_add(1, Ordering::SeqCst);
        let prefix = format!("vw{}x{n}-", std::process::id());
        let dir =
            std::env::temp_dir().join(format!("vip-watch-test.{}", prefix.trim_end_matches('-')));
        std::fs::create_dir_all(&dir).unwrap();
        let mut lab = Lab {
            prefix,
            namespaces: Vec::new(),
            dir,
        };
        let br = lab.add_ns("br");
        ip(&["-n", &br, "link", "set", "lo", "up"]);
        ip(&[
            "-n",
            &br,
            "link",
            "add",
            "br0",
            "type",
            "bridge",
            "mcast_snooping",
            "0",
        ]);
        ip(&["-n", &br, "link", "set", "br0", "up"]);
        lab.host("lb1", 1);
        lab.host("lb2", 2);
        lab.host("cl", 3);
        lab
    }

    fn ns(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    fn add_ns(&mut self, name: &str) -> String {
        let ns = self.ns(name);
        ip(&["netns", "add", &ns]);
        self.namespaces.push(ns.clone());
        ns
    }

    /// A host with eth0 = 192.0.2.IDX/24 and 2001:db8::IDX/64 plugged into br0. ARP
    /// settings are forced to the kernel defaults (a namespace inherits the host's IPv4
    /// settings), so that every node holding the VIP answers for it.
    fn host(&mut self, name: &str, idx: u8) {
        let ns = self.add_ns(name);
        run(
            "ip",
            &[
                "netns",
                "exec",
                &ns,
                "sysctl",
                "-qw",
                "net.ipv4.conf.all.arp_ignore=0",
                "net.ipv4.conf.default.arp_ignore=0",
                "net.ipv4.conf.all.arp_filter=0",
                "net.ipv4.conf.default.arp_filter=0",
                "net.ipv6.conf.all.accept_dad=0",
                "net.ipv6.conf.default.accept_dad=0",
            ],
        );
        ip(&["-n", &ns, "link", "set", "lo", "up"]);
        let br = self.ns("br");
        ip(&[
            "link", "add", "eth0", "netns", &ns, "type", "veth", "peer", "name", name, "netns", &br,
        ]);
        ip(&["-n", &br, "link", "set", name, "master", "br0", "up"]);
        ip(&[
            "-n",
            &ns,
            "addr",
            "add",
            &format!("192.0.2.{idx}/24"),
            "dev",
            "eth0",
        ]);
        ip(&[
            "-n",
            &ns,
            "addr",
            "add",
            &format!("2001:db8::{idx:x}/64"),
            "dev",
            "eth0",
            "nodad",
        ]);
        ip(&["-n", &ns, "link", "set", "eth0", "up"]);
    }

    fn addr(&self, host: &str, op: &str, cidr: &str) {
        let ns = self.ns(host);
        let mut args = vec!["-n", ns.as_str(), "addr", op, cidr, "dev", "eth0"];
        if op == "add" && cidr.contains(':') {
            args.push("nodad");
        }
        ip(&args);
    }

    fn mac(&self, host: &str) -> String {
        let out = Command::new("ip")
            .args(["-n", &self.ns(host), "-o", "link", "show", "eth0"])
            .output()
            .unwrap();
        let s = String::from_utf8_lossy(&out.stdout).into_owned();
        let i = s.find("link/ether ").expect("eth0 has a MAC") + "link/ether ".len();
        s[i..i + 17].to_string()
    }

    /// The watcher over both nodes, with the client's ARP check, writing `name`.json.
    fn watch(&self, name: &str, vip: &str, extra: &[&str]) -> Watch {
        let out = self.dir.join(format!("{name}.json"));
        let ready = self.dir.join(format!("{name}.ready"));
        let lb1 = format!("lb1={}", self.ns("lb1"));
        let lb2 = format!("lb2={}", self.ns("lb2"));
        let cl = self.ns("cl");
        let mut args: Vec<&str> = vec![
            "--vip",
            vip,
            "--node",
            &lb1,
            "--node",
            &lb2,
            "--client",
            &cl,
            "--client-if",
            "eth0",
            "--interval",
            "5ms",
            "--out",
        ];
        let out_s = out.to_str().unwrap().to_string();
        let ready_s = ready.to_str().unwrap().to_string();
        args.push(&out_s);
        args.push("--ready");
        args.push(&ready_s);
        args.extend_from_slice(extra);
        let child = Command::new(BIN)
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starting vip-watch");
        let w = Watch {
            child: Some(child),
            out,
        };
        let deadline = Instant::now() + Duration::from_secs(5);
        while !ready.exists() {
            assert!(Instant::now() < deadline, "vip-watch never became ready");
            sleep(Duration::from_millis(10));
        }
        w
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for ns in self.namespaces.iter().rev() {
            let _ = Command::new("ip")
                .args(["netns", "del", ns])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A running vip-watch; killed if the test fails before it exits.
struct Watch {
    child: Option<Child>,
    out: PathBuf,
}

struct Finished {
    status: ExitStatus,
    stdout: String,
    stderr: String,
    report: Value,
}

impl Watch {
    fn terminate(&mut self) {
        let pid = self.child.as_ref().unwrap().id() as libc::pid_t;
        // SAFETY: plain kill(2) of our own child, which has not been reaped yet.
        unsafe { libc::kill(pid, libc::SIGTERM) };
    }

    /// Wait (at most `limit`) for the watcher to exit, and read its output and report.
    fn finish(mut self, limit: Duration) -> Finished {
        let mut child = self.child.take().unwrap();
        let deadline = Instant::now() + limit;
        loop {
            if child.try_wait().unwrap().is_some() {
                break;
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("vip-watch did not exit within {limit:?}");
            }
            sleep(Duration::from_millis(10));
        }
        let out = child.wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        let report = read_report(&self.out)
            .unwrap_or_else(|e| panic!("report {}: {e}\nstderr: {stderr}", self.out.display()));
        Finished {
            status: out.status,
            stdout,
            stderr,
            report,
        }
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn read_report(p: &Path) -> Result<Value, String> {
    let text = std::fs::read_to_string(p).map_err(|e| e.to_string())?;
    serde_json::from_str(&text).map_err(|e| e.to_string())
}

fn holders(v: &Value) -> Vec<String> {
    v["holders"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h.as_str().unwrap().to_string())
        .collect()
}

fn timeline(report: &Value, key: &str) -> Vec<Vec<String>> {
    report[key]
        .as_array()
        .unwrap()
        .iter()
        .map(holders)
        .collect()
}

fn num(report: &Value, key: &str) -> f64 {
    report[key]
        .as_f64()
        .unwrap_or_else(|| panic!("{key} missing in {report:#}"))
}

#[test]
fn vip_watch_in_a_lab() {
    if !can_run() {
        return;
    }
    let lab = Lab::new();
    let vip32 = format!("{VIP4}/32");
    let (mac1, mac2) = (lab.mac("lb1"), lab.mac("lb2"));

    // (a) One holder at a time: lb1, then a clean handover to lb2 with a ~200 ms gap.
    lab.addr("lb1", "add", &vip32);
    let w = lab.watch("single", VIP4, &["--duration", "2s"]);
    sleep(Duration::from_millis(800));
    lab.addr("lb1", "del", &vip32);
    sleep(Duration::from_millis(200));
    lab.addr("lb2", "add", &vip32);
    let f = w.finish(Duration::from_secs(10));
    let r = &f.report;
    println!("(a) {}", f.stdout.trim());
    assert_eq!(
        f.status.code(),
        Some(0),
        "stderr: {}\nreport: {r:#}",
        f.stderr
    );
    assert!(f.stdout.starts_with("vip-watch: samples="), "{}", f.stdout);
    assert!(
        f.stdout.contains(" violations=0 max_holders=1 changes=3"),
        "{}",
        f.stdout
    );
    assert_eq!(r["stopped_by"], "duration");
    assert!(num(r, "samples") >= 100.0, "{r:#}");
    assert!(num(r, "arp_requests") >= 100.0, "{r:#}");
    assert!(num(r, "arp_replies") >= 50.0, "{r:#}");
    assert_eq!(num(r, "violations_total"), 0.0);
    assert!(r["violations"].as_array().unwrap().is_empty());
    assert_eq!(num(r, "max_holders"), 1.0);
    assert_eq!(num(r, "sample_errors"), 0.0);
    assert_eq!(
        timeline(r, "holder_changes"),
        vec![vec!["lb1".to_string()], vec![], vec!["lb2".to_string()]]
    );
    let gap = num(r, "gaps");
    assert!((150.0..1000.0).contains(&gap), "gap {gap} ms");
    assert_eq!(num(r, "gap_count"), 1.0);
    // The client saw lb1 answer, then lb2 (named through their MACs).
    let arp = timeline(r, "arp_changes");
    assert_eq!(arp.first(), Some(&vec!["lb1".to_string()]), "{r:#}");
    assert_eq!(arp.last(), Some(&vec!["lb2".to_string()]), "{r:#}");
    assert_eq!(r["macs"][&mac1], serde_json::json!(["lb1"]));
    assert_eq!(r["macs"][&mac2], serde_json::json!(["lb2"]));
    assert_eq!(r["client"]["ip"], "192.0.2.3");

    // (b) Split brain: the VIP on both nodes for ~300 ms; stopped by SIGTERM.
    let mut w = lab.watch("split", VIP4, &[]);
    sleep(Duration::from_millis(300));
    lab.addr("lb1", "add", &vip32);
    sleep(Duration::from_millis(300));
    lab.addr("lb1", "del", &vip32);
    sleep(Duration::from_millis(300));
    w.terminate();
    let f = w.finish(Duration::from_secs(5));
    let r = &f.report;
    println!("(b) {}", f.stdout.trim());
    assert_eq!(
        f.status.code(),
        Some(1),
        "stderr: {}\nreport: {r:#}",
        f.stderr
    );
    assert_eq!(r["stopped_by"], "signal");
    assert_eq!(num(r, "max_holders"), 2.0);
    let both = vec!["lb1".to_string(), "lb2".to_string()];
    let v = r["violations"].as_array().unwrap();
    let addr: Vec<&Value> = v.iter().filter(|v| v["kind"] == "addr").collect();
    let arpv: Vec<&Value> = v.iter().filter(|v| v["kind"] == "arp").collect();
    assert!(addr.len() >= 20, "addr violations: {}", addr.len());
    assert!(arpv.len() >= 20, "arp violations: {}", arpv.len());
    assert!(addr.iter().all(|v| holders(v) == both), "{r:#}");
    assert!(arpv.iter().all(|v| holders(v) == both), "{r:#}");
    let mut macs = vec![mac1.clone(), mac2.clone()];
    macs.sort();
    assert_eq!(arpv[0]["macs"], serde_json::json!(macs));
    assert!(
        f.stdout.contains(&format!(" violations={} ", v.len())),
        "{}",
        f.stdout
    );
    assert_eq!(
        timeline(r, "holder_changes"),
        vec![
            vec!["lb2".to_string()],
            both.clone(),
            vec!["lb2".to_string()]
        ]
    );
    // Every violation lies within the overlap (≈ 300..600 ms into the run).
    let first = num(&v[0], "t_ms");
    let last = num(&v[v.len() - 1], "t_ms");
    assert!(
        last - first < 500.0,
        "violations spread over {first}..{last} ms"
    );

    // (c) An IPv6 VIP on both nodes: addresses only (no ARP), still a violation.
    lab.addr("lb1", "add", &format!("{VIP6}/128"));
    lab.addr("lb2", "add", &format!("{VIP6}/128"));
    let w = lab.watch("v6", VIP6, &["--duration", "500ms"]);
    let f = w.finish(Duration::from_secs(5));
    let r = &f.report;
    println!("(c) {}", f.stdout.trim());
    assert_eq!(
        f.status.code(),
        Some(1),
        "stderr: {}\nreport: {r:#}",
        f.stderr
    );
    assert_eq!(num(r, "arp_requests"), 0.0);
    assert!(r["client"].is_null());
    let v = r["violations"].as_array().unwrap();
    assert!(!v.is_empty());
    assert!(v.iter().all(|v| v["kind"] == "addr" && holders(v) == both));
}

#[test]
fn setup_error_exits_2() {
    let dir = std::env::temp_dir().join(format!("vip-watch-test.{}.err", std::process::id()));
    let out = dir.join("r.json");
    let ns = format!("vw{}-no-such-namespace", std::process::id());
    let node = format!("lb1={ns}");
    let o = Command::new(BIN)
        .args(["--vip", VIP4, "--node", &node, "--duration", "1s", "--out"])
        .arg(&out)
        .output()
        .expect("running vip-watch");
    assert_eq!(o.status.code(), Some(2), "{o:?}");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains(&ns), "{err}");
    assert!(!out.exists());

    // A duration beyond the limit is refused before anything starts.
    let o = Command::new(BIN)
        .args([
            "--vip",
            VIP4,
            "--node",
            &node,
            "--duration",
            "700s",
            "--out",
        ])
        .arg(&out)
        .output()
        .expect("running vip-watch");
    assert_eq!(o.status.code(), Some(2), "{o:?}");
}
