//! The login form that trades the production token for a session cookie, and the logout.

use axum::Extension;
use axum::body::Bytes;
use axum::extract::OriginalUri;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use maud::html;
use subtle::ConstantTimeEq;

use super::layout::{self, Section};
use super::{Form, Ui};
use crate::http::session::{self, UI_PATH};
use crate::http::{Api, TOKEN_VAR, TasksAccess};

/// `GET /_tasks/ui/login`: the form (in development, where no token exists, a note).
pub(super) async fn form(Extension(api): Extension<Api>, OriginalUri(uri): OriginalUri) -> Response {
    let ui = Ui::of(&api);
    let next = crate::http::tasks::query_value(&uri, "next");
    login_page(&ui, &api.access, StatusCode::OK, next.as_deref(), None)
}

/// `POST /_tasks/ui/login`: the token right, a session and back to the page asked for.
pub(super) async fn submit(Extension(api): Extension<Api>, headers: HeaderMap, body: Bytes) -> Response {
    let ui = Ui::of(&api);
    let form = Form::parse(&body);
    let next = form.get("next");
    let TasksAccess::Token(expected) = &api.access else {
        return layout::see_other(safe_next(next));
    };
    let given = form.get("token").unwrap_or("").trim();
    if !bool::from(given.as_bytes().ct_eq(expected.as_bytes())) {
        let message = format!("That is not the token set in {TOKEN_VAR}.");
        return login_page(&ui, &api.access, StatusCode::UNAUTHORIZED, next, Some(&message));
    }
    let mut response = layout::see_other(safe_next(next));
    if let Ok(cookie) = HeaderValue::from_str(&session::session_cookie(expected, &headers)) {
        response.headers_mut().insert(header::SET_COOKIE, cookie);
    }
    response
}

/// `POST /_tasks/ui/logout`: the session ends.
pub(super) async fn logout(Extension(api): Extension<Api>, headers: HeaderMap, body: Bytes) -> Response {
    let ui = Ui::of(&api);
    let form = Form::parse(&body);
    // Read-only or not, logging out takes the form's token: no other page ends a session.
    if !session::csrf_matches(&api.access, form.get(session::CSRF_FIELD).unwrap_or("")) {
        return layout::problem(&ui, StatusCode::FORBIDDEN, super::CSRF_REFUSAL);
    }
    let mut response = layout::see_other(&format!("{UI_PATH}/login"));
    if let Ok(cookie) = HeaderValue::from_str(&session::ended_session_cookie(&headers)) {
        response.headers_mut().insert(header::SET_COOKIE, cookie);
    }
    response
}

/// Where to go after logging in: a dashboard page, never another site.
fn safe_next(next: Option<&str>) -> &str {
    match next {
        Some(path)
            if (path == UI_PATH || path.starts_with("/_tasks/ui/") || path.starts_with("/_tasks/ui?"))
                && !path.contains("//")
                && !path.contains('\\') =>
        {
            path
        }
        _ => UI_PATH,
    }
}

fn login_page(
    ui: &Ui,
    access: &TasksAccess,
    status: StatusCode,
    next: Option<&str>,
    error: Option<&str>,
) -> Response {
    // Open to anyone: no session to end, and no CSRF token on it.
    let ui = Ui {
        session: false,
        csrf: String::new(),
        ..Ui::clone(ui)
    };
    let body = html! {
        div.login.card {
            h1 { "Log in to the dashboard" }
            @if matches!(access, TasksAccess::Token(_)) {
                @if let Some(error) = error { p.problem { (error) } }
                p.muted { "Enter the token set in " code { (TOKEN_VAR) } ". The session lasts until the browser closes." }
                form method="post" action={ (UI_PATH) "/login" } {
                    input type="hidden" name="next" value=(safe_next(next));
                    label { "Token" input type="password" name="token" autocomplete="current-password" required autofocus; }
                    button type="submit" { "Log in" }
                }
            } @else {
                p { "No login is needed: in development the dashboard answers this machine's browser." }
                p { a href=(safe_next(next)) { "Go to the dashboard" } }
            }
        }
    };
    layout::page_with_status(&ui, status, Section::None, "Log in", body)
}

#[cfg(test)]
mod tests {
    use super::safe_next;

    #[test]
    fn after_login_only_dashboard_pages_are_reached() {
        assert_eq!(
            safe_next(Some("/_tasks/ui/runs?status=failed")),
            "/_tasks/ui/runs?status=failed"
        );
        assert_eq!(safe_next(Some("https://evil.example/")), "/_tasks/ui");
        assert_eq!(safe_next(Some("//evil.example/_tasks/ui/")), "/_tasks/ui");
        assert_eq!(safe_next(Some("/_tasks/ui//evil.example")), "/_tasks/ui");
        assert_eq!(safe_next(Some("/_tasks/uix")), "/_tasks/ui");
        assert_eq!(safe_next(None), "/_tasks/ui");
    }
}
