use taskyard::route::Event;

pub async fn handler(event: Event) -> axum::Json<serde_json::Value> {
    axum::Json(serde_json::Value::Object(event.context().to_map()))
}
