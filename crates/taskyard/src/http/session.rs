//! The dashboard's browser session and the CSRF token of its forms.
//!
//! A browser cannot send the production token as a bearer header, so the dashboard's login
//! form trades it for a cookie (`HttpOnly`, `SameSite=Strict`, limited to the dashboard's
//! path, and `Secure` when the login came over HTTPS) holding a digest of the token: every instance with the same token accepts it, and
//! changing the token ends every session. The cookie opens the dashboard's own paths only,
//! never the JSON API, so no other page can use it to run a task.
//!
//! Every form of the dashboard carries a CSRF token that a page of another site cannot
//! read: a digest of the production token, or in development of a secret drawn once per
//! process. A write without it is refused, whatever the cookies say.

use std::sync::LazyLock;

use axum::http::{HeaderMap, header};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::TasksAccess;

/// The name of the dashboard's session cookie.
pub(crate) const SESSION_COOKIE: &str = "taskyard_session";

/// The name of the form field holding the CSRF token.
pub(crate) const CSRF_FIELD: &str = "csrf";

/// The dashboard's path prefix, where its cookie is sent.
pub(crate) const UI_PATH: &str = "/_tasks/ui";

/// A secret drawn once per process: the CSRF key in development, where no token exists.
static PROCESS_SECRET: LazyLock<String> = LazyLock::new(|| {
    let mut bytes = [0_u8; 32];
    if let Err(error) = getrandom::fill(&mut bytes) {
        // Without the system's randomness, the clock and the process id still make the
        // key unknown to a page of another site, which cannot read it either way.
        tracing::warn!(%error, "no system randomness for the dashboard's CSRF key");
        let seed = format!("{:?}{}", std::time::SystemTime::now(), std::process::id());
        bytes.copy_from_slice(&Sha256::digest(seed.as_bytes()));
    }
    hex(&bytes)
});

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

fn digest(purpose: &str, secret: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(purpose.as_bytes());
    hasher.update([0]);
    hasher.update(secret.as_bytes());
    hex(&hasher.finalize())
}

fn same(a: &str, b: &str) -> bool {
    bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// The session cookie's value for `token`.
pub(crate) fn session_value(token: &str) -> String {
    digest("taskyard dashboard session", token)
}

/// The `Set-Cookie` value that opens a session for `token`; `Secure` for a request that
/// came over HTTPS (see [`over_https`]).
pub(crate) fn session_cookie(token: &str, headers: &HeaderMap) -> String {
    format!(
        "{SESSION_COOKIE}={}; Path={UI_PATH}; HttpOnly; SameSite=Strict{}",
        session_value(token),
        secure(headers)
    )
}

/// The `Set-Cookie` value that ends the session.
pub(crate) fn ended_session_cookie(headers: &HeaderMap) -> String {
    format!(
        "{SESSION_COOKIE}=; Path={UI_PATH}; HttpOnly; SameSite=Strict; Max-Age=0{}",
        secure(headers)
    )
}

fn secure(headers: &HeaderMap) -> &'static str {
    if over_https(headers) { "; Secure" } else { "" }
}

/// Whether the browser reached the app over HTTPS, through a proxy that ends TLS (the app
/// itself serves plain HTTP): its `X-Forwarded-Proto` or `Forwarded` header says `https`, or
/// the form's page was an `https://` one (the browser's `Origin`). A header that says so
/// falsely only keeps the cookie from plain-HTTP requests: it opens nothing.
pub(crate) fn over_https(headers: &HeaderMap) -> bool {
    let text = |name| headers.get(name).and_then(|value| value.to_str().ok());
    let first = |list: &str| list.split(',').next().unwrap_or("").trim().to_ascii_lowercase();
    text("x-forwarded-proto").is_some_and(|proto| first(proto) == "https")
        || text("forwarded").is_some_and(|forwarded| {
            first(forwarded)
                .split(';')
                .any(|pair| pair.trim() == "proto=https" || pair.trim() == "proto=\"https\"")
        })
        || text("origin").is_some_and(|origin| origin.to_ascii_lowercase().starts_with("https://"))
}

/// True when the request carries the session cookie of `token`.
pub(crate) fn has_session(headers: &HeaderMap, token: &str) -> bool {
    let expected = session_value(token);
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .any(|(name, value)| name == SESSION_COOKIE && same(value, &expected))
}

/// The CSRF token the dashboard's forms carry under `access`.
pub(crate) fn csrf_token(access: &TasksAccess) -> String {
    match access {
        TasksAccess::Token(token) => digest("taskyard dashboard csrf", token),
        TasksAccess::Loopback | TasksAccess::Off => digest("taskyard dashboard csrf", &PROCESS_SECRET),
    }
}

/// True when `given` is the CSRF token of `access`.
pub(crate) fn csrf_matches(access: &TasksAccess, given: &str) -> bool {
    same(given, &csrf_token(access))
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    #[test]
    fn a_session_opens_for_its_token_only() {
        let mut headers = HeaderMap::new();
        let cookie = format!("theme=dark; {SESSION_COOKIE}={}", session_value("s3cret"));
        headers.insert(header::COOKIE, HeaderValue::from_str(&cookie).expect("a header"));
        assert!(has_session(&headers, "s3cret"));
        assert!(!has_session(&headers, "other"));
        assert!(!has_session(&HeaderMap::new(), "s3cret"));
        // The cookie is a digest, never the token itself.
        assert!(!session_cookie("s3cret", &HeaderMap::new()).contains("s3cret"));
    }

    #[test]
    fn csrf_tokens_differ_by_key_and_are_checked_whole() {
        let token = TasksAccess::Token("s3cret".to_owned());
        let loopback = TasksAccess::Loopback;
        assert_ne!(csrf_token(&token), csrf_token(&loopback));
        assert_ne!(csrf_token(&token), session_value("s3cret"));
        assert!(csrf_matches(&token, &csrf_token(&token)));
        assert!(!csrf_matches(&token, &csrf_token(&token)[..20]));
        assert!(!csrf_matches(&loopback, ""));
    }
}
