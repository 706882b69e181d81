//! TQ1_0 — 256 ternary values in 54 bytes: 48 bytes of five trits each, 4 bytes of four trits
//! each, then f16 `d` (`quantize_row_tq1_0_ref`; `quantize_tq1_0` ignores the weights). Each
//! byte holds its trits as a base-3 fraction scaled to 0..=255 by a ceiling division.

use kiln_core::ggml_type::GgmlType;

use super::{BlockFormat, ggml};

/// TQ1_0.
pub struct Tq1_0;

/// C's `lroundf` as glibc computes it on x86-64: half away from zero, and `LONG_MIN` for NaN and
/// values out of `long`'s range.
#[inline(always)]
pub(super) fn lroundf(v: f32) -> i64 {
    if v.is_nan() || v.abs() >= 9.223_372e18 { i64::MIN } else { v.round() as i64 }
}

/// The trit of `v`: `lroundf(v·id) + 1` as C's `int` (0, 1, 2 for a value within `d`).
#[inline(always)]
pub(super) fn trit(v: f32, id: f32) -> i32 {
    lroundf(v * id).wrapping_add(1) as i32
}

/// `d = max |x|` by ggml's `MAX(amax, |v|)` (`amax > |v| ? amax : |v|`, so a NaN is kept only
/// when nothing follows it) and `1/d` (0 for a zero block).
#[inline(always)]
pub(super) fn ternary_scale(x: &[f32]) -> (f32, f32) {
    let mut amax = 0.0f32;
    for &v in x {
        let a = v.abs();
        amax = if amax > a { amax } else { a };
    }
    (amax, if amax != 0.0 { 1.0 / amax } else { 0.0 })
}

/// `trits` (most significant first) as a base-3 number in C's `uint8_t`.
#[inline(always)]
fn base3(trits: impl Iterator<Item = i32>) -> u8 {
    trits.fold(0u8, |q, t| (i32::from(q) * 3 + t) as u8)
}

/// A base-3 byte of five trits spread over 0..=255: `⌈q·256/243⌉`.
#[inline(always)]
fn spread(q: u8) -> u8 {
    (u32::from(q) * 256).div_ceil(243) as u8
}

impl BlockFormat for Tq1_0 {
    const TYPE: GgmlType = GgmlType::TQ1_0;

    fn quantize_block(x: &[f32], out: &mut [u8]) {
        let (d, id) = ternary_scale(x);
        // Values 0..160: byte m of the first 32 holds x[m + 32n], n = 0..5.
        for m in 0..32 {
            out[m] = spread(base3((0..5).map(|n| trit(x[m + 32 * n], id))));
        }
        // Values 160..240: byte 32 + m holds x[160 + m + 16n].
        for m in 0..16 {
            out[32 + m] = spread(base3((0..5).map(|n| trit(x[160 + m + 16 * n], id))));
        }
        // Values 240..256: byte 48 + j holds x[240 + j + 4m], m = 0..4, shifted up by one trit.
        for j in 0..4 {
            let q = base3((0..4).map(|m| trit(x[240 + j + 4 * m], id)));
            out[48 + j] = spread(q.wrapping_mul(3));
        }
        out[52..54].copy_from_slice(&ggml::f16(d).to_le_bytes());
    }

    /// `quantize_tq1_0` ignores `quant_weights`: the plain bytes.
    fn quantize_row_weighted_ref(x: &[f32], _w: &[f32], out: &mut [u8]) -> bool {
        for (xb, ob) in x.chunks_exact(Self::BLOCK_ELEMS).zip(out.chunks_exact_mut(Self::BLOCK_BYTES)) {
            Self::quantize_block(xb, ob);
        }
        true
    }

    fn quantize_row_weighted(x: &[f32], _w: &[f32], out: &mut [u8]) -> bool {
        Self::quantize_blocks(x, out);
        true
    }
}
