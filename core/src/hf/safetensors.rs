//! The bounded safetensors header and `model.safetensors.index.json` readers.
//!
//! A safetensors file is an 8-byte little-endian header length `N`, `N` bytes of JSON (an object:
//! tensor name → `{"dtype", "shape", "data_offsets": [begin, end]}`, plus an optional
//! `"__metadata__"` object of strings), then the data section; offsets are relative to the data
//! section's start `8 + N`. [`header_len`] bounds `N` before anything is read or allocated;
//! [`parse`] checks every tensor against the file's length, its neighbours and its dtype.

use alloc::borrow::ToOwned;
use alloc::boxed::Box;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use serde::de::{Deserializer, MapAccess, Visitor};
use serde_json::Value as Json;

/// The largest JSON header accepted (100 MiB): real headers are a few MiB at most.
pub const MAX_HEADER_BYTES: u64 = 100 << 20;

/// Why a safetensors header or index cannot be used. The messages name the tensor at fault; the
/// caller names the file with [`SafetensorsError::In`].
#[derive(Debug, thiserror::Error)]
pub enum SafetensorsError {
    /// The error of one file, named.
    #[error("{file}: {source}")]
    In {
        /// The file's name in the model directory.
        file: String,
        /// What is wrong in it.
        source: Box<SafetensorsError>,
    },
    /// The file is shorter than the 8-byte header length.
    #[error("not a safetensors file: {len} bytes, shorter than the 8-byte header length")]
    TooShort {
        /// The file's length.
        len: u64,
    },
    /// The header length is larger than the file or the bound.
    #[error(
        "header length {len} is beyond {limit} (the file's length less 8, or the 100 MiB bound): not a safetensors file, or truncated"
    )]
    HeaderLen {
        /// The length the file states.
        len: u64,
        /// The largest acceptable.
        limit: u64,
    },
    /// The header is not JSON, or not the expected shape.
    #[error("header is not valid safetensors JSON: {0}")]
    Json(String),
    /// The header is JSON but not an object.
    #[error("header is not a JSON object")]
    NotObject,
    /// A tensor name appears twice.
    #[error("tensor {0:?} appears twice in the header")]
    Duplicate(String),
    /// A tensor entry lacks a field or has a field of the wrong type.
    #[error("tensor {name:?}: {what}")]
    Field {
        /// The tensor.
        name: String,
        /// What is wrong.
        what: String,
    },
    /// A dtype safetensors does not define.
    #[error(
        "tensor {name:?}: unknown dtype {dtype:?} (safetensors defines BOOL, U8, I8, I16, U16, F16, BF16, I32, U32, F32, F64, I64, U64, C64, F8_E5M2, F8_E4M3, F8_E8M0, F4, F6_E2M3, F6_E3M2)"
    )]
    UnknownDtype {
        /// The tensor.
        name: String,
        /// The dtype string.
        dtype: String,
    },
    /// `data_offsets` is not `[begin, end]` with `begin <= end` inside the data section.
    #[error("tensor {name:?}: data_offsets [{begin}, {end}] are outside the data section of {data_len} bytes")]
    OutOfBounds {
        /// The tensor.
        name: String,
        /// Relative begin.
        begin: u64,
        /// Relative end.
        end: u64,
        /// The data section's length.
        data_len: u64,
    },
    /// The byte length disagrees with the shape and dtype.
    #[error("tensor {name:?}: {bytes} data bytes, but shape {shape:?} of {dtype} needs {expected}")]
    SizeMismatch {
        /// The tensor.
        name: String,
        /// `end - begin`.
        bytes: u64,
        /// The shape.
        shape: Vec<u64>,
        /// The dtype's name.
        dtype: &'static str,
        /// What the shape needs (`None` when it overflows).
        expected: String,
    },
    /// The data does not start at a multiple of the element size.
    #[error("tensor {name:?}: data offset {begin} is not a multiple of the {dtype} element size {size}")]
    Unaligned {
        /// The tensor.
        name: String,
        /// Relative begin.
        begin: u64,
        /// The dtype's name.
        dtype: &'static str,
        /// Its element size in bytes.
        size: u64,
    },
    /// Two tensors share bytes.
    #[error("tensors {first:?} and {second:?} overlap in the data section")]
    Overlap {
        /// The tensor that starts first.
        first: String,
        /// The one that starts inside it.
        second: String,
    },
    /// `__metadata__` is not an object of strings.
    #[error("__metadata__ must be an object of strings: {0}")]
    Metadata(String),
    /// `model.safetensors.index.json` has no usable `weight_map`.
    #[error("model.safetensors.index.json: {0}")]
    Index(String),
}

impl SafetensorsError {
    /// This error, naming the file it was found in.
    #[must_use]
    pub fn in_file(self, file: &str) -> Self {
        Self::In { file: file.to_owned(), source: Box::new(self) }
    }
}

/// A safetensors element type.
#[expect(
    non_camel_case_types,
    missing_docs,
    reason = "one variant per safetensors dtype, named as the format names it"
)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dtype {
    BOOL,
    U8,
    I8,
    I16,
    U16,
    F16,
    BF16,
    I32,
    U32,
    F32,
    F64,
    I64,
    U64,
    C64,
    F8_E5M2,
    F8_E4M3,
    F8_E8M0,
    F4,
    F6_E2M3,
    F6_E3M2,
}

impl Dtype {
    const ALL: [Self; 20] = [
        Self::BOOL,
        Self::U8,
        Self::I8,
        Self::I16,
        Self::U16,
        Self::F16,
        Self::BF16,
        Self::I32,
        Self::U32,
        Self::F32,
        Self::F64,
        Self::I64,
        Self::U64,
        Self::C64,
        Self::F8_E5M2,
        Self::F8_E4M3,
        Self::F8_E8M0,
        Self::F4,
        Self::F6_E2M3,
        Self::F6_E3M2,
    ];

    /// The dtype a header names, if safetensors defines it.
    #[must_use]
    pub fn from_name(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|d| d.name() == s)
    }

    /// The name the format uses.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::BOOL => "BOOL",
            Self::U8 => "U8",
            Self::I8 => "I8",
            Self::I16 => "I16",
            Self::U16 => "U16",
            Self::F16 => "F16",
            Self::BF16 => "BF16",
            Self::I32 => "I32",
            Self::U32 => "U32",
            Self::F32 => "F32",
            Self::F64 => "F64",
            Self::I64 => "I64",
            Self::U64 => "U64",
            Self::C64 => "C64",
            Self::F8_E5M2 => "F8_E5M2",
            Self::F8_E4M3 => "F8_E4M3",
            Self::F8_E8M0 => "F8_E8M0",
            Self::F4 => "F4",
            Self::F6_E2M3 => "F6_E2M3",
            Self::F6_E3M2 => "F6_E3M2",
        }
    }

    /// Bits per element.
    #[must_use]
    pub const fn bits(self) -> u64 {
        match self {
            Self::F4 => 4,
            Self::F6_E2M3 | Self::F6_E3M2 => 6,
            Self::BOOL | Self::U8 | Self::I8 | Self::F8_E5M2 | Self::F8_E4M3 | Self::F8_E8M0 => 8,
            Self::I16 | Self::U16 | Self::F16 | Self::BF16 => 16,
            Self::I32 | Self::U32 | Self::F32 => 32,
            Self::F64 | Self::I64 | Self::U64 | Self::C64 => 64,
        }
    }

    /// Bytes the data of `elems` elements takes, `None` on overflow or a partial byte.
    #[must_use]
    pub fn bytes_for(self, elems: u64) -> Option<u64> {
        let bits = elems.checked_mul(self.bits())?;
        bits.is_multiple_of(8).then_some(bits / 8)
    }
}

impl fmt::Display for Dtype {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One tensor of a safetensors file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StTensor {
    /// Its name.
    pub name: String,
    /// Element type.
    pub dtype: Dtype,
    /// Shape, PyTorch order (outermost first).
    pub shape: Vec<u64>,
    /// Absolute byte offset of the data in the file.
    pub start: u64,
    /// Absolute end offset (exclusive).
    pub end: u64,
}

impl StTensor {
    /// Element count (the checked product of the shape: [`parse`] rejects overflow).
    #[must_use]
    pub fn elements(&self) -> u64 {
        self.shape.iter().product()
    }
}

/// A parsed safetensors header.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Header {
    /// Tensors, sorted by name (plain byte order, as the reference visits them).
    pub tensors: Vec<StTensor>,
    /// `__metadata__`, in file order.
    pub metadata: Vec<(String, String)>,
    /// Absolute offset of the data section (`8 + header length`).
    pub data_start: u64,
}

impl Header {
    /// The tensor named `name`.
    #[must_use]
    pub fn get(&self, name: &str) -> Option<&StTensor> {
        self.tensors.binary_search_by(|t| t.name.as_str().cmp(name)).ok().map(|i| &self.tensors[i])
    }
}

/// The JSON header's length from the file's first 8 bytes, bounded by the file's length and
/// [`MAX_HEADER_BYTES`].
///
/// # Errors
/// [`SafetensorsError::TooShort`] or [`SafetensorsError::HeaderLen`].
pub fn header_len(prefix: [u8; 8], file_len: u64) -> Result<u64, SafetensorsError> {
    if file_len < 8 {
        return Err(SafetensorsError::TooShort { len: file_len });
    }
    let len = u64::from_le_bytes(prefix);
    let limit = (file_len - 8).min(MAX_HEADER_BYTES);
    if len > limit {
        return Err(SafetensorsError::HeaderLen { len, limit });
    }
    Ok(len)
}

/// A JSON object's entries in file order, duplicates kept (serde_json's map keeps only one).
struct Entries(Vec<(String, Json)>);

impl<'de> serde::Deserialize<'de> for Entries {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Entries;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Entries, A::Error> {
                let mut v = Vec::new();
                while let Some((k, val)) = map.next_entry::<String, Json>()? {
                    v.push((k, val));
                }
                Ok(Entries(v))
            }
        }
        d.deserialize_map(V)
    }
}

/// Parses a JSON object keeping its entries in order; `NotObject` when it is another value.
fn entries(json: &[u8]) -> Result<Vec<(String, Json)>, SafetensorsError> {
    match serde_json::from_slice::<Entries>(json) {
        Ok(e) => Ok(e.0),
        Err(e) if e.is_data() => Err(SafetensorsError::NotObject),
        Err(e) => Err(SafetensorsError::Json(format!("{e}"))),
    }
}

fn field(name: &str, what: &str) -> SafetensorsError {
    SafetensorsError::Field { name: name.to_owned(), what: what.to_owned() }
}

/// Parses the JSON header of a file of `file_len` bytes whose JSON is `json` (so the data
/// section starts at `8 + json.len()`).
///
/// # Errors
/// Any [`SafetensorsError`] but `In`, `TooShort`, `HeaderLen` and `Index`: each names the
/// tensor at fault.
pub fn parse(json: &[u8], file_len: u64) -> Result<Header, SafetensorsError> {
    let data_start = 8 + json.len() as u64;
    let data_len = file_len.checked_sub(data_start).ok_or(SafetensorsError::HeaderLen {
        len: json.len() as u64,
        limit: file_len.saturating_sub(8).min(MAX_HEADER_BYTES),
    })?;
    let mut tensors = Vec::new();
    let mut metadata = Vec::new();
    let mut seen_meta = false;
    for (name, v) in entries(json)? {
        if name == "__metadata__" {
            if seen_meta {
                return Err(SafetensorsError::Duplicate(name));
            }
            seen_meta = true;
            let Json::Object(m) = v else {
                return Err(SafetensorsError::Metadata("not an object".to_owned()));
            };
            for (k, val) in m {
                let Json::String(s) = val else {
                    return Err(SafetensorsError::Metadata(format!("{k:?} is not a string")));
                };
                metadata.push((k, s));
            }
            continue;
        }
        let Json::Object(m) = v else {
            return Err(field(&name, "entry is not an object"));
        };
        let dtype_name = m.get("dtype").and_then(Json::as_str).ok_or_else(|| field(&name, "no \"dtype\" string"))?;
        let dtype = Dtype::from_name(dtype_name)
            .ok_or_else(|| SafetensorsError::UnknownDtype { name: name.clone(), dtype: dtype_name.to_owned() })?;
        let shape: Vec<u64> = m
            .get("shape")
            .and_then(Json::as_array)
            .and_then(|a| a.iter().map(Json::as_u64).collect())
            .ok_or_else(|| field(&name, "no \"shape\" array of non-negative integers"))?;
        let offsets: Vec<u64> = m
            .get("data_offsets")
            .and_then(Json::as_array)
            .and_then(|a| a.iter().map(Json::as_u64).collect())
            .ok_or_else(|| field(&name, "no \"data_offsets\" array of non-negative integers"))?;
        let &[begin, end] = offsets.as_slice() else {
            return Err(field(&name, "\"data_offsets\" must be [begin, end]"));
        };
        if begin > end || end > data_len {
            return Err(SafetensorsError::OutOfBounds { name, begin, end, data_len });
        }
        let expected = shape.iter().try_fold(1u64, |a, &d| a.checked_mul(d)).and_then(|n| dtype.bytes_for(n));
        if expected != Some(end - begin) {
            return Err(SafetensorsError::SizeMismatch {
                bytes: end - begin,
                dtype: dtype.name(),
                expected: expected.map_or_else(|| "more than 2^64 bytes".to_owned(), |e| format!("{e}")),
                name,
                shape,
            });
        }
        let size = dtype.bits().div_ceil(8);
        // Empty tensors hold no element to misalign.
        if end > begin && !begin.is_multiple_of(size) {
            return Err(SafetensorsError::Unaligned { name, begin, dtype: dtype.name(), size });
        }
        tensors.push(StTensor { name, dtype, shape, start: data_start + begin, end: data_start + end });
    }
    tensors.sort_by(|a, b| a.name.cmp(&b.name));
    if let Some(w) = tensors.windows(2).find(|w| w[0].name == w[1].name) {
        return Err(SafetensorsError::Duplicate(w[0].name.clone()));
    }
    let mut by_start: Vec<&StTensor> = tensors.iter().filter(|t| t.end > t.start).collect();
    by_start.sort_by_key(|t| t.start);
    if let Some(w) = by_start.windows(2).find(|w| w[1].start < w[0].end) {
        return Err(SafetensorsError::Overlap { first: w[0].name.clone(), second: w[1].name.clone() });
    }
    Ok(Header { tensors, metadata, data_start })
}

/// `model.safetensors.index.json`: which shard holds each tensor.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Index {
    /// Tensor name → shard file name, in file order.
    pub weight_map: Vec<(String, String)>,
}

impl Index {
    /// The shard files it names, sorted and without repeats (the reference's part list).
    #[must_use]
    pub fn files(&self) -> Vec<&str> {
        let mut f: Vec<&str> = self.weight_map.iter().map(|(_, f)| f.as_str()).collect();
        f.sort_unstable();
        f.dedup();
        f
    }
}

/// Parses `model.safetensors.index.json`.
///
/// # Errors
/// [`SafetensorsError::Index`] when it is not JSON, has no `weight_map` object of strings, or
/// names a tensor twice.
pub fn parse_index(json: &[u8]) -> Result<Index, SafetensorsError> {
    /// The index's top level: only `weight_map` is read, keeping its duplicates.
    struct Top(Option<Entries>, bool);
    impl<'de> serde::Deserialize<'de> for Top {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct V;
            impl<'de> Visitor<'de> for V {
                type Value = Top;
                fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                    f.write_str("a JSON object")
                }
                fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Top, A::Error> {
                    let mut top = Top(None, false);
                    while let Some(k) = map.next_key::<String>()? {
                        if k == "weight_map" {
                            top.1 |= top.0.is_some();
                            top.0 = Some(map.next_value::<Entries>()?);
                        } else {
                            map.next_value::<serde::de::IgnoredAny>()?;
                        }
                    }
                    Ok(top)
                }
            }
            d.deserialize_map(V)
        }
    }
    let e = |m: String| SafetensorsError::Index(m);
    let top = serde_json::from_slice::<Top>(json)
        .map_err(|err| e(format!("not a JSON object with a \"weight_map\" object: {err}")))?;
    if top.1 {
        return Err(e("\"weight_map\" appears twice".to_owned()));
    }
    let raw = top.0.ok_or_else(|| e("no \"weight_map\" object".to_owned()))?.0;
    let mut weight_map = Vec::with_capacity(raw.len());
    for (k, v) in raw {
        let Json::String(f) = v else {
            return Err(e(format!("weight_map entry {k:?} is not a file name string")));
        };
        weight_map.push((k, f));
    }
    let mut names: Vec<&str> = weight_map.iter().map(|(k, _)| k.as_str()).collect();
    names.sort_unstable();
    if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
        return Err(e(format!("weight_map names tensor {:?} twice", w[0])));
    }
    Ok(Index { weight_map })
}
