//! A file-routed route against the same handler mounted by hand on a plain axum `Router`:
//! requests per second of `GET /hello/{name}`, side by side in one run.
//!
//! Each server has a runtime of one worker thread; the load comes from a client runtime of
//! its own (one thread, `CONNECTIONS` keep-alive connections), all on loopback. The two are
//! measured in alternating rounds of `ROUND_MS`, so drift on the machine touches both alike.
//! Reported: the median requests/s of each, the median of the per-pair ratios, and the CPU
//! time the server's worker thread spent per request — the cost that bounds requests/s on a
//! saturated core. On a shared machine all three drift by ±20 % from round to round, so the
//! run ends with the part that differs measured alone: each app called in-process, without
//! sockets or HTTP parsing, in 9 alternating batches of `CALLS` calls, the fastest batch of
//! each kept.
//!
//! ```sh
//! cargo run --release -p file-route-bench
//! # ROUNDS=20 ROUND_MS=1000 CONNECTIONS=32 (the defaults)
//! ```

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use std::convert::Infallible;

use axum::body::Body;
use axum::extract::Request;
use axum::response::Response;
use axum::routing::get;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

fn setting(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn server_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime")
}

/// Serves `service` on a free loopback port of `runtime`, as `App::serve` and
/// `axum::serve` do.
fn serve<S>(runtime: &tokio::runtime::Runtime, service: S) -> SocketAddr
where
    S: tower::Service<Request, Response = Response, Error = Infallible> + Clone + Send + Sync + 'static,
    S::Future: Send,
{
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let make = axum::ServiceExt::<Request>::into_make_service_with_connect_info::<SocketAddr>(service);
        tokio::spawn(async move {
            axum::serve(listener, make).await.expect("serve");
        });
        addr
    })
}

/// Requests answered `Hello bench!` in `length` by `connections` clients looping on `url`.
async fn load(url: &str, connections: u64, length: Duration) -> u64 {
    let client: Client<_, Body> = Client::builder(TokioExecutor::new()).build_http();
    let count = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let uri: axum::http::Uri = url.parse().expect("uri");
    let mut workers = Vec::new();
    for _ in 0..connections {
        let (client, count, stop, uri) = (client.clone(), count.clone(), stop.clone(), uri.clone());
        workers.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let response = client.get(uri.clone()).await.expect("request");
                let ok = response.status() == 200;
                let body = axum::body::to_bytes(Body::new(response.into_body()), 1 << 16)
                    .await
                    .expect("body");
                if ok && body.as_ref() == b"Hello bench!" {
                    count.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    tokio::time::sleep(length).await;
    stop.store(true, Ordering::Relaxed);
    for worker in workers {
        let _ = worker.await;
    }
    count.load(Ordering::Relaxed)
}

/// CPU time of the calling thread.
fn thread_cpu() -> Duration {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `now` is a valid, writable timespec; the clock id is a constant of the OS.
    let status = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut now) };
    assert_eq!(status, 0, "clock_gettime");
    Duration::new(now.tv_sec as u64, now.tv_nsec as u32)
}

/// CPU time of the single worker thread of `runtime` (a spawned task runs there, never on
/// the thread calling `block_on`).
fn worker_cpu(runtime: &tokio::runtime::Runtime) -> Duration {
    runtime
        .block_on(runtime.spawn(async { thread_cpu() }))
        .expect("the worker answers")
}

/// Nanoseconds per request of `service` called in-process, `calls` times in a row.
fn in_process<S>(runtime: &tokio::runtime::Runtime, service: &S, calls: u64) -> f64
where
    S: tower::Service<
            axum::extract::Request,
            Response = axum::response::Response,
            Error = std::convert::Infallible,
        > + Clone,
{
    use tower::ServiceExt;
    let peer = axum::extract::ConnectInfo(SocketAddr::from(([127, 0, 0, 1], 40000)));
    runtime.block_on(async {
        let started = Instant::now();
        for _ in 0..calls {
            let mut request = axum::http::Request::get("/hello/bench")
                .body(Body::empty())
                .expect("request");
            // As `into_make_service_with_connect_info` does for every request over HTTP.
            request.extensions_mut().insert(peer);
            let response = service.clone().oneshot(request).await.expect("infallible");
            let body = axum::body::to_bytes(response.into_body(), 1 << 16)
                .await
                .expect("body");
            assert_eq!(body.as_ref(), b"Hello bench!");
        }
        started.elapsed().as_nanos() as f64 / calls as f64
    })
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn main() {
    let rounds = setting("ROUNDS", 20);
    let round = Duration::from_millis(setting("ROUND_MS", 1000));
    let connections = setting("CONNECTIONS", 32);

    let file_runtime = server_runtime();
    // What `App::serve` serves: the app as one service.
    let file_service = file_runtime.block_on(async {
        let running = file_route_bench::file_routed_app()
            .store(taskyard::StoreConfig::Memory)
            .start()
            .await
            .expect("the app starts");
        let service = running.service();
        // Kept running until the process ends.
        std::mem::forget(running);
        service
    });
    if let Ok(which) = std::env::var("ONLY") {
        // `ONLY=file|axum CALLS=N`: N in-process calls of one app and nothing else, for
        // counting instructions with callgrind (scripts/bench-file-route-instructions.sh).
        let local = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        let calls = setting("CALLS", 1000);
        let axum_router = axum::Router::new().route("/hello/{name}", get(file_route_bench::hello));
        match which.as_str() {
            "file" => in_process(&local, &file_service, calls),
            _ => in_process(&local, &axum_router, calls),
        };
        return;
    }
    let file_addr = serve(&file_runtime, file_service.clone());
    let axum_runtime = server_runtime();
    let axum_router = axum::Router::new().route("/hello/{name}", get(file_route_bench::hello));
    let axum_addr = serve(&axum_runtime, axum_router.clone());

    let client = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("client runtime");
    let file_url = format!("http://{file_addr}/hello/bench");
    let axum_url = format!("http://{axum_addr}/hello/bench");
    // Warm both up: connections, allocator, caches.
    client.block_on(load(&file_url, connections, Duration::from_millis(500)));
    client.block_on(load(&axum_url, connections, Duration::from_millis(500)));

    let (mut file_rates, mut axum_rates) = (Vec::new(), Vec::new());
    let (mut file_cpu, mut axum_cpu) = (Vec::new(), Vec::new());
    for index in 0..rounds {
        // Alternate which goes first, so neither always follows the other.
        let order = if index % 2 == 0 {
            [true, false]
        } else {
            [false, true]
        };
        for file_routed in order {
            let (url, runtime) = if file_routed {
                (&file_url, &file_runtime)
            } else {
                (&axum_url, &axum_runtime)
            };
            let cpu = worker_cpu(runtime);
            let started = Instant::now();
            let answered = client.block_on(load(url, connections, round));
            let rate = answered as f64 / started.elapsed().as_secs_f64();
            let cpu_us = (worker_cpu(runtime) - cpu).as_secs_f64() * 1e6 / answered.max(1) as f64;
            if file_routed {
                file_rates.push(rate);
                file_cpu.push(cpu_us);
            } else {
                axum_rates.push(rate);
                axum_cpu.push(cpu_us);
            }
        }
        eprintln!(
            "round {:>2}: file-routed {:>6.0} req/s {:>5.2} µs CPU, axum {:>6.0} req/s {:>5.2} µs CPU",
            index + 1,
            file_rates[index as usize],
            file_cpu[index as usize],
            axum_rates[index as usize],
            axum_cpu[index as usize],
        );
    }
    let mut pair_ratios: Vec<f64> = file_rates.iter().zip(&axum_rates).map(|(f, a)| f / a).collect();
    let pair_ratio = median(&mut pair_ratios);
    let file = median(&mut file_rates);
    let axum = median(&mut axum_rates);
    let file_us = median(&mut file_cpu);
    let axum_us = median(&mut axum_cpu);
    println!(
        "GET /hello/{{name}}: {connections} connections, {rounds} rounds of {} ms each",
        round.as_millis()
    );
    println!("| server | requests/s (median round) | server CPU per request (median) |");
    println!("|---|---|---|");
    println!("| axum `Router`, the handler mounted by hand | {axum:.0} | {axum_us:.2} µs |");
    println!("| taskyard, file route `src/routes/hello/[name].get.rs` | {file:.0} | {file_us:.2} µs |");
    println!(
        "requests/s ratio taskyard / axum: {:.3} of the medians, {pair_ratio:.3} median of the pairs (target ≥ 0.97)",
        file / axum
    );
    println!(
        "CPU ratio axum / taskyard (requests/s on a saturated core): {:.3}",
        axum_us / file_us
    );

    let calls = setting("CALLS", 100_000);
    let local = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let (mut file_ns, mut axum_ns) = (Vec::new(), Vec::new());
    for _ in 0..9 {
        file_ns.push(in_process(&local, &file_service, calls));
        axum_ns.push(in_process(&local, &axum_router, calls));
    }
    // The fastest batch of each: in-process work is CPU-bound, so the machine's noise
    // only ever adds time.
    let file_ns = file_ns.iter().copied().fold(f64::INFINITY, f64::min);
    let axum_ns = axum_ns.iter().copied().fold(f64::INFINITY, f64::min);
    println!(
        "in-process, routing and handler only (fastest batch): axum {axum_ns:.0} ns, taskyard {file_ns:.0} ns per request; taskyard adds {:.0} ns",
        file_ns - axum_ns
    );
    let added_us = (file_ns - axum_ns) / 1000.0;
    println!(
        "requests/s ratio implied over HTTP (axum's {axum_us:.2} µs of server CPU per request, plus what taskyard adds): {:.3}",
        axum_us / (axum_us + added_us)
    );
}
