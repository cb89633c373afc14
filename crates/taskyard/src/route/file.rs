//! Routes from files: what `taskyard-build` generates for `src/routes/` and `src/api/`, and
//! how they are mounted on one axum router.
//!
//! Matching is axum's (matchit): a static segment beats a parameter, which beats a
//! catch-all; a path with no route answers 404 and a path whose route lacks the method
//! answers 405 with `Allow`, both in the error shape of [`HttpError`](crate::http::HttpError).
//! A catch-all route (`[...path].rs`, `{*path}`) also answers its base path (`/hello` for
//! `/hello/{*path}`, `/` for `[...].rs`) unless a file declares that path, as Nitro's `**`
//! matches no segment too; there `param("path")` is `None`.

use std::collections::HashSet;

use axum::Router;
use axum::handler::Handler;
use axum::routing::{MethodFilter, MethodRouter};

use super::RouteMeta;
use crate::Error;

/// A route file, as the generated code describes it.
#[derive(Debug, Clone, Copy)]
pub struct FileRoute {
    /// The file, e.g. `src/api/users/[id].get.rs`.
    pub file: &'static str,
    /// The path in axum's syntax, e.g. `/api/users/{id}`.
    pub path: &'static str,
    /// The method in capitals, or `None` for every method.
    pub method: Option<&'static str>,
    /// The path parameters, in order.
    pub params: &'static [&'static str],
    /// The file's `route_meta!`, when it has one.
    pub meta: Option<fn() -> Result<RouteMeta, String>>,
}

/// A mounted route and what the OpenAPI document says of it.
#[derive(Debug, Clone)]
pub struct RouteInfo {
    /// Where it comes from: a file, or `code`.
    pub source: String,
    /// Its path, as axum writes it (`/users/{id}`).
    pub path: String,
    /// Its method, or `None` for every method.
    pub method: Option<String>,
    /// The names of its path parameters.
    pub params: Vec<String>,
    /// What its `route_meta!` says.
    pub meta: RouteMeta,
}

/// `handler` for the method `filter` names, or for every method.
#[doc(hidden)]
pub fn method_router<H, T>(filter: Option<MethodFilter>, handler: H) -> MethodRouter
where
    H: Handler<T, ()>,
    T: 'static,
{
    match filter {
        Some(filter) => axum::routing::on(filter, handler),
        None => axum::routing::any(handler),
    }
}

/// A route with its handler.
#[derive(Clone)]
pub(crate) struct ServerRoute {
    pub info: RouteInfo,
    pub handler: MethodRouter,
}

/// The routes on two routers: catch-all routes on the second, which answers what the first
/// does not. axum's router holds one wildcard per position, so `/hello/{name}` and
/// `/hello/{*path}` cannot share one; split this way, a parameter still beats a catch-all.
/// A catch-all's base path goes on the first. Panics (as axum does) when routes cannot share
/// a router; the app catches that and names the files.
pub(crate) fn mount(routes: &[ServerRoute]) -> (Router, Router) {
    let declared: HashSet<&str> = routes.iter().map(|r| r.info.path.as_str()).collect();
    let mut router = Router::new();
    let mut catch_alls = Router::new();
    for route in routes {
        match catch_all_base(&route.info.path) {
            None => router = router.route(&route.info.path, route.handler.clone()),
            Some(base) => {
                catch_alls = catch_alls.route(&route.info.path, route.handler.clone());
                if !declared.contains(base) {
                    router = router.route(base, route.handler.clone());
                }
            }
        }
    }
    (router, catch_alls)
}

/// The file routes and `code` on one router. axum refuses routes that cannot share a
/// router by panicking; that is caught and reported with the files involved.
pub(crate) fn mount_with(routes: &[ServerRoute], code: Router) -> Result<(Router, Router), Error> {
    let mounted = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let (routes, catch_alls) = mount(routes);
        (routes.merge(code), catch_alls)
    }));
    mounted.map_err(|panic| {
        let reason = crate::error::panic_message(panic.as_ref());
        let files: Vec<&str> = routes.iter().map(|r| r.info.source.as_str()).collect();
        Error::Routes {
            message: format!(
                "the app's routes cannot share one router: {reason}. Check the routes added with App::routes against the route files ({})",
                files.join(", ")
            ),
        }
    })
}

/// `/hello` for `/hello/{*path}`, `/` for `/{*_}`.
pub(crate) fn catch_all_base(path: &str) -> Option<&str> {
    let (base, last) = path.rsplit_once('/')?;
    if !last.starts_with("{*") {
        return None;
    }
    Some(if base.is_empty() { "/" } else { base })
}
