// Q4_0 (CPU twin: q4_0.rs): d = m / -8 with m the signed value of largest magnitude;
// q = min(15, trunc(x*id + 8.5)). One invocation per pair of 18-byte blocks (pairs.wgsl).
fn quantize_block(block: u32, words: ptr<function, array<u32, 105>>, base: u32) {
    let x0 = block * 32u;
    let s = block_stats(x0, 32u);
    let sc = symmetric_scale(s, 8.0);
    if needs_cpu(s) || !sc.ok {
        flag_block(block);
        return;
    }
    put_u16(words, base, f32_to_f16(bitcast<u32>(sc.d)));
    for (var j = 0u; j < 16u; j = j + 1u) {
        let lo = min(15u, u32(trunc(opaque(bitcast<f32>(val(x0 + j)) * sc.id) + 8.5)));
        let hi = min(15u, u32(trunc(opaque(bitcast<f32>(val(x0 + j + 16u)) * sc.id) + 8.5)));
        put_byte(words, base + 2u + j, lo | (hi << 4u));
    }
}
