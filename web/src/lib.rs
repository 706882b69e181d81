//! kiln-web: the dashboard. The create form validates every change with `kiln-core` — the same
//! code the server runs — so mistakes show as you type; the create stream is read live.
//!
//! | module | owns |
//! |---|---|
//! | [`folder`] | a Hugging Face model folder: `files` keys, the files a create sends, what is missing or unsupported (pure, tested natively) |
//! | [`form`] | form state → `CreateRequest`, a Modelfile → form state; validation errors mapped to fields (pure, tested natively) |
//! | `js_api` | `validate_create_request(obj)` and `parse_modelfile(text)` for other web tools |
//! | `hasher` | SHA-256 of files in the `kiln-hash` Web Worker (`hash_worker.rs`, its own bin), with progress |
//! | `client` | HTTP: tags, show, copy, delete, blob HEAD/upload with progress, NDJSON create stream |
//! | `app` | the Leptos components, one module per part of the page: create form, progress, models table |

pub mod folder;
pub mod form;

#[cfg(target_arch = "wasm32")]
mod app;
#[cfg(target_arch = "wasm32")]
mod client;
#[cfg(target_arch = "wasm32")]
mod hasher;
#[cfg(target_arch = "wasm32")]
pub mod js_api;

/// Mounts the dashboard.
#[cfg(target_arch = "wasm32")]
pub fn start() {
    console_error_panic_hook::set_once();
    leptos::mount::mount_to_body(app::App);
}
