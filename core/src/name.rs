//! Model names: `[scheme://][host/][namespace/]model[:tag]` (`shared/spec/ollama-api.md` §4.1,
//! Ollama's `types/model/name.go`). Parsed from the right; defaults filled in; every part checked
//! against its character set, which is what keeps a name from ever naming a path outside
//! `manifests/`: no part may hold `/`, `\`, NUL or start with `.`. Each part is one path component
//! of the store, so none may be longer than a file name can be ([`MAX_COMPONENT`]; Ollama allows
//! 350 for the host, which no filesystem can hold).

use alloc::borrow::ToOwned;
use alloc::string::String;
use core::fmt;

/// The default registry host.
pub const DEFAULT_HOST: &str = "registry.ollama.ai";
/// The default namespace.
pub const DEFAULT_NAMESPACE: &str = "library";
/// The default tag.
pub const DEFAULT_TAG: &str = "latest";

/// The longest file name (bytes) of the filesystems a store lives on (ext4, XFS, btrfs, APFS,
/// NTFS): the longest a name's host may be. Namespace, model and tag keep Ollama's 80, so the
/// whole path below `manifests/` stays within 255 + 3 × 80 + 3 = 498 bytes, far below `PATH_MAX`.
pub const MAX_COMPONENT: usize = 255;

/// A fully qualified, valid model name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ModelName {
    /// Registry host, e.g. `registry.ollama.ai` or `myhost:5000`.
    pub host: String,
    /// Namespace, e.g. `library`.
    pub namespace: String,
    /// Model, e.g. `llama3.2`.
    pub model: String,
    /// Tag, e.g. `latest`.
    pub tag: String,
}

#[derive(Clone, Copy)]
enum Part {
    Host,
    Namespace,
    Model,
    Tag,
}

fn valid_part(s: &str, part: Part) -> bool {
    let max = match part {
        // Ollama's 350 would be a valid name the store cannot hold (ENAMETOOLONG).
        Part::Host => MAX_COMPONENT,
        _ => 80,
    };
    let bytes = s.as_bytes();
    let Some(&first) = bytes.first() else {
        return false;
    };
    if bytes.len() > max || !(first.is_ascii_alphanumeric() || first == b'_') {
        return false;
    }
    bytes[1..].iter().all(|&b| {
        b.is_ascii_alphanumeric()
            || b == b'_'
            || b == b'-'
            || (b == b'.' && !matches!(part, Part::Namespace))
            || (b == b':' && matches!(part, Part::Host))
    })
}

/// Splits at the last `sep`; an empty side is the invalid "missing" part (Go's `cutPromised`).
fn cut_last(s: &str, sep: char) -> Option<(&str, &str)> {
    s.rfind(sep).map(|i| (&s[..i], &s[i + sep.len_utf8()..]))
}

impl ModelName {
    /// Parses and validates a name, filling in the defaults.
    ///
    /// Returns `None` if any part is missing or has a character outside its set.
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        let mut rest = s;
        let mut tag = None;
        if let Some(colon) = rest.rfind(':')
            && rest.rfind('/').is_none_or(|slash| colon > slash)
        {
            tag = Some(&rest[colon + 1..]);
            rest = &rest[..colon];
        }
        let (model, namespace, host);
        match cut_last(rest, '/') {
            None => {
                model = rest;
                namespace = None;
                host = None;
            }
            Some((before, m)) => {
                model = m;
                match cut_last(before, '/') {
                    None => {
                        namespace = Some(before);
                        host = None;
                    }
                    Some((h, ns)) => {
                        namespace = Some(ns);
                        host = Some(h.split_once("://").map_or(h, |(_, h)| h));
                    }
                }
            }
        }
        let name = Self {
            host: host.unwrap_or(DEFAULT_HOST).to_owned(),
            namespace: namespace.unwrap_or(DEFAULT_NAMESPACE).to_owned(),
            model: model.to_owned(),
            tag: tag.unwrap_or(DEFAULT_TAG).to_owned(),
        };
        (valid_part(&name.host, Part::Host)
            && valid_part(&name.namespace, Part::Namespace)
            && valid_part(&name.model, Part::Model)
            && valid_part(&name.tag, Part::Tag))
        .then_some(name)
    }

    /// The shortest display form: `mario:latest`, `ns/m:t`, `myhost/ns/m:t`.
    #[must_use]
    pub fn short(&self) -> String {
        let default_host = self.host.eq_ignore_ascii_case(DEFAULT_HOST);
        if default_host && self.namespace.eq_ignore_ascii_case(DEFAULT_NAMESPACE) {
            alloc::format!("{}:{}", self.model, self.tag)
        } else if default_host {
            alloc::format!("{}/{}:{}", self.namespace, self.model, self.tag)
        } else {
            alloc::format!("{}/{}/{}:{}", self.host, self.namespace, self.model, self.tag)
        }
    }

    /// The four path components below `manifests/`.
    #[must_use]
    pub fn parts(&self) -> [&str; 4] {
        [&self.host, &self.namespace, &self.model, &self.tag]
    }

    /// Builds a name from four stored path components, if they form a valid name.
    #[must_use]
    pub fn from_parts(host: &str, namespace: &str, model: &str, tag: &str) -> Option<Self> {
        let name = Self {
            host: host.to_owned(),
            namespace: namespace.to_owned(),
            model: model.to_owned(),
            tag: tag.to_owned(),
        };
        (valid_part(host, Part::Host)
            && valid_part(namespace, Part::Namespace)
            && valid_part(model, Part::Model)
            && valid_part(tag, Part::Tag))
        .then_some(name)
    }

    /// Case-insensitive equality of the whole name (Ollama resolves names this way).
    #[must_use]
    pub fn eq_ignore_case(&self, other: &Self) -> bool {
        self.host.eq_ignore_ascii_case(&other.host)
            && self.namespace.eq_ignore_ascii_case(&other.namespace)
            && self.model.eq_ignore_ascii_case(&other.model)
            && self.tag.eq_ignore_ascii_case(&other.tag)
    }
}

impl fmt::Display for ModelName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}/{}:{}", self.host, self.namespace, self.model, self.tag)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full(s: &str) -> Option<String> {
        ModelName::parse(s).map(|n| n.to_string())
    }

    #[test]
    fn spec_examples() {
        assert_eq!(full("mario").as_deref(), Some("registry.ollama.ai/library/mario:latest"));
        assert_eq!(full("ns/m").as_deref(), Some("registry.ollama.ai/ns/m:latest"));
        assert_eq!(full("h:1234/ns/m:t").as_deref(), Some("h:1234/ns/m:t"));
        assert_eq!(full("https://h/ns/m:t").as_deref(), Some("h/ns/m:t"));
        assert_eq!(full("apple/OpenELM:latest").as_deref(), Some("registry.ollama.ai/apple/OpenELM:latest"));
        assert_eq!(full("notus:7b-v1-IQ2_S").as_deref(), Some("registry.ollama.ai/library/notus:7b-v1-IQ2_S"));
        assert_eq!(full("llama3.2:1b").as_deref(), Some("registry.ollama.ai/library/llama3.2:1b"));
    }

    #[test]
    fn invalid_names() {
        let long = "a".repeat(81);
        let long_tag = alloc::format!("m:{long}");
        let long_host = alloc::format!("{}/ns/m", "h".repeat(351));
        for bad in [
            "",
            ".",
            "..",
            "../x",
            "x/..",
            "a/b/c/d",
            "m:",
            "/m",
            ":t",
            "ns/",
            "host:5000/model",
            "m@sha256:00",
            "a b",
            "m\\x",
            "ns.dot/m",
            "-m",
            ".m",
            "m\0",
            "h/ns/m/",
            "é",
            long.as_str(),
            long_tag.as_str(),
            long_host.as_str(),
            "..%2f..%2fetc/passwd",
            "/etc/passwd",
        ] {
            assert_eq!(full(bad), None, "{bad:?} should be invalid");
        }
        assert!(full(&"a".repeat(80)).is_some());
    }

    #[test]
    fn host_fits_in_one_file_name() {
        let host = |n: usize| alloc::format!("{}/ns/m:t", "h".repeat(n));
        assert!(full(&host(MAX_COMPONENT)).is_some(), "255 bytes: a file name the store can hold");
        assert_eq!(full(&host(MAX_COMPONENT + 1)), None, "256 bytes: longer than any file name");
        assert_eq!(full(&host(300)), None);
        assert!(ModelName::from_parts(&"h".repeat(255), "ns", "m", "t").is_some());
        assert!(ModelName::from_parts(&"h".repeat(256), "ns", "m", "t").is_none());
        let longest = ModelName::parse(&alloc::format!(
            "{}/{}/{}:{}",
            "h".repeat(255),
            "n".repeat(80),
            "m".repeat(80),
            "t".repeat(80)
        ))
        .unwrap();
        assert_eq!(longest.parts().iter().map(|p| p.len() + 1).sum::<usize>() - 1, 498);
    }

    #[test]
    fn short_form() {
        let s = |x: &str| ModelName::parse(x).unwrap().short();
        assert_eq!(s("mario"), "mario:latest");
        assert_eq!(s("ns/m:t"), "ns/m:t");
        assert_eq!(s("myhost/ns/m:t"), "myhost/ns/m:t");
        assert_eq!(s("myhost/library/m:t"), "myhost/library/m:t");
        assert_eq!(s("REGISTRY.ollama.ai/Library/m"), "m:latest");
    }

    #[test]
    fn case_insensitive_match() {
        let a = ModelName::parse("Mario").unwrap();
        let b = ModelName::parse("mario:LATEST").unwrap();
        assert!(a.eq_ignore_case(&b));
        assert_ne!(a, b);
    }
}
