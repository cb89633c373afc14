//! Serves the demo app (see the library's documentation for what to try), or runs one of
//! the app's commands: `quickstart task run …`, `quickstart export …` (`--help` lists them).

// A task request allocates a few dozen times (the request, its payload, the run's record,
// the response) on one worker thread and frees some of it on another; glibc's allocator
// spends a third of such a request in its arena locks. mimalloc's per-thread heaps take
// the task endpoint from 25,000 to 33,000 req/s on two cores (BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
