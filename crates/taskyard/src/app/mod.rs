//! [`App`]: collects an app's tasks, state and settings, then starts the runtime and the
//! HTTP server.
//!
//! ```no_run
//! use taskyard::{App, Task, TaskContext, TaskError};
//!
//! # async fn demo() -> taskyard::Result<()> {
//! App::new()
//!     .task("hello", Task::new(|_cx: TaskContext| async { Ok::<_, TaskError>("world") }))
//!     .serve()
//!     .await
//! # }
//! ```

mod command;
mod running;
mod start;

pub use self::command::ExportArgs;
pub use self::running::RunningApp;

use std::panic::Location;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::routing::MethodRouter;

use crate::config::Config;
use crate::http::TasksAccess;
use crate::lifecycle::{LifecycleBuilder, Setup};
use crate::route::{FileRoute, RouteInfo, RouteMeta, ServerRoute};
use crate::run::{Registry, TaskSource};
use crate::schedule::definition::{Job, body_task_name};
use crate::schedule::strategy::StrategyFn;
use crate::schedule::{Schedule, StrategySender};
use crate::store::StoreConfig;
use crate::store::lease::LeaseSettings;
use crate::{AppState, Error, Task};

/// An app under construction.
pub struct App {
    registry: Registry,
    /// Definitions refused so far; the first stops `start`.
    errors: Vec<Error>,
    state: AppState,
    config: Config,
    lifecycle: LifecycleBuilder,
    store: StoreSettings,
    schedules: ScheduleSettings,
    http: HttpSettings,
    shutdown_grace: Duration,
    default_logging: bool,
}

/// Where history goes, and how long callers wait for it.
struct StoreSettings {
    /// `None`: from the environment at start.
    config: Option<StoreConfig>,
    lease: LeaseSettings,
    timeout: Duration,
}

/// The app's schedules and what they run with.
struct ScheduleSettings {
    list: Vec<(String, Schedule)>,
    strategies: Vec<(String, StrategyFn)>,
    worker_grace: Duration,
    /// `None`: the default path when there are schedules; `Some(None)`: no log.
    log: Option<Option<PathBuf>>,
    /// `None`: `TZ`, else UTC.
    time_zone: Option<String>,
}

/// How the app is served: its routes, middleware and limits.
struct HttpSettings {
    /// `None`: `HOST` and `PORT`.
    listen: Option<std::net::SocketAddr>,
    /// `None`: the defaults, with the environment's overrides.
    limits: Option<crate::http::ServerLimits>,
    body_limit: usize,
    /// `None`: from the environment (`TASKYARD_TASKS_TOKEN`).
    tasks_access: Option<TasksAccess>,
    /// `None`: from the environment (`TASKYARD_UI`).
    dashboard: Option<crate::Dashboard>,
    /// Routes added in code.
    routes: axum::Router,
    /// Routes from files.
    server_routes: Vec<ServerRoute>,
    middleware: Vec<Middleware>,
    /// The name and version in the OpenAPI document.
    package: (String, String),
    /// `None`: from `TASKYARD_ENV`.
    production: Option<bool>,
    /// `None`: served unless in production.
    openapi: Option<bool>,
}

/// A middleware layer, applied to the app's router in file-name order.
type Middleware = Arc<dyn Fn(Router) -> Router + Send + Sync>;

impl Default for App {
    fn default() -> Self {
        App::new()
    }
}

impl App {
    /// An app with no tasks, the default settings and `taskyard.toml` not yet read.
    pub fn new() -> Self {
        App {
            registry: Registry::new(),
            errors: Vec::new(),
            state: AppState::default(),
            config: Config::default(),
            lifecycle: LifecycleBuilder::default(),
            store: StoreSettings {
                config: None,
                lease: LeaseSettings::default(),
                timeout: Duration::from_secs(5),
            },
            schedules: ScheduleSettings {
                list: Vec::new(),
                strategies: Vec::new(),
                worker_grace: Duration::from_secs(2),
                log: None,
                time_zone: None,
            },
            http: HttpSettings {
                listen: None,
                limits: None,
                body_limit: crate::http::DEFAULT_BODY_LIMIT,
                tasks_access: None,
                dashboard: None,
                routes: axum::Router::new(),
                server_routes: Vec::new(),
                middleware: Vec::new(),
                package: ("taskyard app".to_owned(), "0.0.0".to_owned()),
                production: None,
                openapi: None,
            },
            shutdown_grace: Duration::from_secs(10),
            default_logging: true,
        }
    }

    /// The app's name and version, for its OpenAPI document; the generated code passes the
    /// crate's.
    pub fn package(mut self, name: &str, version: &str) -> Self {
        self.http.package = (name.to_owned(), version.to_owned());
        self
    }

    /// Whether the app runs in production: unhandled errors then answer only `Internal
    /// Server Error`, and `/_openapi.json` is off unless [`App::openapi`] turns it on.
    /// Default: `TASKYARD_ENV` (see [`config`](crate::config)).
    pub fn production(mut self, production: bool) -> Self {
        self.http.production = Some(production);
        self
    }

    /// Whether [`serve`](App::serve) installs a log subscriber when the app has none
    /// (default `true`): `RUST_LOG` filters it, `info` by default, so task failures,
    /// store trouble and shutdown are visible without setting anything up. An app that
    /// installs its own `tracing` subscriber before `serve` keeps it either way.
    pub fn default_logging(mut self, on: bool) -> Self {
        self.default_logging = on;
        self
    }

    /// Whether `GET /_openapi.json` documents the file routes. Default: in development only.
    pub fn openapi(mut self, serve: bool) -> Self {
        self.http.openapi = Some(serve);
        self
    }

    /// Registers a route found in a file under `src/routes/` or `src/api/`; called by the
    /// code `taskyard-build` generates.
    #[doc(hidden)]
    pub fn file_route(mut self, route: FileRoute, handler: MethodRouter) -> Self {
        let meta = match route.meta.map(|meta| meta()) {
            None => RouteMeta::default(),
            Some(Ok(meta)) => meta,
            Some(Err(message)) => {
                self.errors.push(Error::Routes {
                    message: format!("{}: {message}", route.file),
                });
                RouteMeta::default()
            }
        };
        self.http.server_routes.push(ServerRoute {
            info: RouteInfo {
                source: route.file.to_owned(),
                path: route.path.to_owned(),
                method: route.method.map(str::to_owned),
                params: route.params.iter().map(|p| (*p).to_owned()).collect(),
                meta,
            },
            handler,
        });
        self
    }

    /// Adds a middleware that runs for every request, after those added before it: any
    /// tower layer, typically `axum::middleware::from_fn(f)`. A middleware may change the
    /// request (or its [`Context`](crate::route::Context)) and call `next`, or answer
    /// itself and end the chain.
    ///
    /// ```
    /// use axum::extract::Request;
    /// use axum::middleware::{Next, from_fn};
    /// use axum::response::{IntoResponse, Response};
    ///
    /// async fn deny_admin(request: Request, next: Next) -> Response {
    ///     if request.uri().path().starts_with("/admin") {
    ///         return taskyard::http::HttpError::status(axum::http::StatusCode::FORBIDDEN, "no").into_response();
    ///     }
    ///     next.run(request).await
    /// }
    ///
    /// let app = taskyard::App::new().middleware(from_fn(deny_admin));
    /// # drop(app);
    /// ```
    pub fn middleware<L>(mut self, layer: L) -> Self
    where
        L: tower_layer::Layer<axum::routing::Route> + Clone + Send + Sync + 'static,
        L::Service: tower_service::Service<axum::extract::Request> + Clone + Send + Sync + 'static,
        <L::Service as tower_service::Service<axum::extract::Request>>::Response:
            axum::response::IntoResponse + 'static,
        <L::Service as tower_service::Service<axum::extract::Request>>::Error:
            Into<std::convert::Infallible> + 'static,
        <L::Service as tower_service::Service<axum::extract::Request>>::Future: Send + 'static,
    {
        self.http
            .middleware
            .push(Arc::new(move |router: Router| router.layer(layer.clone())));
        self
    }

    /// The address [`serve`](App::serve) listens on, instead of `HOST:PORT`.
    pub fn listen(mut self, addr: std::net::SocketAddr) -> Self {
        self.http.listen = Some(addr);
        self
    }

    /// The setup phase: create signals and register lifecycle tasks (see
    /// [`lifecycle`](crate::lifecycle)). May be called more than once; registrations add up,
    /// in order.
    ///
    /// ```
    /// use taskyard::{App, TaskError};
    ///
    /// let app = App::new().setup(|cx| {
    ///     let ready = cx.signal(false);
    ///     cx.use_task("prepare", move |_t| {
    ///         let ready = ready.clone();
    ///         async move {
    ///             ready.set(true); // before the server listens
    ///             Ok::<_, TaskError>(())
    ///         }
    ///     });
    /// });
    /// # drop(app);
    /// ```
    pub fn setup(mut self, setup: impl FnOnce(&mut Setup<'_>)) -> Self {
        let mut cx = Setup {
            lifecycle: &mut self.lifecycle,
            state: &mut self.state,
            config: &self.config,
        };
        setup(&mut cx);
        self
    }

    /// The values of the app's `taskyard.toml`, as signals that follow the file.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Registers a schedule. Its values are checked when the app starts; a schedule with a
    /// body of its own (`.run(..)`) registers that body as the task `schedule:NAME`.
    #[track_caller]
    pub fn schedule(self, name: &str, schedule: Schedule) -> Self {
        let source = TaskSource::Code(Location::caller());
        self.add_schedule(name, schedule, source)
    }

    /// Registers a schedule found in a file under `src/schedule/`; called by the code
    /// `taskyard-build` generates.
    #[doc(hidden)]
    pub fn file_schedule(self, name: &str, path: &str, schedule: Schedule) -> Self {
        self.add_schedule(name, schedule, TaskSource::File(path.to_owned()))
    }

    fn add_schedule(mut self, name: &str, schedule: Schedule, source: TaskSource) -> Self {
        if let Some(Job::Body(body)) = &schedule.job
            && let Err(error) = self.registry.add(&body_task_name(name), body.clone(), source)
        {
            self.errors.push(error);
        }
        self.schedules.list.push((name.to_owned(), schedule));
        self
    }

    /// Registers a custom trigger strategy: schedules whose `type` is `name` run when it
    /// says so. `strategy` is called once for each such schedule (again after it is
    /// re-enabled) with a [`StrategySender`] bound to it, and runs until the schedule is
    /// removed or disabled or the app stops.
    ///
    /// ```no_run
    /// use taskyard::schedule::{Schedule, StrategySender};
    /// use taskyard::App;
    /// use serde_json::json;
    ///
    /// let (tx, mut rx) = tokio::sync::mpsc::channel::<u64>(16);
    /// let rx = std::sync::Arc::new(tokio::sync::Mutex::new(rx));
    /// let app = App::new()
    ///     .strategy("orders", move |sender: StrategySender| {
    ///         let rx = rx.clone();
    ///         async move {
    ///             while let Some(order) = rx.lock().await.recv().await {
    ///                 let _ = sender.send_one(json!({ "order": order })).await;
    ///             }
    ///         }
    ///     })
    ///     .schedule("ship", Schedule::custom("orders").task("orders:ship"));
    /// # let _ = (app, tx);
    /// ```
    pub fn strategy<F, Fut>(mut self, name: &str, strategy: F) -> Self
    where
        F: Fn(StrategySender) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = ()> + Send + 'static,
    {
        if matches!(name, "worker" | "all")
            || self.schedules.strategies.iter().any(|(known, _)| known == name)
        {
            self.errors.push(Error::InvalidName {
                name: name.to_owned(),
                message: format!(
                    "strategy `{name}` is already defined (`worker` and `all` are built in); give it another name"
                ),
            });
        } else {
            self.schedules
                .strategies
                .push((name.to_owned(), StrategyFn::new(strategy)));
        }
        self
    }

    /// Uses `text` as the app's `taskyard.toml`: its schedules (`[scheduled_tasks]` and
    /// `[schedules.NAME]`) and its values ([`App::config`]). `origin` names it in error
    /// messages. The values do not change while the app runs; see [`App::config_file`].
    pub fn config_toml(self, origin: &str, text: &str) -> Self {
        let config = Config::from_text(origin, text);
        self.use_config(config)
    }

    /// Uses the file at `path` as the app's `taskyard.toml`, and watches it while the app
    /// runs: signals made from it follow its changes.
    pub fn config_file(self, path: impl AsRef<std::path::Path>) -> Self {
        let config = Config::from_file(path.as_ref());
        self.use_config(config)
    }

    /// The app's `taskyard.toml` as `taskyard-build` embedded it (read from `built_from`);
    /// `TASKYARD_CONFIG`, or in debug builds the file itself, takes over when present.
    #[doc(hidden)]
    pub fn app_config(self, origin: &str, embedded: &str, built_from: &str) -> Self {
        let config = Config::for_app(origin, embedded, built_from);
        self.use_config(config)
    }

    fn use_config(mut self, config: Result<Config, Error>) -> Self {
        let config = match config {
            Ok(config) => config,
            Err(error) => {
                self.errors.push(error);
                return self;
            }
        };
        match crate::schedule::config::schedules_from_config(&config) {
            Ok(schedules) => self.schedules.list.extend(schedules),
            Err(error) => self.errors.push(error),
        }
        self.config = config;
        self
    }

    /// How long the other instances wait for the instance a `worker` tick is meant for
    /// before one of them runs it instead (default 2 s).
    pub fn worker_grace(mut self, grace: Duration) -> Self {
        self.schedules.worker_grace = grace;
        self
    }

    /// Where the schedule log goes (default `TASKYARD_DATA_DIR/logs/schedule.log` when
    /// the app has schedules); `None` turns it off.
    pub fn schedule_log(mut self, path: Option<PathBuf>) -> Self {
        self.schedules.log = Some(path);
        self
    }

    /// The default time zone of cron schedules (an IANA name). Default: `TZ`, else UTC.
    pub fn time_zone(mut self, zone: impl Into<String>) -> Self {
        self.schedules.time_zone = Some(zone.into());
        self
    }

    /// Registers a task defined in code. A name already taken is reported when the app
    /// starts, naming both definitions.
    #[track_caller]
    pub fn task(mut self, name: &str, task: Task) -> Self {
        if let Err(error) = self
            .registry
            .add(name, task, TaskSource::Code(Location::caller()))
        {
            self.errors.push(error);
        }
        self
    }

    /// Registers a task found in a file under `src/tasks/`; called by the code
    /// `taskyard-build` generates.
    #[doc(hidden)]
    pub fn file_task(mut self, name: &str, path: &str, task: Task) -> Self {
        if let Err(error) = self.registry.add(name, task, TaskSource::File(path.to_owned())) {
            self.errors.push(error);
        }
        self
    }

    /// Shares a value with every task (`cx.state::<T>()`).
    pub fn state<T: Send + Sync + 'static>(mut self, value: T) -> Self {
        self.state.insert(value);
        self
    }

    /// Where run history is kept. Default: [`StoreConfig::from_env`].
    pub fn store(mut self, store: StoreConfig) -> Self {
        self.store.config = Some(store);
        self
    }

    /// How long an instance stays alive in the store without a heartbeat (default 30 s);
    /// runs of an instance silent for longer are marked `abandoned`.
    pub fn lease_ttl(mut self, ttl: Duration) -> Self {
        self.store.lease.ttl = ttl;
        self
    }

    /// How long a caller waits for the store to confirm a write (a run's final record, the
    /// queued record of a run started without waiting) before it gets `503 Service
    /// Unavailable` (default 5 s). The record is not dropped: it is written once the store
    /// takes writes again.
    pub fn store_timeout(mut self, timeout: Duration) -> Self {
        self.store.timeout = timeout;
        self
    }

    /// The HTTP server's connection limit and header-read timeout. Default:
    /// [`ServerLimits::default`](crate::http::ServerLimits) (1024 connections, 10 s), or
    /// `TASKYARD_MAX_CONNECTIONS` and `TASKYARD_HEADER_READ_TIMEOUT_MS` when set.
    pub fn server_limits(mut self, limits: crate::http::ServerLimits) -> Self {
        self.http.limits = Some(limits);
        self
    }

    /// How long finished runs are kept (default 7 days; `None`: forever).
    pub fn retention(mut self, retention: Option<Duration>) -> Self {
        self.store.lease.retention = retention;
        self
    }

    /// How long running tasks may take to finish at shutdown before they are cancelled
    /// (default 10 s).
    pub fn shutdown_grace(mut self, grace: Duration) -> Self {
        self.shutdown_grace = grace;
        self
    }

    /// The largest request body the task endpoints accept (default 1 MiB); larger ones
    /// get `413 Payload Too Large`.
    pub fn body_limit(mut self, bytes: usize) -> Self {
        self.http.body_limit = bytes;
        self
    }

    /// Who may call the task endpoints. Default: [`TasksAccess::from_env`] — loopback
    /// clients in development, bearer-token clients in production when
    /// `TASKYARD_TASKS_TOKEN` is set, nobody otherwise.
    pub fn tasks_access(mut self, access: TasksAccess) -> Self {
        self.http.tasks_access = Some(access);
        self
    }

    /// What the dashboard at `/_tasks/ui` offers: every page and action, pages only, or
    /// nothing. Default: [`Dashboard::from_env`](crate::Dashboard::from_env) (`TASKYARD_UI`).
    /// It answers under the same access rule as the task endpoints.
    pub fn dashboard(mut self, dashboard: crate::Dashboard) -> Self {
        self.http.dashboard = Some(dashboard);
        self
    }

    /// Adds the app's own axum routes. Handlers reach the runtime with a
    /// [`Runtime`](crate::Runtime) argument, an extractor.
    pub fn routes(mut self, routes: axum::Router) -> Self {
        self.http.routes = self.http.routes.merge(routes);
        self
    }
}
