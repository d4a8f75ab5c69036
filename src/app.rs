//! The Leptos application: one [`App`] whose `<Routes>` name every page, and the HTML [`shell`]
//! the server renders it in. Every route renders with `SsrMode::Async`: the server waits for the
//! page's data and sends the whole page, so a browser without JavaScript gets everything, with
//! the right status and redirects. Pages are the components each domain exports; the page data
//! comes from read functions that check who is asking.

use leptos::prelude::*;
use leptos_meta::{provide_meta_context, MetaTags};
use leptos_router::components::{Route, Router, Routes};
use leptos_router::{path, SsrMode};

use crate::accounts::pages::{HomePage, LoginPage, SignupPage};
use crate::admin::pages::{AdminOrgPage, AdminPage, AdminWebhookPage, AdminWebhooksPage};
use crate::api::keys_page::ApiKeysPage;
use crate::api::pages::ApiReferencePage;
use crate::audit::pages::{AdminAuditPage, OrgAuditPage};
use crate::billing::pages::{
    BillingPage, ChangePlanPage, CheckoutCanceledPage, CheckoutSuccessPage, PlansPage,
};
use crate::billing::pricing::PricingPage;
use crate::notify::pages::{
    AdminMailMessagePage, AdminMailPage, NotificationSettingsPage, OrgNotificationsPage,
    UnsubscribePage,
};
use crate::orgs::invitation_pages::InvitationPage;
use crate::orgs::pages::{NewOrgPage, OrgPage};
use crate::revenue::pages::AdminMetricsPage;
use crate::sync::pages::AdminDriftPage;
use crate::usage::pages::{CreditsPage, UsagePage};

/// The document around the application, rendered on the server for every page.
pub fn shell(options: LeptosOptions) -> impl IntoView {
    #[cfg(feature = "ssr")]
    page_policy::send_with_nonce();
    let scripts = browser_bundle_exists(&options);
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8" />
                <meta name="viewport" content="width=device-width, initial-scale=1" />
                <link rel="stylesheet" href="/pkg/billing-portal.css" />
                <link rel="icon" href="/favicon.svg" type="image/svg+xml" />
                {scripts.then(|| view! { <HydrationScripts options=options.clone() /> })}
                <MetaTags />
            </head>
            <body>
                <App />
            </body>
        </html>
    }
}

/// Whether the browser bundle (the `hydrate` build) was built into the site root. Pages work
/// without it; with it, forms answer without reloading. Looked up once: the folder does not
/// change while the server runs.
fn browser_bundle_exists(options: &LeptosOptions) -> bool {
    #[cfg(feature = "ssr")]
    {
        static BUILT: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
        *BUILT.get_or_init(|| {
            std::path::Path::new(options.site_root.as_ref())
                .join(options.site_pkg_dir.as_ref())
                .join(format!("{}.js", options.output_name))
                .exists()
        })
    }
    #[cfg(not(feature = "ssr"))]
    {
        let _ = options;
        true
    }
}

#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    view! {
        <Router>
            <Routes fallback=|| "We could not find that page.">
                <Route path=path!("/") view=HomePage ssr=SsrMode::Async />
                <Route path=path!("/signup") view=SignupPage ssr=SsrMode::Async />
                <Route path=path!("/login") view=LoginPage ssr=SsrMode::Async />
                <Route path=path!("/pricing") view=PricingPage ssr=SsrMode::Async />
                <Route path=path!("/orgs/:slug/billing") view=BillingPage ssr=SsrMode::Async />
                <Route path=path!("/orgs/:slug/plans") view=PlansPage ssr=SsrMode::Async />
                <Route path=path!("/orgs/:slug/billing/change") view=ChangePlanPage ssr=SsrMode::Async />
                <Route path=path!("/billing/success") view=CheckoutSuccessPage ssr=SsrMode::Async />
                <Route path=path!("/billing/cancel") view=CheckoutCanceledPage ssr=SsrMode::Async />
                <Route path=path!("/orgs/:slug/usage") view=UsagePage ssr=SsrMode::Async />
                <Route path=path!("/orgs/:slug/credits") view=CreditsPage ssr=SsrMode::Async />
                <Route path=path!("/orgs/:slug/api-keys") view=ApiKeysPage ssr=SsrMode::Async />
                <Route path=path!("/docs/api") view=ApiReferencePage ssr=SsrMode::Async />
                <Route path=path!("/admin") view=AdminPage ssr=SsrMode::Async />
                <Route path=path!("/admin/orgs/:slug") view=AdminOrgPage ssr=SsrMode::Async />
                <Route path=path!("/admin/webhooks") view=AdminWebhooksPage ssr=SsrMode::Async />
                <Route path=path!("/admin/metrics") view=AdminMetricsPage ssr=SsrMode::Async />
                <Route path=path!("/admin/webhooks/:id") view=AdminWebhookPage ssr=SsrMode::Async />
                <Route path=path!("/admin/drift") view=AdminDriftPage ssr=SsrMode::Async />
                <Route path=path!("/admin/audit") view=AdminAuditPage ssr=SsrMode::Async />
                <Route path=path!("/orgs/:slug/audit") view=OrgAuditPage ssr=SsrMode::Async />
                <Route path=path!("/orgs/new") view=NewOrgPage ssr=SsrMode::Async />
                <Route path=path!("/orgs/:slug") view=OrgPage ssr=SsrMode::Async />
                <Route path=path!("/invitations/:token") view=InvitationPage ssr=SsrMode::Async />
                <Route path=path!("/settings/notifications") view=NotificationSettingsPage ssr=SsrMode::Async />
                <Route path=path!("/unsubscribe/:token") view=UnsubscribePage ssr=SsrMode::Async />
                <Route path=path!("/orgs/:slug/notifications") view=OrgNotificationsPage ssr=SsrMode::Async />
                <Route path=path!("/admin/mail") view=AdminMailPage ssr=SsrMode::Async />
                <Route path=path!("/admin/mail/:id") view=AdminMailMessagePage ssr=SsrMode::Async />
            </Routes>
        </Router>
    }
}

/// The Content-Security-Policy of a rendered page: the portal's policy, plus the nonce of this
/// response's inline scripts (Leptos serializes the page's data into one).
#[cfg(feature = "ssr")]
pub mod page_policy {
    use axum::http::{header, HeaderValue};
    use leptos::nonce::use_nonce;
    use leptos::prelude::*;
    use leptos_axum::ResponseOptions;

    /// The origin of a Stripe served over plain http, as `content_security_policy` takes it.
    #[derive(Clone, Default)]
    pub struct HttpStripe(pub Option<String>);

    pub fn send_with_nonce() {
        let (Some(response), Some(nonce)) = (use_context::<ResponseOptions>(), use_nonce()) else {
            return;
        };
        let http_stripe = use_context::<HttpStripe>().unwrap_or_default();
        let policy = crate::web::headers::content_security_policy_with_nonce(
            http_stripe.0.as_deref(),
            &nonce,
        );
        if let Ok(value) = HeaderValue::from_str(&policy) {
            response.insert_header(header::CONTENT_SECURITY_POLICY, value);
        }
    }
}
