//! Hand-written SVG: a strip chart (one dot per run, a tick at the median, dashed reference
//! lines such as the RFC bound) and a grouped bar chart. No dependencies, no fonts to embed:
//! text uses the viewer's sans-serif.

use std::fmt::Write as _;

pub const TANDEM: &str = "#1f6fb4";
pub const KEEPALIVED: &str = "#d0462c";

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Round `x` up to 1, 2, 2.5 or 5 × 10^k.
fn nice_ceil(x: f64) -> f64 {
    if x <= 0.0 || !x.is_finite() {
        return 1.0;
    }
    let e = 10f64.powf(x.log10().floor());
    for m in [1.0, 2.0, 2.5, 5.0, 10.0] {
        if m * e >= x * 0.999_999 {
            return m * e;
        }
    }
    10.0 * e
}

/// Five or so round ticks from 0 to `max` (itself a nice value).
fn ticks(max: f64) -> Vec<f64> {
    let step = nice_ceil(max / 5.0);
    let n = (max / step).round() as usize;
    (0..=n).map(|i| i as f64 * step).collect()
}

fn fmt_tick(v: f64) -> String {
    if v == v.round() {
        format!("{v:.0}")
    } else if (v * 10.0) == (v * 10.0).round() {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

pub struct Row {
    pub label: String,
    pub color: &'static str,
    pub values: Vec<f64>,
}

pub struct RefLine {
    pub value: f64,
    pub label: String,
    /// SVG stroke-dasharray.
    pub dash: &'static str,
}

pub struct Panel {
    pub title: String,
    pub unit: String,
    pub rows: Vec<Row>,
    pub refs: Vec<RefLine>,
    /// At least this much on the x axis (to give several panels one scale); 0: the data's.
    pub min_xmax: f64,
}

/// Panels stacked vertically, each with its own x scale.
pub fn strip_chart(title: &str, panels: &[Panel]) -> String {
    strip_chart_note(title, panels, "dots: runs; bar: median; dashed: bounds")
}

/// [`strip_chart`] with another legend line at the bottom right.
pub fn strip_chart_note(title: &str, panels: &[Panel], note: &str) -> String {
    let width = 900.0;
    let left = 190.0;
    let right = 30.0;
    let row_h = 26.0;
    let mut s = String::new();
    let mut y = 40.0;
    let mut body = String::new();
    for p in panels {
        let top = y + 30.0;
        let plot_h = row_h * p.rows.len().max(1) as f64;
        let data_max = p
            .rows
            .iter()
            .flat_map(|r| r.values.iter().copied())
            .chain(p.refs.iter().map(|r| r.value))
            .filter(|v| v.is_finite())
            .fold(0.0f64, f64::max);
        let xmax = nice_ceil((data_max * 1.08).max(p.min_xmax));
        let sx = |v: f64| left + (v / xmax).clamp(0.0, 1.0) * (width - left - right);
        let _ = writeln!(
            body,
            r#"<text x="{left}" y="{}" font-size="14" font-weight="bold">{}</text>"#,
            y + 12.0,
            esc(&p.title)
        );
        for t in ticks(xmax) {
            let x = sx(t);
            let _ = writeln!(
                body,
                r##"<line x1="{x:.1}" y1="{top}" x2="{x:.1}" y2="{:.1}" stroke="#ddd"/><text x="{x:.1}" y="{:.1}" font-size="11" text-anchor="middle" fill="#444">{}</text>"##,
                top + plot_h,
                top + plot_h + 14.0,
                fmt_tick(t)
            );
        }
        let _ = writeln!(
            body,
            r##"<text x="{:.1}" y="{:.1}" font-size="11" text-anchor="end" fill="#444">{}</text>"##,
            width - right,
            top + plot_h + 28.0,
            esc(&p.unit)
        );
        for (ri, r) in p.rows.iter().enumerate() {
            let cy = top + row_h * ri as f64 + row_h / 2.0;
            let _ = writeln!(
                body,
                r##"<text x="{:.1}" y="{:.1}" font-size="12" text-anchor="end">{}</text><line x1="{left}" y1="{cy:.1}" x2="{:.1}" y2="{cy:.1}" stroke="#f0f0f0"/>"##,
                left - 8.0,
                cy + 4.0,
                esc(&r.label),
                width - right
            );
            for v in r.values.iter().filter(|v| v.is_finite()) {
                let _ = writeln!(
                    body,
                    r#"<circle cx="{:.1}" cy="{cy:.1}" r="3.5" fill="{}" fill-opacity="0.55"/>"#,
                    sx(*v),
                    r.color
                );
            }
            if let Some(st) = crate::stats::summarize(&r.values) {
                let x = sx(st.median);
                let _ = writeln!(
                    body,
                    r#"<line x1="{x:.1}" y1="{:.1}" x2="{x:.1}" y2="{:.1}" stroke="{}" stroke-width="2.5"/>"#,
                    cy - 9.0,
                    cy + 9.0,
                    r.color
                );
            }
        }
        for (k, rl) in p.refs.iter().enumerate() {
            let x = sx(rl.value);
            // Labels above the rows: the first to the left of its line, the next to the right.
            let (lx, anchor) = if k % 2 == 0 {
                (x - 3.0, "end")
            } else {
                (x + 3.0, "start")
            };
            let _ = writeln!(
                body,
                r##"<line x1="{x:.1}" y1="{:.1}" x2="{x:.1}" y2="{:.1}" stroke="#333" stroke-dasharray="{}"/><text x="{lx:.1}" y="{:.1}" font-size="10" fill="#333" text-anchor="{anchor}">{}</text>"##,
                top - 10.0,
                top + plot_h,
                rl.dash,
                top - 3.0,
                esc(&rl.label)
            );
        }
        y = top + plot_h + 40.0;
    }
    let height = y + 10.0;
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="sans-serif">"#
    );
    let _ = writeln!(
        s,
        r#"<rect width="100%" height="100%" fill="white"/><text x="{}" y="24" font-size="16" font-weight="bold" text-anchor="middle">{}</text>"#,
        width / 2.0,
        esc(title)
    );
    s.push_str(&body);
    let _ = writeln!(
        s,
        r##"<text x="{}" y="{:.1}" font-size="10" fill="#666" text-anchor="end">{}</text>"##,
        width - right,
        height - 4.0,
        esc(note)
    );
    s.push_str("</svg>\n");
    s
}

pub struct Series {
    pub name: String,
    pub color: &'static str,
    /// Lighter fill for a second role of the same daemon.
    pub opacity: f64,
}

/// Grouped bars: `values[group][series]`.
pub fn bar_chart(
    title: &str,
    unit: &str,
    groups: &[String],
    series: &[Series],
    values: &[Vec<Option<f64>>],
    goal: Option<(f64, String)>,
) -> String {
    let (width, height) = (760.0, 380.0);
    let (left, right, top, bottom) = (70.0, 20.0, 50.0, 80.0);
    let data_max = values
        .iter()
        .flatten()
        .flatten()
        .copied()
        .chain(goal.iter().map(|g| g.0))
        .filter(|v| v.is_finite())
        .fold(0.0f64, f64::max);
    let ymax = nice_ceil(data_max * 1.1);
    let plot_h = height - top - bottom;
    let sy = |v: f64| top + plot_h - (v / ymax).clamp(0.0, 1.0) * plot_h;
    let gw = (width - left - right) / groups.len().max(1) as f64;
    let bw = (gw * 0.8) / series.len().max(1) as f64;
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="sans-serif">"#
    );
    let _ = writeln!(
        s,
        r#"<rect width="100%" height="100%" fill="white"/><text x="{}" y="24" font-size="16" font-weight="bold" text-anchor="middle">{}</text>"#,
        width / 2.0,
        esc(title)
    );
    for t in ticks(ymax) {
        let y = sy(t);
        let _ = writeln!(
            s,
            r##"<line x1="{left}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#ddd"/><text x="{:.1}" y="{:.1}" font-size="11" text-anchor="end" fill="#444">{}</text>"##,
            width - right,
            left - 6.0,
            y + 4.0,
            fmt_tick(t)
        );
    }
    let _ = writeln!(
        s,
        r##"<text x="16" y="{:.1}" font-size="12" transform="rotate(-90 16 {:.1})" text-anchor="middle">{}</text>"##,
        top + plot_h / 2.0,
        top + plot_h / 2.0,
        esc(unit)
    );
    for (gi, g) in groups.iter().enumerate() {
        let gx = left + gw * gi as f64 + gw * 0.1;
        for (si, se) in series.iter().enumerate() {
            let Some(v) = values.get(gi).and_then(|r| r.get(si)).copied().flatten() else {
                continue;
            };
            let x = gx + bw * si as f64;
            let y = sy(v);
            let _ = writeln!(
                s,
                r#"<rect x="{x:.1}" y="{y:.1}" width="{:.1}" height="{:.1}" fill="{}" fill-opacity="{}"/><text x="{:.1}" y="{:.1}" font-size="9" text-anchor="middle">{}</text>"#,
                bw - 2.0,
                top + plot_h - y,
                se.color,
                se.opacity,
                x + (bw - 2.0) / 2.0,
                y - 3.0,
                fmt_value(v)
            );
        }
        let _ = writeln!(
            s,
            r#"<text x="{:.1}" y="{:.1}" font-size="12" text-anchor="middle">{}</text>"#,
            left + gw * gi as f64 + gw / 2.0,
            top + plot_h + 16.0,
            esc(g)
        );
    }
    if let Some((v, label)) = goal {
        let y = sy(v);
        let _ = writeln!(
            s,
            r##"<line x1="{left}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#333" stroke-dasharray="6 3"/><text x="{:.1}" y="{:.1}" font-size="10" text-anchor="end">{}</text>"##,
            width - right,
            width - right,
            y - 3.0,
            esc(&label)
        );
    }
    for (si, se) in series.iter().enumerate() {
        let x = left + 10.0 + 170.0 * (si % 4) as f64;
        let y = height - 36.0 + 16.0 * (si / 4) as f64;
        let _ = writeln!(
            s,
            r#"<rect x="{x:.1}" y="{:.1}" width="12" height="12" fill="{}" fill-opacity="{}"/><text x="{:.1}" y="{y:.1}" font-size="12">{}</text>"#,
            y - 10.0,
            se.color,
            se.opacity,
            x + 16.0,
            esc(&se.name)
        );
    }
    s.push_str("</svg>\n");
    s
}

fn fmt_value(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nice_values() {
        assert_eq!(nice_ceil(3.6), 5.0);
        assert_eq!(nice_ceil(361.0), 500.0);
        assert_eq!(nice_ceil(72.0), 100.0);
        assert_eq!(nice_ceil(0.15), 0.2);
        assert_eq!(ticks(500.0), vec![0.0, 100.0, 200.0, 300.0, 400.0, 500.0]);
    }

    #[test]
    fn charts_are_well_formed() {
        let p = Panel {
            title: "v3 100 ms".into(),
            unit: "ms".into(),
            rows: vec![Row {
                label: "tandem <client>".into(),
                color: TANDEM,
                values: vec![300.0, 320.0],
            }],
            refs: vec![RefLine {
                value: 361.0,
                label: "RFC".into(),
                dash: "4 3",
            }],
            min_xmax: 0.0,
        };
        let s = strip_chart("t", &[p]);
        assert!(s.starts_with("<svg") && s.ends_with("</svg>\n"));
        assert!(s.contains("tandem &lt;client&gt;"));
        let b = bar_chart(
            "b",
            "MiB",
            &["1".into()],
            &[Series {
                name: "tandem".into(),
                color: TANDEM,
                opacity: 1.0,
            }],
            &[vec![Some(3.0)]],
            Some((5.0, "goal".into())),
        );
        assert!(b.contains("<rect") && b.ends_with("</svg>\n"));
    }
}
