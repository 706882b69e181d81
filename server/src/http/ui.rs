//! The dashboard at `/ui/`: trunk's `dist/` built into the binary (read from the folder at run
//! time in debug builds), or a folder given with `--ui` for dashboard work. Paths that are not
//! files get `index.html`, so the app can route them itself.

use std::convert::Infallible;
use std::path::Path;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get};
use rust_embed::RustEmbed;
use tower_http::services::{ServeDir, ServeFile};

/// `dist/` as `trunk build --release` left it when kiln was compiled; empty when it was not
/// built (then `/ui/` says how to build it).
#[derive(RustEmbed)]
#[folder = "../dist"]
#[allow_missing = true]
struct Dashboard;

/// The `/ui` service: the folder given, or the embedded copy.
pub fn service(dir: Option<&Path>) -> MethodRouter {
    match dir {
        Some(dir) => {
            if !dir.join("index.html").is_file() {
                tracing::info!(ui = %dir.display(), "no dashboard there: build it with `trunk build --release`");
            }
            let files = ServeDir::new(dir).fallback(ServeFile::new(dir.join("index.html")));
            axum::routing::get_service(files)
        }
        None => {
            if Dashboard::get("index.html").is_none() {
                tracing::info!(
                    "this kiln was built without its dashboard: run `trunk build --release`, then build kiln"
                );
            }
            get(embedded).head(embedded)
        }
    }
}

async fn embedded(req: Request) -> Result<Response, Infallible> {
    let path = req.uri().path().trim_start_matches('/');
    let path = if path.is_empty() { "index.html" } else { path };
    let file = Dashboard::get(path).or_else(|| Dashboard::get("index.html"));
    let Some(file) = file else {
        return Ok((StatusCode::NOT_FOUND, "dashboard not built into this kiln").into_response());
    };
    let body = if req.method() == Method::HEAD { Body::empty() } else { Body::from(file.data.into_owned()) };
    Ok(([(header::CONTENT_TYPE, file.metadata.mimetype().to_owned())], body).into_response())
}
