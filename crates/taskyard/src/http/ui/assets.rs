//! The dashboard's stylesheet and script, compiled into the binary and served under names
//! that carry a digest of their content, so a browser may keep them for a year and still
//! never runs an old script against a new page.

use std::sync::LazyLock;

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

use crate::http::Param;

/// One embedded file.
pub(super) struct Asset {
    /// Its name with its digest, e.g. `app.3f2a….css`.
    pub name: String,
    content_type: &'static str,
    body: &'static str,
}

impl Asset {
    fn new(stem: &str, extension: &str, content_type: &'static str, body: &'static str) -> Self {
        let digest = Sha256::digest(body.as_bytes());
        let short: String = digest.iter().take(8).map(|byte| format!("{byte:02x}")).collect();
        Asset {
            name: format!("{stem}.{short}.{extension}"),
            content_type,
            body,
        }
    }

    /// Where the page links it.
    pub fn href(&self) -> String {
        format!("{}/assets/{}", crate::http::session::UI_PATH, self.name)
    }
}

/// The stylesheet.
pub(super) static STYLE: LazyLock<Asset> = LazyLock::new(|| {
    Asset::new(
        "app",
        "css",
        "text/css; charset=utf-8",
        include_str!("assets/app.css"),
    )
});

/// The script.
pub(super) static SCRIPT: LazyLock<Asset> = LazyLock::new(|| {
    Asset::new(
        "app",
        "js",
        "text/javascript; charset=utf-8",
        include_str!("assets/app.js"),
    )
});

/// `GET /_tasks/ui/assets/NAME`: the asset of that exact name (digest included).
pub(super) async fn serve(Param(name): Param) -> Response {
    let Some(asset) = [&*STYLE, &*SCRIPT].into_iter().find(|asset| asset.name == name) else {
        return (StatusCode::NOT_FOUND, "no such asset").into_response();
    };
    (
        [
            (header::CONTENT_TYPE, asset.content_type),
            (header::CACHE_CONTROL, "public, max-age=31536000, immutable"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        asset.body,
    )
        .into_response()
}
