// Q5_1 (CPU twin: q5_1.rs): legacy.wgsl's affine block with nmax 31 (no clamp, as the
// reference), then f16 d and min, the fifth bits as a u32 and the low nibbles. One invocation
// per pair of 24-byte blocks (pairs.wgsl).
fn quantize_block(block: u32, words: ptr<function, array<u32, 105>>, base: u32) {
    let dm = affine_block(block, 31, false);
    if oops {
        flag_block(block);
        return;
    }
    put_u16(words, base, f32_to_f16(bitcast<u32>(dm.x)));
    put_u16(words, base + 2u, f32_to_f16(bitcast<u32>(dm.y)));
    let qh = put_low_nibbles(words, base + 8u);
    put_u16(words, base + 4u, qh);
    put_u16(words, base + 6u, qh >> 16u);
}
