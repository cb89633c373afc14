//! Bulk actions: cancel or retry every run a filter matches, after a page that shows how
//! many that is.

use axum::Extension;
use axum::body::Bytes;
use axum::extract::OriginalUri;
use axum::http::{StatusCode, Uri};
use axum::response::Response;
use maud::html;

use super::layout::{self, Section};
use super::runs::{self, list_query, list_url};
use super::{Form, Ui, write_refusal};
use crate::http::Api;
use crate::http::session::UI_PATH;
use crate::{RunFilter, RunRecord, RunStatus};

/// Most runs one bulk action reaches; a larger set takes several.
pub(super) const MOST: usize = 10_000;

/// What a bulk action does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    Cancel,
    Retry,
}

impl Action {
    fn parse(text: Option<&str>) -> Option<Action> {
        match text? {
            "cancel" => Some(Action::Cancel),
            "retry" => Some(Action::Retry),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Action::Cancel => "cancel",
            Action::Retry => "retry",
        }
    }

    /// Whether the action applies to `run`: a cancel to a run still going, a retry to one
    /// that ended without success.
    fn applies(self, run: &RunRecord) -> bool {
        match self {
            Action::Cancel => !run.status.is_final(),
            Action::Retry => run.status.is_final() && run.status != RunStatus::Succeeded,
        }
    }
}

/// The runs `filter` matches that `action` applies to, at most [`MOST`], newest first.
async fn targets(api: &Api, filter: &RunFilter, action: Action) -> Result<Vec<RunRecord>, crate::Error> {
    let mut filter = filter.clone().limit(MOST);
    filter.before = None;
    if action == Action::Cancel {
        filter.unfinished = true;
    }
    let runs = api.runtime.list_runs(&filter).await?;
    Ok(runs.into_iter().filter(|run| action.applies(run)).collect())
}

/// The filter and action of a bulk request (the query string, or the posted form's
/// `query`), or what is wrong with it.
fn read(query: &str, action: Option<&str>) -> Result<(RunFilter, Action), String> {
    let filter = RunFilter::default()
        .limit(runs::PAGE)
        .from_query(query, runs::MOST)
        .map_err(|bad| bad.to_string())?;
    let action = Action::parse(action).ok_or("A bulk action is `action=cancel` or `action=retry`.")?;
    Ok((filter, action))
}

/// `GET /_tasks/ui/runs/bulk?action=cancel|retry&FILTER`: how many runs the action would
/// reach, and the form that does it.
pub(super) async fn confirm(Extension(api): Extension<Api>, OriginalUri(uri): OriginalUri) -> Response {
    let ui = Ui::of(&api);
    let query = uri.query().unwrap_or("");
    let action = crate::http::tasks::query_value(&uri, "action");
    let (filter, action) = match read(query, action.as_deref()) {
        Ok(read) => read,
        Err(message) => return layout::problem(&ui, StatusCode::BAD_REQUEST, &message),
    };
    let targets = match targets(&api, &filter, action).await {
        Ok(targets) => targets,
        Err(error) => return layout::failed(&ui, error),
    };
    let verb = match action {
        Action::Cancel => "Cancel",
        Action::Retry => "Retry",
    };
    let body = html! {
        h1 { (verb) " every matching run" }
        p data-count=(targets.len()) {
            @if targets.is_empty() {
                "No run matches that " (action.name()) " applies to."
            } @else {
                (verb) " " strong { (targets.len()) } @if targets.len() == 1 { " run" } @else { " runs" }
                @if targets.len() == MOST { " (the newest " (MOST) "; run it again for the rest)" }
                "?"
            }
        }
        @if ui.writable && !targets.is_empty() {
            form.inline method="post" action={ (UI_PATH) "/runs/bulk" } {
                (ui.csrf_field())
                input type="hidden" name="action" value=(action.name());
                input type="hidden" name="query" value=(list_query(&filter, None));
                button.danger[action == Action::Cancel] type="submit" { (verb) " " (targets.len()) }
            }
            " "
        }
        a href=(list_url(&filter, None)) { "Back to the list" }
        h2 { "The newest of them" }
        (runs::table(&targets[..targets.len().min(20)], "None."))
    };
    layout::page(&ui, Section::Runs, &format!("{verb} every matching run"), body)
}

/// `POST /_tasks/ui/runs/bulk`: the action, on every run it applies to.
pub(super) async fn act(Extension(api): Extension<Api>, body: Bytes) -> Response {
    let ui = Ui::of(&api);
    let form = Form::parse(&body);
    if let Some(refused) = write_refusal(&api, &ui, &form) {
        return refused;
    }
    let (filter, action) = match read(form.get("query").unwrap_or(""), form.get("action")) {
        Ok(read) => read,
        Err(message) => return layout::problem(&ui, StatusCode::BAD_REQUEST, &message),
    };
    let targets = match targets(&api, &filter, action).await {
        Ok(targets) => targets,
        Err(error) => return layout::failed(&ui, error),
    };
    let (mut done, mut skipped) = (0_usize, 0_usize);
    for run in &targets {
        let acted = match action {
            Action::Cancel => api.runtime.cancel(run.id).await,
            Action::Retry => api.runtime.retry(run.id).await.map(|_| true),
        };
        // A run that ended or was retried meanwhile is skipped, not an error.
        match acted {
            Ok(true) => done += 1,
            Ok(false) | Err(_) => skipped += 1,
        }
    }
    let query = list_query(&filter, None);
    let separator = if query.is_empty() { "" } else { "&" };
    layout::see_other(&format!(
        "{UI_PATH}/runs?{query}{separator}bulk={}&done={done}&skipped={skipped}",
        action.name()
    ))
}

/// What a bulk action did, for the list it comes back to.
pub(super) fn notice(uri: &Uri) -> Option<String> {
    let value = |name| crate::http::tasks::query_value(uri, name);
    let action = Action::parse(value("bulk").as_deref())?;
    let done: usize = value("done")?.parse().ok()?;
    let skipped: usize = value("skipped").and_then(|n| n.parse().ok()).unwrap_or(0);
    let verb = match action {
        Action::Cancel => "Cancel asked for",
        Action::Retry => "Queued again:",
    };
    Some(format!(
        "{verb} {done} {}{}",
        if done == 1 { "run" } else { "runs" },
        if skipped > 0 {
            format!("; {skipped} had ended or changed meanwhile")
        } else {
            String::new()
        }
    ))
}
