//! `WWW-Authenticate` challenges (RFC 9110 §11.6.1) as OCI registries send them:
//! `Bearer realm="https://auth.example/token",service="registry",scope="repository:ns/m:pull"`
//! or `Basic realm="…"`. The header comes from a remote server, so the parser takes any text:
//! one pass, no allocation beyond the result, no panics (a fuzz target holds it to that).

use alloc::borrow::ToOwned;
use alloc::string::String;
use alloc::vec::Vec;

/// A parsed challenge: its scheme and its `key=value` parameters in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// `Basic`, `Bearer`, … as sent (compare without case).
    pub scheme: String,
    /// The parameters; keys trimmed, quoted values unescaped.
    pub params: Vec<(String, String)>,
}

impl Challenge {
    /// Parses a header value: the scheme up to the first space, then its parameters.
    #[must_use]
    pub fn parse(header: &str) -> Self {
        let header = header.trim();
        let (scheme, rest) = header.split_once(' ').unwrap_or((header, ""));
        Self { scheme: scheme.to_owned(), params: params(rest) }
    }

    /// The first parameter named `key` (without case).
    #[must_use]
    pub fn param(&self, key: &str) -> Option<&str> {
        self.params.iter().find(|(k, _)| k.eq_ignore_ascii_case(key)).map(|(_, v)| v.as_str())
    }
}

/// `key="value",key=value` pairs; quoted values may hold commas and `\`-escaped characters.
fn params(s: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    loop {
        while chars.next_if(|c| *c == ',' || c.is_whitespace()).is_some() {}
        let key: String = core::iter::from_fn(|| chars.next_if(|c| *c != '=' && *c != ',')).collect();
        if key.is_empty() {
            return out;
        }
        let mut value = String::new();
        if chars.next_if_eq(&'=').is_some() {
            if chars.next_if_eq(&'"').is_some() {
                while let Some(c) = chars.next() {
                    match c {
                        '"' => break,
                        '\\' => value.extend(chars.next()),
                        c => value.push(c),
                    }
                }
            } else {
                value = core::iter::from_fn(|| chars.next_if(|c| *c != ',')).collect::<String>().trim().to_owned();
            }
        }
        out.push((key.trim().to_owned(), value));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn bearer_challenges_as_registries_send_them() {
        let c = Challenge::parse(
            r#"Bearer realm="https://auth.example/token",service="registry.example",scope="repository:ns/m:pull,push""#,
        );
        assert_eq!(c.scheme, "Bearer");
        assert_eq!(
            c.params,
            pairs(&[
                ("realm", "https://auth.example/token"),
                ("service", "registry.example"),
                ("scope", "repository:ns/m:pull,push"),
            ])
        );
        assert_eq!(c.param("REALM"), Some("https://auth.example/token"));
        assert_eq!(c.param("error"), None);
    }

    #[test]
    fn unquoted_values_escapes_and_empty_headers() {
        let c = Challenge::parse(r#"  basic realm=basic, x="a\"b",  flag"#);
        assert_eq!(c.scheme, "basic");
        assert_eq!(c.params, pairs(&[("realm", "basic"), ("x", "a\"b"), ("flag", "")]));
        assert_eq!(Challenge::parse(""), Challenge { scheme: String::new(), params: Vec::new() });
        // An unterminated quote runs to the end; nothing is lost or invented.
        assert_eq!(Challenge::parse(r#"Bearer realm="http://a,b"#).params, pairs(&[("realm", "http://a,b")]));
    }
}
