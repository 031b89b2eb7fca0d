//! `tandem fence NODE` and `tandem fence check`: the operator's fencing commands. They act on
//! the devices directly (no daemon needed), with the devices built by
//! `tandem_daemon::fencing` from this machine's config and secrets. Nothing printed here
//! contains a secret: device errors come scrubbed from `tandem-fence`, and secret-loading
//! errors name the file or variable only.

use std::io::{BufRead, IsTerminal, Write};
use std::path::Path;
use std::process::ExitCode;

use tandem_daemon::fencing;
use tandem_fence::{AttemptOutcome, FenceAction, FenceDriver, FenceReport};
use tandem_quorum::{FenceRecord, FenceStage};

fn load(config: &Path) -> Result<tandem_config::Config, ExitCode> {
    tandem_config::load(config).map_err(|d| {
        eprint!("{d}");
        ExitCode::from(1)
    })
}

fn runtime() -> Result<tokio::runtime::Runtime, ExitCode> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| {
            eprintln!("tandem: cannot start the runtime: {e}");
            ExitCode::from(1)
        })
}

fn out(text: &str) {
    let mut o = std::io::stdout().lock();
    let _ = o.write_all(text.as_bytes());
    let _ = o.flush();
}

/// `tandem fence check`: every device's status, queried at once, none acted on.
pub fn check(config: &Path) -> ExitCode {
    let cfg = match load(config) {
        Ok(c) => c,
        Err(code) => return code,
    };
    if cfg.fence_devices.is_empty() {
        eprintln!("tandem: {} declares no [[fence_device]]", config.display());
        return ExitCode::from(1);
    }
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    let states: Vec<Result<String, String>> = rt.block_on(async {
        let mut tasks = Vec::new();
        for d in &cfg.fence_devices {
            let built = fencing::build_device(d);
            tasks.push(tokio::spawn(async move {
                let dev = built.map_err(|e| e.to_string())?;
                match tokio::time::timeout(dev.timeout, dev.driver.status()).await {
                    Ok(Ok(s)) => Ok(s.to_string()),
                    Ok(Err(e)) => Err(e.to_string()),
                    Err(_) => Err(format!("timed out after {:?}", dev.timeout)),
                }
            }));
        }
        let mut states = Vec::new();
        for t in tasks {
            states.push(
                t.await
                    .unwrap_or_else(|e| Err(format!("status query failed: {e}"))),
            );
        }
        states
    });
    let mut rows = vec![[
        "DEVICE".to_string(),
        "DRIVER".to_string(),
        "TARGET".to_string(),
        "STATE".to_string(),
    ]];
    let mut failed = 0;
    for (d, st) in cfg.fence_devices.iter().zip(states) {
        let state = match st {
            Ok(s) => s,
            Err(e) => {
                failed += 1;
                format!("error: {e}")
            }
        };
        rows.push([
            d.name.clone(),
            d.driver.name().to_string(),
            d.driver.target(),
            state,
        ]);
    }
    let mut widths = [0usize; 3];
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r.iter()) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut text = String::new();
    for r in &rows {
        text.push_str(&format!(
            "{:w0$}  {:w1$}  {:w2$}  {}\n",
            r[0],
            r[1],
            r[2],
            r[3],
            w0 = widths[0],
            w1 = widths[1],
            w2 = widths[2]
        ));
    }
    out(&text);
    if failed > 0 {
        eprintln!(
            "tandem: {failed} of {} fence device{} cannot be read",
            cfg.fence_devices.len(),
            if cfg.fence_devices.len() == 1 {
                ""
            } else {
                "s"
            }
        );
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

/// `tandem fence NODE`.
pub fn fence(config: &Path, node: &str, action: FenceAction, yes: bool) -> ExitCode {
    let cfg = match load(config) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let levels = cfg.fence_levels_of(node);
    if levels.is_empty() {
        let known: Vec<&str> = {
            let mut n: Vec<&str> = cfg.fence_levels.iter().map(|l| l.node.as_str()).collect();
            n.sort_unstable();
            n.dedup();
            n
        };
        eprintln!(
            "tandem: no [[fence_level]] for node {node:?} in {}{}",
            config.display(),
            if known.is_empty() {
                String::new()
            } else {
                format!(" (nodes with fence levels: {})", known.join(", "))
            }
        );
        return ExitCode::from(1);
    }
    let plan: Vec<String> = levels
        .iter()
        .map(|l| format!("level {}: {}", l.level, l.devices.join(" + ")))
        .collect();
    if !yes {
        if !std::io::stdin().is_terminal() {
            eprintln!(
                "tandem: refusing to fence {node} without confirmation: stdin is not a \
                 terminal; add --yes"
            );
            return ExitCode::from(2);
        }
        eprint!(
            "Fence node {node}: {action} through {}.\nType the node name to confirm: ",
            plan.join(", then ")
        );
        let _ = std::io::stderr().flush();
        let mut answer = String::new();
        if std::io::stdin().lock().read_line(&mut answer).is_err() || answer.trim() != node {
            eprintln!("tandem: not confirmed; nothing done");
            return ExitCode::from(2);
        }
    }
    let topology = match fencing::topology_for(&cfg, node) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("tandem: {e}");
            return ExitCode::from(1);
        }
    };
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    out(&format!(
        "fencing {node}: {action} ({})\n",
        plan.join(", then ")
    ));
    let report = rt.block_on(topology.fence(action));
    out(&render(&report));
    record(&cfg, &report);
    if report.success() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// Hands the result to this machine's daemon for the fence history (the Raft log in quorum
/// mode). The fence itself does not depend on a daemon, so a daemon that is not running only
/// costs the record, and says so.
fn record(cfg: &tandem_config::Config, report: &FenceReport) {
    let record = FenceRecord {
        at_unix_ms: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64),
        node: report.node.clone(),
        by: format!("{} (operator)", cfg.node.name),
        action: report.action.to_string(),
        ok: report.success(),
        detail: report.summary(),
        stage: FenceStage::Result,
        process: None,
    };
    let req = tandem_daemon::control::Request::RecordFence { record };
    match tandem_daemon::control::request(&cfg.node.control_socket, &req) {
        Ok(_) => out("recorded in the fence history\n"),
        Err(e) => eprintln!("tandem: the fence is not in the fence history: {e}"),
    }
}

/// Every level, device step and attempt, then the result.
fn render(report: &FenceReport) -> String {
    let mut s = String::new();
    for l in &report.levels {
        let verdict = if l.success {
            match &l.reason {
                Some(r) => format!("verified ({r})"),
                None => "verified".to_string(),
            }
        } else {
            format!(
                "FAILED: {}",
                l.reason
                    .as_deref()
                    .unwrap_or("not every device was verified")
            )
        };
        s.push_str(&format!("level {}: {verdict}\n", l.level));
        for d in &l.devices {
            s.push_str(&format!(
                "  {} ({}) -> {}: {}\n",
                d.device,
                d.driver,
                d.wanted,
                if d.verified {
                    "verified"
                } else {
                    "not verified"
                }
            ));
            for a in &d.attempts {
                let mark = if a.outcome == AttemptOutcome::Verified {
                    "ok"
                } else {
                    "failed"
                };
                s.push_str(&format!(
                    "    attempt {}: {mark}: {} ({:.1}s)\n",
                    a.attempt,
                    a.outcome,
                    a.elapsed.as_secs_f64()
                ));
            }
        }
    }
    let result = if report.success() { "ok" } else { "FAILED" };
    s.push_str(&format!("result: {result}: {}\n", report.summary()));
    s
}

/// The fence history a daemon's status carries: the Raft log's in quorum mode, else its own.
pub fn history_of(st: &tandem_daemon::status::StatusReport) -> Vec<FenceRecord> {
    st.quorum
        .as_ref()
        .and_then(|q| q.get("fence_history"))
        .and_then(|h| serde_json::from_value(h.clone()).ok())
        .unwrap_or_else(|| st.fence_history.clone())
}

/// One line per record: time (UTC), node, who fenced, action, outcome, detail.
pub fn render_history(history: &[FenceRecord]) -> String {
    if history.is_empty() {
        return "no fences recorded\n".into();
    }
    let mut s = format!(
        "{:<24} {:<12} {:<12} {:<7} {:<9} DETAIL\n",
        "TIME (UTC)", "NODE", "BY", "ACTION", "RESULT"
    );
    for r in history {
        let result = match (r.stage, r.ok) {
            (FenceStage::Attempt, _) => "attempt",
            (FenceStage::Result, true) => "verified",
            (FenceStage::Result, false) => "failed",
        };
        s += &format!(
            "{:<24} {:<12} {:<12} {:<7} {:<9} {}\n",
            utc(r.at_unix_ms),
            r.node,
            r.by,
            r.action,
            result,
            r.detail
        );
    }
    s
}

/// `YYYY-MM-DD HH:MM:SS.mmm` from Unix milliseconds (civil-from-days, proleptic Gregorian),
/// so the CLI needs no date crate for one column.
fn utc(ms: u64) -> String {
    let secs = ms / 1000;
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}.{:03}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        ms % 1000
    )
}

#[cfg(test)]
mod history_tests {
    use super::*;

    #[test]
    fn utc_formats_known_instants() {
        assert_eq!(utc(0), "1970-01-01 00:00:00.000");
        assert_eq!(utc(951_782_400_123), "2000-02-29 00:00:00.123");
        assert_eq!(utc(1_795_712_461_005), "2026-11-26 17:01:01.005");
    }

    #[test]
    fn history_renders_each_stage() {
        let rec = |stage, ok| FenceRecord {
            at_unix_ms: 0,
            node: "lb1".into(),
            by: "arb".into(),
            action: "off".into(),
            ok,
            detail: "d".into(),
            stage,
            process: None,
        };
        let out = render_history(&[
            rec(FenceStage::Attempt, false),
            rec(FenceStage::Result, true),
            rec(FenceStage::Result, false),
        ]);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 4);
        assert!(
            lines[1].contains("attempt")
                && lines[2].contains("verified")
                && lines[3].contains("failed")
        );
        assert_eq!(render_history(&[]), "no fences recorded\n");
    }
}
