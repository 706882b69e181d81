// Q4_0 (CPU twin: q4_0.rs): one invocation per pair of 18-byte blocks (9 words).
// d = m / -8 with m the signed value of largest magnitude; q = min(15, trunc(x*id + 8.5)).
fn q4_0_block(block: u32, words: ptr<function, array<u32, 105>>, base: u32) {
    let x0 = block * 32u;
    var amax = 0.0;
    var m = 0.0;
    var awkward = false;
    for (var i = 0u; i < 32u; i = i + 1u) {
        let u = src[x0 + i];
        awkward = awkward || is_awkward(u);
        let a = bitcast<f32>(u & 0x7FFFFFFFu);
        if amax < a {
            amax = a;
            m = bitcast<f32>(u);
        }
    }
    if awkward || (amax > 0.0 && amax < 9.094947e-13) {
        flag_block(block);
        return;
    }
    // 0 / -8 is -0.0: the all-zero block stores d = 0x8000 and q = 8 (spec §2.11).
    var d = -0.0;
    var id = 0.0;
    if amax > 0.0 {
        let dq = div_pos(amax, 8.0);
        let iq = div_pos(1.0, dq.v);
        if !dq.ok || !iq.ok {
            flag_block(block);
            return;
        }
        // The sign of m / -8, and of its reciprocal.
        if m > 0.0 {
            d = -dq.v;
            id = -iq.v;
        } else {
            d = dq.v;
            id = iq.v;
        }
    }
    let h = f32_to_f16(bitcast<u32>(d));
    put_byte(words, base, h);
    put_byte(words, base + 1u, h >> 8u);
    for (var j = 0u; j < 16u; j = j + 1u) {
        let lo = min(15u, u32(trunc(opaque(bitcast<f32>(src[x0 + j]) * id) + 8.5)));
        let hi = min(15u, u32(trunc(opaque(bitcast<f32>(src[x0 + j + 16u]) * id) + 8.5)));
        put_byte(words, base + 2u + j, lo | (hi << 4u));
    }
}

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let pair = gid.x;
    if pair >= params.units {
        return;
    }
    var words: array<u32, 105>;
    q4_0_block(2u * pair, &words, 0u);
    q4_0_block(2u * pair + 1u, &words, 18u);
    for (var w = 0u; w < 9u; w = w + 1u) {
        dst[pair * 9u + w] = words[w];
    }
}
