//! The repeatable rows of the create form: parameters (keys from kiln-core's list, a number input
//! for numeric keys) and messages (roles from kiln-core's list). Both are (key, value) pairs, so
//! one fieldset and one row component serve both, told apart by a [`RowKind`].

use kiln_core::params::{PARAMETERS, ParamType};
use kiln_core::validate::MESSAGE_ROLES;
use leptos::prelude::*;

use super::alert;
use crate::form::{Errors, Field, FormState};

type Pairs = Vec<(String, String)>;

/// What a parameter row and a message row differ in: words, ids, choices, where the rows live.
#[derive(Debug)]
pub(super) struct RowKind {
    legend: &'static str,
    add: &'static str,
    /// "Parameter" / "Message": with the index and the part's word, each control's label.
    noun: &'static str,
    key_word: &'static str,
    value_word: &'static str,
    /// Element id prefixes of the key and value controls.
    key_id: &'static str,
    value_id: &'static str,
    new_key: &'static str,
    keys: fn() -> Vec<&'static str>,
    input_type: fn(&str) -> &'static str,
    field: Field,
    error_id: &'static str,
    rows: fn(&FormState) -> &Pairs,
    rows_mut: fn(&mut FormState) -> &mut Pairs,
}

pub(super) const PARAMETER_ROWS: RowKind = RowKind {
    legend: "Parameters",
    add: "Add parameter",
    noun: "Parameter",
    key_word: "name",
    value_word: "value",
    key_id: "param-key",
    value_id: "param-value",
    new_key: "temperature",
    keys: || PARAMETERS.iter().map(|(k, _, _)| *k).collect(),
    input_type: |key| match kiln_core::params::param_type(key) {
        Some(ParamType::Int | ParamType::Float) => "number",
        _ => "text",
    },
    field: Field::Parameters,
    error_id: "parameters-error",
    rows: |f| &f.parameters,
    rows_mut: |f| &mut f.parameters,
};

pub(super) const MESSAGE_ROWS: RowKind = RowKind {
    legend: "Messages",
    add: "Add message",
    noun: "Message",
    key_word: "role",
    value_word: "content",
    key_id: "message-role",
    value_id: "message-content",
    new_key: "user",
    keys: || MESSAGE_ROLES.to_vec(),
    input_type: |_| "text",
    field: Field::Messages,
    error_id: "messages-error",
    rows: |f| &f.messages,
    rows_mut: |f| &mut f.messages,
};

/// A fieldset of rows: one per pair, an add button, the field's error.
#[component]
pub(super) fn RowsFieldset(form: RwSignal<FormState>, errors: Memo<Errors>, kind: &'static RowKind) -> impl IntoView {
    let count = move || form.with(|f| (kind.rows)(f).len());
    let add = move |_| form.update(|f| (kind.rows_mut)(f).push((kind.new_key.into(), String::new())));
    view! {
        <fieldset class="field wide">
            <legend>{kind.legend}</legend>
            {move || (0..count()).map(|i| view! { <PairRow form=form kind=kind index=i /> }).collect_view()}
            <button type="button" on:click=add>{kind.add}</button>
            {move || alert(errors.with(|e| e.get(&kind.field).cloned()), Some(kind.error_id))}
        </fieldset>
    }
}

/// One row: a select for the key, an input for the value, a remove button.
#[component]
fn PairRow(form: RwSignal<FormState>, kind: &'static RowKind, index: usize) -> impl IntoView {
    let part = move |pick: fn(&(String, String)) -> &String| {
        move || form.with(|f| (kind.rows)(f).get(index).map(|p| pick(p).clone()).unwrap_or_default())
    };
    let (key, value) = (part(|p| &p.0), part(|p| &p.1));
    let edit = move |write: fn(&mut (String, String), String), text: String| {
        form.update(|f| {
            if let Some(p) = (kind.rows_mut)(f).get_mut(index) {
                write(p, text);
            }
        });
    };
    let remove = move |_| {
        form.update(|f| {
            let rows = (kind.rows_mut)(f);
            if index < rows.len() {
                rows.remove(index);
            }
        });
    };
    let (key_id, value_id, n) = (format!("{}-{index}", kind.key_id), format!("{}-{index}", kind.value_id), index + 1);
    view! {
        <div class="row">
            <label for=key_id.clone() class="sr-only">{format!("{} {n} {}", kind.noun, kind.key_word)}</label>
            <select id=key_id prop:value=key on:change=move |ev| edit(|p, t| p.0 = t, event_target_value(&ev))>
                {(kind.keys)().into_iter().map(|k| view! { <option value=k>{k}</option> }).collect_view()}
            </select>
            <label for=value_id.clone() class="sr-only">{format!("{} {n} {}", kind.noun, kind.value_word)}</label>
            <input id=value_id type=move || (kind.input_type)(&key()) step="any" prop:value=value
                on:input=move |ev| edit(|p, t| p.1 = t, event_target_value(&ev)) />
            <button type="button" aria-label=format!("Remove {} {n}", kind.noun.to_lowercase()) on:click=remove>"×"</button>
        </div>
    }
}
