//! The portal as a child process: the real binary, started with `DATABASE_URL` on a test
//! database, so a crash is a real `SIGKILL` and a shutdown a real `SIGTERM`. Its output (logs
//! and the start-up banner) goes to a file; the address is read from the banner.

use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::{Duration, Instant};

use tokio::process::{Child, Command};

/// The webhook signing secret every child portal accepts.
pub const WEBHOOK_SECRET: &str = "whsec_faults_test_secret";

/// What the banner says before the address.
const LISTENING: &str = "Billing portal listening on ";

pub struct Portal {
    child: Child,
    pid: i32,
    /// `http://127.0.0.1:PORT`
    pub base: String,
    log: PathBuf,
}

impl Portal {
    /// Starts the binary on `database_url` with `data_dir` as its DATA_DIR and working folder,
    /// its own offline Stripe (unless `env` sets a Stripe key), and `env` on top; waits until it
    /// serves.
    pub async fn start(database_url: &str, data_dir: &Path, env: &[(&str, &str)]) -> Self {
        let log = data_dir.join("portal.log");
        let from = std::fs::metadata(&log).map(|m| m.len()).unwrap_or(0);
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .expect("the portal's log file");
        let err = out.try_clone().expect("log file");
        let mut command = Command::new(env!("CARGO_BIN_EXE_billing-portal"));
        command
            .arg("serve")
            .current_dir(data_dir)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("DATABASE_URL", database_url)
            .env("DATA_DIR", data_dir)
            .env("HOST", "127.0.0.1")
            .env("PORT", "0")
            .env("SEED_DEMO", "false")
            .env("STRIPE_EMULATOR_PORT", "0")
            .env("STRIPE_WEBHOOK_SECRET", WEBHOOK_SECRET)
            .env("API_RATE_LIMIT_USAGE", "off")
            .env(
                "RUST_LOG",
                "info,sqlx=warn,tower_sessions=warn,tower_http=warn",
            )
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .kill_on_drop(true);
        for (name, value) in env {
            command.env(name, value);
        }
        let child = command.spawn().expect("starting the portal binary");
        let pid = child.id().expect("a running child") as i32;
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut portal = Self {
            child,
            pid,
            base: String::new(),
            log,
        };
        loop {
            let text = portal.log_since(from);
            if let Some(at) = text.find(LISTENING) {
                let rest = &text[at + LISTENING.len()..];
                portal.base = rest.lines().next().unwrap_or_default().trim().to_owned();
                return portal;
            }
            if let Ok(Some(status)) = portal.child.try_wait() {
                panic!("the portal exited during start-up ({status}):\n{text}");
            }
            assert!(
                Instant::now() < deadline,
                "the portal did not start within 60 s:\n{text}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn log_since(&self, from: u64) -> String {
        let bytes = std::fs::read(&self.log).unwrap_or_default();
        String::from_utf8_lossy(bytes.get(from as usize..).unwrap_or_default()).into_owned()
    }

    /// The last lines the portal wrote, for failure messages.
    pub fn log_tail(&self, lines: usize) -> String {
        let text = self.log_since(0);
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// Whether the log holds `needle` (a panic, say).
    pub fn logged(&self, needle: &str) -> bool {
        self.log_since(0).contains(needle)
    }

    /// A crash: `SIGKILL`, nothing runs after it. Waits until the process is gone.
    pub async fn kill(mut self) {
        self.child.start_kill().expect("SIGKILL");
        let status = tokio::time::timeout(Duration::from_secs(10), self.child.wait())
            .await
            .expect("a killed process is gone at once")
            .expect("wait");
        assert!(!status.success(), "killed, not exited");
    }

    /// `SIGTERM`: the shutdown an orchestrator asks for.
    pub fn signal_term(&self) {
        // SAFETY: kill(2) on the pid of our own child, which has not been reaped (we hold it).
        let rc = unsafe { libc::kill(self.pid, libc::SIGTERM) };
        assert_eq!(rc, 0, "SIGTERM");
    }

    /// Waits at most `within` for the process to exit; how it exited, or `None` if it still runs.
    pub async fn wait_exit(&mut self, within: Duration) -> Option<ExitStatus> {
        tokio::time::timeout(within, self.child.wait())
            .await
            .ok()
            .map(|s| s.expect("wait"))
    }
}
