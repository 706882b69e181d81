// Q2_K (CPU twin: q2_k.rs): 16 sub-blocks of 16, QKX2(nmax 3, rmin -0.5, 15 steps, absolute
// error) with weights |x|, 4-bit scales and mins. The kernel shape and the searches are
// kquants.wgsl's. With an importance vector (quantize_row_q2_K_impl): weights qw·sqrt(σ² + x²)
// with σ² the super-block's mean square, make_qkx3_quants(nmax 3), and the scales and mins
// from make_qp_quants(nmax 15) weighted by the sub-blocks' weights.
const SUBS: u32 = 16u;
const SUB: u32 = 16u;
const BB: u32 = 84u;

fn sub_search(sb: u32, j: u32) {
    var r: vec2<f32>;
    if weighted() {
        s_sw[sb * 16u + j] = importance_weights(super_sum_sq() * 0.00390625, 16u);
        r = qkx2_lq(16u, 3, -0.9, 0.05, 36, false, sb * 256u + j * 16u);
    } else {
        for (var i = 0u; i < 16u; i = i + 1u) {
            ws[i] = abs(xs[i]);
        }
        r = qkx2_lq(16u, 3, -0.5, 0.1, 15, true, sb * 256u + j * 16u);
    }
    s_sc[sb * 16u + j] = r.x;
    s_off[sb * 16u + j] = r.y;
}

// sc[j] = scale nibble | min nibble << 4 (header 0..16), d and dmin (header 16..20).
fn super_step(sb: u32) {
    let b = sb * 16u;
    var max_s = 0.0;
    var max_o = 0.0;
    for (var j = 0u; j < 16u; j = j + 1u) {
        if s_sc[b + j] > max_s {
            max_s = s_sc[b + j];
        }
        if s_off[b + j] > max_o {
            max_o = s_off[b + j];
        }
    }
    var sc: array<u32, 16>;
    var d = 0u;
    var dmin = 0u;
    if weighted() {
        var l_m: array<u32, 16>;
        let h = qp_scales_mins(b, 16u, 15, &sc, &l_m);
        d = h.x;
        dmin = h.y;
        for (var j = 0u; j < 16u; j = j + 1u) {
            // uint8_t = Ls | Lm << 4: a wrapped level keeps only its low byte.
            sc[j] = (sc[j] | (l_m[j] << 4u)) & 0xFFu;
        }
    }
    if !weighted() && max_s > 0.0 {
        let is = div(15.0, max_s);
        for (var j = 0u; j < 16u; j = j + 1u) {
            sc[j] = bitcast<u32>(rne(is * s_sc[b + j])) & 0xFFu;
        }
        d = f32_to_f16(bitcast<u32>(div(max_s, 15.0)));
    }
    if !weighted() && max_o > 0.0 {
        let is = div(15.0, max_o);
        for (var j = 0u; j < 16u; j = j + 1u) {
            sc[j] = (sc[j] | (bitcast<u32>(rne(is * s_off[b + j])) << 4u)) & 0xFFu;
        }
        dmin = f32_to_f16(bitcast<u32>(div(max_o, 15.0)));
    }
    let h = sb * 20u;
    for (var j = 0u; j < 16u; j = j + 1u) {
        hdr[h + j] = sc[j];
    }
    hdr[h + 16u] = d & 0xFFu;
    hdr[h + 17u] = d >> 8u;
    hdr[h + 18u] = dmin & 0xFFu;
    hdr[h + 19u] = dmin >> 8u;
    let df = f16_to_f32(d);
    let dminf = f16_to_f32(dmin);
    for (var j = 0u; j < 16u; j = j + 1u) {
        s_dj[b + j] = df * f32(sc[j] & 15u);
        s_dm[b + j] = opaque(dminf * f32(sc[j] >> 4u));
    }
}

fn sub_requant(sb: u32, j: u32) {
    requant_affine(sb, j, 16u, 3);
}

// sc[16], qs[64], d, dmin.
fn block_byte(sb: u32, i: u32) -> u32 {
    if i < 16u {
        return hdr[sb * 20u + i];
    }
    if i < 80u {
        return plane2(sb, i - 16u);
    }
    return hdr[sb * 20u + i - 64u];
}
