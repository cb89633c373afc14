//! The quickstart's server limits, as a client on the open network would meet them: a
//! request head sent a byte at a time is cut off, connections past the limit wait, and
//! during the shutdown grace new requests are answered `503` while the runs waited on end
//! with `503` too.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{Quickstart, http};

/// Reads until the server closes the connection or `limit` passes; true when it closed.
fn closed_within(stream: &mut TcpStream, limit: Duration) -> bool {
    stream
        .set_read_timeout(Some(Duration::from_millis(100)))
        .expect("timeout");
    let began = Instant::now();
    let mut buffer = [0u8; 1024];
    while began.elapsed() < limit {
        match stream.read(&mut buffer) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(error)
                if matches!(
                    error.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return true,
        }
    }
    false
}

#[test]
fn a_slowloris_client_is_cut_off_after_the_header_read_timeout() {
    let app = Quickstart::start(&[("TASKYARD_HEADER_READ_TIMEOUT_MS", "1000")]);
    let mut slow: Vec<TcpStream> = (0..20)
        .map(|_| {
            let mut stream = TcpStream::connect(&app.addr).expect("connect");
            stream
                .write_all(b"GET /_tasks HTTP/1.1\r\nHost: localhost\r\n")
                .expect("start a head");
            stream
        })
        .collect();
    // One more header line every 300 ms: bytes keep coming, the head never ends.
    let began = Instant::now();
    let mut open = slow.len();
    while open > 0 && began.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(300));
        open = 0;
        for stream in &mut slow {
            if stream.write_all(b"X-Slow: 1\r\n").is_ok() {
                open += 1;
            }
        }
    }
    for stream in &mut slow {
        assert!(
            closed_within(stream, Duration::from_secs(3)),
            "a slowloris connection stayed open {:?} after it began",
            began.elapsed()
        );
    }
    // Meanwhile the server answers everyone else.
    let (status, body) = app.http("GET", "/_tasks/health", "");
    assert_eq!(status, 200, "{body}");
}

#[test]
fn connections_past_the_limit_wait_until_one_closes() {
    let app = Quickstart::start(&[
        ("TASKYARD_MAX_CONNECTIONS", "4"),
        ("TASKYARD_HEADER_READ_TIMEOUT_MS", "60000"),
    ]);
    let idle: Vec<TcpStream> = (0..4)
        .map(|_| TcpStream::connect(&app.addr).expect("connect"))
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    // The fifth connects (the kernel's backlog holds it) but is not served yet.
    let mut fifth = TcpStream::connect(&app.addr).expect("connect");
    fifth
        .write_all(b"GET /_tasks/health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .expect("send");
    fifth
        .set_read_timeout(Some(Duration::from_millis(1000)))
        .expect("timeout");
    let mut buffer = [0u8; 16];
    let early = fifth.read(&mut buffer);
    assert!(early.is_err(), "served past the limit: {early:?}");
    drop(idle);
    fifth
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let mut response = String::new();
    fifth
        .read_to_string(&mut response)
        .expect("answered once a slot frees");
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
}

#[test]
fn during_the_shutdown_grace_new_requests_get_503_and_interrupted_runs_503() {
    let mut app = Quickstart::start(&[("TASKYARD_SHUTDOWN_GRACE_MS", "2500")]);
    let addr = app.addr.clone();
    // A caller waiting on a run that will outlast the grace.
    let waiting = std::thread::spawn({
        let addr = addr.clone();
        move || {
            http(
                &addr,
                "POST",
                "/_tasks/demo:slow/runs",
                r#"{"payload":{"ms":60000}}"#,
                &[],
            )
        }
    });
    std::thread::sleep(Duration::from_millis(500));
    let sent = Command::new("kill")
        .args(["-TERM", &app.child.id().to_string()])
        .status()
        .expect("kill");
    assert!(sent.success());
    std::thread::sleep(Duration::from_millis(300));
    let reply = common::raw(&addr, "GET", "/_tasks/health", "", &[]);
    assert_eq!(
        reply.status, 503,
        "a new request during the grace: {}",
        reply.body
    );
    assert_eq!(reply.header("retry-after"), Some("5"));
    assert!(reply.body.contains("shutting down"), "{}", reply.body);
    let (status, body) = waiting.join().expect("caller");
    assert_eq!(status, 503, "the interrupted run's caller: {body}");
    assert!(
        body["message"].as_str().unwrap_or("").contains("shut down"),
        "{body}"
    );
    let exit = app.child.wait().expect("exits");
    assert!(exit.success(), "{exit:?}");
}
