//! Where messages go: an SMTP server through `lettre` (`SMTP_URL`), or, without one, the mail
//! catcher in PostgreSQL that platform admins read at `/admin/mail`. Builds each message with
//! `Message-ID`, `Date`, a text and an HTML part, and RFC 8058 one-click unsubscribe headers when
//! the category may be turned off.

use std::time::Duration;

use lettre::message::header::{HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use sqlx::PgPool;

use super::templates::Rendered;

/// Connections kept open to the SMTP server (messages are sent concurrently over them).
const SMTP_CONNECTIONS: u32 = 16;

/// How long one SMTP exchange may take before it counts as a temporary failure.
const SMTP_TIMEOUT: Duration = Duration::from_secs(15);

/// The transport.
#[derive(Clone)]
pub enum Mailer {
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    /// The demo's mail catcher.
    Catcher(PgPool),
}

/// Why a message was not sent.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// The server refused it for good (5xx): the row ends `failed`.
    #[error("refused: {0}")]
    Permanent(String),
    /// Try again later (4xx, connection refused, timeout).
    #[error("{0}")]
    Temporary(String),
}

/// One message ready to send.
pub struct Outgoing<'a> {
    pub outbox_id: i64,
    pub from: &'a Mailbox,
    pub to: &'a str,
    pub message_id: &'a str,
    pub rendered: &'a Rendered,
    /// The one-click unsubscribe URL, for categories that may be turned off.
    pub unsubscribe: Option<&'a str>,
}

impl Mailer {
    /// SMTP at `url` (`smtp://host:25`, `smtp://host:587?tls=required`, `smtps://user:pass@host`).
    pub fn smtp(url: &str) -> anyhow::Result<Self> {
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
            .map_err(|e| anyhow::anyhow!("SMTP_URL is not a usable SMTP URL: {e}"))?
            .timeout(Some(SMTP_TIMEOUT))
            .pool_config(lettre::transport::smtp::PoolConfig::new().max_size(SMTP_CONNECTIONS))
            .build();
        Ok(Mailer::Smtp(transport))
    }

    /// How many messages may be in flight at once.
    pub fn concurrency(&self) -> usize {
        match self {
            Mailer::Smtp(_) => SMTP_CONNECTIONS as usize,
            Mailer::Catcher(_) => 4,
        }
    }

    pub async fn send(&self, out: &Outgoing<'_>) -> Result<(), SendError> {
        let message = build(out)?;
        match self {
            Mailer::Smtp(transport) => match transport.send(message).await {
                Ok(_) => Ok(()),
                Err(e) if e.is_permanent() => Err(SendError::Permanent(e.to_string())),
                Err(e) => Err(SendError::Temporary(e.to_string())),
            },
            Mailer::Catcher(pool) => {
                let headers = message.headers().to_string();
                sqlx::query(
                    "INSERT INTO caught_mail
                         (outbox_id, message_id, sender, recipient, subject, headers, text_body, html_body)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                )
                .bind(out.outbox_id)
                .bind(out.message_id)
                .bind(out.from.to_string())
                .bind(out.to)
                .bind(&out.rendered.subject)
                .bind(headers)
                .bind(&out.rendered.text)
                .bind(&out.rendered.html)
                .execute(pool)
                .await
                .map_err(|e| SendError::Temporary(format!("storing in the mail catcher: {e}")))?;
                Ok(())
            }
        }
    }
}

fn build(out: &Outgoing<'_>) -> Result<Message, SendError> {
    let to: Mailbox = out
        .to
        .parse()
        .map_err(|e| SendError::Permanent(format!("the address {} is unusable: {e}", out.to)))?;
    let mut builder = Message::builder()
        .from(out.from.clone())
        .to(to)
        .subject(out.rendered.subject.clone())
        .message_id(Some(out.message_id.to_owned()))
        .date_now();
    if let Some(url) = out.unsubscribe {
        // RFC 8058: a mail client POSTs `List-Unsubscribe=One-Click` to this URL.
        builder = builder
            .raw_header(HeaderValue::new(
                HeaderName::new_from_ascii_str("List-Unsubscribe"),
                format!("<{url}>"),
            ))
            .raw_header(HeaderValue::new(
                HeaderName::new_from_ascii_str("List-Unsubscribe-Post"),
                "List-Unsubscribe=One-Click".to_owned(),
            ));
    }
    builder
        .multipart(MultiPart::alternative_plain_html(
            out.rendered.text.clone(),
            out.rendered.html.clone(),
        ))
        .map_err(|e| SendError::Permanent(format!("building the message: {e}")))
}
