//! The lifecycle: the startup and visible tasks, resources and computed values, with their
//! state, how many times each ran, and its last error.

use axum::Extension;
use axum::response::Response;
use maud::html;

use super::Ui;
use super::format::name_of;
use super::layout::{self, Section};
use crate::http::Api;

/// `GET /_tasks/ui/lifecycle`.
pub(super) async fn page(Extension(api): Extension<Api>) -> Response {
    let ui = Ui::of(&api);
    let nodes = api.lifecycle.list();
    let body = html! {
        h1 { "Lifecycle" }
        @if nodes.is_empty() { p.muted { "The app declares no lifecycle task, resource or computed value." } } @else {
            table {
                thead { tr { th { "name" } th { "kind" } th { "state" } th.num { "runs" } th { "last error" } } }
                tbody {
                    @for node in &nodes {
                        @let state = name_of(node.state);
                        tr data-node=(node.name) {
                            td { code { (node.name) } }
                            td { (name_of(node.kind).replace('_', " ")) }
                            td { span class={ "status lifecycle-" (state) } { (state) } }
                            td.num { (node.runs) }
                            td { @if let Some(error) = &node.last_error { (error) } }
                        }
                    }
                }
            }
        }
    };
    layout::page(&ui, Section::Lifecycle, "Lifecycle", body)
}
