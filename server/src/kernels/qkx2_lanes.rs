//! `make_qkx2_quants` over eight sub-blocks at once (see [`super::lanes`]): lane `k` runs the
//! search of sub-block `k`, step for step as `ggml::make_qkx2_quants` does for one.

use super::ggml::Qkx2;
use super::lanes::{L, V, cmp, quant, select, splat, zip};

/// Runs the search for 8 sub-blocks of `N` values. `xt[i][k]` is value `i` of sub-block `k`;
/// `wt` the weights, same layout. Fills `lt` (quants as f32, same layout) and returns each
/// lane's `(scale, offset)`.
#[inline(always)]
pub fn make_qkx2_quants_x8<const N: usize>(p: Qkx2, xt: &[V; N], wt: &[V; N], lt: &mut [V; N]) -> (V, V) {
    let err = |d: f32| if p.use_mad { d.abs() } else { d * d };
    let mut min = xt[0];
    let mut max = xt[0];
    let mut sum_w = wt[0];
    let mut sum_x = zip(sum_w, xt[0], |w, x| w * x);
    for i in 1..N {
        let x = xt[i];
        min = select(cmp(x, min, |a, b| a < b), x, min);
        max = select(cmp(x, max, |a, b| a > b), x, max);
        sum_w = zip(sum_w, wt[i], |s, w| s + w);
        let wx = zip(wt[i], x, |w, x| w * x);
        sum_x = zip(sum_x, wx, |s, v| s + v);
    }
    min = zip(min, splat(0.0), |m, z| if m > 0.0 { z } else { m });
    let constant = cmp(max, min, |a, b| a == b);
    let nmax = p.nmax as f32;
    let range = zip(max, min, |a, b| a - b);
    let iscale = zip(splat(nmax), range, |n, r| n / r);
    let mut scale = zip(splat(1.0), iscale, |o, i| o / i);
    let mut best = splat(0.0);
    for i in 0..N {
        let q = quant(zip(iscale, zip(xt[i], min, |x, m| x - m), |s, d| s * d), 0, p.nmax);
        lt[i] = q;
        let mut e = [0.0; L];
        for k in 0..L {
            let diff = scale[k] * q[k] + min[k] - xt[i][k];
            e[k] = wt[i][k] * err(diff);
        }
        best = zip(best, e, |b, e| b + e);
    }
    let mut laux = [[0.0f32; L]; N];
    for is in 0..=p.nstep {
        let num = p.rmin + p.rdelta * is as f32 + nmax;
        // `min` moves when a candidate wins, and ggml divides by the moved range.
        let range = zip(max, min, |a, b| a - b);
        let iscale = zip(splat(num), range, |n, r| n / r);
        let (mut sum_l, mut sum_l2, mut sum_xl) = (splat(0.0), splat(0.0), splat(0.0));
        for i in 0..N {
            let q = quant(zip(iscale, zip(xt[i], min, |x, m| x - m), |s, d| s * d), 0, p.nmax);
            laux[i] = q;
            for k in 0..L {
                let wl = wt[i][k] * q[k];
                sum_l[k] += wl;
                sum_l2[k] += wl * q[k];
                sum_xl[k] += wl * xt[i][k];
            }
        }
        let mut this_scale = [0.0; L];
        let mut this_min = [0.0; L];
        let mut ok = [false; L];
        for k in 0..L {
            let d = sum_w[k] * sum_l2[k] - sum_l[k] * sum_l[k];
            ok[k] = d > 0.0;
            let ts = (sum_w[k] * sum_xl[k] - sum_x[k] * sum_l[k]) / d;
            let tm = (sum_l2[k] * sum_x[k] - sum_l[k] * sum_xl[k]) / d;
            let clamp = tm > 0.0;
            this_min[k] = if clamp { 0.0 } else { tm };
            this_scale[k] = if clamp { sum_xl[k] / sum_l2[k] } else { ts };
        }
        let mut cur = splat(0.0);
        for i in 0..N {
            for k in 0..L {
                let diff = this_scale[k] * laux[i][k] + this_min[k] - xt[i][k];
                cur[k] += wt[i][k] * err(diff);
            }
        }
        let mut take = [false; L];
        for k in 0..L {
            take[k] = ok[k] && cur[k] < best[k];
        }
        for i in 0..N {
            lt[i] = select(take, laux[i], lt[i]);
        }
        best = select(take, cur, best);
        scale = select(take, this_scale, scale);
        min = select(take, this_min, min);
    }
    for i in 0..N {
        lt[i] = select(constant, splat(0.0), lt[i]);
    }
    scale = select(constant, splat(0.0), scale);
    (scale, zip(min, splat(0.0), |m, _| -m))
}
