//! [`RouteMeta`]: what a route file says about itself with `route_meta!`, read when the
//! app builds its OpenAPI document.

use serde_json::{Map, Value};

/// A route's metadata: today its `openapi` object, merged into the route's operation in
/// `GET /_openapi.json`.
///
/// In a route file:
///
/// ```ignore
/// taskyard::route_meta!({
///     "openapi": {
///         "tags": ["users"],
///         "description": "One user",
///         "parameters": [{ "in": "query", "name": "fields", "schema": { "type": "string" } }]
///     }
/// });
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RouteMeta {
    /// The OpenAPI operation fields (`tags`, `summary`, `description`, `parameters`,
    /// `requestBody`, `responses`, …).
    pub openapi: Option<Map<String, Value>>,
}

impl RouteMeta {
    /// Reads the object given to `route_meta!`. `openapi` (or Nitro's `openAPI`) must be an
    /// object; other keys are refused, naming the ones known.
    pub fn from_json(value: Value) -> Result<RouteMeta, String> {
        let Value::Object(object) = value else {
            return Err(
                "route_meta! takes an object, like `route_meta!({ \"openapi\": { .. } })`".to_owned(),
            );
        };
        let mut meta = RouteMeta::default();
        for (key, value) in object {
            match (key.as_str(), value) {
                ("openapi" | "openAPI", Value::Object(openapi)) => meta.openapi = Some(openapi),
                ("openapi" | "openAPI", _) => {
                    return Err(format!(
                        "route_meta! `{key}` must be an object of OpenAPI operation fields"
                    ));
                }
                (other, _) => {
                    return Err(format!(
                        "route_meta! does not know `{other}`; the known key is `openapi`"
                    ));
                }
            }
        }
        Ok(meta)
    }
}

/// Declares a route file's metadata (see [`RouteMeta`]); `taskyard-build` finds it in the
/// file and passes it to the app. Write it once, at the top level of a file under
/// `src/routes/` or `src/api/`.
#[macro_export]
macro_rules! route_meta {
    ($($meta:tt)+) => {
        #[doc(hidden)]
        pub fn route_meta() -> ::core::result::Result<$crate::route::RouteMeta, ::std::string::String> {
            $crate::route::RouteMeta::from_json($crate::__private::serde_json::json!($($meta)+))
        }
    };
}
