//! The mail templates: files under `templates/mail/` in the repository (compiled into the binary),
//! each replaceable by a file of the same name in `TEMPLATES_DIR`. Every template is compiled and
//! rendered once with sample values at start-up, so a broken one stops the portal with its file
//! and line instead of failing at send time.

use std::path::{Path, PathBuf};

use minijinja::{Environment, UndefinedBehavior};
use serde_json::Value;

use super::kinds::Kind;

/// The three files of one notification kind, and the shared HTML layout.
macro_rules! shipped {
    ($($stem:literal),* $(,)?) => {
        &[
            ("layout.html", include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/templates/mail/layout.html"))),
            $(
                (concat!($stem, ".subject.txt"), include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/templates/mail/", $stem, ".subject.txt"))),
                (concat!($stem, ".txt"), include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/templates/mail/", $stem, ".txt"))),
                (concat!($stem, ".html"), include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/templates/mail/", $stem, ".html"))),
            )*
        ]
    };
}

/// Every shipped template, by file name.
const SHIPPED: &[(&str, &str)] = shipped!(
    "trial_started",
    "trial_ending",
    "trial_converted",
    "trial_ended_free",
    "receipt",
    "payment_failed",
    "grace_reminder",
    "downgraded_free",
    "payment_recovered",
    "plan_changed",
    "cancel_scheduled",
    "cancel_resumed",
    "canceled",
    "usage_80",
    "usage_100",
    "overage",
    "credits_exhausted",
    "pack_bought",
    "top_up_charged",
    "top_up_failed",
    "top_up_disabled",
    "refund_removed_credits",
    "member_added",
    "ops_signature_failures",
    "ops_event_failed",
    "ops_breaker_tripped",
    "ops_drift",
);

/// One message, rendered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// The compiled templates.
pub struct Templates {
    env: Environment<'static>,
}

impl std::fmt::Debug for Templates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Templates")
    }
}

impl Templates {
    /// Compiles the shipped templates, each replaced by `dir`'s file of the same name when there
    /// is one, and renders every kind once with sample values. A file in `dir` that is no
    /// template's name is refused too (a misspelt override would otherwise be ignored).
    pub fn load(dir: Option<&Path>) -> anyhow::Result<Self> {
        if let Some(dir) = dir {
            refuse_unknown_files(dir)?;
        }
        let mut env = Environment::new();
        // A misspelt variable is an error at start-up (with the sample values), not a blank.
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        for (name, shipped) in SHIPPED {
            let (source, origin) = match dir.map(|d| d.join(name)).filter(|p| p.is_file()) {
                Some(path) => (
                    std::fs::read_to_string(&path)
                        .map_err(|e| anyhow::anyhow!("reading {}: {e}", path.display()))?,
                    path,
                ),
                None => (
                    (*shipped).to_owned(),
                    PathBuf::from("templates/mail").join(name),
                ),
            };
            env.add_template_owned(*name, source)
                .map_err(|e| template_error(&origin, &e))?;
        }
        let templates = Self { env };
        let sample = sample_values();
        for kind in Kind::ALL {
            templates.render(*kind, &sample).map_err(|e| {
                let file = e.name().unwrap_or("a mail template").to_owned();
                let origin = match dir.map(|d| d.join(&file)).filter(|p| p.is_file()) {
                    Some(path) => path,
                    None => PathBuf::from("templates/mail").join(&file),
                };
                template_error(&origin, &e)
            })?;
        }
        Ok(templates)
    }

    /// Renders the subject, text and HTML of `kind` with `values`.
    pub fn render(&self, kind: Kind, values: &Value) -> Result<Rendered, minijinja::Error> {
        let stem = kind.as_str();
        let render = |suffix: &str| {
            self.env
                .get_template(&format!("{stem}{suffix}"))
                .and_then(|t| t.render(values))
        };
        // One line, whatever the template's whitespace: a subject is a header.
        let subject = render(".subject.txt")?
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        Ok(Rendered {
            subject,
            text: render(".txt")?,
            html: render(".html")?,
        })
    }
}

fn template_error(path: &Path, e: &minijinja::Error) -> anyhow::Error {
    let line = e.line().map(|l| format!(":{l}")).unwrap_or_default();
    anyhow::anyhow!(
        "mail template {}{line} is broken: {} (fix it or remove it from TEMPLATES_DIR)",
        path.display(),
        e.detail()
            .map_or_else(|| e.kind().to_string(), str::to_owned)
    )
}

fn refuse_unknown_files(dir: &Path) -> anyhow::Result<()> {
    let entries = std::fs::read_dir(dir)
        .map_err(|e| anyhow::anyhow!("reading TEMPLATES_DIR {}: {e}", dir.display()))?;
    for entry in entries {
        let entry = entry.map_err(|e| anyhow::anyhow!("reading {}: {e}", dir.display()))?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with('.') {
            continue;
        }
        if !SHIPPED.iter().any(|(n, _)| *n == name) {
            anyhow::bail!(
                "TEMPLATES_DIR {} has {name}, which is no mail template's name (see templates/mail/)",
                dir.display()
            );
        }
    }
    Ok(())
}

/// Values every template may use, as the worker passes them; used to try each one at start-up.
pub fn sample_values() -> Value {
    serde_json::json!({
        "org_name": "Acme",
        "org_url": "https://portal.example/orgs/acme",
        "billing_url": "https://portal.example/orgs/acme/billing",
        "plans_url": "https://portal.example/orgs/acme/plans",
        "credits_url": "https://portal.example/orgs/acme/credits",
        "settings_url": "https://portal.example/settings/notifications",
        "unsubscribe_url": "https://portal.example/unsubscribe/token",
        "portal_url": "https://portal.example",
        "recipient": "owner@acme.test",
        "plan": "Pro",
        "old_plan": "Starter",
        "trial_end": "2026-12-09",
        "grace_end": "2026-12-09",
        "period_end": "2027-01-01",
        "amount": "$9.99",
        "period": "2026-12-01 to 2027-01-01",
        "invoice_url": "https://invoice.example/i/1",
        "invoice_pdf": "https://invoice.example/i/1.pdf",
        "meter": "Small",
        "included": 10,
        "credits": "500",
        "packs": 1,
        "failures": 3,
        "role": "member",
        "count": 12,
        "window_minutes": 10,
        "event_id": "evt_1",
        "event_type": "invoice.paid",
        "error": "what went wrong",
        "detail": "what the job found",
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_templates_compile_and_name_their_links() {
        let t = Templates::load(None).expect("shipped templates");
        let r = t
            .render(Kind::PaymentFailed, &sample_values())
            .expect("render");
        assert!(r.subject.contains("payment"), "{}", r.subject);
        assert!(r.text.contains("https://portal.example/orgs/acme/billing"));
        // minijinja escapes `/` in HTML as `&#x2f;`, which a browser reads as `/`.
        let html = r.html.replace("&#x2f;", "/");
        assert!(
            html.contains("href=\"https://portal.example/orgs/acme/billing\""),
            "{html}"
        );
    }

    #[test]
    fn html_is_escaped_and_text_is_not() {
        let t = Templates::load(None).expect("shipped templates");
        let mut values = sample_values();
        values["org_name"] = Value::from("<b>A&B</b>");
        let r = t.render(Kind::Usage80, &values).expect("render");
        assert!(r.html.contains("&lt;b&gt;A&amp;B&lt;&#x2f;b&gt;") || r.html.contains("&lt;b&gt;"));
        assert!(!r.html.contains("<b>A&B</b>"));
        assert!(r.text.contains("<b>A&B</b>"));
    }

    #[test]
    fn a_broken_override_names_its_file_and_line() {
        let dir = tempfile::tempdir().expect("dir");
        std::fs::write(
            dir.path().join("receipt.txt"),
            "Hello\n\n{% if amount %}\nno end",
        )
        .expect("write");
        let e = Templates::load(Some(dir.path())).expect_err("refused");
        let text = e.to_string();
        assert!(text.contains("receipt.txt:"), "{text}");
        assert!(text.contains("is broken"), "{text}");
    }

    #[test]
    fn an_override_with_an_unknown_variable_is_refused_at_load() {
        let dir = tempfile::tempdir().expect("dir");
        std::fs::write(dir.path().join("receipt.html"), "<p>{{ amonut }}</p>").expect("write");
        let e = Templates::load(Some(dir.path())).expect_err("refused");
        assert!(e.to_string().contains("receipt.html:1"), "{e}");
    }
}
