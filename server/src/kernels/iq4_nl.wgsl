// IQ4_NL (CPU twin: iq4_nl.rs): one 32-value block in 18 bytes, f16 d and 16 bytes of nibbles,
// by iq4_search.wgsl's scale search, with or without importance weights. One invocation per pair
// of blocks (pairs.wgsl).
fn quantize_block(block: u32, words: ptr<function, array<u32, 105>>, base: u32) {
    iq4_oops = false;
    var sigma2 = 0.0;
    if weighted() {
        sigma2 = iq4_sigma2(block * 32u, 32u);
    }
    let d = iq4_scale(block * 32u, sigma2);
    let id = iq4_inverse(d);
    if iq4_oops {
        flag_block(block);
        return;
    }
    put_u16(words, base, f32_to_f16(bitcast<u32>(d)));
    iq4_pack(words, base + 2u, block * 32u, id);
}
