//! The API reference page, `/docs/api`: every endpoint with its scope, parameters, request and
//! answer fields and statuses, and every schema, generated at request time from the OpenAPI
//! document (`super::reference` reads it on the server), so it cannot drift from the API. Public,
//! plain HTML: it works without JavaScript, with a heading per endpoint and captioned tables.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use crate::web::chrome::Page;
use crate::web::layout::show_page;
use crate::web::page_error::PageError;

/// The reference, as the page shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiReference {
    pub title: String,
    pub version: String,
    pub description: String,
    /// How to authenticate, from the document's security scheme.
    pub authentication: String,
    pub endpoints: Vec<EndpointDoc>,
    pub schemas: Vec<SchemaDoc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndpointDoc {
    /// The operation id, used as the section's anchor.
    pub id: String,
    pub method: String,
    pub path: String,
    pub summary: String,
    pub description: String,
    /// The scope the key needs; `None` for a public endpoint.
    pub scope: Option<String>,
    pub parameters: Vec<FieldDoc>,
    /// The request body's schema name and its fields.
    pub request: Option<(String, Vec<FieldDoc>)>,
    pub responses: Vec<StatusDoc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldDoc {
    pub name: String,
    /// In words: `string`, `integer (int64) or null`, `array of InvoiceAnswer`.
    pub kind: String,
    /// A schema the kind names, to link to.
    pub schema: Option<String>,
    pub required: bool,
    pub description: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusDoc {
    pub status: String,
    pub description: String,
    /// The answer's schema name, when it has a JSON body.
    pub schema: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SchemaDoc {
    pub name: String,
    pub description: String,
    pub fields: Vec<FieldDoc>,
}

#[server(prefix = "/forms", endpoint = "read/api-reference")]
pub async fn api_reference_page() -> Result<Page<ApiReference>, PageError> {
    Ok(super::reference::page().await?)
}

#[component]
pub fn ApiReferencePage() -> impl IntoView {
    let page = Resource::new(|| (), |_| api_reference_page());
    show_page(page, |r| format!("{} reference", r.title), reference_view)
}

fn schema_link(name: String) -> impl IntoView {
    let href = format!("#schema-{name}");
    view! { <a href=href><code>{name}</code></a> }
}

/// A table of fields, captioned so each table is named for screen readers.
fn fields_table(caption: String, fields: Vec<FieldDoc>) -> impl IntoView {
    let rows = fields
        .into_iter()
        .map(|f| {
            let kind = match f.schema {
                Some(schema) => {
                    view! { {schema_link(schema)}" "<span class="muted">{f.kind}</span> }.into_any()
                }
                None => view! { <code>{f.kind}</code> }.into_any(),
            };
            view! {
                <tr>
                    <th scope="row"><code>{f.name}</code></th>
                    <td>{kind}</td>
                    <td>{if f.required { "yes" } else { "no" }}</td>
                    <td>{f.description}</td>
                </tr>
            }
        })
        .collect_view();
    view! {
        <table>
            <caption>{caption}</caption>
            <thead><tr>
                <th scope="col">"Field"</th><th scope="col">"Type"</th>
                <th scope="col">"Required"</th><th scope="col">"Description"</th>
            </tr></thead>
            <tbody>{rows}</tbody>
        </table>
    }
}

fn endpoint_view(e: EndpointDoc) -> impl IntoView {
    let heading = format!("op-{}", e.id);
    let labelled = heading.clone();
    let scope = match e.scope {
        Some(scope) => view! { "API key with the "<code>{scope}</code>" scope" }.into_any(),
        None => view! { "none (public, no API key)" }.into_any(),
    };
    let parameters = (!e.parameters.is_empty())
        .then(|| fields_table("Query parameters".to_owned(), e.parameters));
    let request = e.request.map(|(schema, fields)| {
        view! {
            <p>"Request body (JSON): "{schema_link(schema.clone())}</p>
            {fields_table(format!("Request fields ({schema})"), fields)}
        }
    });
    let responses = e
        .responses
        .into_iter()
        .map(|r| {
            view! {
                <tr>
                    <th scope="row">{r.status}</th>
                    <td>{r.description}</td>
                    <td>{r.schema.map(schema_link)}</td>
                </tr>
            }
        })
        .collect_view();
    view! {
        <section class="card api-endpoint" aria-labelledby=labelled>
            <h2 id=heading><code>{format!("{} {}", e.method, e.path)}</code></h2>
            <p><strong>{e.summary}</strong></p>
            {(!e.description.is_empty()).then(|| view! { <p>{e.description}</p> })}
            <p>"Authentication: "{scope}</p>
            {parameters}
            {request}
            <table>
                <caption>"Answers"</caption>
                <thead><tr>
                    <th scope="col">"Status"</th><th scope="col">"Meaning"</th><th scope="col">"Body"</th>
                </tr></thead>
                <tbody>{responses}</tbody>
            </table>
        </section>
    }
}

fn reference_view(r: ApiReference, _token: String) -> impl IntoView {
    let contents = r
        .endpoints
        .iter()
        .map(|e| {
            let href = format!("#op-{}", e.id);
            view! { <li><a href=href><code>{format!("{} {}", e.method, e.path)}</code></a>" "{e.summary.clone()}</li> }
        })
        .collect_view();
    let endpoints = r.endpoints.into_iter().map(endpoint_view).collect_view();
    let schemas = r
        .schemas
        .into_iter()
        .map(|s| {
            let id = format!("schema-{}", s.name);
            let labelled = id.clone();
            view! {
                <section class="api-schema" aria-labelledby=labelled>
                    <h3 id=id>{s.name.clone()}</h3>
                    {(!s.description.is_empty()).then(|| view! { <p>{s.description}</p> })}
                    {fields_table(format!("Fields of {}", s.name), s.fields)}
                </section>
            }
        })
        .collect_view();
    view! {
        <section class="page-heading">
            <h1>{format!("{} reference", r.title)}</h1>
            <p class="muted">{format!("Version {}. Generated from the ", r.version)}
                <a href="/api/v1/openapi.json">"OpenAPI document"</a>"."</p>
            <p>{r.description}</p>
            <p>{r.authentication}</p>
        </section>
        <nav class="card" aria-labelledby="endpoints-heading">
            <h2 id="endpoints-heading">"Endpoints"</h2>
            <ul>{contents}</ul>
        </nav>
        {endpoints}
        <section class="card" aria-labelledby="schemas-heading">
            <h2 id="schemas-heading">"Schemas"</h2>
            {schemas}
        </section>
    }
}
