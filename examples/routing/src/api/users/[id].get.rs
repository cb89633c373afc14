use taskyard::route::Event;

taskyard::route_meta!({
    "openapi": {
        "tags": ["users"],
        "summary": "One user",
        "parameters": [
            { "name": "id", "in": "path", "required": true, "description": "The user's number", "schema": { "type": "integer" } },
            { "name": "fields", "in": "query", "schema": { "type": "string" } }
        ],
        "responses": {
            "200": { "description": "The user", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/User" } } } }
        },
        // Merged into the document's `components`, not part of this operation.
        "$global": {
            "components": {
                "schemas": { "User": { "type": "object", "properties": { "id": { "type": "integer" } } } }
            }
        }
    }
});

pub async fn handler(event: Event) -> String {
    format!("user {}", event.param("id").unwrap_or_default())
}
