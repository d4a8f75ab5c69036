//! The OpenAPI 3.1 document of the JSON API, generated from the handlers' and types' own
//! annotations (so it cannot drift from them) and served at `/api/v1/openapi.json`.

use axum::Json;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

/// Every error answer: `{"error": {...}}`.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct ErrorAnswer {
    pub error: super::ErrorBody,
}

struct BearerKeys;

impl Modify for BearerKeys {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "A per-organization API key (`bpk_...`), created on the organization's API keys page or with `billing-portal api-key create ORG_SLUG`.",
                    ))
                    .build(),
            ),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Billing portal API",
        description = "Record billable actions and ask what an organization may do. Credits are counted in integer milli-credits (1 credit = 1000).",
        version = "1"
    ),
    paths(
        super::usage::record_one,
        super::usage::record_batch,
        super::entitlements::show,
        super::limits::feature,
        super::limits::set_gauge,
    ),
    components(schemas(ErrorAnswer, super::ErrorBody)),
    modifiers(&BearerKeys)
)]
pub struct ApiDoc;

/// `GET /api/v1/openapi.json`
pub async fn document() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}
