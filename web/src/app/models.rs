//! The models panel: the table of `GET /api/tags`, and per model its details (`POST /api/show`),
//! a copy (`POST /api/copy`), a push to a registry (`POST /api/push`, after a copy to the
//! registry's name) and a delete after confirming (`DELETE /api/delete`); and a pull form
//! (`POST /api/pull`). A push or pull shows its progress below the table.

use gloo_net::http::Method;
use kiln_core::request::ListModel;
use leptos::prelude::*;
use leptos::task::spawn_local;
use serde_json::{Value, json};

use super::progress::{Progress, ProgressArea};
use super::{Catalog, alert};
use crate::client;

/// A push or pull: the form's fields and the progress of the one running.
#[derive(Debug, Clone, Copy)]
struct Transfer {
    /// The model whose Push was pressed: the push form is open for it.
    push_from: RwSignal<Option<String>>,
    /// The registry name to push as (`host[:port]/namespace/model:tag`).
    push_to: RwSignal<String>,
    /// The registry name to pull.
    pull_name: RwSignal<String>,
    /// Plain HTTP to the registry.
    insecure: RwSignal<bool>,
    running: RwSignal<bool>,
    /// Whether a transfer ran, so its progress area shows.
    started: RwSignal<bool>,
    progress: Progress,
}

impl Transfer {
    fn new() -> Self {
        Self {
            push_from: RwSignal::new(None),
            push_to: RwSignal::new(String::new()),
            pull_name: RwSignal::new(String::new()),
            insecure: RwSignal::new(false),
            running: RwSignal::new(false),
            started: RwSignal::new(false),
            progress: Progress::new(),
        }
    }

    /// Streams `path` with the model and `insecure`, bars per digest; the outcome line says `done`.
    async fn run(self, path: &str, model: &str, done: String) {
        let progress = self.progress;
        let body = json!({ "model": model, "insecure": self.insecure.get_untracked(), "stream": true });
        let result = client::transfer_stream(path, &body, move |ev| {
            if ev.total > 0 {
                progress.set_bar(&ev.digest, &ev.status, ev.completed as f64, ev.total as f64);
            }
            progress.log(&ev.status);
        })
        .await;
        progress.finish(result.map(|()| done));
    }

    /// Starts a transfer when none runs and the name is one kiln-core accepts.
    fn begin(self, name: &str) -> Option<String> {
        if self.running.get_untracked() {
            return None;
        }
        self.progress.clear();
        self.started.set(true);
        let name = name.trim().to_owned();
        if kiln_core::ModelName::parse(&name).is_none() {
            self.progress.finish(Err(format!("invalid model name {name:?}: use host[:port]/namespace/model:tag")));
            return None;
        }
        self.running.set(true);
        Some(name)
    }

    /// Copies `source` to the registry name when it differs, then pushes that name; the list
    /// then shows the copy.
    fn push(self, source: String, catalog: Catalog) {
        let Some(target) = self.begin(&self.push_to.get_untracked()) else { return };
        spawn_local(async move {
            if target != source {
                let body = json!({ "source": source, "destination": target });
                if let Err(e) = client::call(Method::POST, "/api/copy", &body).await {
                    self.progress.finish(Err(e));
                    self.running.set(false);
                    catalog.refresh().await;
                    return;
                }
            }
            self.run("/api/push", &target, format!("pushed {target}")).await;
            self.running.set(false);
            catalog.refresh().await;
        });
    }

    fn pull(self, catalog: Catalog) {
        let Some(name) = self.begin(&self.pull_name.get_untracked()) else { return };
        spawn_local(async move {
            self.run("/api/pull", &name, format!("pulled {name}")).await;
            self.running.set(false);
            catalog.refresh().await;
        });
    }
}

/// The panel's state and its actions; cheap to copy into each row's handlers.
#[derive(Debug, Clone, Copy)]
struct ModelsState {
    catalog: Catalog,
    /// The model whose details are open, with `/api/show`'s answer.
    details: RwSignal<Option<(String, Value)>>,
    /// The model whose Delete was pressed, awaiting Confirm or Keep.
    pending_delete: RwSignal<Option<String>>,
    copy_to: RwSignal<String>,
    action_error: RwSignal<Option<String>>,
    transfer: Transfer,
}

impl ModelsState {
    fn show(self, name: String) {
        spawn_local(async move {
            match client::call(Method::POST, "/api/show", &json!({ "model": name })).await {
                Ok(v) => self.details.set(Some((name, v))),
                Err(e) => self.action_error.set(Some(e)),
            }
        });
    }

    fn delete(self, name: String) {
        spawn_local(async move {
            if let Err(e) = client::call(Method::DELETE, "/api/delete", &json!({ "model": name })).await {
                self.action_error.set(Some(e));
            }
            self.pending_delete.set(None);
            self.details.set(None);
            self.catalog.refresh().await;
        });
    }

    fn copy(self, source: String) {
        let destination = self.copy_to.get_untracked();
        spawn_local(async move {
            let body = json!({ "source": source, "destination": destination });
            match client::call(Method::POST, "/api/copy", &body).await {
                Ok(_) => self.copy_to.set(String::new()),
                Err(e) => self.action_error.set(Some(e)),
            }
            self.catalog.refresh().await;
        });
    }
}

fn human_size(bytes: u64) -> String {
    let b = bytes as f64;
    if b >= 1e9 { format!("{:.1} GB", b / 1e9) } else { format!("{:.1} MB", b / 1e6) }
}

/// `2024-05-01T12:34:56.789Z` → `2024-05-01 12:34`.
fn short_time(rfc3339: &str) -> String {
    rfc3339.chars().take(16).collect::<String>().replace('T', " ")
}

/// The whole models panel.
#[component]
pub(super) fn ModelsPanel(catalog: Catalog) -> impl IntoView {
    let state = ModelsState {
        catalog,
        details: RwSignal::new(None),
        pending_delete: RwSignal::new(None),
        copy_to: RwSignal::new(String::new()),
        action_error: RwSignal::new(None),
        transfer: Transfer::new(),
    };
    let models = catalog.models;
    view! {
        <section class="panel" aria-labelledby="models-heading">
            <h2 id="models-heading">"Models"</h2>
            {move || alert(catalog.error.get(), None)}
            {move || alert(state.action_error.get(), None)}
            <div class="table-wrap">
            <table aria-label="Models">
                <thead><tr>
                    <th scope="col">"Name"</th><th scope="col">"Size"</th><th scope="col">"Family"</th>
                    <th scope="col">"Parameters"</th><th scope="col">"Quantization"</th><th scope="col">"Modified"</th>
                    <th scope="col">"Actions"</th>
                </tr></thead>
                <tbody>
                    {move || models.with(Vec::is_empty).then(|| view! {
                        <tr><td colspan="7" class="empty">"No models yet: create one."</td></tr>
                    })}
                    <For each=move || models.get() key=|m| (m.name.clone(), m.digest.clone()) let:m>
                        <ModelRow state=state model=m />
                    </For>
                </tbody>
            </table>
            </div>
            <DetailsPane state=state />
            <PushPane state=state />
            <PullForm state=state />
            <Show when=move || state.transfer.started.get()>
                <div role="region" aria-label="Push and pull progress">
                    <ProgressArea progress=state.transfer.progress />
                </div>
            </Show>
        </section>
    }
}

/// One model's row: its facts, Details, Delete.
#[component]
fn ModelRow(state: ModelsState, model: ListModel) -> impl IntoView {
    let name = model.name.clone();
    let details_name = name.clone();
    let push_name = name.clone();
    view! {
        <tr>
            <td>{model.name}</td>
            <td>{human_size(model.size)}</td>
            <td>{model.details.family}</td>
            <td>{model.details.parameter_size}</td>
            <td>{model.details.quantization_level}</td>
            <td>{short_time(&model.modified_at)}</td>
            <td class="row-actions">
                <button type="button" aria-label=format!("Details of {name}")
                    on:click=move |_| state.show(details_name.clone())>"Details"</button>
                <button type="button" aria-label=format!("Push {name}") on:click=move |_| {
                    state.transfer.push_to.set(push_name.clone());
                    state.transfer.push_from.set(Some(push_name.clone()));
                }>"Push"</button>
                <DeleteControl state=state name=name />
            </td>
        </tr>
    }
}

/// Delete, which asks "Delete x?" with Confirm delete / Keep before it deletes.
#[component]
fn DeleteControl(state: ModelsState, name: String) -> impl IntoView {
    let name = StoredValue::new(name);
    let asking = move || state.pending_delete.with(|p| p.as_deref() == Some(name.get_value().as_str()));
    move || {
        let n = name.get_value();
        if asking() {
            view! {
                <span>"Delete " {n.clone()} "? "</span>
                <button type="button" class="danger" on:click=move |_| state.delete(name.get_value())>"Confirm delete"</button>
                <button type="button" on:click=move |_| state.pending_delete.set(None)>"Keep"</button>
            }
            .into_any()
        } else {
            view! {
                <button type="button" aria-label=format!("Delete {n}")
                    on:click=move |_| state.pending_delete.set(Some(name.get_value()))>"Delete"</button>
            }
            .into_any()
        }
    }
}

/// The open model's details, with Copy to and Close.
#[component]
fn DetailsPane(state: ModelsState) -> impl IntoView {
    let text = |v: &Value| v.as_str().unwrap_or("").to_owned();
    move || {
        state.details.get().map(|(name, v)| {
            let (source, d) = (name.clone(), &v["details"]);
            view! {
                <div class="details" role="region" aria-label=format!("Details of {name}")>
                    <h3>{name.clone()}</h3>
                    <dl>
                        <dt>"Family"</dt><dd>{text(&d["family"])}</dd>
                        <dt>"Parameters"</dt><dd>{text(&d["parameter_size"])}</dd>
                        <dt>"Quantization"</dt><dd>{text(&d["quantization_level"])}</dd>
                        <dt>"System"</dt><dd><pre>{text(&v["system"])}</pre></dd>
                        <dt>"Template"</dt><dd><pre>{text(&v["template"])}</pre></dd>
                        <dt>"Parameters"</dt><dd><pre>{text(&v["parameters"])}</pre></dd>
                        <dt>"License"</dt><dd><pre>{text(&v["license"])}</pre></dd>
                    </dl>
                    <label for="copy-to">"Copy to"</label>
                    <input id="copy-to" type="text" prop:value=move || state.copy_to.get()
                        on:input=move |ev| state.copy_to.set(event_target_value(&ev)) />
                    <button type="button" on:click=move |_| state.copy(source.clone())>"Copy"</button>
                    <button type="button" on:click=move |_| state.details.set(None)>"Close"</button>
                </div>
            }
        })
    }
}

/// The plain-HTTP checkbox a push and a pull share.
#[component]
fn InsecureBox(state: ModelsState, id: &'static str) -> impl IntoView {
    let insecure = state.transfer.insecure;
    view! {
        <div class="field check">
            <input id=id type="checkbox" prop:checked=move || insecure.get()
                on:change=move |ev| insecure.set(event_target_checked(&ev)) />
            <label for=id>"Insecure (plain HTTP registry)"</label>
        </div>
    }
}

/// The push form of the model whose Push was pressed: the registry name, plain HTTP, Push.
#[component]
fn PushPane(state: ModelsState) -> impl IntoView {
    let t = state.transfer;
    let catalog = state.catalog;
    move || {
        t.push_from.get().map(|source| {
            let from = source.clone();
            view! {
                <div class="details" role="region" aria-label=format!("Push {source}")>
                    <h3>"Push " {source.clone()}</h3>
                    <label for="push-to">"Registry name"</label>
                    <input id="push-to" type="text" placeholder="registry.example:5000/team/model:tag"
                        prop:value=move || t.push_to.get() on:input=move |ev| t.push_to.set(event_target_value(&ev)) />
                    <InsecureBox state=state id="push-insecure" />
                    <button type="button" class="primary" disabled=move || t.running.get()
                        on:click=move |_| t.push(from.clone(), catalog)>"Push to registry"</button>
                    <button type="button" on:click=move |_| t.push_from.set(None)>"Close"</button>
                </div>
            }
        })
    }
}

/// Pull a model from a registry by name.
#[component]
fn PullForm(state: ModelsState) -> impl IntoView {
    let t = state.transfer;
    let catalog = state.catalog;
    view! {
        <div class="details" role="region" aria-label="Pull a model">
            <h3>"Pull a model"</h3>
            <label for="pull-name">"Model to pull"</label>
            <input id="pull-name" type="text" placeholder="registry.example:5000/team/model:tag"
                prop:value=move || t.pull_name.get() on:input=move |ev| t.pull_name.set(event_target_value(&ev)) />
            <InsecureBox state=state id="pull-insecure" />
            <button type="button" class="primary" disabled=move || t.running.get()
                on:click=move |_| t.pull(catalog)>"Pull"</button>
        </div>
    }
}
