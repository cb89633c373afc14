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

use std::panic::Location;
use std::path::PathBuf;
use std::time::Duration;

use std::sync::Arc;

use axum::Router;
use axum::routing::MethodRouter;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::config::{Config, ConfigWatch};
use crate::http::TasksAccess;
use crate::lifecycle::{Lifecycle, LifecycleBuilder, Setup};
use crate::route::{FileRoute, RouteInfo, RouteMeta, RouteRules, ServerRoute};
use crate::run::RuntimeParts;
use crate::run::{Registry, TaskSource};
use crate::schedule::definition::{Context as ScheduleContext, Job, ScheduleDef, body_task_name};
use crate::schedule::log::ScheduleLog;
use crate::schedule::strategy::StrategyFn;
use crate::schedule::{Schedule, Scheduler, Settings as ScheduleSettings, StrategySender};
use crate::store::lease::{Halt, LeaseKeeper, LeaseSettings};
use crate::store::{Recorder, StoreConfig, StoreHealth};
use crate::sync::lock;
use crate::{AppState, Error, Runtime, Task};

/// An app under construction.
pub struct App {
    registry: Registry,
    errors: Vec<Error>,
    state: AppState,
    store: Option<StoreConfig>,
    lease: LeaseSettings,
    store_timeout: Duration,
    server_limits: Option<crate::http::ServerLimits>,
    shutdown_grace: Duration,
    routes: axum::Router,
    schedules: Vec<(String, Schedule)>,
    strategies: Vec<(String, StrategyFn)>,
    worker_grace: Duration,
    schedule_log: Option<Option<PathBuf>>,
    time_zone: Option<String>,
    body_limit: usize,
    tasks_access: Option<TasksAccess>,
    config: Config,
    lifecycle: LifecycleBuilder,
    listen: Option<std::net::SocketAddr>,
    server_routes: Vec<ServerRoute>,
    middleware: Vec<Middleware>,
    package: (String, String),
    production: Option<bool>,
    openapi: Option<bool>,
    default_logging: bool,
}

/// A middleware layer, applied to the app's router in file-name order.
type Middleware = Arc<dyn Fn(Router) -> Router + Send + Sync>;

impl Default for App {
    fn default() -> Self {
        App::new()
    }
}

impl App {
    pub fn new() -> Self {
        App {
            registry: Registry::new(),
            errors: Vec::new(),
            state: AppState::default(),
            store: None,
            lease: LeaseSettings::default(),
            store_timeout: Duration::from_secs(5),
            server_limits: None,
            shutdown_grace: Duration::from_secs(10),
            routes: axum::Router::new(),
            schedules: Vec::new(),
            strategies: Vec::new(),
            worker_grace: Duration::from_secs(2),
            schedule_log: None,
            time_zone: None,
            body_limit: crate::http::DEFAULT_BODY_LIMIT,
            tasks_access: None,
            config: Config::default(),
            lifecycle: LifecycleBuilder::default(),
            listen: None,
            server_routes: Vec::new(),
            middleware: Vec::new(),
            package: ("taskyard app".to_owned(), "0.0.0".to_owned()),
            production: None,
            openapi: None,
            default_logging: true,
        }
    }

    /// The app's name and version, for its OpenAPI document; the generated code passes the
    /// crate's.
    pub fn package(mut self, name: &str, version: &str) -> Self {
        self.package = (name.to_owned(), version.to_owned());
        self
    }

    /// Whether the app runs in production: unhandled errors then answer only `Internal
    /// Server Error`, and `/_openapi.json` is off unless [`App::openapi`] turns it on.
    /// Default: `TASKYARD_ENV` (see [`config`](crate::config)).
    pub fn production(mut self, production: bool) -> Self {
        self.production = Some(production);
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
        self.openapi = Some(serve);
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
                self.errors
                    .push(Error::Config(format!("{}: {message}", route.file)));
                RouteMeta::default()
            }
        };
        self.server_routes.push(ServerRoute {
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
        self.middleware
            .push(Arc::new(move |router: Router| router.layer(layer.clone())));
        self
    }

    /// The address [`serve`](App::serve) listens on, instead of `HOST:PORT`.
    pub fn listen(mut self, addr: std::net::SocketAddr) -> Self {
        self.listen = Some(addr);
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
        self.schedules.push((name.to_owned(), schedule));
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
    ///                 let _ = sender.send_one(json!({ "order": order }));
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
        if matches!(name, "worker" | "all") || self.strategies.iter().any(|(known, _)| known == name) {
            self.errors.push(Error::Config(format!(
                "strategy `{name}` is already defined (`worker` and `all` are built in); give it another name"
            )));
        } else {
            self.strategies.push((name.to_owned(), StrategyFn::new(strategy)));
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
            Ok(schedules) => self.schedules.extend(schedules),
            Err(error) => self.errors.push(error),
        }
        self.config = config;
        self
    }

    /// How long the other instances wait for the instance a `worker` tick is meant for
    /// before one of them runs it instead (default 2 s).
    pub fn worker_grace(mut self, grace: Duration) -> Self {
        self.worker_grace = grace;
        self
    }

    /// Where the schedule log goes (default `TASKYARD_DATA_DIR/logs/schedule.log` when
    /// the app has schedules); `None` turns it off.
    pub fn schedule_log(mut self, path: Option<PathBuf>) -> Self {
        self.schedule_log = Some(path);
        self
    }

    /// The default time zone of cron schedules (an IANA name). Default: `TZ`, else UTC.
    pub fn time_zone(mut self, zone: impl Into<String>) -> Self {
        self.time_zone = Some(zone.into());
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
        self.store = Some(store);
        self
    }

    /// How long an instance stays alive in the store without a heartbeat (default 30 s);
    /// runs of an instance silent for longer are marked `abandoned`.
    pub fn lease_ttl(mut self, ttl: Duration) -> Self {
        self.lease.ttl = ttl;
        self
    }

    /// How long a caller waits for the store to confirm a write (a run's final record, the
    /// queued record of a run started without waiting) before it gets `503 Service
    /// Unavailable` (default 5 s). The record is not dropped: it is written once the store
    /// takes writes again.
    pub fn store_timeout(mut self, timeout: Duration) -> Self {
        self.store_timeout = timeout;
        self
    }

    /// The HTTP server's connection limit and header-read timeout. Default:
    /// [`ServerLimits::default`](crate::http::ServerLimits) (1024 connections, 10 s), or
    /// `TASKYARD_MAX_CONNECTIONS` and `TASKYARD_HEADER_READ_TIMEOUT_MS` when set.
    pub fn server_limits(mut self, limits: crate::http::ServerLimits) -> Self {
        self.server_limits = Some(limits);
        self
    }

    /// How long finished runs are kept (default 7 days; `None`: forever).
    pub fn retention(mut self, retention: Option<Duration>) -> Self {
        self.lease.retention = retention;
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
        self.body_limit = bytes;
        self
    }

    /// Who may call the task endpoints. Default: [`TasksAccess::from_env`] — loopback
    /// clients in development, bearer-token clients in production when
    /// `TASKYARD_TASKS_TOKEN` is set, nobody otherwise.
    pub fn tasks_access(mut self, access: TasksAccess) -> Self {
        self.tasks_access = Some(access);
        self
    }

    /// Adds the app's own axum routes. Handlers reach the runtime with a
    /// [`Runtime`](crate::Runtime) argument, an extractor.
    pub fn routes(mut self, routes: axum::Router) -> Self {
        self.routes = self.routes.merge(routes);
        self
    }

    /// Checks the definitions, opens the store and starts the runtime, without serving HTTP.
    pub async fn start(mut self) -> Result<RunningApp, Error> {
        let mut errors = std::mem::take(&mut self.errors);
        errors.append(&mut self.lifecycle.errors);
        errors.extend(self.config.take_errors());
        if let Some(error) = errors.into_iter().next() {
            return Err(error);
        }
        // Every definition is checked before anything starts.
        let default_zone = match &self.time_zone {
            Some(zone) => crate::config::time_zone(zone).map_err(Error::Config)?,
            None => crate::config::default_time_zone()?,
        };
        let settings = ScheduleSettings {
            worker_grace: self.worker_grace,
            membership_refresh: Duration::from_secs(1),
            default_zone,
            strategies: self.strategies,
        };
        let defs = check_schedules(&self.schedules, &self.registry, &settings)?;
        let rules = RouteRules::from_config(&self.config.table(), self.config.origin())?;
        let route_infos: Vec<RouteInfo> = self.server_routes.iter().map(|r| r.info.clone()).collect();
        let (routes, catch_alls) = mount_routes(&self.server_routes, self.routes)?;
        let production = self
            .production
            .unwrap_or_else(|| crate::config::app_env() == "production");
        let openapi = self.openapi.unwrap_or(!production).then(|| {
            let (title, version) = &self.package;
            Arc::new(crate::route::openapi::document(&route_infos, title, version))
        });
        let server_limits = match self.server_limits {
            Some(limits) => limits,
            None => crate::config::server_limits()?,
        };
        let config = match self.store {
            Some(config) => config,
            None => StoreConfig::from_env()?,
        };
        let store = config.open().await?;
        let instance = uuid::Uuid::now_v7().to_string();
        let stop_lease = CancellationToken::new();
        let health = Arc::new(StoreHealth::default());
        let halt = Arc::new(Halt::default());
        let mut background = Vec::new();
        let recorder = match &store {
            Some(store) => {
                // The lease is in place before any run can be recorded, so no other
                // instance can take this one's first runs for abandoned.
                let mut keeper = LeaseKeeper::new(
                    store.clone(),
                    instance.clone(),
                    self.lease,
                    health.clone(),
                    halt.clone(),
                );
                keeper.tick().await?;
                background.push(tokio::spawn(keeper.run(stop_lease.clone())));
                let (recorder, writer) = Recorder::spawn(store.clone(), health.clone(), self.store_timeout);
                background.push(writer);
                Some(recorder)
            }
            None => None,
        };
        let runtime = Runtime::new(RuntimeParts {
            registry: self.registry,
            state: self.state,
            instance,
            store: store.clone(),
            recorder,
            health,
        });
        let front = Arc::new(crate::http::front::Front {
            rules,
            cache: Default::default(),
            proxy: Default::default(),
            production,
            body_limit: self.body_limit,
            tasks: runtime.clone(),
            app: std::sync::Mutex::new(None),
        });
        let log_path = match self.schedule_log {
            Some(path) => path,
            None if self.schedules.is_empty() => None,
            None => Some(crate::config::data_dir().join("logs").join("schedule.log")),
        };
        let log = match log_path {
            Some(path) => {
                let (log, writer) = ScheduleLog::open(path);
                background.push(writer);
                log
            }
            None => ScheduleLog::disabled(),
        };
        let scheduler = Scheduler::new(runtime.clone(), store, settings, log);
        let config_watch = self.config.watch()?;
        let lifecycle = Lifecycle::new(self.lifecycle, runtime.clone());
        let app = RunningApp {
            runtime,
            scheduler,
            lifecycle,
            config: self.config,
            config_watch,
            routes,
            catch_alls,
            route_infos,
            middleware: self.middleware,
            front,
            openapi,
            shutdown_grace: self.shutdown_grace,
            server_limits,
            stop_lease,
            halt,
            closing: CancellationToken::new(),
            body_limit: self.body_limit,
            tasks_access: self.tasks_access.unwrap_or_else(TasksAccess::from_env),
            background,
        };
        // Startup tasks run before the schedules start and before the server listens.
        if let Err(error) = app.lifecycle.start().await {
            app.shutdown().await;
            return Err(error);
        }
        if let Err(error) = app.scheduler.start(defs).await {
            app.shutdown().await;
            return Err(error);
        }
        Ok(app)
    }

    /// Starts the app — its startup tasks first — then serves HTTP on `HOST:PORT` (default
    /// `127.0.0.1:3000`, or [`App::listen`]) until Ctrl-C or SIGTERM, then shuts down
    /// gracefully.
    pub async fn serve(self) -> Result<(), Error> {
        if self.default_logging && !tracing::dispatcher::has_been_set() {
            let filter = tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
            // Another subscriber set in between wins; nothing to report then.
            let _ = tracing_subscriber::fmt().with_env_filter(filter).try_init();
        }
        let addr = match self.listen {
            Some(addr) => addr,
            None => crate::config::listen_addr()?,
        };
        let app = self.start().await?;
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| Error::io(format!("binding {addr} (set PORT to use another port)"), e))?;
        let local = listener
            .local_addr()
            .map_err(|e| Error::io("reading the bound address", e))?;
        app.serve_on(listener, local, shutdown_signal()).await
    }
}

/// A started app: the runtime plus its background work (lease keeper, record writer).
pub struct RunningApp {
    runtime: Runtime,
    scheduler: Scheduler,
    lifecycle: Lifecycle,
    config: Config,
    config_watch: Option<ConfigWatch>,
    /// The file routes and the routes added in code, on one router.
    routes: Router,
    /// The catch-all file routes, which answer what `routes` does not.
    catch_alls: Router,
    route_infos: Vec<RouteInfo>,
    middleware: Vec<Middleware>,
    front: Arc<crate::http::front::Front>,
    /// The OpenAPI document of the routes, when it is served.
    openapi: Option<Arc<serde_json::Value>>,
    shutdown_grace: Duration,
    server_limits: crate::http::ServerLimits,
    stop_lease: CancellationToken,
    /// Set when the instance must stop on its own (its SQLite file was replaced).
    halt: Arc<Halt>,
    /// Cancelled when shutdown begins; ends open event streams.
    closing: CancellationToken,
    body_limit: usize,
    tasks_access: TasksAccess,
    background: Vec<JoinHandle<()>>,
}

impl RunningApp {
    pub fn runtime(&self) -> &Runtime {
        &self.runtime
    }

    /// The schedules: list, add, remove, pause, resume, run one now.
    pub fn scheduler(&self) -> &Scheduler {
        &self.scheduler
    }

    /// The lifecycle tasks, resources and computed values.
    pub fn lifecycle(&self) -> &Lifecycle {
        &self.lifecycle
    }

    /// The app's `taskyard.toml` values.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Runs a schedule's job once, here and now, ignoring its type and `disable`, and
    /// returns its result (egg's `app.runSchedule`).
    pub async fn run_schedule(&self, name: &str) -> Result<serde_json::Value, Error> {
        self.scheduler.run_schedule(name).await
    }

    /// The app's routes: where each comes from and what the OpenAPI document says of it.
    pub fn routes(&self) -> &[RouteInfo] {
        &self.route_infos
    }

    /// The app's whole router: the front layer (route rules, error pages), the middleware,
    /// the app's routes and the task endpoints (per its [`TasksAccess`]). For serving it
    /// yourself or calling it in tests; handlers see the client's address through
    /// `ConnectInfo<SocketAddr>`, which the task endpoints need in development. It is
    /// [`service`](Self::service) behind one more router level.
    pub fn router(&self) -> Router {
        Router::new().fallback_service(self.service())
    }

    /// The app as one tower service, as [`serve_on`](Self::serve_on) serves it: the front
    /// layer around the router of the middleware, routes and task endpoints.
    pub fn service(&self) -> crate::http::AppService {
        let api = crate::http::Api {
            runtime: self.runtime.clone(),
            scheduler: self.scheduler.clone(),
            lifecycle: self.lifecycle.clone(),
            closing: self.closing.clone(),
            body_limit: self.body_limit,
        };
        let mut routes = self.routes.clone();
        if let Some(document) = &self.openapi {
            let document = document.clone();
            routes = routes.route(
                "/_openapi.json",
                axum::routing::get(move || {
                    let document = document.clone();
                    async move { axum::Json(document.as_ref().clone()) }
                }),
            );
        }
        let catch_alls = self
            .catch_alls
            .clone()
            .fallback(crate::http::route_not_found)
            .method_not_allowed_fallback(crate::http::method_not_allowed);
        let inner = crate::http::router(api, self.tasks_access.clone(), routes)
            .fallback_service(catch_alls)
            .method_not_allowed_fallback(crate::http::method_not_allowed);
        let inner = self
            .middleware
            .iter()
            .rev()
            .fold(inner, |router, layer| layer(router));
        let inner = if self.lifecycle.watches_requests() {
            inner.layer(axum::middleware::from_fn_with_state(
                self.lifecycle.clone(),
                crate::http::lifecycle::watch_requests,
            ))
        } else {
            inner
        };
        // The front layer wraps the whole router, so it runs before routing.
        let service = crate::http::FrontService::new(inner, self.front.clone());
        *lock(&self.front.app) = Some(service.clone());
        service
    }

    /// Tells the lifecycle the server is listening: the `Ready` visible tasks start, and
    /// the `Idle` ones wait for a quiet moment. [`serve_on`](Self::serve_on) calls it; call
    /// it yourself if you serve [`router`](Self::router) another way.
    pub fn ready(&self) {
        self.lifecycle.ready();
    }

    /// Serves HTTP on `listener` until `signal` completes, then shuts down. While it
    /// serves, `TASKYARD_DATA_DIR/dev.json` tells the `taskyard` command line where the
    /// app is.
    pub async fn serve_on(
        self,
        listener: tokio::net::TcpListener,
        local: std::net::SocketAddr,
        signal: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), Error> {
        let service = self.service();
        let halt = self.halt.clone();
        let dev_info = crate::config::DevInfo::write(local, self.runtime.instance());
        let stop = CancellationToken::new();
        tokio::spawn({
            let stop = stop.clone();
            let halted = self.halt.token.clone();
            async move {
                tokio::select! {
                    () = signal => {}
                    () = halted.cancelled() => {}
                }
                stop.cancel();
            }
        });
        // One line, on standard output whatever the logging: tools (and the tests) wait
        // for it to learn the address.
        println!("taskyard listening on http://{local}");
        // New requests are answered 503 from the moment shutdown begins; the listener
        // closes once the runtime has stopped.
        let draining = CancellationToken::new();
        let close = CancellationToken::new();
        let server = crate::http::serve(
            listener,
            service,
            self.server_limits,
            draining.clone(),
            close.clone(),
        );
        self.ready();
        // Runs must be stopped while the server drains: requests waiting on a run end
        // when that run ends.
        let runtime_down = async {
            stop.cancelled().await;
            tracing::info!("shutting down");
            draining.cancel();
            self.shutdown().await;
            close.cancel();
        };
        tokio::join!(server, runtime_down);
        drop(dev_info);
        match halt.reason() {
            Some(reason) => Err(reason.clone()),
            None => Ok(()),
        }
    }

    /// Stops taking runs, gives running ones the grace period, cancels the rest, writes
    /// every record and releases this instance's lease.
    pub async fn shutdown(self) {
        // Timers stop first, so no tick starts a run the runtime would refuse; ticks whose
        // runs are going log their end once the runtime has stopped them.
        self.scheduler.stop();
        self.closing.cancel();
        // The router holds the front layer, which holds the router: break the cycle.
        lock(&self.front.app).take();
        // Lifecycle cleanups may still run tasks, so they go before the runtime stops.
        self.lifecycle.shutdown(self.shutdown_grace).await;
        self.runtime.shutdown(self.shutdown_grace).await;
        self.scheduler.wait().await;
        self.stop_lease.cancel();
        let grace = self.shutdown_grace;
        let RunningApp {
            runtime,
            scheduler,
            background,
            config_watch,
            ..
        } = self;
        drop(config_watch);
        // Dropping the runtime closes the recorder's channel so the writer drains and ends;
        // dropping the scheduler does the same for the schedule log.
        drop(scheduler);
        drop(runtime);
        // A store that stopped taking writes must not hold the process: what the writers
        // could not write by the end of the grace period is reported and given up.
        let deadline = tokio::time::Instant::now() + grace;
        for mut task in background {
            if tokio::time::timeout_at(deadline, &mut task).await.is_err() {
                tracing::error!(
                    "a background writer (run records, the lease or the schedule log) did not finish within the shutdown grace; stopping it"
                );
                task.abort();
            }
        }
    }
}

/// The file routes and `code` on one router. axum refuses routes that cannot share a
/// router by panicking; that is caught and reported with the files involved.
fn mount_routes(routes: &[ServerRoute], code: Router) -> Result<(Router, Router), Error> {
    let mounted = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let (routes, catch_alls) = crate::route::mount(routes);
        (routes.merge(code), catch_alls)
    }));
    mounted.map_err(|panic| {
        let reason = crate::error::panic_message(panic.as_ref());
        let files: Vec<&str> = routes.iter().map(|r| r.info.source.as_str()).collect();
        Error::Config(format!(
            "the app's routes cannot share one router: {reason}. Check the routes added with App::routes against the route files ({})",
            files.join(", ")
        ))
    })
}

/// Checks every schedule that applies in this environment (`TASKYARD_ENV`); the others are
/// left out, as egg-schedule does.
fn check_schedules(
    schedules: &[(String, Schedule)],
    registry: &Registry,
    settings: &ScheduleSettings,
) -> Result<Vec<ScheduleDef>, Error> {
    let env = crate::config::app_env();
    let task_exists = |task: &str| registry.get(task).is_some();
    let mut crons = std::collections::HashMap::new();
    let strategies = settings.strategy_names();
    let mut cx = ScheduleContext {
        task_exists: &task_exists,
        strategies: &strategies,
        default_zone: &settings.default_zone,
        now: jiff::Timestamp::now(),
        crons: &mut crons,
    };
    let mut defs = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for (name, schedule) in schedules {
        if !seen.insert(name.as_str()) {
            return Err(Error::InvalidSchedule {
                schedule: name.clone(),
                message:
                    "it is defined twice (in code, src/schedule/ or taskyard.toml); names must be unique"
                        .to_owned(),
            });
        }
        if !schedule.env.is_empty() && !schedule.env.contains(&env) {
            tracing::info!(schedule = %name, %env, only = ?schedule.env, "schedule ignored in this environment");
            continue;
        }
        defs.push(schedule.check(name, &mut cx)?);
    }
    Ok(defs)
}

/// Ctrl-C or SIGTERM. The handlers are installed by this call, not when the future is
/// first polled, so a signal that arrives as soon as the app says it is listening is not
/// lost to the default action (which would kill the process without a clean stop).
#[cfg(unix)]
fn shutdown_signal() -> impl Future<Output = ()> + Send + 'static {
    use tokio::signal::unix::{SignalKind, signal};
    let interrupt = signal(SignalKind::interrupt());
    let terminate = signal(SignalKind::terminate());
    async move {
        match (interrupt, terminate) {
            (Ok(mut interrupt), Ok(mut terminate)) => {
                tokio::select! {
                    _ = interrupt.recv() => {}
                    _ = terminate.recv() => {}
                }
            }
            (Err(error), _) | (_, Err(error)) => {
                tracing::error!(%error, "cannot listen for Ctrl-C or SIGTERM; stop the app with SIGKILL");
                std::future::pending::<()>().await;
            }
        }
    }
}

#[cfg(not(unix))]
fn shutdown_signal() -> impl Future<Output = ()> + Send + 'static {
    async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::error!(%error, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    }
}
