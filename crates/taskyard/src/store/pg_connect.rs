//! How the PostgreSQL store opens its sessions: the settings its pools' sessions start
//! with, a server that takes none of them (a pooler such as PgBouncer in front of
//! PostgreSQL, as managed PostgreSQL runs on its pooled endpoints), and a pooler that
//! would mix its clients' prepared statements, refused.

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

/// Why the store's sessions cannot be opened.
#[derive(Debug)]
pub(super) enum Refusal {
    /// The server was not reached, or refused the session: the text of its error.
    Unreachable(String),
    /// A pooler in front of the server would lose what the store's statements need:
    /// what it does, and what to change.
    Pooler(String),
}

/// Opens one session with `options` and the store's settings, for the server's own
/// error ("connection refused", "password authentication failed") where a pool only
/// reports that it timed out, and returns the options every session of the store's
/// pools starts with. Behind a pooler, which refuses settings at the start of a session,
/// the sessions start with `options` alone (and without sqlx's `extra_float_digits`).
/// Then a vanished client's transaction is bounded by the pooler's own setting
/// (PgBouncer's `idle_transaction_timeout`), which a warning says. The claims keep their
/// planner settings either way: they are the claim function's own (migration 16). Last,
/// a pooler that would lose the store's prepared statements is refused here, by name,
/// rather than failing statements at random later ([`prepared_statements_kept`]).
pub(super) async fn session_options(
    options: PgConnectOptions,
    place: &str,
) -> Result<PgConnectOptions, Refusal> {
    let bounded = idle_transactions_bounded(options.clone());
    let (chosen, first) = match first_session(&bounded).await {
        Ok(first) => (bounded, first),
        Err(reason) if reason.contains(REFUSED_SETTINGS) => {
            let with_options = options.get_options().is_some();
            // sqlx also sends `extra_float_digits`, for servers before PostgreSQL 12;
            // later ones print floats shortest and exact without it.
            let plain = options.extra_float_digits(None);
            let first = first_session(&plain).await.map_err(|reason| {
                Refusal::Unreachable(if with_options && reason.contains(REFUSED_SETTINGS) {
                    format!("{reason}; a pooler takes no `options` in the URL: set them on the role instead (ALTER ROLE … SET …)")
                } else {
                    reason
                })
            })?;
            tracing::warn!(
                "{place} refuses settings at a session's start, as a pooler such as PgBouncer does: \
                 the store's sessions start without them, and a client that vanished in the \
                 middle of a transaction holds its locks until the pooler ends it: set \
                 PgBouncer's idle_transaction_timeout (10 s, say)"
            );
            (plain, first)
        }
        Err(reason) => return Err(Refusal::Unreachable(reason)),
    };
    prepared_statements_kept(first, &chosen, place).await?;
    Ok(chosen)
}

/// Checks that two sessions' prepared statements do not meet, as they never do on a
/// direct connection or behind a pooler in session mode. sqlx prepares each statement
/// once per session, under a name of its own numbering (`sqlx_s_1`, …), then only names
/// it. A pooler in transaction or statement mode hands each statement to whichever server
/// session is free, and unless it keeps each client's prepared statements apart
/// (PgBouncer 1.21 and later, with `max_prepared_statements`), one client's statement
/// lands on the server session where another's of the same name was prepared: "prepared
/// statement "sqlx_s_1" already exists", at random, under load. Here the first session
/// (`first`) prepares a statement and closes, then a second one prepares its own: a pooler
/// hands it the server session just used, the most recent first, as PgBouncer does by
/// default (with `server_round_robin` set it may not, and the check passes), and in
/// session mode resets that server session when its client leaves.
async fn prepared_statements_kept(
    mut first: PgConnection,
    options: &PgConnectOptions,
    place: &str,
) -> Result<(), Refusal> {
    prepare(&mut first, place).await?;
    // Closed first: behind a pooler in session mode with one server session, the second
    // would wait for it.
    let _ = first.close().await;
    let mut second = first_session(options).await.map_err(Refusal::Unreachable)?;
    let kept = prepare(&mut second, place).await;
    let _ = second.close().await;
    kept
}

/// Prepares and runs one statement on `connection`, as the store's statements are: a
/// [`Refusal::Pooler`] when the server session it landed on knew another client's.
async fn prepare(connection: &mut PgConnection, place: &str) -> Result<(), Refusal> {
    let prepared = sqlx::query_scalar::<_, i32>("SELECT 1::int4")
        .fetch_one(connection)
        .await;
    prepared.map(|_| ()).map_err(|error| {
        if lost_statement(&error) {
            Refusal::Pooler(format!(
                "{place} mixes the prepared statements of its clients' sessions ({error}): a pooler in \
                 transaction or statement mode sits in front of PostgreSQL and does not keep them apart, \
                 and the store's statements are prepared. Use session pooling (PgBouncer's pool_mode = \
                 session), or PgBouncer 1.21 or later with max_prepared_statements = 100"
            ))
        } else {
            Refusal::Unreachable(error.to_string())
        }
    })
}

/// True for what a server session answers a client whose prepared statements a pooler
/// mixed with another's: the name already taken by another client's (`42P05`), unknown
/// (`26000`), or a statement bound with another's parameters (`08P01`: "bind message
/// supplies 7 parameters, but prepared statement "" requires 20").
fn lost_statement(error: &sqlx::Error) -> bool {
    error
        .as_database_error()
        .and_then(|error| error.code())
        .is_some_and(|code| matches!(code.as_ref(), "26000" | "42P05" | "08P01"))
}

/// Opens one session; the reason it could not, as text.
async fn first_session(options: &PgConnectOptions) -> Result<PgConnection, String> {
    match tokio::time::timeout(CONNECT_TIMEOUT, PgConnection::connect_with(options)).await {
        Err(_) => Err(format!("no answer within {}s", CONNECT_TIMEOUT.as_secs())),
        Ok(result) => result.map_err(|error| error.to_string()),
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
