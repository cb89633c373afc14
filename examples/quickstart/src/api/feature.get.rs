//! `GET /api/feature`: the flag and the report derived from it (see `src/lifecycle.rs`).

use serde_json::{Value, json};
use taskyard::Runtime;
use taskyard::lifecycle::ResourceState;

use crate::lifecycle::{Feature, FeatureReport};

pub async fn handler(runtime: Runtime) -> axum::Json<Value> {
    let enabled = runtime
        .state()
        .get::<Feature>()
        .map(|f| f.0.get())
        .unwrap_or(false);
    let report = match runtime.state().get::<FeatureReport>().map(|r| r.0.get()) {
        Ok(ResourceState::Resolved(report)) => json!(report),
        Ok(ResourceState::Rejected(error)) => json!({ "error": error }),
        _ => Value::Null,
    };
    axum::Json(json!({ "enabled": enabled, "report": report }))
}
