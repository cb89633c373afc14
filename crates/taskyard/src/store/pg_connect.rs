//! How the PostgreSQL store opens its sessions: the settings each pool's sessions start
//! with, and a server that takes none of them, a pooler such as PgBouncer in front of
//! PostgreSQL (as managed PostgreSQL runs on its pooled endpoints).

use std::time::Duration;

use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection, PgConnection};

/// How long connecting, or waiting for a pooled connection, may take.
pub(super) const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// How long one of the store's sessions may sit idle inside a transaction before the server
/// ends it, unless the store's URL sets `idle_in_transaction_session_timeout` itself. The
/// store's transactions are a few statements sent back to back, so none of them waits this
/// long. A client that vanished without closing its socket (its host lost, the network
/// between cut) leaves its session waiting for the next statement, its transaction's locks
/// held, until the server's TCP keepalive gives up on it: two hours by Linux's defaults.
/// Meanwhile every instance's claim of that tick, end of that job or sweep of those runs
/// would wait on the locks.
const IDLE_IN_TRANSACTION: &str = "10s";

/// What a pooler answers a session opened with settings (PgBouncer: "unsupported startup
/// parameter: options").
const REFUSED_SETTINGS: &str = "unsupported startup parameter";

/// Opens one session with `options` and the store's settings, for the server's own
/// error ("connection refused", "password authentication failed") where a pool only
/// reports that it timed out, and returns the options every session of the store's
/// pools starts with; the reason is the text of that error. Behind a pooler, which
/// refuses settings at the start of a session, the sessions start with `options` alone
/// (and without sqlx's `extra_float_digits`). Then a vanished client's transaction is
/// bounded by the pooler's own setting (PgBouncer's `idle_transaction_timeout`), which
/// a warning says. The claims keep their planner settings either way: they are the
/// claim function's own (migration 16).
pub(super) async fn session_options(
    options: PgConnectOptions,
    place: &str,
) -> Result<PgConnectOptions, String> {
    let bounded = idle_transactions_bounded(options.clone());
    match first_session(&bounded).await {
        Ok(()) => Ok(bounded),
        Err(reason) if reason.contains(REFUSED_SETTINGS) => {
            let with_options = options.get_options().is_some();
            // sqlx also sends `extra_float_digits`, for servers before PostgreSQL 12;
            // later ones print floats shortest and exact without it.
            let plain = options.extra_float_digits(None);
            first_session(&plain).await.map_err(|reason| {
                if with_options && reason.contains(REFUSED_SETTINGS) {
                    format!("{reason}; a pooler takes no `options` in the URL: set them on the role instead (ALTER ROLE … SET …)")
                } else {
                    reason
                }
            })?;
            tracing::warn!(
                "{place} refuses settings at a session's start, as a pooler such as PgBouncer does: \
                 the store's sessions start without them, and a client that vanished in the \
                 middle of a transaction holds its locks until the pooler ends it: set \
                 PgBouncer's idle_transaction_timeout (10 s, say)"
            );
            Ok(plain)
        }
        Err(reason) => Err(reason),
    }
}

/// Opens and closes one session; the reason it could not, as text.
async fn first_session(options: &PgConnectOptions) -> Result<(), String> {
    match tokio::time::timeout(CONNECT_TIMEOUT, PgConnection::connect_with(options)).await {
        Err(_) => Err(format!("no answer within {}s", CONNECT_TIMEOUT.as_secs())),
        Ok(Err(error)) => Err(error.to_string()),
        Ok(Ok(connection)) => {
            let _ = connection.close().await;
            Ok(())
        }
    }
}

/// `options` with the store's bound on sessions idle inside a transaction
/// ([`IDLE_IN_TRANSACTION`]), unless they name one already.
fn idle_transactions_bounded(options: PgConnectOptions) -> PgConnectOptions {
    let named = options
        .get_options()
        .is_some_and(|set| set.contains("idle_in_transaction_session_timeout"));
    if named {
        return options;
    }
    options.options([("idle_in_transaction_session_timeout", IDLE_IN_TRANSACTION)])
}
