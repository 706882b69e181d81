//! Importance matrices as `llama-imatrix` writes them — the GGUF format (`general.type =
//! "imatrix"`, `W.in_sum2` / `W.counts` tensors) and the legacy `.dat` — turned into what
//! `llama-quantize` uses: per tensor name, one importance value per input column (per expert,
//! expert-major, for 3-D expert tensors). Bounded: every length is checked against the bytes
//! before anything is allocated; a hostile file is an [`ImatrixError`] naming the fault.
//!
//! As llama-quantize: GGUF is tried first and the legacy reader is the fallback; a GGUF slice
//! whose count is 0 gets importance 1.0; a non-finite importance refuses the whole file.

use alloc::borrow::ToOwned;
use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec::Vec;
use alloc::{format, vec};

use crate::ggml_type::GgmlType;
use crate::gguf::{self, Array, GgufError, Value};

/// The most entries (tensors) an importance matrix may hold.
pub const MAX_ENTRIES: usize = 1 << 20;

/// A parsed importance matrix.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Imatrix {
    /// Per tensor name (as in the model, e.g. `blk.0.attn_q.weight`): one importance value per
    /// column, expert slices one after another.
    pub entries: BTreeMap<String, Vec<f32>>,
    /// The calibration data set's name(s), joined as llama-quantize writes
    /// `quantize.imatrix.dataset` (the first one).
    pub dataset: Option<String>,
    /// Chunks evaluated (`quantize.imatrix.chunks_count`).
    pub chunk_count: Option<u32>,
    /// Which of the two formats the file is.
    pub format: Format,
}

/// The file format of an importance matrix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    /// GGUF (`--output-format gguf`).
    #[default]
    Gguf,
    /// The legacy binary `.dat`.
    Dat,
}

/// Why an importance matrix cannot be used.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ImatrixError {
    /// A GGUF file whose header does not parse.
    #[error("importance matrix: not a valid GGUF file: {0}")]
    Gguf(GgufError),
    /// A GGUF file that is not an importance matrix.
    #[error("importance matrix: missing imatrix metadata ({0}): this GGUF is not an importance matrix")]
    Metadata(&'static str),
    /// An `in_sum2` without its `counts`, or the reverse.
    #[error("importance matrix: tensor {0:?} has no partner ({1})")]
    Unpaired(String, &'static str),
    /// A tensor of the wrong type or shape.
    #[error("importance matrix: tensor {name:?}: {reason}")]
    Tensor {
        /// The tensor.
        name: String,
        /// What is wrong.
        reason: String,
    },
    /// The legacy file ends early or holds impossible lengths.
    #[error("importance matrix: truncated or malformed .dat at byte {at}: {what}")]
    Dat {
        /// Byte offset.
        at: usize,
        /// What was being read.
        what: &'static str,
    },
    /// An importance value that is not finite.
    #[error("importance matrix: entry {0:?} has a non-finite importance value")]
    NotFinite(String),
    /// No entries at all.
    #[error("importance matrix: no entries")]
    Empty,
}

/// Parses an importance matrix in either format.
///
/// # Errors
/// An [`ImatrixError`] naming the fault. A file that starts with the GGUF magic is judged as
/// GGUF only.
pub fn parse(bytes: &[u8]) -> Result<Imatrix, ImatrixError> {
    let m = if gguf::sniff(bytes) { parse_gguf(bytes)? } else { parse_dat(bytes)? };
    if m.entries.is_empty() {
        return Err(ImatrixError::Empty);
    }
    if let Some((name, _)) = m.entries.iter().find(|(_, v)| v.iter().any(|x| !x.is_finite())) {
        return Err(ImatrixError::NotFinite(name.clone()));
    }
    Ok(m)
}

fn f32s(bytes: &[u8]) -> Vec<f32> {
    bytes.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()
}

fn parse_gguf(bytes: &[u8]) -> Result<Imatrix, ImatrixError> {
    let h = gguf::parse(&mut &bytes[..], bytes.len() as u64).map_err(ImatrixError::Gguf)?;
    let dataset = match h.get("imatrix.datasets") {
        Some(Value::Array(Array::Str(v))) => v.first().map(|s| String::from_utf8_lossy(s).into_owned()),
        _ => return Err(ImatrixError::Metadata("imatrix.datasets")),
    };
    let chunk_count = h.get_u64("imatrix.chunk_count").ok_or(ImatrixError::Metadata("imatrix.chunk_count"))?;
    h.get_u64("imatrix.chunk_size").ok_or(ImatrixError::Metadata("imatrix.chunk_size"))?;
    let data = |t: &gguf::TensorInfo| -> Result<Vec<f32>, ImatrixError> {
        if t.ty != GgmlType::F32 {
            return Err(ImatrixError::Tensor { name: t.name.clone(), reason: format!("is {}, not F32", t.ty.name()) });
        }
        // The parser checked every tensor lies inside the file.
        let start = usize::try_from(h.data_offset + t.offset).unwrap_or(usize::MAX);
        let len = usize::try_from(t.size()).unwrap_or(usize::MAX);
        let raw = bytes
            .get(start..start.saturating_add(len))
            .ok_or_else(|| ImatrixError::Tensor { name: t.name.clone(), reason: "data outside the file".to_owned() })?;
        Ok(f32s(raw))
    };
    let by_name: BTreeMap<&str, &gguf::TensorInfo> = h.tensors.iter().map(|t| (t.name.as_str(), t)).collect();
    let mut entries = BTreeMap::new();
    for t in &h.tensors {
        if let Some(base) = t.name.strip_suffix(".counts") {
            if !by_name.contains_key(format!("{base}.in_sum2").as_str()) {
                return Err(ImatrixError::Unpaired(t.name.clone(), "no .in_sum2"));
            }
            continue;
        }
        let Some(base) = t.name.strip_suffix(".in_sum2") else { continue };
        let counts = by_name
            .get(format!("{base}.counts").as_str())
            .ok_or_else(|| ImatrixError::Unpaired(t.name.clone(), "no .counts"))?;
        let (sums, counts) = (data(t)?, data(counts)?);
        let n_expert = counts.len();
        if n_expert == 0 || sums.len() % n_expert != 0 {
            return Err(ImatrixError::Tensor {
                name: t.name.clone(),
                reason: format!("{} values do not split into {n_expert} expert slices", sums.len()),
            });
        }
        let cols = sums.len() / n_expert;
        let values = sums
            .chunks_exact(cols)
            .zip(&counts)
            // The loader rounds the stored f32 count to an integer (lround), then divides by it.
            .flat_map(|(slice, &c)| {
                let c = libm::roundf(c) as i64 as f32;
                slice.iter().map(move |&s| if c > 0.0 { s / c } else { 1.0 })
            })
            .collect();
        entries.insert(base.to_owned(), values);
    }
    Ok(Imatrix { entries, dataset, chunk_count: u32::try_from(chunk_count).ok(), format: Format::Gguf })
}

/// A bounded little-endian reader over the legacy format.
struct Dat<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Dat<'_> {
    fn take(&mut self, n: usize, what: &'static str) -> Result<&[u8], ImatrixError> {
        let end =
            self.at.checked_add(n).filter(|&e| e <= self.bytes.len()).ok_or(ImatrixError::Dat { at: self.at, what })?;
        let s = &self.bytes[self.at..end];
        self.at = end;
        Ok(s)
    }

    fn i32(&mut self, what: &'static str) -> Result<i32, ImatrixError> {
        let b = self.take(4, what)?;
        Ok(i32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// A count read as i32 that must be ≥ 0 and fit `per`-byte items in what is left.
    fn len(&mut self, per: usize, what: &'static str) -> Result<usize, ImatrixError> {
        let at = self.at;
        let n = usize::try_from(self.i32(what)?).map_err(|_| ImatrixError::Dat { at, what })?;
        if n.saturating_mul(per) > self.bytes.len() - self.at {
            return Err(ImatrixError::Dat { at, what });
        }
        Ok(n)
    }
}

fn parse_dat(bytes: &[u8]) -> Result<Imatrix, ImatrixError> {
    let mut r = Dat { bytes, at: 0 };
    // Each entry takes at least 12 bytes (three i32s).
    let n = r.len(12, "entry count")?;
    if n == 0 || n > MAX_ENTRIES {
        return Err(ImatrixError::Dat { at: 0, what: "entry count" });
    }
    let mut entries = BTreeMap::new();
    for _ in 0..n {
        let len = r.len(1, "name length")?;
        // The loader reads the name as a C string: it ends at the first NUL.
        let raw = r.take(len, "name")?;
        let raw = raw.split(|&b| b == 0).next().unwrap_or_default();
        let name = String::from_utf8_lossy(raw).into_owned();
        let ncall = r.i32("ncall")?;
        let at = r.at;
        let nval = r.len(4, "value count")?;
        if nval == 0 {
            return Err(ImatrixError::Dat { at, what: "value count" });
        }
        let mut values = f32s(r.take(nval * 4, "values")?);
        if ncall > 0 {
            // As llama-quantize: the stored values are sums scaled to ncall calls.
            let ncall = ncall as f32;
            for v in &mut values {
                *v /= ncall;
            }
        }
        entries.insert(name, values);
    }
    // The trailer is optional, and the loader keeps what it could read of it.
    let (mut chunk_count, mut dataset) = (None, None);
    if r.at < bytes.len() {
        chunk_count = r.i32("chunk count").ok().and_then(|c| u32::try_from(c).ok());
        if let Ok(len) = r.len(1, "dataset name length")
            && len > 0
            && let Ok(name) = r.take(len, "dataset name")
        {
            let name = name.split(|&b| b == 0).next().unwrap_or_default();
            dataset = Some(String::from_utf8_lossy(name).into_owned());
        }
    }
    Ok(Imatrix { entries, dataset, chunk_count, format: Format::Dat })
}

impl Imatrix {
    /// The importance vector llama-quantize uses for a tensor of `cols` columns and `experts`
    /// expert slices: `Ok(None)` when the matrix has no entry (the tensor is then quantized
    /// without weights) or, for `token_embd.weight` only, an entry of another length.
    ///
    /// # Errors
    /// An entry whose length is not `cols × experts` (llama-quantize stops there too).
    pub fn weights_for(&self, name: &str, cols: u64, experts: u64) -> Result<Option<&[f32]>, ImatrixError> {
        let Some(v) = self.entries.get(name) else { return Ok(None) };
        if v.len() as u64 == cols.saturating_mul(experts) {
            return Ok(Some(v));
        }
        if name == "token_embd.weight" {
            return Ok(None);
        }
        Err(ImatrixError::Tensor {
            name: name.to_owned(),
            reason: format!("has {} importance values, the model's tensor needs {cols} × {experts}", v.len()),
        })
    }

    /// llama-quantize's `--exclude-weights` / `--include-weights`: drops the entries whose name
    /// contains one of `exclude`, then, when `include` is not empty, keeps only those whose name
    /// contains one of `include`. `entries_count` then counts what is left.
    pub fn filter_entries(&mut self, include: &[String], exclude: &[String]) {
        self.entries.retain(|name, _| !exclude.iter().any(|x| name.contains(x.as_str())));
        if !include.is_empty() {
            self.entries.retain(|name, _| include.iter().any(|x| name.contains(x.as_str())));
        }
    }

    /// The `quantize.imatrix.*` keys llama-quantize appends, in its order; `file` is the name
    /// the matrix was given. Strings are cut at 127 bytes, as its fixed-size override values.
    #[must_use]
    pub fn metadata(&self, file: &str) -> Vec<(String, Value)> {
        let cut = |s: &str| s.as_bytes()[..s.len().min(127)].to_vec();
        let mut kv = vec![("quantize.imatrix.file".to_owned(), Value::Str(cut(file)))];
        if let Some(d) = &self.dataset {
            kv.push(("quantize.imatrix.dataset".to_owned(), Value::Str(cut(d))));
        }
        kv.push(("quantize.imatrix.entries_count".to_owned(), Value::U32(self.entries.len() as u32)));
        if let Some(c) = self.chunk_count.filter(|&c| c > 0) {
            kv.push(("quantize.imatrix.chunks_count".to_owned(), Value::U32(c)));
        }
        kv
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> Vec<u8> {
        let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/fixtures/imatrix").join(name);
        std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
    }

    #[test]
    fn both_formats_of_the_gemma_matrix_give_the_same_importance() {
        let g = parse(&fixture("gemma3-270m-gpl3.imatrix.gguf")).unwrap();
        let d = parse(&fixture("gemma3-270m-gpl3.imatrix.dat")).unwrap();
        assert_eq!((g.format, d.format), (Format::Gguf, Format::Dat));
        assert_eq!(g.entries.len(), 126);
        // The README: all 126 entries bit-identical after the division.
        assert_eq!(g.entries, d.entries);
        assert_eq!(g.dataset.as_deref(), Some("GPL-3.txt"));
        assert_eq!((g.chunk_count, d.chunk_count, d.dataset.as_deref()), (Some(32), Some(32), Some("GPL-3.txt")));
        let q = g.weights_for("blk.0.attn_q.weight", 640, 1).unwrap().unwrap();
        assert!(q.iter().all(|v| v.is_finite() && *v >= 0.0));
        assert_eq!(g.weights_for("token_embd.weight", 640, 1).unwrap(), None);
        assert!(g.weights_for("blk.0.attn_q.weight", 641, 1).is_err());
        let kv = g.metadata("gemma3-270m-gpl3.imatrix.gguf");
        let keys: Vec<&str> = kv.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            keys,
            [
                "quantize.imatrix.file",
                "quantize.imatrix.dataset",
                "quantize.imatrix.entries_count",
                "quantize.imatrix.chunks_count"
            ]
        );
        assert_eq!(kv[2].1, Value::U32(126));
    }

    #[test]
    fn hostile_files_are_refused_with_the_fault() {
        let dat = fixture("gemma3-270m-gpl3.imatrix.dat");
        for cut in [0, 3, 4, 10, 100, dat.len() / 2] {
            assert!(parse(&dat[..cut]).is_err(), "cut at {cut}");
        }
        // A value count far past the end.
        let mut bad = 1i32.to_le_bytes().to_vec();
        bad.extend_from_slice(&1i32.to_le_bytes());
        bad.push(b'w');
        bad.extend_from_slice(&1i32.to_le_bytes());
        bad.extend_from_slice(&i32::MAX.to_le_bytes());
        assert!(matches!(parse(&bad), Err(ImatrixError::Dat { what: "value count", .. })));
        // A negative entry count, and a non-finite value.
        assert!(parse(&(-5i32).to_le_bytes()).is_err());
        let mut nan = Vec::new();
        nan.extend_from_slice(&1i32.to_le_bytes());
        nan.extend_from_slice(&1i32.to_le_bytes());
        nan.push(b'w');
        nan.extend_from_slice(&1i32.to_le_bytes());
        nan.extend_from_slice(&1i32.to_le_bytes());
        nan.extend_from_slice(&f32::NAN.to_le_bytes());
        assert_eq!(parse(&nan), Err(ImatrixError::NotFinite("w".into())));
        // A GGUF that is a model, not an importance matrix.
        let model = gguf::encode_header(&[("general.architecture".into(), Value::Str(b"llama".to_vec()))], &[], 32);
        assert_eq!(parse(&model), Err(ImatrixError::Metadata("imatrix.datasets")));
    }
}
