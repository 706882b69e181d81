//! Opening a device: the instance (the backends kiln is built with, no display), the adapter
//! (a software one only when asked), the device with the adapter's limits, and one compute
//! pipeline per format of [`FORMATS`](crate::kernels::FORMATS) that has a GPU kernel.

use std::collections::HashMap;

use super::shader::Shader;
use super::{Gpu, GpuError, Kernel};
use crate::kernels::FORMATS;

impl Gpu {
    /// Opens the first adapter wgpu finds (`WGPU_BACKEND` and `WGPU_ADAPTER_NAME` choose), and
    /// compiles every kernel. A software adapter (lavapipe) only when `allow_software`.
    ///
    /// # Errors
    /// No adapter, only a software one, no device, or a kernel the driver rejects.
    pub fn open(allow_software: bool) -> Result<Self, GpuError> {
        let instance = wgpu::Instance::new(instance_descriptor());
        let adapter = pollster::block_on(instance.request_adapter(&wgpu::RequestAdapterOptions {
            power_preference: wgpu::PowerPreference::HighPerformance,
            force_fallback_adapter: false,
            compatible_surface: None,
            ..Default::default()
        }))
        .map_err(|e| GpuError::NoAdapter(e.to_string()))?;
        let info = adapter.get_info();
        if !allow_software && info.device_type == wgpu::DeviceType::Cpu {
            return Err(GpuError::Software(format!("{} {}", info.name, info.driver_info).trim().to_owned()));
        }
        let limits = adapter.limits();
        let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
            label: Some("kiln"),
            required_limits: limits.clone(),
            ..Default::default()
        }))
        .map_err(|e| GpuError::Device(e.to_string()))?;
        let max_binding = limits.max_storage_buffer_binding_size.min(limits.max_buffer_size);
        let layout = bind_group_layout(&device);
        let pipeline_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some("kiln"),
            bind_group_layouts: &[Some(&layout)],
            immediate_size: 0,
        });
        let mut kernels = HashMap::new();
        for f in FORMATS {
            let Some(kernel) = f.gpu else { continue };
            let shader = Shader { ty: f.ty, kernel };
            let pipeline = compile(&device, &pipeline_layout, shader)?;
            kernels.insert(f.ty, Kernel { pipeline, shader });
        }
        Ok(Self { device, queue, info, kernels, layout, max_binding, max_units: usize::MAX })
    }
}

/// The instance: compute only, so no display handle, and only the backends kiln's wgpu is built
/// with (Vulkan, Metal, DX12); `WGPU_BACKEND` and wgpu's other variables still choose.
///
/// wgpu-hal enables `VK_KHR_wayland_surface` on every Vulkan instance, so Mesa's implicit
/// device-select layer asks libwayland for a compositor while it orders the adapters; on a
/// headless machine libwayland logs `XDG_RUNTIME_DIR is invalid or not set`. The `kiln` binary
/// turns that layer off there before anything runs (`main.rs`).
fn instance_descriptor() -> wgpu::InstanceDescriptor {
    let mut desc = wgpu::InstanceDescriptor::new_without_display_handle();
    desc.backends = wgpu::Backends::PRIMARY;
    desc.with_env()
}

/// One explicit layout for every kernel: automatic layouts drop bindings a kernel does not use
/// (F16 has no fallback list), and then one bind group would not fit all.
fn bind_group_layout(device: &wgpu::Device) -> wgpu::BindGroupLayout {
    let buffer = |binding, ty| wgpu::BindGroupLayoutEntry {
        binding,
        visibility: wgpu::ShaderStages::COMPUTE,
        ty: wgpu::BindingType::Buffer { ty, has_dynamic_offset: false, min_binding_size: None },
        count: None,
    };
    let storage = |read_only| wgpu::BufferBindingType::Storage { read_only };
    device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
        label: Some("kiln"),
        entries: &[
            buffer(0, storage(true)),
            buffer(1, storage(false)),
            buffer(2, storage(false)),
            buffer(3, wgpu::BufferBindingType::Uniform),
            buffer(4, storage(true)),
        ],
    })
}

/// Compiles one format's pipeline; a validation error names the format.
fn compile(
    device: &wgpu::Device,
    layout: &wgpu::PipelineLayout,
    shader: Shader,
) -> Result<wgpu::ComputePipeline, GpuError> {
    let name = shader.ty.name();
    let scope = device.push_error_scope(wgpu::ErrorFilter::Validation);
    let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
        label: Some(name),
        source: wgpu::ShaderSource::Wgsl(shader.source().into()),
    });
    let constants = shader.constants();
    let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
        label: Some(name),
        layout: Some(layout),
        module: &module,
        entry_point: Some("main"),
        compilation_options: wgpu::PipelineCompilationOptions { constants: &constants, ..Default::default() },
        cache: None,
    });
    if let Some(e) = pollster::block_on(scope.pop()) {
        return Err(GpuError::Kernel { ty: name, reason: e.to_string() });
    }
    Ok(pipeline)
}
