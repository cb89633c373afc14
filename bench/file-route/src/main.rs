//! A file-routed route against the same handler mounted by hand on a plain axum `Router`:
//! requests per second of `GET /hello/{name}`, side by side in one run.
//!
//! Each server has a runtime of one worker thread; the load comes from a client runtime of
//! its own (one thread, `CONNECTIONS` keep-alive connections), all on loopback. The two are
//! measured in alternating rounds of `ROUND_MS`, so drift on the machine touches both alike.
//! Reported: the median requests/s of each, the median of the per-pair ratios, and the CPU
//! time the server's worker thread spent per request — the cost that bounds requests/s on a
//! saturated core, and the steadiest of the three on a shared machine.
//!
//! ```sh
//! cargo run --release -p file-route-bench
//! # ROUNDS=20 ROUND_MS=1000 CONNECTIONS=32 (the defaults)
//! ```

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::body::Body;
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

/// Serves `router` on a free loopback port of `runtime`.
fn serve(runtime: &tokio::runtime::Runtime, router: axum::Router) -> SocketAddr {
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            axum::serve(
                listener,
                router.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .await
            .expect("serve");
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

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn main() {
    let rounds = setting("ROUNDS", 20);
    let round = Duration::from_millis(setting("ROUND_MS", 1000));
    let connections = setting("CONNECTIONS", 32);

    let file_runtime = server_runtime();
    let file_router = file_runtime.block_on(async {
        let running = file_route_bench::file_routed_app()
            .store(taskyard::StoreConfig::Memory)
            .start()
            .await
            .expect("the app starts");
        let router = running.router();
        // Kept running until the process ends.
        std::mem::forget(running);
        router
    });
    let file_addr = serve(&file_runtime, file_router);
    let axum_runtime = server_runtime();
    let axum_addr = serve(
        &axum_runtime,
        axum::Router::new().route("/hello/{name}", get(file_route_bench::hello)),
    );

    if std::env::var_os("SERVE_ONLY").is_some() {
        println!("file-routed http://{file_addr}/hello/bench");
        println!("axum http://{axum_addr}/hello/bench");
        std::thread::sleep(Duration::from_secs(setting("SERVE_ONLY", 60)));
        return;
    }
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
}
