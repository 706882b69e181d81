// Q4_1 (CPU twin: q4_1.rs): d = (max - min) / 15, stored with min;
// q = min(15, trunc((x - min)*id + 0.5)). With an importance vector, legacy_weighted.wgsl's
// make_qkx3_quants(nmax 15). One invocation per pair of 20-byte blocks (pairs.wgsl).
fn quantize_block(block: u32, words: ptr<function, array<u32, 105>>, base: u32) {
    var dm: vec2<f32>;
    if weighted() {
        dm = weighted_affine(block, 15);
        if oops {
            flag_block(block);
            return;
        }
    } else {
        let x0 = block * 32u;
        let s = block_stats(x0, 32u);
        let sc = range_scale(s, 15.0);
        if needs_cpu(s) || !sc.ok {
            flag_block(block);
            return;
        }
        dm = vec2<f32>(sc.d, s.mn);
        for (var j = 0u; j < 32u; j = j + 1u) {
            lbest[j] = min(15u, u32(trunc(opaque((bitcast<f32>(val(x0 + j)) - s.mn) * sc.id) + 0.5)));
        }
    }
    put_u16(words, base, f32_to_f16(bitcast<u32>(dm.x)));
    put_u16(words, base + 2u, f32_to_f16(bitcast<u32>(dm.y)));
    for (var j = 0u; j < 16u; j = j + 1u) {
        put_byte(words, base + 4u + j, lbest[j] | (lbest[j + 16u] << 4u));
    }
}
