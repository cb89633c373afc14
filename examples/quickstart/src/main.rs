//! Serves the demo app (see the library's documentation for what to try), or runs one of
//! the app's commands: `quickstart task run …`, `quickstart export …` (`--help` lists them).

#[tokio::main]
async fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        // Logs go to stderr, so a command's output (`quickstart export systemd`) stays clean.
        .with_writer(std::io::stderr)
        .init();
    quickstart::demo().main().await
}
