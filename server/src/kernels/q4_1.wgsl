// Q4_1 (CPU twin: q4_1.rs): d = (max - min) / 15, stored with min;
// q = min(15, trunc((x - min)*id + 0.5)). One invocation per pair of 20-byte blocks (pairs.wgsl).
fn quantize_block(block: u32, words: ptr<function, array<u32, 105>>, base: u32) {
    let x0 = block * 32u;
    let s = block_stats(x0, 32u);
    let sc = range_scale(s, 15.0);
    if needs_cpu(s) || !sc.ok {
        flag_block(block);
        return;
    }
    put_u16(words, base, f32_to_f16(bitcast<u32>(sc.d)));
    put_u16(words, base + 2u, f32_to_f16(bitcast<u32>(s.mn)));
    for (var j = 0u; j < 16u; j = j + 1u) {
        let lo = min(15u, u32(trunc(opaque((bitcast<f32>(val(x0 + j)) - s.mn) * sc.id) + 0.5)));
        let hi = min(15u, u32(trunc(opaque((bitcast<f32>(val(x0 + j + 16u)) - s.mn) * sc.id) + 0.5)));
        put_byte(words, base + 4u + j, lo | (hi << 4u));
    }
}
