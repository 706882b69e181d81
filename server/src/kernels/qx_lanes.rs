//! The symmetric search `make_qx_quants` (Q6_K; with importance weights Q4_0, Q5_0, Q3_K and
//! Q6_K) over eight sub-blocks at once (see [`super::lanes`]); lane `k` repeats `ggml`'s scalar
//! steps for sub-block `k`, with branches turned into selects.

use super::ggml::GROUP_MAX_EPS;
use super::lanes::{L, V, quant, select, splat};

/// `xt[i][k]` = value `i` of sub-block `k`, for `k` in `0..8`.
pub type Sub16 = [V; 16];

/// Per-lane `argabsmax`: the first value of largest magnitude and that magnitude.
#[inline(always)]
fn argabsmax_x8<const N: usize>(xt: &[V; N]) -> (V, V) {
    let (mut max, mut amax) = (splat(0.0), splat(0.0));
    for row in xt {
        for k in 0..L {
            let a = row[k].abs();
            if a > amax[k] {
                amax[k] = a;
                max[k] = row[k];
            }
        }
    }
    (max, amax)
}

/// `make_qx_quants(16, nmax, x, L, 1, NULL)` for eight sub-blocks; `lt` gets quants in
/// `0..2·nmax` (0 for all-tiny lanes) and the scales are returned.
#[inline(always)]
pub fn make_qx_quants_x8(nmax: i32, xt: &Sub16, lt: &mut Sub16) -> V {
    // rmse_type 1 without weights weighs by x², the same rounded product ggml forms inline.
    let wt = xt.map(|row| row.map(|x| x * x));
    make_qx_quants_w_x8(nmax, xt, &wt, lt)
}

/// `make_qx_quants(N, nmax, x, L, 1, qw)` for eight sub-blocks of `N` values with weights `wt`
/// (same layout as `xt`); as [`make_qx_quants_x8`] otherwise.
#[inline(always)]
pub fn make_qx_quants_w_x8<const N: usize>(nmax: i32, xt: &[V; N], wt: &[V; N], lt: &mut [V; N]) -> V {
    let (max, amax) = argabsmax_x8(xt);
    let nmaxf = nmax as f32;
    let pass = |iscale: &V, q: &mut [V; N]| {
        let (mut sumlx, mut suml2) = (splat(0.0), splat(0.0));
        for i in 0..N {
            let mut v = [0.0; L];
            for k in 0..L {
                v[k] = iscale[k] * xt[i][k];
            }
            q[i] = quant(v, -nmax, nmax - 1);
            for k in 0..L {
                let x = xt[i][k];
                let w = wt[i][k];
                sumlx[k] += w * x * q[i][k];
                suml2[k] += w * q[i][k] * q[i][k];
            }
        }
        (sumlx, suml2)
    };
    let mut iscale = [0.0; L];
    for k in 0..L {
        iscale[k] = -nmaxf / max[k];
    }
    let mut q = [[0.0f32; L]; N];
    let (sumlx, suml2) = pass(&iscale, &mut q);
    *lt = q;
    let mut scale = [0.0; L];
    let mut best = [0.0; L];
    for k in 0..L {
        scale[k] = if suml2[k] != 0.0 { sumlx[k] / suml2[k] } else { 0.0 };
        best[k] = scale[k] * sumlx[k];
    }
    for is in -9i32..=9 {
        if is == 0 {
            continue;
        }
        let num = -(nmaxf + 0.1f32 * is as f32);
        for k in 0..L {
            iscale[k] = num / max[k];
        }
        let (sumlx, suml2) = pass(&iscale, &mut q);
        let mut take = [false; L];
        for k in 0..L {
            take[k] = suml2[k] > 0.0 && sumlx[k] * sumlx[k] > best[k] * suml2[k];
            if take[k] {
                scale[k] = sumlx[k] / suml2[k];
                best[k] = scale[k] * sumlx[k];
            }
        }
        for i in 0..N {
            lt[i] = select(take, q[i], lt[i]);
        }
    }
    let tiny = amax.map(|a| a < GROUP_MAX_EPS);
    for row in lt.iter_mut() {
        for k in 0..L {
            row[k] = if tiny[k] { 0.0 } else { row[k] + nmaxf };
        }
    }
    select(tiny, splat(0.0), scale)
}

/// Loads 8 consecutive 16-value sub-blocks (128 values) into lanes.
#[inline(always)]
pub fn load16(x: &[f32]) -> Sub16 {
    let mut xt = [[0f32; L]; 16];
    for (k, sub) in x.chunks_exact(16).take(L).enumerate() {
        for (i, &v) in sub.iter().enumerate() {
            xt[i][k] = v;
        }
    }
    xt
}
