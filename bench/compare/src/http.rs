//! Task runs over HTTP: `POST /_nitro/tasks/echo:payload` on the quickstart (release build,
//! production, history in SQLite) and on the Nitro node-server, loaded by `wrk` from a
//! second process on loopback, in alternating rounds.

use std::path::Path;
use std::process::Command;

use crate::peers;
use crate::report::Row;

const ROUNDS: usize = 3;
const SECONDS: u32 = 10;
const CONNECTIONS: u32 = 64;

/// What `wrk` measured in one round.
#[derive(Debug, Clone, Copy)]
struct Load {
    requests_per_second: f64,
    p50_ms: f64,
    p99_ms: f64,
}

pub fn compare(root: &Path) -> Vec<Row> {
    let data = std::env::temp_dir().join(format!("taskyard-bench-http-{}", std::process::id()));
    let script = data.join("post.lua");
    std::fs::create_dir_all(&data).expect("data folder");
    std::fs::write(
        &script,
        "wrk.method = \"POST\"\n\
         wrk.body = '{\"payload\":{\"answer\":42}}'\n\
         wrk.headers[\"Content-Type\"] = \"application/json\"\n\
         wrk.headers[\"Authorization\"] = \"Bearer bench\"\n",
    )
    .expect("wrk script");
    let taskyard = peers::quickstart(root, &data.join("quickstart"));
    let nitro = peers::nitro(root);
    let path = "/_nitro/tasks/echo:payload?field=value";
    // Both answer the same thing before anything is timed.
    for base in [&taskyard.base, &nitro.base] {
        let mut response = ureq::post(&format!("{base}{path}"))
            .header("Authorization", "Bearer bench")
            .send_json(serde_json::json!({ "payload": { "answer": 42 } }))
            .expect("a task run over HTTP");
        let body: serde_json::Value = response.body_mut().read_json().expect("JSON");
        assert_eq!(body["result"]["answer"], 42, "{base}: {body}");
    }
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        ours.push(wrk(&format!("{}{path}", taskyard.base), &script));
        theirs.push(wrk(&format!("{}{path}", nitro.base), &script));
        eprintln!(
            "http: taskyard {:?}, Nitro {:?}",
            ours[ours.len() - 1],
            theirs[theirs.len() - 1]
        );
    }
    drop((taskyard, nitro));
    let _ = std::fs::remove_dir_all(&data);
    let ours = median(&ours);
    let theirs = median(&theirs);
    let throughput = ours.requests_per_second / theirs.requests_per_second;
    let p99 = theirs.p99_ms / ours.p99_ms;
    vec![
        Row {
            comparison: "task run over HTTP".into(),
            metric: "requests/s".into(),
            taskyard: ours.requests_per_second,
            peer: theirs.requests_per_second,
            peer_name: "Nitro node-server".into(),
            ratio: throughput,
            target: "≥ 10×".into(),
            met: throughput >= 10.0,
            unit: "req/s".into(),
        },
        Row {
            comparison: "task run over HTTP".into(),
            metric: "p50 latency (peer / taskyard)".into(),
            taskyard: ours.p50_ms,
            peer: theirs.p50_ms,
            peer_name: "Nitro node-server".into(),
            ratio: theirs.p50_ms / ours.p50_ms,
            target: "—".into(),
            met: true,
            unit: "ms".into(),
        },
        Row {
            comparison: "task run over HTTP".into(),
            metric: "p99 latency (peer / taskyard)".into(),
            taskyard: ours.p99_ms,
            peer: theirs.p99_ms,
            peer_name: "Nitro node-server".into(),
            ratio: p99,
            target: "≥ 5× (p99 ≤ 1/5)".into(),
            met: p99 >= 5.0,
            unit: "ms".into(),
        },
    ]
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
    };
    for line in text.lines().map(str::trim) {
        if let Some(rate) = line.strip_prefix("Requests/sec:") {
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
        let text = "  Latency Distribution\n     50%  412.00us\n     75%    1.02ms\n     99%    3.50ms\n  100 requests\nRequests/sec:  12345.67\n";
        let load = parse_wrk(text).expect("parsed");
        assert_eq!(load.requests_per_second, 12345.67);
        assert!((load.p50_ms - 0.412).abs() < 1e-9);
        assert_eq!(load.p99_ms, 3.5);
    }
}
