//! The organization's gauges (members, agents: counts now rather than sums per period) against
//! its plan's limits, as a small block any page of the organization can place with
//! `<GaugeUsage slug=... />`. It has its own read function, so a page shows it without carrying
//! its data; with a catalog that has no gauges the read answers at once with nothing and the
//! block is not drawn.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use crate::web::page_error::PageError;

/// One gauge's line.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GaugeLine {
    pub key: String,
    pub name: String,
    pub used: u64,
    /// `None` when unlimited.
    pub limit: Option<u64>,
    /// "2 of 3" or "2 (unlimited)".
    pub summary: String,
    /// How much of the bar is filled, in percent with one decimal.
    pub percent: String,
    /// "ok", "near" or "full".
    pub state: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GaugeUsageView {
    pub plan_name: String,
    /// The organization's plans page.
    pub plans_link: String,
    pub lines: Vec<GaugeLine>,
}

/// The gauges of the organization `slug`, for its members.
#[server(prefix = "/forms", endpoint = "read/gauges")]
pub async fn gauge_usage(#[server(default)] slug: String) -> Result<GaugeUsageView, PageError> {
    Ok(server::read(&slug).await?)
}

/// Gauge usage and limits, with a link to the plans; nothing when the plan has no gauges.
#[component]
pub fn GaugeUsage(slug: String) -> impl IntoView {
    let data = Resource::new(move || slug.clone(), gauge_usage);
    view! {
        <Suspense fallback=|| ()>
            {move || Suspend::new(async move {
                data.await.ok().and_then(gauge_block)
            })}
        </Suspense>
    }
}

/// The "Seats and limits" card; nothing when the catalog has no gauges (no lines).
pub fn gauge_block(view: GaugeUsageView) -> Option<impl IntoView> {
    if view.lines.is_empty() {
        return None;
    }
    let GaugeUsageView {
        plan_name,
        plans_link,
        lines,
    } = view;
    Some(view! {
        <section class="card" aria-labelledby="gauges-heading" data-testid="gauge-usage">
            <h2 id="gauges-heading">"Seats and limits"</h2>
            <p class="muted">
                {format!("What the {plan_name} plan allows at any moment. ")}
                <a href=plans_link>"Compare plans"</a>
            </p>
            {lines.into_iter().map(gauge_line).collect_view()}
        </section>
    })
}

fn gauge_line(line: GaugeLine) -> impl IntoView {
    let label = format!("{} in use", line.name);
    let text = format!("{} {}", line.summary, line.name);
    let bar = line.limit.map(|limit| {
        view! {
            <div class=format!("bar {}", line.state) role="progressbar" aria-label=label
                aria-valuemin="0" aria-valuemax=limit.to_string() aria-valuenow=line.used.to_string()
                aria-valuetext=text>
                <svg class="bar-fill" viewBox="0 0 100 1" preserveAspectRatio="none" aria-hidden="true">
                    <rect width=line.percent.clone() height="1"></rect>
                </svg>
            </div>
        }
    });
    view! {
        <div class="meter" data-gauge=line.key>
            <div class="meter-label">
                <span class="meter-name">{line.name}</span>
                <span class="meter-numbers">{line.summary}</span>
            </div>
            {bar}
        </div>
    }
}

#[cfg(feature = "ssr")]
pub use server::of_org;

#[cfg(feature = "ssr")]
mod server {
    use std::sync::Arc;

    use chrono::{DateTime, Utc};

    use super::{GaugeLine, GaugeUsageView};
    use crate::billing::catalog::{Catalog, Limit, Plan};
    use crate::billing::limits::{limit_of, GaugeValues};
    use crate::billing::subscription::{effective_plan, Stored};
    use crate::error::AppError;
    use crate::web::caller::{dep, Visitor};
    use sqlx::PgPool;
    use uuid::Uuid;

    pub async fn read(slug: &str) -> Result<GaugeUsageView, AppError> {
        let catalog = dep::<Arc<Catalog>>()?;
        // The catalog is public: without gauges there is nothing to read or to check.
        if catalog.gauges().next().is_none() {
            return Ok(GaugeUsageView::default());
        }
        let member = Visitor::reading().await?.signed_in().await?.member(slug)?;
        let db = member.signed_in.db();
        let stored = crate::billing::repo::subscription(db, member.org_id())
            .await?
            .map(|(s, _)| s);
        of_org(
            db,
            &catalog,
            member.org_id(),
            stored.as_ref(),
            member.slug(),
            Utc::now(),
        )
        .await
    }

    /// The block for an organization whose subscription the caller has read already (the
    /// dashboard reads it with everything else in one statement); empty without gauges.
    pub async fn of_org(
        db: &PgPool,
        catalog: &Catalog,
        org_id: Uuid,
        stored: Option<&Stored>,
        slug: &str,
        now: DateTime<Utc>,
    ) -> Result<GaugeUsageView, AppError> {
        if catalog.gauges().next().is_none() {
            return Ok(GaugeUsageView::default());
        }
        let values = crate::usage::gauges::values(db, org_id).await?;
        let plan = effective_plan(catalog, stored, now);
        Ok(view_of(catalog, plan, &values, slug))
    }

    pub fn view_of(
        catalog: &Catalog,
        plan: &Plan,
        values: &GaugeValues,
        slug: &str,
    ) -> GaugeUsageView {
        let lines = catalog
            .gauges()
            .map(|(meter, gauge)| {
                let used = values.value(gauge, &meter.key);
                let limit = match limit_of(plan, &meter.key) {
                    Limit::Count(n) => Some(n),
                    Limit::Unlimited => None,
                };
                let (summary, percent, state) = match limit {
                    Some(n) => {
                        let percent = if n == 0 {
                            100.0
                        } else {
                            (used as f64 * 100.0 / n as f64).min(100.0)
                        };
                        let state = if used >= n {
                            "full"
                        } else if percent >= 80.0 {
                            "near"
                        } else {
                            "ok"
                        };
                        (format!("{used} of {n}"), percent, state)
                    }
                    None => (format!("{used} (unlimited)"), 0.0, "ok"),
                };
                GaugeLine {
                    key: meter.key.clone(),
                    name: meter.name.clone(),
                    used,
                    limit,
                    summary,
                    percent: format!("{percent:.1}"),
                    state: state.to_owned(),
                }
            })
            .collect();
        GaugeUsageView {
            plan_name: plan.name.clone(),
            plans_link: format!("/orgs/{slug}/plans"),
            lines,
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;
        use crate::billing::catalog::parse;

        #[test]
        fn each_gauge_reads_as_its_count_against_the_limit() {
            let path = concat!(env!("CARGO_MANIFEST_DIR"), "/plans/seats.toml");
            let catalog = parse(path, &std::fs::read_to_string(path).expect("file")).expect("ok");
            let mut values = GaugeValues::default();
            values.reported.insert("agents".into(), 4);
            values.members = 3;
            let starter = catalog.plan("starter").expect("plan");
            let view = view_of(&catalog, starter, &values, "acme");
            let summaries: Vec<(&str, &str, &str)> = view
                .lines
                .iter()
                .map(|l| (l.key.as_str(), l.summary.as_str(), l.state.as_str()))
                .collect();
            assert_eq!(
                summaries,
                vec![("agents", "4 of 5", "near"), ("users", "3 of 3", "full")]
            );
            assert_eq!(view.plans_link, "/orgs/acme/plans");
            let enterprise = catalog.plan("enterprise").expect("plan");
            let view = view_of(&catalog, enterprise, &values, "acme");
            assert_eq!(view.lines[1].summary, "3 (unlimited)");
            assert_eq!(view.lines[1].limit, None);
        }
    }
}
