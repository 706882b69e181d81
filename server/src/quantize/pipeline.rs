//! The streaming quantizer: source tensors are read in row chunks by a reader thread, widened to
//! f32 and quantized by the [`Quantizer`] (the GPU, or all cores with rayon — blocks split across
//! threads, never inside a block, so every block's arithmetic is the reference's), and written +
//! hashed by a writer thread. The three stages overlap through bounded channels, so memory is a
//! few chunks whatever the model, and disk, quantizer and hashing work at once.

use std::fs::File;
use std::io::{BufWriter, Read, Seek, SeekFrom, Write};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

use super::backend::{Pending, Quantizer};
use super::{QuantError, QuantPlan};
use crate::gguf::write::HashingWriter;
use kiln_core::Digest;
use kiln_core::ggml_type::GgmlType;

/// What a finished run produced.
#[derive(Debug)]
pub struct Output {
    /// SHA-256 of the file.
    pub digest: Digest,
    /// Its size.
    pub size: u64,
    /// Blocks the GPU handed back to the CPU.
    pub fallbacks: usize,
    /// Chunks quantized on the GPU.
    pub gpu_chunks: usize,
    /// Chunks quantized in all.
    pub chunks: usize,
}

enum Work {
    /// Bytes to copy unchanged.
    Copy(Vec<u8>),
    /// Source values to convert: (source type, target type, raw bytes, the rows' importance
    /// weights when quantized with them).
    Convert(GgmlType, GgmlType, Vec<u8>, Option<RowWeights>),
    /// End of a tensor: pad the output.
    Pad,
}

/// The importance weights of a chunk's rows: `len` values of `all` from `start` (one expert's
/// slice; a chunk never crosses experts).
#[derive(Debug, Clone)]
pub struct RowWeights {
    all: Arc<[f32]>,
    start: usize,
    len: usize,
}

impl RowWeights {
    /// The weights every row of the chunk uses.
    #[must_use]
    pub fn get(&self) -> &[f32] {
        &self.all[self.start..self.start + self.len]
    }
}

fn reader(mut src: impl Read + Seek, plan: &QuantPlan, chunk: u64, tx: &SyncSender<std::io::Result<Work>>) {
    let mut run = || -> std::io::Result<()> {
        for t in &plan.tensors {
            let start = plan.src_data_offset + t.src.offset;
            src.seek(SeekFrom::Start(start))?;
            let size = t.src.size();
            if t.src.ty == t.out.ty {
                let mut left = size;
                while left > 0 {
                    let n = left.min(chunk * 2);
                    let mut buf = vec![0u8; n as usize];
                    src.read_exact(&mut buf)?;
                    if tx.send(Ok(Work::Copy(buf))).is_err() {
                        return Ok(());
                    }
                    left -= n;
                }
            } else {
                let row = t.src.row_len();
                let rows = t.src.elements() / row;
                let rows_per_chunk = (chunk / row).max(1);
                // Rows of one expert slice share its weights: chunks end at slice boundaries.
                let per_expert = rows / t.src.dims.get(2).copied().unwrap_or(1).max(1);
                let mut done = 0;
                while done < rows {
                    let expert_end = (done / per_expert + 1) * per_expert;
                    let n = rows_per_chunk.min(rows - done).min(expert_end - done);
                    let bytes = t.src.ty.bytes_for(n * row).unwrap_or(0);
                    let mut buf = vec![0u8; bytes as usize];
                    src.read_exact(&mut buf)?;
                    let weights = t.weights.as_ref().map(|all| RowWeights {
                        all: all.clone(),
                        start: (done / per_expert * row) as usize,
                        len: row as usize,
                    });
                    if tx.send(Ok(Work::Convert(t.src.ty, t.out.ty, buf, weights))).is_err() {
                        return Ok(());
                    }
                    done += n;
                }
            }
            if tx.send(Ok(Work::Pad)).is_err() {
                return Ok(());
            }
        }
        Ok(())
    };
    if let Err(e) = run() {
        let _ = tx.send(Err(e));
    }
}

enum Out {
    Bytes(Vec<u8>),
    Pad,
}

fn writer(out: File, header: &[u8], alignment: u64, rx: &Receiver<Out>) -> std::io::Result<(File, Digest, u64)> {
    let mut w = HashingWriter::new(BufWriter::with_capacity(1 << 20, out));
    w.write_all(header)?;
    for msg in rx {
        match msg {
            Out::Bytes(b) => w.write_all(&b)?,
            Out::Pad => w.pad_to(alignment)?,
        }
    }
    let (buf, digest, size) = w.finish()?;
    let file = buf.into_inner().map_err(std::io::IntoInnerError::into_error)?;
    Ok((file, digest, size))
}

/// Writes the quantized model described by `plan` from `src` into `out`. `progress` gets the
/// source bytes done so far and returns `false` to cancel.
///
/// # Errors
/// I/O and kernel errors; [`QuantError::Cancelled`] when `progress` said stop.
pub fn run(
    plan: &QuantPlan,
    src: impl Read + Seek + Send,
    out: File,
    quantizer: &Quantizer,
    mut progress: impl FnMut(u64) -> bool,
) -> Result<(File, Output), QuantError> {
    let (work_tx, work_rx) = sync_channel::<std::io::Result<Work>>(2);
    let (out_tx, out_rx) = sync_channel::<Out>(2);
    std::thread::scope(|s| {
        let chunk = quantizer.chunk_elems();
        s.spawn(move || reader(src, plan, chunk, &work_tx));
        let writer = s.spawn(move || writer(out, &plan.encoded_header, plan.alignment, &out_rx));
        let mut done = 0u64;
        let (mut fallbacks, mut gpu_chunks, mut chunks) = (0, 0, 0);
        let result = (|| {
            // One GPU chunk stays in flight while the next is read and submitted; its output
            // goes to the writer before anything that follows it in the file.
            let mut in_flight: Option<Pending> = None;
            let mut flush = |p: Option<Pending>| -> Result<bool, QuantError> {
                let Some(p) = p else { return Ok(true) };
                let c = quantizer.finish(p)?;
                fallbacks += c.fallbacks;
                gpu_chunks += usize::from(c.on_gpu);
                chunks += 1;
                Ok(out_tx.send(Out::Bytes(c.bytes)).is_ok())
            };
            for work in work_rx {
                let msg = match work? {
                    Work::Copy(b) => {
                        done += b.len() as u64;
                        Some(Out::Bytes(b))
                    }
                    Work::Convert(src_ty, dst_ty, raw, weights) => {
                        done += raw.len() as u64;
                        let next = quantizer.submit(src_ty, dst_ty, raw, weights.as_ref().map(RowWeights::get))?;
                        // CPU results are final already: they go out at once, in order.
                        let (hold, now) = if next.is_done() { (None, Some(next)) } else { (Some(next), None) };
                        if !flush(std::mem::replace(&mut in_flight, hold))? || !flush(now)? {
                            break;
                        }
                        None
                    }
                    Work::Pad => Some(Out::Pad),
                };
                if let Some(msg) = msg
                    && (!flush(in_flight.take())? || out_tx.send(msg).is_err())
                {
                    break;
                }
                if !progress(done) {
                    return Err(QuantError::Cancelled);
                }
            }
            flush(in_flight.take())?;
            Ok(())
        })();
        drop(out_tx);
        let written = writer.join().map_err(|_| std::io::Error::other("writer thread panicked"))?;
        result?;
        let (file, digest, size) = written?;
        Ok((file, Output { digest, size, fallbacks, gpu_chunks, chunks }))
    })
}
