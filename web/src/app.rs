//! The Leptos components: the create form (with Modelfile paste), live progress, and the models
//! table with details, copy and delete.

// `#[component]` emits public props types for the components of this private module.
#![allow(unreachable_pub)]

use kiln_core::file_type::TARGETS;
use kiln_core::params::{PARAMETERS, ParamType};
use kiln_core::request::{ListModel, ListResponse};
use leptos::prelude::*;
use leptos::task::spawn_local;
use wasm_bindgen::JsCast;
use web_sys::{AbortController, File, HtmlInputElement};

use crate::client;
use crate::form::{Field, FormState};

/// One progress bar: a digest (or an upload / hash step) with bytes done of total.
#[derive(Debug, Clone, PartialEq)]
struct Bar {
    key: String,
    label: String,
    total: f64,
    done: f64,
    started_ms: f64,
    now_ms: f64,
}

impl Bar {
    fn rate(&self) -> String {
        let secs = (self.now_ms - self.started_ms) / 1000.0;
        if secs <= 0.0 { String::new() } else { format!("{:.1} MB/s", self.done / secs / 1e6) }
    }
}

fn now_ms() -> f64 {
    js_sys::Date::now()
}

fn mb(bytes: f64) -> String {
    format!("{:.1} MB", bytes / 1e6)
}

fn set_bar(bars: RwSignal<Vec<Bar>>, key: &str, label: &str, done: f64, total: f64) {
    bars.update(|bars| {
        let t = now_ms();
        if let Some(b) = bars.iter_mut().find(|b| b.key == key) {
            b.label = label.to_string();
            b.done = done;
            b.total = total;
            b.now_ms = t;
        } else {
            bars.push(Bar { key: key.into(), label: label.into(), total, done, started_ms: t, now_ms: t });
        }
    });
}

async fn refresh(models: RwSignal<Vec<ListModel>>, error: RwSignal<Option<String>>) {
    match client::get_json::<ListResponse>("/api/tags").await {
        Ok(list) => models.set(list.models),
        Err(e) => error.set(Some(e)),
    }
}

/// The dashboard.
#[component]
pub fn App() -> impl IntoView {
    let models = RwSignal::new(Vec::<ListModel>::new());
    let list_error = RwSignal::new(None::<String>);
    spawn_local(refresh(models, list_error));
    view! {
        <header><h1>"kiln"</h1><p>"Create Ollama models — quantized byte-identical to llama.cpp."</p></header>
        <main>
            <CreatePanel models=models list_error=list_error />
            <ModelsPanel models=models list_error=list_error />
        </main>
    }
}

fn field_error(errors: Memo<crate::form::Errors>, field: Field, id: &'static str) -> impl IntoView {
    move || errors.with(|e| e.get(&field).cloned()).map(|m| view! { <p class="error" role="alert" id=id>{m}</p> })
}

#[component]
fn CreatePanel(models: RwSignal<Vec<ListModel>>, list_error: RwSignal<Option<String>>) -> impl IntoView {
    let form = RwSignal::new(FormState::default());
    let errors = Memo::new(move |_| form.with(FormState::errors));
    let file = StoredValue::new_local(None::<File>);
    let modelfile = RwSignal::new(String::new());
    let modelfile_error = RwSignal::new(None::<String>);
    let bars = RwSignal::new(Vec::<Bar>::new());
    let log = RwSignal::new(Vec::<String>::new());
    let running = RwSignal::new(false);
    let outcome = RwSignal::new(None::<Result<String, String>>);
    let abort = StoredValue::new_local(None::<AbortController>);

    let apply_modelfile = move |_| match kiln_core::modelfile::parse_modelfile(&modelfile.get()) {
        Err(e) => modelfile_error.set(Some(e.to_string())),
        Ok(req) => {
            modelfile_error.set(None);
            form.update(|f| {
                if let Some(from) = req.from {
                    f.from = from;
                }
                f.template = req.template.unwrap_or_default();
                f.system = req.system.unwrap_or_default();
                f.license = match req.license {
                    Some(kiln_core::request::License::One(s)) => s,
                    Some(kiln_core::request::License::Many(v)) => v.join("\n"),
                    None => String::new(),
                };
                f.parameters = req
                    .parameters
                    .unwrap_or_default()
                    .into_iter()
                    .flat_map(|(k, v)| match v {
                        serde_json::Value::Array(items) => items
                            .into_iter()
                            .map(|i| (k.clone(), i.as_str().map_or_else(|| i.to_string(), str::to_string)))
                            .collect::<Vec<_>>(),
                        serde_json::Value::String(s) => vec![(k, s)],
                        other => vec![(k, other.to_string())],
                    })
                    .collect();
                f.messages = req.messages.unwrap_or_default().into_iter().map(|m| (m.role, m.content)).collect();
            });
        }
    };

    let start = move |_| {
        if !errors.get_untracked().is_empty() || running.get_untracked() {
            return;
        }
        running.set(true);
        bars.set(Vec::new());
        log.set(Vec::new());
        outcome.set(None);
        let controller = AbortController::new().ok();
        let signal = controller.as_ref().map(AbortController::signal);
        abort.set_value(controller);
        spawn_local(async move {
            let result = async {
                let state = form.get_untracked();
                if state.from.is_empty()
                    && let Some(f) = file.get_value()
                {
                    let digest =
                        client::sha256_file(&f, move |d, t| set_bar(bars, "hash", "hashing the file", d, t)).await?;
                    if client::has_blob(&digest).await? {
                        log.update(|l| l.push(format!("the server already has {digest}")));
                    } else {
                        let key = format!("upload {digest}");
                        let label = format!("uploading {}", f.name());
                        client::upload_blob(&f, &digest, move |d, t| set_bar(bars, &key, &label, d, t)).await?;
                        log.update(|l| l.push(format!("uploaded {digest}")));
                    }
                    form.update(|s| s.file_digest = Some(digest));
                }
                let req = form.get_untracked().to_request().map_err(|(_, e)| e)?;
                let body = serde_json::to_string(&req).map_err(|e| e.to_string())?;
                let signal = signal.ok_or("no AbortController")?;
                client::create_stream(&body, &signal, move |ev| {
                    if ev.total > 0 {
                        set_bar(bars, &ev.digest, &ev.status, ev.completed as f64, ev.total as f64);
                    }
                    log.update(|l| {
                        if l.last() != Some(&ev.status) {
                            l.push(ev.status.clone());
                        }
                    });
                })
                .await?;
                Ok::<_, String>(req.model.unwrap_or_default())
            }
            .await;
            running.set(false);
            abort.set_value(None);
            outcome.set(Some(result.map(|m| format!("created {m}"))));
            refresh(models, list_error).await;
        });
    };

    let cancel = move |_| {
        if let Some(c) = abort.get_value() {
            c.abort();
        }
    };

    view! {
        <section class="panel" aria-labelledby="create-heading">
            <h2 id="create-heading">"Create a model"</h2>
            <details class="modelfile">
                <summary>"Paste Modelfile"</summary>
                <label for="modelfile">"Modelfile"</label>
                <textarea id="modelfile" rows="8" prop:value=move || modelfile.get()
                    on:input=move |ev| modelfile.set(event_target_value(&ev))></textarea>
                <button type="button" on:click=apply_modelfile>"Fill the form"</button>
                {move || modelfile_error.get().map(|m| view! { <p class="error" role="alert" id="modelfile-error">{m}</p> })}
            </details>
            <div class="grid">
                <div class="field">
                    <label for="name">"Model name"</label>
                    <input id="name" type="text" placeholder="mymodel:latest" autocomplete="off"
                        prop:value=move || form.with(|f| f.name.clone())
                        on:input=move |ev| form.update(|f| f.name = event_target_value(&ev)) />
                    {field_error(errors, Field::Name, "name-error")}
                </div>
                <div class="field">
                    <label for="from">"From"</label>
                    <select id="from" on:change=move |ev| form.update(|f| f.from = event_target_value(&ev))
                        prop:value=move || form.with(|f| f.from.clone())>
                        <option value="">"(a GGUF file)"</option>
                        <For each=move || models.get() key=|m| m.name.clone() let:m>
                            <option value=m.name.clone()>{m.name.clone()}</option>
                        </For>
                    </select>
                </div>
                <div class="field">
                    <label for="gguf">"GGUF file"</label>
                    <input id="gguf" type="file" accept=".gguf" on:change=move |ev| {
                        let input: HtmlInputElement = event_target(&ev);
                        let chosen = input.files().and_then(|l| l.get(0));
                        form.update(|f| {
                            f.file_name = chosen.as_ref().map(File::name);
                            f.file_digest = None;
                        });
                        file.set_value(chosen);
                    } />
                    {field_error(errors, Field::Source, "source-error")}
                </div>
                <div class="field">
                    <label for="quantize">"Quantize"</label>
                    <select id="quantize" on:change=move |ev| form.update(|f| f.quantize = event_target_value(&ev))>
                        <option value="">"(keep the source type)"</option>
                        {TARGETS.iter().map(|t| view! { <option value=t.name()>{t.name()}</option> }).collect_view()}
                    </select>
                    {field_error(errors, Field::Quantize, "quantize-error")}
                </div>
                <div class="field wide">
                    <label for="system">"System prompt"</label>
                    <textarea id="system" rows="2" prop:value=move || form.with(|f| f.system.clone())
                        on:input=move |ev| form.update(|f| f.system = event_target_value(&ev))></textarea>
                </div>
                <div class="field wide">
                    <label for="template">"Template"</label>
                    <textarea id="template" rows="3" placeholder="{{ .System }} {{ .Prompt }}"
                        prop:value=move || form.with(|f| f.template.clone())
                        on:input=move |ev| form.update(|f| f.template = event_target_value(&ev))></textarea>
                    {field_error(errors, Field::Template, "template-error")}
                </div>
                <div class="field wide">
                    <label for="license">"License"</label>
                    <textarea id="license" rows="2" prop:value=move || form.with(|f| f.license.clone())
                        on:input=move |ev| form.update(|f| f.license = event_target_value(&ev))></textarea>
                </div>
                <fieldset class="field wide">
                    <legend>"Parameters"</legend>
                    {move || (0..form.with(|f| f.parameters.len())).map(|i| view! { <ParamRow form=form index=i /> }).collect_view()}
                    <button type="button" on:click=move |_| form.update(|f| f.parameters.push(("temperature".into(), String::new())))>
                        "Add parameter"
                    </button>
                    {field_error(errors, Field::Parameters, "parameters-error")}
                </fieldset>
                <fieldset class="field wide">
                    <legend>"Messages"</legend>
                    {move || (0..form.with(|f| f.messages.len())).map(|i| view! { <MessageRow form=form index=i /> }).collect_view()}
                    <button type="button" on:click=move |_| form.update(|f| f.messages.push(("user".into(), String::new())))>
                        "Add message"
                    </button>
                    {field_error(errors, Field::Messages, "messages-error")}
                </fieldset>
            </div>
            <div class="actions">
                <button type="button" class="primary" on:click=start
                    disabled=move || !errors.get().is_empty() || running.get()>"Create"</button>
                <button type="button" on:click=cancel disabled=move || !running.get()>"Cancel"</button>
            </div>
            <div class="progress" aria-live="polite">
                <For each=move || bars.get() key=|b| b.key.clone() let:b>
                    <ProgressRow bars=bars key=b.key.clone() />
                </For>
                {move || outcome.get().map(|o| match o {
                    Ok(m) => view! { <p class="ok" role="status">{m}</p> }.into_any(),
                    Err(e) => view! { <p class="error" role="alert">{e}</p> }.into_any(),
                })}
                <ol class="log" aria-label="Status log">
                    {move || log.get().into_iter().map(|l| view! { <li>{l}</li> }).collect_view()}
                </ol>
            </div>
        </section>
    }
}

#[component]
fn ProgressRow(bars: RwSignal<Vec<Bar>>, key: String) -> impl IntoView {
    let key2 = key.clone();
    let bar = Memo::new(move |_| bars.with(|b| b.iter().find(|b| b.key == key2).cloned()));
    move || {
        bar.get().map(|b| {
            let pct = if b.total > 0.0 { (b.done / b.total * 100.0).round() } else { 0.0 };
            view! {
                <div class="bar">
                    <div class="bar-label">{b.label.clone()}" "<span class="digest">{b.key.clone()}</span></div>
                    <progress role="progressbar" max=b.total value=b.done aria-label=b.label.clone()
                        aria-valuemin="0" aria-valuemax=b.total aria-valuenow=b.done></progress>
                    <div class="bar-figures">{format!("{} / {} ({pct}%) {}", mb(b.done), mb(b.total), b.rate())}</div>
                </div>
            }
        })
    }
}

#[component]
fn ParamRow(form: RwSignal<FormState>, index: usize) -> impl IntoView {
    let key = move || form.with(|f| f.parameters.get(index).map(|p| p.0.clone()).unwrap_or_default());
    let value = move || form.with(|f| f.parameters.get(index).map(|p| p.1.clone()).unwrap_or_default());
    let input_type = move || match kiln_core::params::param_type(&key()) {
        Some(ParamType::Int | ParamType::Float) => "number",
        _ => "text",
    };
    let key_id = format!("param-key-{index}");
    let value_id = format!("param-value-{index}");
    view! {
        <div class="row">
            <label for=key_id.clone() class="sr-only">{format!("Parameter {} name", index + 1)}</label>
            <select id=key_id prop:value=key on:change=move |ev| form.update(|f| {
                if let Some(p) = f.parameters.get_mut(index) { p.0 = event_target_value(&ev); }
            })>
                {PARAMETERS.iter().map(|(k, _, _)| view! { <option value=*k>{*k}</option> }).collect_view()}
            </select>
            <label for=value_id.clone() class="sr-only">{format!("Parameter {} value", index + 1)}</label>
            <input id=value_id type=input_type step="any" prop:value=value on:input=move |ev| form.update(|f| {
                if let Some(p) = f.parameters.get_mut(index) { p.1 = event_target_value(&ev); }
            }) />
            <button type="button" aria-label=format!("Remove parameter {}", index + 1)
                on:click=move |_| form.update(|f| { if index < f.parameters.len() { f.parameters.remove(index); } })>"×"</button>
        </div>
    }
}

#[component]
fn MessageRow(form: RwSignal<FormState>, index: usize) -> impl IntoView {
    let role = move || form.with(|f| f.messages.get(index).map(|m| m.0.clone()).unwrap_or_default());
    let content = move || form.with(|f| f.messages.get(index).map(|m| m.1.clone()).unwrap_or_default());
    let role_id = format!("message-role-{index}");
    let content_id = format!("message-content-{index}");
    view! {
        <div class="row">
            <label for=role_id.clone() class="sr-only">{format!("Message {} role", index + 1)}</label>
            <select id=role_id prop:value=role on:change=move |ev| form.update(|f| {
                if let Some(m) = f.messages.get_mut(index) { m.0 = event_target_value(&ev); }
            })>
                {["system", "user", "assistant", "tool"].map(|r| view! { <option value=r>{r}</option> }).collect_view()}
            </select>
            <label for=content_id.clone() class="sr-only">{format!("Message {} content", index + 1)}</label>
            <input id=content_id type="text" prop:value=content on:input=move |ev| form.update(|f| {
                if let Some(m) = f.messages.get_mut(index) { m.1 = event_target_value(&ev); }
            }) />
            <button type="button" aria-label=format!("Remove message {}", index + 1)
                on:click=move |_| form.update(|f| { if index < f.messages.len() { f.messages.remove(index); } })>"×"</button>
        </div>
    }
}

fn human_size(bytes: u64) -> String {
    let b = bytes as f64;
    if b >= 1e9 { format!("{:.1} GB", b / 1e9) } else { format!("{:.1} MB", b / 1e6) }
}

#[component]
fn ModelsPanel(models: RwSignal<Vec<ListModel>>, list_error: RwSignal<Option<String>>) -> impl IntoView {
    let details = RwSignal::new(None::<(String, serde_json::Value)>);
    let pending_delete = RwSignal::new(None::<String>);
    let copy_to = RwSignal::new(String::new());
    let action_error = RwSignal::new(None::<String>);

    let show = move |name: String| {
        spawn_local(async move {
            match client::call("POST", "/api/show", &serde_json::json!({ "model": name })).await {
                Ok(v) => details.set(Some((name, v))),
                Err(e) => action_error.set(Some(e)),
            }
        });
    };
    let delete = move |name: String| {
        spawn_local(async move {
            if let Err(e) = client::call("DELETE", "/api/delete", &serde_json::json!({ "model": name })).await {
                action_error.set(Some(e));
            }
            pending_delete.set(None);
            details.set(None);
            refresh(models, list_error).await;
        });
    };
    let copy = move |source: String| {
        let destination = copy_to.get_untracked();
        spawn_local(async move {
            let body = serde_json::json!({ "source": source, "destination": destination });
            match client::call("POST", "/api/copy", &body).await {
                Ok(_) => copy_to.set(String::new()),
                Err(e) => action_error.set(Some(e)),
            }
            refresh(models, list_error).await;
        });
    };

    view! {
        <section class="panel" aria-labelledby="models-heading">
            <h2 id="models-heading">"Models"</h2>
            {move || list_error.get().map(|e| view! { <p class="error" role="alert">{e}</p> })}
            {move || action_error.get().map(|e| view! { <p class="error" role="alert">{e}</p> })}
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
                        {
                            let (n1, n2, n3, n4) = (m.name.clone(), m.name.clone(), m.name.clone(), m.name.clone());
                            view! {
                                <tr>
                                    <td>{m.name.clone()}</td>
                                    <td>{human_size(m.size)}</td>
                                    <td>{m.details.family.clone()}</td>
                                    <td>{m.details.parameter_size.clone()}</td>
                                    <td>{m.details.quantization_level.clone()}</td>
                                    <td>{m.modified_at.chars().take(16).collect::<String>().replace('T', " ")}</td>
                                    <td class="row-actions">
                                        <button type="button" aria-label=format!("Details of {n1}") on:click=move |_| show(n1.clone())>"Details"</button>
                                        {move || if pending_delete.get().as_deref() == Some(n2.as_str()) {
                                            let (a, b) = (n3.clone(), n3.clone());
                                            view! {
                                                <span>"Delete " {a} "? "</span>
                                                <button type="button" class="danger" on:click=move |_| delete(b.clone())>"Confirm delete"</button>
                                                <button type="button" on:click=move |_| pending_delete.set(None)>"Keep"</button>
                                            }.into_any()
                                        } else {
                                            let n = n4.clone();
                                            view! {
                                                <button type="button" aria-label=format!("Delete {n}") on:click=move |_| pending_delete.set(Some(n.clone()))>"Delete"</button>
                                            }.into_any()
                                        }}
                                    </td>
                                </tr>
                            }
                        }
                    </For>
                </tbody>
            </table>
            </div>
            {move || details.get().map(|(name, v)| {
                let source = name.clone();
                let d = &v["details"];
                view! {
                    <div class="details" role="region" aria-label=format!("Details of {name}")>
                        <h3>{name.clone()}</h3>
                        <dl>
                            <dt>"Family"</dt><dd>{d["family"].as_str().unwrap_or("").to_string()}</dd>
                            <dt>"Parameters"</dt><dd>{d["parameter_size"].as_str().unwrap_or("").to_string()}</dd>
                            <dt>"Quantization"</dt><dd>{d["quantization_level"].as_str().unwrap_or("").to_string()}</dd>
                            <dt>"System"</dt><dd><pre>{v["system"].as_str().unwrap_or("").to_string()}</pre></dd>
                            <dt>"Template"</dt><dd><pre>{v["template"].as_str().unwrap_or("").to_string()}</pre></dd>
                            <dt>"Parameters"</dt><dd><pre>{v["parameters"].as_str().unwrap_or("").to_string()}</pre></dd>
                            <dt>"License"</dt><dd><pre>{v["license"].as_str().unwrap_or("").to_string()}</pre></dd>
                        </dl>
                        <label for="copy-to">"Copy to"</label>
                        <input id="copy-to" type="text" prop:value=move || copy_to.get()
                            on:input=move |ev| copy_to.set(event_target_value(&ev)) />
                        <button type="button" on:click=move |_| copy(source.clone())>"Copy"</button>
                        <button type="button" on:click=move |_| details.set(None)>"Close"</button>
                    </div>
                }
            })}
        </section>
    }
}

fn event_target<T: JsCast>(ev: &web_sys::Event) -> T {
    ev.target().expect("an event target").unchecked_into::<T>()
}
