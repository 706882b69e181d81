// Q8_0 (CPU twin: q8_0.rs): d = amax / 127, q = roundf(x / d) with ties away from zero.
// The host runs one invocation per pair of 34-byte blocks (pairs.wgsl).
fn quantize_block(block: u32, words: ptr<function, array<u32, 105>>, base: u32) {
    let x0 = block * 32u;
    let s = block_stats(x0, 32u);
    if needs_cpu(s) {
        flag_block(block);
        return;
    }
    var sc = Scale(0.0, 0.0, true);
    if s.amax > 0.0 {
        sc = scale_of(s.amax, 127.0);
        if !sc.ok {
            flag_block(block);
            return;
        }
    }
    put_u16(words, base, f32_to_f16(bitcast<u32>(sc.d)));
    for (var i = 0u; i < 32u; i = i + 1u) {
        let v = opaque(bitcast<f32>(val(x0 + i)) * sc.id);
        // roundf: ties away from zero (v - t is exact).
        var t = trunc(v);
        if abs(v - t) >= 0.5 {
            t = t + sign(v);
        }
        put_byte(words, base + 2u + i, u32(i32(t)));
    }
}
