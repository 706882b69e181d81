//! Running a chunk: the source is uploaded in pieces that fit the device's bindings and one
//! dispatch each, every piece's kernel and readback copies are queued, and [`Gpu::finish`] waits
//! for them and returns the blocks as the kernels wrote them with the list of blocks they
//! flagged. Redoing those on the CPU is the quantizer's part (`quantize/backend.rs`).

use std::sync::mpsc;

use kiln_core::ggml_type::GgmlType;
use wgpu::util::DeviceExt;

use super::shader::{MAX_GROUPS, Shader};
use super::{Gpu, GpuError, Kernel};
use crate::kernels;
use crate::quantize::widen::widen;

/// What the device produced for a chunk.
#[derive(Debug)]
pub struct Output {
    /// The blocks; a flagged block's bytes are whatever the kernel left there.
    pub bytes: Vec<u8>,
    /// Blocks (indices in the chunk, ascending per piece) the kernels could not do exactly:
    /// non-finite, subnormal or tiny inputs. The CPU must redo them.
    pub flagged: Vec<usize>,
}

/// A submitted chunk ([`Gpu::submit`]), finished by [`Gpu::finish`].
pub struct Pending {
    ty: GgmlType,
    blocks: usize,
    pieces: Vec<Piece>,
}

impl std::fmt::Debug for Pending {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pending").field("ty", &self.ty).field("blocks", &self.blocks).finish_non_exhaustive()
    }
}

/// One piece on its way through the device.
struct Piece {
    /// Its first block in the chunk.
    first: usize,
    /// Its blocks (the padding of its last unit excluded).
    blocks: usize,
    read_out: wgpu::Buffer,
    read_fb: wgpu::Buffer,
    index: wgpu::SubmissionIndex,
    done: mpsc::Receiver<Result<(), wgpu::BufferAsyncError>>,
}

/// What one piece's dispatch is told (`exact.wgsl`'s `Params`) and its importance vector.
struct Args<'a> {
    /// Source kind (`exact.wgsl`'s `val`).
    kind: u32,
    /// Units in the piece.
    units: usize,
    /// Values per importance row; 0 without weights.
    row: usize,
    /// Where in its row the piece's first value sits.
    at: usize,
    /// The chunk row the piece starts in.
    row0: usize,
    /// The importance vector (a placeholder word without one).
    wts: &'a wgpu::Buffer,
}

impl Args<'_> {
    /// `Params` as the uniform holds it: zero, units, kind, row, first, row0 and padding to 32
    /// bytes.
    fn params(&self) -> Result<[u32; 8], GpuError> {
        let word = |v: usize| u32::try_from(v).map_err(|_| GpuError::Dispatch { groups: v });
        Ok([0, word(self.units)?, self.kind, word(self.row)?, word(self.at)?, word(self.row0)?, 0, 0])
    }
}

/// Each row's σ² ([`kernels::ggml::mean_sq`]) of `raw` (rows of `row` values), then a zero the
/// padding of the last piece may read: what the legacy formats' weighted kernels take after the
/// importance vector.
fn row_sigma2(src_ty: GgmlType, raw: &[u8], row: usize) -> Vec<f32> {
    let src_size = src_ty.block_bytes() as usize;
    let mut x = vec![0f32; row];
    let mut out: Vec<f32> = raw
        .chunks_exact(row * src_size)
        .map(|r| {
            widen(src_ty, r, &mut x);
            kernels::ggml::mean_sq(&x)
        })
        .collect();
    out.push(0.0);
    out
}

/// The `kind` the kernels read (`exact.wgsl`'s `val`) and the bytes per source value.
fn source(src_ty: GgmlType) -> Result<(u32, usize), GpuError> {
    match src_ty {
        GgmlType::F32 => Ok((0, 4)),
        GgmlType::F16 => Ok((1, 2)),
        GgmlType::BF16 => Ok((2, 2)),
        other => Err(GpuError::Source(other.name())),
    }
}

impl Gpu {
    /// Uploads `raw` (little-endian `src_ty` values: F32, F16 or BF16, widened on the device, so
    /// 16-bit sources upload half the bytes) and queues the kernels quantizing it to `dst_ty`,
    /// and returns without waiting: the caller prepares the next chunk while the device works,
    /// then calls [`Gpu::finish`]. Source type first, as everywhere in the quantizer.
    ///
    /// `weights`: a tensor's importance vector, one row's worth shared by every row (what
    /// `kernels::quantize_weighted` takes); `raw` then starts at a row's start.
    ///
    /// # Errors
    /// An unsupported target or source type, weights for a kernel without a weighted path or
    /// not whole blocks, or input that is not whole blocks.
    pub fn submit(
        &self,
        src_ty: GgmlType,
        dst_ty: GgmlType,
        raw: &[u8],
        weights: Option<&[f32]>,
    ) -> Result<Pending, GpuError> {
        let kernel = self.kernels.get(&dst_ty).ok_or(GpuError::Unsupported(dst_ty.name()))?;
        // Weights are one row's worth, whole blocks, and the input whole rows (the legacy
        // formats' σ² is a whole row's).
        let values = raw.len() / source(src_ty)?.1;
        if let Some(w) = weights
            && (!self.supports_weighted(dst_ty)
                || w.is_empty()
                || !w.len().is_multiple_of(dst_ty.block_elems() as usize)
                || !values.is_multiple_of(w.len()))
        {
            return Err(GpuError::Weights { ty: dst_ty.name(), len: w.len() });
        }
        let (kind, src_size) = source(src_ty)?;
        let block_elems = dst_ty.block_elems() as usize;
        let n = raw.len() / src_size;
        if !raw.len().is_multiple_of(src_size) || !n.is_multiple_of(block_elems) {
            return Err(GpuError::Shape {
                ty: dst_ty.name(),
                src: src_ty.name(),
                bytes: raw.len(),
                block: block_elems,
            });
        }
        let (elems, _) = kernel.shader.unit();
        // One upload of the importance vector serves every piece; a dispatch without one binds a
        // word the kernels never read (the layout has the binding either way).
        let wts = match weights {
            Some(w) if kernels::row_wide_weights(dst_ty) => [w, &row_sigma2(src_ty, raw, w.len())].concat(),
            Some(w) => w.to_vec(),
            None => vec![0.0],
        };
        let row = weights.map_or(0, <[f32]>::len);
        let wts = self.device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some("weights"),
            contents: bytemuck::cast_slice(&wts),
            usage: wgpu::BufferUsages::STORAGE,
        });
        // Units per piece: bounded by the binding size of the input and by one dispatch. A unit
        // is whole blocks, so pieces are too.
        let per_piece =
            ((self.max_binding as usize / src_size) / elems).clamp(1, kernel.shader.max_units().min(self.max_units));
        let mut pieces = Vec::new();
        let mut first = 0;
        for piece in raw.chunks(per_piece * elems * src_size) {
            let take = piece.len() / src_size;
            let units = take.div_ceil(elems);
            let padded;
            let input: &[u8] = if take == units * elems {
                piece
            } else {
                let mut p = piece.to_vec();
                p.resize(units * elems * src_size, 0);
                padded = p;
                &padded
            };
            let blocks = take / block_elems;
            let (at, row0) = if row == 0 { (0, 0) } else { (first * block_elems % row, first * block_elems / row) };
            let args = Args { kind, units, row, at, row0, wts: &wts };
            pieces.push(self.launch(kernel, input, &args, first, blocks)?);
            first += blocks;
        }
        Ok(Pending { ty: dst_ty, blocks: n / block_elems, pieces })
    }

    /// Waits for a [`Gpu::submit`]ted chunk and reads it back.
    ///
    /// # Errors
    /// A failed readback, or one shorter than what was asked for.
    pub fn finish(&self, pending: Pending) -> Result<Output, GpuError> {
        let Pending { ty, blocks, pieces } = pending;
        let block_bytes = ty.block_bytes() as usize;
        let mut bytes = Vec::with_capacity(blocks * block_bytes);
        let mut flagged = Vec::new();
        for piece in pieces {
            let (first, count) = (piece.first, piece.blocks);
            let (words, fb) = self.collect(piece)?;
            let out = bytemuck::cast_slice::<u32, u8>(&words)
                .get(..count * block_bytes)
                .ok_or_else(|| GpuError::Readback(format!("{} bytes for {count} blocks", words.len() * 4)))?;
            bytes.extend_from_slice(out);
            // Flags past the piece's blocks belong to the padding of its last unit.
            flagged.extend(fb.into_iter().map(|b| b as usize).filter(|&b| b < count).map(|b| first + b));
        }
        Ok(Output { bytes, flagged })
    }

    /// Uploads one piece, queues its kernel and readback copies, and asks for the mappings.
    fn launch(
        &self,
        kernel: &Kernel,
        input: &[u8],
        args: &Args<'_>,
        first: usize,
        blocks: usize,
    ) -> Result<Piece, GpuError> {
        let units = args.units;
        let shader: Shader = kernel.shader;
        let groups = shader.groups(units);
        let gx =
            u32::try_from(groups).ok().filter(|&g| g as usize <= MAX_GROUPS).ok_or(GpuError::Dispatch { groups })?;
        let d = &self.device;
        let src = d.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some("src"),
            contents: input,
            usage: wgpu::BufferUsages::STORAGE,
        });
        let (elems, words) = shader.unit();
        let out_size = (units * words * 4) as u64;
        let dst = d.create_buffer(&wgpu::BufferDescriptor {
            label: Some("dst"),
            size: out_size,
            usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC,
            mapped_at_creation: false,
        });
        // Room for every block to fall back (plus the counter): never truncated.
        let unit_blocks = units * elems / shader.ty.block_elems() as usize;
        let fb_size = ((unit_blocks + 1) * 4) as u64;
        let fallback = d.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some("fallback"),
            contents: &vec![0u8; fb_size as usize],
            usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC,
        });
        let params = d.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some("params"),
            contents: bytemuck::cast_slice(&args.params()?),
            usage: wgpu::BufferUsages::UNIFORM,
        });
        let bind = d.create_bind_group(&wgpu::BindGroupDescriptor {
            label: None,
            layout: &self.layout,
            entries: &[
                wgpu::BindGroupEntry { binding: 0, resource: src.as_entire_binding() },
                wgpu::BindGroupEntry { binding: 1, resource: dst.as_entire_binding() },
                wgpu::BindGroupEntry { binding: 2, resource: fallback.as_entire_binding() },
                wgpu::BindGroupEntry { binding: 3, resource: params.as_entire_binding() },
                wgpu::BindGroupEntry { binding: 4, resource: args.wts.as_entire_binding() },
            ],
        });
        let readback = |label, size| {
            d.create_buffer(&wgpu::BufferDescriptor {
                label: Some(label),
                size,
                usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            })
        };
        let (read_out, read_fb) = (readback("read dst", out_size), readback("read fallback", fb_size));
        let mut enc = d.create_command_encoder(&wgpu::CommandEncoderDescriptor::default());
        {
            let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor::default());
            pass.set_pipeline(&kernel.pipeline);
            pass.set_bind_group(0, &bind, &[]);
            pass.dispatch_workgroups(gx, 1, 1);
        }
        enc.copy_buffer_to_buffer(&dst, 0, &read_out, 0, out_size);
        enc.copy_buffer_to_buffer(&fallback, 0, &read_fb, 0, fb_size);
        let index = self.queue.submit([enc.finish()]);
        let (tx, done) = mpsc::channel();
        for buf in [&read_out, &read_fb] {
            let tx = tx.clone();
            buf.slice(..).map_async(wgpu::MapMode::Read, move |r| {
                let _ = tx.send(r);
            });
        }
        Ok(Piece { first, blocks, read_out, read_fb, index, done })
    }

    /// Waits for a launched piece: its output words and the blocks it flagged.
    fn collect(&self, p: Piece) -> Result<(Vec<u32>, Vec<u32>), GpuError> {
        let err = |e: &dyn std::fmt::Display| GpuError::Readback(e.to_string());
        self.device
            .poll(wgpu::PollType::Wait { submission_index: Some(p.index), timeout: None })
            .map_err(|e| err(&e))?;
        for _ in 0..2 {
            p.done.recv().map_err(|e| err(&e))?.map_err(|e| err(&e))?;
        }
        let words = read_mapped(&p.read_out)?;
        let fb = read_mapped(&p.read_fb)?;
        // fallback[0] counts the flags, fallback[1..] holds them (never more than fit).
        let (&count, list) = fb.split_first().ok_or_else(|| GpuError::Readback("empty fallback list".into()))?;
        Ok((words, list.iter().copied().take(count as usize).collect()))
    }
}

/// A mapped readback buffer's words; unmaps it.
fn read_mapped(buf: &wgpu::Buffer) -> Result<Vec<u32>, GpuError> {
    let view = buf.slice(..).get_mapped_range().map_err(|e| GpuError::Readback(e.to_string()))?;
    let words = bytemuck::try_cast_slice::<u8, u32>(&view).map_err(|e| GpuError::Readback(e.to_string()))?.to_vec();
    drop(view);
    buf.unmap();
    Ok(words)
}
