// Q5_0 (CPU twin: q5_0.rs): as Q4_0 with d = m / -16 and q = min(31, trunc(x*id + 16.5)); the
// fifth bits go to a u32 after d. With an importance vector, legacy_weighted.wgsl's
// make_qx_quants(nmax 16). One invocation per pair of 22-byte blocks (pairs.wgsl).
fn quantize_block(block: u32, words: ptr<function, array<u32, 105>>, base: u32) {
    var d: f32;
    if weighted() {
        d = weighted_symmetric(block, 16);
        if oops {
            flag_block(block);
            return;
        }
    } else {
        let x0 = block * 32u;
        let s = block_stats(x0, 32u);
        let sc = symmetric_scale(s, 16.0);
        if needs_cpu(s) || !sc.ok {
            flag_block(block);
            return;
        }
        d = sc.d;
        for (var j = 0u; j < 32u; j = j + 1u) {
            lbest[j] = min(31u, u32(trunc(opaque(bitcast<f32>(val(x0 + j)) * sc.id) + 16.5)));
        }
    }
    put_u16(words, base, f32_to_f16(bitcast<u32>(d)));
    var qh = 0u;
    for (var j = 0u; j < 16u; j = j + 1u) {
        let lo = lbest[j];
        let hi = lbest[j + 16u];
        qh = qh | ((lo >> 4u) << j) | ((hi >> 4u) << (j + 16u));
        put_byte(words, base + 6u + j, (lo & 15u) | ((hi & 15u) << 4u));
    }
    put_u16(words, base + 2u, qh);
    put_u16(words, base + 4u, qh >> 16u);
}
