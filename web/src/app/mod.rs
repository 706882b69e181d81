//! The Leptos components, one file per part of the page: the create form (`create_form`, its
//! parameter and message rows in `rows`, the create run in `create_run`), live progress
//! (`progress`), and the models table with details, copy and delete (`models`).

#![expect(
    unreachable_pub,
    reason = "`#[component]` emits public props types for the components of these private modules"
)]

mod create_form;
mod create_run;
mod models;
mod progress;
mod rows;

use kiln_core::request::{ListModel, ListResponse};
use leptos::prelude::*;
use leptos::task::spawn_local;
use wasm_bindgen::JsCast;

use crate::client;

/// The server's models and the error of the last listing; both panels read it, creates and
/// deletes refresh it.
#[derive(Debug, Clone, Copy)]
pub(super) struct Catalog {
    models: RwSignal<Vec<ListModel>>,
    error: RwSignal<Option<String>>,
}

impl Catalog {
    fn new() -> Self {
        Self { models: RwSignal::new(Vec::new()), error: RwSignal::new(None) }
    }

    /// Lists the models again (`GET /api/tags`).
    async fn refresh(self) {
        match client::get_json::<ListResponse>("/api/tags").await {
            Ok(list) => {
                self.models.set(list.models);
                self.error.set(None);
            }
            Err(e) => self.error.set(Some(e)),
        }
    }
}

/// The dashboard.
#[component]
pub fn App() -> impl IntoView {
    let catalog = Catalog::new();
    spawn_local(catalog.refresh());
    view! {
        <header><h1>"kiln"</h1><p>"Create Ollama models — quantized byte-identical to llama.cpp."</p></header>
        <main>
            <create_form::CreatePanel catalog=catalog />
            <models::ModelsPanel catalog=catalog />
        </main>
    }
}

/// An alert paragraph for an optional message.
fn alert(message: Option<String>, id: Option<&'static str>) -> Option<impl IntoView> {
    message.map(|m| view! { <p class="error" role="alert" id=id>{m}</p> })
}

/// The element an event came from, as the type its handler knows it is.
fn event_target<T: JsCast>(ev: &web_sys::Event) -> T {
    ev.target().expect("an event target").unchecked_into::<T>()
}
