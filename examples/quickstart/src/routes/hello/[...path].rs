//! `/hello/**` for every method: the rest of the path, slashes included.
//! `/hello/nitro` goes to `[name].get.rs` instead: a parameter beats a catch-all.

use taskyard::route::Event;

pub async fn handler(event: Event) -> String {
    format!("Hello {}!", event.param("path").unwrap_or("world"))
}
