//! A planned conversion as a GGUF file that is never written: [`Converted`] implements
//! `Read + Seek` over the header and, tensor by tensor, the bytes each recipe makes from the
//! safetensors shards (positioned reads, element by element conversion). The quantizer reads
//! it as it reads a stored GGUF, so converting and quantizing are one pass over the shards, and
//! without `quantize` it is copied into a blob while hashing. Memory: one read buffer.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::FileExt;

use half::f16;
use kiln_core::ggml_type::GgmlType;
use kiln_core::gguf::{self, Header, TensorInfo};
use kiln_core::hf::plan::{Conversion, Op, OutTensor, Segment, SrcType};

/// Source bytes read at once.
const READ_CHUNK: usize = 1 << 20;

/// One output tensor placed in the file.
struct Placed {
    tensor: OutTensor,
    /// Absolute offset of its data.
    start: u64,
    /// Bytes of data (no padding).
    len: u64,
    /// Element index at which each segment starts, for the binary search.
    seg_starts: Vec<u64>,
}

/// The converted GGUF, readable and seekable.
pub struct Converted {
    header_bytes: Vec<u8>,
    header: Header,
    tensors: Vec<Placed>,
    shards: Vec<File>,
    size: u64,
    pos: u64,
    /// Source bytes, reused across reads.
    buf: Vec<u8>,
}

/// Bytes per element of an output type (F32, F16 or BF16 only).
fn out_size(ty: GgmlType) -> u64 {
    if ty == GgmlType::F32 { 4 } else { 2 }
}

/// Bytes per element of a source type.
fn src_size(ty: SrcType) -> u64 {
    match ty {
        SrcType::F32 => 4,
        SrcType::F16 | SrcType::BF16 => 2,
    }
}

/// f32 → bf16 as gguf-py does: round to nearest even, NaNs made quiet.
fn bf16_bits(x: f32) -> u16 {
    let b = x.to_bits();
    if b & 0x7fff_ffff > 0x7f80_0000 {
        return ((b >> 16) | 64) as u16;
    }
    ((b.wrapping_add(0x7fff + ((b >> 16) & 1))) >> 16) as u16
}

impl Converted {
    /// Lays out `conv` as a GGUF over `shards` (opened in the order the plan's shard indices
    /// use).
    ///
    /// # Errors
    /// A tensor whose output type is not F32/F16/BF16, or whose segments do not add up to its
    /// shape (a planner bug, reported rather than written).
    pub fn new(conv: Conversion, shards: Vec<File>) -> io::Result<Self> {
        let alignment = gguf::DEFAULT_ALIGNMENT;
        let mut infos = Vec::with_capacity(conv.tensors.len());
        let mut offset = 0u64;
        for t in &conv.tensors {
            if !matches!(t.ty, GgmlType::F32 | GgmlType::F16 | GgmlType::BF16) {
                return Err(io::Error::other(format!(
                    "{}: conversion output type {} is not F32/F16/BF16",
                    t.name,
                    t.ty.name()
                )));
            }
            let info = TensorInfo { name: t.name.clone(), dims: t.dims.clone(), ty: t.ty, offset };
            let elems: u64 = t.segments.iter().map(|s| seg_elems(s, t.ty)).sum();
            if elems != info.elements() {
                return Err(io::Error::other(format!("{}: recipe has {elems} elements, shape {:?}", t.name, t.dims)));
            }
            offset += info.size().div_ceil(alignment) * alignment;
            infos.push(info);
        }
        let header_bytes = gguf::encode_header(&conv.kvs, &infos, alignment);
        let data_offset = header_bytes.len() as u64;
        let tensors = conv
            .tensors
            .into_iter()
            .zip(&infos)
            .map(|(tensor, info)| {
                let mut at = 0;
                let seg_starts = tensor
                    .segments
                    .iter()
                    .map(|s| {
                        let start = at;
                        at += seg_elems(s, tensor.ty);
                        start
                    })
                    .collect();
                Placed { start: data_offset + info.offset, len: info.size(), seg_starts, tensor }
            })
            .collect();
        let header = Header { version: 3, kvs: conv.kvs, tensors: infos, alignment, data_offset };
        let size = data_offset + offset;
        Ok(Self { header_bytes, header, tensors, shards, size, pos: 0, buf: Vec::new() })
    }

    /// The header a GGUF reader would parse from this file.
    #[must_use]
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The file's size.
    #[must_use]
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Fills `out` (output bytes of tensor `i` from data byte `at`); `at` and `out.len()` are
    /// whole elements.
    fn fill(&mut self, i: usize, at: u64, out: &mut [u8]) -> io::Result<()> {
        let Self { tensors, shards, buf, .. } = self;
        let p = &tensors[i];
        let t = &p.tensor;
        let osz = out_size(t.ty);
        let mut elem = at / osz;
        let mut done = 0usize;
        while done < out.len() {
            let s = p.seg_starts.partition_point(|&start| start <= elem) - 1;
            let seg = &t.segments[s];
            let within = elem - p.seg_starts[s];
            let left_in_seg = seg_elems(seg, t.ty) - within;
            match seg {
                Segment::Inline(bytes) => {
                    let from = (within * osz) as usize;
                    let n = (left_in_seg * osz).min((out.len() - done) as u64) as usize;
                    out[done..done + n].copy_from_slice(&bytes[from..from + n]);
                    done += n;
                    elem += n as u64 / osz;
                }
                Segment::Source { shard, offset, .. } => {
                    let ssz = src_size(t.src);
                    let want = left_in_seg.min((out.len() - done) as u64 / osz).min(READ_CHUNK as u64 / ssz);
                    buf.resize((want * ssz) as usize, 0);
                    let file =
                        shards.get(*shard).ok_or_else(|| io::Error::other(format!("{}: no shard {shard}", t.name)))?;
                    file.read_exact_at(buf, offset + within * ssz)?;
                    let n = (want * osz) as usize;
                    convert(t.src, t.op, t.ty, buf, &mut out[done..done + n]);
                    done += n;
                    elem += want;
                }
            }
        }
        Ok(())
    }
}

/// Elements of a segment (inline bytes are in the output type).
fn seg_elems(s: &Segment, ty: GgmlType) -> u64 {
    match s {
        Segment::Source { elems, .. } => *elems,
        Segment::Inline(b) => b.len() as u64 / out_size(ty),
    }
}

/// Converts source elements `src` into output elements `out`, applying `op`.
fn convert(from: SrcType, op: Op, to: GgmlType, src: &[u8], out: &mut [u8]) {
    // A BF16 → BF16 or F16 → F16 copy without an operation is the common, exact case.
    let same = matches!(
        (from, to),
        (SrcType::BF16, GgmlType::BF16) | (SrcType::F16, GgmlType::F16) | (SrcType::F32, GgmlType::F32)
    );
    if same && op == Op::None {
        out.copy_from_slice(src);
        return;
    }
    let ssz = src_size(from) as usize;
    let osz = out_size(to) as usize;
    for (s, o) in src.chunks_exact(ssz).zip(out.chunks_exact_mut(osz)) {
        let v = match from {
            SrcType::F32 => f32::from_le_bytes([s[0], s[1], s[2], s[3]]),
            SrcType::BF16 => f32::from_bits(u32::from(u16::from_le_bytes([s[0], s[1]])) << 16),
            SrcType::F16 => f16::from_le_bytes([s[0], s[1]]).to_f32(),
        };
        let v = match (op, from) {
            (Op::None, _) => v,
            // numpy adds in the array's dtype: f16 arithmetic for an F16 source.
            (Op::AddOne, SrcType::F16) => f16::from_f32(v + 1.0).to_f32(),
            (Op::AddOne, _) => v + 1.0,
        };
        match to {
            GgmlType::F32 => o.copy_from_slice(&v.to_le_bytes()),
            GgmlType::F16 => o.copy_from_slice(&f16::from_f32(v).to_le_bytes()),
            _ => o.copy_from_slice(&bf16_bits(v).to_le_bytes()),
        }
    }
}

impl Read for Converted {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.pos >= self.size || out.is_empty() {
            return Ok(0);
        }
        let hlen = self.header_bytes.len() as u64;
        if self.pos < hlen {
            let from = self.pos as usize;
            let n = out.len().min(self.header_bytes.len() - from);
            out[..n].copy_from_slice(&self.header_bytes[from..from + n]);
            self.pos += n as u64;
            return Ok(n);
        }
        // The tensor whose data or padding holds `pos`.
        let i = self.tensors.partition_point(|p| p.start <= self.pos) - 1;
        let p = &self.tensors[i];
        let end_of_slot = self.tensors.get(i + 1).map_or(self.size, |n| n.start);
        let at = self.pos - p.start;
        let n = if at >= p.len {
            // Padding.
            let n = out.len().min((end_of_slot - self.pos) as usize);
            out[..n].fill(0);
            n
        } else {
            let osz = out_size(p.tensor.ty);
            let left = p.len - at;
            if !at.is_multiple_of(osz) || (out.len() as u64) < osz {
                // A read that splits an element: make the element, hand out part of it.
                let mut one = [0u8; 4];
                let start = at - at % osz;
                self.fill(i, start, &mut one[..osz as usize])?;
                let from = (at - start) as usize;
                let n = out.len().min(osz as usize - from);
                out[..n].copy_from_slice(&one[from..from + n]);
                n
            } else {
                let n = (out.len() as u64).min(left);
                let n = (n - n % osz) as usize;
                self.fill(i, at, &mut out[..n])?;
                n
            }
        };
        self.pos += n as u64;
        Ok(n)
    }
}

impl Seek for Converted {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let pos = match to {
            SeekFrom::Start(p) => Some(p),
            SeekFrom::End(d) => self.size.checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        self.pos = pos.ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "seek before the start"))?;
        Ok(self.pos)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn shard(bytes: &[u8]) -> File {
        let mut f = tempfile::tempfile().unwrap();
        f.write_all(bytes).unwrap();
        f
    }

    fn t(name: &str, dims: &[u64], ty: GgmlType, src: SrcType, op: Op, segments: Vec<Segment>) -> OutTensor {
        OutTensor { name: name.into(), dims: dims.to_vec(), ty, src, op, segments }
    }

    #[test]
    fn recipes_become_a_gguf_that_parses_and_reads_back_the_same_in_any_chunking() {
        // Shard 0: 4 BF16 values 1,2,3,4 at byte 8; shard 1: F32 values at 0.
        let bf: Vec<u8> = [0u8; 8]
            .into_iter()
            .chain([1.0f32, 2.0, 3.0, 4.0].iter().flat_map(|v| bf16_bits(*v).to_le_bytes()))
            .collect();
        let f32s: Vec<u8> = [0.5f32, -1.5, 65504.0, 1e-8].iter().flat_map(|v| v.to_le_bytes()).collect();
        let conv = Conversion {
            kvs: vec![("general.architecture".into(), gguf::Value::Str(b"llama".to_vec()))],
            tensors: vec![
                t(
                    "gen",
                    &[2],
                    GgmlType::F32,
                    SrcType::F32,
                    Op::None,
                    vec![Segment::Inline([7.0f32, 8.0].iter().flat_map(|v| v.to_le_bytes()).collect())],
                ),
                // Rows swapped, as a permutation makes them.
                t(
                    "perm",
                    &[2, 2],
                    GgmlType::BF16,
                    SrcType::BF16,
                    Op::None,
                    vec![
                        Segment::Source { shard: 0, offset: 12, elems: 2 },
                        Segment::Source { shard: 0, offset: 8, elems: 2 },
                    ],
                ),
                t(
                    "norm",
                    &[4],
                    GgmlType::F32,
                    SrcType::BF16,
                    Op::AddOne,
                    vec![Segment::Source { shard: 0, offset: 8, elems: 4 }],
                ),
                t(
                    "half",
                    &[4],
                    GgmlType::F16,
                    SrcType::F32,
                    Op::None,
                    vec![Segment::Source { shard: 1, offset: 0, elems: 4 }],
                ),
            ],
        };
        let mut c = Converted::new(conv, vec![shard(&bf), shard(&f32s)]).unwrap();
        let mut whole = Vec::new();
        c.read_to_end(&mut whole).unwrap();
        assert_eq!(whole.len() as u64, c.size());
        let h = gguf::parse(&mut crate::gguf::read::FileSource(&whole[..]), whole.len() as u64).unwrap();
        assert_eq!(&h, c.header());
        let data = |name: &str| {
            let ti = h.tensors.iter().find(|t| t.name == name).unwrap();
            let s = (h.data_offset + ti.offset) as usize;
            whole[s..s + ti.size() as usize].to_vec()
        };
        let f32_of = |b: Vec<u8>| b.chunks(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect::<Vec<_>>();
        assert_eq!(f32_of(data("gen")), [7.0, 8.0]);
        assert_eq!(data("perm"), [&bf[12..16], &bf[8..12]].concat());
        assert_eq!(f32_of(data("norm")), [2.0, 3.0, 4.0, 5.0]);
        let halves: Vec<f32> = data("half").chunks(2).map(|c| f16::from_le_bytes([c[0], c[1]]).to_f32()).collect();
        assert_eq!(halves, [0.5, -1.5, 65504.0, f16::from_f32(1e-8).to_f32()]);
        // Odd chunk sizes and seeks give the same bytes.
        for step in [1usize, 3, 7, 33] {
            c.seek(SeekFrom::Start(0)).unwrap();
            let mut got = Vec::new();
            let mut b = vec![0u8; step];
            loop {
                let n = c.read(&mut b).unwrap();
                if n == 0 {
                    break;
                }
                got.extend_from_slice(&b[..n]);
            }
            assert_eq!(got, whole, "chunk {step}");
        }
    }

    #[test]
    fn bf16_rounding_is_gguf_pys() {
        assert_eq!(bf16_bits(1.0), 0x3f80);
        assert_eq!(bf16_bits(f32::from_bits(0x3f80_8000)), 0x3f80); // tie → even
        assert_eq!(bf16_bits(f32::from_bits(0x3f81_8000)), 0x3f82); // tie → even (up)
        assert_eq!(bf16_bits(f32::from_bits(0x3f80_8001)), 0x3f81);
        assert_eq!(bf16_bits(f32::from_bits(0x7f80_0001)), 0x7fc0); // NaN made quiet
    }
}
