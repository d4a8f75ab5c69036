//! Notifications: e-mail to customers and operators through a durable outbox. `kinds` names every
//! notification, its category and audience (pure); with `ssr`, `outbox` writes them inside the
//! transaction of their cause, `worker` sends them (SKIP LOCKED, retries with backoff) through
//! `mailer` (SMTP with lettre, or the mail catcher), `templates` compiles the mail templates at
//! start-up, `token` signs unsubscribe links, `preferences` holds who turned what off, and
//! `pages` shows the settings, the organization's history and the admins' mail catcher.

pub mod kinds;
pub mod pages;

#[cfg(feature = "ssr")]
pub mod alerts;
#[cfg(feature = "ssr")]
pub mod forms;
#[cfg(feature = "ssr")]
pub mod mailer;
#[cfg(feature = "ssr")]
pub mod outbox;
#[cfg(feature = "ssr")]
pub mod preferences;
#[cfg(feature = "ssr")]
pub mod resend;
#[cfg(feature = "ssr")]
pub mod templates;
#[cfg(feature = "ssr")]
pub mod token;
#[cfg(feature = "ssr")]
pub mod unsubscribe;
#[cfg(feature = "ssr")]
pub mod worker;

#[cfg(feature = "ssr")]
pub use outbox::{about_org, enqueue, enqueue_all, Notice};

/// The sender's configuration from the settings: the templates (a broken one stops start-up
/// here), `MAIL_FROM`, and SMTP or the mail catcher.
#[cfg(feature = "ssr")]
pub fn sender_config(
    settings: &crate::config::Settings,
    pool: &sqlx::PgPool,
    public_url: &str,
    key: crate::web::csrf::CsrfKey,
) -> anyhow::Result<worker::SenderConfig> {
    let templates = templates::Templates::load(settings.templates_dir.as_deref())?;
    let from: lettre::message::Mailbox = settings.mail_from.parse().map_err(|e| {
        anyhow::anyhow!(
            "MAIL_FROM {:?} is not an e-mail address (\"Name <address>\" or an address): {e}",
            settings.mail_from
        )
    })?;
    let mailer = match &settings.smtp_url {
        Some(url) => mailer::Mailer::smtp(url.expose())?,
        None => {
            tracing::info!(
                "SMTP_URL is unset: notifications go to the mail catcher at /admin/mail"
            );
            mailer::Mailer::Catcher(pool.clone())
        }
    };
    Ok(worker::SenderConfig {
        mailer,
        templates: std::sync::Arc::new(templates),
        from,
        public_url: public_url.trim_end_matches('/').to_owned(),
        key,
        retry_base: std::time::Duration::from_secs(settings.mail_retry_seconds.max(1)),
        max_attempts: i32::try_from(settings.mail_max_attempts.clamp(1, 100)).unwrap_or(8),
    })
}
