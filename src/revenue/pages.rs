//! `/admin/metrics`: the operators' revenue metrics for the last 30, 90 or 365 days (a plain GET
//! form, so it works without JavaScript), each metric as a chart drawn on the server with its
//! table beside it and a CSV download, and the definitions of every figure. Platform admins only.

use leptos::prelude::*;
use leptos_router::hooks::use_query_map;
use serde::{Deserialize, Serialize};

use super::range::RANGES;
use crate::web::chrome::Page;
use crate::web::layout::show_page;
use crate::web::page_error::PageError;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricsView {
    pub days: u32,
    /// `YYYY-MM-DD`.
    pub first: String,
    pub last: String,
    pub tables: Vec<TableView>,
    /// Term and meaning.
    pub definitions: Vec<(String, String)>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TableView {
    pub key: String,
    pub title: String,
    /// Drawn and escaped on the server (see `super::chart`).
    pub chart_svg: String,
    pub chart_label: String,
    /// Series name, colour, dash pattern.
    pub legend: Vec<(String, String, String)>,
    pub headers: Vec<String>,
    /// Day and its formatted figures, newest first.
    pub rows: Vec<(String, Vec<String>)>,
    pub summary: Vec<(String, String)>,
}

#[server(prefix = "/forms", endpoint = "read/admin-metrics")]
pub async fn admin_metrics_page(
    #[server(default)] days: String,
) -> Result<Page<MetricsView>, PageError> {
    Ok(super::forms::metrics_page(&days).await?)
}

#[component]
pub fn AdminMetricsPage() -> impl IntoView {
    let query = use_query_map();
    let page = Resource::new(
        move || query.read().get("days").unwrap_or_default(),
        admin_metrics_page,
    );
    show_page(page, |_| "Admin · Metrics".to_owned(), metrics_view)
}

fn metrics_view(page: MetricsView, _token: String) -> impl IntoView {
    let days = page.days;
    let options = RANGES
        .iter()
        .map(|r| {
            view! { <option value=r.to_string() selected=*r == days>{format!("Last {r} days")}</option> }
        })
        .collect_view();
    let contents = page
        .tables
        .iter()
        .map(|t| {
            view! { <li><a href=format!("#metric-{}", t.key)>{t.title.clone()}</a></li> }
        })
        .collect_view();
    let tables = page
        .tables
        .into_iter()
        .map(|t| metric_section(t, days))
        .collect_view();
    let definitions = page
        .definitions
        .into_iter()
        .map(|(term, meaning)| view! { <dt>{term}</dt><dd>{meaning}</dd> })
        .collect_view();
    view! {
        <section class="page-heading">
            <h1>"Metrics"</h1>
            <p class="muted">
                {format!("{} to {} (UTC), from the portal's own records; today is live.", page.first, page.last)}
                " · " <a href="/admin">"Organizations"</a>
                " · " <a href="/admin/webhooks">"Webhook events"</a>
            </p>
        </section>
        <form method="get" action="/admin/metrics" class="search">
            <label for="days">"Range"</label>
            <select id="days" name="days">{options}</select>
            <button type="submit">"Show"</button>
        </form>
        <nav aria-label="Metrics" class="card"><ul class="metric-contents">{contents}</ul></nav>
        {tables}
        <section class="card" aria-labelledby="definitions">
            <h2 id="definitions">"Definitions"</h2>
            <dl class="definitions">{definitions}</dl>
        </section>
    }
}

fn metric_section(t: TableView, days: u32) -> impl IntoView {
    let heading = format!("metric-{}", t.key);
    let csv = format!("/admin/metrics/csv/{}?days={days}", t.key);
    let summary = t
        .summary
        .into_iter()
        .map(|(label, value)| view! { <div><dt>{label}</dt><dd>{value}</dd></div> })
        .collect_view();
    let legend = t
        .legend
        .into_iter()
        .map(|(name, colour, dash)| {
            view! {
                <li>
                    <svg width="24" height="10" aria-hidden="true">
                        <line x1="0" x2="24" y1="5" y2="5" stroke=colour stroke-width="2" stroke-dasharray=dash></line>
                    </svg>
                    {name}
                </li>
            }
        })
        .collect_view();
    let headers = t
        .headers
        .into_iter()
        .map(|h| view! { <th scope="col">{h}</th> })
        .collect_view();
    let rows = t
        .rows
        .into_iter()
        .map(|(day, cells)| {
            let cells = cells
                .into_iter()
                .map(|c| view! { <td>{c}</td> })
                .collect_view();
            view! { <tr><th scope="row">{day}</th>{cells}</tr> }
        })
        .collect_view();
    view! {
        <section class="card metric" id=heading.clone() aria-labelledby=format!("{heading}-title")>
            <h2 id=format!("{heading}-title")>{t.title.clone()}</h2>
            <dl class="metric-summary">{summary}</dl>
            <div class="metric-body">
                <figure class="metric-chart">
                    <div inner_html=t.chart_svg></div>
                    <figcaption><ul class="legend" aria-label=format!("Legend of {}", t.chart_label)>{legend}</ul></figcaption>
                </figure>
                <div class="metric-table" tabindex="0" role="region" aria-label=format!("{} per day", t.title)>
                    <table>
                        <caption>{format!("{} per day, newest first", t.title)}</caption>
                        <thead><tr><th scope="col">"Day"</th>{headers}</tr></thead>
                        <tbody>{rows}</tbody>
                    </table>
                </div>
            </div>
            <p><a href=csv>{format!("Download {} as CSV", t.title)}</a></p>
        </section>
    }
}
