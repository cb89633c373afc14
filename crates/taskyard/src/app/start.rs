//! Starting an [`App`]: every definition checked first, then the store, the runtime, the
//! startup tasks and the schedules, in that order; and serving it on `HOST:PORT`.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::{App, RunningApp};
use crate::http::TasksAccess;
use crate::lifecycle::Lifecycle;
use crate::route::{RouteInfo, RouteRules};
use crate::run::RuntimeParts;
use crate::schedule::checked::ScheduleDef;
use crate::schedule::log::ScheduleLog;
use crate::schedule::{Scheduler, Settings as ScheduleSettings};
use crate::store::lease::{Halt, LeaseKeeper};
use crate::store::{Recorder, StoreConfig, StoreHealth};
use crate::{Error, Runtime};

impl App {
    /// Checks the definitions, opens the store and starts the runtime, without serving HTTP.
    pub async fn start(self) -> Result<RunningApp, Error> {
        self.start_with(true).await
    }

    /// [`App::start`]; without `timers`, schedules are known but fire only when asked
    /// ([`Scheduler::fire`]), as in a one-off command.
    pub(crate) async fn start_with(mut self, timers: bool) -> Result<RunningApp, Error> {
        let mut errors = std::mem::take(&mut self.errors);
        errors.append(&mut self.lifecycle.errors);
        errors.extend(self.config.take_errors());
        if let Some(error) = errors.into_iter().next() {
            return Err(error);
        }
        // Every definition is checked before anything starts.
        let (settings, defs) = self.checked_schedules()?;
        let rules = RouteRules::from_config(&self.config.table(), self.config.origin())?;
        let route_infos: Vec<RouteInfo> = self.http.server_routes.iter().map(|r| r.info.clone()).collect();
        let (routes, catch_alls) = crate::route::mount_with(&self.http.server_routes, self.http.routes)?;
        let production = self
            .http
            .production
            .unwrap_or_else(|| crate::config::app_env() == "production");
        let (title, version) = &self.http.package;
        let info = crate::route::openapi::Info::from_config(
            &self.config.table(),
            self.config.origin(),
            title,
            version,
        )?;
        let openapi = self
            .http
            .openapi
            .unwrap_or(!production)
            .then(|| Arc::new(crate::route::openapi::document(&route_infos, &info)));
        let dashboard = match self.http.dashboard {
            Some(dashboard) => dashboard,
            None => crate::Dashboard::from_env()?,
        };
        let server_limits = match self.http.limits {
            Some(limits) => limits,
            None => crate::config::server_limits()?,
        };
        let config = match self.store.config {
            Some(config) => config,
            None => StoreConfig::from_env()?,
        };
        let store = config.open().await?;
        let instance = uuid::Uuid::now_v7().to_string();
        let stop_lease = CancellationToken::new();
        let health = Arc::new(StoreHealth::default());
        let halt = Arc::new(Halt::default());
        let mut background = Vec::new();
        let mut lease = None;
        let recorder = match &store {
            Some(store) => {
                // The lease is in place before any run can be recorded, so no other
                // instance can take this one's first runs for abandoned.
                let mut keeper = LeaseKeeper::new(
                    store.clone(),
                    instance.clone(),
                    self.store.lease,
                    health.clone(),
                    halt.clone(),
                );
                keeper.tick().await?;
                lease = Some(keeper.clock());
                background.push(tokio::spawn(keeper.run(stop_lease.clone())));
                let (recorder, writers) =
                    Recorder::spawn(store.clone(), health.clone(), self.store.timeout, &instance);
                background.extend(writers);
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
            lease,
        });
        let front = Arc::new(crate::http::front::Front {
            rules,
            cache: Default::default(),
            proxy: Default::default(),
            production,
            body_limit: self.http.body_limit,
            tasks: runtime.clone(),
            app: std::sync::Mutex::new(None),
        });
        let log_path = match self.schedules.log {
            Some(path) => path,
            None if self.schedules.list.is_empty() => None,
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
            middleware: self.http.middleware,
            front,
            openapi,
            shutdown_grace: self.shutdown_grace,
            server_limits,
            stop_lease,
            halt,
            closing: CancellationToken::new(),
            body_limit: self.http.body_limit,
            tasks_access: self.http.tasks_access.unwrap_or_else(TasksAccess::from_env),
            dashboard,
            background,
        };
        // Startup tasks run before the schedules start and before the server listens.
        if let Err(error) = app.lifecycle.start().await {
            app.shutdown().await;
            return Err(error);
        }
        let scheduled = match timers {
            true => app.scheduler.start(defs).await,
            false => app.scheduler.load(defs),
        };
        if let Err(error) = scheduled {
            app.shutdown().await;
            return Err(error);
        }
        app.runtime.start_queue();
        Ok(app)
    }

    /// The schedule settings and every schedule of this environment, checked.
    pub(crate) fn checked_schedules(&mut self) -> Result<(ScheduleSettings, Vec<ScheduleDef>), Error> {
        let default_zone = match &self.schedules.time_zone {
            Some(zone) => crate::config::time_zone(zone).map_err(|message| Error::Setting {
                setting: "time_zone",
                message,
            })?,
            None => crate::config::default_time_zone()?,
        };
        let settings = ScheduleSettings {
            worker_grace: self.schedules.worker_grace,
            membership_refresh: Duration::from_secs(1),
            default_zone,
            strategies: std::mem::take(&mut self.schedules.strategies),
        };
        let registry = &self.registry;
        let defs = settings
            .checker(&|task| registry.get(task).is_some())
            .check_all(&self.schedules.list, &crate::config::app_env())?;
        Ok((settings, defs))
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
        let addr = match self.http.listen {
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
        app.serve_on(listener, local, crate::shutdown::shutdown_signal())
            .await
    }
}
