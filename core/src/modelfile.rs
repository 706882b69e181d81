//! Modelfile text → [`CreateRequest`] (Ollama's `parser/parser.go` syntax): `FROM`, `PARAMETER`,
//! `TEMPLATE`, `SYSTEM`, `ADAPTER`, `LICENSE`, `MESSAGE`, `REQUIRES`, `RENDERER`, `PARSER`;
//! commands are case-insensitive, `#` starts a comment line, and a value is the rest of the line,
//! a `"…"` string, or a `"""…"""` block that may span lines. Errors carry a 1-based line and
//! column. The result still goes through [`crate::validate`], like any request.

use alloc::borrow::ToOwned;
use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use serde_json::{Map, Value};

use crate::params::{self, ParamType};
use crate::request::{CreateRequest, License, Message};

/// A Modelfile syntax error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, serde::Serialize)]
#[error("line {line}, column {column}: {message}")]
pub struct ModelfileError {
    /// 1-based line.
    pub line: usize,
    /// 1-based column (in characters).
    pub column: usize,
    /// What is wrong.
    pub message: String,
}

struct Cursor<'a> {
    text: &'a str,
    pos: usize,
}

impl Cursor<'_> {
    fn err(&self, at: usize, message: impl Into<String>) -> ModelfileError {
        let before = &self.text[..at.min(self.text.len())];
        let line = before.matches('\n').count() + 1;
        let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        ModelfileError { line, column, message: message.into() }
    }

    fn rest(&self) -> &str {
        &self.text[self.pos..]
    }

    fn skip_blanks(&mut self) {
        let r = self.rest();
        self.pos += r.len() - r.trim_start_matches([' ', '\t']).len();
    }

    /// A word up to whitespace.
    fn word(&mut self) -> &str {
        let start = self.pos;
        let r = self.rest();
        let n = r.find(|c: char| c.is_whitespace()).unwrap_or(r.len());
        self.pos += n;
        &self.text[start..start + n]
    }

    fn line_end(&mut self) -> Result<(), ModelfileError> {
        self.skip_blanks();
        let r = self.rest();
        if r.is_empty() {
            return Ok(());
        }
        if let Some(stripped) = r.strip_prefix("\r\n").or_else(|| r.strip_prefix('\n')) {
            self.pos = self.text.len() - stripped.len();
            return Ok(());
        }
        Err(self.err(self.pos, "unexpected text after the closing quote"))
    }

    /// The value: `"""block"""`, `"string"`, or the rest of the line.
    fn value(&mut self) -> Result<String, ModelfileError> {
        self.skip_blanks();
        let start = self.pos;
        let r = self.rest();
        if let Some(body) = r.strip_prefix("\"\"\"") {
            let end = body.find("\"\"\"").ok_or_else(|| self.err(start, "unterminated \"\"\" block"))?;
            let v = body[..end].to_string();
            self.pos = start + 3 + end + 3;
            self.line_end()?;
            return Ok(v);
        }
        // As Ollama: no escape sequences, and a quoted value may span lines (so the text
        // `show --modelfile` prints reads back unchanged).
        if let Some(body) = r.strip_prefix('"') {
            let end = body.find('"').ok_or_else(|| self.err(start, "unterminated quoted string"))?;
            let v = body[..end].to_string();
            self.pos = start + 1 + end + 1;
            self.line_end()?;
            return Ok(v);
        }
        let n = r.find('\n').unwrap_or(r.len());
        let v = r[..n].trim_end_matches('\r').trim().to_owned();
        self.pos += n;
        if self.rest().starts_with('\n') {
            self.pos += 1;
        }
        Ok(v)
    }
}

fn typed_param(key: &str, raw: &str) -> Option<Value> {
    Some(match params::param_type(key)? {
        ParamType::Int => Value::from(raw.parse::<i64>().ok()?),
        ParamType::Float => Value::from(raw.parse::<f64>().ok()?),
        ParamType::Bool => Value::Bool(raw.parse::<bool>().ok()?),
        ParamType::StringList => Value::String(raw.to_owned()),
    })
}

/// What `FROM` and `ADAPTER` may name: the browser cannot read paths, a command line can.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Browser,
    Paths,
}

/// A Modelfile parsed for a command line: the request, plus the `FROM` and `ADAPTER` values as
/// written, for the caller to resolve against the file system (a path that exists is a file or
/// folder to upload; otherwise a `FROM` value is a model name).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ModelfileWithPaths {
    /// Everything but the sources: `from` is the last `FROM` value, `adapters` is unset.
    pub request: CreateRequest,
    /// Every `FROM` value, in order (Ollama merges several into one file map).
    pub from: Vec<String>,
    /// The last `ADAPTER` value (Ollama uses only the last).
    pub adapter: Option<String>,
}

/// The request being built, one method per directive.
struct Builder {
    mode: Mode,
    req: CreateRequest,
    licenses: Vec<String>,
    parameters: Map<String, Value>,
    messages: Vec<Message>,
    adapters: BTreeMap<String, String>,
    from: Vec<String>,
    adapter: Option<String>,
}

impl Builder {
    fn source(&mut self, c: &mut Cursor<'_>, arg_at: usize) -> Result<(), ModelfileError> {
        let v = c.value()?;
        if v.is_empty() {
            return Err(c.err(arg_at, "FROM needs a model name"));
        }
        let lower = v.to_ascii_lowercase();
        let names_file = lower.ends_with(".gguf") || lower.ends_with(".safetensors") || v.starts_with(['.', '/', '~']);
        if self.mode == Mode::Browser && names_file {
            return Err(c.err(
                arg_at,
                format!(
                    "FROM {v} names a file: choose the file in the GGUF field instead (the browser cannot read paths)"
                ),
            ));
        }
        self.from.push(v.clone());
        self.req.from = Some(v);
        Ok(())
    }

    fn adapter(&mut self, c: &mut Cursor<'_>, arg_at: usize) -> Result<(), ModelfileError> {
        let v = c.value()?;
        if self.mode == Mode::Paths {
            if v.is_empty() {
                return Err(c.err(arg_at, "ADAPTER needs a file"));
            }
            self.adapter = Some(v);
            return Ok(());
        }
        if v.strip_prefix("sha256:").or_else(|| v.strip_prefix("sha256-")).is_none() {
            return Err(c.err(arg_at, "ADAPTER names a file: upload it and use its sha256 digest instead"));
        }
        self.adapters.insert("adapter.gguf".into(), v);
        Ok(())
    }

    fn parameter(&mut self, c: &mut Cursor<'_>) -> Result<(), ModelfileError> {
        let key_at = c.pos;
        let key = c.word().to_owned();
        if key.is_empty() {
            return Err(c.err(key_at, "PARAMETER needs a name and a value"));
        }
        let value_at = {
            c.skip_blanks();
            c.pos
        };
        let raw = c.value()?;
        if params::param_type(&key).is_none() {
            let e = params::check_param(&key, &Value::Null).err().map_or_else(String::new, |e| e.to_string());
            return Err(c.err(key_at, e));
        }
        if raw.is_empty() {
            return Err(c.err(value_at, format!("PARAMETER {key} needs a value")));
        }
        let v = typed_param(&key, &raw).ok_or_else(|| {
            let ty = params::param_type(&key).map_or("a value", ParamType::describe);
            c.err(value_at, format!("invalid value for parameter '{key}': expected {ty}, got {raw:?}"))
        })?;
        if key == "stop" {
            let entry = self.parameters.entry("stop").or_insert_with(|| Value::Array(Vec::new()));
            if let Value::Array(items) = entry {
                items.push(v);
            }
        } else {
            self.parameters.insert(key, v);
        }
        Ok(())
    }

    fn message(&mut self, c: &mut Cursor<'_>) -> Result<(), ModelfileError> {
        let role_at = c.pos;
        let role = c.word().to_ascii_lowercase();
        if !matches!(role.as_str(), "system" | "user" | "assistant") {
            return Err(c.err(role_at, "message role must be one of \"system\", \"user\", or \"assistant\""));
        }
        let content = c.value()?;
        self.messages.push(Message {
            role,
            content,
            thinking: None,
            images: None,
            tool_calls: None,
            tool_name: None,
            tool_call_id: None,
        });
        Ok(())
    }

    /// One command starting at the cursor (blank lines and comments already skipped).
    fn command(&mut self, c: &mut Cursor<'_>) -> Result<(), ModelfileError> {
        let cmd_at = c.pos;
        let cmd = c.word().to_ascii_uppercase();
        c.skip_blanks();
        let arg_at = c.pos;
        match cmd.as_str() {
            "FROM" => self.source(c, arg_at)?,
            "ADAPTER" => self.adapter(c, arg_at)?,
            "TEMPLATE" => self.req.template = Some(c.value()?),
            "SYSTEM" => self.req.system = Some(c.value()?),
            "LICENSE" => self.licenses.push(c.value()?),
            "REQUIRES" => self.req.requires = Some(c.value()?),
            "RENDERER" => self.req.renderer = Some(c.value()?),
            "PARSER" => self.req.parser = Some(c.value()?),
            "PARAMETER" => self.parameter(c)?,
            "MESSAGE" => self.message(c)?,
            "" => return Err(c.err(cmd_at, "expected a command")),
            other => {
                return Err(c.err(
                    cmd_at,
                    format!(
                        "unknown command {other}: must be one of FROM, PARAMETER, TEMPLATE, SYSTEM, ADAPTER, LICENSE, MESSAGE, REQUIRES, RENDERER or PARSER"
                    ),
                ));
            }
        }
        Ok(())
    }

    fn finish(mut self) -> (CreateRequest, Vec<String>, Option<String>) {
        let mut req = self.req;
        if !self.licenses.is_empty() {
            req.license = Some(if self.licenses.len() == 1 {
                License::One(self.licenses.remove(0))
            } else {
                License::Many(self.licenses)
            });
        }
        req.parameters = (!self.parameters.is_empty()).then_some(self.parameters);
        req.messages = (!self.messages.is_empty()).then_some(self.messages);
        req.adapters = (!self.adapters.is_empty()).then_some(self.adapters);
        (req, self.from, self.adapter)
    }
}

fn parse(text: &str, mode: Mode) -> Result<Builder, ModelfileError> {
    let mut c = Cursor { text, pos: 0 };
    let mut b = Builder {
        mode,
        req: CreateRequest::default(),
        licenses: Vec::new(),
        parameters: Map::new(),
        messages: Vec::new(),
        adapters: BTreeMap::new(),
        from: Vec::new(),
        adapter: None,
    };
    while c.pos < text.len() {
        c.skip_blanks();
        let r = c.rest();
        if r.is_empty() {
            break;
        }
        if r.starts_with('\n') || r.starts_with("\r\n") || r.starts_with('#') {
            c.pos += r.find('\n').map_or(r.len(), |n| n + 1);
            continue;
        }
        b.command(&mut c)?;
    }
    Ok(b)
}

/// Parses a Modelfile into a create request (without `model`: the name comes from elsewhere), for
/// the browser: `FROM` must be a model name and `ADAPTER` a digest, since a page cannot read paths.
///
/// # Errors
/// The first syntax error, with its line and column.
pub fn parse_modelfile(text: &str) -> Result<CreateRequest, ModelfileError> {
    Ok(parse(text, Mode::Browser)?.finish().0)
}

/// Parses a Modelfile for a command line: `FROM` and `ADAPTER` values are returned as written, for
/// the caller to resolve as paths (relative to the Modelfile) or, for `FROM`, a model name.
///
/// # Errors
/// The first syntax error, with its line and column; a Modelfile without `FROM` fails at 1:1.
pub fn parse_modelfile_paths(text: &str) -> Result<ModelfileWithPaths, ModelfileError> {
    let (request, from, adapter) = parse(text, Mode::Paths)?.finish();
    if from.is_empty() {
        return Err(ModelfileError {
            line: 1,
            column: 1,
            message: "no FROM line: add `FROM <model name, .gguf file or model folder>`".to_owned(),
        });
    }
    Ok(ModelfileWithPaths { request, from, adapter })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn full_modelfile() {
        let text = "# a comment\nFROM llama3.2:1b\nPARAMETER temperature 0.7\nparameter stop \"<|end|>\"\nPARAMETER stop USER:\nPARAMETER num_ctx 4096\nTEMPLATE \"\"\"{{ .System }}\n{{ .Prompt }}\"\"\"\nSYSTEM You are \"Mario\".\nLICENSE MIT\nLICENSE \"\"\"Apache\nLicense\"\"\"\nMESSAGE user Who are you?\nMESSAGE assistant \"It's-a me!\"\n";
        let r = parse_modelfile(text).unwrap();
        assert_eq!(r.from.as_deref(), Some("llama3.2:1b"));
        assert_eq!(r.template.as_deref(), Some("{{ .System }}\n{{ .Prompt }}"));
        assert_eq!(r.system.as_deref(), Some("You are \"Mario\"."));
        assert_eq!(r.license, Some(License::Many(alloc::vec!["MIT".into(), "Apache\nLicense".into()])));
        assert_eq!(
            Value::Object(r.parameters.unwrap()),
            json!({"temperature": 0.7, "stop": ["<|end|>", "USER:"], "num_ctx": 4096})
        );
        let m = r.messages.unwrap();
        assert_eq!((m[0].role.as_str(), m[0].content.as_str()), ("user", "Who are you?"));
        assert_eq!(m[1].content, "It's-a me!");
    }

    #[test]
    fn errors_have_positions() {
        let e = parse_modelfile("FROM x\nPARAMETER tempurature 1\n").unwrap_err();
        assert_eq!((e.line, e.column), (2, 11));
        assert!(e.message.contains("did you mean 'temperature'"), "{}", e.message);
        let e = parse_modelfile("FROM x\nPARAMETER num_ctx lots\n").unwrap_err();
        assert_eq!((e.line, e.column), (2, 19));
        let e = parse_modelfile("FROM x\nTEMPLATE \"\"\"never closed\n").unwrap_err();
        assert_eq!((e.line, e.column, e.message.as_str()), (2, 10, "unterminated \"\"\" block"));
        let e = parse_modelfile("FROM x\n  BOGUS y\n").unwrap_err();
        assert_eq!((e.line, e.column), (2, 3));
        let e = parse_modelfile("MESSAGE robot hi\n").unwrap_err();
        assert_eq!((e.line, e.column), (1, 9));
        let e = parse_modelfile("FROM ./model.gguf\n").unwrap_err();
        assert!(e.message.contains("GGUF field"));
        let e = parse_modelfile("SYSTEM \"a\" b\n").unwrap_err();
        assert_eq!((e.line, e.column), (1, 12));
        let e = parse_modelfile("FROM x\nSYSTEM \"never\nclosed\n").unwrap_err();
        assert_eq!((e.line, e.column, e.message.as_str()), (2, 8, "unterminated quoted string"));
    }

    #[test]
    fn quoted_values_span_lines_without_escapes() {
        let r = parse_modelfile("FROM x\nLICENSE \"two\nlines\"\nSYSTEM \"C:\\new\"\n").unwrap();
        assert_eq!(r.license, Some(License::One("two\nlines".into())));
        assert_eq!(r.system.as_deref(), Some("C:\\new"));
    }

    #[test]
    fn paths_mode_returns_sources() {
        let m = parse_modelfile_paths(
            "FROM ./model.gguf\nFROM ~/proj.gguf\nADAPTER a.gguf\nADAPTER b.gguf\r\nSYSTEM hi\r\n",
        )
        .unwrap();
        assert_eq!(m.from, ["./model.gguf", "~/proj.gguf"]);
        assert_eq!(m.adapter.as_deref(), Some("b.gguf"));
        assert_eq!(m.request.system.as_deref(), Some("hi"));
        assert_eq!(m.request.adapters, None);
        let e = parse_modelfile_paths("SYSTEM hi\n").unwrap_err();
        assert_eq!((e.line, e.column), (1, 1));
        let e = parse_modelfile_paths("FROM x\nADAPTER\n").unwrap_err();
        assert_eq!((e.line, e.column), (2, 8));
    }
}
