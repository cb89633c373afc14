//! `GET /_openapi.json`: an OpenAPI 3.1 document of the app's file routes.
//!
//! Each route is an operation at its path (`/hello/{*path}` becomes `/hello/{path}`),
//! under its method, or `get` for a route of every method (as Nitro does). Its path
//! parameters are declared (`in: path`, required, string); the file's `route_meta!`
//! `openapi` object is merged over the operation, and its `parameters` are merged with the
//! declared ones: a user parameter with the same `name` and `in` replaces the declared one,
//! others are added (Nitro replaces the whole list). Default tags: `API Routes` under
//! `/api/`, `Internal` under `/_`, `App Routes` otherwise.
//!
//! The document's `info` is the package's name and version, or what `[openapi]` in
//! `taskyard.toml` says (`title`, `description`, `version`). A route's `$global` object
//! (Nitro's `defineRouteMeta({ openAPI: { $global } })`) is not part of its operation: its
//! `components` are merged into the document's, each kind (`schemas`, `securitySchemes`, …)
//! by name.

use serde_json::{Map, Value, json};
use toml::Table;

use super::RouteInfo;
use crate::Error;

/// The document's `info`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Info {
    pub title: String,
    pub description: Option<String>,
    pub version: String,
}

impl Info {
    /// The package's `title` and `version`, replaced by the `[openapi]` table of the app's
    /// `taskyard.toml` (read from `origin`) where it has them.
    pub fn from_config(table: &Table, origin: &str, title: &str, version: &str) -> Result<Info, Error> {
        let mut info = Info {
            title: title.to_owned(),
            description: None,
            version: version.to_owned(),
        };
        let Some(section) = table.get("openapi") else {
            return Ok(info);
        };
        let fail = |message: String| Error::ConfigFile {
            origin: origin.to_owned(),
            message: format!("{origin}: {message}"),
        };
        let toml::Value::Table(section) = section else {
            return Err(fail(
                "`openapi` must be a table, like [openapi] with title = \"My API\"".to_owned(),
            ));
        };
        for (key, value) in section {
            let toml::Value::String(text) = value else {
                return Err(fail(format!("`openapi.{key}` must be a string")));
            };
            match key.as_str() {
                "title" => info.title.clone_from(text),
                "description" => info.description = Some(text.clone()),
                "version" => info.version.clone_from(text),
                other => {
                    return Err(fail(format!(
                        "`openapi.{other}` is not a setting; the settings are title, description and version"
                    )));
                }
            }
        }
        Ok(info)
    }
}

/// The document for `routes`, described by `info`.
pub(crate) fn document(routes: &[RouteInfo], info: &Info) -> Value {
    let mut paths = Map::new();
    let mut components = Map::new();
    for route in routes {
        let path = openapi_path(&route.path);
        let method = route.method.as_deref().unwrap_or("GET").to_ascii_lowercase();
        let item = paths.entry(path).or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(item) = item {
            item.insert(method, operation(route));
        }
        let global = route
            .meta
            .openapi
            .as_ref()
            .and_then(|openapi| openapi.get("$global"));
        if let Some(Value::Object(kinds)) = global.and_then(|global| global.get("components")) {
            for (kind, named) in kinds {
                let into = components
                    .entry(kind.clone())
                    .or_insert_with(|| Value::Object(Map::new()));
                if let (Value::Object(into), Value::Object(named)) = (into, named) {
                    into.extend(named.iter().map(|(name, value)| (name.clone(), value.clone())));
                }
            }
        }
    }
    let mut description = Map::new();
    description.insert("title".to_owned(), json!(info.title));
    if let Some(text) = &info.description {
        description.insert("description".to_owned(), json!(text));
    }
    description.insert("version".to_owned(), json!(info.version));
    let mut document = Map::new();
    document.insert("openapi".to_owned(), json!("3.1.0"));
    document.insert("info".to_owned(), Value::Object(description));
    document.insert("paths".to_owned(), Value::Object(paths));
    if !components.is_empty() {
        document.insert("components".to_owned(), Value::Object(components));
    }
    Value::Object(document)
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
            if key == "$global" {
                continue;
            }
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
        let info = Info {
            title: "app".into(),
            description: None,
            version: "1.0.0".into(),
        };
        let doc = document(&[route], &info);
        let op = &doc["paths"]["/api/users/{id}"]["get"];
        assert_eq!(op["tags"], json!(["users"]));
        assert_eq!(op["parameters"][0]["schema"]["type"], "integer");
        assert_eq!(op["parameters"][1]["name"], "fields");
        assert_eq!(op["parameters"].as_array().map(Vec::len), Some(2));
    }

    #[test]
    fn info_comes_from_the_config_and_global_components_are_merged() {
        let table: Table =
            "[openapi]\ntitle = \"Shop API\"\ndescription = \"Orders and users\"\nversion = \"2.1.0\""
                .parse()
                .expect("toml");
        let info = Info::from_config(&table, "taskyard.toml", "shop", "0.1.0").expect("info");
        let route = |path: &str, meta: Value| RouteInfo {
            source: format!("src/api{path}.get.rs"),
            path: format!("/api{path}"),
            method: Some("GET".into()),
            params: Vec::new(),
            meta: RouteMeta::from_json(meta).expect("meta"),
        };
        let routes = [
            route(
                "/a",
                json!({ "openapi": { "$global": { "components": {
                "securitySchemes": { "bearer": { "type": "http", "scheme": "bearer" } },
                "schemas": { "User": { "type": "object" } }
            } } } }),
            ),
            route(
                "/b",
                json!({ "openapi": { "$global": { "components": {
                "schemas": { "Order": { "type": "object" } }
            } } } }),
            ),
        ];
        let doc = document(&routes, &info);
        assert_eq!(
            doc["info"],
            json!({ "title": "Shop API", "description": "Orders and users", "version": "2.1.0" })
        );
        assert_eq!(doc["components"]["securitySchemes"]["bearer"]["scheme"], "bearer");
        assert_eq!(
            doc["components"]["schemas"],
            json!({ "User": { "type": "object" }, "Order": { "type": "object" } })
        );
        assert!(
            doc["paths"]["/api/a"]["get"].get("$global").is_none(),
            "not an operation field"
        );

        let bad: Table = "[openapi]\nname = \"x\"".parse().expect("toml");
        let error = Info::from_config(&bad, "taskyard.toml", "shop", "0.1.0")
            .expect_err("refused")
            .to_string();
        assert!(error.contains("`openapi.name` is not a setting"), "{error}");
    }
}
