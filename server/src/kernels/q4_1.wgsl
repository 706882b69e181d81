// Q4_1 (CPU twin: q4_1.rs): legacy.wgsl's affine block with nmax 15 (levels clamped), then f16
// d and min and the nibbles. One invocation per pair of 20-byte blocks (pairs.wgsl).
fn quantize_block(block: u32, words: ptr<function, array<u32, 105>>, base: u32) {
    let dm = affine_block(block, 15, true);
    if oops {
        flag_block(block);
        return;
    }
    put_u16(words, base, f32_to_f16(bitcast<u32>(dm.x)));
    put_u16(words, base + 2u, f32_to_f16(bitcast<u32>(dm.y)));
    for (var j = 0u; j < 16u; j = j + 1u) {
        put_byte(words, base + 4u + j, lbest[j] | (lbest[j + 16u] << 4u));
    }
}
