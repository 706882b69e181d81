// Q4_0 (CPU twin: q4_0.rs): d = m / -8 with m the signed value of largest magnitude;
// q = min(15, trunc(x*id + 8.5)). One invocation per pair of 18-byte blocks (gpu/mod.rs).
fn quantize_block(block: u32, words: ptr<function, array<u32, 105>>, base: u32) {
    let x0 = block * 32u;
    let s = block_stats(x0, 32u);
    if needs_cpu(s) {
        flag_block(block);
        return;
    }
    // 0 / -8 is -0.0: the all-zero block stores d = 0x8000 and q = 8 (spec §2.11).
    var d = -0.0;
    var id = 0.0;
    if s.amax > 0.0 {
        let sc = scale_of(s.amax, 8.0);
        if !sc.ok {
            flag_block(block);
            return;
        }
        // The sign of m / -8, and of its reciprocal.
        d = select(sc.d, -sc.d, s.m > 0.0);
        id = select(sc.id, -sc.id, s.m > 0.0);
    }
    put_u16(words, base, f32_to_f16(bitcast<u32>(d)));
    for (var j = 0u; j < 16u; j = j + 1u) {
        let lo = min(15u, u32(trunc(opaque(bitcast<f32>(val(x0 + j)) * id) + 8.5)));
        let hi = min(15u, u32(trunc(opaque(bitcast<f32>(val(x0 + j + 16u)) * id) + 8.5)));
        put_byte(words, base + 2u + j, lo | (hi << 4u));
    }
}
