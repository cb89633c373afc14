//! `GET /hello/{name}`: Nitro's first example.

use axum::extract::Path;

pub async fn handler(Path(name): Path<String>) -> String {
    format!("Hello {name}!")
}
