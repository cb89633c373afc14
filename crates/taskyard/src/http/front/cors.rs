//! The `cors` rule: CORS headers on responses, and `OPTIONS` preflights answered 204.
//!
//! `cors = true` allows any origin, method and header, and every response under the rule
//! carries h3's default headers: `access-control-allow-origin: *`, `-allow-methods: *`,
//! `-allow-headers: *`, `-expose-headers: *` and `-max-age: 0` (Nitro 2 sent the first
//! four on every response; h3's `handleCors` adds the expose list). A table narrows it:
//! `{ origin = ["https://a.example"], methods = ["GET", "POST"], allow_headers = ["x-key"],
//! expose_headers = ["x-id"], credentials = true, max_age = 600 }`. Credentials with any
//! origin is refused, as browsers refuse it.

use axum::extract::Request;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use toml::Value;

#[derive(Debug, Clone)]
pub(crate) struct Cors {
    /// `None`: any origin.
    origins: Option<Vec<String>>,
    methods: String,
    allow_headers: Option<String>,
    expose_headers: Option<String>,
    credentials: bool,
    max_age: Option<u64>,
}

const FIELDS: &str = "origin, methods, allow_headers, expose_headers, credentials, max_age";

impl Cors {
    pub(crate) fn parse(value: &Value) -> Result<Option<Cors>, String> {
        let mut cors = Cors {
            origins: None,
            methods: "*".to_owned(),
            allow_headers: None,
            expose_headers: None,
            credentials: false,
            max_age: None,
        };
        let table = match value {
            Value::Boolean(false) => return Ok(None),
            Value::Boolean(true) => return Ok(Some(cors)),
            Value::Table(table) => table,
            _ => return Err(format!("`cors` is true, false or a table of {FIELDS}")),
        };
        for (key, value) in table {
            match key.as_str() {
                "origin" => {
                    let origins = list(key, value)?;
                    cors.origins = (!origins.iter().any(|o| o == "*")).then_some(origins);
                }
                "methods" => cors.methods = list(key, value)?.join(", "),
                "allow_headers" | "headers" => cors.allow_headers = Some(list(key, value)?.join(", ")),
                "expose_headers" => cors.expose_headers = Some(list(key, value)?.join(", ")),
                "credentials" => match value {
                    Value::Boolean(on) => cors.credentials = *on,
                    _ => return Err("`cors.credentials` is true or false".to_owned()),
                },
                "max_age" => match value {
                    Value::Integer(seconds) if *seconds >= 0 => cors.max_age = Some(*seconds as u64),
                    _ => return Err("`cors.max_age` is a number of seconds".to_owned()),
                },
                other => return Err(format!("`cors` does not take `{other}`; it takes {FIELDS}")),
            }
        }
        if cors.credentials && cors.origins.is_none() {
            return Err("`cors.credentials = true` needs a list of origins: browsers refuse credentials with any origin (`*`)".to_owned());
        }
        Ok(Some(cors))
    }

    /// The origin to allow for a request from `origin`, if any.
    fn allowed_origin(&self, origin: Option<&HeaderValue>) -> Option<HeaderValue> {
        match &self.origins {
            None => Some(HeaderValue::from_static("*")),
            Some(list) => {
                let origin = origin?;
                let text = origin.to_str().ok()?;
                list.iter().any(|o| o == text).then(|| origin.clone())
            }
        }
    }

    /// A 204 answer when `request` is a preflight.
    pub(crate) fn preflight(&self, request: &Request) -> Option<Response> {
        let headers = request.headers();
        if request.method() != Method::OPTIONS || !headers.contains_key(header::ACCESS_CONTROL_REQUEST_METHOD)
        {
            return None;
        }
        let mut response = StatusCode::NO_CONTENT.into_response();
        // Any header allowed: echo what the browser asks for, before `decorate` fills in
        // the rest (methods, age, a listed `allow_headers`).
        if self.allow_headers.is_none()
            && let Some(asked) = headers.get(header::ACCESS_CONTROL_REQUEST_HEADERS)
        {
            response
                .headers_mut()
                .insert(header::ACCESS_CONTROL_ALLOW_HEADERS, asked.clone());
        }
        self.decorate(&mut response, headers.get(header::ORIGIN));
        Some(response)
    }

    /// The headers every response under the rule carries. The methods, headers and age a
    /// preflight answered with are kept.
    pub(crate) fn decorate(&self, response: &mut Response, origin: Option<&HeaderValue>) {
        let headers = response.headers_mut();
        let any = HeaderValue::from_static("*");
        if let Ok(methods) = HeaderValue::try_from(self.methods.as_str()) {
            headers
                .entry(header::ACCESS_CONTROL_ALLOW_METHODS)
                .or_insert(methods);
        }
        let allow_headers = match &self.allow_headers {
            Some(list) => HeaderValue::try_from(list.as_str()).ok(),
            None => Some(any.clone()),
        };
        if let Some(allow_headers) = allow_headers {
            headers
                .entry(header::ACCESS_CONTROL_ALLOW_HEADERS)
                .or_insert(allow_headers);
        }
        headers
            .entry(header::ACCESS_CONTROL_MAX_AGE)
            .or_insert_with(|| HeaderValue::from(self.max_age.unwrap_or(0)));
        if let Some(allowed) = self.allowed_origin(origin) {
            headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, allowed);
        }
        if self.origins.is_some() {
            headers.append(header::VARY, HeaderValue::from_static("origin"));
        }
        if self.credentials {
            headers.insert(
                header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
                HeaderValue::from_static("true"),
            );
        }
        let expose = match &self.expose_headers {
            Some(list) => HeaderValue::try_from(list.as_str()).ok(),
            None => Some(any),
        };
        if let Some(expose) = expose {
            headers.insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, expose);
        }
    }
}

fn list(key: &str, value: &Value) -> Result<Vec<String>, String> {
    match value {
        Value::String(one) => Ok(vec![one.clone()]),
        Value::Array(items) => items
            .iter()
            .map(|item| match item {
                Value::String(text) => Ok(text.clone()),
                _ => Err(format!("`cors.{key}` lists strings")),
            })
            .collect(),
        _ => Err(format!("`cors.{key}` is a string or a list of strings")),
    }
}
