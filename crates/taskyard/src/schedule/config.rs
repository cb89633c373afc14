//! Schedules from `taskyard.toml`, in both forms:
//!
//! ```toml
//! # Nitro's form: cron → task name or list of names.
//! [scheduled_tasks]
//! "* * * * *" = ["cms:update"]
//! "0 * * * *" = "db:cleanup"
//!
//! # egg-schedule's options, one table per schedule.
//! [schedules.cleandb]
//! type = "worker"
//! cron = "0 0 3 * * *"
//! cron_options = { tz = "Europe/Paris" }
//! task = "db:cleanup"
//! # stopped and started again as this flag of the file flips
//! disable = { config = "features.maintenance" }
//! ```
//!
//! A Nitro-form schedule is named `TASK@CRON` (`cms:update@* * * * *`) and has type
//! `worker`: it runs once per tick in the whole cluster.

use jiff::Timestamp;
use serde_json::Value;
use toml::{Table, Value as Toml};

use super::definition::{CATCH_UP_ALL_DEFAULT, CatchUp, Overlap, Schedule};
use super::interval::IntervalSpec;
use crate::Error;
use crate::config::Config;

/// The options a `[schedules.NAME]` table of type `worker` or `all` may have. Tables of a
/// custom type may have others; they reach the strategy.
const KNOWN: &[&str] = &[
    "type",
    "cron",
    "cron_options",
    "interval",
    "immediate",
    "durable",
    "disable",
    "env",
    "overlap",
    "catch_up",
    "catch_up_limit",
    "task",
    "payload",
];

/// Every schedule the app's `taskyard.toml` defines: the Nitro form first, then the
/// tables, each sorted by key. The file was parsed once, by [`Config`].
pub(crate) fn schedules_from_config(config: &Config) -> Result<Vec<(String, Schedule)>, Error> {
    let origin = config.origin();
    let table = config.table();
    let mut schedules = Vec::new();
    if let Some(nitro) = table.get("scheduled_tasks") {
        let nitro = nitro.as_table().ok_or_else(|| Error::ConfigFile {
            origin: origin.to_owned(),
            message: format!(
                "{origin}: `scheduled_tasks` must be a table of cron = task name or list of names"
            ),
        })?;
        for (cron, tasks) in nitro {
            let names: Vec<&str> = match tasks {
                Toml::String(task) => vec![task.as_str()],
                Toml::Array(list) => list
                    .iter()
                    .map(|item| item.as_str())
                    .collect::<Option<_>>()
                    .ok_or_else(|| nitro_error(origin, cron))?,
                _ => return Err(nitro_error(origin, cron)),
            };
            for task in names {
                schedules.push((
                    format!("{task}@{cron}"),
                    Schedule::worker().cron(cron).task(task).scheduled_time(true),
                ));
            }
        }
    }
    if let Some(egg) = table.get("schedules") {
        let egg = egg.as_table().ok_or_else(|| Error::ConfigFile {
            origin: origin.to_owned(),
            message: format!("{origin}: `schedules` must hold one table per schedule"),
        })?;
        for (name, options) in egg {
            let options = options.as_table().ok_or_else(|| Error::InvalidSchedule {
                schedule: name.clone(),
                message: format!("in {origin}, `schedules.{name}` must be a table of options"),
            })?;
            schedules.push((name.clone(), schedule_from_table(name, options, config)?));
        }
    }
    Ok(schedules)
}

fn nitro_error(origin: &str, cron: &str) -> Error {
    Error::ConfigFile {
        origin: origin.to_owned(),
        message: format!(
            "{origin}: `scheduled_tasks.\"{cron}\"` must be a task name or a list of task names"
        ),
    }
}

fn schedule_from_table(name: &str, options: &Table, config: &Config) -> Result<Schedule, Error> {
    let fail = |message: String| Error::InvalidSchedule {
        schedule: name.to_owned(),
        message,
    };
    let string = |key: &str| -> Result<Option<String>, Error> {
        match options.get(key) {
            None => Ok(None),
            Some(Toml::String(s)) => Ok(Some(s.clone())),
            Some(other) => Err(fail(format!(
                "`{key}` must be a string, not {}",
                other.type_str()
            ))),
        }
    };
    let boolean = |key: &str| -> Result<bool, Error> {
        match options.get(key) {
            None => Ok(false),
            Some(Toml::Boolean(b)) => Ok(*b),
            Some(other) => Err(fail(format!(
                "`{key}` must be true or false, not {}",
                other.type_str()
            ))),
        }
    };
    let kind = string("type")?.ok_or_else(|| {
        fail(
            "it has no `type`: add `type = \"worker\"` (each tick runs on one instance), `type = \"all\"` (on every instance) or a custom strategy's name (egg-schedule says: schedule type [undefined] is not defined)"
                .to_owned(),
        )
    })?;
    let builtin = kind == "worker" || kind == "all";
    let mut schedule = Schedule::new(kind.clone());
    if let Some(cron) = string("cron")? {
        schedule = schedule.cron(cron);
    }
    if let Some(cron_options) = options.get("cron_options") {
        let cron_options = cron_options
            .as_table()
            .ok_or_else(|| fail("`cron_options` must be a table with `tz`, `start`, `end`".to_owned()))?;
        for (key, value) in cron_options {
            match key.as_str() {
                "tz" => {
                    let tz = value
                        .as_str()
                        .ok_or_else(|| fail("`cron_options.tz` must be an IANA zone name".to_owned()))?;
                    schedule = schedule.tz(tz);
                }
                "start" => schedule = schedule.start(instant(name, "cron_options.start", value)?),
                "end" => schedule = schedule.end(instant(name, "cron_options.end", value)?),
                other => {
                    return Err(fail(format!(
                        "unknown option `cron_options.{other}`; accepted: tz, start, end"
                    )));
                }
            }
        }
    }
    if let Some(interval) = options.get("interval") {
        let spec = match interval {
            Toml::Integer(ms) => IntervalSpec::Millis(*ms as f64),
            Toml::Float(ms) => IntervalSpec::Millis(*ms),
            Toml::String(text) => IntervalSpec::Text(text.clone()),
            other => {
                return Err(fail(format!(
                    "`interval` must be milliseconds or a string like \"10s\", not {}",
                    other.type_str()
                )));
            }
        };
        schedule = schedule.interval(spec);
    }
    schedule = schedule.immediate(boolean("immediate")?);
    schedule = schedule.durable(boolean("durable")?);
    schedule = match options.get("disable") {
        // `disable = { config = "features.reports_off" }`: follows that flag of the file.
        Some(Toml::Table(follow)) => match (follow.get("config"), follow.len()) {
            (Some(Toml::String(key)), 1) => schedule.disable(config.flag(key)),
            _ => {
                return Err(fail(
                    "`disable` must be true, false, or { config = \"key.of.a.flag\" } to follow a flag of taskyard.toml"
                        .to_owned(),
                ));
            }
        },
        _ => schedule.disable(boolean("disable")?),
    };
    if let Some(env) = options.get("env") {
        let list = env
            .as_array()
            .and_then(|list| {
                list.iter()
                    .map(|e| e.as_str().map(str::to_owned))
                    .collect::<Option<Vec<_>>>()
            })
            .ok_or_else(|| {
                fail("`env` must be a list of environment names, like [\"production\"]".to_owned())
            })?;
        schedule = schedule.env(list);
    }
    if let Some(overlap) = string("overlap")? {
        schedule = schedule.overlap(match overlap.as_str() {
            "skip" => Overlap::Skip,
            "queue" => Overlap::Queue,
            "allow" => Overlap::Allow,
            other => {
                return Err(fail(format!(
                    "`overlap` `{other}` is not one of: skip, queue, allow"
                )));
            }
        });
    }
    let limit = match options.get("catch_up_limit") {
        None => None,
        Some(Toml::Integer(n)) if *n >= 1 => Some(u32::try_from(*n).unwrap_or(u32::MAX)),
        Some(other) => {
            return Err(fail(format!(
                "`catch_up_limit` must be a whole number ≥ 1, not {}",
                to_json(other)
            )));
        }
    };
    if let Some(catch_up) = string("catch_up")? {
        schedule = schedule.catch_up(match catch_up.as_str() {
            "skip" => CatchUp::Skip,
            "once" => CatchUp::Once,
            "all" => CatchUp::All(limit.unwrap_or(CATCH_UP_ALL_DEFAULT)),
            other => {
                return Err(fail(format!(
                    "`catch_up` `{other}` is not one of: skip, once, all"
                )));
            }
        });
    }
    if let Some(task) = string("task")? {
        schedule = schedule.task(task);
    }
    if let Some(payload) = options.get("payload") {
        schedule = schedule.payload(to_json(payload));
    }
    for (key, value) in options {
        if KNOWN.contains(&key.as_str()) {
            continue;
        }
        if builtin {
            return Err(fail(format!(
                "unknown option `{key}` for a schedule of type {kind}; accepted: {}",
                KNOWN.join(", ")
            )));
        }
        schedule = schedule.option(key.clone(), to_json(value));
    }
    Ok(schedule)
}

fn instant(name: &str, key: &str, value: &Toml) -> Result<Timestamp, Error> {
    let text = match value {
        Toml::String(text) => text.clone(),
        Toml::Datetime(datetime) => datetime.to_string(),
        other => to_json(other).to_string(),
    };
    text.parse().map_err(|_| Error::InvalidSchedule {
        schedule: name.to_owned(),
        message: format!("`{key}` `{text}` is not an instant; write it like 2026-01-01T00:00:00Z"),
    })
}

fn to_json(value: &Toml) -> Value {
    match value {
        Toml::String(s) => Value::String(s.clone()),
        Toml::Integer(i) => Value::from(*i),
        Toml::Float(f) => Value::from(*f),
        Toml::Boolean(b) => Value::Bool(*b),
        Toml::Datetime(d) => Value::String(d.to_string()),
        Toml::Array(items) => Value::Array(items.iter().map(to_json).collect()),
        Toml::Table(table) => Value::Object(table.iter().map(|(k, v)| (k.clone(), to_json(v))).collect()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_forms_are_read() {
        let text = r#"
            [scheduled_tasks]
            "* * * * *" = ["cms:update", "db:cleanup"]
            "0 * * * *" = "db:cleanup"

            [schedules.cleandb]
            type = "worker"
            cron = "0 0 3 * * *"
            cron_options = { tz = "Europe/Paris", start = 2026-01-01T00:00:00Z }
            overlap = "queue"
            catch_up = "all"
            catch_up_limit = 5
            env = ["production"]
            task = "db:cleanup"
            payload = { full = true }

            [schedules.hook]
            type = "webhook"
            path = "/hooks/cleanup"
            task = "db:cleanup"
        "#;
        let schedules = schedules_from_toml(text).expect("valid");
        let names: Vec<&str> = schedules.iter().map(|(name, _)| name.as_str()).collect();
        assert_eq!(
            names,
            [
                "cms:update@* * * * *",
                "db:cleanup@* * * * *",
                "db:cleanup@0 * * * *",
                "cleandb",
                "hook"
            ]
        );
        let cleandb = &schedules[3].1;
        assert_eq!(cleandb.tz.as_deref(), Some("Europe/Paris"));
        assert_eq!(cleandb.overlap, Overlap::Queue);
        assert_eq!(cleandb.catch_up, CatchUp::All(5));
        assert_eq!(cleandb.payload, serde_json::json!({"full": true}));
        assert_eq!(cleandb.start, Some("2026-01-01T00:00:00Z".parse().expect("ts")));
        assert_eq!(
            schedules[4].1.options.get("path"),
            Some(&Value::from("/hooks/cleanup"))
        );
    }

    fn schedules_from_toml(text: &str) -> Result<Vec<(String, Schedule)>, Error> {
        schedules_from_config(&Config::from_text("taskyard.toml", text)?)
    }

    #[test]
    fn mistakes_are_named() {
        let err = |text: &str| schedules_from_toml(text).err().expect("invalid").to_string();
        assert!(
            err("[schedules.a]\ncron = \"* * * * *\"").contains("schedule type [undefined] is not defined")
        );
        assert!(
            err("[schedules.a]\ntype = \"worker\"\ncrn = \"* * * * *\"").contains("unknown option `crn`")
        );
        assert!(err("[schedules.a]\ntype = \"worker\"\noverlap = \"never\"").contains("`overlap` `never`"));
        assert!(err("[schedules.a]\ntype = \"worker\"\ninterval = true").contains("`interval` must be"));
        assert!(
            err("[schedules.a]\ntype = \"worker\"\ncron_options = { start = \"soon\" }")
                .contains("not an instant")
        );
        assert!(err("[scheduled_tasks]\n\"* * * * *\" = 3").contains("must be a task name"));
        assert!(err("[schedules\n").contains("taskyard.toml"));
    }
}
