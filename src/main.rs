//! The `billing-portal` binary: parses the command line and hands over to [`billing_portal::cli`].

#[tokio::main]
async fn main() -> std::process::ExitCode {
    billing_portal::cli::run().await
}
