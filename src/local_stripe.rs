//! The offline Stripe the portal runs for itself when no Stripe key is set (the demo, and the
//! tests): the `stripe-emulator` crate on its own port, so its API and hosted pages live on
//! another origin than the portal, as Stripe's do. Its secret key is made once per data folder,
//! kept there and written beside the demo logins; the portal's webhook endpoint is registered
//! with it at start.

use std::fs;
use std::io::Write;
use std::net::SocketAddr;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use anyhow::Context;
use sqlx::PgPool;
use stripe_emulator::{ApiKeys, Config, EndpointConfig, Running, Timing};
use tokio::net::TcpListener;

use crate::seed;

/// A serving emulator and the key the portal calls it with.
pub struct LocalStripe {
    pub running: Running,
    pub secret_key: String,
}

impl LocalStripe {
    /// The emulator's address, without a trailing slash (hosted pages live under it).
    pub fn base_url(&self) -> &str {
        self.running.base_url()
    }

    /// The API base to give the Stripe gateway.
    pub fn api_base(&self) -> String {
        self.running.api_base()
    }
}

fn key_file(data_dir: &Path) -> PathBuf {
    data_dir.join("stripe-emulator-secret-key")
}

/// The data folder's emulator key, made (and kept, readable by its owner only) on first use.
pub fn secret_key(data_dir: &Path) -> anyhow::Result<String> {
    let path = key_file(data_dir);
    match fs::read_to_string(&path) {
        Ok(text) => {
            let key = text.trim().to_owned();
            ApiKeys::new([key.clone()]).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
            Ok(key)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key = ApiKeys::generate();
            fs::create_dir_all(data_dir)?;
            let mut file = fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&path)
                .with_context(|| format!("writing {}", path.display()))?;
            writeln!(file, "{key}")?;
            Ok(key)
        }
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

/// Where people reach an emulator on `port` when they reach the portal at `public_url`: the same
/// host, plain HTTP, the emulator's port.
pub fn public_base(public_url: &str, bound: SocketAddr) -> String {
    let host = url::Url::parse(public_url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned))
        .unwrap_or_else(|| bound.ip().to_string());
    let host = if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]")
    } else {
        host
    };
    format!("http://{host}:{}", bound.port())
}

/// Starts the emulator on `host:port` over the portal's database, delivering events to the
/// portal (listening at `portal`) signed with `webhook_secret`.
pub async fn start(
    pool: PgPool,
    data_dir: &Path,
    listen: SocketAddr,
    public_url: &str,
    portal: SocketAddr,
    webhook_secret: &str,
) -> anyhow::Result<LocalStripe> {
    let secret_key = secret_key(data_dir)?;
    let listener = TcpListener::bind(listen).await.with_context(|| {
        format!(
            "starting the offline Stripe on {listen} (set STRIPE_EMULATOR_PORT to another port)"
        )
    })?;
    let bound = listener.local_addr()?;
    let base = public_base(public_url, bound);
    let running = stripe_emulator::serve::start(
        pool,
        listener,
        Some(&base),
        Config {
            secret_keys: ApiKeys::new([secret_key.clone()]).map_err(anyhow::Error::msg)?,
            webhooks: vec![EndpointConfig {
                url: format!("http://{}/webhooks/stripe", loopback(portal)),
                secret: webhook_secret.to_owned(),
            }],
            chaos: false,
            timing: Timing::default(),
        },
    )
    .await?;
    seed::record_login_line(
        data_dir,
        "Stripe emulator:",
        &format!("Stripe emulator:         {base} (secret key {secret_key})"),
    )?;
    Ok(LocalStripe {
        running,
        secret_key,
    })
}

/// The loopback address of a listener bound to `bound` (the unspecified address means any).
pub fn loopback(bound: SocketAddr) -> SocketAddr {
    let mut local = bound;
    if local.ip().is_unspecified() {
        local.set_ip(std::net::IpAddr::from([127, 0, 0, 1]));
    }
    local
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_public_base_keeps_the_portals_host_and_takes_the_emulators_port() {
        let bound: SocketAddr = "0.0.0.0:12111".parse().expect("addr");
        assert_eq!(
            public_base("http://127.0.0.1:3000", bound),
            "http://127.0.0.1:12111"
        );
        assert_eq!(
            public_base("https://billing.example.com", bound),
            "http://billing.example.com:12111"
        );
        assert_eq!(
            public_base("http://[::1]:3000", bound),
            "http://[::1]:12111"
        );
    }

    #[test]
    fn a_data_folder_keeps_its_key() {
        let dir = tempfile::tempdir().expect("dir");
        let first = secret_key(dir.path()).expect("made");
        assert!(first.starts_with("sk_test_"));
        assert_eq!(secret_key(dir.path()).expect("read"), first);
        let other = tempfile::tempdir().expect("dir");
        assert_ne!(secret_key(other.path()).expect("made"), first);
    }
}
