//! Pipeline cache: each (shader, entry point, override constants) is compiled once.

use crate::error::{DeviceError, Result};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// A WGSL file from `shaders/`, embedded in the binary.
pub struct Shader {
    pub name: &'static str,
    pub source: &'static str,
    /// Whether wgpu clamps every index the shader uses (its default). Off only for shaders
    /// that keep each index in range themselves, behind launchers that check every shape
    /// against the arrays before dispatching (the matmul family; see `kernels::matmul`).
    pub runtime_checks: bool,
}

/// Declares a `Shader` static for `shaders/<file>.wgsl`, followed by any further `shaders/<part>.wgsl`.
#[macro_export]
macro_rules! shader {
    ($ident:ident, $file:literal $(, $part:literal)*) => {
        pub static $ident: $crate::gpu::Shader = $crate::gpu::Shader {
            name: $file,
            // WGSL has no includes: shared parts are appended
            source: concat!(
                include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../../shaders/", $file, ".wgsl"))
                $(, include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../../shaders/", $part, ".wgsl")))*
            ),
            runtime_checks: true,
        };
    };
}

/// Declares two `Shader` statics for a `shaders/<file>.wgsl` (then any `<part>.wgsl`) written
/// over the storage alias `T`: `$f32` with `alias T = f32;` and `$f16` (named `<file>_f16`) with
/// `enable f16; alias T = f16;` in front. WGSL has no generics, so this is how one source serves
/// both storage types; the shader widens each value to f32 as it loads it and rounds to `T` as
/// it stores. The `enable` must come before any declaration, and a module that enables f16 fails
/// to build on adapters without SHADER_F16: launchers pick `$f16` only for f16 arrays, which
/// exist only on adapters that have it.
#[macro_export]
macro_rules! storage_shaders {
    ($f32:ident, $f16:ident, $file:literal $(, $part:literal)*) => {
        pub static $f32: $crate::gpu::Shader = $crate::gpu::Shader {
            name: $file,
            source: concat!(
                "alias T = f32;\n",
                include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../../shaders/", $file, ".wgsl"))
                $(, include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../../shaders/", $part, ".wgsl")))*
            ),
            runtime_checks: true,
        };
        pub static $f16: $crate::gpu::Shader = $crate::gpu::Shader {
            name: concat!($file, "_f16"),
            source: concat!(
                "enable f16;\nalias T = f16;\n",
                include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../../shaders/", $file, ".wgsl"))
                $(, include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../../shaders/", $part, ".wgsl")))*
            ),
            runtime_checks: true,
        };
    };
}

/// One kernel variant: an entry point of a shader plus its `override` constants.
#[derive(Clone, Copy)]
pub struct Kernel<'a> {
    pub shader: &'static Shader,
    pub entry: &'static str,
    pub constants: &'a [(&'static str, f64)],
}

impl<'a> Kernel<'a> {
    pub const fn new(shader: &'static Shader, entry: &'static str) -> Self {
        Kernel { shader, entry, constants: &[] }
    }

    pub fn with(self, constants: &'a [(&'static str, f64)]) -> Self {
        Kernel { constants, ..self }
    }

    pub(crate) fn key(&self) -> String {
        let mut k = format!("{}:{}", self.shader.name, self.entry);
        for (n, v) in self.constants {
            k.push_str(&format!(":{n}={v}"));
        }
        k
    }

    pub fn label(&self) -> String {
        format!("{}::{}", self.shader.name, self.entry)
    }
}

pub(crate) struct CompiledKernel {
    pub pipeline: wgpu::ComputePipeline,
    pub layout: wgpu::BindGroupLayout,
}

#[derive(Default)]
pub(crate) struct PipelineCache {
    modules: Mutex<HashMap<&'static str, Arc<wgpu::ShaderModule>>>,
    pipelines: Mutex<HashMap<String, Arc<CompiledKernel>>>,
}

impl PipelineCache {
    pub fn get(&self, device: &wgpu::Device, k: &Kernel, compiled: &mut bool) -> Result<Arc<CompiledKernel>> {
        let key = k.key();
        if let Some(p) = self.pipelines.lock().unwrap().get(&key) {
            return Ok(p.clone());
        }
        let module = self.module(device, k.shader)?;
        let scope = device.push_error_scope(wgpu::ErrorFilter::Validation);
        let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some(&key),
            layout: None,
            module: &module,
            entry_point: Some(k.entry),
            compilation_options: wgpu::PipelineCompilationOptions {
                constants: k.constants,
                zero_initialize_workgroup_memory: false,
            },
            cache: None,
        });
        if let Some(e) = pollster::block_on(scope.pop()) {
            return Err(DeviceError::Wgpu { context: format!("compiling {}", k.label()), message: e.to_string() });
        }
        let layout = pipeline.get_bind_group_layout(0);
        let compiled_kernel = Arc::new(CompiledKernel { pipeline, layout });
        self.pipelines.lock().unwrap().insert(key, compiled_kernel.clone());
        *compiled = true;
        Ok(compiled_kernel)
    }

    fn module(&self, device: &wgpu::Device, shader: &'static Shader) -> Result<Arc<wgpu::ShaderModule>> {
        if let Some(m) = self.modules.lock().unwrap().get(shader.name) {
            return Ok(m.clone());
        }
        let scope = device.push_error_scope(wgpu::ErrorFilter::Validation);
        let descriptor = wgpu::ShaderModuleDescriptor {
            label: Some(shader.name),
            source: wgpu::ShaderSource::Wgsl(shader.source.into()),
        };
        let module = if shader.runtime_checks {
            device.create_shader_module(descriptor)
        } else {
            // SAFETY: such a shader guards or clamps every index against the shapes in its
            // parameters, and its launcher checks those shapes against the bound arrays
            // (`Shader::runtime_checks`), so no access leaves a binding.
            unsafe { device.create_shader_module_trusted(descriptor, wgpu::ShaderRuntimeChecks::unchecked()) }
        };
        if let Some(e) = pollster::block_on(scope.pop()) {
            return Err(DeviceError::Wgpu {
                context: format!("parsing shaders/{}.wgsl", shader.name),
                message: e.to_string(),
            });
        }
        let module = Arc::new(module);
        self.modules.lock().unwrap().insert(shader.name, module.clone());
        Ok(module)
    }
}
