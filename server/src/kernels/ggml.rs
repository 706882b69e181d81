//! Shared ggml quantization math, transcribed from ggml `src/ggml-quants.c` (`d99724f`) with the
//! conventions of `shared/spec/quantization.md` §2.0 that make it bit-exact: every f32 operation
//! rounded separately in C's order (Rust never contracts or reassociates), ggml's own rounding
//! trick, x86's float→int conversion, and explicit comparisons instead of `f32::min/max`.

/// ggml's `GROUP_MAX_EPS`.
pub const GROUP_MAX_EPS: f32 = 1e-15;

/// ggml's `nearest_int`: round half to even through the 1.5·2^23 trick (exact for |v| ≤ 4194303,
/// and reproducing ggml's bits outside that range too).
#[inline(always)]
pub fn nearest_int(v: f32) -> i32 {
    let val = v + 12_582_912.0;
    (val.to_bits() & 0x007F_FFFF) as i32 - 0x0040_0000
}

/// C's float → int conversion as compiled for x86-64 (`cvttss2si`): truncation, and
/// `i32::MIN` ("integer indefinite") for NaN and out-of-range values. Rust's `as` saturates.
#[inline(always)]
pub fn cvt(v: f32) -> i32 {
    if v.is_nan() || !(-2_147_483_648.0..2_147_483_648.0).contains(&v) { i32::MIN } else { v as i32 }
}

/// f32 → IEEE binary16 bits, round to nearest even, with ggml's NaN (`0x7E00 | sign`). Integer
/// only, so it is the same on every platform (and in WGSL).
#[inline(always)]
pub fn f16(v: f32) -> u16 {
    let u = v.to_bits();
    let s = ((u >> 16) & 0x8000) as u16;
    let a = u & 0x7FFF_FFFF;
    if a > 0x7F80_0000 {
        return s | 0x7E00;
    }
    if a >= 0x4780_0000 {
        return s | 0x7C00;
    }
    let e = a >> 23;
    if e >= 113 {
        let m = a & 0x7F_FFFF;
        let mut h = ((e - 112) << 10) | (m >> 13);
        let r = m & 0x1FFF;
        if r > 0x1000 || (r == 0x1000 && h & 1 == 1) {
            h += 1;
        }
        return s | h as u16;
    }
    if e < 102 {
        return s;
    }
    let m = (a & 0x7F_FFFF) | 0x80_0000;
    let sh = 126 - e;
    let mut h = m >> sh;
    let r = m & ((1 << sh) - 1);
    let half = 1 << (sh - 1);
    if r > half || (r == half && h & 1 == 1) {
        h += 1;
    }
    s | h as u16
}

/// binary16 bits → f32 (exact).
#[inline(always)]
pub fn f16f(h: u16) -> f32 {
    half::f16::from_bits(h).to_f32()
}

/// f32 → bfloat16 bits as `ggml_fp32_to_bf16_row_ref`: round to nearest even, quiet NaNs.
#[inline(always)]
pub fn bf16(v: f32) -> u16 {
    let u = v.to_bits();
    if (u & 0x7FFF_FFFF) > 0x7F80_0000 {
        return ((u >> 16) | 0x0040) as u16;
    }
    ((u + 0x7FFF + ((u >> 16) & 1)) >> 16) as u16
}

/// Index-order scan for the element of largest magnitude: `(signed value, magnitude)`; ties keep
/// the first.
#[inline(always)]
pub fn argabsmax(x: &[f32]) -> (f32, f32) {
    let (mut max, mut amax) = (0.0f32, 0.0f32);
    for &v in x {
        let a = v.abs();
        if a > amax {
            amax = a;
            max = v;
        }
    }
    (max, amax)
}

/// `make_qx_quants(n, nmax, x, L, rmse_type = 1, qw = NULL)`: symmetric scale search with
/// weights x². Fills `l` with values in `0..2·nmax` and returns the scale.
pub fn make_qx_quants(nmax: i32, x: &[f32], l: &mut [i8]) -> f32 {
    let (max, amax) = argabsmax(x);
    if amax < GROUP_MAX_EPS {
        l.fill(0);
        return 0.0;
    }
    let nmaxf = nmax as f32;
    let pass = |iscale: f32| {
        let (mut sumlx, mut suml2) = (0.0f32, 0.0f32);
        for &xi in x {
            let q = nearest_int(iscale * xi).clamp(-nmax, nmax - 1) as f32;
            let w = xi * xi;
            sumlx += w * xi * q;
            suml2 += w * q * q;
        }
        (sumlx, suml2)
    };
    let fill = |iscale: f32, l: &mut [i8]| {
        for (li, &xi) in l.iter_mut().zip(x) {
            *li = (nearest_int(iscale * xi).clamp(-nmax, nmax - 1) + nmax) as i8;
        }
    };
    let iscale = -nmaxf / max;
    fill(iscale, l);
    let (sumlx, suml2) = pass(iscale);
    let mut scale = if suml2 != 0.0 { sumlx / suml2 } else { 0.0 };
    let mut best = scale * sumlx;
    for is in -9i32..=9 {
        if is == 0 {
            continue;
        }
        let iscale = -(nmaxf + 0.1f32 * is as f32) / max;
        let (sumlx, suml2) = pass(iscale);
        if suml2 > 0.0 && sumlx * sumlx > best * suml2 {
            fill(iscale, l);
            scale = sumlx / suml2;
            best = scale * sumlx;
        }
    }
    scale
}

/// `make_q3_quants(n, nmax, x, L, do_rmse = true)`: symmetric search with iterative refinement.
/// Fills `l` with values in `0..2·nmax` and returns the scale.
pub fn make_q3_quants(nmax: i32, x: &[f32], l: &mut [i8]) -> f32 {
    let (max, amax) = argabsmax(x);
    if amax < GROUP_MAX_EPS {
        l.fill(0);
        return 0.0;
    }
    let iscale = -(nmax as f32) / max;
    let (mut sumlx, mut suml2) = (0.0f32, 0.0f32);
    for (li, &xi) in l.iter_mut().zip(x) {
        let q = nearest_int(iscale * xi).clamp(-nmax, nmax - 1);
        *li = q as i8;
        let w = xi * xi;
        sumlx += w * xi * q as f32;
        suml2 += w * q as f32 * q as f32;
    }
    for _ in 0..5 {
        let mut changed = 0;
        for (li, &xi) in l.iter_mut().zip(x) {
            let w = xi * xi;
            let lf = f32::from(*li);
            let mut slx = sumlx - w * xi * lf;
            if slx > 0.0 {
                let mut sl2 = suml2 - w * lf * lf;
                let new_l = nearest_int(xi * sl2 / slx).clamp(-nmax, nmax - 1);
                if new_l != i32::from(*li) {
                    let nf = new_l as f32;
                    slx += w * xi * nf;
                    sl2 += w * nf * nf;
                    if sl2 > 0.0 && slx * slx * suml2 > sumlx * sumlx * sl2 {
                        *li = new_l as i8;
                        sumlx = slx;
                        suml2 = sl2;
                        changed += 1;
                    }
                }
            }
        }
        if changed == 0 {
            break;
        }
    }
    for li in l.iter_mut() {
        *li += nmax as i8;
    }
    if suml2 > 0.0 { sumlx / suml2 } else { 0.0 }
}

/// Parameters of `make_qkx2_quants`.
#[derive(Debug, Clone, Copy)]
pub struct Qkx2 {
    /// Largest quant.
    pub nmax: i32,
    /// First candidate offset.
    pub rmin: f32,
    /// Candidate step.
    pub rdelta: f32,
    /// Number of candidate steps.
    pub nstep: i32,
    /// Absolute instead of squared error.
    pub use_mad: bool,
}

/// `make_qkx2_quants`: asymmetric (scale + min) search. Fills `l` (`0..=nmax`) and returns
/// `(scale, offset)` where the dequantized value is `scale·l − offset`.
pub fn make_qkx2_quants(p: Qkx2, x: &[f32], weights: &[f32], l: &mut [u8], laux: &mut [u8]) -> (f32, f32) {
    let n = x.len();
    let mut min = x[0];
    let mut max = x[0];
    let mut sum_w = weights[0];
    let mut sum_x = sum_w * x[0];
    for i in 1..n {
        if x[i] < min {
            min = x[i];
        }
        if x[i] > max {
            max = x[i];
        }
        let w = weights[i];
        sum_w += w;
        sum_x += w * x[i];
    }
    if min > 0.0 {
        min = 0.0;
    }
    if max == min {
        l.fill(0);
        return (0.0, -min);
    }
    let nmaxf = p.nmax as f32;
    let mut iscale = nmaxf / (max - min);
    let mut scale = 1.0 / iscale;
    let err = |d: f32| if p.use_mad { d.abs() } else { d * d };
    let mut best_error = 0.0f32;
    for i in 0..n {
        let q = nearest_int(iscale * (x[i] - min)).clamp(0, p.nmax);
        l[i] = q as u8;
        let diff = scale * q as f32 + min - x[i];
        best_error += weights[i] * err(diff);
    }
    for is in 0..=p.nstep {
        iscale = (p.rmin + p.rdelta * is as f32 + nmaxf) / (max - min);
        let (mut sum_l, mut sum_l2, mut sum_xl) = (0.0f32, 0.0f32, 0.0f32);
        for i in 0..n {
            let q = nearest_int(iscale * (x[i] - min)).clamp(0, p.nmax);
            laux[i] = q as u8;
            let w = weights[i];
            let qf = q as f32;
            sum_l += w * qf;
            sum_l2 += w * qf * qf;
            sum_xl += w * qf * x[i];
        }
        let d = sum_w * sum_l2 - sum_l * sum_l;
        if d > 0.0 {
            let mut this_scale = (sum_w * sum_xl - sum_x * sum_l) / d;
            let mut this_min = (sum_l2 * sum_x - sum_l * sum_xl) / d;
            if this_min > 0.0 {
                this_min = 0.0;
                this_scale = sum_xl / sum_l2;
            }
            let mut cur_error = 0.0f32;
            for i in 0..n {
                let diff = this_scale * f32::from(laux[i]) + this_min - x[i];
                cur_error += weights[i] * err(diff);
            }
            if cur_error < best_error {
                l[..n].copy_from_slice(&laux[..n]);
                best_error = cur_error;
                scale = this_scale;
                min = this_min;
            }
        }
    }
    (scale, -min)
}

/// `make_qx_quants(n, nmax, x, L, rmse_type = 1, qw)` with importance weights: the weighted
/// paths' symmetric search (Q4_0, Q5_0, Q3_K, Q6_K). [`make_qx_quants`] with `w = qw[i]` in
/// place of `x²`; fills `l` with values in `0..2·nmax` and returns the scale.
pub fn make_qx_quants_w(nmax: i32, x: &[f32], qw: &[f32], l: &mut [i8]) -> f32 {
    let (max, amax) = argabsmax(x);
    if amax < GROUP_MAX_EPS {
        l.fill(0);
        return 0.0;
    }
    let nmaxf = nmax as f32;
    let pass = |iscale: f32| {
        let (mut sumlx, mut suml2) = (0.0f32, 0.0f32);
        for (&xi, &w) in x.iter().zip(qw) {
            let q = nearest_int(iscale * xi).clamp(-nmax, nmax - 1) as f32;
            sumlx += w * xi * q;
            suml2 += w * q * q;
        }
        (sumlx, suml2)
    };
    let fill = |iscale: f32, l: &mut [i8]| {
        for (li, &xi) in l.iter_mut().zip(x) {
            *li = (nearest_int(iscale * xi).clamp(-nmax, nmax - 1) + nmax) as i8;
        }
    };
    let iscale = -nmaxf / max;
    fill(iscale, l);
    let (sumlx, suml2) = pass(iscale);
    let mut scale = if suml2 != 0.0 { sumlx / suml2 } else { 0.0 };
    let mut best = scale * sumlx;
    for is in -9i32..=9 {
        if is == 0 {
            continue;
        }
        let iscale = -(nmaxf + 0.1f32 * is as f32) / max;
        let (sumlx, suml2) = pass(iscale);
        if suml2 > 0.0 && sumlx * sumlx > best * suml2 {
            fill(iscale, l);
            scale = sumlx / suml2;
            best = scale * sumlx;
        }
    }
    scale
}

/// Parameters of `make_qkx3_quants` as every weighted caller passes them
/// (`rmin = -0.9`, `rdelta = 0.05`, `nstep = 36`, squared error): only `nmax` varies.
pub const fn qkx3(nmax: i32) -> Qkx2 {
    Qkx2 { nmax, rmin: -0.9, rdelta: 0.05, nstep: 36, use_mad: false }
}

/// `make_qkx3_quants` with weights (the weighted paths' asymmetric search: Q4_1, Q5_1, Q2_K,
/// Q4_K, Q5_K). Unlike [`make_qkx2_quants`] it gives up when `max <= min` and takes no
/// search when `nstep < 1`. Fills `l` (`0..=nmax`) and returns `(scale, the_min)`, where the
/// dequantized value is `scale·l − the_min`.
pub fn make_qkx3_quants(p: Qkx2, x: &[f32], weights: &[f32], l: &mut [u8], laux: &mut [u8]) -> (f32, f32) {
    let n = x.len();
    let mut min = x[0];
    let mut max = x[0];
    let mut sum_w = weights[0];
    let mut sum_x = sum_w * x[0];
    for i in 1..n {
        if x[i] < min {
            min = x[i];
        }
        if x[i] > max {
            max = x[i];
        }
        let w = weights[i];
        sum_w += w;
        sum_x += w * x[i];
    }
    if min > 0.0 {
        min = 0.0;
    }
    if max <= min {
        l[..n].fill(0);
        return (0.0, -min);
    }
    let nmaxf = p.nmax as f32;
    let mut iscale = nmaxf / (max - min);
    let mut scale = 1.0 / iscale;
    let err = |d: f32| if p.use_mad { d.abs() } else { d * d };
    let mut best_mad = 0.0f32;
    for i in 0..n {
        let q = nearest_int(iscale * (x[i] - min)).clamp(0, p.nmax);
        l[i] = q as u8;
        let diff = scale * q as f32 + min - x[i];
        best_mad += weights[i] * err(diff);
    }
    if p.nstep < 1 {
        return (scale, -min);
    }
    for is in 0..=p.nstep {
        iscale = (p.rmin + p.rdelta * is as f32 + nmaxf) / (max - min);
        let (mut sum_l, mut sum_l2, mut sum_xl) = (0.0f32, 0.0f32, 0.0f32);
        for i in 0..n {
            let q = nearest_int(iscale * (x[i] - min)).clamp(0, p.nmax);
            laux[i] = q as u8;
            let w = weights[i];
            let qf = q as f32;
            sum_l += w * qf;
            sum_l2 += w * qf * qf;
            sum_xl += w * qf * x[i];
        }
        let d = sum_w * sum_l2 - sum_l * sum_l;
        if d > 0.0 {
            let mut this_scale = (sum_w * sum_xl - sum_x * sum_l) / d;
            let mut this_min = (sum_l2 * sum_x - sum_l * sum_xl) / d;
            if this_min > 0.0 {
                this_min = 0.0;
                this_scale = sum_xl / sum_l2;
            }
            let mut mad = 0.0f32;
            for i in 0..n {
                let diff = this_scale * f32::from(laux[i]) + this_min - x[i];
                mad += weights[i] * err(diff);
            }
            if mad < best_mad {
                l[..n].copy_from_slice(&laux[..n]);
                best_mad = mad;
                scale = this_scale;
                min = this_min;
            }
        }
    }
    (scale, -min)
}

/// `make_qp_quants(n, nmax, x, L, quant_weights)`: the K-quants' weighted search for the
/// super-block scale of positive sub-block scales (or mins). Fills `l` and returns the scale.
/// `l` is C's `uint8_t`: a negative quant wraps there and is read back wrapped, as in ggml.
pub fn make_qp_quants(nmax: i32, x: &[f32], l: &mut [u8], qw: &[f32]) -> f32 {
    let mut max = 0.0f32;
    for &v in x {
        // MAX(max, x[i])
        max = if max > v { max } else { v };
    }
    if max < GROUP_MAX_EPS {
        l.fill(0);
        return 0.0;
    }
    let nmaxf = nmax as f32;
    let mut iscale = nmaxf / max;
    for (li, &v) in l.iter_mut().zip(x) {
        *li = nearest_int(iscale * v) as u8;
    }
    let scale = 1.0 / iscale;
    let mut best_mse = 0.0f32;
    for i in 0..x.len() {
        let diff = x[i] - scale * f32::from(l[i]);
        best_mse += qw[i] * diff * diff;
    }
    for is in -4i32..=4 {
        if is == 0 {
            continue;
        }
        let iscale_is = (0.1f32 * is as f32 + nmaxf) / max;
        let scale_is = 1.0 / iscale_is;
        let mut mse = 0.0f32;
        for i in 0..x.len() {
            let q = nearest_int(iscale_is * x[i]).min(nmax);
            let diff = x[i] - scale_is * q as f32;
            mse += qw[i] * diff * diff;
        }
        if mse < best_mse {
            best_mse = mse;
            iscale = iscale_is;
        }
    }
    let (mut sumlx, mut suml2) = (0.0f32, 0.0f32);
    for i in 0..x.len() {
        let q = nearest_int(iscale * x[i]).min(nmax);
        l[i] = q as u8;
        let (w, qf) = (qw[i], q as f32);
        sumlx += w * x[i] * qf;
        suml2 += w * qf * qf;
    }
    qp_refine(nmax, x, l, qw, &mut sumlx, &mut suml2);
    if suml2 > 0.0 { sumlx / suml2 } else { 0.0 }
}

/// `make_qp_quants`' refinement: up to five sweeps moving one quant at a time while the
/// weighted fit improves.
fn qp_refine(nmax: i32, x: &[f32], l: &mut [u8], qw: &[f32], sumlx: &mut f32, suml2: &mut f32) {
    for _ in 0..5 {
        let mut changed = 0;
        for i in 0..x.len() {
            let w = qw[i];
            let li = f32::from(l[i]);
            let mut slx = *sumlx - w * x[i] * li;
            let mut sl2 = *suml2 - w * li * li;
            if slx > 0.0 && sl2 > 0.0 {
                let new_l = nearest_int(x[i] * sl2 / slx).min(nmax);
                if new_l != i32::from(l[i]) {
                    let nf = new_l as f32;
                    slx += w * x[i] * nf;
                    sl2 += w * nf * nf;
                    if slx * slx * *suml2 > *sumlx * *sumlx * sl2 {
                        l[i] = new_l as u8;
                        *sumlx = slx;
                        *suml2 = sl2;
                        changed += 1;
                    }
                }
            }
        }
        if changed == 0 {
            break;
        }
    }
}

/// The weight of value `v` in the legacy and K-quant weighted paths:
/// `qw · sqrtf(sigma2 + v²)`.
#[inline(always)]
pub fn importance(qw: f32, sigma2: f32, v: f32) -> f32 {
    qw * (sigma2 + v * v).sqrt()
}

/// `sum of x²` in index order, as each weighted path starts (over the row for the legacy
/// formats, over the super-block for the K-quants).
#[inline(always)]
pub fn sum_sq(x: &[f32]) -> f32 {
    let mut s = 0.0f32;
    for &v in x {
        s += v * v;
    }
    s
}

/// `sum of x²` over the row divided by its length: σ² of the legacy formats' weighted paths
/// (`quantize_row_q{4,5}_{0,1}_impl`), which the GPU kernels take from the host.
#[inline(always)]
pub fn mean_sq(x: &[f32]) -> f32 {
    sum_sq(x) / x.len() as f32
}

/// `get_scale_min_k4`: the 6-bit scale and min of sub-block `j` from Q4_K/Q5_K's 12 scale bytes.
#[inline(always)]
pub fn get_scale_min_k4(j: usize, q: &[u8; 12]) -> (u8, u8) {
    if j < 4 {
        (q[j] & 63, q[j + 4] & 63)
    } else {
        ((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4), (q[j + 4] >> 4) | ((q[j] >> 6) << 4))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounding_helpers() {
        assert_eq!(nearest_int(2.5), 2);
        assert_eq!(nearest_int(3.5), 4);
        assert_eq!(nearest_int(-2.5), -2);
        assert_eq!(nearest_int(-0.4), 0);
        assert_eq!(cvt(f32::NAN), i32::MIN);
        assert_eq!(cvt(3e9), i32::MIN);
        assert_eq!(cvt(-8.9), -8);
    }

    #[test]
    fn f16_matches_half_except_nan_payloads() {
        let mut rng = kiln_core::rng::Rng::new(0x1234_5678);
        for i in 0..2_000_000u32 {
            let bits = if i < 65536 { (i << 16) | (i & 0xFFFF) } else { rng.next_u32() };
            let v = f32::from_bits(bits);
            if v.is_nan() {
                assert_eq!(f16(v) & 0x7FFF, 0x7E00);
            } else {
                assert_eq!(f16(v), half::f16::from_f32(v).to_bits(), "{bits:#x}");
            }
        }
    }

    #[test]
    fn bf16_rounds_to_nearest_even() {
        assert_eq!(bf16(1.0), 0x3F80);
        assert_eq!(bf16(f32::from_bits(0x3F80_8000)), 0x3F80);
        assert_eq!(bf16(f32::from_bits(0x3F81_8000)), 0x3F82);
        assert_eq!(bf16(f32::from_bits(0x7F80_0001)), 0x7FC0);
    }
}
