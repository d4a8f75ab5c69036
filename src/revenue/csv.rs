//! A metrics table as CSV (RFC 4180): a header line, then a row per day with raw numbers
//! (minor units, millicredits, seconds; the header names the unit), so a spreadsheet can sum
//! them. Pure.

use super::tables::Table;

/// Quotes a field when it holds a comma, a quote or a line break; text a spreadsheet would run
/// as a formula (`=`, `+`, `-`, `@` first) gets a leading apostrophe.
fn field(text: &str) -> String {
    let text = if text.starts_with(['=', '+', '-', '@']) {
        format!("'{text}")
    } else {
        text.to_owned()
    };
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text
    }
}

pub fn render(table: &Table) -> String {
    let mut out = String::from("day");
    for c in &table.columns {
        out.push(',');
        out.push_str(&field(&format!("{}{}", c.name, c.unit.csv_suffix())));
    }
    out.push_str("\r\n");
    for (day, values) in &table.rows {
        out.push_str(&day.format("%Y-%m-%d").to_string());
        for v in values {
            out.push(',');
            // Numbers are written as numbers (a negative net is -500, not a formula).
            if let Some(v) = v {
                out.push_str(&v.to_string());
            }
        }
        out.push_str("\r\n");
    }
    out
}

/// The file name a download is saved as.
pub fn file_name(key: &str, first: chrono::NaiveDate, last: chrono::NaiveDate) -> String {
    format!("metrics-{key}-{first}-to-{last}.csv")
}

#[cfg(test)]
mod tests {
    use super::super::tables::{Column, Unit};
    use super::*;
    use chrono::NaiveDate;

    #[test]
    fn a_table_becomes_csv_with_units_in_the_header() {
        let day = |d| NaiveDate::from_ymd_opt(2026, 12, d).expect("day");
        let table = Table {
            key: "revenue-usd".into(),
            title: "Net revenue".into(),
            columns: vec![
                Column {
                    name: "Net".into(),
                    unit: Unit::Money("usd".into()),
                    charted: true,
                },
                Column {
                    name: "Plan \"Pro\", yearly".into(),
                    unit: Unit::Count,
                    charted: true,
                },
                Column {
                    name: "=cmd()".into(),
                    unit: Unit::Seconds,
                    charted: true,
                },
            ],
            rows: vec![(day(1), vec![Some(-500), Some(2), None])],
            summary: vec![],
        };
        assert_eq!(
            render(&table),
            "day,\"Net (usd, minor units)\",\"Plan \"\"Pro\"\", yearly\",'=cmd() (seconds)\r\n\
             2026-12-01,-500,2,\r\n"
        );
        assert_eq!(
            file_name("mrr-usd", day(1), day(30)),
            "metrics-mrr-usd-2026-12-01-to-2026-12-30.csv"
        );
    }
}
