// IQ4_XS (CPU twin: iq4_xs.rs): 256 values in 136 bytes, f16 d, the 6-bit sub-block scales
// (2 high bits each in a u16, 4 low bits each in 4 bytes) and 128 bytes of nibbles; each 32-value
// sub-block by iq4_search.wgsl's scale search (with importance weights too, σ² from the whole
// super-block), then the scales quantized against the largest.
// One invocation per pair of super-blocks (pairs.wgsl).
fn quantize_block(block: u32, words: ptr<function, array<u32, 105>>, base: u32) {
    iq4_oops = false;
    let x0 = block * 256u;
    var scales: array<f32, 8>;
    var max_scale = 0.0;
    var amax_scale = 0.0;
    var sigma2 = 0.0;
    if weighted() {
        sigma2 = iq4_sigma2(x0, 256u);
    }
    for (var ib = 0u; ib < 8u; ib = ib + 1u) {
        let d = iq4_scale(x0 + 32u * ib, sigma2);
        scales[ib] = d;
        if abs(d) > amax_scale {
            amax_scale = abs(d);
            max_scale = d;
        }
    }
    // d = -max_scale / 32, the sign flipped by its bit so that a zero gives -0 as on the CPU.
    let d = iq4_div(bitcast<f32>(bitcast<u32>(max_scale) ^ 0x80000000u), 32.0);
    let id = iq4_inverse(d);
    var ls: array<u32, 8>;
    var scales_h = 0u;
    for (var ib = 0u; ib < 8u; ib = ib + 1u) {
        let l = clamp(i32(round(id * scales[ib])), -32, 31);
        let idl = iq4_inverse(d * f32(l));
        iq4_pack(words, base + 8u + 16u * ib, x0 + 32u * ib, idl);
        ls[ib] = u32(l + 32);
        scales_h = scales_h | ((ls[ib] >> 4u) << (2u * ib));
    }
    if iq4_oops {
        flag_block(block);
        return;
    }
    put_u16(words, base, f32_to_f16(bitcast<u32>(d)));
    put_u16(words, base + 2u, scales_h);
    for (var k = 0u; k < 4u; k = k + 1u) {
        put_byte(words, base + 4u + k, (ls[2u * k] & 0xFu) | ((ls[2u * k + 1u] & 0xFu) << 4u));
    }
}
