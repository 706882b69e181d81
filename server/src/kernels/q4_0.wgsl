// Q4_0 (CPU twin: q4_0.rs): d = m / -8 with m the signed value of largest magnitude;
// q = min(15, trunc(x*id + 8.5)). With an importance vector, legacy_weighted.wgsl's
// make_qx_quants(nmax 8). One invocation per pair of 18-byte blocks (pairs.wgsl).
fn quantize_block(block: u32, words: ptr<function, array<u32, 105>>, base: u32) {
    var d: f32;
    if weighted() {
        d = weighted_symmetric(block, 8);
        if oops {
            flag_block(block);
            return;
        }
    } else {
        let x0 = block * 32u;
        let s = block_stats(x0, 32u);
        let sc = symmetric_scale(s, 8.0);
        if needs_cpu(s) || !sc.ok {
            flag_block(block);
            return;
        }
        d = sc.d;
        for (var j = 0u; j < 32u; j = j + 1u) {
            lbest[j] = min(15u, u32(trunc(opaque(bitcast<f32>(val(x0 + j)) * sc.id) + 8.5)));
        }
    }
    put_u16(words, base, f32_to_f16(bitcast<u32>(d)));
    for (var j = 0u; j < 16u; j = j + 1u) {
        put_byte(words, base + 2u + j, lbest[j] | (lbest[j + 16u] << 4u));
    }
}
