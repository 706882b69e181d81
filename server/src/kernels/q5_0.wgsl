// Q5_0 (CPU twin: q5_0.rs): legacy.wgsl's symmetric block with nmax 16, then f16 d, the fifth
// bits as a u32 and the low nibbles. One invocation per pair of 22-byte blocks (pairs.wgsl).
fn quantize_block(block: u32, words: ptr<function, array<u32, 105>>, base: u32) {
    let d = symmetric_block(block, 16);
    if oops {
        flag_block(block);
        return;
    }
    put_u16(words, base, f32_to_f16(bitcast<u32>(d)));
    let qh = put_low_nibbles(words, base + 6u);
    put_u16(words, base + 2u, qh);
    put_u16(words, base + 4u, qh >> 16u);
}
