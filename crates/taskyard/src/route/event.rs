//! [`Event`]: Nitro's event helpers as an axum extractor, and [`Context`], the per-request
//! map middleware fills for handlers.

use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, RawPathParams, Request};
use axum::http::request::Parts;
use axum::http::{Extensions, HeaderMap, Method, Uri};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::http::{BodyLimit, HttpError, request_runtime, unreachable_runtime};
use crate::sync::lock;
use crate::{RunRequest, Runtime, Trigger};

/// A request, with Nitro's helpers: path parameters, the query, the JSON body, the context
/// middleware filled, and the task runtime. It reads the whole body, so it comes last among
/// a handler's extractors.
///
/// ```
/// use taskyard::http::HttpError;
/// use taskyard::route::Event;
///
/// // src/api/users/[id].post.rs
/// pub async fn handler(event: Event) -> Result<String, HttpError> {
///     let id = event.param("id").unwrap_or_default();
///     #[derive(serde::Deserialize)]
///     struct Rename { name: String }
///     let body: Rename = event.json_body()?; // 400 naming the field when it does not fit
///     let user = event.context().get("user");
///     Ok(format!("user {id} renamed to {} by {user:?}", body.name))
/// }
/// ```
pub struct Event {
    parts: Parts,
    runtime: Option<Runtime>,
    params: Vec<(String, String)>,
    body: Bytes,
    context: Context,
}

impl std::fmt::Debug for Event {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Event")
            .field("method", &self.parts.method)
            .field("uri", &self.parts.uri)
            .field("params", &self.params)
            .field("body", &self.body.len())
            .field("context", &self.context)
            .finish_non_exhaustive()
    }
}

impl Event {
    /// A path parameter: `id` for `[id].rs`, the rest of the path (with its `/`) for
    /// `[...path].rs`.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    /// Every path parameter, in order.
    pub fn params(&self) -> &[(String, String)] {
        &self.params
    }

    /// The query string as a JSON object: every value a string, a repeated key an array of
    /// its values (Nitro's `getQuery`).
    pub fn query(&self) -> Map<String, Value> {
        crate::http::query_object(&self.parts.uri)
    }

    /// The query read into `T`; a value that does not fit is a 400 naming the key.
    pub fn query_as<T: DeserializeOwned>(&self) -> Result<T, HttpError> {
        crate::http::decode(Value::Object(self.query()), "query")
    }

    /// The body read as JSON into `T`: 400 when it is not JSON or does not fit, naming the
    /// field (`user.age`) and why.
    pub fn json_body<T: DeserializeOwned>(&self) -> Result<T, HttpError> {
        let value = crate::http::json(&self.body)?.unwrap_or(Value::Null);
        crate::http::decode(value, "body")
    }

    /// The raw body.
    pub fn body(&self) -> &Bytes {
        &self.body
    }

    /// The body as text (invalid UTF-8 replaced).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The values middleware set for this request.
    pub fn context(&self) -> &Context {
        &self.context
    }

    /// The request method.
    pub fn method(&self) -> &Method {
        &self.parts.method
    }

    /// The request URI, path and query.
    pub fn uri(&self) -> &Uri {
        &self.parts.uri
    }

    /// The request path, without the query.
    pub fn path(&self) -> &str {
        self.parts.uri.path()
    }

    /// The request headers.
    pub fn headers(&self) -> &HeaderMap {
        &self.parts.headers
    }

    /// A header's value, if it is present and text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.parts.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The request extensions (what middleware added).
    pub fn extensions(&self) -> &Extensions {
        &self.parts.extensions
    }

    /// The app's task runtime.
    pub fn runtime(&self) -> Result<&Runtime, HttpError> {
        self.runtime.as_ref().ok_or_else(unreachable_runtime)
    }

    /// Runs the task `name` with `payload` (trigger `http`) and returns its result: Nitro's
    /// `runTask` in a handler. An unknown task is a 404, a bad payload a 400, a failure a
    /// 500 with the task's message.
    pub async fn run_task(&self, name: &str, payload: Value) -> Result<Value, HttpError> {
        let request = RunRequest::new(name).payload(payload).trigger(Trigger::Http);
        Ok(self.runtime()?.run(request).await?)
    }
}

impl<S: Send + Sync> FromRequest<S> for Event {
    type Rejection = HttpError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let (mut parts, body) = request.into_parts();
        let params = match RawPathParams::from_request_parts(&mut parts, state).await {
            Ok(params) => params
                .iter()
                .map(|(key, value)| (key.to_owned(), value.to_owned()))
                .collect(),
            Err(_) => Vec::new(),
        };
        let context = Context::of(&mut parts.extensions);
        let limit = parts
            .extensions
            .get::<BodyLimit>()
            .map_or(crate::http::DEFAULT_BODY_LIMIT, |l| l.0);
        let body = crate::http::read_body(body, limit).await?;
        Ok(Event {
            runtime: request_runtime(&parts),
            parts,
            params,
            body,
            context,
        })
    }
}

/// Values shared by the middleware and the handler of one request, by key (Nitro's
/// `event.context`). Clones share the map.
///
/// ```
/// use axum::extract::Request;
/// use axum::middleware::Next;
/// use axum::response::Response;
/// use taskyard::route::Context;
///
/// // src/middleware/1.user.rs
/// pub async fn middleware(mut request: Request, next: Next) -> Response {
///     Context::of(request.extensions_mut()).set("user", serde_json::json!({ "name": "Nitro" }));
///     next.run(request).await
/// }
/// ```
#[derive(Debug, Clone, Default)]
pub struct Context {
    values: Arc<Mutex<Map<String, Value>>>,
}

impl Context {
    /// The context of the request whose extensions these are, created on first use.
    pub fn of(extensions: &mut Extensions) -> Context {
        extensions.get_or_insert_default::<Context>().clone()
    }

    /// Sets `key`; a value that cannot be JSON is stored as `null`.
    pub fn set(&self, key: &str, value: impl Serialize) {
        let value = serde_json::to_value(value).unwrap_or(Value::Null);
        lock(&self.values).insert(key.to_owned(), value);
    }

    /// The value under `key`, if any.
    pub fn get(&self, key: &str) -> Option<Value> {
        lock(&self.values).get(key).cloned()
    }

    /// The value at `key` read into `T`, or `None` when absent or of another shape.
    pub fn get_as<T: DeserializeOwned>(&self, key: &str) -> Option<T> {
        serde_json::from_value(self.get(key)?).ok()
    }

    /// Removes and returns the value under `key`.
    pub fn remove(&self, key: &str) -> Option<Value> {
        lock(&self.values).remove(key)
    }

    /// A copy of every value.
    pub fn to_map(&self) -> Map<String, Value> {
        lock(&self.values).clone()
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Context {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(Context::of(&mut parts.extensions))
    }
}
