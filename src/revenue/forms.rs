//! What the metrics page's read function does on the server, behind the platform admin guard:
//! reads the range, asks the service, and turns its tables into what the page shows.

use std::sync::Arc;

use chrono::Utc;

use super::pages::{MetricsView, TableView};
use super::{chart, definitions, range, service, tables::Table};
use crate::billing::catalog::Catalog;
use crate::error::AppError;
use crate::web::caller::{dep, Visitor};
use crate::web::chrome::Page;

fn table_view(t: Table) -> TableView {
    TableView {
        chart_svg: chart::svg(&t),
        chart_label: chart::label(&t),
        legend: chart::legend(&t)
            .into_iter()
            .map(|(name, colour, dash)| (name, colour.to_owned(), dash.to_owned()))
            .collect(),
        headers: t.columns.iter().map(|c| c.name.clone()).collect(),
        // Newest first on the page; the CSV keeps the days in order.
        rows: t
            .rows
            .iter()
            .rev()
            .map(|(day, values)| {
                let cells = values
                    .iter()
                    .zip(&t.columns)
                    .map(|(v, c)| c.unit.show(*v))
                    .collect();
                (day.format("%Y-%m-%d").to_string(), cells)
            })
            .collect(),
        key: t.key,
        title: t.title,
        summary: t.summary,
    }
}

/// `/admin/metrics?days=...`
pub async fn metrics_page(days: &str) -> Result<Page<MetricsView>, AppError> {
    let admin = Visitor::reading()
        .await?
        .signed_in()
        .await?
        .platform_admin()?;
    let range = range::parse(days).map_err(AppError::BadRequest)?;
    let catalog = dep::<Arc<Catalog>>()?;
    let metrics = service::metrics(admin.db(), &catalog, range, Utc::now().date_naive())
        .await
        .map_err(AppError::Internal)?;
    Ok(Page {
        chrome: admin.chrome(None).await?,
        body: MetricsView {
            days: range,
            first: metrics.first.format("%Y-%m-%d").to_string(),
            last: metrics.last.format("%Y-%m-%d").to_string(),
            tables: metrics.tables.into_iter().map(table_view).collect(),
            definitions: definitions::DEFINITIONS
                .iter()
                .map(|d| (d.term.to_owned(), d.meaning.to_owned()))
                .collect(),
        },
    })
}
