//! The create panel: Modelfile paste, the form (validated by kiln-core on every change, errors
//! shown on their fields), the source — a GGUF file or a Hugging Face model folder, picked or
//! dropped on the panel, the folder checked before anything is uploaded — Create and Cancel, and
//! the progress of the running create.

use js_sys::{Array, Function, Promise, Reflect, Uint8Array};
use kiln_core::file_type::{FileType, Group, TARGETS};
use leptos::prelude::*;
use leptos::task::spawn_local;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{
    AbortController, DragEvent, File, FileSystemDirectoryEntry, FileSystemEntry, FileSystemFileEntry, HtmlInputElement,
};

use super::create_run::{FolderFiles, run_create};
use super::progress::{Progress, ProgressArea};
use super::rows::{MESSAGE_ROWS, PARAMETER_ROWS, RowsFieldset};
use super::{Catalog, alert, event_target};
use crate::folder;
use crate::form::{Errors, Field, FormState, PENDING_DIGEST};
use crate::hasher;

/// The chosen GGUF file: a JS object, so kept in local (non-`Send`) storage.
type ChosenFile = StoredValue<Option<File>, LocalStorage>;

/// The chosen folder's files a create sends (`folder::pick`'s choice).
type ChosenFolder = StoredValue<Option<FolderFiles>, LocalStorage>;

/// The chosen importance-matrix file.
pub(super) type ChosenImatrix = StoredValue<Option<File>, LocalStorage>;

/// The source as chosen: the form state, the files, and the two inputs (each choice clears the
/// other input).
#[derive(Clone, Copy)]
struct Source {
    form: RwSignal<FormState>,
    file: ChosenFile,
    folder: ChosenFolder,
    gguf_input: NodeRef<leptos::html::Input>,
    folder_input: NodeRef<leptos::html::Input>,
}

impl Source {
    /// A GGUF file chosen (or none): the folder is forgotten.
    fn set_file(self, chosen: Option<File>) {
        if chosen.is_some() {
            hasher::warm();
            if let Some(i) = self.folder_input.get_untracked() {
                i.set_value("");
            }
        }
        self.form.update(|f| {
            f.file_name = chosen.as_ref().map(File::name);
            f.file_digest = None;
            f.folder = None;
            f.folder_error = None;
        });
        self.file.set_value(chosen);
        self.folder.set_value(None);
    }

    /// A folder's files chosen, keyed by their path in it: picks the files a create sends and
    /// checks them (config, tokenizer, shards) — Create waits for the check.
    fn set_folder(self, mut all: FolderFiles) {
        hasher::warm();
        if let Some(i) = self.gguf_input.get_untracked() {
            i.set_value("");
        }
        self.file.set_value(None);
        all.sort_by(|a, b| a.0.cmp(&b.0));
        let keys: Vec<&str> = all.iter().map(|(k, _)| k.as_str()).collect();
        let picked = folder::pick(&keys).map(|p| p.into_iter().map(str::to_owned).collect::<Vec<_>>());
        let files: FolderFiles = match &picked {
            Ok(p) => all.iter().filter(|(k, _)| p.contains(k)).cloned().collect(),
            Err(_) => Vec::new(),
        };
        self.form.update(|f| {
            f.file_name = None;
            f.file_digest = None;
            f.folder = Some(files.iter().map(|(k, _)| (k.clone(), PENDING_DIGEST.to_owned())).collect());
            f.folder_error = Some(picked.as_ref().err().cloned().unwrap_or_else(|| "checking the folder…".into()));
        });
        self.folder.set_value(Some(files.clone()));
        if picked.is_ok() {
            let form = self.form;
            spawn_local(async move {
                let error = check_folder(&files).await;
                // A later choice replaced this folder: its own check reports.
                if form.with_untracked(|f| f.folder.as_ref().is_some_and(|m| m.keys().eq(files.iter().map(|(k, _)| k))))
                {
                    form.update(|f| f.folder_error = error);
                }
            });
        }
    }
}

/// A file's bytes (the small files a check reads).
async fn bytes(file: &File) -> Result<Vec<u8>, String> {
    let buf = JsFuture::from(file.array_buffer()).await.map_err(|e| format!("{}: {e:?}", file.name()))?;
    Ok(Uint8Array::new(&buf).to_vec())
}

/// What is wrong with a folder's picked files (`folder::problems`), joined; `None` when nothing.
async fn check_folder(files: &FolderFiles) -> Option<String> {
    let find = |key: &str| files.iter().find(|(k, _)| k == key).map(|(_, f)| f.clone());
    let mut read = Vec::new();
    for key in ["config.json", folder::INDEX] {
        read.push(match find(key) {
            Some(f) => match bytes(&f).await {
                Ok(b) => Some(b),
                Err(e) => return Some(e),
            },
            None => None,
        });
    }
    let keys: Vec<&str> = files.iter().map(|(k, _)| k.as_str()).collect();
    let problems = folder::problems(&keys, read[0].as_deref(), read[1].as_deref());
    (!problems.is_empty()).then(|| problems.join("; "))
}

/// A promise for a callback-style API (`call(resolve, reject)`).
async fn settle(call: impl FnOnce(&Function, &Function)) -> Result<JsValue, String> {
    let mut call = Some(call);
    let promise = Promise::new(&mut |resolve, reject| {
        if let Some(call) = call.take() {
            call(&resolve, &reject);
        }
    });
    JsFuture::from(promise).await.map_err(|e| format!("reading the dropped files: {e:?}"))
}

/// Every file under a dropped folder, keyed by `prefix` + its path in it.
async fn walk(root: FileSystemDirectoryEntry, prefix: String, out: &mut FolderFiles) -> Result<(), String> {
    let mut stack = vec![(root, prefix)];
    while let Some((dir, prefix)) = stack.pop() {
        let reader = dir.create_reader();
        // readEntries hands out a batch per call, then an empty one.
        loop {
            let batch = settle(|ok, err| {
                let _ = reader.read_entries_with_callback_and_callback(ok, err);
            })
            .await?;
            let batch: Array = batch.unchecked_into();
            if batch.length() == 0 {
                break;
            }
            for entry in batch.iter() {
                let entry: FileSystemEntry = entry.unchecked_into();
                let key = format!("{prefix}{}", entry.name());
                if entry.is_directory() {
                    stack.push((entry.unchecked_into(), key + "/"));
                } else {
                    let fe: FileSystemFileEntry = entry.unchecked_into();
                    let file = settle(|ok, err| fe.file_with_callback_and_callback(ok, err)).await?;
                    out.push((key, file.unchecked_into()));
                }
            }
        }
    }
    Ok(())
}

/// What was dropped: one folder → its files keyed by their path in it; files (and folders) →
/// keyed by their names (and paths).
async fn dropped(entries: Vec<FileSystemEntry>, mut loose: FolderFiles) -> Result<FolderFiles, String> {
    if let [only] = entries.as_slice()
        && only.is_directory()
    {
        walk(only.clone().unchecked_into(), String::new(), &mut loose).await?;
        return Ok(loose);
    }
    for entry in entries {
        if entry.is_directory() {
            let prefix = format!("{}/", entry.name());
            walk(entry.unchecked_into(), prefix, &mut loose).await?;
        } else {
            let fe: FileSystemFileEntry = entry.unchecked_into();
            let file = settle(|ok, err| fe.file_with_callback_and_callback(ok, err)).await?;
            loose.push((fe.name(), file.unchecked_into()));
        }
    }
    Ok(loose)
}

/// Handles a drop on the panel: one `.gguf` file is the GGUF file, anything else a model folder.
fn on_drop(ev: &DragEvent, source: Source) {
    ev.prevent_default();
    let Some(items) = ev.data_transfer().map(|d| d.items()) else { return };
    // The items are only readable during the event: take their entries now, read them after.
    let (mut entries, mut loose) = (Vec::new(), Vec::new());
    for item in (0..items.length()).filter_map(|i| items.get(i)).filter(|i| i.kind() == "file") {
        match item.webkit_get_as_entry() {
            Ok(Some(entry)) => entries.push(entry),
            _ => loose.extend(item.get_as_file().ok().flatten().map(|f| (f.name(), f))),
        }
    }
    spawn_local(async move {
        match dropped(entries, loose).await {
            Ok(files) if files.len() == 1 && files[0].0.ends_with(".gguf") => {
                source.set_file(files.into_iter().next().map(|(_, f)| f));
            }
            Ok(files) => source.set_folder(files),
            Err(e) => source.form.update(|f| f.folder_error = Some(e)),
        }
    });
}

/// A picked file's path in its folder, as the browser gives it.
fn relative_path(file: &File) -> String {
    Reflect::get(file, &"webkitRelativePath".into())
        .ok()
        .and_then(|p| p.as_string())
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| file.name())
}

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
    let folder: ChosenFolder = StoredValue::new_local(None);
    let imatrix: ChosenImatrix = StoredValue::new_local(None);
    let source = Source { form, file, folder, gguf_input: NodeRef::new(), folder_input: NodeRef::new() };
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
            let result =
                run_create(form, file.get_value(), folder.get_value(), imatrix.get_value(), signal, progress).await;
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
        <section class="panel" aria-labelledby="create-heading"
            on:dragover=|ev: DragEvent| ev.prevent_default() on:drop=move |ev: DragEvent| on_drop(&ev, source)>
            <h2 id="create-heading">"Create a model"</h2>
            <ModelfilePaste form=form />
            <div class="grid">
                <SourceFields source=source errors=errors catalog=catalog />
                <TextFields form=form errors=errors />
                <RowsFieldset form=form errors=errors kind=&PARAMETER_ROWS />
                <RowsFieldset form=form errors=errors kind=&MESSAGE_ROWS />
            </div>
            <QuantizeOptions form=form errors=errors imatrix=imatrix />
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

/// Name, source (an existing model, a GGUF file or a model folder) and quantize target.
#[component]
fn SourceFields(source: Source, errors: Memo<Errors>, catalog: Catalog) -> impl IntoView {
    let form = source.form;
    let choose_file = move |ev: web_sys::Event| {
        source.set_file(event_target::<HtmlInputElement>(&ev).files().and_then(|l| l.get(0)));
    };
    let choose_folder = move |ev: web_sys::Event| {
        let Some(list) = event_target::<HtmlInputElement>(&ev).files() else { return };
        let all = (0..list.length()).filter_map(|i| list.get(i));
        source.set_folder(all.map(|f| (folder::key_of(&relative_path(&f)), f)).collect());
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
                <option value="">"(a GGUF file or model folder)"</option>
                <For each=move || models.get() key=|m| m.name.clone() let:m>
                    <option value=m.name.clone()>{m.name.clone()}</option>
                </For>
            </select>
        </div>
        <div class="field">
            <label for="gguf">"GGUF file"</label>
            <input id="gguf" type="file" accept=".gguf" node_ref=source.gguf_input on:change=choose_file />
        </div>
        <div class="field">
            <label for="folder">"Model folder"</label>
            <input id="folder" type="file" node_ref=source.folder_input on:change=choose_folder multiple
                prop:webkitdirectory=true />
            <p class="hint">"A Hugging Face safetensors folder — or drop a folder or files on this panel."</p>
            {field_error(errors, Field::Source, "source-error")}
        </div>
        <div class="field">
            <label for="quantize">"Quantize"</label>
            <select id="quantize" on:change=move |ev| form.update(|f| f.quantize = event_target_value(&ev))>
                <option value="">"(keep the source type)"</option>
                {GROUPS.iter().map(|&group| view! {
                    <optgroup label=group.label()>
                        {TARGETS.iter().filter(|t| t.group() == group).map(|t| view! {
                            <option value=t.name()>{option_label(*t)}</option>
                        }).collect_view()}
                    </optgroup>
                }).collect_view()}
            </select>
            <p class="hint">"Types marked * need an importance matrix (below) for the tensors they make very low-bit."</p>
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

/// The quantize list's groups, in order.
const GROUPS: [Group; 5] = [Group::Float, Group::Legacy, Group::K, Group::Iq, Group::Other];

/// A target as listed: its name, with ` *` where llama-quantize refuses it without an importance
/// matrix on usual models (the server decides per tensor).
fn option_label(t: FileType) -> String {
    if t.wants_imatrix() { format!("{} *", t.name()) } else { t.name().to_owned() }
}

/// A one-line text input bound to one string of the advanced controls.
#[component]
fn AdvancedInput(
    form: RwSignal<FormState>,
    id: &'static str,
    label: &'static str,
    placeholder: &'static str,
    value: fn(&FormState) -> &String,
    value_mut: fn(&mut FormState) -> &mut String,
) -> impl IntoView {
    view! {
        <div class="field">
            <label for=id>{label}</label>
            <input id=id type="text" autocomplete="off" placeholder=placeholder
                prop:value=move || form.with(|f| value(f).clone())
                on:input=move |ev| form.update(|f| *value_mut(f) = event_target_value(&ev)) />
        </div>
    }
}

/// A checkbox bound to one flag of the advanced controls.
#[component]
fn AdvancedCheck(
    form: RwSignal<FormState>,
    id: &'static str,
    label: &'static str,
    value: fn(&FormState) -> bool,
    value_mut: fn(&mut FormState) -> &mut bool,
) -> impl IntoView {
    view! {
        <div class="field check">
            <input id=id type="checkbox" prop:checked=move || form.with(value)
                on:change=move |ev| form.update(|f| *value_mut(f) = event_target::<HtmlInputElement>(&ev).checked()) />
            <label for=id>{label}</label>
        </div>
    }
}

/// The importance-matrix file (hashed and uploaded like the model) and the "Advanced" section:
/// llama-quantize's per-tensor controls, checked by kiln-core as they are typed.
#[component]
fn QuantizeOptions(form: RwSignal<FormState>, errors: Memo<Errors>, imatrix: ChosenImatrix) -> impl IntoView {
    let choose = move |ev: web_sys::Event| {
        let chosen = event_target::<HtmlInputElement>(&ev).files().and_then(|l| l.get(0));
        if chosen.is_some() {
            hasher::warm();
        }
        form.update(|f| {
            f.imatrix_name = chosen.as_ref().map(File::name);
            f.imatrix_digest = None;
        });
        imatrix.set_value(chosen);
    };
    view! {
        <div class="grid">
            <div class="field">
                <label for="imatrix">"Importance matrix"</label>
                <input id="imatrix" type="file" accept=".gguf,.dat,.imatrix" on:change=choose />
                <p class="hint">"From llama-imatrix (GGUF or .dat): quantizes as llama-quantize --imatrix."</p>
                {field_error(errors, Field::Imatrix, "imatrix-error")}
            </div>
        </div>
        <details class="advanced">
            <summary>"Advanced"</summary>
            <div class="grid">
                <AdvancedInput form=form id="output-tensor-type" label="Output tensor type" placeholder="q8_0"
                    value=|f| &f.advanced.output_tensor_type value_mut=|f| &mut f.advanced.output_tensor_type />
                <AdvancedInput form=form id="token-embedding-type" label="Token embedding type" placeholder="q8_0"
                    value=|f| &f.advanced.token_embedding_type value_mut=|f| &mut f.advanced.token_embedding_type />
                <TextArea form=form id="tensor-types" label="Tensor types (PATTERN=TYPE, one a line)" rows=3
                    placeholder="attn_v=q8_0" value=|f| &f.advanced.tensor_types
                    value_mut=|f| &mut f.advanced.tensor_types />
                <TextArea form=form id="include-weights" label="Include weights (one a line)" rows=2
                    value=|f| &f.advanced.imatrix_include value_mut=|f| &mut f.advanced.imatrix_include />
                <TextArea form=form id="exclude-weights" label="Exclude weights (one a line)" rows=2
                    value=|f| &f.advanced.imatrix_exclude value_mut=|f| &mut f.advanced.imatrix_exclude />
                <AdvancedCheck form=form id="pure" label="Pure (no mixture rules)"
                    value=|f| f.advanced.pure value_mut=|f| &mut f.advanced.pure />
                <AdvancedCheck form=form id="leave-output-tensor" label="Leave output tensor"
                    value=|f| f.advanced.leave_output_tensor value_mut=|f| &mut f.advanced.leave_output_tensor />
            </div>
            {field_error(errors, Field::Advanced, "advanced-error")}
        </details>
    }
}
