use taskyard::route::Event;

taskyard::route_meta!({
    "openapi": {
        "tags": ["users"],
        "summary": "One user",
        "parameters": [
            { "name": "id", "in": "path", "required": true, "description": "The user's number", "schema": { "type": "integer" } },
            { "name": "fields", "in": "query", "schema": { "type": "string" } }
        ]
    }
});

pub async fn handler(event: Event) -> String {
    format!("user {}", event.param("id").unwrap_or_default())
}
