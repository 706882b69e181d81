//! `general.file_type` (llama.cpp's `llama_ftype`, `shared/spec/quantization.md` §1.7) and the
//! `quantize` vocabulary: every file type llama-quantize 0.3.36 lists, by its name,
//! case-insensitively, in groups (float, legacy, K, IQ, ternary and other).

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
    IQ2_XXS = 19,
    IQ2_XS = 20,
    Q2_K_S = 21,
    IQ3_XS = 22,
    IQ3_XXS = 23,
    IQ1_S = 24,
    IQ4_NL = 25,
    IQ3_S = 26,
    IQ3_M = 27,
    IQ2_S = 28,
    IQ2_M = 29,
    IQ4_XS = 30,
    IQ1_M = 31,
    BF16 = 32,
    TQ1_0 = 36,
    TQ2_0 = 37,
    MXFP4_MOE = 38,
    Q1_0 = 40,
    Q2_0 = 41,
    /// llama-quantize's `COPY`: every tensor copied as it is, `general.file_type` the source's.
    /// It has no `llama_ftype` of its own; its discriminant is no file type's (see [`Self::id`]).
    COPY = 0xFFFF_FFFF,
}

/// How the targets are grouped when listed (README, dashboard).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Group {
    /// F32, F16, BF16.
    Float,
    /// The 32-value block formats: Q4_0 … Q8_0.
    Legacy,
    /// The K-quant mixes.
    K,
    /// The importance-matrix-era non-linear and grid types (IQ1…IQ4).
    Iq,
    /// Ternary (TQ1_0, TQ2_0), Q1_0, Q2_0, MXFP4_MOE and COPY.
    Other,
}

impl Group {
    /// Its heading, e.g. `K-quants`.
    #[must_use]
    pub fn label(self) -> &'static str {
        match self {
            Self::Float => "float",
            Self::Legacy => "legacy",
            Self::K => "K-quants",
            Self::Iq => "IQ",
            Self::Other => "ternary and other",
        }
    }
}

/// Every target, in the order the error message and the dashboard list them (by [`Group`]).
pub const TARGETS: [FileType; 36] = [
    FileType::F32,
    FileType::F16,
    FileType::BF16,
    FileType::Q4_0,
    FileType::Q4_1,
    FileType::Q5_0,
    FileType::Q5_1,
    FileType::Q8_0,
    FileType::Q2_K,
    FileType::Q2_K_S,
    FileType::Q3_K_S,
    FileType::Q3_K_M,
    FileType::Q3_K_L,
    FileType::Q4_K_S,
    FileType::Q4_K_M,
    FileType::Q5_K_S,
    FileType::Q5_K_M,
    FileType::Q6_K,
    FileType::IQ1_S,
    FileType::IQ1_M,
    FileType::IQ2_XXS,
    FileType::IQ2_XS,
    FileType::IQ2_S,
    FileType::IQ2_M,
    FileType::IQ3_XXS,
    FileType::IQ3_XS,
    FileType::IQ3_S,
    FileType::IQ3_M,
    FileType::IQ4_NL,
    FileType::IQ4_XS,
    FileType::TQ1_0,
    FileType::TQ2_0,
    FileType::Q1_0,
    FileType::Q2_0,
    FileType::MXFP4_MOE,
    FileType::COPY,
];

/// [`TARGETS`]' names as the unsupported-type error lists them (a test checks they agree).
pub const TARGET_NAMES: &str = "F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K, Q2_K_S, Q3_K_S, Q3_K_M, Q3_K_L, \
Q4_K_S, Q4_K_M, Q5_K_S, Q5_K_M, Q6_K, IQ1_S, IQ1_M, IQ2_XXS, IQ2_XS, IQ2_S, IQ2_M, IQ3_XXS, IQ3_XS, IQ3_S, IQ3_M, \
IQ4_NL, IQ4_XS, TQ1_0, TQ2_0, Q1_0, Q2_0, MXFP4_MOE, COPY";

impl FileType {
    /// The `general.file_type` value. [`FileType::COPY`] has none (the output keeps the
    /// source's): its id is `u32::MAX`, which nothing writes.
    #[must_use]
    pub fn id(self) -> u32 {
        self as u32
    }

    /// The file type with this `general.file_type` value, if kiln makes it.
    #[must_use]
    pub fn from_id(id: u32) -> Option<Self> {
        TARGETS.iter().copied().find(|t| t.id() == id && *t != Self::COPY)
    }

    /// Its name, e.g. `Q4_K_M`.
    #[must_use]
    pub fn name(self) -> &'static str {
        if self == Self::COPY { "COPY" } else { file_type_name(self.id()) }
    }

    /// Its group in listings.
    #[must_use]
    pub fn group(self) -> Group {
        use FileType as F;
        match self {
            F::F32 | F::F16 | F::BF16 => Group::Float,
            F::Q4_0 | F::Q4_1 | F::Q5_0 | F::Q5_1 | F::Q8_0 => Group::Legacy,
            F::Q2_K
            | F::Q2_K_S
            | F::Q3_K_S
            | F::Q3_K_M
            | F::Q3_K_L
            | F::Q4_K_S
            | F::Q4_K_M
            | F::Q5_K_S
            | F::Q5_K_M
            | F::Q6_K => Group::K,
            F::IQ1_S
            | F::IQ1_M
            | F::IQ2_XXS
            | F::IQ2_XS
            | F::IQ2_S
            | F::IQ2_M
            | F::IQ3_XXS
            | F::IQ3_XS
            | F::IQ3_S
            | F::IQ3_M
            | F::IQ4_NL
            | F::IQ4_XS => Group::Iq,
            F::TQ1_0 | F::TQ2_0 | F::Q1_0 | F::Q2_0 | F::MXFP4_MOE | F::COPY => Group::Other,
        }
    }

    /// Whether llama-quantize refuses this file type without an importance matrix on a usual
    /// model (rows a multiple of 256): its mixture gives some tensor a type that needs one
    /// ([`crate::tensor_policy::requires_imatrix`]). The rule itself is per tensor; this is the
    /// listing's "needs an importance matrix" mark.
    #[must_use]
    pub fn wants_imatrix(self) -> bool {
        use FileType as F;
        matches!(self, F::IQ1_S | F::IQ1_M | F::IQ2_XXS | F::IQ2_XS | F::IQ2_S | F::IQ2_M | F::IQ3_XXS | F::IQ3_XS | F::Q2_K_S)
    }

    /// The tensor type most tensors get: llama.cpp's `llama_ftype_get_default_type`. For
    /// [`FileType::COPY`], which quantizes nothing, F32 (as llama-quantize's `LLAMA_FTYPE_ALL_F32`).
    #[must_use]
    pub fn base_type(self) -> GgmlType {
        use FileType as F;
        use GgmlType as G;
        match self {
            F::F32 | F::COPY => G::F32,
            F::F16 => G::F16,
            F::BF16 => G::BF16,
            F::Q4_0 => G::Q4_0,
            F::Q4_1 => G::Q4_1,
            F::Q5_0 => G::Q5_0,
            F::Q5_1 => G::Q5_1,
            F::Q8_0 => G::Q8_0,
            F::Q1_0 => G::Q1_0,
            F::Q2_0 => G::Q2_0,
            F::MXFP4_MOE => G::MXFP4,
            F::Q2_K | F::Q2_K_S => G::Q2_K,
            F::Q3_K_S | F::Q3_K_M | F::Q3_K_L => G::Q3_K,
            F::Q4_K_S | F::Q4_K_M => G::Q4_K,
            F::Q5_K_S | F::Q5_K_M => G::Q5_K,
            F::Q6_K => G::Q6_K,
            F::TQ1_0 => G::TQ1_0,
            F::TQ2_0 => G::TQ2_0,
            F::IQ2_XXS => G::IQ2_XXS,
            // IQ2_S is mostly IQ2_XS and IQ2_M mostly IQ2_S, as in llama.cpp.
            F::IQ2_XS | F::IQ2_S => G::IQ2_XS,
            F::IQ2_M => G::IQ2_S,
            F::IQ3_XXS => G::IQ3_XXS,
            F::IQ1_S => G::IQ1_S,
            F::IQ1_M => G::IQ1_M,
            F::IQ4_NL => G::IQ4_NL,
            F::IQ4_XS => G::IQ4_XS,
            F::IQ3_XS | F::IQ3_S | F::IQ3_M => G::IQ3_S,
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
        41 => "Q2_0",
        _ => "unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;
    use alloc::vec::Vec;

    #[test]
    fn parses_every_target_case_insensitively() {
        for t in TARGETS {
            assert_eq!(FileType::parse_quantize(t.name()), Ok(t));
            assert_eq!(FileType::parse_quantize(&t.name().to_ascii_lowercase()), Ok(t));
        }
        assert_eq!(FileType::parse_quantize("q4_K_M"), Ok(FileType::Q4_K_M));
        assert_eq!(FileType::parse_quantize("q4_k"), Ok(FileType::Q4_K_M));
        assert_eq!(FileType::parse_quantize("iq2_xxs"), Ok(FileType::IQ2_XXS));
        assert_eq!(FileType::parse_quantize("Copy"), Ok(FileType::COPY));
        assert_eq!(FileType::Q4_K_M.id(), 15);
        assert_eq!(FileType::BF16.id(), 32);
        assert_eq!((FileType::Q1_0.id(), FileType::Q2_0.id(), FileType::MXFP4_MOE.id()), (40, 41, 38));
        let e = FileType::parse_quantize("nvfp4").unwrap_err();
        assert_eq!(e.to_string(), alloc::format!("unsupported quantization type NVFP4 - supported types are {TARGET_NAMES}"));
    }

    #[test]
    fn listing_and_ids_agree() {
        let names: Vec<&str> = TARGETS.iter().map(|t| t.name()).collect();
        assert_eq!(names.join(", "), TARGET_NAMES);
        for t in TARGETS.iter().copied().filter(|t| *t != FileType::COPY) {
            assert_eq!(FileType::from_id(t.id()), Some(t));
            assert_ne!(file_type_name(t.id()), "unknown");
        }
        assert_eq!(FileType::from_id(u32::MAX), None);
        // Grouped: each group's members are adjacent in TARGETS.
        let mut seen: Vec<Group> = Vec::new();
        for t in TARGETS {
            if seen.last() != Some(&t.group()) {
                assert!(!seen.contains(&t.group()), "{} out of its group", t.name());
                seen.push(t.group());
            }
        }
        assert_eq!(seen.len(), 5);
    }
}
