//! The `billing-portal` binary: parses the command line and hands over to [`billing_portal::cli`].

/// Pages allocate many small, short-lived strings; mimalloc serves them faster than glibc's
/// malloc (see the README's page benchmark).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    billing_portal::cli::run().await
}
