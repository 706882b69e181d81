// Q5_0 (CPU twin: q5_0.rs): as Q4_0 with d = m / -16 and q = min(31, trunc(x*id + 16.5)); the
// fifth bits go to a u32 after d. One invocation per pair of 22-byte blocks (gpu/mod.rs).
fn quantize_block(block: u32, words: ptr<function, array<u32, 105>>, base: u32) {
    let x0 = block * 32u;
    let s = block_stats(x0, 32u);
    if needs_cpu(s) {
        flag_block(block);
        return;
    }
    // 0 / -16 is -0.0: the all-zero block stores d = 0x8000 and q = 16 (spec §2.11).
    var d = -0.0;
    var id = 0.0;
    if s.amax > 0.0 {
        let sc = scale_of(s.amax, 16.0);
        if !sc.ok {
            flag_block(block);
            return;
        }
        d = select(sc.d, -sc.d, s.m > 0.0);
        id = select(sc.id, -sc.id, s.m > 0.0);
    }
    put_u16(words, base, f32_to_f16(bitcast<u32>(d)));
    var qh = 0u;
    for (var j = 0u; j < 16u; j = j + 1u) {
        let lo = min(31u, u32(trunc(opaque(bitcast<f32>(val(x0 + j)) * id) + 16.5)));
        let hi = min(31u, u32(trunc(opaque(bitcast<f32>(val(x0 + j + 16u)) * id) + 16.5)));
        qh = qh | ((lo >> 4u) << j) | ((hi >> 4u) << (j + 16u));
        put_byte(words, base + 6u + j, (lo & 15u) | ((hi & 15u) << 4u));
    }
    put_u16(words, base + 2u, qh);
    put_u16(words, base + 4u, qh >> 16u);
}
