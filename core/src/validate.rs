//! `CreateRequest` → [`CreatePlan`]: every synchronous check of `/api/create`, in Ollama's order
//! (`shared/spec/ollama-api.md` §2.5.1) followed by kiln's own (parameters, roles, template,
//! quantize, unsupported sources). The server and the browser both call [`validate_create`]; the
//! pipeline only ever sees a plan.

use alloc::borrow::ToOwned;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use serde_json::{Map, Value};

use crate::file_type::FileType;
use crate::quant_controls::Controls;
use crate::request::{CreateRequest, License, Message};
use crate::{Digest, Error, ModelName, params};

/// Where the model's weights come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// An existing model.
    From(ModelName),
    /// Uploaded GGUF blobs, in sorted key order.
    Files(Vec<(String, Digest)>),
    /// An uploaded Hugging Face directory (some key ends in `.safetensors`), in sorted key
    /// order: converted to GGUF.
    Hf(Vec<(String, Digest)>),
}

/// A create request that passed every check.
#[derive(Debug, Clone, PartialEq)]
pub struct CreatePlan {
    /// Target name (not yet canonicalised against the store).
    pub name: ModelName,
    /// Base layers.
    pub source: Source,
    /// LoRA adapter blobs (at most one).
    pub adapters: Vec<(String, Digest)>,
    /// Replacement template.
    pub template: Option<String>,
    /// Replacement system prompt (non-empty).
    pub system: Option<String>,
    /// License texts to append, one layer each.
    pub licenses: Vec<String>,
    /// Parameters to merge over the inherited ones (non-empty).
    pub parameters: Option<Map<String, Value>>,
    /// Replacement messages (non-empty), roles lower-cased.
    pub messages: Vec<Message>,
    /// Target file type, and the value as sent upper-cased (for the status line).
    pub quantize: Option<(FileType, String)>,
    /// The importance matrix blob to quantize with (only with `quantize`).
    pub imatrix: Option<Digest>,
    /// `imatrix_include` (non-empty only with `imatrix`).
    pub imatrix_include: Vec<String>,
    /// `imatrix_exclude` (non-empty only with `imatrix`, and never with `imatrix_include`).
    pub imatrix_exclude: Vec<String>,
    /// llama-quantize's per-tensor controls (set only with `quantize`).
    pub controls: Controls,
    /// Stream NDJSON.
    pub stream: bool,
    /// Renderer override.
    pub renderer: Option<String>,
    /// Parser override.
    pub parser: Option<String>,
    /// Minimum Ollama version.
    pub requires: Option<String>,
}

/// The per-tensor controls of a create: each needs `quantize`; names and patterns are checked.
fn controls(req: &CreateRequest, quantizing: bool) -> Result<Controls, Error> {
    let output = req.output_tensor_type.as_deref().filter(|t| !t.is_empty());
    let embd = req.token_embedding_type.as_deref().filter(|t| !t.is_empty());
    let rules = req.tensor_types.as_deref().unwrap_or_default();
    let pure = req.pure.unwrap_or(false);
    let leave = req.leave_output_tensor.unwrap_or(false);
    if !quantizing {
        let set = [
            ("output_tensor_type", output.is_some()),
            ("token_embedding_type", embd.is_some()),
            ("tensor_types", !rules.is_empty()),
            ("pure", pure),
            ("leave_output_tensor", leave),
        ];
        if let Some((field, _)) = set.into_iter().find(|(_, on)| *on) {
            return Err(Error::ControlWithoutQuantize(field));
        }
    }
    Controls::parse(output, embd, rules, pure, leave)
}

/// `imatrix_include` / `imatrix_exclude`: each needs `imatrix`, and not both.
fn imatrix_filters(req: &CreateRequest, with_imatrix: bool) -> Result<(Vec<String>, Vec<String>), Error> {
    let include = req.imatrix_include.clone().unwrap_or_default();
    let exclude = req.imatrix_exclude.clone().unwrap_or_default();
    if !with_imatrix {
        if !include.is_empty() {
            return Err(Error::ImatrixFilterWithoutImatrix("imatrix_include"));
        }
        if !exclude.is_empty() {
            return Err(Error::ImatrixFilterWithoutImatrix("imatrix_exclude"));
        }
    }
    if !include.is_empty() && !exclude.is_empty() {
        return Err(Error::ImatrixFilterBoth);
    }
    Ok((include, exclude))
}

/// Ollama's relative-path rule for `files` keys (§4.3).
#[must_use]
pub fn is_relative_path(key: &str) -> bool {
    if key == "." {
        return true;
    }
    !key.is_empty()
        && !key.starts_with('/')
        && !key.ends_with('/')
        && key.split('/').all(|p| !p.is_empty() && p != "." && p != "..")
}

fn check_files(files: Option<&alloc::collections::BTreeMap<String, String>>) -> Result<Vec<(String, Digest)>, Error> {
    let Some(files) = files else {
        return Ok(Vec::new());
    };
    if files.keys().any(|k| !is_relative_path(k)) {
        return Err(Error::FilePathNotRelative);
    }
    files.iter().map(|(k, d)| Ok((k.clone(), Digest::parse(d)?))).collect()
}

/// Ollama's test for a conversion: a key ending in `.safetensors`.
fn is_safetensors(key: &str) -> bool {
    key.ends_with(".safetensors")
}

/// PyTorch pickle checkpoints (`pytorch_model*.bin`, `consolidated*.pth`), which kiln does not
/// unpickle.
fn is_pytorch(key: &str) -> bool {
    let base = key.rsplit('/').next().unwrap_or(key);
    base.ends_with(".pth") || base.ends_with(".pt") || (base.starts_with("pytorch_model") && base.ends_with(".bin"))
}

/// Files of a Hugging Face directory that cannot be imported as GGUF.
fn is_hf_file(key: &str) -> bool {
    let base = key.rsplit('/').next().unwrap_or(key);
    is_safetensors(key) || base == "config.json" || base == "tokenizer.json" || base == "tokenizer.model"
}

fn is_remote(from: &str) -> bool {
    from.ends_with(":cloud") || from.rsplit_once(':').is_some_and(|(_, tag)| tag.ends_with("-cloud"))
}

/// The roles a create request's `messages` may use (checked lowercased): Ollama's chat roles.
/// The dashboard offers exactly these, so it cannot build a request this check refuses.
pub const MESSAGE_ROLES: &[&str] = &["system", "user", "assistant", "tool"];

/// Validates a create request.
///
/// # Errors
/// The first failing check, with Ollama's message where Ollama has one.
pub fn validate_create(req: &CreateRequest) -> Result<CreatePlan, Error> {
    let files = check_files(req.files.as_ref())?;
    let drafts = check_files(req.draft_files.as_ref())?;
    let adapters = check_files(req.adapters.as_ref())?;
    if req.draft_quantize.as_deref().is_some_and(|q| !q.is_empty()) && drafts.is_empty() {
        return Err(Error::DraftQuantizeWithoutDraft);
    }
    let raw_name = req.model.as_deref().filter(|m| !m.trim().is_empty()).or(req.name.as_deref());
    let raw_name = raw_name.filter(|m| !m.trim().is_empty()).ok_or(Error::ModelRequired)?;
    let name = ModelName::parse(raw_name).ok_or(Error::InvalidModelName)?;

    if !drafts.is_empty() {
        return Err(Error::DraftUnsupported);
    }
    if let Some(host) = req.remote_host.as_deref().filter(|h| !h.is_empty()) {
        return Err(Error::RemoteUnsupported(host.to_owned()));
    }
    let source = match req.from.as_deref().filter(|f| !f.is_empty()) {
        Some(from) if is_remote(from) => return Err(Error::RemoteUnsupported(from.to_owned())),
        Some(from) => {
            let from = from.strip_suffix(":local").unwrap_or(from);
            Source::From(ModelName::parse(from).ok_or(Error::InvalidModelName)?)
        }
        None if req.files.is_none() => return Err(Error::NeitherFromNorFiles),
        None if files.iter().any(|(k, _)| is_safetensors(k)) => Source::Hf(files),
        None if files.iter().any(|(k, _)| is_pytorch(k)) => return Err(Error::PytorchUnsupported),
        None if files.iter().any(|(k, _)| is_hf_file(k)) => return Err(Error::SafetensorsMissing),
        None if files.is_empty() => return Err(Error::UnknownType),
        None => Source::Files(files),
    };
    if adapters.len() > 1 {
        return Err(Error::TooManyAdapters);
    }
    if adapters.iter().any(|(k, _)| is_hf_file(k)) {
        return Err(Error::SafetensorsAdapter);
    }
    if let Some(t) = &req.template {
        check_template(t)?;
    }
    let licenses = match &req.license {
        None => Vec::new(),
        Some(License::One(s)) if s.is_empty() => Vec::new(),
        Some(License::One(s)) => alloc::vec![s.clone()],
        Some(License::Many(v)) => v.clone(),
    };
    let parameters = match &req.parameters {
        Some(p) if !p.is_empty() => {
            params::check_params(p)?;
            Some(p.clone())
        }
        _ => None,
    };
    let mut messages = req.messages.clone().unwrap_or_default();
    for (index, m) in messages.iter_mut().enumerate() {
        m.role = m.role.to_ascii_lowercase();
        if !MESSAGE_ROLES.contains(&m.role.as_str()) {
            return Err(Error::MessageRole { role: m.role.clone(), index });
        }
    }
    let quantize = match req.quantize.as_deref().or(req.quantization.as_deref()).filter(|q| !q.is_empty()) {
        Some(q) => Some((FileType::parse_quantize(q)?, q.to_ascii_uppercase())),
        None => None,
    };
    let imatrix = match req.imatrix.as_deref().filter(|d| !d.is_empty()) {
        Some(_) if quantize.is_none() => return Err(Error::ImatrixWithoutQuantize),
        Some(d) => Some(Digest::parse(d)?),
        None => None,
    };
    let controls = controls(req, quantize.is_some())?;
    let (imatrix_include, imatrix_exclude) = imatrix_filters(req, imatrix.is_some())?;
    let nonempty = |s: &Option<String>| s.clone().filter(|s| !s.is_empty());
    Ok(CreatePlan {
        name,
        source,
        adapters,
        template: req.template.clone(),
        system: nonempty(&req.system),
        licenses,
        parameters,
        messages,
        quantize,
        imatrix,
        imatrix_include,
        imatrix_exclude,
        controls,
        stream: req.stream.unwrap_or(true),
        renderer: nonempty(&req.renderer),
        parser: nonempty(&req.parser),
        requires: nonempty(&req.requires),
    })
}

/// Functions a Go template may call: text/template's builtins and Ollama's extras.
const FUNCS: &[&str] = &[
    "and",
    "call",
    "html",
    "index",
    "slice",
    "js",
    "len",
    "not",
    "or",
    "print",
    "printf",
    "println",
    "urlquery",
    "eq",
    "ge",
    "gt",
    "le",
    "lt",
    "ne",
    "json",
    "currentDate",
    "yesterdayDate",
    "toTypeScriptType",
];

fn template_err(line: usize, msg: &str) -> Error {
    Error::Template(format!("template: :{line}: {msg}"))
}

/// Checks that a Go `text/template` parses as far as kiln can tell without Go: actions closed,
/// `if`/`range`/`with`/`define`/`block` balanced by `end`, `else` inside a block, and every bare
/// identifier a known function (§4.6). The text is stored exactly as sent.
///
/// # Errors
/// [`Error::Template`] with Go-like wording.
pub fn check_template(t: &str) -> Result<(), Error> {
    let mut stack: Vec<&str> = Vec::new();
    let mut rest = t;
    let mut consumed = 0usize;
    let line_at = |pos: usize| t[..pos].matches('\n').count() + 1;
    while let Some(open) = rest.find("{{") {
        let start = consumed + open;
        let body_start = start + 2;
        let after = &t[body_start..];
        // Find the closing `}}` outside string literals.
        let mut end = None;
        let mut quote: Option<char> = None;
        let mut prev = '\0';
        for (i, c) in after.char_indices() {
            match quote {
                Some(q) if c == q && !(q == '"' && prev == '\\') => quote = None,
                Some(_) => {}
                None if c == '"' || c == '`' || c == '\'' => quote = Some(c),
                None if c == '}' && after[i..].starts_with("}}") => {
                    end = Some(i);
                    break;
                }
                None => {}
            }
            prev = if prev == '\\' && c == '\\' { '\0' } else { c };
        }
        let Some(end) = end else {
            return Err(template_err(line_at(start), "unclosed action"));
        };
        let mut body = after[..end].trim();
        body = body.strip_prefix('-').unwrap_or(body).trim_end();
        body = body.strip_suffix('-').unwrap_or(body).trim();
        if body.is_empty() {
            return Err(template_err(line_at(start), "missing value for command"));
        }
        if !body.starts_with("/*") {
            check_action(body, &mut stack).map_err(|m| template_err(line_at(start), &m))?;
        }
        consumed = body_start + end + 2;
        rest = &t[consumed..];
    }
    if let Some(open) = stack.last() {
        return Err(template_err(line_at(t.len()), &format!("unexpected EOF in {open}")));
    }
    Ok(())
}

fn check_action<'a>(body: &'a str, stack: &mut Vec<&'a str>) -> Result<(), String> {
    let first = body.split(|c: char| c.is_whitespace() || c == '(' || c == ')').next().unwrap_or("");
    match first {
        "if" | "range" | "with" | "define" | "block" => stack.push(first),
        "end" => {
            stack.pop().ok_or_else(|| "unexpected {{end}}".to_owned())?;
        }
        "else" if !matches!(stack.last(), Some(&("if" | "range" | "with"))) => {
            return Err("unexpected {{else}}".into());
        }
        _ => {}
    }
    // Every pipeline stage that starts with a bare identifier calls a function.
    let keyword_free = match first {
        "if" | "range" | "with" | "else" | "end" | "template" | "block" | "define" | "break" | "continue" => {
            body[first.len()..].trim_start()
        }
        _ => body,
    };
    let keyword_free = keyword_free.strip_prefix("if ").unwrap_or(keyword_free);
    for stage in keyword_free.split('|') {
        let word = stage.trim().trim_start_matches('(');
        let ident: String = word.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
        let is_ident = word.chars().next().is_some_and(|c| c.is_alphabetic() || c == '_');
        if is_ident && !matches!(ident.as_str(), "nil" | "true" | "false") && !FUNCS.contains(&ident.as_str()) {
            if first == "template" || first == "define" || first == "block" {
                continue;
            }
            return Err(format!("function \"{ident}\" not defined"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    fn req(json: &str) -> CreateRequest {
        serde_json::from_str(json).unwrap()
    }

    fn err(json: &str) -> String {
        validate_create(&req(json)).unwrap_err().to_string()
    }

    #[test]
    fn full_request_becomes_a_plan() {
        let p = validate_create(&req(r#"{"model":"m","from":"base:1b","system":"s","license":["MIT","MIT"],
            "parameters":{"temperature":0.5,"stop":["a"]},"messages":[{"role":"User","content":"hi"}],
            "quantize":"q4_K_M","stream":false,"extra":1}"#))
        .unwrap();
        assert_eq!(p.name.short(), "m:latest");
        assert_eq!(p.source, Source::From(ModelName::parse("base:1b").unwrap()));
        assert_eq!(p.licenses.len(), 2);
        assert_eq!(p.messages[0].role, "user");
        assert_eq!(p.quantize, Some((FileType::Q4_K_M, "Q4_K_M".to_owned())));
        assert!(!p.stream);
    }

    #[test]
    fn bad_input_table() {
        let d = "sha256:".to_owned() + &"a".repeat(64);
        assert_eq!(err(r#"{"from":"x"}"#), "model is required");
        assert_eq!(err(r#"{"model":"  ","from":"x"}"#), "model is required");
        for bad in ["../x", "a/b/c/d", "m:", "a b", &"x".repeat(81)] {
            assert_eq!(err(&format!(r#"{{"model":"{bad}","from":"x"}}"#)), "invalid model name", "{bad}");
        }
        assert_eq!(err(r#"{"model":"m","from":"../x"}"#), "invalid model name");
        assert_eq!(err(r#"{"model":"m"}"#), "neither 'from' or 'files' was specified");
        assert_eq!(err(r#"{"model":"m","files":{}}"#), "unknown type");
        assert_eq!(err(&format!(r#"{{"model":"m","files":{{"/abs.gguf":"{d}"}}}}"#)), "file path must be relative");
        assert_eq!(err(&format!(r#"{{"model":"m","files":{{"a/../b.gguf":"{d}"}}}}"#)), "file path must be relative");
        assert_eq!(err(r#"{"model":"m","files":{"a.gguf":""}}"#), "invalid digest format");
        assert_eq!(err(r#"{"model":"m","files":{"a.gguf":"sha256:zz"}}"#), "invalid digest format");
        assert!(
            err(&format!(r#"{{"model":"m","files":{{"config.json":"{d}"}}}}"#)).starts_with("no .safetensors files")
        );
        assert!(
            err(&format!(
                r#"{{"model":"m","files":{{"a.gguf":"{d}"}},"adapters":{{"adapter_model.safetensors":"{d}"}}}}"#
            ))
            .starts_with("safetensors adapters are not supported")
        );
        assert_eq!(
            err(r#"{"model":"m","from":"x","parameters":{"temprature":1}}"#),
            "unknown parameter 'temprature'; did you mean 'temperature'?"
        );
        assert!(err(r#"{"model":"m","from":"x","parameters":{"top_k":"ten"}}"#).contains("'top_k'"));
        assert!(err(r#"{"model":"m","from":"x","messages":[{"role":"robot","content":"x"}]}"#).contains("'robot'"));
        assert!(err(r#"{"model":"m","from":"x","quantize":"q9_9"}"#).starts_with("unsupported quantization type Q9_9"));
        assert!(err(r#"{"model":"m","from":"gpt-oss:20b-cloud"}"#).starts_with("remote models"));
        assert_eq!(
            err(r#"{"model":"m","from":"x","draft_quantize":"q8_0"}"#),
            "--draft-quantize requires a DRAFT model"
        );
        assert_eq!(
            err(r#"{"model":"m","from":"x","template":"{{ .Prompt"}"#),
            "template error: template: :1: unclosed action"
        );
    }

    #[test]
    fn templates() {
        for ok in [
            "{{ .Prompt }}",
            "{{ .System }} {{ .Prompt }}",
            "{{- if .System }}<|system|>{{ .System }}{{ end -}}{{ range .Messages }}{{ .Content }}{{ end }}",
            "{{ if .Tools }}{{ json .Tools }}{{ else if .System }}x{{ else }}y{{ end }}",
            "{{/* comment */}}{{ \"}}\" }}{{ $x := .Prompt }}{{ $x }}",
            "{{ range $i, $m := .Messages }}{{ if eq $m.Role \"user\" }}{{ $m.Content }}{{ end }}{{ end }}",
            "no actions at all",
        ] {
            assert_eq!(check_template(ok), Ok(()), "{ok}");
        }
        for (bad, msg) in [
            ("{{ .Prompt", "unclosed action"),
            ("{{ if .Prompt }}", "unexpected EOF"),
            ("{{ Prompt }}", "function \"Prompt\" not defined"),
            ("{{ end }}", "unexpected {{end}}"),
            ("{{ else }}", "unexpected {{else}}"),
        ] {
            let e = check_template(bad).unwrap_err().to_string();
            assert!(e.contains(msg), "{bad}: {e}");
        }
    }

    #[test]
    fn per_tensor_controls_are_checked() {
        let p = validate_create(&req(r#"{"model":"m","from":"x","quantize":"q4_K_M","tensor_types":["attn_v=q8_0","ATTN=Q6_K"],"pure":true,"token_embedding_type":"q5_1"}"#)).unwrap();
        assert_eq!(p.controls.tensor_types.iter().map(|r| r.pattern.as_str()).collect::<Vec<_>>(), ["attn_v", "attn"]);
        assert!(p.controls.pure && !p.controls.leave_output_tensor);
        assert_eq!(p.controls.token_embedding_type, Some(crate::ggml_type::GgmlType::Q5_1));
        for (body, want) in [
            (r#""pure":true"#, "pure needs quantize"),
            (r#""tensor_types":["attn_v=q8_0"]"#, "tensor_types needs quantize"),
            (r#""leave_output_tensor":true"#, "leave_output_tensor needs quantize"),
            (r#""output_tensor_type":"q8_0""#, "output_tensor_type needs quantize"),
            (
                r#""quantize":"q4_0","tensor_types":["attn_q=nvfp4"]"#,
                "tensor_types[0]: kiln cannot quantize to NVFP4",
            ),
            (
                r#""quantize":"q4_0","tensor_types":["attn_q=q8_0","(=q8_0"]"#,
                "tensor_types[1]: '(' is not a valid regular expression",
            ),
            (r#""quantize":"q4_0","token_embedding_type":"q7""#, "token_embedding_type: unknown type 'q7'"),
            (r#""quantize":"q4_0","imatrix_include":["attn"]"#, "imatrix_include needs imatrix"),
            (
                r#""quantize":"q4_0","imatrix":"sha256:0000000000000000000000000000000000000000000000000000000000000000","imatrix_include":["a"],"imatrix_exclude":["b"]"#,
                "imatrix_include and imatrix_exclude cannot be used together",
            ),
        ] {
            let e = err(&format!(r#"{{"model":"m","from":"x",{body}}}"#));
            assert!(e.starts_with(want), "{body}: {e}");
        }
        let p = validate_create(&req(r#"{"model":"m","from":"x","pure":false,"tensor_types":[]}"#)).unwrap();
        assert!(p.controls.is_empty());
    }
}
