//! Server routes: routes from files (`src/routes/`, `src/api/`) with the [`Event`]
//! extractor and [`route_meta!`](crate::route_meta), route rules from `taskyard.toml`
//! ([`RouteRules`]), the OpenAPI document of the routes, and path patterns shared with the
//! lifecycle.

mod event;
mod file;
mod meta;
pub(crate) mod openapi;

pub use self::event::{Context, Event};
pub use self::file::{FileRoute, RouteInfo, method_router};
pub(crate) use self::file::{ServerRoute, mount_with};
pub use self::meta::RouteMeta;
pub use crate::http::RouteRules;
pub use crate::pattern::PathPattern;
