//! `GET /hello/{name}`: re-exports the handler in `src/lib.rs`, so the benchmark mounts the
//! very same function by hand on a plain axum router.

pub use crate::hello as handler;
