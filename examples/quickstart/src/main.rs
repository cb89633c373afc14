//! Serves the demo app (see the library's documentation for what to try).

#[tokio::main]
async fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    if let Err(error) = quickstart::demo().serve().await {
        eprintln!("quickstart: {error}");
        std::process::exit(1);
    }
}
