// Q4_0 (CPU twin: q4_0.rs): legacy.wgsl's symmetric block with nmax 8, then f16 d and the
// nibbles. One invocation per pair of 18-byte blocks (pairs.wgsl).
fn quantize_block(block: u32, words: ptr<function, array<u32, 105>>, base: u32) {
    let d = symmetric_block(block, 8);
    if oops {
        flag_block(block);
        return;
    }
    put_u16(words, base, f32_to_f16(bitcast<u32>(d)));
    for (var j = 0u; j < 16u; j = j + 1u) {
        put_byte(words, base + 2u + j, lbest[j] | (lbest[j + 16u] << 4u));
    }
}
