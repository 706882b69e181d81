//! Sans-I/O GGUF v2/v3 header parser and encoder (`shared/spec/quantization.md` §1).
//!
//! The parser pulls bytes through [`Source`] and knows the file length up front, so every count
//! and length is checked against the bytes that remain *before* anything is allocated: a crafted
//! header cannot make kiln allocate more than a small multiple of the file itself, nor read past
//! its end. Tensor infos are checked for known types, 1–4 positive dimensions, element counts and
//! byte sizes that do not overflow, aligned offsets, and data that lies inside the file without
//! overlapping another tensor.

use alloc::collections::BTreeSet;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use crate::ggml_type::GgmlType;

/// `GGUF` as a little-endian u32.
pub const MAGIC: [u8; 4] = *b"GGUF";
/// Default and written alignment.
pub const DEFAULT_ALIGNMENT: u64 = 32;
/// Largest header (key/values + tensor infos) kiln accepts: far above real models (~30 MB).
pub const MAX_HEADER_BYTES: u64 = 256 << 20;
/// ggml's cap on tensor names (64 bytes including the C terminator).
pub const MAX_NAME_BYTES: usize = 63;
/// ggml's cap on dimensions.
pub const MAX_DIMS: u32 = 4;

/// Why a GGUF file was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GgufError {
    /// Not a GGUF file.
    #[error("invalid file magic")]
    Magic,
    /// A byte-swapped header.
    #[error("big-endian GGUF files are not supported")]
    BigEndian,
    /// Version other than 2 or 3.
    #[error("unsupported GGUF version {0}")]
    Version(u32),
    /// The file ends early.
    #[error("GGUF file is truncated: needed {needed} bytes for {what} at offset {at}, but the file is {len} bytes")]
    Truncated {
        /// What was being read.
        what: &'static str,
        /// Where.
        at: u64,
        /// How many bytes.
        needed: u64,
        /// File length.
        len: u64,
    },
    /// A count that cannot fit in the file.
    #[error("invalid GGUF header: {0}")]
    Invalid(String),
    /// A tensor info that cannot be right.
    #[error("invalid tensor \"{name}\": {reason}")]
    Tensor {
        /// Tensor name.
        name: String,
        /// What is wrong.
        reason: String,
    },
    /// The byte source failed.
    #[error("{0}")]
    Io(String),
}

/// Where the parser gets its bytes from (a file on the server, a slice in tests and fuzzing).
pub trait Source {
    /// Fills `buf` completely.
    ///
    /// # Errors
    /// [`GgufError::Io`] on failure (the parser turns early ends into `Truncated` itself).
    fn read_exact(&mut self, buf: &mut [u8]) -> Result<(), GgufError>;
}

impl Source for &[u8] {
    fn read_exact(&mut self, buf: &mut [u8]) -> Result<(), GgufError> {
        if buf.len() > self.len() {
            return Err(GgufError::Io("unexpected end of data".into()));
        }
        let (head, tail) = self.split_at(buf.len());
        buf.copy_from_slice(head);
        *self = tail;
        Ok(())
    }
}

/// A metadata value type id.
#[expect(missing_docs, reason = "GGUF's value types, named as the spec names them")]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum ValueType {
    U8 = 0,
    I8 = 1,
    U16 = 2,
    I16 = 3,
    U32 = 4,
    I32 = 5,
    F32 = 6,
    Bool = 7,
    String = 8,
    Array = 9,
    U64 = 10,
    I64 = 11,
    F64 = 12,
}

impl ValueType {
    fn from_id(id: u32) -> Option<Self> {
        use ValueType as V;
        Some(match id {
            0 => V::U8,
            1 => V::I8,
            2 => V::U16,
            3 => V::I16,
            4 => V::U32,
            5 => V::I32,
            6 => V::F32,
            7 => V::Bool,
            8 => V::String,
            9 => V::Array,
            10 => V::U64,
            11 => V::I64,
            12 => V::F64,
            _ => return None,
        })
    }

    /// Smallest encoded size of one value of this type.
    fn min_size(self) -> u64 {
        match self {
            Self::U8 | Self::I8 | Self::Bool => 1,
            Self::U16 | Self::I16 => 2,
            Self::U32 | Self::I32 | Self::F32 => 4,
            Self::U64 | Self::I64 | Self::F64 | Self::String => 8,
            Self::Array => 12,
        }
    }
}

/// An array value, typed so numeric arrays cost no more memory than their bytes in the file.
#[expect(missing_docs, reason = "one variant per GGUF element type, named after it")]
#[derive(Debug, Clone, PartialEq)]
pub enum Array {
    U8(Vec<u8>),
    I8(Vec<i8>),
    U16(Vec<u16>),
    I16(Vec<i16>),
    U32(Vec<u32>),
    I32(Vec<i32>),
    F32(Vec<f32>),
    Bool(Vec<bool>),
    Str(Vec<Vec<u8>>),
    U64(Vec<u64>),
    I64(Vec<i64>),
    F64(Vec<f64>),
}

impl Array {
    /// Number of elements.
    #[must_use]
    pub fn len(&self) -> usize {
        match self {
            Self::U8(v) => v.len(),
            Self::I8(v) => v.len(),
            Self::U16(v) => v.len(),
            Self::I16(v) => v.len(),
            Self::U32(v) => v.len(),
            Self::I32(v) => v.len(),
            Self::F32(v) => v.len(),
            Self::Bool(v) => v.len(),
            Self::Str(v) => v.len(),
            Self::U64(v) => v.len(),
            Self::I64(v) => v.len(),
            Self::F64(v) => v.len(),
        }
    }

    /// Whether it has no elements.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn elem_type(&self) -> ValueType {
        match self {
            Self::U8(_) => ValueType::U8,
            Self::I8(_) => ValueType::I8,
            Self::U16(_) => ValueType::U16,
            Self::I16(_) => ValueType::I16,
            Self::U32(_) => ValueType::U32,
            Self::I32(_) => ValueType::I32,
            Self::F32(_) => ValueType::F32,
            Self::Bool(_) => ValueType::Bool,
            Self::Str(_) => ValueType::String,
            Self::U64(_) => ValueType::U64,
            Self::I64(_) => ValueType::I64,
            Self::F64(_) => ValueType::F64,
        }
    }
}

/// A metadata value. Strings are kept as bytes: GGUF says UTF-8 but tokenizer vocabularies do
/// not always comply, and re-encoding must reproduce the input exactly.
#[expect(missing_docs, reason = "one variant per GGUF value type, named after it")]
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    U8(u8),
    I8(i8),
    U16(u16),
    I16(i16),
    U32(u32),
    I32(i32),
    F32(f32),
    Bool(bool),
    Str(Vec<u8>),
    Array(Array),
    U64(u64),
    I64(i64),
    F64(f64),
}

impl Value {
    /// The value as an unsigned integer, if it is a non-negative integer of any width.
    #[must_use]
    pub fn as_u64(&self) -> Option<u64> {
        match *self {
            Self::U8(v) => Some(v.into()),
            Self::U16(v) => Some(v.into()),
            Self::U32(v) => Some(v.into()),
            Self::U64(v) => Some(v),
            Self::I8(v) => u64::try_from(v).ok(),
            Self::I16(v) => u64::try_from(v).ok(),
            Self::I32(v) => u64::try_from(v).ok(),
            Self::I64(v) => u64::try_from(v).ok(),
            _ => None,
        }
    }

    /// The value as text, if it is a UTF-8 string.
    #[must_use]
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Self::Str(b) => core::str::from_utf8(b).ok(),
            _ => None,
        }
    }

    fn value_type(&self) -> ValueType {
        match self {
            Self::U8(_) => ValueType::U8,
            Self::I8(_) => ValueType::I8,
            Self::U16(_) => ValueType::U16,
            Self::I16(_) => ValueType::I16,
            Self::U32(_) => ValueType::U32,
            Self::I32(_) => ValueType::I32,
            Self::F32(_) => ValueType::F32,
            Self::Bool(_) => ValueType::Bool,
            Self::Str(_) => ValueType::String,
            Self::Array(_) => ValueType::Array,
            Self::U64(_) => ValueType::U64,
            Self::I64(_) => ValueType::I64,
            Self::F64(_) => ValueType::F64,
        }
    }
}

/// One tensor's description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorInfo {
    /// Unique name, e.g. `blk.0.attn_q.weight`.
    pub name: String,
    /// `ne[0..n]`: `ne[0]` is the row length.
    pub dims: Vec<u64>,
    /// Storage type.
    pub ty: GgmlType,
    /// Offset relative to the data section.
    pub offset: u64,
}

impl TensorInfo {
    /// Number of elements (checked when parsed).
    #[must_use]
    pub fn elements(&self) -> u64 {
        self.dims.iter().product()
    }

    /// Bytes of data (checked when parsed).
    #[must_use]
    pub fn size(&self) -> u64 {
        self.ty.bytes_for(self.elements()).unwrap_or(0)
    }

    /// Row length.
    #[must_use]
    pub fn row_len(&self) -> u64 {
        self.dims.first().copied().unwrap_or(1)
    }
}

/// A parsed header.
#[derive(Debug, Clone, PartialEq)]
pub struct Header {
    /// 2 or 3.
    pub version: u32,
    /// Key/values in file order.
    pub kvs: Vec<(String, Value)>,
    /// Tensor infos in file order.
    pub tensors: Vec<TensorInfo>,
    /// Data alignment.
    pub alignment: u64,
    /// Absolute offset of the data section.
    pub data_offset: u64,
}

impl Header {
    /// A metadata value by key.
    #[must_use]
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.kvs.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// A string metadata value by key.
    #[must_use]
    pub fn get_str(&self, key: &str) -> Option<&str> {
        self.get(key).and_then(Value::as_str)
    }

    /// An integer metadata value by key.
    #[must_use]
    pub fn get_u64(&self, key: &str) -> Option<u64> {
        self.get(key).and_then(Value::as_u64)
    }

    /// `general.architecture`.
    #[must_use]
    pub fn architecture(&self) -> Option<&str> {
        self.get_str("general.architecture")
    }

    /// `general.file_type`.
    #[must_use]
    pub fn file_type(&self) -> Option<u32> {
        self.get_u64("general.file_type").and_then(|v| u32::try_from(v).ok())
    }

    /// Sum of all tensors' element counts (Ollama's parameter count).
    #[must_use]
    pub fn parameter_count(&self) -> u64 {
        self.tensors.iter().map(TensorInfo::elements).fold(0u64, u64::saturating_add)
    }
}

struct Reader<'a, S: Source> {
    src: &'a mut S,
    pos: u64,
    len: u64,
}

impl<S: Source> Reader<'_, S> {
    fn remaining(&self) -> u64 {
        self.len.saturating_sub(self.pos)
    }

    fn need(&self, n: u64, what: &'static str) -> Result<(), GgufError> {
        if n > self.remaining() {
            return Err(GgufError::Truncated { what, at: self.pos, needed: n, len: self.len });
        }
        Ok(())
    }

    fn bytes<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], GgufError> {
        self.need(N as u64, what)?;
        let mut b = [0u8; N];
        self.src.read_exact(&mut b)?;
        self.pos += N as u64;
        Ok(b)
    }

    fn u32(&mut self, what: &'static str) -> Result<u32, GgufError> {
        self.bytes::<4>(what).map(u32::from_le_bytes)
    }

    fn u64(&mut self, what: &'static str) -> Result<u64, GgufError> {
        self.bytes::<8>(what).map(u64::from_le_bytes)
    }

    fn vec(&mut self, n: u64, what: &'static str) -> Result<Vec<u8>, GgufError> {
        self.need(n, what)?;
        let n = usize::try_from(n).map_err(|_| GgufError::Invalid(format!("{what} too long")))?;
        let mut v = alloc::vec![0u8; n];
        self.src.read_exact(&mut v)?;
        self.pos += n as u64;
        Ok(v)
    }

    fn string(&mut self, what: &'static str) -> Result<Vec<u8>, GgufError> {
        let n = self.u64(what)?;
        if n > self.remaining() {
            return Err(GgufError::Invalid(format!(
                "{what} length {n} at offset {} runs past the end of the file ({} bytes)",
                self.pos - 8,
                self.len
            )));
        }
        self.vec(n, what)
    }

    /// Reads `count` fixed-size elements in chunks, decoding each with `f`.
    fn fixed<T, const N: usize>(&mut self, count: u64, f: fn([u8; N]) -> T) -> Result<Vec<T>, GgufError> {
        let mut out = Vec::new();
        let mut left = count;
        let mut buf = [0u8; 4096];
        let per = (4096 / N) as u64;
        while left > 0 {
            let n = left.min(per);
            let bytes = (n as usize) * N;
            self.need(bytes as u64, "array data")?;
            self.src.read_exact(&mut buf[..bytes])?;
            self.pos += bytes as u64;
            out.extend(buf[..bytes].chunks_exact(N).map(|c| {
                let mut a = [0u8; N];
                a.copy_from_slice(c);
                f(a)
            }));
            left -= n;
        }
        Ok(out)
    }

    fn value(&mut self, ty: ValueType) -> Result<Value, GgufError> {
        Ok(match ty {
            ValueType::U8 => Value::U8(self.bytes::<1>("value")?[0]),
            ValueType::I8 => Value::I8(i8::from_le_bytes(self.bytes("value")?)),
            ValueType::U16 => Value::U16(u16::from_le_bytes(self.bytes("value")?)),
            ValueType::I16 => Value::I16(i16::from_le_bytes(self.bytes("value")?)),
            ValueType::U32 => Value::U32(self.u32("value")?),
            ValueType::I32 => Value::I32(i32::from_le_bytes(self.bytes("value")?)),
            ValueType::F32 => Value::F32(f32::from_le_bytes(self.bytes("value")?)),
            ValueType::Bool => Value::Bool(self.bool()?),
            ValueType::String => Value::Str(self.string("string value")?),
            ValueType::U64 => Value::U64(self.u64("value")?),
            ValueType::I64 => Value::I64(i64::from_le_bytes(self.bytes("value")?)),
            ValueType::F64 => Value::F64(f64::from_le_bytes(self.bytes("value")?)),
            ValueType::Array => Value::Array(self.array()?),
        })
    }

    fn bool(&mut self) -> Result<bool, GgufError> {
        match self.bytes::<1>("bool")?[0] {
            0 => Ok(false),
            1 => Ok(true),
            b => Err(GgufError::Invalid(format!("bool value {b} at offset {}", self.pos - 1))),
        }
    }

    fn array(&mut self) -> Result<Array, GgufError> {
        let id = self.u32("array type")?;
        let ty =
            ValueType::from_id(id).ok_or_else(|| GgufError::Invalid(format!("unknown array element type {id}")))?;
        let count = self.u64("array length")?;
        if ty == ValueType::Array {
            return Err(GgufError::Invalid("nested arrays are not supported".into()));
        }
        if count.checked_mul(ty.min_size()).is_none_or(|b| b > self.remaining()) || count > (1 << 30) {
            return Err(GgufError::Invalid(format!(
                "array of {count} elements at offset {} cannot fit in the {} bytes left",
                self.pos,
                self.remaining()
            )));
        }
        Ok(match ty {
            ValueType::U8 => Array::U8(self.vec(count, "array data")?),
            ValueType::I8 => Array::I8(self.fixed(count, i8::from_le_bytes)?),
            ValueType::U16 => Array::U16(self.fixed(count, u16::from_le_bytes)?),
            ValueType::I16 => Array::I16(self.fixed(count, i16::from_le_bytes)?),
            ValueType::U32 => Array::U32(self.fixed(count, u32::from_le_bytes)?),
            ValueType::I32 => Array::I32(self.fixed(count, i32::from_le_bytes)?),
            ValueType::F32 => Array::F32(self.fixed(count, f32::from_le_bytes)?),
            ValueType::U64 => Array::U64(self.fixed(count, u64::from_le_bytes)?),
            ValueType::I64 => Array::I64(self.fixed(count, i64::from_le_bytes)?),
            ValueType::F64 => Array::F64(self.fixed(count, f64::from_le_bytes)?),
            ValueType::Bool => {
                let raw = self.vec(count, "array data")?;
                if let Some(b) = raw.iter().find(|&&b| b > 1) {
                    return Err(GgufError::Invalid(format!("bool value {b} in array")));
                }
                Array::Bool(raw.into_iter().map(|b| b == 1).collect())
            }
            ValueType::String => {
                let mut v = Vec::new();
                for _ in 0..count {
                    v.push(self.string("string in array")?);
                }
                Array::Str(v)
            }
            ValueType::Array => {
                return Err(GgufError::Invalid("nested arrays are not supported".into()));
            }
        })
    }
}

fn bad_tensor(name: &str, reason: String) -> GgufError {
    GgufError::Tensor { name: name.into(), reason }
}

/// Parses a GGUF header from `src`, a file of `file_len` bytes.
///
/// # Errors
/// A [`GgufError`] saying what is wrong and where.
#[expect(clippy::too_many_lines, reason = "the file's sections in file order, each bounded before it is allocated")]
pub fn parse<S: Source>(src: &mut S, file_len: u64) -> Result<Header, GgufError> {
    let mut r = Reader { src, pos: 0, len: file_len };
    if r.bytes::<4>("magic")? != MAGIC {
        return Err(GgufError::Magic);
    }
    let version = r.u32("version")?;
    if version != 0 && version & 0xFFFF == 0 {
        return Err(GgufError::BigEndian);
    }
    if version != 2 && version != 3 {
        return Err(GgufError::Version(version));
    }
    let n_tensors = r.u64("tensor count")?;
    let n_kv = r.u64("key/value count")?;
    // Smallest records: a key/value is 8 + 1 + 4 + 1 bytes; a tensor info 8 + 1 + 4 + 8 + 4 + 8.
    if n_kv.checked_mul(14).is_none_or(|b| b > r.remaining()) {
        return Err(GgufError::Invalid(format!("{n_kv} key/values cannot fit in a file of {file_len} bytes")));
    }
    if n_tensors.checked_mul(33).is_none_or(|b| b > r.remaining()) {
        return Err(GgufError::Invalid(format!("{n_tensors} tensors cannot fit in a file of {file_len} bytes")));
    }
    let mut kvs: Vec<(String, Value)> = Vec::new();
    let mut keys = BTreeSet::new();
    for _ in 0..n_kv {
        let key = r.string("key")?;
        let key = String::from_utf8(key).map_err(|_| GgufError::Invalid("key is not UTF-8".into()))?;
        if key.is_empty() {
            return Err(GgufError::Invalid("empty key".into()));
        }
        let id = r.u32("value type")?;
        let ty = ValueType::from_id(id)
            .ok_or_else(|| GgufError::Invalid(format!("key \"{key}\" has unknown value type {id}")))?;
        let value = r.value(ty)?;
        if !keys.insert(key.clone()) {
            return Err(GgufError::Invalid(format!("duplicate key \"{key}\"")));
        }
        kvs.push((key, value));
        if r.pos > MAX_HEADER_BYTES {
            return Err(GgufError::Invalid(format!("metadata larger than {MAX_HEADER_BYTES} bytes")));
        }
    }
    let alignment = match kvs.iter().find(|(k, _)| k == "general.alignment").map(|(_, v)| v) {
        None => DEFAULT_ALIGNMENT,
        Some(Value::U32(a)) if *a != 0 && a.is_power_of_two() => u64::from(*a),
        Some(v) => {
            return Err(GgufError::Invalid(format!("general.alignment must be a power-of-two u32, got {v:?}")));
        }
    };
    let mut tensors: Vec<TensorInfo> = Vec::new();
    let mut names = BTreeSet::new();
    for _ in 0..n_tensors {
        let name = r.string("tensor name")?;
        let name = String::from_utf8(name).map_err(|_| GgufError::Invalid("tensor name is not UTF-8".into()))?;
        if name.is_empty() || name.len() > MAX_NAME_BYTES {
            return Err(bad_tensor(&name, format!("name must be 1 to {MAX_NAME_BYTES} bytes")));
        }
        let n_dims = r.u32("tensor dimension count")?;
        if n_dims == 0 || n_dims > MAX_DIMS {
            return Err(bad_tensor(&name, format!("{n_dims} dimensions (1 to {MAX_DIMS} allowed)")));
        }
        let mut dims = Vec::new();
        for _ in 0..n_dims {
            let d = r.u64("tensor dimension")?;
            if d == 0 || d > i64::MAX as u64 {
                return Err(bad_tensor(&name, format!("dimension {} is not positive", d as i64)));
            }
            dims.push(d);
        }
        let type_id = r.u32("tensor type")?;
        let ty = GgmlType::from_id(type_id).ok_or_else(|| bad_tensor(&name, format!("unknown type id {type_id}")))?;
        let offset = r.u64("tensor offset")?;
        let elements = dims
            .iter()
            .try_fold(1u64, |acc, &d| acc.checked_mul(d))
            .filter(|&n| n <= i64::MAX as u64)
            .ok_or_else(|| bad_tensor(&name, "element count overflows".into()))?;
        if dims[0] % ty.block_elems() != 0 {
            return Err(bad_tensor(
                &name,
                format!(
                    "row length {} is not a multiple of the {} block size {}",
                    dims[0],
                    ty.name(),
                    ty.block_elems()
                ),
            ));
        }
        if ty.bytes_for(elements).is_none() {
            return Err(bad_tensor(&name, "byte size overflows".into()));
        }
        if offset % alignment != 0 {
            return Err(bad_tensor(&name, format!("offset {offset} is not a multiple of the alignment {alignment}")));
        }
        if !names.insert(name.clone()) {
            return Err(GgufError::Invalid(format!("duplicate tensor name \"{name}\"")));
        }
        tensors.push(TensorInfo { name, dims, ty, offset });
        if r.pos > MAX_HEADER_BYTES {
            return Err(GgufError::Invalid(format!("header larger than {MAX_HEADER_BYTES} bytes")));
        }
    }
    let data_offset = if tensors.is_empty() { r.pos } else { r.pos.div_ceil(alignment) * alignment };
    let data_len = file_len.saturating_sub(data_offset);
    let mut spans: Vec<(u64, u64, usize)> = Vec::with_capacity(tensors.len());
    for (i, t) in tensors.iter().enumerate() {
        let end = t.offset.checked_add(t.size()).filter(|&e| e <= data_len).ok_or_else(|| {
            bad_tensor(
                &t.name,
                format!(
                    "data at offset {}+{} bytes lies outside the file's {data_len}-byte data section",
                    t.offset,
                    t.size()
                ),
            )
        })?;
        spans.push((t.offset, end, i));
    }
    spans.sort_unstable();
    for w in spans.windows(2) {
        if w[1].0 < w[0].1 {
            return Err(bad_tensor(
                &tensors[w[1].2].name,
                format!("data overlaps tensor \"{}\"", tensors[w[0].2].name),
            ));
        }
    }
    Ok(Header { version, kvs, tensors, alignment, data_offset })
}

/// Whether the first bytes of a file are the GGUF magic.
#[must_use]
pub fn sniff(first: &[u8]) -> bool {
    first.starts_with(&MAGIC)
}

fn put_str(out: &mut Vec<u8>, s: &[u8]) {
    out.extend_from_slice(&(s.len() as u64).to_le_bytes());
    out.extend_from_slice(s);
}

fn put_value(out: &mut Vec<u8>, v: &Value) {
    match v {
        Value::U8(x) => out.push(*x),
        Value::I8(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::U16(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::I16(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::U32(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::I32(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::F32(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::Bool(x) => out.push(u8::from(*x)),
        Value::Str(s) => put_str(out, s),
        Value::U64(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::I64(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::F64(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::Array(a) => {
            out.extend_from_slice(&(a.elem_type() as u32).to_le_bytes());
            out.extend_from_slice(&(a.len() as u64).to_le_bytes());
            match a {
                Array::U8(v) => out.extend_from_slice(v),
                Array::I8(v) => v.iter().for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
                Array::U16(v) => v.iter().for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
                Array::I16(v) => v.iter().for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
                Array::U32(v) => v.iter().for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
                Array::I32(v) => v.iter().for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
                Array::F32(v) => v.iter().for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
                Array::Bool(v) => v.iter().for_each(|x| out.push(u8::from(*x))),
                Array::Str(v) => v.iter().for_each(|s| put_str(out, s)),
                Array::U64(v) => v.iter().for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
                Array::I64(v) => v.iter().for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
                Array::F64(v) => v.iter().for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
            }
        }
    }
}

/// Encodes a v3 header: key/values in the given order, tensor infos with their offsets, and the
/// zero padding up to the data section (`alignment`). The data itself follows.
#[must_use]
pub fn encode_header(kvs: &[(String, Value)], tensors: &[TensorInfo], alignment: u64) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&3u32.to_le_bytes());
    out.extend_from_slice(&(tensors.len() as u64).to_le_bytes());
    out.extend_from_slice(&(kvs.len() as u64).to_le_bytes());
    for (k, v) in kvs {
        put_str(&mut out, k.as_bytes());
        out.extend_from_slice(&(v.value_type() as u32).to_le_bytes());
        put_value(&mut out, v);
    }
    for t in tensors {
        put_str(&mut out, t.name.as_bytes());
        out.extend_from_slice(&(t.dims.len() as u32).to_le_bytes());
        for d in &t.dims {
            out.extend_from_slice(&d.to_le_bytes());
        }
        out.extend_from_slice(&t.ty.id().to_le_bytes());
        out.extend_from_slice(&t.offset.to_le_bytes());
    }
    if !tensors.is_empty() {
        let pad = (out.len() as u64).div_ceil(alignment) * alignment - out.len() as u64;
        out.resize(out.len() + pad as usize, 0);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;
    use alloc::vec;

    fn minimal() -> Vec<u8> {
        encode_header(&[("general.architecture".to_owned(), Value::Str(b"test".to_vec()))], &[], 32)
    }

    #[test]
    fn minimal_file_is_68_bytes_and_round_trips() {
        let bytes = minimal();
        assert_eq!(bytes.len(), 68);
        let h = parse(&mut bytes.as_slice(), bytes.len() as u64).unwrap();
        assert_eq!(h.architecture(), Some("test"));
        assert_eq!(h.data_offset, 68);
    }

    #[test]
    fn tensors_round_trip() {
        let t = vec![
            TensorInfo { name: "a".into(), dims: vec![32, 2], ty: GgmlType::Q8_0, offset: 0 },
            TensorInfo { name: "b".into(), dims: vec![3], ty: GgmlType::F32, offset: 96 },
        ];
        let kvs = vec![("k".to_owned(), Value::Array(Array::Str(vec![b"x".to_vec(), b"yz".to_vec()])))];
        let mut bytes = encode_header(&kvs, &t, 32);
        let data_offset = bytes.len() as u64;
        assert_eq!(data_offset % 32, 0);
        bytes.resize(bytes.len() + 96 + 12, 0);
        let h = parse(&mut bytes.as_slice(), bytes.len() as u64).unwrap();
        assert_eq!(h.tensors, t);
        assert_eq!(h.kvs, kvs);
        assert_eq!(h.data_offset, data_offset);
        assert_eq!(h.parameter_count(), 67);
        // One byte short: the last tensor no longer fits.
        let short = &bytes[..bytes.len() - 1];
        assert!(matches!(parse(&mut &short[..], short.len() as u64), Err(GgufError::Tensor { .. })));
    }

    #[test]
    fn refuses_hostile_headers() {
        let mut huge_kv = b"GGUF".to_vec();
        huge_kv.extend_from_slice(&3u32.to_le_bytes());
        huge_kv.extend_from_slice(&0u64.to_le_bytes());
        huge_kv.extend_from_slice(&u64::MAX.to_le_bytes());
        assert!(matches!(parse(&mut huge_kv.as_slice(), huge_kv.len() as u64), Err(GgufError::Invalid(_))));
        assert_eq!(parse(&mut &b"GGUX\x03\0\0\0"[..], 8), Err(GgufError::Magic));
        assert_eq!(parse(&mut &b"GGUF\0\0\0\x03"[..], 8), Err(GgufError::BigEndian));
        assert_eq!(parse(&mut &b"GGUF\x01\0\0\0"[..], 8), Err(GgufError::Version(1)));
        assert!(matches!(parse(&mut &b"GGUF\x03\0"[..], 6), Err(GgufError::Truncated { .. })));
        // A string whose length runs past the end of the file.
        let mut long_str = minimal();
        long_str[24..32].copy_from_slice(&(1u64 << 40).to_le_bytes());
        assert!(matches!(parse(&mut long_str.as_slice(), long_str.len() as u64), Err(GgufError::Invalid(_))));
    }

    #[test]
    fn refuses_bad_tensors() {
        let mk = |dims: Vec<u64>, ty: GgmlType, offset: u64| {
            let t = [TensorInfo { name: "t".into(), dims, ty, offset }];
            let mut b = encode_header(&[], &t, 32);
            b.resize(b.len() + 4096, 0);
            b
        };
        for (bytes, what) in [
            (mk(vec![0], GgmlType::F32, 0), "positive"),
            (mk(vec![1, 1, 1, 1, 1], GgmlType::F32, 0), "dimensions"),
            (mk(vec![33], GgmlType::Q8_0, 0), "multiple"),
            (mk(vec![8], GgmlType::F32, 4), "alignment"),
            (mk(vec![2048], GgmlType::F32, 0), "outside"),
            (mk(vec![u64::MAX / 2, 4], GgmlType::F32, 0), "overflows"),
        ] {
            let e = parse(&mut bytes.as_slice(), bytes.len() as u64).unwrap_err().to_string();
            assert!(e.contains(what), "{e} should mention {what}");
        }
        let t = [TensorInfo { name: "t".into(), dims: vec![8], ty: GgmlType::F32, offset: 0 }];
        let mut b = encode_header(&[], &t, 32);
        // name(8+1) + n_dims(4) + dim(8) → type id follows at 24 + 9 + 4 + 8.
        b[45..49].copy_from_slice(&4u32.to_le_bytes());
        b.resize(b.len() + 64, 0);
        assert!(parse(&mut b.as_slice(), b.len() as u64).unwrap_err().to_string().contains("unknown type id 4"));
    }
}
