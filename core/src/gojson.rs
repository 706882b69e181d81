//! JSON encoded the way Go's `encoding/json` encoder does (`shared/spec/ollama-api.md` §5.5), so
//! config, params and messages blobs get the same bytes — and the same digests — as Ollama's:
//! compact, map keys sorted byte-wise, `<`, `>`, `&`, U+2028 and U+2029 escaped, numbers printed
//! as Go prints a float64, one trailing `\n` added by [`encode_line`].

use alloc::string::String;
use core::fmt::Write as _;

use serde_json::Value;

/// Appends `s` as a JSON string literal with Go's escaping.
pub fn write_str(out: &mut String, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '<' | '>' | '&' | '\u{0}'..='\u{1f}' => {
                let b = c as u32;
                out.push_str("\\u00");
                out.push(char::from(HEX[(b >> 4) as usize]));
                out.push(char::from(HEX[(b & 15) as usize]));
            }
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Appends a float64 the way Go's encoder prints it: shortest round-trip digits, plain decimal
/// for 1e-6 ≤ |f| < 1e21, else exponent form with a sign and at least two digits cleaned of a
/// leading zero (`1e-7`, `1e+21`).
pub fn write_f64(out: &mut String, f: f64) {
    let abs = f.abs();
    if abs != 0.0 && !(1e-6..1e21).contains(&abs) {
        let mut e = String::new();
        let _ = write!(e, "{f:e}");
        let (mantissa, exp) = e.split_once('e').unwrap_or((&e, "0"));
        let (sign, digits) = exp.strip_prefix('-').map_or(("+", exp), |d| ("-", d));
        out.push_str(mantissa);
        out.push('e');
        out.push_str(sign);
        // Go prints two exponent digits, then drops the zero of `e-0N`: only `e+0N` keeps it,
        // which cannot happen for |f| >= 1e21.
        if digits.len() < 2 && sign == "+" {
            out.push('0');
        }
        out.push_str(digits);
    } else {
        let _ = write!(out, "{f}");
    }
}

/// Appends any JSON value: numbers go through `f64` as Go decodes them.
pub fn write_value(out: &mut String, v: &Value) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => write_f64(out, n.as_f64().unwrap_or(0.0)),
        Value::String(s) => write_str(out, s),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_value(out, item);
            }
            out.push(']');
        }
        Value::Object(map) => {
            // serde_json's map (no `preserve_order`) is a BTreeMap: keys already byte-sorted.
            out.push('{');
            for (i, (k, item)) in map.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_str(out, k);
                out.push(':');
                write_value(out, item);
            }
            out.push('}');
        }
    }
}

/// An object written field by field in declaration order, as Go encodes a struct.
pub struct ObjectWriter<'a> {
    out: &'a mut String,
    first: bool,
}

impl<'a> ObjectWriter<'a> {
    /// Opens `{`.
    pub fn new(out: &'a mut String) -> Self {
        out.push('{');
        Self { out, first: true }
    }

    fn key(&mut self, k: &str) -> &mut String {
        if !self.first {
            self.out.push(',');
        }
        self.first = false;
        write_str(self.out, k);
        self.out.push(':');
        self.out
    }

    /// A string field.
    pub fn str(&mut self, k: &str, v: &str) -> &mut Self {
        write_str(self.key(k), v);
        self
    }

    /// A string field left out when empty (`omitempty`).
    pub fn str_opt(&mut self, k: &str, v: Option<&str>) -> &mut Self {
        if let Some(v) = v.filter(|v| !v.is_empty()) {
            self.str(k, v);
        }
        self
    }

    /// An integer field.
    pub fn int(&mut self, k: &str, v: i64) -> &mut Self {
        let _ = write!(self.key(k), "{v}");
        self
    }

    /// A JSON value field.
    pub fn value(&mut self, k: &str, v: &Value) -> &mut Self {
        write_value(self.key(k), v);
        self
    }

    /// A list of strings; `None` is written as `null` (a nil Go slice).
    pub fn str_list(&mut self, k: &str, v: Option<&[String]>) -> &mut Self {
        let out = self.key(k);
        match v {
            None => out.push_str("null"),
            Some(items) => {
                out.push('[');
                for (i, s) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    write_str(out, s);
                }
                out.push(']');
            }
        }
        self
    }

    /// A nested, already-encoded JSON fragment.
    pub fn raw(&mut self, k: &str, json: &str) -> &mut Self {
        self.key(k).push_str(json);
        self
    }

    /// Closes `}`.
    pub fn finish(self) {
        self.out.push('}');
    }
}

/// `v` encoded as one line, the way `json.NewEncoder(w).Encode(v)` writes it.
#[must_use]
pub fn encode_line(v: &Value) -> String {
    let mut s = String::new();
    write_value(&mut s, v);
    s.push('\n');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn num(f: f64) -> String {
        let mut s = String::new();
        write_f64(&mut s, f);
        s
    }

    #[test]
    fn numbers_print_like_go() {
        assert_eq!(num(1.0), "1");
        assert_eq!(num(0.6), "0.6");
        assert_eq!(num(10.0), "10");
        assert_eq!(num(-2.5), "-2.5");
        assert_eq!(num(0.0), "0");
        assert_eq!(num(1e-7), "1e-7");
        assert_eq!(num(1.5e-7), "1.5e-7");
        assert_eq!(num(1e-10), "1e-10");
        assert_eq!(num(1e21), "1e+21");
        assert_eq!(num(1.5e300), "1.5e+300");
        assert_eq!(num(1e20), "100000000000000000000");
        assert_eq!(num(0.000001), "0.000001");
        assert_eq!(num(0.1 + 0.2), "0.30000000000000004");
    }

    #[test]
    fn strings_escape_like_go() {
        let mut s = String::new();
        write_str(&mut s, "<|end|>&\"\\\n\t\u{1}\u{2028}é");
        assert_eq!(s, r#""\u003c|end|\u003e\u0026\"\\\n\t\u0001\u2028é""#);
    }

    #[test]
    fn params_vector() {
        let v: Value = serde_json::from_str(r#"{"top_k":10,"temperature":1,"stop":["USER:","ASSISTANT:"]}"#).unwrap();
        assert_eq!(
            encode_line(&v),
            "{\"stop\":[\"USER:\",\"ASSISTANT:\"],\"temperature\":1,\"top_k\":10}\n".to_owned()
        );
    }
}
