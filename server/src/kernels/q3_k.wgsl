// Q3_K (CPU twin: q3_k.rs): 16 sub-blocks of 16, make_q3_quants(nmax 4), 6-bit signed scales,
// d = f16(1 / is). The kernel shape and the searches are kquants.wgsl's. With an importance
// vector (quantize_row_q3_K_impl): weights qw·sqrt(σ² + x²), make_qx_quants(nmax 4) per
// sub-block, then make_qx_quants(nmax 32) over the scales weighted by the sub-blocks' weights.
const SUBS: u32 = 16u;
const SUB: u32 = 16u;
const BB: u32 = 110u;

fn sub_search(sb: u32, j: u32) {
    if weighted() {
        s_sw[sb * 16u + j] = importance_weights(opaque(2.0 * super_sum_sq()) * 0.00390625, 16u);
        s_sc[sb * 16u + j] = qx(4, sb * 256u + j * 16u);
    } else {
        s_sc[sb * 16u + j] = q3s(4, sb * 256u + j * 16u);
    }
}

// The weighted scale levels (0..64, biased by 32) into sc; returns d's f16 bits. The search
// runs in xs/ws, which hold this invocation's sub-block for the requantization: kept aside.
fn weighted_scales(b: u32, sc: ptr<function, array<u32, 12>>) -> u32 {
    let keep_x = xs;
    let keep_w = ws;
    for (var j = 0u; j < 16u; j = j + 1u) {
        xs[j] = s_sc[b + j];
        ws[j] = s_sw[b + j];
    }
    let f = qx_fit(32, 16u);
    for (var j = 0u; j < 16u; j = j + 1u) {
        let v = qx_level(f.y, 32, xs[j]);
        if j < 8u {
            (*sc)[j] = v & 15u;
        } else {
            (*sc)[j - 8u] = (*sc)[j - 8u] | ((v & 15u) << 4u);
        }
        (*sc)[j % 4u + 8u] = (*sc)[j % 4u + 8u] | ((v >> 4u) << (2u * (j / 4u)));
    }
    xs = keep_x;
    ws = keep_w;
    return f32_to_f16(bitcast<u32>(f.x));
}

// sc[12] (header 0..12) and d (header 12..14).
fn super_step(sb: u32) {
    let b = sb * 16u;
    var max_s = 0.0;
    var amax = 0.0;
    for (var j = 0u; j < 16u; j = j + 1u) {
        let a = abs(s_sc[b + j]);
        if a > amax {
            amax = a;
            max_s = s_sc[b + j];
        }
    }
    var sc: array<u32, 12>;
    var d = 0u;
    if weighted() {
        d = weighted_scales(b, &sc);
    } else if max_s != 0.0 {
        let is = div(-32.0, max_s);
        for (var j = 0u; j < 16u; j = j + 1u) {
            // int8_t l = nearest_int(...): the wrap comes before the clamp.
            let v = u32(clamp(wrap_i8(rne(is * s_sc[b + j])), -32, 31) + 32);
            if j < 8u {
                sc[j] = v & 15u;
            } else {
                sc[j - 8u] = sc[j - 8u] | ((v & 15u) << 4u);
            }
            sc[j % 4u + 8u] = sc[j % 4u + 8u] | ((v >> 4u) << (2u * (j / 4u)));
        }
        d = f32_to_f16(bitcast<u32>(div(1.0, is)));
    }
    let h = sb * 20u;
    for (var k = 0u; k < 12u; k = k + 1u) {
        hdr[h + k] = sc[k];
    }
    hdr[h + 12u] = d & 0xFFu;
    hdr[h + 13u] = d >> 8u;
    let df = f16_to_f32(d);
    for (var j = 0u; j < 16u; j = j + 1u) {
        var low = sc[j] & 15u;
        if j >= 8u {
            low = sc[j - 8u] >> 4u;
        }
        let v = i32(low | (((sc[8u + j % 4u] >> (2u * (j / 4u))) & 3u) << 4u)) - 32;
        s_dj[b + j] = df * f32(v);
    }
}

fn sub_requant(sb: u32, j: u32) {
    requant_symmetric(sb, j, 4);
}

// hmask[32] (byte k, bit b: element k + 32b > 3), qs[64] of the low two bits, sc[12], d.
fn block_byte(sb: u32, i: u32) -> u32 {
    if i < 32u {
        var v = 0u;
        for (var b = 0u; b < 8u; b = b + 1u) {
            v = v | (select(0u, 1u, lq[sb * 256u + i + 32u * b] > 3u) << b);
        }
        return v;
    }
    if i < 96u {
        return plane2(sb, i - 32u);
    }
    return hdr[sb * 20u + i - 96u];
}
