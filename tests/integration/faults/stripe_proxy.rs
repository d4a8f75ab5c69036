//! A TCP proxy in front of a Stripe (the emulator), to make it slow or unreachable on demand:
//! `forward` passes connections through, `hang` accepts them and never answers (Stripe slow
//! past any timeout), `refuse` closes them at once (Stripe down).

use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};

const FORWARD: u8 = 0;
const HANG: u8 = 1;
const REFUSE: u8 = 2;

pub struct StripeProxy {
    pub url: String,
    mode: Arc<AtomicU8>,
    held: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl StripeProxy {
    /// A proxy to `upstream` (`http://host:port`), forwarding to begin with.
    pub async fn start(upstream: &str) -> Self {
        let target = upstream
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_owned();
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let mode = Arc::new(AtomicU8::new(FORWARD));
        let seen = mode.clone();
        let held = Arc::new(AtomicUsize::new(0));
        let holding = held.clone();
        let task = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let (mode, target, holding) = (seen.clone(), target.clone(), holding.clone());
                tokio::spawn(async move {
                    match mode.load(Ordering::Relaxed) {
                        FORWARD => {
                            if let Ok(mut outbound) = TcpStream::connect(&target).await {
                                // A kept-alive connection is cut when the mode changes, so the
                                // next call meets the new mode.
                                let changed = async {
                                    while mode.load(Ordering::Relaxed) == FORWARD {
                                        tokio::time::sleep(Duration::from_millis(20)).await;
                                    }
                                };
                                tokio::select! {
                                    _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                                    () = changed => {}
                                }
                            }
                        }
                        HANG => {
                            // Read what comes, answer nothing, for longer than any timeout.
                            holding.fetch_add(1, Ordering::Relaxed);
                            let mut sink = [0u8; 4096];
                            let _ = tokio::time::timeout(Duration::from_secs(120), async {
                                while matches!(inbound.read(&mut sink).await, Ok(n) if n > 0) {}
                            })
                            .await;
                        }
                        _ => drop(inbound),
                    }
                });
            }
        });
        Self {
            url,
            mode,
            held,
            task,
        }
    }

    /// Connections held without an answer so far.
    pub fn held(&self) -> usize {
        self.held.load(Ordering::Relaxed)
    }

    pub fn forward(&self) {
        self.mode.store(FORWARD, Ordering::Relaxed);
    }

    pub fn hang(&self) {
        self.mode.store(HANG, Ordering::Relaxed);
    }

    pub fn refuse(&self) {
        self.mode.store(REFUSE, Ordering::Relaxed);
    }
}

impl Drop for StripeProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}
