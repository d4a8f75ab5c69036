//! A metrics table's chart: one line per charted column over the days, as a server-rendered SVG
//! (no script, so it shows with JavaScript off), named by its `<title>` and `aria-label`, with a
//! legend. The table beside it carries the same numbers for screen readers. Pure.

use std::fmt::Write;

use super::tables::Table;

/// Line colours in column order, each at least 3:1 against white (WCAG's contrast for graphics)
/// and told apart by their dash patterns too.
const COLOURS: [&str; 6] = [
    "#2f4bd8", "#1f7a4d", "#b45309", "#b4235a", "#5b21b6", "#0e7490",
];
const DASHES: [&str; 6] = ["", "6 3", "2 3", "8 3 2 3", "1 2", "10 4"];

const WIDTH: f64 = 640.0;
const HEIGHT: f64 = 200.0;
const LEFT: f64 = 64.0;
const RIGHT: f64 = 8.0;
const TOP: f64 = 10.0;
const BOTTOM: f64 = 22.0;

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A rounded-up scale bound: 1, 2, 5, 10, 20, 50, ...
fn nice(value: i64) -> i64 {
    let mut step = 1i64;
    loop {
        for m in [1, 2, 5] {
            if m * step >= value.max(1) {
                return m * step;
            }
        }
        step = step.saturating_mul(10);
    }
}

/// What the chart is named: the table's title, its series and its days.
pub fn label(table: &Table) -> String {
    let series: Vec<&str> = table
        .columns
        .iter()
        .filter(|c| c.charted)
        .map(|c| c.name.as_str())
        .collect();
    let span = match (table.rows.first(), table.rows.last()) {
        (Some((first, _)), Some((last, _))) => format!(", {first} to {last}"),
        _ => String::new(),
    };
    format!("{}: {} per day{span}", table.title, series.join(", "))
}

pub fn svg(table: &Table) -> String {
    let charted: Vec<usize> = (0..table.columns.len())
        .filter(|&i| table.columns[i].charted)
        .collect();
    let values = || {
        table
            .rows
            .iter()
            .flat_map(|(_, v)| charted.iter().filter_map(|&i| v.get(i).copied().flatten()))
    };
    let max = nice(values().max().unwrap_or(0).max(0));
    let lowest = values().min().unwrap_or(0);
    let min = if lowest < 0 { -nice(-lowest) } else { 0 };
    let plot_w = WIDTH - LEFT - RIGHT;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let span = (max - min).max(1) as f64;
    let y = |v: i64| TOP + plot_h - plot_h * (v - min) as f64 / span;
    let n = table.rows.len();
    let x = |i: usize| {
        LEFT + if n > 1 {
            plot_w * i as f64 / (n - 1) as f64
        } else {
            plot_w / 2.0
        }
    };
    let name = escape(&label(table));
    let mut out = String::new();
    let _ = write!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{name}" class="metrics-chart"><title>{name}</title>"#
    );
    let unit = charted.first().map(|&i| &table.columns[i].unit);
    for step in 0..=4i64 {
        let v = min + (max - min) * step / 4;
        let tick = unit.map_or_else(|| v.to_string(), |u| u.show(Some(v)));
        let _ = write!(
            out,
            r##"<line x1="{LEFT}" x2="{:.1}" y1="{y:.1}" y2="{y:.1}" stroke="#dfe3ea"/><text x="{:.1}" y="{:.1}" font-size="10" text-anchor="end" fill="#4b5563">{}</text>"##,
            WIDTH - RIGHT,
            LEFT - 4.0,
            y(v) + 3.0,
            escape(&tick),
            y = y(v),
        );
    }
    for (label_at, (day, _)) in table.rows.iter().enumerate() {
        if n <= 1 || label_at == 0 || label_at == n - 1 {
            let anchor = if label_at == 0 && n > 1 {
                "start"
            } else {
                "end"
            };
            let _ = write!(
                out,
                r##"<text x="{:.1}" y="{:.1}" font-size="10" text-anchor="{anchor}" fill="#4b5563">{day}</text>"##,
                x(label_at),
                HEIGHT - 6.0
            );
        }
    }
    for (k, &i) in charted.iter().enumerate() {
        let points: Vec<(f64, f64)> = table
            .rows
            .iter()
            .enumerate()
            .filter_map(|(d, (_, v))| v.get(i).copied().flatten().map(|v| (x(d), y(v))))
            .collect();
        let colour = COLOURS[k % COLOURS.len()];
        let dash = DASHES[k % DASHES.len()];
        if let [(cx, cy)] = points[..] {
            let _ = write!(
                out,
                r#"<circle cx="{cx:.1}" cy="{cy:.1}" r="3" fill="{colour}"/>"#
            );
        } else {
            let points: Vec<String> = points
                .iter()
                .map(|(px, py)| format!("{px:.1},{py:.1}"))
                .collect();
            let _ = write!(
                out,
                r#"<polyline fill="none" stroke="{colour}" stroke-width="2" stroke-dasharray="{dash}" points="{}"/>"#,
                points.join(" ")
            );
        }
    }
    out.push_str("</svg>");
    out
}

/// The legend: each charted column's name with its colour and dash, as the page lists them.
pub fn legend(table: &Table) -> Vec<(String, &'static str, &'static str)> {
    table
        .columns
        .iter()
        .filter(|c| c.charted)
        .enumerate()
        .map(|(k, c)| {
            (
                c.name.clone(),
                COLOURS[k % COLOURS.len()],
                DASHES[k % DASHES.len()],
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::tables::{Column, Unit};
    use super::*;
    use chrono::NaiveDate;

    fn table(values: &[i64]) -> Table {
        Table {
            key: "t".into(),
            title: "Net revenue <USD>".into(),
            columns: vec![
                Column {
                    name: "Net".into(),
                    unit: Unit::Count,
                    charted: true,
                },
                Column {
                    name: "Hidden".into(),
                    unit: Unit::Count,
                    charted: false,
                },
            ],
            rows: values
                .iter()
                .zip(1..)
                .map(|(v, d)| {
                    (
                        NaiveDate::from_ymd_opt(2026, 12, d).expect("day"),
                        vec![Some(*v), Some(1_000_000)],
                    )
                })
                .collect(),
            summary: vec![],
        }
    }

    #[test]
    fn the_chart_is_named_and_escapes_its_text() {
        let svg = svg(&table(&[3, -4, 12]));
        let name = "Net revenue &lt;USD&gt;: Net per day, 2026-12-01 to 2026-12-03";
        assert!(
            svg.contains(&format!(r#"role="img" aria-label="{name}""#)),
            "{svg}"
        );
        assert!(svg.contains(&format!("<title>{name}</title>")));
        // One line (the hidden column is not drawn), scaled from -5 to 20.
        assert_eq!(svg.matches("<polyline").count(), 1);
        assert!(svg.contains(">20<") && svg.contains(">-5<"), "{svg}");
    }

    #[test]
    fn one_day_is_a_dot() {
        let svg = svg(&table(&[7]));
        assert!(
            svg.contains("<circle") && !svg.contains("<polyline"),
            "{svg}"
        );
    }
}
