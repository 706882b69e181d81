// Q8_0 (CPU twin: q8_0.rs): one invocation per pair of 34-byte blocks (17 words). Blocks with
// non-finite, subnormal or tiny input, or a quotient the exact divider cannot represent, are
// flagged for the CPU.
fn q8_0_block(block: u32, words: ptr<function, array<u32, 105>>, base: u32) {
    let x0 = block * 32u;
    var amax = 0.0;
    var awkward = false;
    for (var i = 0u; i < 32u; i = i + 1u) {
        let u = src[x0 + i];
        awkward = awkward || is_awkward(u);
        let a = bitcast<f32>(u & 0x7FFFFFFFu);
        if a > amax {
            amax = a;
        }
    }
    if awkward || (amax > 0.0 && amax < 9.094947e-13) {
        flag_block(block);
        return;
    }
    var d = 0.0;
    var id = 0.0;
    if amax > 0.0 {
        let dq = div_pos(amax, 127.0);
        let iq = div_pos(1.0, dq.v);
        if !dq.ok || !iq.ok {
            flag_block(block);
            return;
        }
        d = dq.v;
        id = iq.v;
    }
    let h = f32_to_f16(bitcast<u32>(d));
    put_byte(words, base, h);
    put_byte(words, base + 1u, h >> 8u);
    for (var i = 0u; i < 32u; i = i + 1u) {
        let v = opaque(bitcast<f32>(src[x0 + i]) * id);
        // roundf: ties away from zero (v - t is exact).
        var t = trunc(v);
        if abs(v - t) >= 0.5 {
            t = t + sign(v);
        }
        put_byte(words, base + 2u + i, u32(i32(t)));
    }
}

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let pair = gid.x;
    if pair >= params.units {
        return;
    }
    var words: array<u32, 105>;
    q8_0_block(2u * pair, &words, 0u);
    q8_0_block(2u * pair + 1u, &words, 34u);
    for (var w = 0u; w < 17u; w = w + 1u) {
        dst[pair * 17u + w] = words[w];
    }
}
