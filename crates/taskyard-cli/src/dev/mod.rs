//! `taskyard dev`: holds the app's port, builds the app with cargo, runs it on a private
//! port and passes requests on; on every change under `src/` it builds again while the old
//! process keeps serving, starts the new one, swaps once its health endpoint answers, and
//! gives the old one its shutdown grace.
//!
//! - `compile`: one `cargo build`, its binary or its errors (file, line, message).
//! - `child`: one process of the app (private port, health, SIGTERM).
//! - `proxy`: the held port; requests wait while no process is ready.
//! - `page`: a failed build or a crashing app as HTML or JSON.
//!
//! `taskyard.toml` edits need no build: a debug build of the app follows its configuration
//! file itself. The tick ledger keeps schedules from firing twice while two processes
//! overlap; `.taskyard/dev.json` names every process serving, newest first.

mod child;
mod compile;
mod page;
mod proxy;
mod reload;
#[cfg(test)]
mod stand_in;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use notify::{EventKind, RecursiveMode, Watcher};
use tokio::sync::{mpsc, watch};

use self::child::AppProcess;
use self::page::Failure;
use self::proxy::{Backend, Status};

/// Changes closer together than this make one build.
const DEBOUNCE: Duration = Duration::from_millis(150);
/// Restarts of a process that exits by itself, before the error page says why.
const RESTARTS: u32 = 3;
/// The longest a retired process is left to finish the requests it is answering.
const DRAIN: Duration = Duration::from_secs(5);

/// `taskyard dev`.
#[derive(clap::Args)]
pub struct DevCommand {
    /// The port to hold for the app.
    #[arg(long, env = "PORT", default_value_t = 3000)]
    port: u16,
    /// The address to hold it on.
    #[arg(long, env = "HOST", default_value = "127.0.0.1")]
    host: String,
    /// Builds with `cargo build --release`: an optimized app (to measure it, or for tasks
    /// too slow unoptimized), at the price of slower builds. It still runs as
    /// `development` unless `TASKYARD_ENV` says otherwise.
    #[arg(long)]
    release: bool,
}

/// Runs the dev server until Ctrl-C or SIGTERM.
pub fn dev(dir: Option<PathBuf>, command: DevCommand) -> ExitCode {
    let dir = dir.unwrap_or_else(|| PathBuf::from("."));
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("taskyard dev: cannot start: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(&dir, command)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("taskyard dev: {message}");
            ExitCode::from(2)
        }
    }
}

/// What a batch of file changes needs.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Change {
    /// Only `taskyard.toml`: the app follows it by itself.
    Config,
    /// Sources, the manifest or the build script: a new build.
    Source,
}

/// The process requests go to, with its count of requests in flight.
struct Current {
    process: AppProcess,
    backend: Backend,
}

async fn run(dir: &Path, command: DevCommand) -> Result<(), String> {
    if !dir.join("Cargo.toml").is_file() {
        return Err(format!(
            "{} holds no Cargo.toml; run this in the app's folder or pass --dir",
            dir.display()
        ));
    }
    let dir = dir
        .canonicalize()
        .map_err(|e| format!("{}: {e}", dir.display()))?;
    let listener = tokio::net::TcpListener::bind((command.host.as_str(), command.port))
        .await
        .map_err(|e| {
            format!(
                "cannot hold {}:{}: {e} (--port to choose another)",
                command.host, command.port
            )
        })?;
    let local = listener.local_addr().map_err(|e| e.to_string())?;
    eprintln!("taskyard dev: http://{local} (building the app…)");
    let (status, status_rx) = watch::channel(Status::default());
    let stop_server = tokio_util::sync::CancellationToken::new();
    let server = {
        let stopped = stop_server.clone().cancelled_owned();
        tokio::spawn(async move {
            let router = proxy::router(status_rx);
            let _ = axum::serve(listener, router)
                .with_graceful_shutdown(stopped)
                .await;
        })
    };
    let (changes_tx, mut changes) = mpsc::channel(256);
    let _watcher = watch_sources(&dir, changes_tx)?;
    let mut current: Option<Current> = None;
    let mut binary: Option<PathBuf> = None;
    let mut rebuild = true;
    let mut crashes = 0u32;
    let mut stopping = std::pin::pin!(stop_signal());
    loop {
        if rebuild {
            rebuild = false;
            let started = Instant::now();
            let built = tokio::select! {
                built = compile::build(&dir, command.release) => built,
                () = &mut stopping => break,
            };
            match built {
                Err(failed) => {
                    eprintln!("taskyard dev: the build failed; the last good version keeps serving");
                    for error in &failed.errors {
                        eprintln!("  error: {}", error.short());
                    }
                    if failed.errors.is_empty() {
                        eprintln!("{}", failed.output.trim_end());
                    }
                    status.send_modify(|s| {
                        s.failure = Some(Arc::new(Failure::Build {
                            errors: failed.errors,
                            output: failed.output,
                        }));
                    });
                }
                Ok(path) => {
                    let build_time = started.elapsed();
                    let swap_started = Instant::now();
                    match launch(&path, &dir, &status, &mut current).await {
                        Ok(()) => {
                            eprintln!(
                                "taskyard dev: built in {:.1} s, swapped in {} ms",
                                build_time.as_secs_f64(),
                                swap_started.elapsed().as_millis()
                            );
                            binary = Some(path);
                            crashes = 0;
                        }
                        Err(why) => fail(&status, why),
                    }
                }
            }
        }
        tokio::select! {
            change = next_batch(&mut changes) => match change {
                Some(Change::Source) => rebuild = true,
                Some(Change::Config) => eprintln!("taskyard dev: taskyard.toml changed; the app follows it without a build"),
                None => break,
            },
            exit = exited(&mut current) => {
                current = None;
                status.send_modify(|s| s.ready = None);
                crashes += 1;
                let Some(path) = binary.clone() else { continue };
                if crashes > RESTARTS {
                    fail(&status, format!("the app exited ({exit}) {RESTARTS} times after a restart; fix it and save a file to build again"));
                    continue;
                }
                let backoff = Duration::from_millis(500 << (crashes - 1));
                eprintln!("taskyard dev: the app exited ({exit}); restarting in {} ms ({crashes} of {RESTARTS})", backoff.as_millis());
                tokio::time::sleep(backoff).await;
                if let Err(why) = launch(&path, &dir, &status, &mut current).await {
                    fail(&status, why);
                }
            },
            () = &mut stopping => break,
        }
    }
    eprintln!("taskyard dev: stopping");
    if let Some(current) = current.take() {
        current.process.stop().await;
    }
    stop_server.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(5), server).await;
    Ok(())
}

/// Starts `binary`; once it is ready, requests go to it and the previous process gets the
/// requests it is answering (up to 5 s), then SIGTERM and its shutdown grace.
async fn launch(
    binary: &Path,
    dir: &Path,
    status: &watch::Sender<Status>,
    current: &mut Option<Current>,
) -> Result<(), String> {
    let process = AppProcess::start(binary, dir).await?;
    let backend = Backend {
        addr: process.addr,
        in_flight: Arc::new(AtomicUsize::new(0)),
    };
    status.send_modify(|s| {
        s.ready = Some(backend.clone());
        s.failure = None;
    });
    if let Some(old) = current.replace(Current { process, backend }) {
        tokio::spawn(async move {
            let drained = Instant::now();
            while old.backend.in_flight.load(Ordering::SeqCst) > 0 && drained.elapsed() < DRAIN {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            old.process.stop().await;
        });
    }
    Ok(())
}

fn fail(status: &watch::Sender<Status>, why: String) {
    eprintln!("taskyard dev: {why}");
    status.send_modify(|s| s.failure = Some(Arc::new(Failure::Crash(why))));
}

/// The current process's exit, or never when there is none.
async fn exited(current: &mut Option<Current>) -> std::process::ExitStatus {
    match current {
        Some(current) => current.process.exited().await,
        None => std::future::pending().await,
    }
}

/// Ctrl-C or SIGTERM.
async fn stop_signal() {
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = async {
            match terminate.as_mut() {
                Some(terminate) => { terminate.recv().await; }
                None => std::future::pending().await,
            }
        } => {}
    }
}

/// Watches `src/`, `Cargo.toml`, `build.rs` and `taskyard.toml` (not `target/` or
/// `.taskyard/`).
fn watch_sources(dir: &Path, changes: mpsc::Sender<Change>) -> Result<notify::RecommendedWatcher, String> {
    let root = dir.to_owned();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        let Ok(event) = event else { return };
        if !matches!(
            event.kind,
            EventKind::Create(_) | EventKind::Modify(_) | EventKind::Remove(_)
        ) {
            return;
        }
        for path in &event.paths {
            if let Some(change) = classify(&root, path) {
                let _ = changes.blocking_send(change);
            }
        }
    })
    .map_err(|e| format!("cannot watch the app's files: {e}"))?;
    watcher
        .watch(&dir.join("src"), RecursiveMode::Recursive)
        .map_err(|e| format!("cannot watch {}: {e}", dir.join("src").display()))?;
    watcher
        .watch(dir, RecursiveMode::NonRecursive)
        .map_err(|e| format!("cannot watch {}: {e}", dir.display()))?;
    Ok(watcher)
}

/// What a changed path needs, or `None` for a path that changes nothing (an editor's
/// temporary file, anything outside the sources).
fn classify(root: &Path, path: &Path) -> Option<Change> {
    let relative = path.strip_prefix(root).ok()?;
    let name = relative.file_name()?.to_str()?;
    if name.ends_with('~') || name.ends_with(".swp") || name.ends_with(".swx") || name.starts_with(".#") {
        return None;
    }
    if relative.starts_with("src") {
        return Some(Change::Source);
    }
    match relative.to_str()? {
        "taskyard.toml" => Some(Change::Config),
        "Cargo.toml" | "build.rs" => Some(Change::Source),
        _ => None,
    }
}

/// The next batch of changes (those within the debounce of the first), by what it needs;
/// `None` when the watcher has gone.
async fn next_batch(changes: &mut mpsc::Receiver<Change>) -> Option<Change> {
    let mut need = changes.recv().await?;
    let until = tokio::time::Instant::now() + DEBOUNCE;
    while let Ok(Some(more)) = tokio::time::timeout_at(until, changes.recv()).await {
        need = need.max(more);
    }
    Some(need)
}
