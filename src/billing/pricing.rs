//! `/pricing`: the public price list, from the catalog (no login). A card per plan with its price,
//! interval and trial, then the plans side by side in a table (limits and features, with row and
//! column headers). "Start free trial" is a plain link to sign-up carrying the plan's key; sign-up
//! checks the key against the catalog again and starts that plan's trial for the new
//! organization (`accounts::forms::sign_up`).

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use crate::web::chrome::Page;
use crate::web::layout::show_page;
use crate::web::page_error::PageError;

/// What the pricing page shows.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PricingView {
    pub trial_days: u32,
    pub plans: Vec<PricingPlan>,
    /// The comparison table's rows, one cell per plan in `plans` order.
    pub rows: Vec<CompareRow>,
    /// "500 credits for $20.00", in the credits model.
    pub credit_pack: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PricingPlan {
    pub key: String,
    pub name: String,
    /// "$29.00", "Free", "Contact sales".
    pub price: String,
    /// "per month", or empty.
    pub interval: String,
    pub offer: PricingOffer,
}

/// What a plan's card offers a visitor.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum PricingOffer {
    /// Sign up, then the plan's trial starts: the link to sign-up with the plan.
    Trial {
        href: String,
    },
    /// Sign up (the free plan, or a paid plan when the catalog has no trial).
    #[default]
    SignUp,
    ContactSales,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompareRow {
    pub label: String,
    pub cells: Vec<Cell>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Cell {
    Text(String),
    Included,
    NotIncluded,
}

impl Default for Cell {
    fn default() -> Self {
        Cell::Text(String::new())
    }
}

#[server(prefix = "/forms", endpoint = "read/pricing")]
pub async fn pricing_page() -> Result<Page<PricingView>, PageError> {
    Ok(server::pricing_page().await?)
}

#[component]
pub fn PricingPage() -> impl IntoView {
    let page = Resource::new(|| (), |_| pricing_page());
    show_page(page, |_| "Pricing".to_owned(), pricing_view)
}

fn pricing_view(view: PricingView, _token: String) -> impl IntoView {
    let PricingView {
        trial_days,
        plans,
        rows,
        credit_pack,
    } = view;
    let cards = plans
        .iter()
        .cloned()
        .map(|plan| {
            let action = match plan.offer {
                PricingOffer::Trial { href } => {
                    let label = format!("Start a free {trial_days}-day trial of {}", plan.name);
                    view! { <a class="button" href=href aria-label=label>"Start free trial"</a> }
                        .into_any()
                }
                PricingOffer::SignUp => {
                    view! { <a class="button secondary" href="/signup">"Sign up"</a> }.into_any()
                }
                PricingOffer::ContactSales => view! {
                    <a class="button secondary" href="mailto:sales@example.com">"Contact sales"</a>
                }
                .into_any(),
            };
            view! {
                <article class="card plan" data-plan=plan.key.clone()>
                    <h2>{plan.name.clone()}</h2>
                    <p class="price">{plan.price.clone()} " " <span class="muted">{plan.interval.clone()}</span></p>
                    {action}
                </article>
            }
        })
        .collect_view();
    let heads = plans
        .iter()
        .map(|p| view! { <th scope="col">{p.name.clone()}</th> })
        .collect_view();
    let body = rows
        .into_iter()
        .map(|row| {
            view! {
                <tr>
                    <th scope="row">{row.label}</th>
                    {row.cells.into_iter().map(|cell| match cell {
                        Cell::Text(text) => view! { <td>{text}</td> }.into_any(),
                        Cell::Included => view! { <td>"✓" <span class="visually-hidden">"Included"</span></td> }.into_any(),
                        Cell::NotIncluded => view! { <td>"–" <span class="visually-hidden">"Not included"</span></td> }.into_any(),
                    }).collect_view()}
                </tr>
            }
        })
        .collect_view();
    let trial_note = (trial_days > 0).then(|| {
        view! {
            <p>{format!(
                "Every paid plan starts with a {trial_days}-day free trial, without a card. \
                 Add a card before it ends to keep the plan; otherwise you move to the free plan."
            )}</p>
        }
    });
    view! {
        <section class="page-heading">
            <h1>"Plans and pricing"</h1>
            {trial_note}
        </section>
        <div class="plans">{cards}</div>
        <section class="card" aria-labelledby="compare-heading">
            <h2 id="compare-heading">"Compare plans"</h2>
            <table>
                <caption class="visually-hidden">"Limits and features of each plan"</caption>
                <thead><tr><td></td>{heads}</tr></thead>
                <tbody>{body}</tbody>
            </table>
            {credit_pack.map(|pack| view! { <p class="muted">{format!("Extra usage credits: {pack}.")}</p> })}
        </section>
    }
}

#[cfg(feature = "ssr")]
mod server {
    use std::sync::Arc;

    use super::{Cell, CompareRow, PricingOffer, PricingPlan, PricingView};
    use crate::billing::catalog::{Catalog, Limit, Model, Price};
    use crate::error::AppError;
    use crate::text::url_escape;
    use crate::web::caller::{dep, Visitor};
    use crate::web::chrome::Page;
    use crate::web::format::money;

    pub async fn pricing_page() -> Result<Page<PricingView>, AppError> {
        let visitor = Visitor::reading().await?;
        let catalog = dep::<Arc<Catalog>>()?;
        Ok(Page {
            chrome: visitor.chrome().await?,
            body: view_of(&catalog),
        })
    }

    fn limit_cell(limit: Option<&Limit>) -> Cell {
        match limit {
            Some(Limit::Count(n)) => Cell::Text(n.to_string()),
            Some(Limit::Unlimited) => Cell::Text("Unlimited".to_owned()),
            None => Cell::NotIncluded,
        }
    }

    pub fn view_of(catalog: &Catalog) -> PricingView {
        let plans = catalog
            .plans
            .iter()
            .map(|plan| {
                let (price, interval) = match &plan.price {
                    Price::Free => ("Free".to_owned(), String::new()),
                    Price::Recurring {
                        cents, interval, ..
                    } => (
                        money(*cents, &catalog.currency),
                        format!("per {}", interval.as_str()),
                    ),
                    Price::ContactSales => ("Contact sales".to_owned(), String::new()),
                };
                let offer = match &plan.price {
                    Price::Recurring { .. } if catalog.trial_days > 0 => PricingOffer::Trial {
                        href: format!("/signup?plan={}", url_escape(&plan.key)),
                    },
                    Price::ContactSales => PricingOffer::ContactSales,
                    _ => PricingOffer::SignUp,
                };
                PricingPlan {
                    key: plan.key.clone(),
                    name: plan.name.clone(),
                    price,
                    interval,
                    offer,
                }
            })
            .collect();
        let mut rows = Vec::new();
        for meter in catalog.meter_keys() {
            let name = catalog.meter_name(meter);
            let label = match (catalog.model, catalog.gauge(meter)) {
                (Model::HybridCredits, _) => format!("{name} actions included per period"),
                (_, Some(_)) => format!("{name} (at any time)"),
                (_, None) => name.to_owned(),
            };
            rows.push(CompareRow {
                label,
                cells: catalog
                    .plans
                    .iter()
                    .map(|p| limit_cell(p.limits.get(meter)))
                    .collect(),
            });
        }
        for feature in &catalog.features {
            rows.push(CompareRow {
                label: feature.name.clone(),
                cells: catalog
                    .plans
                    .iter()
                    .map(|p| {
                        if p.features.contains(&feature.key) {
                            Cell::Included
                        } else {
                            Cell::NotIncluded
                        }
                    })
                    .collect(),
            });
        }
        rows.push(CompareRow {
            label: "Free trial".to_owned(),
            cells: catalog
                .plans
                .iter()
                .map(|p| {
                    if p.is_paid() && catalog.trial_days > 0 {
                        Cell::Text(format!("{} days", catalog.trial_days))
                    } else {
                        Cell::NotIncluded
                    }
                })
                .collect(),
        });
        PricingView {
            trial_days: catalog.trial_days,
            plans,
            rows,
            credit_pack: catalog.credit_pack.as_ref().map(|pack| {
                format!(
                    "{} credits for {}",
                    pack.credits,
                    money(pack.price_cents, &catalog.currency)
                )
            }),
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;
        use crate::billing::catalog::parse;

        fn catalog(name: &str) -> Catalog {
            let path = format!("{}/plans/{name}.toml", env!("CARGO_MANIFEST_DIR"));
            parse(&path, &std::fs::read_to_string(&path).expect("file")).expect("valid")
        }

        #[test]
        fn the_price_list_comes_from_the_catalog() {
            let view = view_of(&catalog("seats"));
            let prices: Vec<(&str, &str, &str)> = view
                .plans
                .iter()
                .map(|p| (p.key.as_str(), p.price.as_str(), p.interval.as_str()))
                .collect();
            assert_eq!(
                prices,
                vec![
                    ("free", "Free", ""),
                    ("starter", "$29.00", "per month"),
                    ("professional", "$99.00", "per month"),
                    ("enterprise", "Contact sales", ""),
                ]
            );
            assert_eq!(
                view.plans[1].offer,
                PricingOffer::Trial {
                    href: "/signup?plan=starter".into()
                }
            );
            assert_eq!(view.plans[0].offer, PricingOffer::SignUp);
            assert_eq!(view.plans[3].offer, PricingOffer::ContactSales);
            let users = view
                .rows
                .iter()
                .find(|r| r.label == "Users (at any time)")
                .expect("users row");
            assert_eq!(users.cells[2], Cell::Text("10".into()));
            assert_eq!(users.cells[3], Cell::Text("Unlimited".into()));
            let trial = view.rows.last().expect("trial row");
            assert_eq!(trial.cells[1], Cell::Text("7 days".into()));
            assert_eq!(trial.cells[0], Cell::NotIncluded);
            assert_eq!(view.credit_pack, None);

            let features = view_of(&catalog("features"));
            let white_label = features
                .rows
                .iter()
                .find(|r| r.label == "White-label reports")
                .expect("feature row");
            assert_eq!(
                white_label.cells,
                vec![Cell::NotIncluded, Cell::NotIncluded, Cell::Included]
            );
            let hybrid = view_of(&catalog("hybrid"));
            assert_eq!(
                hybrid.credit_pack.as_deref(),
                Some("500 credits for $20.00")
            );
            assert_eq!(hybrid.rows[0].label, "Small actions included per period");
        }
    }
}
