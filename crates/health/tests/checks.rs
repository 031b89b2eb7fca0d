//! Probes and the runner against real servers and processes on this machine only
//! (127.0.0.1 listeners written here, `/bin/sh` scripts). Every test is bounded in time.

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU16, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tandem_health::{
    CheckKind, CheckSpec, HealthEvent, HealthRunner, HttpCheck, Probe, ScriptCheck, SpecError,
    Status, TcpCheck, Transition,
};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

const BOUND: Duration = Duration::from_secs(30);

/// Runs a test body with a hard time bound.
async fn bounded<F: Future<Output = ()>>(f: F) {
    tokio::time::timeout(BOUND, f)
        .await
        .expect("test exceeded its time bound");
}

// ---------------------------------------------------------------------------------------
// A tiny HTTP/1.1 server (plain or TLS), routes by path.

struct HttpServer {
    addr: SocketAddr,
    /// Status served on /dyn.
    dyn_status: Arc<AtomicU16>,
    task: JoinHandle<()>,
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn http_server(tls: Option<TlsAcceptor>) -> HttpServer {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let dyn_status = Arc::new(AtomicU16::new(200));
    let status = dyn_status.clone();
    let task = tokio::spawn(async move {
        let mut conns = tokio::task::JoinSet::new();
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let status = status.clone();
            let tls = tls.clone();
            conns.spawn(async move {
                match tls {
                    None => serve(stream, status).await,
                    Some(acceptor) => {
                        // A client refusing our certificate aborts the handshake: fine.
                        if let Ok(stream) = acceptor.accept(stream).await {
                            serve(stream, status).await;
                        }
                    }
                }
            });
        }
    });
    HttpServer {
        addr,
        dyn_status,
        task,
    }
}

async fn serve<S: AsyncRead + AsyncWrite + Unpin>(mut s: S, dyn_status: Arc<AtomicU16>) {
    let mut req = Vec::new();
    let mut buf = [0u8; 1024];
    while !req.windows(4).any(|w| w == b"\r\n\r\n") {
        match s.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => req.extend_from_slice(&buf[..n]),
        }
        if req.len() > 16 * 1024 {
            return;
        }
    }
    let head = String::from_utf8_lossy(&req).to_string();
    let path = head.split_whitespace().nth(1).unwrap_or("/").to_string();
    assert!(
        head.to_ascii_lowercase().contains("\r\nhost: 127.0.0.1:"),
        "{head}"
    );
    let (status, body): (u16, Vec<u8>) = match path.as_str() {
        "/ok" => (200, b"all good here".to_vec()),
        "/fail" => (500, b"broken".to_vec()),
        "/dyn" => (dyn_status.load(Ordering::SeqCst), b"dynamic".to_vec()),
        "/hang" => {
            // Never answers (the test's probe timeout ends it; the server is aborted later).
            tokio::time::sleep(Duration::from_secs(3600)).await;
            return;
        }
        "/chunked" => {
            let resp =
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n\
                         4\r\nall \r\n9\r\ngood here\r\n0\r\n\r\n";
            let _ = s.write_all(resp).await;
            let _ = s.shutdown().await;
            return;
        }
        "/big" => {
            // The substring only after the first 64 KiB: never looked at.
            let mut body = vec![b'a'; 100 * 1024];
            body.extend_from_slice(b"needle");
            (200, body)
        }
        _ => (404, b"no such page".to_vec()),
    };
    let head = format!(
        "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let _ = s.write_all(head.as_bytes()).await;
    let _ = s.write_all(&body).await;
    let _ = s.shutdown().await;
}

/// A self-signed certificate for 127.0.0.1 and localhost, and its PEM.
fn self_signed() -> (TlsAcceptor, String) {
    let ck =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".into(), "localhost".into()]).unwrap();
    let cert = CertificateDer::from(ck.cert.der().to_vec());
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(ck.key_pair.serialize_der()));
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(vec![cert], key)
    .unwrap();
    (TlsAcceptor::from(Arc::new(config)), ck.cert.pem())
}

// ---------------------------------------------------------------------------------------
// Helpers.

fn spec(name: &str, kind: CheckKind) -> CheckSpec {
    CheckSpec {
        name: name.to_string(),
        kind,
        interval: Duration::from_millis(50),
        timeout: Duration::from_secs(2),
        rise: 1,
        fall: 1,
    }
}

fn tcp(addr: SocketAddr) -> CheckKind {
    CheckKind::Tcp(TcpCheck {
        host: addr.ip().to_string(),
        port: addr.port(),
    })
}

fn http(url: String) -> HttpCheck {
    HttpCheck::new(url)
}

fn sh(script: &str) -> CheckKind {
    CheckKind::Script(ScriptCheck {
        program: "/bin/sh".into(),
        args: vec!["-c".into(), script.into()],
    })
}

async fn probe(spec: &CheckSpec) -> tandem_health::Outcome {
    Probe::new(spec).unwrap().run(spec.timeout).await
}

async fn next_event(rx: &mut mpsc::Receiver<HealthEvent>) -> HealthEvent {
    tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .expect("no health event within 10 s")
        .expect("event channel closed")
}

fn tr(from: Status, to: Status) -> Transition {
    Transition { from, to }
}

/// A fresh scratch directory for one test.
fn scratch(tag: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "tandem-health-{}-{}-{tag}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// (pid, state) of every process whose process group is `pgid`, from /proc.
fn group_members(pgid: i32) -> Vec<(i32, char)> {
    let mut members = Vec::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return members;
    };
    for entry in dir.flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // "pid (comm) state ppid pgrp ...": comm may hold spaces, so split after the last ')'.
        let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
            continue;
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let (Some(state), Some(pgrp)) = (fields.first(), fields.get(2)) else {
            continue;
        };
        if pgrp.parse::<i32>() == Ok(pgid) {
            members.push((pid, state.chars().next().unwrap_or('?')));
        }
    }
    members
}

/// Members of the group that still run (zombies are dead, only not yet reaped by whoever
/// inherited them).
fn live_members(pgid: i32) -> Vec<(i32, char)> {
    group_members(pgid)
        .into_iter()
        .filter(|&(_, s)| s != 'Z' && s != 'X')
        .collect()
}

async fn wait_for_pid_file(path: &Path) -> i32 {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(text) = std::fs::read_to_string(path) {
            if let Ok(pid) = text.trim().parse() {
                return pid;
            }
        }
        assert!(
            Instant::now() < deadline,
            "script never wrote {}",
            path.display()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Waits (bounded) until nothing of the group runs and its leader is reaped.
async fn assert_group_gone(pgid: i32) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let live = live_members(pgid);
        let leader_exists = Path::new(&format!("/proc/{pgid}")).exists();
        if live.is_empty() && !leader_exists {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "process group {pgid} survived: live {live:?}, leader present {leader_exists}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

// ---------------------------------------------------------------------------------------
// TCP.

#[tokio::test]
async fn tcp_probe_up_then_closed() {
    bounded(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let s = spec("tcp", tcp(addr));
        let o = probe(&s).await;
        assert!(o.ok, "{o:?}");
        assert_eq!(o.message, format!("connected to {addr}"));
        drop(listener);
        let o = probe(&s).await;
        assert!(!o.ok);
        assert!(
            o.message.starts_with(&format!("connect to {addr}: ")),
            "{}",
            o.message
        );
    })
    .await;
}

#[tokio::test]
async fn runner_tcp_goes_up_then_down_when_the_listener_closes() {
    bounded(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (handle, mut rx) = HealthRunner::spawn(vec![spec("tcp", tcp(addr))]).unwrap();

        let ev = next_event(&mut rx).await;
        assert_eq!((ev.check.as_str(), ev.index), ("tcp", 0));
        assert_eq!(ev.transition, tr(Status::Unknown, Status::Up));
        assert!(ev.outcome.ok);
        assert_eq!(handle.status("tcp"), Some(Status::Up));

        drop(listener);
        let ev = next_event(&mut rx).await;
        assert_eq!(ev.transition, tr(Status::Up, Status::Down));
        assert!(!ev.outcome.ok);

        let snap = handle.get("tcp").unwrap();
        assert_eq!(snap.status, Status::Down);
        assert_eq!(snap.kind, "tcp");
        assert_eq!(snap.target, addr.to_string());
        assert_eq!(snap.last_ok, Some(false));
        assert!(
            snap.last_message.as_deref().unwrap().contains("connect to"),
            "{snap:?}"
        );
        assert!(snap.total_ok >= 1 && snap.total_fail >= 1);
        assert_eq!(
            (snap.rise, snap.fall, snap.interval_ms, snap.timeout_ms),
            (1, 1, 50, 2000)
        );
        assert!(snap.last_latency_ms.is_some());
        assert!(handle.get("nope").is_none());

        // The status report is serde-serializable and reads back the same.
        let all = handle.snapshot();
        let json = serde_json::to_string(&all).unwrap();
        assert!(json.contains("\"status\":\"down\""), "{json}");
        let back: Vec<tandem_health::CheckStatus> = serde_json::from_str(&json).unwrap();
        assert_eq!(back[0].name, "tcp");
        assert_eq!(back[0].status, Status::Down);
        handle.shutdown().await;
    })
    .await;
}

// ---------------------------------------------------------------------------------------
// HTTP.

#[tokio::test]
async fn http_probe_statuses_and_bodies() {
    bounded(async {
        let srv = http_server(None).await;
        let url = |p: &str| format!("http://{}{p}", srv.addr);

        let o = probe(&spec("h", CheckKind::Http(http(url("/ok"))))).await;
        assert!(o.ok, "{o:?}");
        assert_eq!(o.message, "HTTP 200");

        let o = probe(&spec("h", CheckKind::Http(http(url("/fail"))))).await;
        assert!(!o.ok);
        assert_eq!(o.message, "HTTP status 500, expected 200");

        let mut c = http(url("/fail"));
        c.expect_status = 500;
        assert!(probe(&spec("h", CheckKind::Http(c))).await.ok);

        let o = probe(&spec("h", CheckKind::Http(http(url("/missing"))))).await;
        assert_eq!(o.message, "HTTP status 404, expected 200");

        let mut c = http(url("/ok"));
        c.expect_body = Some("good".into());
        let o = probe(&spec("h", CheckKind::Http(c))).await;
        assert!(o.ok, "{o:?}");
        assert_eq!(o.message, "HTTP 200, body contains \"good\"");

        let mut c = http(url("/ok"));
        c.expect_body = Some("nope".into());
        let o = probe(&spec("h", CheckKind::Http(c))).await;
        assert!(!o.ok);
        assert_eq!(
            o.message,
            "HTTP 200: body does not contain \"nope\" (read 13 bytes)"
        );

        // Chunked body, the substring spanning two chunks.
        let mut c = http(url("/chunked"));
        c.expect_body = Some("all good".into());
        let o = probe(&spec("h", CheckKind::Http(c))).await;
        assert!(o.ok, "{o:?}");

        // Only the first 64 KiB of a body are searched.
        let mut c = http(url("/big"));
        c.expect_body = Some("needle".into());
        let o = probe(&spec("h", CheckKind::Http(c))).await;
        assert!(!o.ok);
        assert!(o.message.contains("(read 65536 bytes)"), "{}", o.message);
    })
    .await;
}

#[tokio::test]
async fn http_probe_that_never_answers_times_out() {
    bounded(async {
        let srv = http_server(None).await;
        let mut s = spec(
            "h",
            CheckKind::Http(http(format!("http://{}/hang", srv.addr))),
        );
        s.timeout = Duration::from_millis(300);
        let started = Instant::now();
        let o = probe(&s).await;
        assert!(!o.ok);
        assert_eq!(o.message, "timed out after 300ms");
        assert!(o.latency >= Duration::from_millis(300));
        assert!(started.elapsed() < Duration::from_secs(3));
    })
    .await;
}

#[tokio::test]
async fn http_probe_connection_refused() {
    bounded(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let o = probe(&spec("h", CheckKind::Http(http(format!("http://{addr}/"))))).await;
        assert!(!o.ok);
        assert!(
            o.message.starts_with(&format!("connect to {addr}: ")),
            "{}",
            o.message
        );
    })
    .await;
}

#[tokio::test]
async fn runner_http_follows_rise_and_fall() {
    bounded(async {
        let srv = http_server(None).await;
        let mut s = spec(
            "web",
            CheckKind::Http(http(format!("http://{}/dyn", srv.addr))),
        );
        s.rise = 2;
        s.fall = 2;
        let (handle, mut rx) = HealthRunner::spawn(vec![s]).unwrap();

        let ev = next_event(&mut rx).await;
        assert_eq!(ev.transition, tr(Status::Unknown, Status::Up));
        let snap = handle.get("web").unwrap();
        assert!(snap.consecutive_ok >= 2 && snap.total_ok >= 2, "{snap:?}");
        assert_eq!(snap.total_fail, 0);

        srv.dyn_status.store(503, Ordering::SeqCst);
        let ev = next_event(&mut rx).await;
        assert_eq!(ev.transition, tr(Status::Up, Status::Down));
        assert_eq!(ev.outcome.message, "HTTP status 503, expected 200");
        let snap = handle.get("web").unwrap();
        assert!(
            snap.consecutive_fail >= 2 && snap.total_fail >= 2,
            "{snap:?}"
        );
        assert_eq!(snap.consecutive_ok, 0);

        srv.dyn_status.store(200, Ordering::SeqCst);
        let ev = next_event(&mut rx).await;
        assert_eq!(ev.transition, tr(Status::Down, Status::Up));
        handle.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn runner_hung_http_counts_as_failed_at_its_timeout() {
    bounded(async {
        let srv = http_server(None).await;
        let mut s = spec(
            "hang",
            CheckKind::Http(http(format!("http://{}/hang", srv.addr))),
        );
        s.timeout = Duration::from_millis(200);
        s.interval = Duration::from_millis(100);
        let started = Instant::now();
        let (handle, mut rx) = HealthRunner::spawn(vec![s]).unwrap();
        let ev = next_event(&mut rx).await;
        assert_eq!(ev.transition, tr(Status::Unknown, Status::Down));
        assert_eq!(ev.outcome.message, "timed out after 200ms");
        assert!(started.elapsed() < Duration::from_secs(3));
        handle.shutdown().await;
    })
    .await;
}

// ---------------------------------------------------------------------------------------
// HTTPS.

#[tokio::test]
async fn https_self_signed_with_and_without_verification() {
    bounded(async {
        let (acceptor, pem) = self_signed();
        let srv = http_server(Some(acceptor)).await;
        let url = format!("https://{}/ok", srv.addr);

        // tls_verify = false: accepted.
        let mut c = http(url.clone());
        c.tls_verify = false;
        c.expect_body = Some("good".into());
        let o = probe(&spec("tls", CheckKind::Http(c))).await;
        assert!(o.ok, "{o:?}");

        // Verification against the system store: refused.
        let o = probe(&spec("tls", CheckKind::Http(http(url.clone())))).await;
        assert!(!o.ok);
        assert!(
            o.message.starts_with("TLS handshake with 127.0.0.1: "),
            "{}",
            o.message
        );
        assert!(o.message.contains("certificate"), "{}", o.message);

        // Verification against the certificate itself as CA file: accepted.
        let dir = scratch("tls");
        let ca = dir.join("ca.pem");
        std::fs::write(&ca, pem).unwrap();
        let mut c = http(url.clone());
        c.ca_file = Some(ca);
        let o = probe(&spec("tls", CheckKind::Http(c))).await;
        assert!(o.ok, "{o:?}");

        // Plain HTTP to the TLS port fails without hanging.
        let mut s = spec(
            "plain",
            CheckKind::Http(http(format!("http://{}/ok", srv.addr))),
        );
        s.timeout = Duration::from_secs(5);
        assert!(!probe(&s).await.ok);
        let _ = std::fs::remove_dir_all(dir);
    })
    .await;
}

// ---------------------------------------------------------------------------------------
// Scripts.

#[tokio::test]
async fn script_success_and_failure() {
    bounded(async {
        let o = probe(&spec("s", sh("echo fine"))).await;
        assert!(o.ok, "{o:?}");
        assert_eq!(o.message, "exit 0: fine");

        let o = probe(&spec("s", sh("true"))).await;
        assert_eq!(o.message, "exit 0");

        let o = probe(&spec("s", sh("echo failing; echo oops >&2; exit 3"))).await;
        assert!(!o.ok);
        assert_eq!(o.message, "exit 3: failing | oops");

        let o = probe(&spec("s", sh("kill -9 $$"))).await;
        assert!(!o.ok);
        assert_eq!(o.message, "killed by signal 9");

        // Output is truncated for the status line, however much the script writes.
        let o = probe(&spec(
            "s",
            sh("head -c 100000 /dev/zero | tr '\\0' x; exit 1"),
        ))
        .await;
        assert!(!o.ok);
        assert!(
            o.message.len() < 300 && o.message.starts_with("exit 1: xxx"),
            "{}",
            o.message
        );

        let missing = CheckKind::Script(ScriptCheck {
            program: "/nonexistent/check-script".into(),
            args: vec![],
        });
        let o = probe(&spec("s", missing)).await;
        assert!(!o.ok);
        assert!(
            o.message.starts_with("running /nonexistent/check-script: "),
            "{}",
            o.message
        );
    })
    .await;
}

#[tokio::test]
async fn hung_script_has_its_whole_process_group_killed_at_the_timeout() {
    bounded(async {
        let dir = scratch("hang");
        let pidfile = dir.join("pid");
        // The shell starts a background sleep, then waits on a foreground one.
        let script = format!(
            "echo $$ > {}; sleep 1000 & sleep 1000; echo never",
            pidfile.display()
        );
        let mut s = spec("hang", sh(&script));
        s.timeout = Duration::from_millis(1500);
        let probe = Probe::new(&s).unwrap();
        let run = tokio::spawn(async move { probe.run(Duration::from_millis(1500)).await });

        let pgid = wait_for_pid_file(&pidfile).await;
        // Before the timeout: the shell and its sleeps share the group.
        let deadline = Instant::now() + Duration::from_secs(1);
        while live_members(pgid).len() < 3 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(
            live_members(pgid).len() >= 2,
            "group {pgid}: {:?}",
            group_members(pgid)
        );

        let o = run.await.unwrap();
        assert!(!o.ok);
        assert_eq!(o.message, "timed out after 1.5s");
        assert_group_gone(pgid).await;
        let _ = std::fs::remove_dir_all(dir);
    })
    .await;
}

#[tokio::test]
async fn script_leaving_a_background_child_has_it_killed() {
    bounded(async {
        let dir = scratch("bg");
        let pidfile = dir.join("pid");
        // Exits 0 at once but leaves a sleep behind, holding stdout open.
        let script = format!("sleep 1000 & echo $$ > {}; echo done", pidfile.display());
        let s = spec("bg", sh(&script));
        let started = Instant::now();
        let o = probe(&s).await;
        assert!(o.ok, "{o:?}");
        assert_eq!(o.message, "exit 0: done");
        // Not held up until the timeout by the leftover's open pipe.
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "{:?}",
            started.elapsed()
        );
        let pgid = wait_for_pid_file(&pidfile).await;
        assert_group_gone(pgid).await;
        let _ = std::fs::remove_dir_all(dir);
    })
    .await;
}

#[tokio::test]
async fn runner_stop_kills_a_running_script_group() {
    bounded(async {
        let dir = scratch("stop");
        let pidfile = dir.join("pid");
        let script = format!("echo $$ > {}; sleep 1000 & sleep 1000", pidfile.display());
        let mut s = spec("long", sh(&script));
        s.timeout = Duration::from_secs(600);
        let (handle, _rx) = HealthRunner::spawn(vec![s]).unwrap();
        let pgid = wait_for_pid_file(&pidfile).await;
        let snap = handle.get("long").unwrap();
        assert!(snap.running, "{snap:?}");
        assert_eq!(snap.status, Status::Unknown);
        assert_eq!(snap.last_ok, None);
        handle.shutdown().await;
        assert_group_gone(pgid).await;

        // Dropping the handle does the same.
        std::fs::remove_file(&pidfile).unwrap();
        let mut s = spec("long", sh(&script));
        s.timeout = Duration::from_secs(600);
        let (handle, _rx) = HealthRunner::spawn(vec![s]).unwrap();
        let pgid = wait_for_pid_file(&pidfile).await;
        drop(handle);
        assert_group_gone(pgid).await;
        let _ = std::fs::remove_dir_all(dir);
    })
    .await;
}

#[tokio::test]
async fn runner_never_overlaps_probes_and_runs_start_to_start() {
    bounded(async {
        let dir = scratch("overlap");
        let log = dir.join("log");
        // Each probe takes ~200 ms, four times the interval.
        let script = format!(
            "echo start >> {0}; sleep 0.2; echo end >> {0}",
            log.display()
        );
        let mut slow = spec("slow", sh(&script));
        slow.interval = Duration::from_millis(50);
        // A fast probe every 200 ms: its starts are one interval apart.
        let stamps = dir.join("stamps");
        let mut fast = spec("fast", sh(&format!("date +%s%N >> {}", stamps.display())));
        fast.interval = Duration::from_millis(200);
        let (handle, _rx) = HealthRunner::spawn(vec![slow, fast]).unwrap();
        tokio::time::sleep(Duration::from_millis(1100)).await;
        handle.shutdown().await;

        let text = std::fs::read_to_string(&log).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines.len() >= 4, "{lines:?}");
        for (i, line) in lines.iter().enumerate() {
            assert_eq!(
                *line,
                if i % 2 == 0 { "start" } else { "end" },
                "overlap in {lines:?}"
            );
        }

        let stamps: Vec<u128> = std::fs::read_to_string(&stamps)
            .unwrap()
            .lines()
            .map(|l| l.trim().parse().unwrap())
            .collect();
        assert!((3..=8).contains(&stamps.len()), "{stamps:?}");
        for pair in stamps.windows(2) {
            let gap_ms = (pair[1] - pair[0]) / 1_000_000;
            assert!(gap_ms >= 100, "probes too close: {gap_ms} ms in {stamps:?}");
        }
        let _ = std::fs::remove_dir_all(dir);
    })
    .await;
}

// ---------------------------------------------------------------------------------------
// Runner setup.

#[tokio::test]
async fn spawn_refuses_invalid_or_duplicate_specs() {
    let a = spec("a", tcp("127.0.0.1:1".parse().unwrap()));
    let err = HealthRunner::spawn(vec![a.clone(), a.clone()])
        .err()
        .unwrap();
    assert!(
        matches!(err, SpecError::DuplicateName(ref n) if n == "a"),
        "{err}"
    );
    let mut bad = a.clone();
    bad.rise = 0;
    let err = HealthRunner::spawn(vec![bad]).err().unwrap();
    assert_eq!(err.to_string(), "check \"a\": rise must be at least 1");
    let (handle, _rx) = HealthRunner::spawn(vec![]).unwrap();
    assert!(handle.snapshot().is_empty());
}

#[tokio::test]
async fn checks_go_on_when_the_event_receiver_is_dropped() {
    bounded(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (handle, rx) = HealthRunner::spawn(vec![spec("tcp", tcp(addr))]).unwrap();
        drop(rx);
        let view = handle.view();
        let deadline = Instant::now() + Duration::from_secs(10);
        while view.get("tcp").unwrap().total_ok < 3 {
            assert!(Instant::now() < deadline, "{:?}", view.snapshot());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(view.status("tcp"), Some(Status::Up));
    })
    .await;
}
