//! Routing concepts shared by the HTTP layer and the lifecycle: path patterns.

mod pattern;

pub use self::pattern::PathPattern;
