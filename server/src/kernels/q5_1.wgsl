// Q5_1 (CPU twin: q5_1.rs): d = (max - min) / 31, stored with min; q = trunc((x - min)*id + 0.5),
// no clamp (as the reference). With an importance vector, legacy_weighted.wgsl's
// make_qkx3_quants(nmax 31). One invocation per pair of 24-byte blocks (pairs.wgsl).
fn quantize_block(block: u32, words: ptr<function, array<u32, 105>>, base: u32) {
    var dm: vec2<f32>;
    if weighted() {
        dm = weighted_affine(block, 31);
        if oops {
            flag_block(block);
            return;
        }
    } else {
        let x0 = block * 32u;
        let s = block_stats(x0, 32u);
        let sc = range_scale(s, 31.0);
        if needs_cpu(s) || !sc.ok {
            flag_block(block);
            return;
        }
        dm = vec2<f32>(sc.d, s.mn);
        for (var j = 0u; j < 32u; j = j + 1u) {
            lbest[j] = u32(trunc(opaque((bitcast<f32>(val(x0 + j)) - s.mn) * sc.id) + 0.5)) & 0xFFu;
        }
    }
    put_u16(words, base, f32_to_f16(bitcast<u32>(dm.x)));
    put_u16(words, base + 2u, f32_to_f16(bitcast<u32>(dm.y)));
    var qh = 0u;
    for (var j = 0u; j < 16u; j = j + 1u) {
        let lo = lbest[j];
        let hi = lbest[j + 16u];
        qh = qh | (((lo >> 4u) & 1u) << j) | (((hi >> 4u) & 1u) << (j + 16u));
        put_byte(words, base + 8u + j, (lo & 15u) | ((hi & 15u) << 4u));
    }
    put_u16(words, base + 4u, qh);
    put_u16(words, base + 6u, qh >> 16u);
}
