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

/// The 409 of the usage endpoints: an action whose own `idempotency_key` was used for another
/// tier (an [`ActionAnswer`](super::usage::ActionAnswer)), or an `Idempotency-Key` header reused
/// or still in flight (an [`ErrorAnswer`]). `anyOf`, since an action answer with its error also
/// has the error answer's shape.
pub struct UsageConflict;

impl utoipa::PartialSchema for UsageConflict {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::AnyOfBuilder;
        use utoipa::openapi::Ref;
        AnyOfBuilder::new()
            .item(Ref::from_schema_name("ActionAnswer"))
            .item(Ref::from_schema_name("ErrorAnswer"))
            .into()
    }
}

impl utoipa::ToSchema for UsageConflict {
    fn schemas(
        schemas: &mut Vec<(
            String,
            utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>,
        )>,
    ) {
        use utoipa::PartialSchema;
        schemas.push((
            "ActionAnswer".to_owned(),
            super::usage::ActionAnswer::schema(),
        ));
        schemas.push(("ErrorAnswer".to_owned(), ErrorAnswer::schema()));
        <super::usage::ActionAnswer as utoipa::ToSchema>::schemas(schemas);
        <ErrorAnswer as utoipa::ToSchema>::schemas(schemas);
    }
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
        description = "Record billable actions, ask what an organization may do, and run its billing: plans, subscription, Checkout, plan changes, invoices. Credits are counted in integer milli-credits (1 credit = 1000). Every error answers `{\"error\": {\"code\", \"message\", \"field\"?}}` with the HTTP status saying what failed.",
        version = "1"
    ),
    paths(
        super::usage::record_one,
        super::usage::record_batch,
        super::entitlements::show,
        super::plans::list,
        super::billing::show,
        super::billing::start_checkout,
        super::billing::change_plan,
        super::billing::cancel,
        super::billing::resume,
        super::billing::open_portal,
        super::invoices::list,
        super::usage_summary::show,
        super::limits::feature,
        super::limits::set_gauge,
    ),
    components(schemas(ErrorAnswer, super::ErrorBody, UsageConflict)),
    modifiers(&BearerKeys)
)]
pub struct ApiDoc;

/// `GET /api/v1/openapi.json`
pub async fn document() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}
