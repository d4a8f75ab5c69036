//! A real SMTP server for the notification tests: Python's aiosmtpd (`mail_sink.py`), run from
//! the test venv (`STRIPE_PYTHON`, which `scripts/test` prepares), writing each message it takes
//! as JSON into its own folder.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

const SCRIPT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/integration/notifications/mail_sink.py"
);

fn python() -> String {
    std::env::var("STRIPE_PYTHON")
        .ok()
        .filter(|p| !p.is_empty() && p != "skip")
        .unwrap_or_else(|| {
            let home = std::env::var("HOME").unwrap_or_default();
            format!("{home}/.cache/billing-portal/venv/bin/python")
        })
}

/// A port nothing listens on (yet).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

pub struct MailSink {
    pub port: u16,
    dir: tempfile::TempDir,
    child: Child,
}

/// One message as the server received it.
#[derive(Debug, Clone)]
pub struct Mail(pub Value);

impl Mail {
    pub fn to(&self) -> Vec<String> {
        self.0["rcpt_tos"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    }
    pub fn subject(&self) -> &str {
        self.0["subject"].as_str().unwrap_or_default()
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.0["headers"]
            .as_object()?
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .and_then(|(_, v)| v.as_str())
    }
    pub fn text(&self) -> &str {
        self.0["text"].as_str().unwrap_or_default()
    }
    pub fn html(&self) -> &str {
        self.0["html"].as_str().unwrap_or_default()
    }
}

impl MailSink {
    pub async fn start() -> Self {
        Self::start_on(free_port(), None).await
    }

    /// A server on `port` that answers 550 to recipients matching `reject`.
    pub async fn start_on(port: u16, reject: Option<&str>) -> Self {
        let dir = tempfile::tempdir().expect("sink dir");
        let out = dir.path().to_owned();
        let reject = reject.unwrap_or_default().to_owned();
        let child = tokio::task::spawn_blocking(move || {
            let mut child = Command::new(python())
                .arg(SCRIPT)
                .arg(port.to_string())
                .arg(&out)
                .arg(reject)
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawn()
                .expect("starting aiosmtpd (install it in the test venv: scripts/test does)");
            let stdout = child.stdout.take().expect("stdout");
            let mut line = String::new();
            BufReader::new(stdout)
                .read_line(&mut line)
                .expect("sink output");
            assert_eq!(line.trim(), "ready", "the SMTP sink did not start");
            child
        })
        .await
        .expect("sink");
        Self { port, dir, child }
    }

    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// Every message so far, oldest first.
    pub fn messages(&self) -> Vec<Mail> {
        let mut names: Vec<_> = std::fs::read_dir(self.dir.path())
            .expect("sink dir")
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        names.sort();
        names
            .iter()
            .map(|p| {
                Mail(
                    serde_json::from_str(&std::fs::read_to_string(p).expect("mail")).expect("json"),
                )
            })
            .collect()
    }

    /// The messages once there are at least `n` of them (at most 20 s).
    pub async fn wait_for(&self, n: usize) -> Vec<Mail> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let all = self.messages();
            if all.len() >= n {
                return all;
            }
            assert!(
                Instant::now() < deadline,
                "waited for {n} messages, got {}: {:?}",
                all.len(),
                all.iter().map(Mail::subject).collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The messages whose subject contains `text`, once there is one (at most 20 s).
    pub async fn wait_for_subject(&self, text: &str) -> Vec<Mail> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let found: Vec<Mail> = self
                .messages()
                .into_iter()
                .filter(|m| m.subject().contains(text))
                .collect();
            if !found.is_empty() {
                return found;
            }
            assert!(
                Instant::now() < deadline,
                "no message about {text:?}; got {:?}",
                self.messages()
                    .iter()
                    .map(|m| m.subject().to_owned())
                    .collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for MailSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
