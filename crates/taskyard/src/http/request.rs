//! A request's input — its body, its JSON, its query — read in one place, so that every
//! failure answers in the one error shape, for the task endpoints and for
//! [`Event`](crate::route::Event) alike (axum's own extractors answer in plain text).

use std::pin::Pin;

use axum::body::{Body, Bytes, HttpBody};
use axum::http::{StatusCode, Uri};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};

use super::HttpError;

/// A JSON object.
type Object = Map<String, Value>;

/// 413: the body is over the app's limit.
fn too_large(limit: usize) -> HttpError {
    HttpError::status(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!(
            "the request body is larger than the limit of {limit} bytes; send less, or raise it with `App::body_limit`"
        ),
    )
}

/// The whole body, at most `limit` bytes: 413 past it (at once when its length says so),
/// 400 when the connection fails while it is read. Read here rather than by axum's
/// `Bytes` extractor or `to_bytes`, which box a limit around the body and gather its
/// pieces in a list: a body that comes in one piece, as nearly every JSON request does,
/// is that piece, with neither (measured: 2,690 instructions a task request there).
pub(crate) async fn read_body(mut body: Body, limit: usize) -> Result<Bytes, HttpError> {
    if body.size_hint().lower() > limit as u64 {
        return Err(too_large(limit));
    }
    let mut first = Bytes::new();
    // The pieces from the second one on, after a copy of the first.
    let mut joined: Vec<u8> = Vec::new();
    while let Some(frame) = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await {
        let frame = frame
            .map_err(|error| HttpError::bad_request(format!("cannot read the request body: {error}")))?;
        // Trailers carry nothing a task reads.
        let Ok(data) = frame.into_data() else {
            continue;
        };
        if first.len() + joined.len() + data.len() > limit {
            return Err(too_large(limit));
        }
        if first.is_empty() {
            first = data;
        } else {
            if joined.is_empty() {
                joined.extend_from_slice(&first);
            }
            joined.extend_from_slice(&data);
        }
    }
    Ok(if joined.is_empty() {
        first
    } else {
        Bytes::from(joined)
    })
}

/// The payload a task endpoint's body carries ([`json`] then [`payload`]).
pub(super) fn body_payload(body: &[u8]) -> Result<Map<String, Value>, HttpError> {
    payload(json(body)?).map(|(payload, _)| payload)
}

/// The payload a task endpoint's body carries and, when the body wraps it in `payload`,
/// the body's other keys (the run's options); `None` when the body is the payload whole.
pub(super) fn body_payload_and_options(body: &[u8]) -> Result<(Object, Option<Object>), HttpError> {
    payload(json(body)?)
}

/// The body as JSON: `None` when it is empty or blank, 400 (with the line and column) when
/// it is not JSON.
pub(crate) fn json(bytes: &[u8]) -> Result<Option<Value>, HttpError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    serde_json::from_slice(bytes).map(Some).map_err(|error| {
        HttpError::bad_request(format!("the request body is not valid JSON: {error}"))
            .with_data(json!({ "line": error.line(), "column": error.column() }))
    })
}

/// `value` read into `T`; 400 naming where it does not fit (`user.age`) and why. `what`
/// says what was read: `body` or `query`.
pub(crate) fn decode<T: DeserializeOwned>(value: Value, what: &str) -> Result<T, HttpError> {
    serde_path_to_error::deserialize(value).map_err(|error| {
        let path = error.path().to_string();
        let reason = error.into_inner().to_string();
        HttpError::bad_request(format!("the {what} does not fit at `{path}`: {reason}"))
            .with_data(json!({ "path": path, "reason": reason }))
    })
}

/// The payload a body carries: its `payload` key when it has one, otherwise the whole
/// object. Anything but an object there is refused, naming what was sent. Beside it, the
/// body's other keys when it has a `payload` key (`None` when it has none).
pub(super) fn payload(body: Option<Value>) -> Result<(Object, Option<Object>), HttpError> {
    let (payload, rest) = match body {
        None => return Ok((Map::new(), None)),
        Some(Value::Object(mut object)) => match object.remove("payload") {
            Some(payload) => (payload, Some(object)),
            None => (Value::Object(object), None),
        },
        Some(other) => (other, None),
    };
    match payload {
        Value::Object(object) => Ok((object, rest)),
        Value::Null => Ok((Map::new(), rest)),
        other => Err(HttpError {
            data: Some(json!({ "path": "payload", "reason": "expected a JSON object" })),
            ..HttpError::status(
                StatusCode::BAD_REQUEST,
                format!(
                    "the payload must be a JSON object, like {{\"payload\": {{\"key\": \"value\"}}}}; got {}",
                    kind(&other)
                ),
            )
        }),
    }
}

/// Query parameters as a JSON object, as Nitro builds a payload from them: every value a
/// string, a repeated key an array of its values in order.
pub(crate) fn query_object(uri: &Uri) -> Map<String, Value> {
    let mut object = Map::new();
    let query = uri.query().unwrap_or("");
    for (key, value) in form_urlencoded::parse(query.as_bytes()) {
        let value = Value::String(value.into_owned());
        match object.get_mut(key.as_ref()) {
            None => {
                object.insert(key.into_owned(), value);
            }
            Some(Value::Array(values)) => values.push(value),
            Some(first) => *first = Value::Array(vec![first.take(), value]),
        }
    }
    object
}

/// Query values are strings. Where the task's payload schema says a top-level field is an
/// integer, a number or a boolean (or an array of them), a value that reads as one becomes
/// one: `?times=2` is `{"times": 2}`, as a user of `?ms=100` expects. A value that does not
/// read as its type stays a string, and the payload check then names the field.
pub(super) fn coerce_query(query: &mut Map<String, Value>, schema: &Value) {
    let Some(properties) = schema.get("properties").and_then(Value::as_object) else {
        return;
    };
    for (key, value) in query.iter_mut() {
        let Some(field) = properties.get(key) else {
            continue;
        };
        match value {
            Value::Array(items) => {
                let item_type = field.get("items").and_then(scalar_type);
                if let Some(item_type) = item_type {
                    for item in items.iter_mut() {
                        coerce(item, item_type);
                    }
                }
            }
            single => {
                if let Some(field_type) = scalar_type(field) {
                    coerce(single, field_type);
                }
            }
        }
    }
}

/// The scalar type a schema allows besides `null`: `integer`, `number` or `boolean`.
fn scalar_type(schema: &Value) -> Option<&str> {
    let allowed: Vec<&str> = match schema.get("type")? {
        Value::String(one) => vec![one.as_str()],
        Value::Array(many) => many.iter().filter_map(Value::as_str).collect(),
        _ => return None,
    };
    allowed
        .into_iter()
        .find(|kind| matches!(*kind, "integer" | "number" | "boolean"))
}

fn coerce(value: &mut Value, kind: &str) {
    let Value::String(text) = value else {
        return;
    };
    let coerced = match kind {
        "integer" => text.parse::<i64>().ok().map(Value::from),
        "number" => text
            .parse::<f64>()
            .ok()
            .filter(|n| n.is_finite())
            .and_then(|n| serde_json::Number::from_f64(n).map(Value::Number)),
        "boolean" => match text.as_str() {
            "true" | "1" => Some(Value::Bool(true)),
            "false" | "0" => Some(Value::Bool(false)),
            _ => None,
        },
        _ => None,
    };
    if let Some(coerced) = coerced {
        *value = coerced;
    }
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_query_keys_become_arrays_in_order() {
        let uri: Uri = "/x?field=value&array=1&array=2&array=3&sp=a%20b"
            .parse()
            .expect("uri");
        assert_eq!(
            Value::Object(query_object(&uri)),
            json!({ "field": "value", "array": ["1", "2", "3"], "sp": "a b" })
        );
    }

    #[test]
    fn query_values_take_the_scalar_types_of_the_payload_schema() {
        let uri: Uri = "/x?times=2&ms=1.5&loud=true&name=7&ids=1&ids=2&bad=x&extra=3"
            .parse()
            .expect("uri");
        let schema = json!({ "properties": {
            "times": { "type": "integer" },
            "ms": { "type": ["number", "null"] },
            "loud": { "type": "boolean" },
            "name": { "type": "string" },
            "ids": { "type": "array", "items": { "type": "integer" } },
            "bad": { "type": "integer" },
        }});
        let mut query = query_object(&uri);
        coerce_query(&mut query, &schema);
        assert_eq!(
            Value::Object(query),
            json!({ "times": 2, "ms": 1.5, "loud": true, "name": "7", "ids": [1, 2], "bad": "x", "extra": "3" })
        );
    }

    #[test]
    fn a_body_without_a_payload_key_is_the_payload_and_scalars_are_refused() {
        let (whole, rest) = payload(Some(json!({ "a": 1 }))).expect("object");
        assert_eq!(Value::Object(whole), json!({ "a": 1 }));
        assert_eq!(rest, None);
        let (inner, rest) = payload(Some(json!({ "payload": { "b": 2 }, "name": "x" }))).expect("object");
        assert_eq!(Value::Object(inner), json!({ "b": 2 }));
        assert_eq!(rest.map(Value::Object), Some(json!({ "name": "x" })));
        let error = payload(Some(json!({ "payload": [1] }))).expect_err("array");
        assert_eq!(error.status, StatusCode::BAD_REQUEST);
        assert!(error.message.contains("got an array"), "{}", error.message);
    }
}
