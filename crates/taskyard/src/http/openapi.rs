//! `GET /_tasks/openapi.json`: an OpenAPI 3.1 document of the task API.
//!
//! Written out by hand: the API is small and fixed, and the only generated parts are each
//! task's payload schema (from `schemars`, already JSON Schema 2020-12, which OpenAPI 3.1
//! embeds as is). Each task also gets its own `POST /_tasks/<name>/runs` operation whose
//! request body carries that schema, so clients and fuzzers see every task's payload.

use axum::{Extension, Json};
use serde_json::{Map, Value, json};

use super::Api;
use super::run_options::{MAX_ATTEMPTS, MAX_KEY, MAX_PRIORITY};

pub(super) async fn document(Extension(api): Extension<Api>) -> Json<Value> {
    let mut schemas = base_schemas();
    let mut paths = base_paths();
    let mut entries = api.runtime.tasks();
    entries.sort_by(|a, b| a.name().cmp(b.name()));
    for entry in entries {
        let component = entry
            .name()
            .replace(|c: char| !c.is_ascii_alphanumeric() && c != '-' && c != '_', ".");
        let payload = match entry.task().payload_schema() {
            Some(schema) => {
                let schema = hoist(&component, schema.clone(), &mut schemas);
                let name = format!("{component}.payload");
                schemas.insert(name.clone(), schema);
                json!({ "$ref": format!("#/components/schemas/{name}") })
            }
            None => json!({ "type": "object" }),
        };
        let mut operation = start_run_operation(&format!("run:{}", entry.name()), payload);
        operation["summary"] = json!(entry.task().get_description());
        operation["parameters"] = json!([wait_parameter()]);
        paths.insert(
            format!("/_tasks/{}/runs", entry.name()),
            json!({ "post": operation }),
        );
    }
    Json(json!({
        "openapi": "3.1.0",
        "info": {
            "title": "taskyard task API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Run tasks, read their runs and manage schedules. In development only \
                            loopback clients are answered; in production every request needs \
                            `Authorization: Bearer <TASKYARD_TASKS_TOKEN>`."
        },
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": { "bearer": { "type": "http", "scheme": "bearer" } },
            "responses": {
                "Error": {
                    "description": "An error, in Nitro's shape",
                    "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } }
                }
            }
        },
        "security": [{}, { "bearer": [] }]
    }))
}

/// Moves a schema's `$defs` into the document's components (named `<component>.<def>`) and
/// points its references there, since `#/$defs/...` would resolve against the document.
fn hoist(component: &str, mut schema: Value, schemas: &mut Map<String, Value>) -> Value {
    if let Some(Value::Object(defs)) = schema.as_object_mut().and_then(|object| object.remove("$defs")) {
        for (name, mut def) in defs {
            rewrite_refs(component, &mut def);
            schemas.insert(format!("{component}.{name}"), def);
        }
    }
    if let Some(object) = schema.as_object_mut() {
        object.remove("$schema");
    }
    rewrite_refs(component, &mut schema);
    schema
}

fn rewrite_refs(component: &str, value: &mut Value) {
    match value {
        Value::Object(object) => {
            for (key, inner) in object.iter_mut() {
                match (key.as_str(), inner) {
                    ("$ref", Value::String(target)) => {
                        if let Some(name) = target.strip_prefix("#/$defs/") {
                            *target = format!("#/components/schemas/{component}.{name}");
                        }
                    }
                    (_, inner) => rewrite_refs(component, inner),
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|item| rewrite_refs(component, item)),
        _ => {}
    }
}

fn schema_ref(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

fn ok(description: &str, schema: Value) -> Value {
    json!({ "description": description, "content": { "application/json": { "schema": schema } } })
}

/// A response `{key: [schema, …]}`.
fn listing(description: &str, key: &str, schema: &str) -> Value {
    ok(
        description,
        json!({ "type": "object", "properties": { key: { "type": "array", "items": schema_ref(schema) } } }),
    )
}

fn error() -> Value {
    json!({ "$ref": "#/components/responses/Error" })
}

fn path_parameter(name: &str, description: &str) -> Value {
    json!({ "name": name, "in": "path", "required": true, "description": description, "schema": { "type": "string" } })
}

/// `/_tasks/schedules/{name}/tick`: a platform's scheduler fires a tick.
fn fire_tick(operation: &str) -> Value {
    let fired = json!({ "type": "object", "required": ["schedule", "status"], "properties": {
        "schedule": { "type": "string" },
        "tick": { "type": ["string", "null"], "format": "date-time" },
        "status": { "type": "string", "enum": ["started", "claimed", "paused", "disabled", "stopped", "skipped", "no_tick"] },
        "run_id": { "type": "string" },
        "previous_run": { "type": "string" }
    } });
    json!({
        "operationId": operation,
        "summary": "Fire a schedule's tick from a platform's scheduler; a tick already claimed starts nothing",
        "parameters": [
            path_parameter("name", "The schedule's name"),
            query_parameter("at", "`auto` (the latest tick due now), the tick's time (RFC 3339) or Unix milliseconds", json!({ "type": "string" })),
        ],
        "responses": {
            "202": ok("This fire claimed the tick and started its run", fired.clone()),
            "200": ok("Nothing started: the tick was claimed before, the schedule is paused or disabled, an earlier run goes on, or no tick is due", fired),
            "400": error(),
            "404": error(),
        }
    })
}

fn query_parameter(name: &str, description: &str, schema: Value) -> Value {
    json!({ "name": name, "in": "query", "required": false, "description": description, "schema": schema })
}

fn wait_parameter() -> Value {
    query_parameter(
        "wait",
        "`false` answers 202 with the run id at once instead of waiting for the result",
        json!({ "type": "boolean", "default": true }),
    )
}

fn start_run_operation(operation_id: &str, payload: Value) -> Value {
    json!({
        "operationId": operation_id,
        "requestBody": {
            "required": false,
            "content": { "application/json": { "schema": {
                "type": "object",
                "properties": {
                    "payload": payload,
                    "durable": { "type": "boolean", "description": "Through the store: any instance may run it, and it survives the death of one" },
                    "run_at": { "description": "Not before this time (RFC 3339, or Unix milliseconds); durable", "oneOf": [
                        { "type": "string", "format": "date-time" }, { "type": "integer" }
                    ] },
                    "delay": { "description": "Not before this long from now (milliseconds, or like `10m`); durable", "oneOf": [
                        { "type": "integer", "minimum": 0 }, { "type": "string" }
                    ] },
                    "key": { "type": "string", "minLength": 1, "maxLength": MAX_KEY, "description": "One queued or running run of the task per key; durable" },
                    "priority": { "type": "integer", "minimum": -MAX_PRIORITY, "maximum": MAX_PRIORITY, "default": 0, "description": "Higher runs first; durable" },
                    "max_attempts": { "type": "integer", "minimum": 1, "maximum": MAX_ATTEMPTS, "description": "Attempts in all (default: the task's retries); durable" }
                }
            } } }
        },
        "responses": {
            "200": ok("The run finished; its result", json!({
                "type": "object",
                "properties": { "run_id": { "type": "string" }, "result": {} },
                "required": ["run_id", "result"]
            })),
            "202": ok("The run started (`wait=false`), is queued for later (`run_at`, `delay`), or this start joined a run queued for later", json!({
                "type": "object",
                "properties": { "run_id": { "type": "string" }, "joined": { "type": "boolean" }, "durable": { "type": "boolean" } },
                "required": ["run_id", "joined", "durable"]
            })),
            "400": error(), "401": error(), "403": error(), "404": error(), "413": error(), "500": error(), "503": error()
        }
    })
}

fn base_paths() -> Map<String, Value> {
    let name = path_parameter("name", "The task's name, e.g. `db:migrate`");
    let id = path_parameter("id", "The run's id");
    let schedule = path_parameter("name", "The schedule's name");
    let mut generic_run = start_run_operation("startRun", json!({ "type": "object" }));
    generic_run["summary"] = json!("Start a run of a task");
    generic_run["parameters"] = json!([name.clone(), wait_parameter()]);
    let schedule_change = |id: &str, summary: &str| {
        json!({ "post": {
            "operationId": id, "summary": summary, "parameters": [schedule.clone()],
            "responses": { "200": ok("The schedule now", schema_ref("Schedule")), "404": error() }
        } })
    };
    let paths = json!({
        "/_tasks": { "get": {
            "operationId": "listTasks", "summary": "Every task, with its payload schema",
            "responses": { "200": listing("The tasks", "tasks", "Task") }
        } },
        "/_tasks/health": { "get": {
            "operationId": "health", "summary": "This instance's state",
            "responses": { "200": ok("Health", json!({ "type": "object" })) }
        } },
        "/_tasks/{name}/runs": { "post": generic_run },
        "/_tasks/runs": { "get": {
            "operationId": "listRuns", "summary": "Recorded runs, newest first",
            "parameters": [
                query_parameter("task", "Only this task's runs", json!({ "type": "string" })),
                query_parameter("status", "Only runs with this status", schema_ref("RunStatus")),
                query_parameter("schedule", "Only runs of this schedule", json!({ "type": "string" })),
                query_parameter("unfinished", "Only queued or running runs", json!({ "type": "boolean" })),
                query_parameter("scheduled", "Only runs started by schedules (true), or only the others (false)", json!({ "type": "boolean" })),
                query_parameter("trigger", "Only runs with this trigger kind", json!({ "type": "string", "enum": crate::Trigger::KINDS })),
                query_parameter("instance", "Only runs of this instance", json!({ "type": "string" })),
                query_parameter("since", "Only runs queued at or after this instant (RFC 3339)", json!({ "type": "string", "format": "date-time" })),
                query_parameter("until", "Only runs queued before this instant (RFC 3339)", json!({ "type": "string", "format": "date-time" })),
                query_parameter("q", "Only runs with this text, ignoring ASCII case, in their payload, result or error", json!({ "type": "string" })),
                query_parameter("before", "Only runs older than this run: the next page after one that ended with it", json!({ "type": "string", "format": "uuid" })),
                query_parameter("limit", "At most this many", json!({ "type": "integer", "minimum": 1, "maximum": 1000, "default": 100 }))
            ],
            "responses": { "200": listing("The runs", "runs", "Run"), "400": error() }
        } },
        "/_tasks/runs/{id}": { "get": {
            "operationId": "getRun", "summary": "One run", "parameters": [id.clone()],
            "responses": { "200": ok("The run", schema_ref("Run")), "404": error() }
        } },
        "/_tasks/runs/{id}/cancel": { "post": {
            "operationId": "cancelRun", "summary": "Cancel a queued or running run", "parameters": [id],
            "responses": {
                "200": ok("Cancelled", json!({ "type": "object", "properties": { "run_id": { "type": "string" }, "cancelled": { "type": "boolean" } } })),
                "404": error(), "409": error()
            }
        } },
        "/_tasks/runs/{id}/retry": { "post": {
            "operationId": "retryRun", "summary": "Queue a run that failed, timed out, was cancelled or abandoned again, as its next attempt",
            "parameters": [id.clone()],
            "responses": {
                "202": ok("Queued again", json!({ "type": "object", "properties": {
                    "run_id": { "type": "string" }, "attempt": { "type": "integer" }, "status": schema_ref("RunStatus")
                } })),
                "404": error(), "409": error(), "503": error()
            }
        } },
        "/_tasks/schedules": { "get": {
            "operationId": "listSchedules", "summary": "Every schedule, with its next fire time",
            "responses": { "200": listing("The schedules", "schedules", "Schedule") }
        } },
        "/_tasks/schedules/{name}": { "get": {
            "operationId": "getSchedule", "summary": "One schedule", "parameters": [schedule.clone()],
            "responses": { "200": ok("The schedule", schema_ref("Schedule")), "404": error() }
        } },
        "/_tasks/schedules/{name}/pause": schedule_change("pauseSchedule", "Stop a schedule's timer on every instance (stored: it survives restarts)"),
        "/_tasks/schedules/{name}/resume": schedule_change("resumeSchedule", "Restart a paused schedule's timer"),
        "/_tasks/schedules/{name}/tick": {
            "get": fire_tick("fireTickGet"),
            "post": fire_tick("fireTick"),
        },
        "/_tasks/lifecycle": { "get": {
            "operationId": "listLifecycle", "summary": "Every lifecycle task, visible task, resource and computed value",
            "responses": { "200": listing("The lifecycle nodes, in registration order", "lifecycle", "LifecycleNode") }
        } },
        "/_tasks/events": { "get": {
            "operationId": "events", "summary": "Run events as server-sent events",
            "parameters": [
                query_parameter("task", "Only this task's events", json!({ "type": "string" })),
                query_parameter("run", "Follow one run: its record first, then its events until it finishes", json!({ "type": "string" }))
            ],
            "responses": {
                "200": { "description": "An event stream", "content": { "text/event-stream": { "schema": { "type": "string" } } } },
                "404": error()
            }
        } },
        "/_tasks/openapi.json": { "get": {
            "operationId": "openapi", "summary": "This document",
            "responses": { "200": ok("OpenAPI 3.1", json!({ "type": "object" })) }
        } },
        "/_nitro/tasks": { "get": {
            "operationId": "nitroListTasks", "summary": "Nitro's task list",
            "responses": { "200": ok("Tasks and cron schedules", json!({
                "type": "object",
                "properties": {
                    "tasks": { "type": "object", "additionalProperties": { "type": "object", "properties": { "description": { "type": "string" } } } },
                    "scheduledTasks": { "oneOf": [
                        { "const": false },
                        { "type": "array", "items": { "type": "object", "properties": {
                            "cron": { "type": "string" }, "tasks": { "type": "array", "items": { "type": "string" } }
                        } } }
                    ] }
                }
            })) }
        } },
        "/_nitro/tasks/{name}": {
            "get": nitro_run("nitroRunTaskGet", &name),
            "post": nitro_run("nitroRunTask", &name)
        }
    });
    match paths {
        Value::Object(paths) => paths,
        _ => Map::new(),
    }
}

fn nitro_run(operation_id: &str, name: &Value) -> Value {
    json!({
        "operationId": operation_id,
        "summary": "Run a task, Nitro's way: the payload is the query string merged with the body's `payload`",
        "parameters": [name],
        "responses": {
            "200": ok("The task's result", json!({ "type": "object", "properties": { "result": {} }, "required": ["result"] })),
            "400": error(), "404": error(), "409": error(), "413": error(), "500": error()
        }
    })
}

fn base_schemas() -> Map<String, Value> {
    let timestamp = json!({ "type": "string", "format": "date-time" });
    let nullable_timestamp = json!({ "type": ["string", "null"], "format": "date-time" });
    let schemas = json!({
        "Error": {
            "type": "object",
            "properties": {
                "error": { "const": true },
                "url": { "type": "string" },
                "statusCode": { "type": "integer" },
                "statusMessage": { "type": "string" },
                "message": { "type": "string" },
                "data": {}
            },
            "required": ["error", "url", "statusCode", "statusMessage", "message"]
        },
        "LifecycleNode": {
            "type": "object",
            "properties": {
                "name": { "type": "string" },
                "kind": { "type": "string", "enum": ["task", "visible_task", "resource", "computed"] },
                "runs": { "type": "integer", "minimum": 0 },
                "state": { "type": "string", "enum": ["waiting", "running", "idle", "failed", "stopped"] },
                "last_error": { "type": ["string", "null"] }
            },
            "required": ["name", "kind", "runs", "state", "last_error"]
        },
        "RunStatus": {
            "type": "string",
            "enum": ["queued", "running", "succeeded", "failed", "cancelled", "timed_out", "abandoned"]
        },
        "Trigger": {
            "type": "object",
            "properties": {
                "kind": { "type": "string", "enum": ["manual", "http", "cli", "schedule", "startup", "custom"] },
                "schedule": { "type": "string" },
                "scheduled_at": timestamp,
                "strategy": { "type": "string" },
                "args": {}
            },
            "required": ["kind"]
        },
        "Run": {
            "type": "object",
            "properties": {
                "id": { "type": "string" },
                "task": { "type": "string" },
                "trigger": schema_ref("Trigger"),
                "payload": {},
                "status": schema_ref("RunStatus"),
                "attempt": { "type": "integer" },
                "attempts": { "type": "array", "items": { "type": "object" } },
                "instance": { "type": "string" },
                "queued_at": timestamp,
                "started_at": nullable_timestamp,
                "finished_at": nullable_timestamp,
                "duration_ms": { "type": ["integer", "null"] },
                "result": {},
                "error": { "type": ["string", "null"] },
                "progress": {
                    "type": ["object", "null"],
                    "properties": { "fraction": { "type": "number" }, "message": { "type": ["string", "null"] } }
                }
            },
            "required": ["id", "task", "trigger", "status", "attempt", "instance", "started_at", "finished_at", "duration_ms", "result", "error", "progress"]
        },
        "Task": {
            "type": "object",
            "properties": {
                "name": { "type": "string" },
                "description": { "type": "string" },
                "payload_schema": {},
                "concurrency": { "type": "object", "properties": { "mode": { "type": "string" }, "limit": { "type": "integer" } } },
                "timeout_ms": { "type": ["integer", "null"] },
                "max_attempts": { "type": "integer" },
                "durable": { "type": "boolean", "description": "Every run goes through the store" },
                "keep_succeeded": { "type": "boolean", "description": "Whether its succeeded durable runs are kept in the history" },
                "source": { "type": "string" }
            },
            "required": ["name", "description", "payload_schema", "concurrency"]
        },
        "Schedule": {
            "type": "object",
            "properties": {
                "name": { "type": "string" },
                "type": { "type": "string" },
                "task": { "type": "string" },
                "cron": { "type": ["string", "null"] },
                "tz": { "type": ["string", "null"] },
                "interval_ms": { "type": ["integer", "null"] },
                "immediate": { "type": "boolean" },
                "disabled": { "type": "boolean" },
                "paused": { "type": "boolean" },
                "overlap": { "type": "string" },
                "catch_up": {},
                "next": nullable_timestamp,
                "last_tick": nullable_timestamp,
                "options": {}
            },
            "required": ["name", "type", "task", "paused", "next"]
        }
    });
    match schemas {
        Value::Object(schemas) => schemas,
        _ => Map::new(),
    }
}
