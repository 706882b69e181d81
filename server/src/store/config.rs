//! The config blob (`shared/spec/ollama-api.md` §5.4): rebuilt from the model layers on every
//! create, read back by show, and encoded byte-for-byte as Ollama's `ConfigV2`, so identical models get identical
//! config digests in kiln and Ollama.

use kiln_core::gojson::ObjectWriter;
use serde::Deserialize;

/// The config fields kiln writes and reads back.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct ConfigFile {
    /// Container format, `gguf`.
    pub model_format: String,
    /// Architecture of the first model layer.
    pub model_family: String,
    /// Architectures of all model layers (`null` when none).
    pub model_families: Option<Vec<String>>,
    /// Human parameter count.
    pub model_type: String,
    /// File type name.
    pub file_type: String,
    /// Chat renderer.
    pub renderer: String,
    /// Output parser.
    pub parser: String,
    /// Minimum Ollama version.
    pub requires: String,
    /// Capabilities (inherited or from `info`).
    pub capabilities: Vec<String>,
}

impl ConfigFile {
    /// Ollama's bytes, with the trailing newline.
    #[must_use]
    pub fn encode(&self) -> Vec<u8> {
        let mut out = String::new();
        let mut o = ObjectWriter::new(&mut out);
        o.str("model_format", &self.model_format)
            .str("model_family", &self.model_family)
            .str_list("model_families", self.model_families.as_deref())
            .str("model_type", &self.model_type)
            .str("file_type", &self.file_type)
            .str_opt("renderer", Some(&self.renderer))
            .str_opt("parser", Some(&self.parser))
            .str_opt("requires", Some(&self.requires));
        if !self.capabilities.is_empty() {
            o.str_list("capabilities", Some(&self.capabilities));
        }
        o.str("architecture", "amd64").str("os", "linux");
        o.finish();
        out.push('\n');
        out.into_bytes()
    }
}

/// Go's `format.HumanNumber`: `8.0B`, `270.43M`, `12K`, `0`.
#[must_use]
pub fn human_number(n: u64) -> String {
    #[expect(clippy::cast_precision_loss, reason = "a human-readable count: two significant decimals are all it shows")]
    let f = n as f64;
    if n >= 1_000_000_000 {
        let x = f / 1e9;
        if x == x.floor() { format!("{x:.0}B") } else { format!("{x:.1}B") }
    } else if n >= 1_000_000 {
        let x = f / 1e6;
        if x == x.floor() { format!("{x:.0}M") } else { format!("{x:.2}M") }
    } else if n >= 1_000 {
        format!("{:.0}K", f / 1e3)
    } else {
        n.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::blobs::digest_of;

    #[test]
    fn golden_config_vector() {
        let c = ConfigFile {
            model_format: "gguf".into(),
            model_family: "test".into(),
            model_families: Some(vec!["test".into()]),
            model_type: "0".into(),
            file_type: "unknown".into(),
            ..ConfigFile::default()
        };
        let bytes = c.encode();
        assert_eq!(bytes.len(), 147);
        assert_eq!(
            digest_of(&bytes).to_string(),
            "sha256:99759ad5b91e723db0393d698ffbb448b1b7df5ff6377a108c49254583b1bc8c"
        );
    }

    #[test]
    fn human_numbers() {
        assert_eq!(human_number(8_030_261_248), "8.0B");
        assert_eq!(human_number(7_000_000_000), "7B");
        assert_eq!(human_number(268_098_176), "268.10M");
        assert_eq!(human_number(5_000_000), "5M");
        assert_eq!(human_number(1_500), "2K");
        assert_eq!(human_number(0), "0");
    }
}
