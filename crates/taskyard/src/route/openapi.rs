//! `GET /_openapi.json`: an OpenAPI 3.1 document of the app's file routes.
//!
//! Each route is an operation at its path (`/hello/{*path}` becomes `/hello/{path}`),
//! under its method, or `get` for a route of every method (as Nitro does). Its path
//! parameters are declared (`in: path`, required, string); the file's `route_meta!`
//! `openapi` object is merged over the operation, and its `parameters` are merged with the
//! declared ones: a user parameter with the same `name` and `in` replaces the declared one,
//! others are added (Nitro replaces the whole list). Default tags: `API Routes` under
//! `/api/`, `Internal` under `/_`, `App Routes` otherwise.

use serde_json::{Map, Value, json};

use super::RouteInfo;

/// The document for `routes` of the app `title` at `version`.
pub(crate) fn document(routes: &[RouteInfo], title: &str, version: &str) -> Value {
    let mut paths = Map::new();
    for route in routes {
        let path = openapi_path(&route.path);
        let method = route.method.as_deref().unwrap_or("GET").to_ascii_lowercase();
        let item = paths.entry(path).or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(item) = item {
            item.insert(method, operation(route));
        }
    }
    json!({
        "openapi": "3.1.0",
        "info": { "title": title, "version": version },
        "paths": paths,
    })
}

/// axum's `{*rest}` is OpenAPI's `{rest}`.
fn openapi_path(path: &str) -> String {
    path.replace("{*", "{")
}

fn default_tag(path: &str) -> &'static str {
    if path == "/api" || path.starts_with("/api/") {
        "API Routes"
    } else if path.starts_with("/_") {
        "Internal"
    } else {
        "App Routes"
    }
}

fn operation(route: &RouteInfo) -> Value {
    let declared: Vec<Value> = route
        .params
        .iter()
        .map(|name| json!({ "name": name, "in": "path", "required": true, "schema": { "type": "string" } }))
        .collect();
    let mut operation = Map::new();
    operation.insert("tags".to_owned(), json!([default_tag(&route.path)]));
    operation.insert("responses".to_owned(), json!({ "200": { "description": "OK" } }));
    let mut parameters = declared;
    if let Some(openapi) = &route.meta.openapi {
        for (key, value) in openapi {
            if key == "parameters" {
                if let Value::Array(user) = value {
                    merge_parameters(&mut parameters, user);
                }
                continue;
            }
            operation.insert(key.clone(), value.clone());
        }
    }
    if !parameters.is_empty() {
        operation.insert("parameters".to_owned(), Value::Array(parameters));
    }
    Value::Object(operation)
}

/// User parameters replace declared ones of the same `name` and `in`; the rest are added.
fn merge_parameters(parameters: &mut Vec<Value>, user: &[Value]) {
    for parameter in user {
        let same = |p: &Value| p.get("name") == parameter.get("name") && p.get("in") == parameter.get("in");
        match parameters.iter_mut().find(|p| same(p)) {
            Some(existing) => *existing = parameter.clone(),
            None => parameters.push(parameter.clone()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::route::RouteMeta;

    #[test]
    fn user_parameters_merge_with_the_declared_path_parameters() {
        let meta = RouteMeta::from_json(json!({ "openapi": {
            "tags": ["users"],
            "parameters": [
                { "name": "id", "in": "path", "required": true, "description": "The user's id", "schema": { "type": "integer" } },
                { "name": "fields", "in": "query" }
            ]
        }}))
        .expect("meta");
        let route = RouteInfo {
            source: "src/api/users/[id].get.rs".into(),
            path: "/api/users/{id}".into(),
            method: Some("GET".into()),
            params: vec!["id".into()],
            meta,
        };
        let doc = document(&[route], "app", "1.0.0");
        let op = &doc["paths"]["/api/users/{id}"]["get"];
        assert_eq!(op["tags"], json!(["users"]));
        assert_eq!(op["parameters"][0]["schema"]["type"], "integer");
        assert_eq!(op["parameters"][1]["name"], "fields");
        assert_eq!(op["parameters"].as_array().map(Vec::len), Some(2));
    }
}
