//! Lifecycle tasks: startup order and blocking, re-run semantics (cleanup before body,
//! coalescing, one run at a time, re-collected dependencies, the loop cap, failing
//! cleanups), visible tasks, computed values, resources, shutdown cleanups and config
//! signals that follow a real `taskyard.toml` on disk.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use taskyard::lifecycle::{Cleanup, LifecycleKind, LifecycleState, ResourceState, Visible};
use taskyard::{App, Error, RunningApp, Signal, StoreConfig, Task, TaskContext, TaskError};

/// A shared, ordered record of what happened.
#[derive(Clone, Default)]
struct Log(Arc<Mutex<Vec<String>>>);

impl Log {
    fn push(&self, line: impl Into<String>) {
        self.0.lock().expect("log").push(line.into());
    }

    fn lines(&self) -> Vec<String> {
        self.0.lock().expect("log").clone()
    }
}

fn quiet(app: App) -> App {
    app.store(StoreConfig::Memory)
        .shutdown_grace(Duration::from_secs(2))
}

async fn start(app: App) -> RunningApp {
    quiet(app).start().await.expect("app starts")
}

/// Waits until `check` holds, for at most 5 s.
async fn eventually(what: &str, check: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn info(app: &RunningApp, name: &str) -> taskyard::lifecycle::LifecycleInfo {
    app.lifecycle()
        .list()
        .into_iter()
        .find(|node| node.name == name)
        .unwrap_or_else(|| panic!("no lifecycle node `{name}`"))
}

fn free_addr() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn startup_tasks_run_in_order_and_the_port_opens_only_after_the_last() {
    let addr = free_addr();
    let log = Log::default();
    let port_open = move || std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(100)).is_ok();
    let app = App::new().listen(addr).setup(|cx| {
        let first = log.clone();
        cx.use_task("slow-first", move |_t| {
            let log = first.clone();
            async move {
                log.push(format!("first starts, port open: {}", port_open()));
                tokio::time::sleep(Duration::from_millis(300)).await;
                log.push("first ends");
                Ok::<_, TaskError>(())
            }
        });
        let second = log.clone();
        cx.use_task("second", move |_t| {
            let log = second.clone();
            async move {
                log.push(format!("second runs, port open: {}", port_open()));
                Ok::<_, TaskError>(())
            }
        });
    });
    let server = tokio::spawn(quiet(app).serve());
    eventually("the port opens", port_open).await;
    assert_eq!(
        log.lines(),
        [
            "first starts, port open: false",
            "first ends",
            "second runs, port open: false"
        ]
    );
    server.abort();
}

#[tokio::test]
async fn a_failing_startup_task_stops_the_start_with_its_name_and_its_predecessors_clean_up() {
    let log = Log::default();
    let app = App::new().setup(|cx| {
        let ok = log.clone();
        cx.use_task("open-pool", move |_t| {
            let log = ok.clone();
            async move {
                let closing = log.clone();
                Ok::<_, TaskError>(Cleanup::from_fn(move || closing.push("pool closed")))
            }
        });
        cx.use_task("migrate", |_t| async {
            Err::<(), _>(TaskError::new("database `app` does not exist"))
        });
        let never = log.clone();
        cx.use_task("after", move |_t| {
            let log = never.clone();
            async move {
                log.push("after ran");
                Ok::<_, TaskError>(())
            }
        });
    });
    let error = quiet(app).start().await.err().expect("the start fails");
    match &error {
        Error::Lifecycle { task, message } => {
            assert_eq!(task, "migrate");
            assert_eq!(message, "database `app` does not exist");
        }
        other => panic!("unexpected error: {other}"),
    }
    assert!(error.to_string().contains("`migrate`"), "{error}");
    assert_eq!(log.lines(), ["pool closed"]);
}

#[tokio::test]
async fn a_change_runs_the_previous_cleanups_awaited_before_the_next_body() {
    let log = Log::default();
    let value = Signal::new(1);
    let app = App::new().setup(|cx| {
        let (log, value) = (log.clone(), value.clone());
        cx.use_task("watch", move |t| {
            let (log, value) = (log.clone(), value.clone());
            async move {
                let v = t.track(&value);
                log.push(format!("body {v}"));
                let first = log.clone();
                t.cleanup(async move {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    first.push(format!("cleanup a {v}"));
                    Ok(())
                });
                let second = log.clone();
                Ok(Cleanup::from_fn(move || second.push(format!("cleanup b {v}"))))
            }
        });
    });
    let app = start(app).await;
    value.set(2);
    eventually("the re-run", || log.lines().len() == 4).await;
    assert_eq!(log.lines(), ["body 1", "cleanup a 1", "cleanup b 1", "body 2"]);
    let node = info(&app, "watch");
    assert_eq!(
        (node.kind, node.runs, node.state),
        (LifecycleKind::Task, 2, LifecycleState::Idle)
    );
    app.shutdown().await;
    assert_eq!(
        log.lines()[4..],
        ["cleanup b 2", "cleanup a 2"],
        "shutdown: newest first"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_changes_coalesces_and_runs_never_overlap() {
    let value = Signal::new(0);
    let active = Arc::new(AtomicUsize::new(0));
    let overlapped = Arc::new(AtomicBool::new(false));
    let app = App::new().setup(|cx| {
        let (value, active, overlapped) = (value.clone(), active.clone(), overlapped.clone());
        cx.use_task("busy", move |t| {
            let (value, active, overlapped) = (value.clone(), active.clone(), overlapped.clone());
            async move {
                t.track(&value);
                if active.fetch_add(1, Ordering::SeqCst) > 0 {
                    overlapped.store(true, Ordering::SeqCst);
                }
                tokio::time::sleep(Duration::from_millis(30)).await;
                active.fetch_sub(1, Ordering::SeqCst);
                Ok::<_, TaskError>(())
            }
        });
    });
    let app = start(app).await;
    for i in 1..=100 {
        value.set(i);
    }
    eventually("a re-run", || info(&app, "busy").runs >= 2).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let runs = info(&app, "busy").runs - 1;
    assert!((1..=2).contains(&runs), "100 quick changes gave {runs} re-runs");
    // Changes while a run is in flight: one more run, not one per change.
    let before = info(&app, "busy").runs;
    value.set(1000);
    eventually("the run starts", || active.load(Ordering::SeqCst) == 1).await;
    for i in 1001..1050 {
        value.set(i);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        info(&app, "busy").runs - before,
        2,
        "one run, then exactly one more"
    );
    assert!(
        !overlapped.load(Ordering::SeqCst),
        "two runs of one task overlapped"
    );
    app.shutdown().await;
}

#[tokio::test]
async fn setting_the_same_value_triggers_nothing() {
    let value = Signal::new("on".to_owned());
    let app = App::new().setup(|cx| {
        let value = value.clone();
        cx.use_task("same", move |t| {
            let value = value.clone();
            async move {
                t.track(&value);
                Ok::<_, TaskError>(())
            }
        });
    });
    let app = start(app).await;
    value.set("on".to_owned());
    value.update(|v| v.make_ascii_lowercase());
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(info(&app, "same").runs, 1);
    app.shutdown().await;
}

#[tokio::test]
async fn dependencies_are_collected_anew_on_every_run() {
    let (mode, a, b) = (Signal::new('a'), Signal::new(0), Signal::new(0));
    let app = App::new().setup(|cx| {
        let (mode, a, b) = (mode.clone(), a.clone(), b.clone());
        cx.use_task("branch", move |t| {
            let (mode, a, b) = (mode.clone(), a.clone(), b.clone());
            async move {
                // The closure form: every signal read inside is tracked.
                t.track(|| if mode.get() == 'a' { a.get() } else { b.get() });
                Ok::<_, TaskError>(())
            }
        });
    });
    let app = start(app).await;
    let runs = || info(&app, "branch").runs;
    a.set(1);
    eventually("a re-runs it", || runs() == 2).await;
    b.set(1);
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert_eq!(runs(), 2, "b is not read on the `a` branch");
    mode.set('b');
    eventually("mode re-runs it", || runs() == 3).await;
    a.set(2);
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert_eq!(runs(), 3, "a is no longer read on the `b` branch");
    b.set(2);
    eventually("b re-runs it", || runs() == 4).await;
    app.shutdown().await;
}

#[tokio::test]
async fn a_task_that_keeps_retriggering_itself_is_stopped_with_an_error_naming_it() {
    let counter = Signal::new(0_u64);
    let app = App::new().setup(|cx| {
        cx.max_reruns(5);
        let counter = counter.clone();
        cx.use_task("feedback", move |t| {
            let counter = counter.clone();
            async move {
                let n = t.track(&counter);
                counter.set(n + 1); // writes what it tracks
                Ok::<_, TaskError>(())
            }
        });
    });
    let app = start(app).await;
    eventually("it is stopped", || {
        info(&app, "feedback").state == LifecycleState::Stopped
    })
    .await;
    let node = info(&app, "feedback");
    assert_eq!(node.runs, 5);
    let error = node.last_error.expect("an error");
    assert!(
        error.contains("`feedback`") && error.contains("re-triggered itself"),
        "{error}"
    );
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(info(&app, "feedback").runs, 5, "no run after the stop");
    app.shutdown().await;
}

#[tokio::test]
async fn a_failing_cleanup_is_reported_and_the_task_still_reruns() {
    let value = Signal::new(0);
    let app = App::new().setup(|cx| {
        let value = value.clone();
        cx.use_task("flaky-cleanup", move |t| {
            let value = value.clone();
            async move {
                t.track(&value);
                t.cleanup(async { Err(TaskError::new("socket already closed")) });
                t.cleanup(async { panic!("cleanup panicked") });
                Ok::<_, TaskError>(())
            }
        });
    });
    let app = start(app).await;
    value.set(1);
    eventually("the re-run", || info(&app, "flaky-cleanup").runs == 2).await;
    eventually("idle", || {
        info(&app, "flaky-cleanup").state == LifecycleState::Idle
    })
    .await;
    let error = info(&app, "flaky-cleanup").last_error.expect("reported");
    assert!(
        error.contains("cleanup failed") && error.contains("panicked"),
        "{error}"
    );
    app.shutdown().await;
}

#[tokio::test]
async fn a_failing_rerun_is_reported_and_a_later_change_runs_it_again() {
    let value = Signal::new(0);
    let app = App::new().setup(|cx| {
        let value = value.clone();
        cx.use_task("odd-fails", move |t| {
            let value = value.clone();
            async move {
                if t.track(&value) % 2 == 1 {
                    return Err(TaskError::new("odd value"));
                }
                Ok(())
            }
        });
    });
    let app = start(app).await;
    value.set(1);
    eventually("failed", || {
        info(&app, "odd-fails").state == LifecycleState::Failed
    })
    .await;
    assert_eq!(info(&app, "odd-fails").last_error.as_deref(), Some("odd value"));
    value.set(2);
    eventually("idle again", || {
        info(&app, "odd-fails").state == LifecycleState::Idle
    })
    .await;
    assert_eq!(info(&app, "odd-fails").runs, 3);
    app.shutdown().await;
}

#[tokio::test]
async fn computed_values_follow_their_inputs_and_notify_only_on_change() {
    let price = Signal::new(10);
    let mut with_tax = None;
    let app = App::new().setup(|cx| {
        let price = price.clone();
        with_tax = Some(cx.use_computed("parity", move || price.get() % 2 == 0));
    });
    let parity = with_tax.expect("computed");
    let app = start(app).await;
    let changes = parity.subscribe();
    assert!(parity.get());
    price.set(12); // still even: no notification
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!changes.has_changed().expect("open"));
    price.set(13);
    eventually("odd", || !parity.get()).await;
    let node = info(&app, "parity");
    assert_eq!(node.kind, LifecycleKind::Computed);
    assert!(node.runs >= 3, "recomputed on each input change: {}", node.runs);
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_latest_resource_run_wins_over_a_slower_earlier_one() {
    let id = Signal::new(1);
    let log = Log::default();
    let mut handle = None;
    let app = App::new().setup(|cx| {
        let (id, log) = (id.clone(), log.clone());
        handle = Some(cx.use_resource("user", move |t| {
            let (id, log) = (id.clone(), log.clone());
            async move {
                let id = t.track(&id);
                log.push(format!("start {id}"));
                let cleanup_log = log.clone();
                t.cleanup(async move {
                    cleanup_log.push(format!("cleanup {id}"));
                    Ok(())
                });
                // The first request is slow, the second fast: they finish out of order.
                let delay = if id == 1 { 400 } else { 50 };
                tokio::time::sleep(Duration::from_millis(delay)).await;
                log.push(format!("finished {id}"));
                Ok::<_, TaskError>(format!("user {id}"))
            }
        }));
    });
    let user = handle.expect("resource");
    let app = start(app).await;
    eventually("the first run tracked its input", || log.lines() == ["start 1"]).await;
    assert_eq!(user.get(), ResourceState::Pending);
    id.set(2);
    assert_eq!(user.settled().await, ResourceState::Resolved("user 2".to_owned()));
    eventually("the slow run finished", || {
        log.lines().contains(&"finished 1".to_owned())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(
        user.get(),
        ResourceState::Resolved("user 2".to_owned()),
        "a stale result overwrote a newer one"
    );
    assert_eq!(
        log.lines()[1..3],
        ["cleanup 1", "start 2"],
        "the superseded run is cleaned up first"
    );
    app.shutdown().await;
    assert!(log.lines().contains(&"cleanup 2".to_owned()));
}

#[tokio::test]
async fn a_resource_run_over_its_timeout_is_rejected_and_cleaned_up() {
    let cleaned = Arc::new(AtomicBool::new(false));
    let mut handle = None;
    let app = App::new().setup(|cx| {
        let cleaned = cleaned.clone();
        handle = Some(
            cx.use_resource("slow", move |t| {
                let cleaned = cleaned.clone();
                async move {
                    t.cleanup(async move {
                        cleaned.store(true, Ordering::SeqCst);
                        Ok(())
                    });
                    tokio::time::sleep(Duration::from_secs(5)).await;
                    Ok::<_, TaskError>(1)
                }
            })
            .timeout(Duration::from_millis(100)),
        );
    });
    let slow = handle.expect("resource");
    let app = start(app).await;
    let started = Instant::now();
    assert_eq!(
        slow.settled().await,
        ResourceState::Rejected("timed out after 100ms".to_owned())
    );
    assert!(started.elapsed() < Duration::from_secs(2));
    assert!(cleaned.load(Ordering::SeqCst), "the timed-out run was cleaned up");
    assert_eq!(info(&app, "slow").state, LifecycleState::Failed);
    app.shutdown().await;
}

#[tokio::test]
async fn shutdown_runs_every_outstanding_cleanup_newest_first_within_the_deadline() {
    let log = Log::default();
    let app = App::new().setup(|cx| {
        for name in ["db", "cache", "hung"] {
            let log = log.clone();
            cx.use_task(name, move |t| {
                let log = log.clone();
                async move {
                    let inner = log.clone();
                    t.cleanup(async move {
                        if name == "hung" {
                            tokio::time::sleep(Duration::from_secs(60)).await;
                        }
                        inner.push(format!("{name} closed"));
                        Ok(())
                    });
                    Ok::<_, TaskError>(())
                }
            });
        }
    });
    let app = App::store(app, StoreConfig::Memory).shutdown_grace(Duration::from_millis(300));
    let app = app.start().await.expect("starts");
    let started = Instant::now();
    app.shutdown().await;
    // `hung` was registered last, so it runs first and eats the whole deadline.
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "shutdown took {:?}",
        started.elapsed()
    );
    assert_eq!(log.lines(), Vec::<String>::new());

    let log = Log::default();
    let app = App::new().setup(|cx| {
        for name in ["db", "cache", "mailer"] {
            let log = log.clone();
            cx.use_task(name, move |t| {
                let log = log.clone();
                async move {
                    let inner = log.clone();
                    t.cleanup(async move {
                        inner.push(format!("{name} closed"));
                        Ok(())
                    });
                    Ok::<_, TaskError>(())
                }
            });
        }
    });
    start(app).await.shutdown().await;
    assert_eq!(log.lines(), ["mailer closed", "cache closed", "db closed"]);
}

/// Serves a started app on `listener`; returns a stop switch and the server task.
fn serve(
    app: RunningApp,
    listener: tokio::net::TcpListener,
) -> (tokio::sync::oneshot::Sender<()>, tokio::task::JoinHandle<()>) {
    let local = listener.local_addr().expect("addr");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let done = tokio::spawn(async move {
        app.serve_on(listener, local, async {
            let _ = stopped.await;
        })
        .await
        .expect("serves");
    });
    (stop, done)
}

fn get(url: &str) -> (u16, String) {
    let mut response = ureq::get(url)
        .config()
        .http_status_as_error(false)
        .build()
        .call()
        .expect("request");
    let status = response.status().as_u16();
    (status, response.body_mut().read_to_string().expect("body"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn visible_tasks_run_after_the_server_is_ready_and_on_their_first_matching_request() {
    let log = Log::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let ready_saw = Arc::new(Mutex::new(None::<u16>));
    let app = App::new()
        .routes(axum::Router::new().route("/hello/{name}", axum::routing::get(|| async { "hi" })))
        .setup(|cx| {
            let (seen, health) = (ready_saw.clone(), format!("{base}/_tasks/health"));
            cx.use_visible_task("on-ready", Visible::Ready, move |_t| {
                let (seen, health) = (seen.clone(), health.clone());
                async move {
                    // The server answers by the time a ready task runs.
                    let status = tokio::task::spawn_blocking(move || get(&health).0).await?;
                    *seen.lock().expect("seen") = Some(status);
                    Ok::<_, TaskError>(())
                }
            });
            let first = log.clone();
            cx.use_visible_task("warm-hello", Visible::first_request("/hello/**"), move |_t| {
                let log = first.clone();
                async move {
                    log.push("warm-hello starts");
                    tokio::time::sleep(Duration::from_millis(1500)).await;
                    log.push("warm-hello ends");
                    Ok::<_, TaskError>(())
                }
            });
            cx.use_visible_task("when-idle", Visible::Idle, |_t| async { Ok::<_, TaskError>(()) });
        });
    let app = start(app).await;
    assert_eq!(
        info(&app, "on-ready").state,
        LifecycleState::Waiting,
        "not before the server is ready"
    );
    let (stop, done) = serve(app, listener);
    eventually("on-ready ran", || ready_saw.lock().expect("seen").is_some()).await;
    assert_eq!(*ready_saw.lock().expect("seen"), Some(200));

    let lifecycle = |name: &str| -> serde_json::Value {
        let (_, body) = get(&format!("{base}/_tasks/lifecycle"));
        let body: serde_json::Value = serde_json::from_str(&body).expect("json");
        let list = body["lifecycle"].as_array().expect("a list").clone();
        list.into_iter().find(|n| n["name"] == name).expect("listed")
    };
    let (status, _) = get(&format!("{base}/other"));
    assert_eq!(status, 404);
    assert_eq!(
        lifecycle("warm-hello")["state"],
        "waiting",
        "an unmatched path does not start it"
    );
    assert_eq!(lifecycle("warm-hello")["kind"], "visible_task");

    let started = Instant::now();
    let (status, body) = get(&format!("{base}/hello/nitro"));
    assert_eq!((status, body.as_str()), (200, "hi"));
    assert!(
        started.elapsed() < Duration::from_millis(1000),
        "the request waited for the task"
    );
    let _ = get(&format!("{base}/hello/again"));
    eventually("warm-hello ended", || log.lines().len() == 2).await;
    assert_eq!(log.lines(), ["warm-hello starts", "warm-hello ends"]);
    let node = lifecycle("warm-hello");
    assert_eq!(
        (node["runs"].as_u64(), node["state"].as_str()),
        (Some(1), Some("idle"))
    );
    assert_eq!(lifecycle("on-ready")["runs"], 1);
    eventually("when-idle ran", || lifecycle("when-idle")["runs"] == 1).await;

    stop.send(()).expect("stop");
    done.await.expect("server");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_config_flag_on_disk_stops_and_resumes_the_schedule_that_tracks_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("taskyard.toml");
    let write = |paused: bool| {
        let text = format!(
            "[features]\npaused = {paused}\n\n[schedules.tick]\ntype = \"all\"\ninterval = \"100ms\"\ntask = \"tick\"\ndisable = {{ config = \"features.paused\" }}\n"
        );
        // Written aside and renamed over, as editors do.
        let partial = dir.path().join("taskyard.toml.partial");
        std::fs::write(&partial, text).expect("write");
        std::fs::rename(&partial, &path).expect("rename");
    };
    write(false);
    let ticks = Arc::new(AtomicUsize::new(0));
    let flag_runs = Log::default();
    let counter = ticks.clone();
    let app = App::new()
        .config_file(&path)
        .task(
            "tick",
            Task::new(move |_cx: TaskContext| {
                let counter = counter.clone();
                async move {
                    counter.fetch_add(1, Ordering::SeqCst);
                    Ok::<_, TaskError>(())
                }
            }),
        )
        .setup(|cx| {
            let paused = cx.config().flag("features.paused");
            let log = flag_runs.clone();
            cx.use_task("pause-watch", move |t| {
                let (paused, log) = (paused.clone(), log.clone());
                async move {
                    log.push(format!("paused = {}", t.track(&paused)));
                    Ok::<_, TaskError>(())
                }
            });
        })
        .schedule_log(None);
    let app = start(app).await;
    let count = || ticks.load(Ordering::SeqCst);
    eventually("ticks", || count() >= 2).await;

    write(true);
    eventually("the task saw the flag", || flag_runs.lines().len() == 2).await;
    eventually("the schedule is disabled", || {
        app.scheduler()
            .list()
            .iter()
            .any(|s| s.name == "tick" && s.disabled)
    })
    .await;
    tokio::time::sleep(Duration::from_millis(150)).await;
    let stopped_at = count();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(count(), stopped_at, "the schedule ticked while disabled");

    write(false);
    eventually("ticks again", || count() >= stopped_at + 2).await;
    assert_eq!(
        flag_runs.lines(),
        ["paused = false", "paused = true", "paused = false"]
    );

    // A file that no longer parses changes nothing.
    std::fs::write(&path, "[features\npaused = true").expect("write");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(flag_runs.lines().len(), 3);
    assert!(!app.config().flag("features.paused").get());
    app.shutdown().await;
}

#[tokio::test]
async fn a_config_value_of_the_wrong_type_stops_the_start_naming_the_key() {
    let app = App::new()
        .config_toml("taskyard.toml", "[limits]\nbatch = \"many\"\n")
        .setup(|cx| {
            let _ = cx.config().signal("limits.batch", 10_u32);
        });
    let error = quiet(app).start().await.err().expect("fails");
    let text = error.to_string();
    assert!(text.contains("`limits.batch`") && text.contains("u32"), "{text}");

    let app = App::new().config_toml(
        "taskyard.toml",
        "[schedules.x]\ntype = \"all\"\ninterval = 1000\ntask = \"t\"\ndisable = { flag = \"a\" }\n",
    );
    let error = quiet(app).start().await.err().expect("fails");
    assert!(error.to_string().contains("{ config = "), "{error}");
}

#[tokio::test]
async fn lifecycle_names_must_be_unique() {
    let app = App::new().setup(|cx| {
        cx.use_task("twice", |_t| async { Ok::<_, TaskError>(()) });
        cx.use_computed("twice", || 1);
    });
    let error = quiet(app).start().await.err().expect("fails");
    assert!(
        error.to_string().contains("`twice` is registered twice"),
        "{error}"
    );
}
