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
        if let Some(body) = r.strip_prefix('"') {
            let mut out = String::new();
            let mut chars = body.char_indices();
            while let Some((i, c)) = chars.next() {
                match c {
                    '"' => {
                        self.pos = start + 1 + i + 1;
                        self.line_end()?;
                        return Ok(out);
                    }
                    '\\' => match chars.next() {
                        Some((_, '"')) => out.push('"'),
                        Some((_, '\\')) => out.push('\\'),
                        Some((_, 'n')) => out.push('\n'),
                        Some((_, 't')) => out.push('\t'),
                        Some((_, other)) => {
                            out.push('\\');
                            out.push(other);
                        }
                        None => break,
                    },
                    '\n' => break,
                    c => out.push(c),
                }
            }
            return Err(self.err(start, "unterminated quoted string"));
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

/// Parses a Modelfile into a create request (without `model`: the name comes from elsewhere).
///
/// # Errors
/// The first syntax error, with its line and column.
#[expect(clippy::too_many_lines, reason = "one match arm per Modelfile directive, read top to bottom like the grammar")]
pub fn parse_modelfile(text: &str) -> Result<CreateRequest, ModelfileError> {
    let mut c = Cursor { text, pos: 0 };
    let mut req = CreateRequest::default();
    let mut licenses: Vec<String> = Vec::new();
    let mut parameters: Map<String, Value> = Map::new();
    let mut messages: Vec<Message> = Vec::new();
    let mut adapters: BTreeMap<String, String> = BTreeMap::new();
    while c.pos < text.len() {
        c.skip_blanks();
        let r = c.rest();
        if r.is_empty() {
            break;
        }
        if r.starts_with('\n') || r.starts_with("\r\n") || r.starts_with('#') {
            let n = r.find('\n').map_or(r.len(), |n| n + 1);
            c.pos += n;
            continue;
        }
        let cmd_at = c.pos;
        let cmd = c.word().to_ascii_uppercase();
        let arg_at = {
            c.skip_blanks();
            c.pos
        };
        match cmd.as_str() {
            "FROM" => {
                let v = c.value()?;
                if v.is_empty() {
                    return Err(c.err(arg_at, "FROM needs a model name"));
                }
                let lower = v.to_ascii_lowercase();
                if lower.ends_with(".gguf") || lower.ends_with(".safetensors") || v.starts_with(['.', '/', '~']) {
                    return Err(c.err(
                        arg_at,
                        format!("FROM {v} names a file: choose the file in the GGUF field instead (the browser cannot read paths)"),
                    ));
                }
                req.from = Some(v);
            }
            "ADAPTER" => {
                let v = c.value()?;
                match v.strip_prefix("sha256:").or_else(|| v.strip_prefix("sha256-")) {
                    Some(_) => {
                        adapters.insert("adapter.gguf".into(), v);
                    }
                    None => {
                        return Err(c.err(arg_at, "ADAPTER names a file: upload it and use its sha256 digest instead"));
                    }
                }
            }
            "TEMPLATE" => req.template = Some(c.value()?),
            "SYSTEM" => req.system = Some(c.value()?),
            "LICENSE" => licenses.push(c.value()?),
            "REQUIRES" => req.requires = Some(c.value()?),
            "RENDERER" => req.renderer = Some(c.value()?),
            "PARSER" => req.parser = Some(c.value()?),
            "PARAMETER" => {
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
                    let entry = parameters.entry("stop").or_insert_with(|| Value::Array(Vec::new()));
                    if let Value::Array(items) = entry {
                        items.push(v);
                    }
                } else {
                    parameters.insert(key, v);
                }
            }
            "MESSAGE" => {
                let role_at = c.pos;
                let role = c.word().to_ascii_lowercase();
                if !matches!(role.as_str(), "system" | "user" | "assistant") {
                    return Err(c.err(role_at, "message role must be one of \"system\", \"user\", or \"assistant\""));
                }
                let content = c.value()?;
                messages.push(Message {
                    role,
                    content,
                    thinking: None,
                    images: None,
                    tool_calls: None,
                    tool_name: None,
                    tool_call_id: None,
                });
            }
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
        let _ = arg_at;
    }
    if !licenses.is_empty() {
        req.license =
            Some(if licenses.len() == 1 { License::One(licenses.remove(0)) } else { License::Many(licenses) });
    }
    if !parameters.is_empty() {
        req.parameters = Some(parameters);
    }
    if !messages.is_empty() {
        req.messages = Some(messages);
    }
    if !adapters.is_empty() {
        req.adapters = Some(adapters);
    }
    Ok(req)
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
    }
}
