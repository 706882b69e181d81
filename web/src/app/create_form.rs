//! The create panel: Modelfile paste, the form (validated by kiln-core on every change, errors
//! shown on their fields), Create and Cancel, and the progress of the running create.

use kiln_core::file_type::TARGETS;
use leptos::prelude::*;
use leptos::task::spawn_local;
use web_sys::{AbortController, File, HtmlInputElement};

use super::create_run::run_create;
use super::progress::{Progress, ProgressArea};
use super::rows::{MESSAGE_ROWS, PARAMETER_ROWS, RowsFieldset};
use super::{Catalog, alert, event_target};
use crate::form::{Errors, Field, FormState};

/// The chosen GGUF file: a JS object, so kept in local (non-`Send`) storage.
type ChosenFile = StoredValue<Option<File>, LocalStorage>;

/// The field's error, if it has one, as an alert with the given id.
fn field_error(errors: Memo<Errors>, field: Field, id: &'static str) -> impl IntoView {
    move || alert(errors.with(|e| e.get(&field).cloned()), Some(id))
}

/// The whole create panel.
#[component]
pub(super) fn CreatePanel(catalog: Catalog) -> impl IntoView {
    let form = RwSignal::new(FormState::default());
    let errors = Memo::new(move |_| form.with(FormState::errors));
    let file: ChosenFile = StoredValue::new_local(None);
    let progress = Progress::new();
    let running = RwSignal::new(false);
    let abort = StoredValue::new_local(None::<AbortController>);

    let start = move |_| {
        if !errors.with_untracked(Errors::is_empty) || running.get_untracked() {
            return;
        }
        let Ok(controller) = AbortController::new() else { return };
        running.set(true);
        progress.clear();
        let signal = controller.signal();
        abort.set_value(Some(controller));
        spawn_local(async move {
            let result = run_create(form, file.get_value(), signal, progress).await;
            running.set(false);
            abort.set_value(None);
            progress.finish(result.map(|m| format!("created {m}")));
            catalog.refresh().await;
        });
    };
    // Aborting the fetch closes the stream, which cancels the create on the server.
    let cancel = move |_| {
        abort.with_value(|c| {
            if let Some(c) = c {
                c.abort();
            }
        });
    };
    let cannot_create = move || !errors.with(Errors::is_empty) || running.get();

    view! {
        <section class="panel" aria-labelledby="create-heading">
            <h2 id="create-heading">"Create a model"</h2>
            <ModelfilePaste form=form />
            <div class="grid">
                <SourceFields form=form errors=errors catalog=catalog file=file />
                <TextFields form=form errors=errors />
                <RowsFieldset form=form errors=errors kind=&PARAMETER_ROWS />
                <RowsFieldset form=form errors=errors kind=&MESSAGE_ROWS />
            </div>
            <div class="actions">
                <button type="button" class="primary" on:click=start disabled=cannot_create>"Create"</button>
                <button type="button" on:click=cancel disabled=move || !running.get()>"Cancel"</button>
            </div>
            <ProgressArea progress=progress />
        </section>
    }
}

/// Paste a Modelfile, fill the form from it; a syntax error shows with its line and column.
#[component]
fn ModelfilePaste(form: RwSignal<FormState>) -> impl IntoView {
    let text = RwSignal::new(String::new());
    let error = RwSignal::new(None::<String>);
    let fill = move |_| {
        let mut next = form.get_untracked();
        match next.fill_from_modelfile(&text.get_untracked()) {
            Ok(()) => {
                error.set(None);
                form.set(next);
            }
            Err(e) => error.set(Some(e)),
        }
    };
    view! {
        <details class="modelfile">
            <summary>"Paste Modelfile"</summary>
            <label for="modelfile">"Modelfile"</label>
            <textarea id="modelfile" rows="8" prop:value=move || text.get()
                on:input=move |ev| text.set(event_target_value(&ev))></textarea>
            <button type="button" on:click=fill>"Fill the form"</button>
            {move || alert(error.get(), Some("modelfile-error"))}
        </details>
    }
}

/// Name, source (an existing model or a GGUF file) and quantize target.
#[component]
fn SourceFields(form: RwSignal<FormState>, errors: Memo<Errors>, catalog: Catalog, file: ChosenFile) -> impl IntoView {
    let choose_file = move |ev: web_sys::Event| {
        let chosen = event_target::<HtmlInputElement>(&ev).files().and_then(|l| l.get(0));
        form.update(|f| {
            f.file_name = chosen.as_ref().map(File::name);
            f.file_digest = None;
        });
        file.set_value(chosen);
    };
    let models = catalog.models;
    view! {
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
            <input id="gguf" type="file" accept=".gguf" on:change=choose_file />
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
    }
}

/// A wide text area bound to one string of the form, with that field's error if it has one.
#[component]
fn TextArea(
    form: RwSignal<FormState>,
    id: &'static str,
    label: &'static str,
    rows: u32,
    value: fn(&FormState) -> &String,
    value_mut: fn(&mut FormState) -> &mut String,
    #[prop(optional)] placeholder: Option<&'static str>,
    #[prop(optional)] error: Option<(Memo<Errors>, Field, &'static str)>,
) -> impl IntoView {
    view! {
        <div class="field wide">
            <label for=id>{label}</label>
            <textarea id=id rows=rows placeholder=placeholder prop:value=move || form.with(|f| value(f).clone())
                on:input=move |ev| form.update(|f| *value_mut(f) = event_target_value(&ev))></textarea>
            {error.map(|(errors, field, id)| field_error(errors, field, id))}
        </div>
    }
}

/// System prompt, template (with its error) and license.
#[component]
fn TextFields(form: RwSignal<FormState>, errors: Memo<Errors>) -> impl IntoView {
    view! {
        <TextArea form=form id="system" label="System prompt" rows=2 value=|f| &f.system value_mut=|f| &mut f.system />
        <TextArea form=form id="template" label="Template" rows=3 placeholder="{{ .System }} {{ .Prompt }}"
            value=|f| &f.template value_mut=|f| &mut f.template error=(errors, Field::Template, "template-error") />
        <TextArea form=form id="license" label="License" rows=2 value=|f| &f.license value_mut=|f| &mut f.license />
    }
}
