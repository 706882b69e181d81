// Q6_K (CPU twin: q6_k.rs): 16 sub-blocks of 16, make_qx_quants(nmax 32), i8 scales,
// d = f16(1 / is). The kernel shape and the searches are kquants.wgsl's. With an importance
// vector the search weighs by the importance values themselves (quantize_row_q6_K_impl).
const SUBS: u32 = 16u;
const SUB: u32 = 16u;
const BB: u32 = 210u;

fn sub_search(sb: u32, j: u32) {
    for (var i = 0u; i < 16u; i = i + 1u) {
        ws[i] = select(xs[i] * xs[i], qs[i], weighted());
    }
    s_sc[sb * 16u + j] = qx(32, sb * 256u + j * 16u);
}

// sc[16] (header 0..16), d (16..18), and header 18 = 1 when the block is all zero bytes.
fn super_step(sb: u32) {
    let b = sb * 16u;
    let h = sb * 20u;
    var max_s = 0.0;
    var amax = 0.0;
    for (var j = 0u; j < 16u; j = j + 1u) {
        let a = abs(s_sc[b + j]);
        if a > amax {
            amax = a;
            max_s = s_sc[b + j];
        }
    }
    if amax < EPS {
        hdr[h + 18u] = 1u;
        for (var j = 0u; j < 16u; j = j + 1u) {
            s_dj[b + j] = 0.0;
        }
        return;
    }
    hdr[h + 18u] = 0u;
    let is = div(-128.0, max_s);
    let d = f32_to_f16(bitcast<u32>(div(1.0, is)));
    hdr[h + 16u] = d & 0xFFu;
    hdr[h + 17u] = d >> 8u;
    let df = f16_to_f32(d);
    for (var j = 0u; j < 16u; j = j + 1u) {
        let s = min(127, rne(is * s_sc[b + j]));
        hdr[h + j] = bitcast<u32>(s) & 0xFFu;
        s_dj[b + j] = df * f32(wrap_i8(s));
    }
}

fn sub_requant(sb: u32, j: u32) {
    requant_symmetric(sb, j, 32);
}

// ql[128], qh[64], sc[16], d; element e = 128h + 32k + l has 6-bit value q_k.
fn block_byte(sb: u32, i: u32) -> u32 {
    if hdr[sb * 20u + 18u] == 1u {
        return 0u;
    }
    if i < 128u {
        let h = i / 64u;
        let r = i % 64u;
        // ql[64h + l] = q0 | q2 << 4; ql[64h + 32 + l] = q1 | q3 << 4.
        let e = sb * 256u + 128u * h + 32u * (r / 32u) + r % 32u;
        return (lq[e] & 15u) | ((lq[e + 64u] & 15u) << 4u);
    }
    if i < 192u {
        let k = i - 128u;
        let e = sb * 256u + 128u * (k / 32u) + k % 32u;
        return (lq[e] >> 4u) | ((lq[e + 32u] >> 4u) << 2u) | ((lq[e + 64u] >> 4u) << 4u) | ((lq[e + 96u] >> 4u) << 6u);
    }
    return hdr[sb * 20u + i - 192u];
}
