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
    if report.success() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
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
