//! How `POST /_tasks/NAME/runs` asks for a durable run: `run_at`, `delay`, `key`,
//! `priority`, `max_attempts` and `durable`, beside `payload` in the body or in the query
//! (the body wins). Each bad value is refused with 400 naming its field, before anything
//! is stored.

use std::time::Duration;

use axum::http::Uri;
use jiff::Timestamp;
use serde_json::{Map, Value, json};

use super::HttpError;
use crate::schedule::interval::parse_ms;

/// The highest priority a run may have; the lowest is its negative.
pub const MAX_PRIORITY: i64 = 100;

/// The most attempts a run may ask for.
pub const MAX_ATTEMPTS: i64 = 100;

/// The longest key a run may have, in bytes.
pub const MAX_KEY: usize = 200;

/// The options of a run that go with a durable run.
#[derive(Debug, Default, Clone, PartialEq)]
pub(super) struct RunOptions {
    pub run_at: Option<Timestamp>,
    pub delay: Option<Duration>,
    pub key: Option<String>,
    pub priority: Option<i32>,
    pub max_attempts: Option<u32>,
    /// `durable` as sent: `None` when absent.
    pub durable: Option<bool>,
}

/// The field names, as a client writes them.
const FIELDS: [&str; 6] = ["run_at", "delay", "key", "priority", "max_attempts", "durable"];

impl RunOptions {
    /// The options in `body` (the body's keys beside `payload`), then in the query.
    pub fn read(body: &Map<String, Value>, uri: &Uri) -> Result<RunOptions, HttpError> {
        let query: Vec<(String, String)> = form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
            .map(|(key, value)| (key.into_owned(), value.into_owned()))
            .collect();
        let value = |field: &str| {
            body.get(field).cloned().or_else(|| {
                query
                    .iter()
                    .rev()
                    .find(|(key, _)| key == field)
                    .map(|(_, value)| Value::String(value.clone()))
            })
        };
        let mut options = RunOptions::default();
        for field in FIELDS {
            let Some(value) = value(field) else {
                continue;
            };
            match field {
                "run_at" => options.run_at = Some(run_at(&value)?),
                "delay" => options.delay = Some(delay(&value)?),
                "key" => options.key = Some(key(&value)?),
                "priority" => {
                    options.priority = Some(number(field, &value, -MAX_PRIORITY, MAX_PRIORITY)? as i32)
                }
                "max_attempts" => options.max_attempts = Some(number(field, &value, 1, MAX_ATTEMPTS)? as u32),
                _ => options.durable = Some(flag(&value)?),
            }
        }
        if options.durable == Some(false) && options.asks_for_queue() {
            return Err(invalid(
                "durable",
                "`durable` is false, but `run_at`, `delay`, `key`, `priority` and `max_attempts` are for durable runs; drop them or the `durable` flag",
            ));
        }
        Ok(options)
    }

    /// True when an option of the queue is set (not only `durable`).
    pub fn asks_for_queue(&self) -> bool {
        self.run_at.is_some()
            || self.delay.is_some()
            || self.key.is_some()
            || self.priority.is_some()
            || self.max_attempts.is_some()
    }

    /// True when the run must go through the store.
    pub fn durable(&self) -> bool {
        self.durable == Some(true) || self.asks_for_queue()
    }

    /// True when the run is for later, so a caller is answered without waiting for it.
    pub fn deferred(&self) -> bool {
        self.delay.is_some_and(|delay| !delay.is_zero())
            || self.run_at.is_some_and(|at| at > Timestamp::now())
    }
}

/// 400 when a body without a `payload` key, which is then the task's payload whole, holds
/// a run option's name that the payload does not declare (`schema`: the task's payload
/// schema, `None` when it takes none). The client meant the option: left in the payload,
/// it would be dropped with the payload's unknown fields, and the run would start at once.
pub(super) fn no_option_in_payload(
    task: &str,
    payload: &Map<String, Value>,
    schema: Option<&Value>,
) -> Result<(), HttpError> {
    match FIELDS
        .into_iter()
        .find(|field| payload.contains_key(*field) && !declares(schema, field))
    {
        None => Ok(()),
        Some(field) => Err(invalid(
            field,
            &format!(
                "`{field}` is a run option, but a body without `payload` is the payload itself, and the payload of `{task}` has no `{field}`; send the options beside the payload, {{\"payload\": {{…}}, \"{field}\": …}}, or in the query, ?{field}=…"
            ),
        )),
    }
}

/// Whether a payload of `schema` may hold `field`: the schema names it among its
/// properties, or lists none (any JSON, a map). `None`: the task takes no payload.
fn declares(schema: Option<&Value>, field: &str) -> bool {
    let Some(schema) = schema else {
        return false;
    };
    match schema.get("properties").and_then(Value::as_object) {
        Some(properties) => {
            properties.contains_key(field)
                || schema
                    .get("additionalProperties")
                    .is_some_and(|more| *more != Value::Bool(false))
        }
        None => true,
    }
}

/// 400 naming `field`.
fn invalid(field: &str, message: &str) -> HttpError {
    HttpError::bad_request(message.to_owned()).with_data(json!({ "path": field, "reason": message }))
}

/// `run_at`: an RFC 3339 time with an offset, or Unix milliseconds.
fn run_at(value: &Value) -> Result<Timestamp, HttpError> {
    let parsed = match value {
        Value::Number(ms) => ms.as_i64().and_then(|ms| Timestamp::from_millisecond(ms).ok()),
        Value::String(text) => text.parse::<Timestamp>().ok().or_else(|| {
            text.parse::<i64>()
                .ok()
                .and_then(|ms| Timestamp::from_millisecond(ms).ok())
        }),
        _ => None,
    };
    parsed.ok_or_else(|| {
        invalid(
            "run_at",
            &format!(
                "`run_at` is {value}, which is not a time; send an RFC 3339 time with its offset, like \"2026-12-01T09:00:00Z\", or Unix milliseconds"
            ),
        )
    })
}

/// `delay`: milliseconds, or a duration like `"90s"`, `"10m"`, `"2h"`; not negative.
fn delay(value: &Value) -> Result<Duration, HttpError> {
    let ms = match value {
        Value::Number(ms) => ms.as_f64(),
        Value::String(text) => parse_ms(text.trim()),
        _ => None,
    };
    match ms {
        Some(ms) if ms.is_finite() && ms >= 0.0 => Duration::try_from_secs_f64(ms / 1000.0).map_err(|_| {
            invalid(
                "delay",
                &format!("`delay` is {value}, which is too long to wait for; send a `run_at` time instead"),
            )
        }),
        Some(ms) if ms < 0.0 => Err(invalid(
            "delay",
            &format!(
                "`delay` is {value}, which is negative; a run cannot start in the past (send 0 to start now)"
            ),
        )),
        _ => Err(invalid(
            "delay",
            &format!(
                "`delay` is {value}, which is not a duration; send milliseconds, or a duration like \"90s\", \"10m\" or \"2h\""
            ),
        )),
    }
}

/// `key`: a non-empty string of at most [`MAX_KEY`] bytes.
fn key(value: &Value) -> Result<String, HttpError> {
    match value {
        Value::String(key) if !key.is_empty() && key.len() <= MAX_KEY => Ok(key.clone()),
        _ => Err(invalid(
            "key",
            &format!("`key` is {value}; send a non-empty string of at most {MAX_KEY} bytes"),
        )),
    }
}

/// A whole number from `min` to `max`, as a number or a string.
fn number(field: &str, value: &Value, min: i64, max: i64) -> Result<i64, HttpError> {
    let parsed = match value {
        Value::Number(number) => number.as_i64(),
        Value::String(text) => text.trim().parse().ok(),
        _ => None,
    };
    parsed.filter(|n| (min..=max).contains(n)).ok_or_else(|| {
        invalid(
            field,
            &format!("`{field}` is {value}; send a whole number from {min} to {max}"),
        )
    })
}

/// `durable`: `true` or `false`, as a boolean or a string.
fn flag(value: &Value) -> Result<bool, HttpError> {
    match value {
        Value::Bool(flag) => Ok(*flag),
        Value::String(text) if text == "true" || text == "1" => Ok(true),
        Value::String(text) if text == "false" || text == "0" => Ok(false),
        _ => Err(invalid(
            "durable",
            &format!("`durable` is {value}; send true or false"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_delay_past_any_duration_is_refused_not_a_panic() {
        let error = delay(&json!(1e300)).expect_err("refused");
        assert!(format!("{error:?}").contains("too long"), "{error:?}");
    }

    #[test]
    fn an_options_name_in_a_payload_that_does_not_declare_it_is_refused() {
        #[derive(schemars::JsonSchema)]
        #[allow(dead_code)]
        struct Email {
            to: String,
            delay: Option<u32>,
        }
        let email = crate::task::payload::schema_of::<Email>();
        let any = crate::task::payload::schema_of::<Value>();
        let map = crate::task::payload::schema_of::<std::collections::HashMap<String, u32>>();
        let body = |value: Value| match value {
            Value::Object(object) => object,
            _ => panic!("an object"),
        };
        // No payload at all, or a typed one without the field: the option was meant.
        for (payload, schema) in [
            (json!({ "delay": "1h" }), None),
            (json!({ "key": "k" }), Some(&email)),
        ] {
            let refused = no_option_in_payload("mail", &body(payload.clone()), schema);
            assert!(refused.is_err(), "{payload} against {schema:?}");
        }
        // The payload's own field, or a payload of any JSON or any keys: it is the payload.
        for schema in [&email, &any, &map] {
            no_option_in_payload("mail", &body(json!({ "delay": 5 })), Some(schema)).expect("the payload's");
        }
        no_option_in_payload("mail", &body(json!({ "to": "ada" })), None).expect("no option named");
    }

    fn read(body: Value, query: &str) -> Result<RunOptions, HttpError> {
        let Value::Object(body) = body else {
            panic!("an object")
        };
        let uri: Uri = format!("/x?{query}").parse().expect("uri");
        RunOptions::read(&body, &uri)
    }

    #[test]
    fn options_come_from_the_body_then_the_query() {
        let options = read(
            json!({ "delay": "10m", "key": "welcome:ada", "priority": 5 }),
            "priority=1&max_attempts=4&run_at=2026-12-01T09:00:00Z",
        )
        .expect("options");
        assert_eq!(options.delay, Some(Duration::from_secs(600)));
        assert_eq!(options.key.as_deref(), Some("welcome:ada"));
        assert_eq!(options.priority, Some(5), "the body wins");
        assert_eq!(options.max_attempts, Some(4));
        assert_eq!(
            options.run_at,
            Some("2026-12-01T09:00:00Z".parse().expect("time"))
        );
        assert!(options.durable());
        assert!(options.deferred());
        let plain = read(json!({}), "wait=false").expect("none");
        assert!(!plain.durable());
        assert!(read(json!({ "durable": true }), "").expect("flag").durable());
        assert_eq!(
            read(json!({ "run_at": 1_800_000_000_000i64 }), "")
                .expect("ms")
                .run_at,
            Some(Timestamp::from_millisecond(1_800_000_000_000).expect("time"))
        );
    }

    #[test]
    fn each_bad_value_is_refused_naming_its_field() {
        for (body, field) in [
            (json!({ "run_at": "tomorrow" }), "run_at"),
            (json!({ "run_at": "2026-12-01 09:00" }), "run_at"),
            (json!({ "delay": -5 }), "delay"),
            (json!({ "delay": "-1s" }), "delay"),
            (json!({ "delay": "soon" }), "delay"),
            (json!({ "key": "" }), "key"),
            (json!({ "key": 7 }), "key"),
            (json!({ "priority": 101 }), "priority"),
            (json!({ "priority": 1.5 }), "priority"),
            (json!({ "max_attempts": 0 }), "max_attempts"),
            (json!({ "durable": "yes" }), "durable"),
            (json!({ "durable": false, "delay": 10 }), "durable"),
        ] {
            let error = read(body.clone(), "").expect_err("refused");
            assert_eq!(error.status, axum::http::StatusCode::BAD_REQUEST, "{body}");
            assert_eq!(
                error.data.as_ref().map(|d| d["path"].clone()),
                Some(json!(field)),
                "{body}"
            );
            assert!(
                error.message.contains(&format!("`{field}`")),
                "{body}: {}",
                error.message
            );
        }
        let error = read(json!({}), "delay=later").expect_err("query");
        assert!(error.message.contains("`delay`"), "{}", error.message);
    }
}
