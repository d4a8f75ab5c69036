//! The usage chart: actions per day, stacked by tier, as a server-rendered SVG (no script, so it
//! shows with JavaScript off). The page puts the same numbers in a table beside it. Pure.

use std::fmt::Write;

use chrono::NaiveDate;

/// One tier's actions per day, aligned with the chart's days.
pub struct Series {
    pub name: String,
    pub counts: Vec<u64>,
}

/// Fill colours for the tiers, in catalog order (readable on white, distinct for colour-blind
/// readers in order of lightness).
const COLOURS: [&str; 6] = [
    "#2f4bd8", "#7b8cf0", "#1f7a4d", "#8fd0a9", "#b45309", "#f2b36b",
];

const WIDTH: f64 = 720.0;
const HEIGHT: f64 = 220.0;
const LEFT: f64 = 40.0;
const BOTTOM: f64 = 24.0;
const TOP: f64 = 10.0;

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A rounded-up scale maximum: 1, 2, 5, 10, 20, 50, ...
fn nice_max(max: u64) -> u64 {
    let mut step = 1;
    loop {
        for m in [1, 2, 5] {
            if m * step >= max.max(1) {
                return m * step;
            }
        }
        step *= 10;
    }
}

/// Draws the chart. `boundary` is the index of the first day of the current period, marked with
/// a line.
pub fn svg(days: &[NaiveDate], series: &[Series], boundary: Option<usize>, label: &str) -> String {
    let totals: Vec<u64> = (0..days.len())
        .map(|d| {
            series
                .iter()
                .map(|s| s.counts.get(d).copied().unwrap_or(0))
                .sum()
        })
        .collect();
    let max = nice_max(totals.iter().copied().max().unwrap_or(0));
    let plot_w = WIDTH - LEFT;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let slot = plot_w / days.len().max(1) as f64;
    let bar = (slot * 0.75).max(1.0);
    let mut out = String::new();
    let _ = write!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{}" class="usage-chart"><title>{}</title>"#,
        escape(label),
        escape(label)
    );
    // Grid lines and the scale.
    for i in 0..=4u64 {
        let value = max * i / 4;
        let y = TOP + plot_h - plot_h * i as f64 / 4.0;
        let _ = write!(
            out,
            r##"<line x1="{LEFT}" x2="{WIDTH}" y1="{y:.1}" y2="{y:.1}" stroke="#dfe3ea"/><text x="{:.1}" y="{:.1}" font-size="10" text-anchor="end" fill="#5b6475">{value}</text>"##,
            LEFT - 4.0,
            y + 3.0
        );
    }
    for (d, day) in days.iter().enumerate() {
        let x = LEFT + slot * d as f64 + (slot - bar) / 2.0;
        let mut y = TOP + plot_h;
        for (s, serie) in series.iter().enumerate() {
            let count = serie.counts.get(d).copied().unwrap_or(0);
            if count == 0 {
                continue;
            }
            let h = plot_h * count as f64 / max as f64;
            y -= h;
            let _ = write!(
                out,
                r#"<rect x="{x:.1}" y="{y:.1}" width="{bar:.1}" height="{h:.1}" fill="{}"><title>{} {}: {count}</title></rect>"#,
                COLOURS[s % COLOURS.len()],
                day.format("%-d %b"),
                escape(&serie.name)
            );
        }
        // A date under every seventh day.
        if d % 7 == 0 {
            let _ = write!(
                out,
                r##"<text x="{:.1}" y="{:.1}" font-size="10" text-anchor="middle" fill="#5b6475">{}</text>"##,
                x + bar / 2.0,
                HEIGHT - 8.0,
                day.format("%-d %b")
            );
        }
    }
    if let Some(b) = boundary.filter(|b| *b < days.len()) {
        let x = LEFT + slot * b as f64;
        let _ = write!(
            out,
            r##"<line x1="{x:.1}" x2="{x:.1}" y1="{TOP}" y2="{:.1}" stroke="#1c2333" stroke-dasharray="4 3"/><text x="{:.1}" y="{:.1}" font-size="10" fill="#1c2333">current period</text>"##,
            TOP + plot_h,
            x + 3.0,
            TOP + 10.0
        );
    }
    out.push_str("</svg>");
    out
}

/// The legend's colour for the tier at `index`.
pub fn colour(index: usize) -> &'static str {
    COLOURS[index % COLOURS.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_stack_per_day_and_labels_are_escaped() {
        let days: Vec<NaiveDate> = (1..=3)
            .map(|d| NaiveDate::from_ymd_opt(2026, 11, d).expect("date"))
            .collect();
        let series = vec![
            Series {
                name: "Small".into(),
                counts: vec![3, 0, 1],
            },
            Series {
                name: "<b>".into(),
                counts: vec![1, 0, 0],
            },
        ];
        let svg = svg(&days, &series, Some(1), "Usage & more");
        assert_eq!(svg.matches("<rect").count(), 3);
        assert!(svg.contains("1 Nov Small: 3"));
        assert!(svg.contains("&lt;b&gt;"));
        assert!(svg.contains(r#"aria-label="Usage &amp; more""#));
        assert!(svg.contains("current period"));
        assert_eq!(nice_max(0), 1);
        assert_eq!(nice_max(4), 5);
        assert_eq!(nice_max(37), 50);
        assert_eq!(nice_max(100), 100);
    }
}
