//! Each format's shader: the exact helpers (`kernels/exact.wgsl`), then the format's WGSL and its
//! entry point (for the K-quants, with ggml's searches, `kernels/searches.wgsl`), and the work one
//! unit of it does. WGSL has no imports, so whole files are joined
//! end to end — the only string assembly; what differs between formats of one shape (block
//! bytes of the legacy pairs) is a pipeline-overridable constant, not generated code.

use kiln_core::ggml_type::GgmlType;

use crate::kernels::GpuKernel;

const EXACT: &str = include_str!("../kernels/exact.wgsl");
const PAIRS: &str = include_str!("../kernels/pairs.wgsl");
const KQUANTS: &str = include_str!("../kernels/kquants.wgsl");
const SEARCHES: &str = include_str!("../kernels/searches.wgsl");

/// Invocations per workgroup, as every entry point declares.
const WORKGROUP: usize = 64;

/// The most workgroups in one dispatch dimension.
pub const MAX_GROUPS: usize = 65_535;

/// A format's kernel with its type: what the host needs to build and run it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shader {
    /// The target type.
    pub ty: GgmlType,
    /// Its kernel's shape and WGSL.
    pub kernel: GpuKernel,
}

impl Shader {
    /// The whole shader source.
    #[must_use]
    pub fn source(self) -> String {
        match self.kernel {
            GpuKernel::Values(code) => format!("{EXACT}\n{code}"),
            GpuKernel::Pairs(code) => format!("{EXACT}\n{code}\n{PAIRS}"),
            // kquants.wgsl holds the entry point.
            GpuKernel::Supers { source, .. } => format!("{EXACT}\n{SEARCHES}\n{KQUANTS}\n{source}"),
        }
    }

    /// The values of the shader's pipeline-overridable constants.
    #[must_use]
    pub fn constants(self) -> Vec<(&'static str, f64)> {
        match self.kernel {
            GpuKernel::Pairs(_) => vec![("BLOCK_BYTES", self.ty.block_bytes() as f64)],
            GpuKernel::Values(_) | GpuKernel::Supers { .. } => Vec::new(),
        }
    }

    /// (input values, output words) per unit: an invocation, or a workgroup for K-quants.
    #[must_use]
    pub fn unit(self) -> (usize, usize) {
        let (elems, bytes) = (self.ty.block_elems() as usize, self.ty.block_bytes() as usize);
        match self.kernel {
            GpuKernel::Values(_) => (2, 1),
            GpuKernel::Pairs(_) => (2 * elems, 2 * bytes / 4),
            GpuKernel::Supers { subs, .. } => {
                let supers = WORKGROUP / subs as usize;
                (supers * elems, supers * bytes / 4)
            }
        }
    }

    /// Workgroups for `units` units.
    #[must_use]
    pub fn groups(self, units: usize) -> usize {
        match self.kernel {
            GpuKernel::Supers { .. } => units,
            _ => units.div_ceil(WORKGROUP),
        }
    }

    /// The most units one dispatch may hold (65,535 workgroups in one dimension).
    #[must_use]
    pub fn max_units(self) -> usize {
        match self.kernel {
            GpuKernel::Supers { .. } => MAX_GROUPS,
            _ => 1 << 20,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::FORMATS;

    /// The table's numbers and the WGSL constants they must match: one table, no second copy
    /// that could drift.
    #[test]
    fn table_matches_the_wgsl() {
        for f in FORMATS {
            let Some(kernel) = f.gpu else { continue };
            let s = Shader { ty: f.ty, kernel };
            if let GpuKernel::Supers { source, subs } = kernel {
                assert!(source.contains(&format!("const SUBS: u32 = {subs}u;")), "{}", f.ty.name());
                assert!(source.contains(&format!("const BB: u32 = {}u;", f.ty.block_bytes())), "{}", f.ty.name());
                assert_eq!(s.unit().0 % 256, 0);
            }
            if let GpuKernel::Pairs(_) = kernel {
                assert_eq!(f.ty.block_bytes() % 2, 0, "{}: a pair must be whole words", f.ty.name());
                // pairs.wgsl assembles a pair in 105 words.
                assert!(2 * f.ty.block_bytes() <= 105 * 4, "{}: a pair must fit pairs.wgsl's words", f.ty.name());
            }
        }
    }
}
