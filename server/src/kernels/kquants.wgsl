// The K-quant kernel shape (shared/spec/quantization.md §3.6 item 1); the searches of §2.5 are
// searches.wgsl's. A workgroup of 64 invocations holds 64 / SUBS
// super-blocks; each invocation runs one sub-block's search serially, in element order; after a
// barrier one invocation per super-block does the super-block step (scales, d, dmin); after
// another every invocation requantizes its sub-block; then the workgroup writes its blocks out
// as whole words. Each format's file defines SUBS, SUB, BB and sub_search / super_step /
// sub_requant / block_byte.
//
// Exactness: every product that meets an add goes through opaque(); every quotient is exact
// (div), except rne(a / b) of the requantization, which takes the hardware quotient only when it
// is far from a rounding tie (rne_div); sqrt is exact (sqrt_exact). Anything these helpers cannot
// do exactly sets `oops`, and the host redoes that super-block on the CPU.
//
// With an importance vector (exact.wgsl's weighted()), the formats take the searches of
// ggml's quantize_row_*_impl instead: load_sub also loads the sub-block's importance values
// into qs, and sub_search / super_step choose.

const SBS: u32 = 64u / SUBS;

// Quants of every element (0..nmax, biased where the format biases).
var<workgroup> lq: array<u32, 2048>;
// Per sub-block: the search's scale and offset, then the requantization's dj and dm.
var<workgroup> s_sc: array<f32, 64>;
var<workgroup> s_off: array<f32, 64>;
var<workgroup> s_dj: array<f32, 64>;
var<workgroup> s_dm: array<f32, 64>;
// Per sub-block, weighted searches only: the sum of its weights.
var<workgroup> s_sw: array<f32, 64>;
// Per super-block: header bytes (scales, d, dmin) as the format lays them out.
var<workgroup> hdr: array<u32, 160>;
var<workgroup> bad: array<atomic<u32>, 8>;

var<private> ls: array<i32, 16>;
// The first source value of this invocation's super-block.
var<private> base: u32;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) t: u32) {
    if wg.x >= params.units {
        return;
    }
    let sb = t / SUBS;
    let j = t % SUBS;
    let block = wg.x * SBS + sb;
    if t < SBS {
        atomicStore(&bad[t], 0u);
    }
    workgroupBarrier();
    oops = false;
    base = block * 256u;
    load_sub(base + j * SUB);
    sub_search(sb, j);
    if oops {
        atomicOr(&bad[sb], 1u);
    }
    workgroupBarrier();
    if j == 0u {
        oops = false;
        super_step(sb);
        if oops {
            atomicOr(&bad[sb], 1u);
        }
    }
    workgroupBarrier();
    oops = false;
    sub_requant(sb, j);
    if oops {
        atomicOr(&bad[sb], 1u);
    }
    workgroupBarrier();
    let words = SBS * BB / 4u;
    for (var w = t; w < words; w = w + 64u) {
        var v = 0u;
        for (var k = 0u; k < 4u; k = k + 1u) {
            let i = 4u * w + k;
            v = v | (block_byte(i / BB, i % BB) << (8u * k));
        }
        dst[wg.x * words + w] = v;
    }
    if t < SBS && atomicLoad(&bad[t]) != 0u {
        flag_block(wg.x * SBS + t);
    }
}

// The sub-block's values into xs; non-finite, subnormal or tiny values are the CPU's.
fn load_sub(x0: u32) {
    var amax = 0.0;
    for (var i = 0u; i < SUB; i = i + 1u) {
        let u = val(x0 + i);
        if is_awkward(u) {
            oops = true;
        }
        xs[i] = bitcast<f32>(u);
        amax = max(amax, bitcast<f32>(u & 0x7FFFFFFFu));
    }
    if amax > 0.0 && amax < TINY {
        oops = true;
    }
    if weighted() {
        for (var i = 0u; i < SUB; i = i + 1u) {
            let u = imp(x0 + i);
            if !weight_ok(u) {
                oops = true;
            }
            qs[i] = bitcast<f32>(u);
        }
    }
}

// Σx² over the super-block in index order (sum_x2 of the weighted K-quant paths).
fn super_sum_sq() -> f32 {
    var s = 0.0;
    for (var i = 0u; i < 256u; i = i + 1u) {
        let v = bitcast<f32>(val(base + i));
        s = s + opaque(v * v);
    }
    return s;
}

// L = 0 for a sub-block the searches give up on (zero range, or amax below EPS).
fn clear_quants(l0: u32, n: u32) {
    for (var i = 0u; i < n; i = i + 1u) {
        lq[l0 + i] = 0u;
    }
}

// qkx2 with its quants to lq[l0..].
fn qkx2_lq(n: u32, nmax: i32, rmin: f32, rdelta: f32, nstep: i32, mad: bool, l0: u32) -> vec2<f32> {
    let r = qkx2(n, nmax, rmin, rdelta, nstep, mad);
    for (var i = 0u; i < n; i = i + 1u) {
        lq[l0 + i] = lbest[i];
    }
    return r;
}

// make_qx_quants over the sub-block in xs/ws; quants to lq[l0..]. Returns the scale.
fn qx(nmax: i32, l0: u32) -> f32 {
    let f = qx_fit(nmax, 16u);
    for (var i = 0u; i < 16u; i = i + 1u) {
        lq[l0 + i] = qx_level(f.y, nmax, xs[i]);
    }
    return f.x;
}

// make_q3_quants(16, nmax, xs, do_rmse) (§2.5.2); quants (biased) to lq[l0..]. Returns the scale.
fn q3s(nmax: i32, l0: u32) -> f32 {
    let ma = argabsmax(16u);
    if ma.y < EPS {
        clear_quants(l0, 16u);
        return 0.0;
    }
    let is = div(-f32(nmax), ma.x);
    var sumlx = 0.0;
    var suml2 = 0.0;
    for (var i = 0u; i < 16u; i = i + 1u) {
        let q = clamp(rne(is * xs[i]), -nmax, nmax - 1);
        ls[i] = q;
        let w = xs[i] * xs[i];
        sumlx = sumlx + opaque((w * xs[i]) * f32(q));
        suml2 = suml2 + opaque((w * f32(q)) * f32(q));
    }
    for (var it = 0; it < 5; it = it + 1) {
        var changed = 0;
        for (var i = 0u; i < 16u; i = i + 1u) {
            let w = xs[i] * xs[i];
            let lf = f32(ls[i]);
            var slx = sumlx - opaque((w * xs[i]) * lf);
            if slx > 0.0 {
                var sl2 = suml2 - opaque((w * lf) * lf);
                let nl = clamp(rne_div(xs[i] * sl2, slx), -nmax, nmax - 1);
                if nl != ls[i] {
                    let nf = f32(nl);
                    slx = slx + opaque((w * xs[i]) * nf);
                    sl2 = sl2 + opaque((w * nf) * nf);
                    if sl2 > 0.0 && (slx * slx) * suml2 > (sumlx * sumlx) * sl2 {
                        ls[i] = nl;
                        sumlx = slx;
                        suml2 = sl2;
                        changed = changed + 1;
                    }
                }
            }
        }
        if changed == 0 {
            break;
        }
    }
    for (var i = 0u; i < 16u; i = i + 1u) {
        lq[l0 + i] = u32(ls[i] + nmax);
    }
    if suml2 > 0.0 {
        return div(sumlx, suml2);
    }
    return 0.0;
}

// Q4_K and Q5_K: weights av + |x| with av = sqrt(Σx² / 32), then QKX2. With an importance
// vector (quantize_row_q{4,5}_K_impl): weights qw·sqrt(σ² + x²) with σ² twice the super-block's
// mean square, then make_qkx3_quants.
fn k_search(sb: u32, j: u32, nmax: i32, rmin: f32, nstep: i32) {
    let l0 = sb * 256u + j * 32u;
    var r: vec2<f32>;
    if weighted() {
        // (2·Σ) / 256 is exact for normal values; the multiply avoids the 2.5-ULP divide. 2·Σ is
        // opaque so that no compiler folds the two constants (2·Σ overflows where Σ·2^-7 does not).
        s_sw[sb * 8u + j] = importance_weights(opaque(2.0 * super_sum_sq()) * 0.00390625, 32u);
        r = qkx2_lq(32u, nmax, -0.9, 0.05, 36, false, l0);
    } else {
        var s2 = 0.0;
        for (var i = 0u; i < 32u; i = i + 1u) {
            s2 = s2 + opaque(xs[i] * xs[i]);
        }
        // s2 / 32 is exact for normal s2; the multiply avoids the 2.5-ULP divide.
        let av = sqrt_k(s2 * 0.03125);
        for (var i = 0u; i < 32u; i = i + 1u) {
            ws[i] = av + abs(xs[i]);
        }
        r = qkx2_lq(32u, nmax, rmin, 0.1, nstep, false, l0);
    }
    s_sc[sb * 8u + j] = r.x;
    s_off[sb * 8u + j] = r.y;
}

// The weighted super-block steps' scales (Q2_K, Q4_K, Q5_K): make_qp_quants over the n
// sub-block scales from b, then over their mins, each weighted by the sub-blocks' weights; the
// levels go to l_s and l_m. Returns the f16 bits of d and dmin.
fn qp_scales_mins(b: u32, n: u32, nmax: i32, l_s: ptr<function, array<u32, 16>>, l_m: ptr<function, array<u32, 16>>) -> vec2<u32> {
    for (var j = 0u; j < n; j = j + 1u) {
        qp_x[j] = s_sc[b + j];
        qp_w[j] = s_sw[b + j];
    }
    let d = f32_to_f16(bitcast<u32>(qp(n, nmax)));
    for (var j = 0u; j < n; j = j + 1u) {
        (*l_s)[j] = qp_l[j];
        qp_x[j] = s_off[b + j];
    }
    let dmin = f32_to_f16(bitcast<u32>(qp(n, nmax)));
    for (var j = 0u; j < n; j = j + 1u) {
        (*l_m)[j] = qp_l[j];
    }
    return vec2<u32>(d, dmin);
}

// Q4_K and Q5_K's super-block step: 6-bit scales and mins, d, dmin (header bytes 0..16). With an
// importance vector, make_qp_quants over the sub-blocks' scales and mins weighted by their
// weights, the levels clamped to 63 where the format does (`clamp63`, Q5_K).
fn k_super(sb: u32, clamp63: bool) {
    let b = sb * 8u;
    var l_s: array<u32, 16>;
    var l_m: array<u32, 16>;
    var d: u32;
    var dmin: u32;
    if weighted() {
        let h = qp_scales_mins(b, 8u, 63, &l_s, &l_m);
        d = h.x;
        dmin = h.y;
        for (var j = 0u; j < 8u; j = j + 1u) {
            if clamp63 {
                l_s[j] = min(l_s[j], 63u);
                l_m[j] = min(l_m[j], 63u);
            }
        }
    } else {
        var max_s = 0.0;
        var max_o = 0.0;
        for (var j = 0u; j < 8u; j = j + 1u) {
            if s_sc[b + j] > max_s {
                max_s = s_sc[b + j];
            }
            if s_off[b + j] > max_o {
                max_o = s_off[b + j];
            }
        }
        var inv_s = 0.0;
        if max_s > 0.0 {
            inv_s = div(63.0, max_s);
        }
        var inv_o = 0.0;
        if max_o > 0.0 {
            inv_o = div(63.0, max_o);
        }
        for (var j = 0u; j < 8u; j = j + 1u) {
            l_s[j] = min(63u, bitcast<u32>(rne(inv_s * s_sc[b + j])) & 0xFFu);
            l_m[j] = min(63u, bitcast<u32>(rne(inv_o * s_off[b + j])) & 0xFFu);
        }
        d = f32_to_f16(bitcast<u32>(div(max_s, 63.0)));
        dmin = f32_to_f16(bitcast<u32>(div(max_o, 63.0)));
    }
    // The 12 scale bytes as C's uint8_t array packs them (high bits of a level above 63 are lost).
    var sc: array<u32, 12>;
    for (var j = 0u; j < 8u; j = j + 1u) {
        if j < 4u {
            sc[j] = l_s[j];
            sc[j + 4u] = l_m[j];
        } else {
            sc[j + 4u] = ((l_s[j] & 15u) | ((l_m[j] & 15u) << 4u)) & 0xFFu;
            sc[j - 4u] = (sc[j - 4u] | ((l_s[j] >> 4u) << 6u)) & 0xFFu;
            sc[j] = (sc[j] | ((l_m[j] >> 4u) << 6u)) & 0xFFu;
        }
    }
    let h = sb * 20u;
    hdr[h] = d & 0xFFu;
    hdr[h + 1u] = d >> 8u;
    hdr[h + 2u] = dmin & 0xFFu;
    hdr[h + 3u] = dmin >> 8u;
    for (var k = 0u; k < 12u; k = k + 1u) {
        hdr[h + 4u + k] = sc[k];
    }
    let df = f16_to_f32(d);
    let dminf = f16_to_f32(dmin);
    for (var j = 0u; j < 8u; j = j + 1u) {
        var s: u32;
        var m: u32;
        if j < 4u {
            s = sc[j] & 63u;
            m = sc[j + 4u] & 63u;
        } else {
            s = (sc[j + 4u] & 15u) | ((sc[j - 4u] >> 6u) << 4u);
            m = (sc[j + 4u] >> 4u) | ((sc[j] >> 6u) << 4u);
        }
        s_dj[b + j] = df * f32(s);
        s_dm[b + j] = opaque(dminf * f32(m));
    }
}

// Requantizes a sub-block of n values whose quantized scale is not zero: clamp(rne((x + dm) / dj)).
fn requant_affine(sb: u32, j: u32, n: u32, nmax: i32) {
    let dj = s_dj[sb * SUBS + j];
    if dj == 0.0 {
        return;
    }
    let dm = s_dm[sb * SUBS + j];
    let l0 = sb * 256u + j * n;
    for (var i = 0u; i < n; i = i + 1u) {
        lq[l0 + i] = u32(clamp(rne_div(xs[i] + dm, dj), 0, nmax));
    }
}

// Requantizes a symmetric sub-block of 16: clamp(rne(x / dj), -nmax, nmax - 1) + nmax.
fn requant_symmetric(sb: u32, j: u32, nmax: i32) {
    let dj = s_dj[sb * SUBS + j];
    if dj == 0.0 {
        return;
    }
    let l0 = sb * 256u + j * 16u;
    for (var i = 0u; i < 16u; i = i + 1u) {
        lq[l0 + i] = u32(clamp(rne_div(xs[i], dj), -nmax, nmax - 1) + nmax);
    }
}

// Byte `i` of a 2-bit plane as Q2_K/Q3_K pack it: byte 32h + l holds elements 128h + l + 32k.
fn plane2(sb: u32, i: u32) -> u32 {
    let b = sb * 256u + 128u * (i / 32u) + i % 32u;
    return (lq[b] & 3u) | ((lq[b + 32u] & 3u) << 2u) | ((lq[b + 64u] & 3u) << 4u) | ((lq[b + 96u] & 3u) << 6u);
}
