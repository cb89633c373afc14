//! `GET /_tasks/events` of a running quickstart: a `demo:slow` run's progress arrives as
//! server-sent events, in order, ending with `finished`.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::Quickstart;

#[test]
fn a_demo_slow_runs_progress_streams_in_order() {
    let app = Quickstart::start(&[]);
    let mut stream = TcpStream::connect(&app.addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    // Every demo:slow event, subscribed before the run starts, so all ten steps are seen.
    write!(
        stream,
        "GET /_tasks/events?task=demo:slow HTTP/1.1\r\nHost: {}\r\nAccept: text/event-stream\r\n\r\n",
        app.addr
    )
    .expect("send");
    let mut reader = BufReader::new(stream);
    let mut status_line = String::new();
    reader.read_line(&mut status_line).expect("status");
    assert!(status_line.starts_with("HTTP/1.1 200"), "{status_line}");

    let (status, started) = app.http(
        "POST",
        "/_tasks/demo:slow/runs?wait=false",
        r#"{"payload":{"ms":600}}"#,
    );
    assert_eq!(status, 202, "{started}");
    let run_id = started["run_id"].as_str().expect("run id").to_owned();

    let mut events = Vec::new();
    let mut name = String::new();
    for line in reader.lines() {
        let line = line.expect("the stream keeps going until the run finishes");
        if let Some(event) = line.strip_prefix("event: ") {
            name = event.to_owned();
        } else if let Some(data) = line.strip_prefix("data: ") {
            let data: serde_json::Value = serde_json::from_str(data).expect("JSON data");
            assert_eq!(data["run_id"], run_id.as_str());
            let done = name == "finished";
            events.push((name.clone(), data));
            if done {
                break;
            }
        }
    }
    let names: Vec<&str> = events.iter().map(|(name, _)| name.as_str()).collect();
    assert_eq!(names.first(), Some(&"started"), "{names:?}");
    assert_eq!(names.last(), Some(&"finished"), "{names:?}");
    let steps: Vec<(f64, String)> = events
        .iter()
        .filter(|(name, _)| name == "progress")
        .map(|(_, data)| {
            (
                data["fraction"].as_f64().expect("fraction"),
                data["message"].as_str().expect("message").to_owned(),
            )
        })
        .collect();
    assert_eq!(steps.len(), 11, "ten steps and done: {steps:?}");
    for (i, (fraction, message)) in steps.iter().take(10).enumerate() {
        assert_eq!(*fraction, i as f64 / 10.0);
        assert_eq!(message, &format!("step {} of 10", i + 1));
    }
    assert_eq!(steps[10], (1.0, "done".to_owned()));
    assert_eq!(events.last().expect("finished").1["status"], "succeeded");
}
