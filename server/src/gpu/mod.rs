//! The wgpu quantizer: WGSL kernels (`kernels/<format>.wgsl`, beside their CPU twins) run on a
//! Vulkan/Metal/DX12 adapter and give the CPU's bytes. Exactness comes from the kernels
//! (integer f16/bf16, exact division, no contraction: `kernels/exact.wgsl`); blocks they cannot
//! do exactly (non-finite, subnormal, tiny) come back in a fallback list that the host redoes with
//! the CPU kernels and patches in. A start-up self-test compares the two on a corpus that covers
//! every such case; a device that differs is not used.

pub mod selftest;

use std::collections::HashMap;
use std::sync::mpsc;

use kiln_core::ggml_type::GgmlType;
use wgpu::util::DeviceExt;

use crate::kernels;

const EXACT: &str = include_str!("../kernels/exact.wgsl");
const KQUANTS: &str = include_str!("../kernels/kquants.wgsl");

/// The formats with a GPU kernel: every block format kiln writes.
pub const SUPPORTED: [GgmlType; 12] = [
    GgmlType::F16,
    GgmlType::BF16,
    GgmlType::Q8_0,
    GgmlType::Q4_0,
    GgmlType::Q4_1,
    GgmlType::Q5_0,
    GgmlType::Q5_1,
    GgmlType::Q2_K,
    GgmlType::Q3_K,
    GgmlType::Q4_K,
    GgmlType::Q5_K,
    GgmlType::Q6_K,
];

/// How a format's kernel is put together; the entry point is generated, so each format's WGSL
/// holds only its own arithmetic.
#[derive(Clone, Copy)]
enum Kernel {
    /// Two values per output word through a conversion function of `exact.wgsl`.
    Words(&'static str),
    /// A `quantize_block(block, &words, byte_offset)` run on two blocks per invocation, so that a
    /// pair is a whole number of words (WGSL has no byte stores).
    Pairs(&'static str),
    /// A K-quant: the workgroup shape of `kquants.wgsl` (one invocation per sub-block), with
    /// the format's sub-blocks per super-block.
    Supers(&'static str, usize),
}

fn kernel(ty: GgmlType) -> Option<Kernel> {
    Some(match ty {
        GgmlType::F16 => Kernel::Words("f32_to_f16"),
        GgmlType::BF16 => Kernel::Words("f32_to_bf16"),
        GgmlType::Q8_0 => Kernel::Pairs(include_str!("../kernels/q8_0.wgsl")),
        GgmlType::Q4_0 => Kernel::Pairs(include_str!("../kernels/q4_0.wgsl")),
        GgmlType::Q4_1 => Kernel::Pairs(include_str!("../kernels/q4_1.wgsl")),
        GgmlType::Q5_0 => Kernel::Pairs(include_str!("../kernels/q5_0.wgsl")),
        GgmlType::Q5_1 => Kernel::Pairs(include_str!("../kernels/q5_1.wgsl")),
        GgmlType::Q2_K => Kernel::Supers(include_str!("../kernels/q2_k.wgsl"), 16),
        GgmlType::Q3_K => Kernel::Supers(include_str!("../kernels/q3_k.wgsl"), 16),
        GgmlType::Q4_K => Kernel::Supers(include_str!("../kernels/q4_k.wgsl"), 8),
        GgmlType::Q5_K => Kernel::Supers(include_str!("../kernels/q5_k.wgsl"), 8),
        GgmlType::Q6_K => Kernel::Supers(include_str!("../kernels/q6_k.wgsl"), 16),
        _ => return None,
    })
}

impl Kernel {
    /// (input values, output words) per unit: an invocation, or a workgroup for K-quants.
    fn unit(self, ty: GgmlType) -> (usize, usize) {
        match self {
            Self::Words(_) => (2, 1),
            Self::Pairs(_) => (2 * ty.block_elems() as usize, 2 * ty.block_bytes() as usize / 4),
            Self::Supers(_, subs) => (64 / subs * 256, 64 / subs * ty.block_bytes() as usize / 4),
        }
    }

    /// Workgroups for `units` units.
    fn groups(self, units: usize) -> usize {
        match self {
            Self::Supers(..) => units,
            _ => units.div_ceil(64),
        }
    }

    /// The most units one dispatch may hold (65,535 workgroups in one dimension).
    fn max_units(self) -> usize {
        match self {
            Self::Supers(..) => 65_535,
            _ => 1 << 20,
        }
    }

    /// The whole shader: the exact helpers, the format's code and its entry point.
    fn source(self, ty: GgmlType) -> String {
        let (_, words) = self.unit(ty);
        let (body, main) = match self {
            // kquants.wgsl holds the entry point.
            Self::Supers(code, _) => return format!("{EXACT}\n{KQUANTS}\n{code}"),
            Self::Words(convert) => {
                ("", format!("    dst[i] = {convert}(val(2u * i)) | ({convert}(val(2u * i + 1u)) << 16u);"))
            }
            Self::Pairs(code) => (
                code,
                format!(
                    "    var words: array<u32, 105>;
    quantize_block(2u * i, &words, 0u);
    quantize_block(2u * i + 1u, &words, {}u);
    for (var w = 0u; w < {words}u; w = w + 1u) {{
        dst[i * {words}u + w] = words[w];
    }}",
                    ty.block_bytes()
                ),
            ),
        };
        format!(
            "{EXACT}\n{body}\n@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {{
    let i = gid.x;
    if i >= params.units {{
        return;
    }}
{main}
}}\n"
        )
    }
}

/// Why the GPU path is not available or failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GpuError {
    /// No adapter.
    #[error("no GPU adapter: {0}")]
    NoAdapter(String),
    /// Only a software adapter, which `--device auto` does not take (the CPU path is faster).
    #[error("only a software GPU adapter ({0}), slower than the CPU path; --device gpu would use it")]
    Software(String),
    /// The device could not be opened.
    #[error("GPU device: {0}")]
    Device(String),
    /// A kernel failed to compile or validate.
    #[error("GPU kernel for {ty}: {reason}")]
    Kernel {
        /// Format.
        ty: &'static str,
        /// Validation message.
        reason: String,
    },
    /// Reading results back failed.
    #[error("GPU readback: {0}")]
    Readback(String),
}

/// An opened adapter with one compiled pipeline per supported format.
pub struct Gpu {
    device: wgpu::Device,
    queue: wgpu::Queue,
    info: wgpu::AdapterInfo,
    pipelines: HashMap<GgmlType, wgpu::ComputePipeline>,
    layout: wgpu::BindGroupLayout,
    max_binding: u64,
    max_units: usize,
}

impl std::fmt::Debug for Gpu {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gpu").field("adapter", &self.info.name).field("backend", &self.info.backend).finish()
    }
}

/// The result of one quantization on the device.
#[derive(Debug)]
pub struct Quantized {
    /// The blocks, bytes as the CPU writes them.
    pub bytes: Vec<u8>,
    /// How many blocks the CPU redid.
    pub fallbacks: usize,
}

impl Gpu {
    /// Opens the first adapter wgpu finds (`WGPU_BACKEND` and `WGPU_ADAPTER_NAME` choose), and
    /// compiles every kernel. A software adapter (lavapipe) only when `allow_software`.
    ///
    /// # Errors
    /// No adapter, only a software one, no device, or a kernel the driver rejects.
    pub fn open(allow_software: bool) -> Result<Self, GpuError> {
        let instance = wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
        let adapter = pollster::block_on(instance.request_adapter(&wgpu::RequestAdapterOptions {
            power_preference: wgpu::PowerPreference::HighPerformance,
            force_fallback_adapter: false,
            compatible_surface: None,
            ..Default::default()
        }))
        .map_err(|e| GpuError::NoAdapter(e.to_string()))?;
        let info = adapter.get_info();
        if !allow_software && info.device_type == wgpu::DeviceType::Cpu {
            return Err(GpuError::Software(format!("{} {}", info.name, info.driver_info).trim().to_string()));
        }
        let limits = adapter.limits();
        let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
            label: Some("kiln"),
            required_limits: limits.clone(),
            ..Default::default()
        }))
        .map_err(|e| GpuError::Device(e.to_string()))?;
        let max_binding = limits.max_storage_buffer_binding_size.min(limits.max_buffer_size);
        // One explicit layout for every kernel: automatic layouts drop bindings a kernel does
        // not use (F16 has no fallback list), and then one bind group would not fit all.
        let storage = |binding, read_only| wgpu::BindGroupLayoutEntry {
            binding,
            visibility: wgpu::ShaderStages::COMPUTE,
            ty: wgpu::BindingType::Buffer {
                ty: wgpu::BufferBindingType::Storage { read_only },
                has_dynamic_offset: false,
                min_binding_size: None,
            },
            count: None,
        };
        let layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some("kiln"),
            entries: &[
                storage(0, true),
                storage(1, false),
                storage(2, false),
                wgpu::BindGroupLayoutEntry {
                    binding: 3,
                    visibility: wgpu::ShaderStages::COMPUTE,
                    ty: wgpu::BindingType::Buffer {
                        ty: wgpu::BufferBindingType::Uniform,
                        has_dynamic_offset: false,
                        min_binding_size: None,
                    },
                    count: None,
                },
            ],
        });
        let pipeline_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some("kiln"),
            bind_group_layouts: &[Some(&layout)],
            immediate_size: 0,
        });
        let mut pipelines = HashMap::new();
        for ty in SUPPORTED {
            let k = kernel(ty).expect("listed");
            let scope = device.push_error_scope(wgpu::ErrorFilter::Validation);
            let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
                label: Some(ty.name()),
                source: wgpu::ShaderSource::Wgsl(k.source(ty).into()),
            });
            let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: Some(ty.name()),
                layout: Some(&pipeline_layout),
                module: &module,
                entry_point: Some("main"),
                compilation_options: wgpu::PipelineCompilationOptions::default(),
                cache: None,
            });
            if let Some(e) = pollster::block_on(scope.pop()) {
                return Err(GpuError::Kernel { ty: ty.name(), reason: e.to_string() });
            }
            pipelines.insert(ty, pipeline);
        }
        Ok(Self { device, queue, info, pipelines, layout, max_binding, max_units: usize::MAX })
    }

    /// `"llvmpipe (LLVM 15.0.6, 256 bits)"`, …
    #[must_use]
    pub fn adapter(&self) -> String {
        format!("{} ({:?})", self.info.name, self.info.backend)
    }

    /// The driver and its version.
    #[must_use]
    pub fn driver(&self) -> String {
        format!("{} {}", self.info.driver, self.info.driver_info).trim().to_string()
    }

    /// Whether a kernel exists for `ty`.
    #[must_use]
    pub fn supports(&self, ty: GgmlType) -> bool {
        self.pipelines.contains_key(&ty)
    }

    /// Quantizes whole blocks of f32 values `x` to `ty` on the device.
    ///
    /// # Errors
    /// As [`Gpu::quantize_raw`].
    pub fn quantize(&self, ty: GgmlType, x: &[f32]) -> Result<Quantized, GpuError> {
        self.quantize_raw(ty, GgmlType::F32, bytemuck::cast_slice(x))
    }

    /// Quantizes whole blocks of `raw` source values (little-endian F32, F16 or BF16, widened
    /// on the device: half the upload for 16-bit sources) to `ty`.
    ///
    /// # Errors
    /// An unsupported type (the caller checks [`Gpu::supports`]) or a failed readback.
    pub fn quantize_raw(&self, ty: GgmlType, src_ty: GgmlType, raw: &[u8]) -> Result<Quantized, GpuError> {
        let pending = self.submit_raw(ty, src_ty, raw)?;
        self.finish(pending, raw)
    }

    /// Uploads `raw` and queues its kernels, in pieces that fit the device's bindings and one
    /// dispatch each, and returns without waiting: the caller prepares the next chunk while the
    /// device works, then calls [`Gpu::finish`] with the same `raw`.
    ///
    /// # Errors
    /// An unsupported target or source type.
    pub fn submit_raw(&self, ty: GgmlType, src_ty: GgmlType, raw: &[u8]) -> Result<Pending, GpuError> {
        let k = kernel(ty).ok_or_else(|| GpuError::Kernel { ty: ty.name(), reason: "no kernel".into() })?;
        let (kind, src_size) = match src_ty {
            GgmlType::F32 => (0u32, 4usize),
            GgmlType::F16 => (1, 2),
            GgmlType::BF16 => (2, 2),
            other => return Err(GpuError::Kernel { ty: ty.name(), reason: format!("{} source", other.name()) }),
        };
        let (elems, _) = k.unit(ty);
        let n = raw.len() / src_size;
        assert!(n.is_multiple_of(ty.block_elems() as usize) && raw.len() == n * src_size, "whole blocks only");
        // Units per piece: bounded by the binding size of the input and by one dispatch.
        let per_piece = ((self.max_binding as usize / src_size) / elems).clamp(1, k.max_units().min(self.max_units));
        let mut pieces = Vec::new();
        let mut done = 0usize;
        while done < n {
            let take = (n - done).min(per_piece * elems);
            let piece = &raw[done * src_size..(done + take) * src_size];
            let units = take.div_ceil(elems);
            let mut padded;
            let input: &[u8] = if take == units * elems {
                piece
            } else {
                padded = piece.to_vec();
                padded.resize(units * elems * src_size, 0);
                &padded
            };
            pieces.push((done, take, self.launch(ty, k, kind, input, units)));
            done += take;
        }
        Ok(Pending { ty, src_ty, src_size, n, pieces })
    }

    /// Waits for a [`Gpu::submit_raw`], reads the blocks back and redoes the flagged ones on
    /// the CPU. `raw` must be the submitted input.
    ///
    /// # Errors
    /// A failed readback.
    pub fn finish(&self, pending: Pending, raw: &[u8]) -> Result<Quantized, GpuError> {
        let Pending { ty, src_ty, src_size, n, pieces } = pending;
        let block_elems = ty.block_elems() as usize;
        let block_bytes = ty.block_bytes() as usize;
        let mut bytes = vec![0u8; n / block_elems * block_bytes];
        let mut fallbacks = 0;
        let mut scratch = vec![0f32; block_elems];
        for (done, take, launched) in pieces {
            let (words, flagged) = self.collect(launched)?;
            let piece = &raw[done * src_size..(done + take) * src_size];
            let out_start = done / block_elems * block_bytes;
            let out_len = take / block_elems * block_bytes;
            bytes[out_start..out_start + out_len].copy_from_slice(&bytemuck::cast_slice::<u32, u8>(&words)[..out_len]);
            for b in flagged {
                let b = b as usize;
                if b * block_elems >= take {
                    continue;
                }
                crate::quantize::widen::widen(
                    src_ty,
                    &piece[b * block_elems * src_size..(b + 1) * block_elems * src_size],
                    &mut scratch,
                );
                let ob = &mut bytes[out_start + b * block_bytes..out_start + (b + 1) * block_bytes];
                kernels::quantize(ty, &scratch, ob)
                    .map_err(|e| GpuError::Kernel { ty: ty.name(), reason: e.to_string() })?;
                fallbacks += 1;
            }
        }
        Ok(Quantized { bytes, fallbacks })
    }

    /// Caps the units of one dispatch, so that tests can make small inputs take several pieces.
    pub fn limit_piece(&mut self, units: usize) {
        self.max_units = units.max(1);
    }

    /// Uploads one piece, queues its kernel and readback copies, and asks for the mappings.
    fn launch(&self, ty: GgmlType, k: Kernel, kind: u32, input: &[u8], units: usize) -> Launched {
        let d = &self.device;
        let src = d.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some("src"),
            contents: input,
            usage: wgpu::BufferUsages::STORAGE,
        });
        let (elems, words) = k.unit(ty);
        let out_size = (units * words * 4) as u64;
        let dst = d.create_buffer(&wgpu::BufferDescriptor {
            label: Some("dst"),
            size: out_size,
            usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC,
            mapped_at_creation: false,
        });
        // Room for every block to fall back (plus the counter): never truncated.
        let blocks = units * elems / ty.block_elems() as usize;
        let fb_size = ((blocks + 1) * 4) as u64;
        let fallback = d.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some("fallback"),
            contents: &vec![0u8; fb_size as usize],
            usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC,
        });
        let params = d.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some("params"),
            contents: bytemuck::cast_slice(&[0u32, u32::try_from(units).unwrap_or(u32::MAX), kind, 0]),
            usage: wgpu::BufferUsages::UNIFORM,
        });
        let pipeline = &self.pipelines[&ty];
        let bind = d.create_bind_group(&wgpu::BindGroupDescriptor {
            label: None,
            layout: &self.layout,
            entries: &[
                wgpu::BindGroupEntry { binding: 0, resource: src.as_entire_binding() },
                wgpu::BindGroupEntry { binding: 1, resource: dst.as_entire_binding() },
                wgpu::BindGroupEntry { binding: 2, resource: fallback.as_entire_binding() },
                wgpu::BindGroupEntry { binding: 3, resource: params.as_entire_binding() },
            ],
        });
        let read_out = d.create_buffer(&wgpu::BufferDescriptor {
            label: Some("read dst"),
            size: out_size,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let read_fb = d.create_buffer(&wgpu::BufferDescriptor {
            label: Some("read fallback"),
            size: fb_size,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let mut enc = d.create_command_encoder(&wgpu::CommandEncoderDescriptor::default());
        {
            let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor::default());
            pass.set_pipeline(pipeline);
            pass.set_bind_group(0, &bind, &[]);
            let groups = k.groups(units);
            let (gx, gy) = if groups <= 65535 { (groups, 1) } else { (65535, groups.div_ceil(65535)) };
            assert!(gy == 1, "pieces are sized to fit one dispatch row");
            pass.dispatch_workgroups(gx as u32, gy as u32, 1);
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
        Launched { read_out, read_fb, index, done }
    }

    /// Waits for a launched piece: its output words and the blocks it flagged for the CPU.
    fn collect(&self, l: Launched) -> Result<(Vec<u32>, Vec<u32>), GpuError> {
        let err = |e: &dyn std::fmt::Display| GpuError::Readback(e.to_string());
        self.device
            .poll(wgpu::PollType::Wait { submission_index: Some(l.index), timeout: None })
            .map_err(|e| err(&e))?;
        for _ in 0..2 {
            l.done.recv().map_err(|e| err(&e))?.map_err(|e| err(&e))?;
        }
        let words = read_mapped(&l.read_out)?;
        let fb = read_mapped(&l.read_fb)?;
        let n = fb[0] as usize;
        Ok((words, fb[1..=n.min(fb.len() - 1)].to_vec()))
    }
}

/// A mapped readback buffer's words; unmaps it.
fn read_mapped(buf: &wgpu::Buffer) -> Result<Vec<u32>, GpuError> {
    let view = buf.slice(..).get_mapped_range().map_err(|e| GpuError::Readback(e.to_string()))?;
    let words = bytemuck::cast_slice::<u8, u32>(&view).to_vec();
    drop(view);
    buf.unmap();
    Ok(words)
}

/// One piece on its way through the device.
struct Launched {
    read_out: wgpu::Buffer,
    read_fb: wgpu::Buffer,
    index: wgpu::SubmissionIndex,
    done: mpsc::Receiver<Result<(), wgpu::BufferAsyncError>>,
}

/// A submitted quantization ([`Gpu::submit_raw`]), finished by [`Gpu::finish`].
pub struct Pending {
    ty: GgmlType,
    src_ty: GgmlType,
    src_size: usize,
    n: usize,
    /// (first value, values, launched piece).
    pieces: Vec<(usize, usize, Launched)>,
}

impl std::fmt::Debug for Pending {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pending").field("ty", &self.ty).field("values", &self.n).finish_non_exhaustive()
    }
}
