//! SIMD over blocks: eight independent sub-blocks ride in the eight lanes of `[f32; 8]` arrays,
//! so every lane performs exactly its sub-block's scalar sequence of operations — same order,
//! same roundings — and the bytes stay the reference's while the CPU works eight at a time.
//! Data-dependent branches of the reference become per-lane selects. Plain arrays let LLVM
//! vectorize without `unsafe`; [`dispatch`] compiles the hot loops a second time for AVX2.
//! [`SuperBlockSearch`] gives the grid formats their reference and fast paths from one search.

use kiln_core::ggml_type::GgmlType;

/// Lanes per vector.
pub const L: usize = 8;
/// Eight f32 lanes.
pub type V = [f32; L];
/// Eight i32 lanes.
pub type I = [i32; L];

/// Lane-wise map.
#[inline(always)]
pub fn map(a: V, f: impl Fn(f32) -> f32) -> V {
    let mut o = [0.0; L];
    for k in 0..L {
        o[k] = f(a[k]);
    }
    o
}

/// Lane-wise binary op.
#[inline(always)]
pub fn zip(a: V, b: V, f: impl Fn(f32, f32) -> f32) -> V {
    let mut o = [0.0; L];
    for k in 0..L {
        o[k] = f(a[k], b[k]);
    }
    o
}

/// `v` in every lane.
#[inline(always)]
pub fn splat(v: f32) -> V {
    [v; L]
}

/// ggml's `nearest_int` in every lane (see `ggml::nearest_int`).
#[inline(always)]
pub fn nearest_int(a: V) -> I {
    let mut o = [0; L];
    for k in 0..L {
        o[k] = ((a[k] + 12_582_912.0).to_bits() & 0x007F_FFFF) as i32 - 0x0040_0000;
    }
    o
}

/// `nearest_int` clamped to `lo..=hi`, as f32 (the quants are small integers, exact in f32).
#[inline(always)]
pub fn quant(a: V, lo: i32, hi: i32) -> V {
    let q = nearest_int(a);
    let mut o = [0.0; L];
    for k in 0..L {
        let v = if q[k] < lo {
            lo
        } else if q[k] > hi {
            hi
        } else {
            q[k]
        };
        o[k] = v as f32;
    }
    o
}

/// Lane-wise select: `m[k] ? a[k] : b[k]`.
#[inline(always)]
pub fn select(m: [bool; L], a: V, b: V) -> V {
    let mut o = [0.0; L];
    for k in 0..L {
        o[k] = if m[k] { a[k] } else { b[k] };
    }
    o
}

/// Lane-wise comparison.
#[inline(always)]
pub fn cmp(a: V, b: V, f: impl Fn(f32, f32) -> bool) -> [bool; L] {
    let mut o = [false; L];
    for k in 0..L {
        o[k] = f(a[k], b[k]);
    }
    o
}

/// A fast path's body: `#[inline(always)]`, so [`dispatch`] can compile it into an AVX2 copy.
pub trait SimdBody {
    /// Quantizes whole blocks.
    fn body(x: &[f32], out: &mut [u8]);
}

/// Runs `B::body` compiled for AVX-512 or AVX2 when the CPU has them (the same code, so the same bytes: no
/// fused multiply-add is ever formed, since Rust never contracts), else the portable build.
#[inline(always)]
pub fn dispatch<B: SimdBody>(x: &[f32], out: &mut [u8]) {
    #[cfg(target_arch = "x86_64")]
    {
        #[target_feature(enable = "avx512f,avx512vl,avx512bw,avx512dq")]
        fn avx512<B: SimdBody>(x: &[f32], out: &mut [u8]) {
            B::body(x, out);
        }
        #[target_feature(enable = "avx2")]
        fn avx2<B: SimdBody>(x: &[f32], out: &mut [u8]) {
            B::body(x, out);
        }
        if std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("avx512vl")
            && std::arch::is_x86_feature_detected!("avx512bw")
            && std::arch::is_x86_feature_detected!("avx512dq")
        {
            #[expect(unsafe_code, reason = "calling a #[target_feature] function")]
            // SAFETY: the CPU supports these AVX-512 subsets, checked just above.
            unsafe {
                avx512::<B>(x, out);
            }
            return;
        }
        if std::arch::is_x86_feature_detected!("avx2") {
            #[expect(unsafe_code, reason = "calling a #[target_feature] function")]
            // SAFETY: the CPU supports AVX2, checked just above; that is the only requirement.
            unsafe {
                avx2::<B>(x, out);
            }
            return;
        }
    }
    B::body(x, out);
}

/// A weighted fast path's body (a row and its importance weights): `#[inline(always)]`, so
/// [`dispatch_weighted`] can compile it into an AVX2 copy.
pub trait SimdWeighted {
    /// Quantizes one row `x` with weights `w`.
    fn body(x: &[f32], w: &[f32], out: &mut [u8]);
}

/// [`dispatch`] for [`SimdWeighted`] bodies: the same feature levels, so the same bytes.
#[inline(always)]
pub fn dispatch_weighted<B: SimdWeighted>(x: &[f32], w: &[f32], out: &mut [u8]) {
    #[cfg(target_arch = "x86_64")]
    {
        #[target_feature(enable = "avx512f,avx512vl,avx512bw,avx512dq")]
        fn avx512<B: SimdWeighted>(x: &[f32], w: &[f32], out: &mut [u8]) {
            B::body(x, w, out);
        }
        #[target_feature(enable = "avx2")]
        fn avx2<B: SimdWeighted>(x: &[f32], w: &[f32], out: &mut [u8]) {
            B::body(x, w, out);
        }
        if std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("avx512vl")
            && std::arch::is_x86_feature_detected!("avx512bw")
            && std::arch::is_x86_feature_detected!("avx512dq")
        {
            #[expect(unsafe_code, reason = "calling a #[target_feature] function")]
            // SAFETY: the CPU supports these AVX-512 subsets, checked just above.
            unsafe {
                avx512::<B>(x, w, out);
            }
            return;
        }
        if std::arch::is_x86_feature_detected!("avx2") {
            #[expect(unsafe_code, reason = "calling a #[target_feature] function")]
            // SAFETY: the CPU supports AVX2, checked just above; that is the only requirement.
            unsafe {
                avx2::<B>(x, w, out);
            }
            return;
        }
    }
    B::body(x, w, out);
}

/// Largest |x| of a 32-value block, lane-parallel (max is order-independent for finite values),
/// and whether every value is finite.
#[inline(always)]
pub fn absmax32(x: &[f32; 32]) -> (f32, bool) {
    let mut m = [0f32; L];
    let mut finite = true;
    for c in x.chunks_exact(L) {
        for k in 0..L {
            let a = c[k].abs();
            finite &= a <= f32::MAX;
            m[k] = if a > m[k] { a } else { m[k] };
        }
    }
    let mut amax = 0f32;
    for v in m {
        amax = if v > amax { v } else { amax };
    }
    (amax, finite)
}

/// Smallest and largest value of a 32-value block, lane-parallel, and whether all are finite.
#[inline(always)]
pub fn min_max32(x: &[f32; 32]) -> (f32, f32, bool) {
    let (mut lo, mut hi) = ([f32::MAX; L], [-f32::MAX; L]);
    let mut finite = true;
    for c in x.chunks_exact(L) {
        for k in 0..L {
            finite &= c[k].abs() <= f32::MAX;
            lo[k] = if c[k] < lo[k] { c[k] } else { lo[k] };
            hi[k] = if c[k] > hi[k] { c[k] } else { hi[k] };
        }
    }
    let (mut min, mut max) = (f32::MAX, -f32::MAX);
    for k in 0..L {
        min = if lo[k] < min { lo[k] } else { min };
        max = if hi[k] > max { hi[k] } else { max };
    }
    (min, max, finite)
}

/// A format quantized super-block by super-block by one search whose `FAST` instance (table
/// lookups, lanes) gives the reference's bytes: the IQ3, IQ2 and IQ1 formats. Implementing it
/// makes the format a [`BlockFormat`](super::BlockFormat) whose reference paths run the search
/// with `FAST = false` and whose fast paths run it with `FAST = true` under [`dispatch`] and
/// [`dispatch_weighted`].
pub trait SuperBlockSearch {
    /// The ggml type; its block is the super-block.
    const SEARCHED: GgmlType;
    /// As [`BlockFormat::NEEDS_WEIGHTS`](super::BlockFormat::NEEDS_WEIGHTS): such a format is
    /// never asked for a super-block without weights.
    const WEIGHTS_ONLY: bool = false;
    /// One super-block `x` into `out`, with its importance weights where given.
    fn super_block<const FAST: bool>(x: &[f32], w: Option<&[f32]>, out: &mut [u8]);
}

/// Every super-block of `x` (whole super-blocks), each with its slice of `w`.
#[inline(always)]
fn super_blocks<F: SuperBlockSearch, const FAST: bool>(x: &[f32], w: Option<&[f32]>, out: &mut [u8]) {
    let (n, bytes) = (F::SEARCHED.block_elems() as usize, F::SEARCHED.block_bytes() as usize);
    for (b, (xb, ob)) in x.chunks_exact(n).zip(out.chunks_exact_mut(bytes)).enumerate() {
        F::super_block::<FAST>(xb, w.map(|w| &w[n * b..n * b + n]), ob);
    }
}

/// A [`SuperBlockSearch`] format's fast paths, for [`dispatch`] and [`dispatch_weighted`].
struct Searched<F>(core::marker::PhantomData<F>);

impl<F: SuperBlockSearch> SimdBody for Searched<F> {
    #[inline(always)]
    fn body(x: &[f32], out: &mut [u8]) {
        super_blocks::<F, true>(x, None, out);
    }
}

impl<F: SuperBlockSearch> SimdWeighted for Searched<F> {
    #[inline(always)]
    fn body(x: &[f32], w: &[f32], out: &mut [u8]) {
        super_blocks::<F, true>(x, Some(w), out);
    }
}

impl<F: SuperBlockSearch> super::BlockFormat for F {
    const TYPE: GgmlType = F::SEARCHED;
    const NEEDS_WEIGHTS: bool = F::WEIGHTS_ONLY;

    fn quantize_block(x: &[f32], out: &mut [u8]) {
        F::super_block::<false>(x, None, out);
    }

    /// The searches by table and in lanes.
    fn quantize_blocks(x: &[f32], out: &mut [u8]) {
        dispatch::<Searched<F>>(x, out);
    }

    fn quantize_row_weighted_ref(x: &[f32], w: &[f32], out: &mut [u8]) -> bool {
        super_blocks::<F, false>(x, Some(w), out);
        true
    }

    /// The searches by table and in lanes.
    fn quantize_row_weighted(x: &[f32], w: &[f32], out: &mut [u8]) -> bool {
        dispatch_weighted::<Searched<F>>(x, w, out);
        true
    }
}
