//! The create form's state and its validation: pure Rust over `kiln-core`, so it is tested
//! natively and runs unchanged in the browser.

use std::collections::BTreeMap;

use kiln_core::Error;
use kiln_core::params::{self, ParamType};
use kiln_core::request::{CreateRequest, License, Message};
use kiln_core::validate::validate_create;
use serde_json::{Map, Value};

/// Stand-in digest for a chosen file whose hash is not computed yet.
pub const PENDING_DIGEST: &str = "sha256:0000000000000000000000000000000000000000000000000000000000000000";

/// Which form field an error belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Field {
    /// Model name.
    Name,
    /// From / GGUF file.
    Source,
    /// Template.
    Template,
    /// Parameters.
    Parameters,
    /// Messages.
    Messages,
    /// Quantize.
    Quantize,
    /// The importance matrix and its entry filters.
    Imatrix,
    /// The per-tensor controls.
    Advanced,
}

/// Everything the form holds.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FormState {
    /// Target name.
    pub name: String,
    /// Existing model to derive from ("" = none).
    pub from: String,
    /// Chosen GGUF file name, if any.
    pub file_name: Option<String>,
    /// Its digest once hashed.
    pub file_digest: Option<String>,
    /// A chosen model folder: the `files` key of each file it sends → its digest
    /// ([`PENDING_DIGEST`] until hashed). Takes the GGUF file's place.
    pub folder: Option<BTreeMap<String, String>>,
    /// What the browser found wrong with the folder before any upload (`folder.rs`).
    pub folder_error: Option<String>,
    /// System prompt.
    pub system: String,
    /// Template.
    pub template: String,
    /// License text.
    pub license: String,
    /// (key, value as typed) rows.
    pub parameters: Vec<(String, String)>,
    /// (role, content) rows.
    pub messages: Vec<(String, String)>,
    /// Quantize target ("" = none).
    pub quantize: String,
    /// Chosen importance-matrix file name, if any.
    pub imatrix_name: Option<String>,
    /// Its digest once hashed.
    pub imatrix_digest: Option<String>,
    /// The per-tensor controls (llama-quantize's flags).
    pub advanced: Advanced,
}

/// The "Advanced" section: llama-quantize's per-tensor flags, as typed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Advanced {
    /// `--output-tensor-type` ("" = none).
    pub output_tensor_type: String,
    /// `--token-embedding-type` ("" = none).
    pub token_embedding_type: String,
    /// `--tensor-type`, one `PATTERN=TYPE` a line.
    pub tensor_types: String,
    /// `--pure`.
    pub pure: bool,
    /// `--leave-output-tensor`.
    pub leave_output_tensor: bool,
    /// `--include-weights`, one name part a line.
    pub imatrix_include: String,
    /// `--exclude-weights`, one name part a line.
    pub imatrix_exclude: String,
}

/// The non-blank lines of a text area, trimmed; `None` when there are none.
fn lines(text: &str) -> Option<Vec<String>> {
    let v: Vec<String> = text.lines().map(str::trim).filter(|l| !l.is_empty()).map(str::to_owned).collect();
    (!v.is_empty()).then_some(v)
}

impl Advanced {
    /// Its fields on `req`.
    fn apply(&self, req: &mut CreateRequest) {
        let nonempty = |s: &str| (!s.trim().is_empty()).then(|| s.trim().to_owned());
        req.output_tensor_type = nonempty(&self.output_tensor_type);
        req.token_embedding_type = nonempty(&self.token_embedding_type);
        req.tensor_types = lines(&self.tensor_types);
        req.pure = self.pure.then_some(true);
        req.leave_output_tensor = self.leave_output_tensor.then_some(true);
        req.imatrix_include = lines(&self.imatrix_include);
        req.imatrix_exclude = lines(&self.imatrix_exclude);
    }
}

/// A field's error.
pub type Errors = BTreeMap<Field, String>;

impl FormState {
    /// Parameters as typed JSON values; the first value that does not parse is an error.
    fn typed_parameters(&self) -> Result<Option<Map<String, Value>>, String> {
        let mut out = Map::new();
        for (k, raw) in &self.parameters {
            let (k, raw) = (k.trim(), raw.trim());
            if k.is_empty() && raw.is_empty() {
                continue;
            }
            let v = match params::param_type(k) {
                None => {
                    return Err(params::check_param(k, &Value::Null).err().map_or_else(String::new, |e| e.to_string()));
                }
                Some(ParamType::Int) => raw.parse::<i64>().ok().map(Value::from),
                Some(ParamType::Float) => raw.parse::<f64>().ok().map(Value::from),
                Some(ParamType::Bool) => raw.parse::<bool>().ok().map(Value::Bool),
                Some(ParamType::StringList) => Some(Value::String(raw.to_owned())),
            };
            let ty = params::param_type(k).map_or("a value", ParamType::describe);
            let v = v.ok_or_else(|| format!("invalid value for parameter '{k}': expected {ty}, got {raw:?}"))?;
            if k == "stop" {
                if let Value::Array(items) = out.entry("stop").or_insert_with(|| Value::Array(Vec::new())) {
                    items.push(v);
                }
            } else {
                out.insert(k.to_owned(), v);
            }
        }
        Ok((!out.is_empty()).then_some(out))
    }

    /// The request this form would send (the file's digest may still be the placeholder).
    ///
    /// # Errors
    /// A parameter value that does not parse, as a field error.
    pub fn to_request(&self) -> Result<CreateRequest, (Field, String)> {
        let nonempty = |s: &str| (!s.is_empty()).then(|| s.to_owned());
        let mut req = CreateRequest {
            model: Some(self.name.trim().to_owned()),
            template: nonempty(&self.template),
            system: nonempty(&self.system),
            license: nonempty(&self.license).map(License::One),
            quantize: nonempty(&self.quantize),
            stream: Some(true),
            ..CreateRequest::default()
        };
        if !self.from.is_empty() {
            req.from = Some(self.from.clone());
        } else if let Some(folder) = &self.folder {
            req.files = Some(folder.clone());
        } else if let Some(file) = &self.file_name {
            let digest = self.file_digest.clone().unwrap_or_else(|| PENDING_DIGEST.into());
            req.files = Some(std::iter::once((file_key(file), digest)).collect());
        }
        if self.imatrix_name.is_some() {
            req.imatrix = Some(self.imatrix_digest.clone().unwrap_or_else(|| PENDING_DIGEST.into()));
        }
        self.advanced.apply(&mut req);
        req.parameters = self.typed_parameters().map_err(|e| (Field::Parameters, e))?;
        let messages: Vec<Message> = self
            .messages
            .iter()
            .filter(|(_, c)| !c.is_empty())
            .map(|(role, content)| Message {
                role: role.clone(),
                content: content.clone(),
                thinking: None,
                images: None,
                tool_calls: None,
                tool_name: None,
                tool_call_id: None,
            })
            .collect();
        req.messages = (!messages.is_empty()).then_some(messages);
        Ok(req)
    }

    /// Fills the form from Modelfile text: `FROM` only when the Modelfile has one (a chosen file
    /// stays chosen otherwise); template, system, license, parameters and messages are replaced.
    /// The model name and quantize choice are left alone: a Modelfile does not carry them.
    ///
    /// # Errors
    /// The parser's first syntax error (with its line and column); the form is then unchanged.
    pub fn fill_from_modelfile(&mut self, text: &str) -> Result<(), String> {
        let req = kiln_core::modelfile::parse_modelfile(text).map_err(|e| e.to_string())?;
        if let Some(from) = req.from {
            self.from = from;
        }
        self.template = req.template.unwrap_or_default();
        self.system = req.system.unwrap_or_default();
        self.license = match req.license {
            Some(License::One(s)) => s,
            // One text area holds every license, one per line, as the Modelfile listed them.
            Some(License::Many(v)) => v.join("\n"),
            None => String::new(),
        };
        self.parameters = req.parameters.unwrap_or_default().into_iter().flat_map(parameter_rows).collect();
        self.messages = req.messages.unwrap_or_default().into_iter().map(|m| (m.role, m.content)).collect();
        Ok(())
    }

    /// Every error the form has now, by field. Empty means the Create button may send.
    #[must_use]
    pub fn errors(&self) -> Errors {
        let mut errors = Errors::new();
        if self.from.is_empty()
            && let Some(e) = &self.folder_error
        {
            errors.insert(Field::Source, e.clone());
        }
        // A folder is checked by `folder.rs` (files, architecture) and by kiln-core's
        // validation below as the server checks it (a `*.safetensors` key: a conversion).
        let this = self;
        let req = match this.to_request() {
            Ok(r) => r,
            Err((field, e)) => {
                errors.insert(field, e);
                let mut rest = this.clone();
                rest.parameters.clear();
                match rest.to_request() {
                    Ok(r) => r,
                    Err(_) => return errors,
                }
            }
        };
        if let Err(e) = validate_create(&req) {
            errors.entry(field_of(&e)).or_insert_with(|| e.to_string());
        }
        errors
    }
}

/// One form row per value of a parsed parameter (`stop` may hold several), each as typed text.
fn parameter_rows((key, value): (String, Value)) -> Vec<(String, String)> {
    let text = |v: Value| match v {
        Value::String(s) => s,
        other => other.to_string(),
    };
    match value {
        Value::Array(items) => items.into_iter().map(|v| (key.clone(), text(v))).collect(),
        other => vec![(key, text(other))],
    }
}

/// The `files` key for a chosen file: its base name.
#[must_use]
pub fn file_key(name: &str) -> String {
    name.rsplit(['/', '\\']).next().unwrap_or(name).to_owned()
}

/// The field a core error belongs to.
#[must_use]
pub fn field_of(e: &Error) -> Field {
    match e {
        Error::ModelRequired | Error::InvalidModelName | Error::InvalidDeleteName(_) => Field::Name,
        Error::UnknownParameter { .. } | Error::ParameterType { .. } => Field::Parameters,
        Error::MessageRole { .. } => Field::Messages,
        Error::Template(_) => Field::Template,
        Error::UnsupportedQuantization(_) => Field::Quantize,
        Error::ImatrixWithoutQuantize | Error::ImatrixFilterWithoutImatrix(_) | Error::ImatrixFilterBoth => {
            Field::Imatrix
        }
        Error::ControlWithoutQuantize(_)
        | Error::ControlTypeUnknown { .. }
        | Error::ControlTypeUnsupported { .. }
        | Error::TensorTypeMalformed { .. }
        | Error::TensorTypeRegex { .. } => Field::Advanced,
        _ => Field::Source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok_form() -> FormState {
        FormState { name: "mine".into(), from: "base".into(), ..FormState::default() }
    }

    #[test]
    fn valid_form_has_no_errors() {
        let mut f = ok_form();
        f.parameters = vec![("temperature".into(), "0.7".into()), ("stop".into(), "<|end|>".into())];
        f.messages = vec![("user".into(), "hi".into())];
        f.quantize = "q4_K_M".into();
        assert!(f.errors().is_empty(), "{:?}", f.errors());
        let req = f.to_request().unwrap();
        assert_eq!(req.parameters.unwrap()["stop"], serde_json::json!(["<|end|>"]));
    }

    #[test]
    fn errors_land_on_their_fields() {
        let mut f = ok_form();
        f.name = "bad name!".into();
        assert_eq!(f.errors().get(&Field::Name).map(String::as_str), Some("invalid model name"));
        let mut f = ok_form();
        f.from.clear();
        assert!(f.errors().contains_key(&Field::Source));
        f.file_name = Some("C:\\models\\tiny.gguf".into());
        assert!(f.errors().is_empty());
        assert_eq!(f.to_request().unwrap().files.unwrap().keys().next().unwrap(), "tiny.gguf");
        let mut f = ok_form();
        f.parameters = vec![("num_ctx".into(), "lots".into())];
        assert!(f.errors()[&Field::Parameters].contains("expected an integer"));
        let mut f = ok_form();
        f.template = "{{ .Prompt".into();
        assert!(f.errors()[&Field::Template].starts_with("template error"));
        let mut f = ok_form();
        f.quantize = "q9".into();
        assert!(f.errors().contains_key(&Field::Quantize));
    }

    #[test]
    fn a_folder_sends_its_files_and_shows_its_error() {
        let mut f = ok_form();
        f.from.clear();
        f.file_name = Some("tiny.gguf".into());
        let keys = ["config.json", "model.safetensors", "tokenizer.json"];
        f.folder = Some(keys.iter().map(|k| ((*k).to_owned(), PENDING_DIGEST.to_owned())).collect());
        assert!(f.errors().is_empty(), "{:?}", f.errors());
        let files = f.to_request().unwrap().files.unwrap();
        assert_eq!(files.keys().map(String::as_str).collect::<Vec<_>>(), keys);
        f.folder_error = Some("no tokenizer".into());
        assert_eq!(f.errors().get(&Field::Source).map(String::as_str), Some("no tokenizer"));
        f.from = "base".into();
        assert!(f.errors().is_empty(), "an existing model as the source ignores the folder");
    }

    #[test]
    fn imatrix_and_controls_reach_the_request_and_their_errors_their_fields() {
        let mut f = ok_form();
        f.imatrix_name = Some("gemma.imatrix".into());
        assert!(f.errors()[&Field::Imatrix].starts_with("imatrix needs quantize"), "{:?}", f.errors());
        f.quantize = "q4_K_M".into();
        f.advanced.tensor_types = "attn_v=q8_0\n\n  ffn_down=q6_k \n".into();
        f.advanced.output_tensor_type = " q8_0 ".into();
        f.advanced.pure = true;
        f.advanced.imatrix_exclude = "ffn_\n".into();
        assert!(f.errors().is_empty(), "{:?}", f.errors());
        let req = f.to_request().unwrap();
        assert_eq!(req.imatrix.as_deref(), Some(PENDING_DIGEST));
        assert_eq!(req.tensor_types, Some(vec!["attn_v=q8_0".to_owned(), "ffn_down=q6_k".to_owned()]));
        assert_eq!(
            (req.output_tensor_type.as_deref(), req.pure, req.leave_output_tensor),
            (Some("q8_0"), Some(true), None)
        );
        assert_eq!(req.imatrix_exclude, Some(vec!["ffn_".to_owned()]));
        f.advanced.imatrix_include = "attn_q".into();
        assert!(f.errors()[&Field::Imatrix].contains("cannot be used together"));
        f.advanced.imatrix_include.clear();
        f.advanced.tensor_types = "attn_v".into();
        assert!(f.errors()[&Field::Advanced].contains("is not PATTERN=TYPE"), "{:?}", f.errors());
        f.advanced.tensor_types = "attn_v=q9".into();
        assert!(f.errors()[&Field::Advanced].contains("unknown type"), "{:?}", f.errors());
        f.advanced.tensor_types.clear();
        f.quantize.clear();
        f.imatrix_name = None;
        assert!(f.errors()[&Field::Advanced].contains("needs quantize"), "{:?}", f.errors());
    }

    #[test]
    fn modelfile_fills_every_field_it_has() {
        let mut f = FormState { name: "mine".into(), quantize: "Q4_K_M".into(), ..FormState::default() };
        let text = "FROM base\nPARAMETER temperature 0.5\nPARAMETER num_ctx 4096\nPARAMETER stop <|end|>\n\
                    PARAMETER stop USER:\nTEMPLATE {{ .Prompt }}\nSYSTEM Be brief.\nLICENSE MIT\n\
                    LICENSE Apache\nMESSAGE user Hi\nMESSAGE assistant Hello!\n";
        f.fill_from_modelfile(text).unwrap();
        assert_eq!((f.name.as_str(), f.quantize.as_str(), f.from.as_str()), ("mine", "Q4_K_M", "base"));
        assert_eq!((f.template.as_str(), f.system.as_str()), ("{{ .Prompt }}", "Be brief."));
        assert_eq!(f.license, "MIT\nApache");
        let rows = |v: &[(&str, &str)]| v.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect::<Vec<_>>();
        // Parameters come back in key order, each `stop` value on a row of its own.
        assert_eq!(
            f.parameters,
            rows(&[("num_ctx", "4096"), ("stop", "<|end|>"), ("stop", "USER:"), ("temperature", "0.5")])
        );
        assert_eq!(f.messages, rows(&[("user", "Hi"), ("assistant", "Hello!")]));
        assert!(f.errors().is_empty(), "{:?}", f.errors());
        let req = f.to_request().unwrap();
        assert_eq!(req.parameters.unwrap()["stop"], serde_json::json!(["<|end|>", "USER:"]));
    }

    #[test]
    fn modelfile_replaces_text_fields_but_keeps_a_chosen_source() {
        let mut f = ok_form();
        f.from.clear();
        f.file_name = Some("tiny.gguf".into());
        f.system = "old".into();
        f.license = "old".into();
        f.parameters = vec![("top_k".into(), "1".into())];
        f.messages = vec![("user".into(), "old".into())];
        f.fill_from_modelfile("SYSTEM new\n").unwrap();
        assert_eq!((f.from.as_str(), f.file_name.as_deref()), ("", Some("tiny.gguf")));
        assert_eq!((f.system.as_str(), f.license.as_str()), ("new", ""));
        assert!(f.parameters.is_empty() && f.messages.is_empty());
    }

    #[test]
    fn a_modelfile_error_names_its_line_and_leaves_the_form() {
        let mut f = ok_form();
        f.system = "kept".into();
        let e = f.fill_from_modelfile("FROM x\nPARAMETER tempurature 1\n").unwrap_err();
        assert!(e.contains("line 2, column 11"), "{e}");
        assert_eq!(f, FormState { system: "kept".into(), ..ok_form() });
    }
}
