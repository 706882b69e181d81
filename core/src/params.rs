//! `parameters` keys and their JSON types (`shared/spec/ollama-api.md` §4.7, Ollama's
//! `api/types.go` `Options` + `Runner`). Ollama stores whatever it is sent; kiln rejects unknown
//! keys and wrong types up front, since a typo silently ignored is a bug for the user.

use alloc::borrow::ToOwned;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use serde_json::{Map, Value};

use crate::Error;
use crate::error::clip;

/// The JSON type a parameter takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamType {
    /// A whole number.
    Int,
    /// Any number.
    Float,
    /// `true`/`false`.
    Bool,
    /// An array of strings.
    StringList,
}

impl ParamType {
    /// How an error names this type.
    #[must_use]
    pub fn describe(self) -> &'static str {
        match self {
            Self::Int => "an integer",
            Self::Float => "a number",
            Self::Bool => "a boolean",
            Self::StringList => "an array of strings",
        }
    }
}

/// Every parameter kiln accepts: today's options, plus the deprecated ones old clients and
/// `ollama-python`'s `Options` still send. The bool says whether `null` is allowed.
pub const PARAMETERS: &[(&str, ParamType, bool)] = &[
    ("num_ctx", ParamType::Int, false),
    ("num_batch", ParamType::Int, false),
    ("num_gpu", ParamType::Int, false),
    ("main_gpu", ParamType::Int, true),
    ("use_mmap", ParamType::Bool, true),
    ("num_thread", ParamType::Int, false),
    ("draft_num_predict", ParamType::Int, false),
    ("num_keep", ParamType::Int, false),
    ("seed", ParamType::Int, false),
    ("num_predict", ParamType::Int, false),
    ("top_k", ParamType::Int, false),
    ("top_p", ParamType::Float, false),
    ("min_p", ParamType::Float, false),
    ("typical_p", ParamType::Float, false),
    ("repeat_last_n", ParamType::Int, false),
    ("temperature", ParamType::Float, false),
    ("repeat_penalty", ParamType::Float, false),
    ("presence_penalty", ParamType::Float, false),
    ("frequency_penalty", ParamType::Float, false),
    ("stop", ParamType::StringList, false),
    // Deprecated, still sent by older clients.
    ("numa", ParamType::Bool, false),
    ("tfs_z", ParamType::Float, false),
    ("embedding_only", ParamType::Bool, false),
    ("penalize_newline", ParamType::Bool, false),
    ("low_vram", ParamType::Bool, false),
    ("f16_kv", ParamType::Bool, false),
    ("logits_all", ParamType::Bool, false),
    ("vocab_only", ParamType::Bool, false),
    ("use_mlock", ParamType::Bool, false),
    ("mirostat", ParamType::Int, false),
    ("mirostat_tau", ParamType::Float, false),
    ("mirostat_eta", ParamType::Float, false),
];

/// The type of a known parameter.
#[must_use]
pub fn param_type(key: &str) -> Option<ParamType> {
    PARAMETERS.iter().find(|(k, _, _)| *k == key).map(|&(_, t, _)| t)
}

fn describe_value(v: &Value) -> String {
    match v {
        Value::Null => "null".to_owned(),
        Value::Bool(_) => "a boolean".to_owned(),
        Value::Number(n) if n.is_f64() => format!("the number {n}"),
        Value::Number(_) => "an integer".to_owned(),
        Value::String(s) => format!("the string {:?}", clip(s)),
        Value::Array(_) => "an array".to_owned(),
        Value::Object(_) => "an object".to_owned(),
    }
}

/// Edit distance, for "did you mean" hints.
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = alloc::vec![i + 1; b.len() + 1];
        for (j, &cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != cb);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// A hint is at most this many edits away.
const HINT_DISTANCE: usize = 3;

/// `; did you mean 'x'?` for a near miss, or empty. The edit distance costs the key's length
/// times the candidate's, so a key longer than every parameter by more than the hint distance
/// (which no parameter can be near) is not compared at all.
fn hint(key: &str) -> String {
    let longest = PARAMETERS.iter().map(|(k, _, _)| k.len()).max().unwrap_or(0);
    if key.len() > longest + HINT_DISTANCE {
        return String::new();
    }
    PARAMETERS
        .iter()
        .map(|(k, _, _)| (distance(&key.to_ascii_lowercase(), k), *k))
        .min()
        .filter(|(d, _)| *d <= HINT_DISTANCE)
        .map_or_else(String::new, |(_, k)| format!("; did you mean '{k}'?"))
}

/// Checks one parameter.
///
/// # Errors
/// [`Error::UnknownParameter`] or [`Error::ParameterType`].
pub fn check_param(key: &str, value: &Value) -> Result<(), Error> {
    let Some(&(_, ty, nullable)) = PARAMETERS.iter().find(|(k, _, _)| *k == key) else {
        return Err(Error::UnknownParameter { key: clip(key).into_owned(), hint: hint(key) });
    };
    let ok = match (ty, value) {
        (_, Value::Null) => nullable,
        (ParamType::Int, Value::Number(n)) => {
            n.is_i64()
                || n.is_u64()
                || n.as_f64().is_some_and(|f| f.is_finite() && f.abs() < 9.0e15 && f == (f as i64) as f64)
        }
        (ParamType::Float, Value::Number(_)) | (ParamType::Bool, Value::Bool(_)) => true,
        (ParamType::StringList, Value::Array(items)) => items.iter().all(Value::is_string),
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(Error::ParameterType { key: clip(key).into_owned(), expected: ty.describe(), got: describe_value(value) })
    }
}

/// Checks every parameter of a `parameters` object, in key order.
///
/// # Errors
/// The first failing key's error.
pub fn check_params(params: &Map<String, Value>) -> Result<(), Error> {
    params.iter().try_for_each(|(k, v)| check_param(k, v))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn accepts_known_types() {
        for (k, v) in [
            ("temperature", json!(0.6)),
            ("temperature", json!(1)),
            ("num_ctx", json!(4096)),
            ("num_ctx", json!(2048.0)),
            ("stop", json!(["a", "b"])),
            ("use_mmap", json!(null)),
            ("numa", json!(true)),
        ] {
            assert_eq!(check_param(k, &v), Ok(()), "{k}={v}");
        }
    }

    #[test]
    fn rejects_unknown_and_wrong_types() {
        let e = check_param("tempurature", &json!(1)).unwrap_err();
        assert_eq!(e.to_string(), "unknown parameter 'tempurature'; did you mean 'temperature'?");
        let e = check_param("num_ctx", &json!("4096")).unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid value for parameter 'num_ctx': expected an integer, got the string \"4096\""
        );
        assert!(check_param("num_ctx", &json!(1.5)).is_err());
        assert!(check_param("stop", &json!("x")).is_err());
        assert!(check_param("stop", &json!([1])).is_err());
        assert!(check_param("top_k", &json!(null)).is_err());
        assert!(check_param("zzzzzzzzzz", &json!(1)).unwrap_err().to_string().ends_with("'zzzzzzzzzz'"));
    }

    #[test]
    fn huge_keys_cost_little_and_are_not_echoed_whole() {
        let key = "temperature".repeat(1 << 17);
        let t0 = std::time::Instant::now();
        let e = check_param(&key, &json!(1)).unwrap_err().to_string();
        assert!(t0.elapsed() < std::time::Duration::from_millis(200), "{:?}", t0.elapsed());
        assert!(e.len() < 120 && e.ends_with("…'"), "{e}");
        // A near miss within the hint distance of the longest key still gets its hint.
        let e = check_param("draft_num_predictxyz", &json!(1)).unwrap_err().to_string();
        assert!(e.ends_with("did you mean 'draft_num_predict'?"), "{e}");
        let e = check_param("num_ctx", &json!("x".repeat(1000))).unwrap_err().to_string();
        assert!(e.len() < 160, "{e}");
    }
}
