//! `general.file_type` (llama.cpp's `llama_ftype`, `shared/spec/quantization.md` §1.7) and the
//! `quantize` vocabulary: the 16 targets kiln makes (plus F32), by their Ollama/llama.cpp names,
//! case-insensitive.

use alloc::string::String;

use crate::Error;
use crate::ggml_type::GgmlType;

/// A file type kiln can quantize to.
#[expect(non_camel_case_types, missing_docs, reason = "llama.cpp's LLAMA_FTYPE_* names, each self-describing")]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum FileType {
    F32 = 0,
    F16 = 1,
    Q4_0 = 2,
    Q4_1 = 3,
    Q8_0 = 7,
    Q5_0 = 8,
    Q5_1 = 9,
    Q2_K = 10,
    Q3_K_S = 11,
    Q3_K_M = 12,
    Q3_K_L = 13,
    Q4_K_S = 14,
    Q4_K_M = 15,
    Q5_K_S = 16,
    Q5_K_M = 17,
    Q6_K = 18,
    BF16 = 32,
}

/// Every target, in the order the error message lists them.
pub const TARGETS: [FileType; 17] = [
    FileType::F32,
    FileType::F16,
    FileType::BF16,
    FileType::Q4_0,
    FileType::Q4_1,
    FileType::Q5_0,
    FileType::Q5_1,
    FileType::Q8_0,
    FileType::Q2_K,
    FileType::Q3_K_S,
    FileType::Q3_K_M,
    FileType::Q3_K_L,
    FileType::Q4_K_S,
    FileType::Q4_K_M,
    FileType::Q5_K_S,
    FileType::Q5_K_M,
    FileType::Q6_K,
];

impl FileType {
    /// The `general.file_type` value.
    #[must_use]
    pub fn id(self) -> u32 {
        self as u32
    }

    /// The file type with this `general.file_type` value, if kiln makes it.
    #[must_use]
    pub fn from_id(id: u32) -> Option<Self> {
        TARGETS.iter().copied().find(|t| t.id() == id)
    }

    /// Its name, e.g. `Q4_K_M`.
    #[must_use]
    pub fn name(self) -> &'static str {
        file_type_name(self.id())
    }

    /// The tensor type most tensors get (§1.7's default).
    #[must_use]
    pub fn base_type(self) -> GgmlType {
        match self {
            Self::F32 => GgmlType::F32,
            Self::F16 => GgmlType::F16,
            Self::BF16 => GgmlType::BF16,
            Self::Q4_0 => GgmlType::Q4_0,
            Self::Q4_1 => GgmlType::Q4_1,
            Self::Q5_0 => GgmlType::Q5_0,
            Self::Q5_1 => GgmlType::Q5_1,
            Self::Q8_0 => GgmlType::Q8_0,
            Self::Q2_K => GgmlType::Q2_K,
            Self::Q3_K_S | Self::Q3_K_M | Self::Q3_K_L => GgmlType::Q3_K,
            Self::Q4_K_S | Self::Q4_K_M => GgmlType::Q4_K,
            Self::Q5_K_S | Self::Q5_K_M => GgmlType::Q5_K,
            Self::Q6_K => GgmlType::Q6_K,
        }
    }

    /// Parses a `quantize` value, case-insensitively. `Q4_K`, `Q5_K` and `Q3_K` mean their `_M`
    /// variants, as in Ollama and llama-quantize.
    ///
    /// # Errors
    /// [`Error::UnsupportedQuantization`] naming the upper-cased value.
    pub fn parse_quantize(s: &str) -> Result<Self, Error> {
        let upper: String = s.trim().to_ascii_uppercase();
        let found = match upper.as_str() {
            "Q4_K" => Some(Self::Q4_K_M),
            "Q5_K" => Some(Self::Q5_K_M),
            "Q3_K" => Some(Self::Q3_K_M),
            u => TARGETS.iter().copied().find(|t| t.name() == u),
        };
        found.ok_or(Error::UnsupportedQuantization(upper))
    }
}

/// Ollama's name for any `general.file_type` value (`unknown` outside the table).
#[must_use]
pub fn file_type_name(id: u32) -> &'static str {
    match id {
        0 => "F32",
        1 => "F16",
        2 => "Q4_0",
        3 => "Q4_1",
        4 => "MXFP4",
        7 => "Q8_0",
        8 => "Q5_0",
        9 => "Q5_1",
        10 => "Q2_K",
        11 => "Q3_K_S",
        12 => "Q3_K_M",
        13 => "Q3_K_L",
        14 => "Q4_K_S",
        15 => "Q4_K_M",
        16 => "Q5_K_S",
        17 => "Q5_K_M",
        18 => "Q6_K",
        19 => "IQ2_XXS",
        20 => "IQ2_XS",
        21 => "Q2_K_S",
        22 => "IQ3_XS",
        23 => "IQ3_XXS",
        24 => "IQ1_S",
        25 => "IQ4_NL",
        26 => "IQ3_S",
        27 => "IQ3_M",
        28 => "IQ2_S",
        29 => "IQ2_M",
        30 => "IQ4_XS",
        31 => "IQ1_M",
        32 => "BF16",
        36 => "TQ1_0",
        37 => "TQ2_0",
        38 => "MXFP4_MOE",
        39 => "NVFP4",
        40 => "Q1_0",
        _ => "unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    #[test]
    fn parses_every_target_case_insensitively() {
        for t in TARGETS {
            assert_eq!(FileType::parse_quantize(t.name()), Ok(t));
            assert_eq!(FileType::parse_quantize(&t.name().to_ascii_lowercase()), Ok(t));
        }
        assert_eq!(FileType::parse_quantize("q4_K_M"), Ok(FileType::Q4_K_M));
        assert_eq!(FileType::parse_quantize("q4_k"), Ok(FileType::Q4_K_M));
        assert_eq!(FileType::Q4_K_M.id(), 15);
        assert_eq!(FileType::BF16.id(), 32);
        let e = FileType::parse_quantize("iq2_xxs").unwrap_err();
        assert!(e.to_string().starts_with("unsupported quantization type IQ2_XXS - supported types are"));
    }
}
