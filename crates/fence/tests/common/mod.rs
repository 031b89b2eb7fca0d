//! Test harness: the project's fence-device simulators (tests/fixtures/sims) on 127.0.0.1,
//! ports chosen per run, every simulator stopped by a Drop guard (also when a test fails),
//! and a log capture to search for secrets.
#![allow(dead_code)]

use std::io::Write as _;
use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/sims")
}

/// Full path of a program from PATH (or /usr/sbin, /usr/bin, /sbin where Debian puts them).
pub fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/usr/bin", "/sbin"].map(PathBuf::from))
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// True when every program exists. Otherwise prints SKIP and returns false, unless
/// TANDEM_REQUIRE_SIMS=1 (then the test fails: scripts/test installs the packages).
pub fn have(test: &str, programs: &[&str]) -> bool {
    let missing: Vec<&str> = programs
        .iter()
        .copied()
        .filter(|p| find_program(p).is_none())
        .collect();
    if missing.is_empty() {
        return true;
    }
    if std::env::var("TANDEM_REQUIRE_SIMS").as_deref() == Ok("1") {
        panic!("{test}: missing {missing:?} (TANDEM_REQUIRE_SIMS=1)");
    }
    eprintln!("SKIP {test}: missing {}", missing.join(", "));
    false
}

pub const SIM_TOOLS: &[&str] = &[
    "ipmi_sim", "ipmitool", "snmpd", "snmpget", "snmpset", "snmpwalk", "python3", "setsid",
];

/// A UDP port on 127.0.0.1 that was free a moment ago (> 1024: from the ephemeral range).
pub fn free_udp_port() -> u16 {
    let s = UdpSocket::bind("127.0.0.1:0").expect("bind a UDP port");
    let port = s.local_addr().unwrap().port();
    assert!(port > 1024);
    port
}

static SEQ: AtomicU32 = AtomicU32::new(0);

/// A fresh directory, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let n = SEQ.fetch_add(1, Ordering::Relaxed);
        let p = std::env::temp_dir().join(format!("tandem-fence-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn run_script(script: &Path, args: &[&str], env: &[(&str, &str)]) -> Result<String, String> {
    let out = Command::new(script)
        .args(args)
        .envs(env.iter().copied())
        .output()
        .map_err(|e| format!("{}: {e}", script.display()))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "{} failed: {}",
            script.display(),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// A simulated BMC (ipmi_sim, file power model). Stopped on drop.
pub struct Bmc {
    pub port: u16,
    pub dir: PathBuf,
    _tmp: TempDir,
}

impl Bmc {
    pub fn start(user: &str, pass: &str) -> Bmc {
        let tmp = TempDir::new("bmc");
        let dir = tmp.0.join("state");
        // a free port can be taken between our probe and ipmi_sim's bind: try a few
        for _ in 0..3 {
            let port = free_udp_port();
            let r = run_script(
                &fixtures().join("ipmi/start-bmc.sh"),
                &[&port.to_string(), dir.to_str().unwrap()],
                &[("BMC_USER", user), ("BMC_PASS", pass)],
            );
            match r {
                Ok(_) => {
                    return Bmc {
                        port,
                        dir,
                        _tmp: tmp,
                    }
                }
                Err(e) => eprintln!("start-bmc on {port}: {e}"),
            }
        }
        panic!("ipmi_sim did not start");
    }

    pub fn power(&self) -> String {
        read_trim(&self.dir.join("power"))
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("power.log")).unwrap_or_default()
    }

    pub fn flag(&self, name: &str, content: &str) {
        std::fs::write(self.dir.join(name), content).unwrap();
    }
}

impl Drop for Bmc {
    fn drop(&mut self) {
        let _ = run_script(
            &fixtures().join("ipmi/stop-bmc.sh"),
            &[self.dir.to_str().unwrap()],
            &[],
        );
    }
}

/// Credentials of an SNMP simulator.
#[derive(Clone)]
pub struct SnmpCreds {
    pub rw: String,
    pub ro: String,
    pub v3_user: String,
    pub v3_auth: String,
    pub v3_priv: String,
}

/// A simulated SNMP device (snmpd + snmp-device.py). Stopped on drop.
pub struct SnmpSim {
    pub port: u16,
    pub dir: PathBuf,
    kind: &'static str,
    _tmp: TempDir,
}

impl SnmpSim {
    pub fn start(model: &str, names: &str, creds: &SnmpCreds, extra: &[&str]) -> SnmpSim {
        let tmp = TempDir::new(model);
        let dir = tmp.0.join("state");
        for _ in 0..3 {
            let port = free_udp_port();
            let mut args = vec![model, "", dir.to_str().unwrap(), names];
            let p = port.to_string();
            args[1] = &p;
            args.extend_from_slice(extra);
            let r = run_script(
                &fixtures().join("snmp/start-snmp.sh"),
                &args,
                &[
                    ("SNMP_RW_COMMUNITY", &creds.rw),
                    ("SNMP_RO_COMMUNITY", &creds.ro),
                    ("SNMP_V3_USER", &creds.v3_user),
                    ("SNMP_V3_AUTH", &creds.v3_auth),
                    ("SNMP_V3_PRIV", &creds.v3_priv),
                ],
            );
            match r {
                Ok(_) => {
                    return SnmpSim {
                        port,
                        dir,
                        kind: if model == "apc-pdu" { "outlet" } else { "port" },
                        _tmp: tmp,
                    }
                }
                Err(e) => eprintln!("start-snmp on {port}: {e}"),
            }
        }
        panic!("snmpd did not start");
    }

    /// outlet.N ("on"/"off") or port.N ("up"/"down").
    pub fn state(&self, n: u32) -> String {
        read_trim(&self.dir.join(format!("{}.{n}", self.kind)))
    }

    pub fn events(&self) -> String {
        std::fs::read_to_string(self.dir.join("events.log")).unwrap_or_default()
    }

    pub fn flag(&self, name: &str, content: &str) {
        std::fs::write(self.dir.join(name), content).unwrap();
    }
}

impl Drop for SnmpSim {
    fn drop(&mut self) {
        let _ = run_script(
            &fixtures().join("snmp/stop-snmp.sh"),
            &[self.dir.to_str().unwrap()],
            &[],
        );
    }
}

fn read_trim(p: &Path) -> String {
    std::fs::read_to_string(p)
        .unwrap_or_default()
        .trim()
        .to_string()
}

/// Polls `f` until it returns true or `limit` passes.
pub fn wait_until(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + limit;
    loop {
        if f() {
            return true;
        }
        if Instant::now() > end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A single-threaded runtime: the log capture below is per thread.
pub fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[derive(Clone, Default)]
pub struct LogBuf(pub Arc<Mutex<Vec<u8>>>);

impl std::io::Write for LogBuf {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl LogBuf {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

/// Captures every tracing event of this thread (all levels) until the guard drops.
pub fn capture_logs() -> (LogBuf, tracing::subscriber::DefaultGuard) {
    let buf = LogBuf::default();
    let w = buf.clone();
    let sub = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || w.clone())
        .finish();
    let guard = tracing::subscriber::set_default(sub);
    (buf, guard)
}

/// Writes a small executable script.
pub fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
    let p = dir.join(name);
    let mut f = std::fs::File::create(&p).unwrap();
    f.write_all(body.as_bytes()).unwrap();
    drop(f);
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    p
}
