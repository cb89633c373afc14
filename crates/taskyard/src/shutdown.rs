//! The operating system's request to stop: Ctrl-C, or SIGTERM on Unix.

/// Ctrl-C or SIGTERM. The handlers are installed by this call, not when the future is
/// first polled, so a signal that arrives as soon as the app says it is listening is not
/// lost to the default action (which would kill the process without a clean stop).
#[cfg(unix)]
pub(crate) fn shutdown_signal() -> impl Future<Output = ()> + Send + 'static {
    use tokio::signal::unix::{SignalKind, signal};
    let interrupt = signal(SignalKind::interrupt());
    let terminate = signal(SignalKind::terminate());
    async move {
        match (interrupt, terminate) {
            (Ok(mut interrupt), Ok(mut terminate)) => {
                tokio::select! {
                    _ = interrupt.recv() => {}
                    _ = terminate.recv() => {}
                }
            }
            (Err(error), _) | (_, Err(error)) => {
                tracing::error!(%error, "cannot listen for Ctrl-C or SIGTERM; stop the app with SIGKILL");
                std::future::pending::<()>().await;
            }
        }
    }
}

#[cfg(not(unix))]
pub(crate) fn shutdown_signal() -> impl Future<Output = ()> + Send + 'static {
    async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::error!(%error, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    }
}
