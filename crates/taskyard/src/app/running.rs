//! [`RunningApp`]: a started app, its router and service, serving on a listener, and the
//! graceful shutdown that stops the server, the schedules, the runs and the background work.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::Middleware;
use crate::config::{Config, ConfigWatch};
use crate::http::TasksAccess;
use crate::lifecycle::Lifecycle;
use crate::route::RouteInfo;
use crate::schedule::Scheduler;
use crate::store::lease::Halt;
use crate::sync::lock;
use crate::{Error, Runtime};

/// A started app: the runtime plus its background work (lease keeper, record writer).
pub struct RunningApp {
    pub(super) runtime: Runtime,
    pub(super) scheduler: Scheduler,
    pub(super) lifecycle: Lifecycle,
    pub(super) config: Config,
    pub(super) config_watch: Option<ConfigWatch>,
    /// The file routes and the routes added in code, on one router.
    pub(super) routes: Router,
    /// The catch-all file routes, which answer what `routes` does not.
    pub(super) catch_alls: Router,
    pub(super) route_infos: Vec<RouteInfo>,
    pub(super) middleware: Vec<Middleware>,
    pub(super) front: Arc<crate::http::front::Front>,
    /// The OpenAPI document of the routes, when it is served.
    pub(super) openapi: Option<Arc<serde_json::Value>>,
    pub(super) shutdown_grace: Duration,
    pub(super) server_limits: crate::http::ServerLimits,
    pub(super) stop_lease: CancellationToken,
    /// Set when the instance must stop on its own (its SQLite file was replaced).
    pub(super) halt: Arc<Halt>,
    /// Cancelled when shutdown begins; ends open event streams.
    pub(super) closing: CancellationToken,
    pub(super) body_limit: usize,
    pub(super) tasks_access: TasksAccess,
    pub(super) dashboard: crate::Dashboard,
    pub(super) background: Vec<JoinHandle<()>>,
}

impl RunningApp {
    /// The task runtime: run, start, cancel and list runs.
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

    /// [`RunningApp::run_schedule`] with `args` as the run's payload in place of the
    /// schedule's own: egg-schedule's `app.runSchedule(name, ...args)` (several arguments
    /// as a JSON array).
    pub async fn run_schedule_with(
        &self,
        name: &str,
        args: serde_json::Value,
    ) -> Result<serde_json::Value, Error> {
        self.scheduler.run_schedule_with(name, args).await
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
        let api = crate::http::Api::new(crate::http::ApiParts {
            runtime: self.runtime.clone(),
            scheduler: self.scheduler.clone(),
            lifecycle: self.lifecycle.clone(),
            closing: self.closing.clone(),
            body_limit: self.body_limit,
            access: self.tasks_access.clone(),
            dashboard: self.dashboard,
        });
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
            .method_not_allowed_fallback(crate::http::method_not_allowed)
            .with_state(());
        let inner = crate::http::router(api, self.tasks_access.clone(), routes)
            .fallback_service(catch_alls)
            .method_not_allowed_fallback(crate::http::method_not_allowed);
        let inner = self
            .middleware
            .iter()
            .rev()
            .fold(inner, |router, layer| layer(router));
        let inner = if self.lifecycle.watches_requests() {
            inner.layer(crate::http::lifecycle::watch_requests(self.lifecycle.clone()))
        } else {
            inner
        };
        // A router never given its state turns every handler into a service, with every
        // layer around it (the middleware, the endpoints' state), again on each request:
        // given its state here, that happens once.
        let inner = inner.with_state(());
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
        if self.tasks_access != TasksAccess::Off && self.dashboard != crate::Dashboard::Off {
            println!("dashboard on http://{local}/_tasks/ui");
        }
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
        // A tick whose claim landed starts its run before the runtime stops taking runs.
        self.scheduler.settle().await;
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
