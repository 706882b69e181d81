// Q5_1 (CPU twin: q5_1.rs): d = (max - min) / 31, stored with min; q = trunc((x - min)*id + 0.5),
// no clamp (as the reference). One invocation per pair of 24-byte blocks (pairs.wgsl).
fn quantize_block(block: u32, words: ptr<function, array<u32, 105>>, base: u32) {
    let x0 = block * 32u;
    let s = block_stats(x0, 32u);
    let sc = range_scale(s, 31.0);
    if needs_cpu(s) || !sc.ok {
        flag_block(block);
        return;
    }
    put_u16(words, base, f32_to_f16(bitcast<u32>(sc.d)));
    put_u16(words, base + 2u, f32_to_f16(bitcast<u32>(s.mn)));
    var qh = 0u;
    for (var j = 0u; j < 16u; j = j + 1u) {
        let lo = u32(trunc(opaque((bitcast<f32>(val(x0 + j)) - s.mn) * sc.id) + 0.5)) & 0xFFu;
        let hi = u32(trunc(opaque((bitcast<f32>(val(x0 + j + 16u)) - s.mn) * sc.id) + 0.5)) & 0xFFu;
        qh = qh | (((lo >> 4u) & 1u) << j) | (((hi >> 4u) & 1u) << (j + 16u));
        put_byte(words, base + 8u + j, (lo & 15u) | ((hi & 15u) << 4u));
    }
    put_u16(words, base + 4u, qh);
    put_u16(words, base + 6u, qh >> 16u);
}
