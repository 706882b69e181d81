//! llama-quantize's per-tensor controls (`--tensor-type`, `--output-tensor-type`,
//! `--token-embedding-type`, `--pure`, `--leave-output-tensor`), parsed and checked as kiln's
//! create request carries them. [`crate::tensor_policy::Policy`] applies them.
//!
//! `tensor_types` patterns are regular expressions compiled here with `regex-automata`'s meta
//! engine (no_std + alloc, the engine the `regex` crate wraps), so the browser refuses a bad
//! pattern exactly as the server does, and the policy that matches them stays in this crate.

use alloc::borrow::ToOwned;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use regex_automata::meta::Regex;

use crate::error::Error;
use crate::ggml_type::GgmlType;

/// The types a control may name: every ggml type llama-quantize can write a tensor as (NVFP4
/// aside, which has no file type). Whether this server has a kernel for one yet is the
/// server's check, when it plans the quantization.
pub const KILN_TYPES: &[GgmlType] = &[
    GgmlType::F32,
    GgmlType::F16,
    GgmlType::BF16,
    GgmlType::Q4_0,
    GgmlType::Q4_1,
    GgmlType::Q5_0,
    GgmlType::Q5_1,
    GgmlType::Q8_0,
    GgmlType::Q2_K,
    GgmlType::Q3_K,
    GgmlType::Q4_K,
    GgmlType::Q5_K,
    GgmlType::Q6_K,
    GgmlType::IQ1_S,
    GgmlType::IQ1_M,
    GgmlType::IQ2_XXS,
    GgmlType::IQ2_XS,
    GgmlType::IQ2_S,
    GgmlType::IQ3_XXS,
    GgmlType::IQ3_S,
    GgmlType::IQ4_NL,
    GgmlType::IQ4_XS,
    GgmlType::TQ1_0,
    GgmlType::TQ2_0,
    GgmlType::Q1_0,
    GgmlType::Q2_0,
    GgmlType::MXFP4,
];

/// [`KILN_TYPES`] as error messages list them (a test checks they agree).
pub const KILN_TYPE_NAMES: &str = "F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, IQ1_S, \
IQ1_M, IQ2_XXS, IQ2_XS, IQ2_S, IQ3_XXS, IQ3_S, IQ4_NL, IQ4_XS, TQ1_0, TQ2_0, Q1_0, Q2_0, MXFP4";

/// The most bytes of NFA one pattern may compile to (a pattern is request input).
const NFA_LIMIT: usize = 1 << 20;

/// One `tensor_types` entry: tensors whose name the pattern matches (anywhere in it) get `ty`.
#[derive(Debug, Clone)]
pub struct TensorTypeRule {
    /// The pattern, lower-cased as llama-quantize does.
    pub pattern: String,
    /// The type it assigns.
    pub ty: GgmlType,
    regex: Regex,
}

impl PartialEq for TensorTypeRule {
    fn eq(&self, other: &Self) -> bool {
        self.pattern == other.pattern && self.ty == other.ty
    }
}

impl TensorTypeRule {
    /// Parses `PATTERN=TYPE` (split at the first `=`); `field` names it in errors.
    ///
    /// # Errors
    /// [`Error::TensorTypeMalformed`], [`Error::TensorTypeRegex`] and the errors of [`parse_type`].
    pub fn parse(field: &str, entry: &str) -> Result<Self, Error> {
        let malformed = || Error::TensorTypeMalformed { field: field.to_owned(), value: entry.to_owned() };
        let (pattern, ty) = entry.split_once('=').ok_or_else(malformed)?;
        if pattern.is_empty() || ty.is_empty() {
            return Err(malformed());
        }
        let ty = parse_type(field, ty)?;
        let pattern = pattern.to_ascii_lowercase();
        let regex =
            Regex::builder().configure(Regex::config().nfa_size_limit(Some(NFA_LIMIT))).build(&pattern).map_err(
                |e| Error::TensorTypeRegex { field: field.to_owned(), pattern: pattern.clone(), reason: e.to_string() },
            )?;
        Ok(Self { pattern, ty, regex })
    }

    /// Whether the pattern matches anywhere in `name` (`std::regex_search`).
    #[must_use]
    pub fn matches(&self, name: &str) -> bool {
        self.regex.is_match(name)
    }
}

/// A type name as a control gives it: any ggml type name, case-insensitively, that kiln can
/// write; `field` names it in errors.
///
/// # Errors
/// [`Error::ControlTypeUnknown`] for a name ggml does not have, [`Error::ControlTypeUnsupported`]
/// for a type kiln cannot quantize to.
pub fn parse_type(field: &str, name: &str) -> Result<GgmlType, Error> {
    let ty = GgmlType::from_name(name)
        .ok_or_else(|| Error::ControlTypeUnknown { field: field.to_owned(), value: name.to_owned() })?;
    if !KILN_TYPES.contains(&ty) {
        return Err(Error::ControlTypeUnsupported { field: field.to_owned(), ty: ty.name() });
    }
    Ok(ty)
}

/// The per-tensor controls of one quantization; the default changes nothing.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Controls {
    /// `--output-tensor-type`: `output.weight` gets this type as given (no shape fallback);
    /// with tied embeddings `token_embd.weight` gets it through the mixture rules (with it).
    pub output_tensor_type: Option<GgmlType>,
    /// `--token-embedding-type`: `token_embd.weight` (and `per_layer_token_embd.weight`) get
    /// this type as given (no shape fallback).
    pub token_embedding_type: Option<GgmlType>,
    /// `--tensor-type`, in order: the first matching rule wins.
    pub tensor_types: Vec<TensorTypeRule>,
    /// `--pure`: no mixture rules; every tensor gets the file type's default type.
    pub pure: bool,
    /// `--leave-output-tensor`: `output.weight` is not quantized.
    pub leave_output_tensor: bool,
}

impl Controls {
    /// Parses the request's fields.
    ///
    /// # Errors
    /// As [`parse_type`] and [`TensorTypeRule::parse`].
    pub fn parse(
        output_tensor_type: Option<&str>,
        token_embedding_type: Option<&str>,
        tensor_types: &[String],
        pure: bool,
        leave_output_tensor: bool,
    ) -> Result<Self, Error> {
        let output_tensor_type = output_tensor_type.map(|t| parse_type("output_tensor_type", t)).transpose()?;
        let token_embedding_type = token_embedding_type.map(|t| parse_type("token_embedding_type", t)).transpose()?;
        let tensor_types = tensor_types
            .iter()
            .enumerate()
            .map(|(i, e)| TensorTypeRule::parse(&format!("tensor_types[{i}]"), e))
            .collect::<Result<_, _>>()?;
        Ok(Self { output_tensor_type, token_embedding_type, tensor_types, pure, leave_output_tensor })
    }

    /// Whether nothing is set.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    /// The first rule matching `name`.
    #[must_use]
    pub fn rule_for(&self, name: &str) -> Option<&TensorTypeRule> {
        self.tensor_types.iter().find(|r| r.matches(name))
    }
}

/// A type chosen without shape fallback must fit the tensor's rows; llama-quantize aborts
/// otherwise, kiln refuses before writing anything.
///
/// # Errors
/// `"token_embd.weight: Q4_K needs rows that are a multiple of 256; the tensor's rows are 640 wide"`.
pub fn check_fits(name: &str, ty: GgmlType, row_len: u64) -> Result<(), String> {
    if row_len.is_multiple_of(ty.block_elems()) {
        return Ok(());
    }
    Err(format!(
        "{name}: {} needs rows that are a multiple of {}; the tensor's rows are {row_len} wide",
        ty.name(),
        ty.block_elems()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(e: &str) -> String {
        TensorTypeRule::parse("tensor_types[0]", e).unwrap_err().to_string()
    }

    #[test]
    fn rules_parse_like_llama_quantize() {
        let r = TensorTypeRule::parse("tensor_types[0]", "ATTN_Q=q8_0").unwrap();
        assert_eq!((r.pattern.as_str(), r.ty), ("attn_q", GgmlType::Q8_0));
        assert!(r.matches("blk.3.attn_q.weight") && !r.matches("blk.3.attn_k.weight"));
        let r = TensorTypeRule::parse("t", r"blk\.1[0-7]\.ffn_(up|gate)=Q5_K").unwrap();
        assert!(r.matches("blk.17.ffn_gate.weight") && r.matches("blk.10.ffn_up.weight"));
        assert!(!r.matches("blk.1.ffn_up.weight") && !r.matches("blk.18.ffn_up.weight"));
        // Split at the first `=`.
        assert_eq!(
            TensorTypeRule::parse("t", "a=b=q8_0").unwrap_err().to_string(),
            alloc::format!("t: unknown type 'b=q8_0' - kiln's types are {KILN_TYPE_NAMES}")
        );
        let names: Vec<&str> = KILN_TYPES.iter().map(|t| t.name()).collect();
        assert_eq!(names.join(", "), KILN_TYPE_NAMES);
    }

    #[test]
    fn bad_rules_and_types_are_refused_by_field() {
        assert_eq!(err("attn_v"), "tensor_types[0]: 'attn_v' is not PATTERN=TYPE (e.g. \"attn_v=q8_0\")");
        assert_eq!(err("=q8_0"), "tensor_types[0]: '=q8_0' is not PATTERN=TYPE (e.g. \"attn_v=q8_0\")");
        assert_eq!(err("attn_v="), "tensor_types[0]: 'attn_v=' is not PATTERN=TYPE (e.g. \"attn_v=q8_0\")");
        // Every type llama-quantize writes is accepted here (the server refuses one it has no
        // kernel for when it plans); types it cannot write are refused by name.
        assert_eq!(TensorTypeRule::parse("t", "attn_q=iq4_nl").unwrap().ty, GgmlType::IQ4_NL);
        assert!(err("attn_q=nvfp4").starts_with("tensor_types[0]: kiln cannot quantize to NVFP4 - kiln's types are F32,"));
        assert!(err("attn_q=q9_k").starts_with("tensor_types[0]: unknown type 'q9_k' - kiln's types are"));
        assert!(err("ffn_(up=q8_0").starts_with("tensor_types[0]: 'ffn_(up' is not a valid regular expression: "));
        let e = Controls::parse(Some("q8_k"), None, &[], false, false).unwrap_err().to_string();
        assert!(e.starts_with("output_tensor_type: kiln cannot quantize to Q8_K"), "{e}");
        let e = Controls::parse(None, Some("nope"), &[], false, false).unwrap_err().to_string();
        assert!(e.starts_with("token_embedding_type: unknown type 'nope'"), "{e}");
        let e = Controls::parse(None, None, &["x=q8_0".into(), "y=i8".into()], false, false).unwrap_err();
        assert!(e.to_string().starts_with("tensor_types[1]: kiln cannot quantize to I8"), "{e}");
        assert_eq!(e.http_status(), 400);
    }

    #[test]
    fn first_matching_rule_wins() {
        let c = Controls::parse(None, None, &["attn=q8_0".into(), "attn_v=q4_0".into()], false, false).unwrap();
        assert_eq!(c.rule_for("blk.0.attn_v.weight").map(|r| r.ty), Some(GgmlType::Q8_0));
        assert_eq!(c.rule_for("blk.0.ffn_up.weight"), None);
        assert!(!c.is_empty() && Controls::default().is_empty());
    }

    #[test]
    fn unfit_rows_are_named() {
        assert_eq!(
            check_fits("token_embd.weight", GgmlType::Q4_K, 640).unwrap_err(),
            "token_embd.weight: Q4_K needs rows that are a multiple of 256; the tensor's rows are 640 wide"
        );
        assert_eq!(check_fits("token_embd.weight", GgmlType::Q5_1, 640), Ok(()));
    }
}
