//! Reads the OpenAPI document (the one `/api/v1/openapi.json` serves) into what the reference
//! page shows ([`super::pages::ApiReference`]): endpoints in the document's order with their
//! scope (the security requirement's scopes), query parameters, request fields, statuses and
//! answer schemas, then every schema's fields. [`from_document`] is pure.

use serde_json::Value;
use utoipa::OpenApi;

use super::openapi::ApiDoc;
use super::pages::{ApiReference, EndpointDoc, FieldDoc, SchemaDoc, StatusDoc};
use crate::error::AppError;
use crate::web::caller::Visitor;
use crate::web::chrome::Page;

/// `/docs/api`, for anyone; signed-in people keep their navigation.
pub async fn page() -> Result<Page<ApiReference>, AppError> {
    let visitor = Visitor::reading().await?;
    let chrome = if visitor.user.is_some() {
        visitor.signed_in().await?.chrome(None).await?
    } else {
        visitor.chrome().await?
    };
    let document = serde_json::to_value(ApiDoc::openapi()).map_err(|e| {
        AppError::Internal(anyhow::anyhow!("serializing the OpenAPI document: {e}"))
    })?;
    Ok(Page {
        chrome,
        body: from_document(&document),
    })
}

const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

fn text(value: &Value) -> String {
    value.as_str().unwrap_or_default().to_owned()
}

/// The component name a `$ref` points at.
fn ref_name(schema: &Value) -> Option<String> {
    schema["$ref"]
        .as_str()
        .and_then(|r| r.strip_prefix("#/components/schemas/"))
        .map(str::to_owned)
}

/// A schema's type in words, and the component it names (if any).
fn kind(schema: &Value) -> (String, Option<String>) {
    if let Some(name) = ref_name(schema) {
        return (String::new(), Some(name));
    }
    for combinator in ["oneOf", "anyOf"] {
        if let Some(options) = schema[combinator].as_array() {
            let mut words = Vec::new();
            let mut named = None;
            for option in options {
                let (word, name) = kind(option);
                if let Some(name) = name {
                    words.push(name.clone());
                    named = named.or(Some(name));
                } else {
                    words.push(word);
                }
            }
            return (words.join(" or "), named);
        }
    }
    let base = match &schema["type"] {
        Value::String(t) => t.clone(),
        Value::Array(types) => types
            .iter()
            .filter_map(Value::as_str)
            .filter(|t| *t != "null")
            .collect::<Vec<_>>()
            .join(" or "),
        _ => "any".to_owned(),
    };
    let (word, named) = if base == "array" {
        let (item, named) = kind(&schema["items"]);
        let item = named.clone().unwrap_or(item);
        (format!("array of {item}"), named)
    } else {
        match schema["format"].as_str() {
            Some(format) => (format!("{base} ({format})"), None),
            None => (base, None),
        }
    };
    let nullable = schema["type"]
        .as_array()
        .is_some_and(|t| t.iter().any(|t| t == "null"));
    (
        if nullable {
            format!("{word} or null")
        } else {
            word
        },
        named,
    )
}

fn field(name: &str, schema: &Value, required: bool, description: &Value) -> FieldDoc {
    let (word, named) = kind(schema);
    FieldDoc {
        name: name.to_owned(),
        kind: word,
        schema: named,
        required,
        description: text(if description.is_null() {
            &schema["description"]
        } else {
            description
        }),
    }
}

/// The properties of an object schema, in the document's order.
fn fields_of(schema: &Value) -> Vec<FieldDoc> {
    let required: Vec<&str> = schema["required"]
        .as_array()
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    schema["properties"]
        .as_object()
        .map(|properties| {
            properties
                .iter()
                .map(|(name, s)| field(name, s, required.contains(&name.as_str()), &Value::Null))
                .collect()
        })
        .unwrap_or_default()
}

fn json_schema(content: &Value) -> &Value {
    &content["application/json"]["schema"]
}

fn endpoint(path: &str, method: &str, op: &Value, schemas: &Value) -> EndpointDoc {
    let scope = op["security"].as_array().and_then(|requirements| {
        requirements.iter().find_map(|r| {
            r.as_object().and_then(|r| {
                r.values().next().map(|scopes| {
                    scopes
                        .as_array()
                        .map(|s| {
                            s.iter()
                                .filter_map(Value::as_str)
                                .collect::<Vec<_>>()
                                .join(", ")
                        })
                        .filter(|s| !s.is_empty())
                        .unwrap_or_else(|| "any".to_owned())
                })
            })
        })
    });
    let parameters = op["parameters"]
        .as_array()
        .map(|ps| {
            ps.iter()
                .map(|p| {
                    field(
                        p["name"].as_str().unwrap_or_default(),
                        &p["schema"],
                        p["required"].as_bool().unwrap_or(false),
                        &p["description"],
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    let request = ref_name(json_schema(&op["requestBody"]["content"])).map(|name| {
        let fields = fields_of(&schemas[&name]);
        (name, fields)
    });
    let responses = op["responses"]
        .as_object()
        .map(|rs| {
            let mut rs: Vec<StatusDoc> = rs
                .iter()
                .map(|(status, r)| StatusDoc {
                    status: status.clone(),
                    description: text(&r["description"]),
                    schema: ref_name(json_schema(&r["content"])),
                })
                .collect();
            rs.sort_by(|a, b| a.status.cmp(&b.status));
            rs
        })
        .unwrap_or_default();
    EndpointDoc {
        id: op["operationId"]
            .as_str()
            .map_or_else(|| format!("{method}-{path}"), str::to_owned),
        method: method.to_uppercase(),
        path: path.to_owned(),
        summary: text(&op["summary"]),
        description: text(&op["description"]),
        scope,
        parameters,
        request,
        responses,
    }
}

/// What the reference page shows of an OpenAPI document.
pub fn from_document(doc: &Value) -> ApiReference {
    let schemas = &doc["components"]["schemas"];
    let endpoints = doc["paths"]
        .as_object()
        .map(|paths| {
            paths
                .iter()
                .flat_map(|(path, item)| {
                    METHODS
                        .iter()
                        .filter_map(move |m| item.get(*m).map(|op| endpoint(path, m, op, schemas)))
                })
                .collect()
        })
        .unwrap_or_default();
    let schemas = schemas
        .as_object()
        .map(|all| {
            all.iter()
                .map(|(name, s)| SchemaDoc {
                    name: name.clone(),
                    description: text(&s["description"]),
                    fields: fields_of(s),
                })
                .collect()
        })
        .unwrap_or_default();
    let authentication = doc["components"]["securitySchemes"]
        .as_object()
        .and_then(|schemes| schemes.values().next())
        .map(|s| {
            format!(
                "Authenticate with the header Authorization: Bearer KEY. {}",
                text(&s["description"])
            )
        })
        .unwrap_or_default();
    ApiReference {
        title: text(&doc["info"]["title"]),
        version: text(&doc["info"]["version"]),
        description: text(&doc["info"]["description"]),
        authentication,
        endpoints,
        schemas,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reference() -> ApiReference {
        let doc = serde_json::to_value(ApiDoc::openapi()).expect("document");
        from_document(&doc)
    }

    fn endpoint<'a>(r: &'a ApiReference, method: &str, path: &str) -> &'a EndpointDoc {
        r.endpoints
            .iter()
            .find(|e| e.method == method && e.path == path)
            .unwrap_or_else(|| panic!("{method} {path} is listed"))
    }

    #[test]
    fn every_endpoint_is_listed_with_its_scope_fields_and_statuses() {
        let r = reference();
        assert_eq!(r.title, "Billing portal API");
        assert!(r.authentication.contains("Bearer"));
        let plans = endpoint(&r, "GET", "/api/v1/plans");
        assert_eq!(plans.scope, None, "public");
        assert_eq!(plans.summary, "The plan catalog as customers see it.");
        let checkout = endpoint(&r, "POST", "/api/v1/checkout_sessions");
        assert_eq!(checkout.scope.as_deref(), Some("billing:write"));
        let (schema, fields) = checkout.request.as_ref().expect("a body");
        assert_eq!(schema, "CheckoutRequest");
        let plan = fields.iter().find(|f| f.name == "plan").expect("plan");
        assert!(plan.required && plan.kind == "string");
        let success = fields
            .iter()
            .find(|f| f.name == "success_url")
            .expect("url");
        assert!(
            !success.required && success.kind == "string or null",
            "{success:?}"
        );
        let statuses: Vec<&str> = checkout
            .responses
            .iter()
            .map(|s| s.status.as_str())
            .collect();
        for status in ["200", "201", "401", "404", "409", "422", "503"] {
            assert!(statuses.contains(&status), "{status} in {statuses:?}");
        }
        assert_eq!(
            checkout
                .responses
                .iter()
                .find(|s| s.status == "409")
                .and_then(|s| s.schema.as_deref()),
            Some("ErrorAnswer")
        );
        let invoices = endpoint(&r, "GET", "/api/v1/invoices");
        let names: Vec<&str> = invoices
            .parameters
            .iter()
            .map(|p| p.name.as_str())
            .collect();
        assert_eq!(names, ["limit", "starting_after"]);
        assert_eq!(
            endpoint(&r, "POST", "/api/v1/usage").scope.as_deref(),
            Some("usage:write")
        );
        let list = r
            .schemas
            .iter()
            .find(|s| s.name == "InvoiceList")
            .expect("schema");
        let data = list.fields.iter().find(|f| f.name == "data").expect("data");
        assert_eq!(
            (data.kind.as_str(), data.schema.as_deref()),
            ("array of InvoiceAnswer", Some("InvoiceAnswer"))
        );
        let ids: std::collections::HashSet<&str> =
            r.endpoints.iter().map(|e| e.id.as_str()).collect();
        assert_eq!(ids.len(), r.endpoints.len(), "anchors are unique");
    }
}
