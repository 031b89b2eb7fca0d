//! The soak report: Markdown with the figures, the events and every violation (with the seed
//! that replays it), and an SVG timeline of VIP ownership per node with fault windows shaded.

use std::fmt::Write as _;

use serde::Serialize;

use crate::check::{Violation, Window};

#[derive(Debug, Serialize)]
pub struct Report {
    pub command: String,
    pub seed: u64,
    pub mode: String,
    pub fence: bool,
    pub events: Vec<Window>,
    pub violations: Vec<Violation>,
    pub availability: f64,
    /// Spells without a holder, ms: min, median, p99, max.
    pub failover_ms: Option<[f64; 4]>,
    pub failovers: usize,
    pub samples: u64,
    pub duration_s: f64,
    pub started_unix_ms: f64,
    pub acked_writes: usize,
    pub fences: usize,
}

pub fn markdown(r: &Report) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "# Nemesis soak: {} events, seed {}\n",
        r.events.len(),
        r.seed
    );
    let _ = writeln!(s, "| | |\n|---|---|");
    let _ = writeln!(s, "| command | `{}` |", r.command);
    let _ = writeln!(
        s,
        "| cluster | {} mode, fencing {} |",
        r.mode,
        if r.fence { "on" } else { "off" }
    );
    let _ = writeln!(
        s,
        "| duration | {:.0} s, {} samples of every node's addresses and the client's ARP replies |",
        r.duration_s, r.samples
    );
    let _ = writeln!(s, "| violations | **{}** |", r.violations.len());
    let _ = writeln!(
        s,
        "| availability | {:.2} % of the time exactly one holder |",
        r.availability * 100.0
    );
    match r.failover_ms {
        Some([min, med, p99, max]) => {
            let _ = writeln!(
                s,
                "| spells without a holder | {} (ms: min {min:.0}, median {med:.0}, p99 {p99:.0}, max {max:.0}) |",
                r.failovers
            );
        }
        None => {
            let _ = writeln!(s, "| spells without a holder | none |");
        }
    }
    let _ = writeln!(
        s,
        "| acknowledged Raft writes checked | {} |",
        r.acked_writes
    );
    let _ = writeln!(s, "| fence records | {} |", r.fences);
    let _ = writeln!(s, "\n![timeline](timeline.svg)\n");
    if !r.violations.is_empty() {
        let _ = writeln!(s, "## Violations (replay with `--seed {}`)\n", r.seed);
        for v in &r.violations {
            let at = if v.at_ms > 0.0 {
                format!("t+{:.1} s", (v.at_ms - r.started_unix_ms) / 1000.0)
            } else {
                "-".into()
            };
            let during = r
                .events
                .iter()
                .position(|e| e.start_ms <= v.at_ms && v.at_ms <= e.end_ms)
                .map(|i| format!(" (during event {}: {})", i + 1, r.events[i].label))
                .unwrap_or_default();
            let _ = writeln!(s, "- **{}** at {at}{during}: {}", v.invariant, v.detail);
        }
        s.push('\n');
    }
    let _ = writeln!(
        s,
        "## Events\n\n| # | from (s) | to (s) | fault |\n|---|---|---|---|"
    );
    for (i, e) in r.events.iter().enumerate() {
        let _ = writeln!(
            s,
            "| {} | {:.1} | {:.1} | {} |",
            i + 1,
            (e.start_ms - r.started_unix_ms) / 1000.0,
            (e.end_ms - r.started_unix_ms) / 1000.0,
            e.label
        );
    }
    s
}

/// One row per node: where it held the VIP (green; red where another node held it too);
/// fault windows shaded grey across the rows, numbered as in the events table.
pub fn svg(
    nodes: &[String],
    timeline: &[(f64, Vec<String>)],
    faults: &[Window],
    from_ms: f64,
    to_ms: f64,
) -> String {
    let (left, width, row, top) = (60.0, 1100.0, 28.0, 30.0);
    let span = (to_ms - from_ms).max(1.0);
    let x = |t: f64| left + (t - from_ms).clamp(0.0, span) / span * width;
    let height = top + row * nodes.len() as f64 + 30.0;
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{height}\" font-family=\"sans-serif\" font-size=\"11\">\n",
        left + width + 20.0
    );
    let _ = writeln!(s, "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>");
    for (i, f) in faults.iter().enumerate() {
        let (a, b) = (x(f.start_ms), x(f.end_ms));
        let _ = writeln!(
            s,
            "<rect x=\"{a:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"#ddd\"><title>{} {}</title></rect>",
            top - 4.0,
            (b - a).max(0.5),
            row * nodes.len() as f64 + 4.0,
            i + 1,
            esc(&f.label)
        );
        let _ = writeln!(
            s,
            "<text x=\"{a:.1}\" y=\"{:.1}\" fill=\"#666\">{}</text>",
            top - 8.0,
            i + 1
        );
    }
    for (n, node) in nodes.iter().enumerate() {
        let y = top + row * n as f64;
        let _ = writeln!(
            s,
            "<text x=\"4\" y=\"{:.1}\">{}</text>",
            y + row / 2.0 + 4.0,
            esc(node)
        );
        for (i, (t, holders)) in timeline.iter().enumerate() {
            if !holders.contains(node) {
                continue;
            }
            let next = timeline.get(i + 1).map_or(to_ms, |c| c.0);
            let color = if holders.len() > 1 { "#d22" } else { "#2a2" };
            let (a, b) = (x(*t), x(next));
            let _ = writeln!(
                s,
                "<rect x=\"{a:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"{color}\"/>",
                y + 4.0,
                (b - a).max(0.5),
                row - 8.0
            );
        }
    }
    let axis_y = top + row * nodes.len() as f64 + 16.0;
    let step = nice_step(span / 1000.0);
    let mut t = 0.0;
    while t <= span / 1000.0 {
        let _ = writeln!(
            s,
            "<text x=\"{:.1}\" y=\"{axis_y:.1}\" fill=\"#444\">{t:.0}s</text>",
            x(from_ms + t * 1000.0)
        );
        t += step;
    }
    s.push_str("</svg>\n");
    s
}

fn nice_step(span_s: f64) -> f64 {
    for s in [1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0] {
        if span_s / s <= 12.0 {
            return s;
        }
    }
    1200.0
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn svg_draws_holders_two_holders_and_faults() {
        let nodes = vec!["lb1".to_string(), "lb2".to_string()];
        let tl = vec![
            (0.0, vec!["lb1".to_string()]),
            (500.0, vec!["lb1".to_string(), "lb2".to_string()]),
            (600.0, vec!["lb2".to_string()]),
        ];
        let faults = vec![Window {
            label: "isolate <lb1>".into(),
            start_ms: 200.0,
            end_ms: 700.0,
        }];
        let out = svg(&nodes, &tl, &faults, 0.0, 1000.0);
        assert!(out.starts_with("<svg") && out.ends_with("</svg>\n"));
        assert_eq!(out.matches("fill=\"#2a2\"").count(), 2);
        assert_eq!(out.matches("fill=\"#d22\"").count(), 2);
        assert!(out.contains("isolate &lt;lb1&gt;"));
    }

    #[test]
    fn markdown_lists_violations_with_the_seed() {
        let r = Report {
            command: "tandem-nemesis --seed 9".into(),
            seed: 9,
            mode: "vrrp".into(),
            fence: false,
            events: vec![Window {
                label: "partition lb1 | lb2".into(),
                start_ms: 1200.0,
                end_ms: 1800.0,
            }],
            violations: vec![Violation {
                invariant: "one holder",
                at_ms: 1500.0,
                detail: "x".into(),
            }],
            availability: 0.5,
            failover_ms: None,
            failovers: 0,
            samples: 1,
            duration_s: 1.0,
            started_unix_ms: 1000.0,
            acked_writes: 0,
            fences: 0,
        };
        let md = markdown(&r);
        assert!(md.contains("replay with `--seed 9`"));
        assert!(md.contains("**one holder** at t+0.5 s (during event 1: partition lb1 | lb2)"));
    }
}
