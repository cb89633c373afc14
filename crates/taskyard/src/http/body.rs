//! Request bodies and query strings, read by hand so every failure answers in the one error
//! shape (axum's own extractors answer in plain text).

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::http::{StatusCode, Uri};
use serde_json::{Map, Value, json};

use super::HttpError;

/// The payload a request body carries ([`json`] then [`payload`]).
pub(super) fn body_payload(
    uri: &Uri,
    body: Result<Bytes, BytesRejection>,
    limit: usize,
) -> Result<Map<String, Value>, HttpError> {
    payload(uri, json(uri, body, limit)?)
}

/// The body as JSON: `None` when it is empty; 413 over the limit, 400 when it is not JSON.
pub(super) fn json(
    uri: &Uri,
    body: Result<Bytes, BytesRejection>,
    limit: usize,
) -> Result<Option<Value>, HttpError> {
    let bytes = body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            HttpError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                uri,
                format!("the request body is larger than the limit of {limit} bytes; send less, or raise it with `App::body_limit`"),
            )
        } else {
            HttpError::new(StatusCode::BAD_REQUEST, uri, format!("cannot read the request body: {rejection}"))
        }
    })?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|error| HttpError {
            data: Some(json!({ "line": error.line(), "column": error.column() })),
            ..HttpError::new(
                StatusCode::BAD_REQUEST,
                uri,
                format!("the request body is not valid JSON: {error}"),
            )
        })
}

/// The payload a body carries: its `payload` key when it has one, otherwise the whole
/// object. Anything but an object there is refused, naming what was sent.
pub(super) fn payload(uri: &Uri, body: Option<Value>) -> Result<Map<String, Value>, HttpError> {
    let payload = match body {
        None => return Ok(Map::new()),
        Some(Value::Object(mut object)) => match object.remove("payload") {
            Some(payload) => payload,
            None => Value::Object(object),
        },
        Some(other) => other,
    };
    match payload {
        Value::Object(object) => Ok(object),
        Value::Null => Ok(Map::new()),
        other => Err(HttpError {
            data: Some(json!({ "path": "payload", "reason": "expected a JSON object" })),
            ..HttpError::new(
                StatusCode::BAD_REQUEST,
                uri,
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
    fn a_body_without_a_payload_key_is_the_payload_and_scalars_are_refused() {
        let uri: Uri = "/x".parse().expect("uri");
        let whole = payload(&uri, Some(json!({ "a": 1 }))).expect("object");
        assert_eq!(Value::Object(whole), json!({ "a": 1 }));
        let inner = payload(&uri, Some(json!({ "payload": { "b": 2 }, "name": "x" }))).expect("object");
        assert_eq!(Value::Object(inner), json!({ "b": 2 }));
        let error = payload(&uri, Some(json!({ "payload": [1] }))).expect_err("array");
        assert_eq!(error.status, StatusCode::BAD_REQUEST);
        assert!(error.message.contains("got an array"), "{}", error.message);
    }
}
