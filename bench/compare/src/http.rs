//! Task runs over HTTP: `POST /_nitro/tasks/echo:payload` on the quickstart (release build,
//! production, history in SQLite) and on the Nitro node-server, loaded by `wrk` from a
//! second process on loopback, in alternating rounds.

use std::path::Path;
use std::process::Command;

use crate::peers;
use crate::plots::{Curve, Distribution, PERCENTILES};
use crate::report::Row;

const ROUNDS: usize = 3;
const SECONDS: u32 = 10;
const CONNECTIONS: u32 = 64;

/// What `wrk` measured in one round.
#[derive(Debug, Clone)]
struct Load {
    requests_per_second: f64,
    p50_ms: f64,
    p99_ms: f64,
    /// (percentile, ms), printed by the script's `done`.
    curve: Vec<(f64, f64)>,
}

/// The task request, and the percentiles hook.
fn wrk_script() -> String {
    format!(
        "wrk.method = \"POST\"\n\
         wrk.body = '{{\"payload\":{{\"answer\":42}}}}'\n\
         wrk.headers[\"Content-Type\"] = \"application/json\"\n\
         wrk.headers[\"Authorization\"] = \"Bearer bench\"\n\
         {}",
        percentiles_hook()
    )
}

/// A `done` hook that prints the latency at each of `PERCENTILES` (the 100th is the max).
fn percentiles_hook() -> String {
    let percentiles: Vec<String> = PERCENTILES.iter().map(f64::to_string).collect();
    format!(
        "done = function(summary, latency, requests)\n\
           for _, p in ipairs({{{}}}) do\n\
             local micros = p >= 100 and latency.max or latency:percentile(p)\n\
             io.write(string.format(\"percentile %g %d\\n\", p, micros))\n\
           end\n\
         end\n",
        percentiles.join(", ")
    )
}

pub fn compare(root: &Path, charts: &mut Vec<Distribution>) -> Vec<Row> {
    let data = std::env::temp_dir().join(format!("taskyard-bench-http-{}", std::process::id()));
    let script = data.join("post.lua");
    std::fs::create_dir_all(&data).expect("data folder");
    std::fs::write(&script, wrk_script()).expect("wrk script");
    let taskyard = peers::quickstart(root, &data.join("quickstart"), &[]);
    // The same app with its history in memory, to split the cost of the SQLite writer off.
    let in_memory = peers::quickstart(
        root,
        &data.join("quickstart-memory"),
        &[("TASKYARD_DATABASE_URL", "memory:")],
    );
    let nitro = peers::nitro(root);
    let path = "/_nitro/tasks/echo:payload?field=value";
    // Both answer the same thing before anything is timed.
    for base in [&taskyard.base, &in_memory.base, &nitro.base] {
        let mut response = ureq::post(&format!("{base}{path}"))
            .header("Authorization", "Bearer bench")
            .send_json(serde_json::json!({ "payload": { "answer": 42 } }))
            .expect("a task run over HTTP");
        let body: serde_json::Value = response.body_mut().read_json().expect("JSON");
        assert_eq!(body["result"]["answer"], 42, "{base}: {body}");
    }
    let get = data.join("get.lua");
    std::fs::write(&get, percentiles_hook()).expect("wrk script");
    let (mut ours, mut memory, mut plain, mut theirs) = (vec![], vec![], vec![], vec![]);
    for _ in 0..ROUNDS {
        ours.push(wrk(&format!("{}{path}", taskyard.base), &script));
        theirs.push(wrk(&format!("{}{path}", nitro.base), &script));
        memory.push(wrk(&format!("{}{path}", in_memory.base), &script));
        // The ceiling: a plain route of the same app, through the same middleware.
        plain.push(wrk(&format!("{}/hello/bench", taskyard.base), &get));
        eprintln!(
            "http: taskyard {:.0} req/s (memory history {:.0}, plain route {:.0}), Nitro {:.0} req/s",
            ours[ours.len() - 1].requests_per_second,
            memory[memory.len() - 1].requests_per_second,
            plain[plain.len() - 1].requests_per_second,
            theirs[theirs.len() - 1].requests_per_second,
        );
    }
    drop((taskyard, in_memory, nitro));
    let _ = std::fs::remove_dir_all(&data);
    charts.push(Distribution {
        file: "http-latency".into(),
        title: format!("HTTP under wrk -c{CONNECTIONS}: latency of the median round (lower is better)"),
        unit: "ms".into(),
        curves: vec![
            Curve {
                name: "taskyard task run, SQLite history".into(),
                points: median_round(&ours).curve.clone(),
            },
            Curve {
                name: "Nitro task run (node-server)".into(),
                points: median_round(&theirs).curve.clone(),
            },
            Curve {
                name: "taskyard task run, history in memory".into(),
                points: median_round(&memory).curve.clone(),
            },
            Curve {
                name: "taskyard plain route (GET /hello/bench)".into(),
                points: median_round(&plain).curve.clone(),
            },
        ],
    });
    let (ours, memory, plain, theirs) = (median(&ours), median(&memory), median(&plain), median(&theirs));
    let row = |comparison: &str, metric: &str, taskyard: f64, peer: f64, target: Option<f64>, unit: &str| {
        // Requests per second: higher is better; latency: lower is better.
        let ratio = if unit == "ms" {
            peer / taskyard
        } else {
            taskyard / peer
        };
        Row {
            comparison: comparison.into(),
            metric: metric.into(),
            taskyard,
            peer,
            peer_name: "Nitro node-server".into(),
            ratio,
            target: target.map_or("—".into(), |t| format!("≥ {t}×")),
            met: target.is_none_or(|t| ratio >= t),
            unit: unit.into(),
        }
    };
    let task = "task run over HTTP";
    vec![
        // Against Nitro, req/s has no goal of its own: the goal is against the plain route
        // below, which a task request cannot outrun (SPEC's numbers to reach).
        row(
            task,
            "requests/s",
            ours.requests_per_second,
            theirs.requests_per_second,
            None,
            "req/s",
        ),
        row(
            task,
            "p50 latency (peer / taskyard)",
            ours.p50_ms,
            theirs.p50_ms,
            None,
            "ms",
        ),
        row(
            task,
            "p99 latency (peer / taskyard), target p99 ≤ 1/5",
            ours.p99_ms,
            theirs.p99_ms,
            Some(5.0),
            "ms",
        ),
        row(
            "task run over HTTP, taskyard's history in memory (the cost of SQLite)",
            "requests/s",
            memory.requests_per_second,
            theirs.requests_per_second,
            None,
            "req/s",
        ),
        row(
            "ceiling: a plain route of the quickstart vs Nitro's task run",
            "requests/s",
            plain.requests_per_second,
            theirs.requests_per_second,
            None,
            "req/s",
        ),
        // The floor of the same app in the same run: what a task request pays beyond a
        // plain route.
        Row {
            comparison: "task run over HTTP / a plain route of the same app".into(),
            metric: "requests/s (taskyard / its floor, same run)".into(),
            taskyard: ours.requests_per_second,
            peer: plain.requests_per_second,
            peer_name: "floor: GET /hello/bench".into(),
            ratio: ours.requests_per_second / plain.requests_per_second,
            target: "≥ 0.6 of the floor".into(),
            met: ours.requests_per_second / plain.requests_per_second >= 0.6,
            unit: "req/s".into(),
        },
    ]
}

/// The round whose p99 is the median p99: the one whose curve is drawn.
fn median_round(loads: &[Load]) -> &Load {
    let mut sorted: Vec<&Load> = loads.iter().collect();
    sorted.sort_by(|a, b| a.p99_ms.total_cmp(&b.p99_ms));
    sorted[sorted.len() / 2]
}

/// The median of each measure over the rounds, taken apart.
fn median(loads: &[Load]) -> Load {
    let middle = |pick: fn(&Load) -> f64| {
        let mut values: Vec<f64> = loads.iter().map(pick).collect();
        values.sort_by(f64::total_cmp);
        values[values.len() / 2]
    };
    Load {
        requests_per_second: middle(|l| l.requests_per_second),
        p50_ms: middle(|l| l.p50_ms),
        p99_ms: middle(|l| l.p99_ms),
        curve: Vec::new(),
    }
}

/// One `wrk` round against `url`.
fn wrk(url: &str, script: &Path) -> Load {
    let output = Command::new("wrk")
        .args([
            "-t1",
            &format!("-c{CONNECTIONS}"),
            &format!("-d{SECONDS}s"),
            "--latency",
            "-s",
        ])
        .arg(script)
        .arg(url)
        .output()
        .expect("wrk runs (apt-get install -y wrk; bench/run does)");
    let text = String::from_utf8_lossy(&output.stdout);
    parse_wrk(&text).unwrap_or_else(|| panic!("cannot read wrk's output:\n{text}"))
}

fn parse_wrk(text: &str) -> Option<Load> {
    let mut load = Load {
        requests_per_second: 0.0,
        p50_ms: 0.0,
        p99_ms: 0.0,
        curve: Vec::new(),
    };
    for line in text.lines().map(str::trim) {
        if let Some(point) = line.strip_prefix("percentile ") {
            let (p, micros) = point.split_once(' ')?;
            load.curve
                .push((p.parse().ok()?, micros.parse::<f64>().ok()? / 1000.0));
        } else if let Some(rate) = line.strip_prefix("Requests/sec:") {
            load.requests_per_second = rate.trim().parse().ok()?;
        } else if let Some(value) = line.strip_prefix("50%") {
            load.p50_ms = milliseconds(value.trim())?;
        } else if let Some(value) = line.strip_prefix("99%") {
            load.p99_ms = milliseconds(value.trim())?;
        } else if line.starts_with("Non-2xx") {
            eprintln!("http: wrk saw errors: {line}");
        }
    }
    (load.requests_per_second > 0.0).then_some(load)
}

/// `1.23ms`, `456.00us`, `1.50s` in milliseconds.
fn milliseconds(value: &str) -> Option<f64> {
    let (number, scale) = if let Some(n) = value.strip_suffix("us") {
        (n, 0.001)
    } else if let Some(n) = value.strip_suffix("ms") {
        (n, 1.0)
    } else if let Some(n) = value.strip_suffix('s') {
        (n, 1000.0)
    } else {
        return None;
    };
    number.parse::<f64>().ok().map(|n| n * scale)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrk_output_is_read_with_its_units() {
        let text = "  Latency Distribution\n     50%  412.00us\n     75%    1.02ms\n     99%    3.50ms\n  100 requests\nRequests/sec:  12345.67\npercentile 50 412\npercentile 99.9 4200\n";
        let load = parse_wrk(text).expect("parsed");
        assert_eq!(load.curve, vec![(50.0, 0.412), (99.9, 4.2)]);
        assert_eq!(load.requests_per_second, 12345.67);
        assert!((load.p50_ms - 0.412).abs() < 1e-9);
        assert_eq!(load.p99_ms, 3.5);
    }
}
