// The scale search IQ4_NL and IQ4_XS share (CPU twin: iq4_nl.rs's block_scale, levels32):
// quantize_row_iq4_nl_impl with ntry = 7 over one 32-value block with weights x², as
// llama-quantize runs it without an imatrix. It tries 16 inverse scales, each sum in the
// reference's order (opaque keeps the products out of fused adds), and finds a level by
// counting the midpoints at or below the value, which is the reference's binary search. Every
// quotient is div_pos's, exact.
//
// Blocks whose products could leave the normal range go to the CPU: a largest magnitude outside
// [2^-10, 2^20], or a nonzero value below 2^-20. Within them every weight x², every product and
// every non-zero sum is a normal float, so a driver that flushes subnormals cannot differ; a
// candidate comparison's left side may go subnormal, but then its right side (at least 2^-66
// here) decides it either way.
//
// With an importance vector (exact.wgsl's weighted()), the weights are qw·sqrt(σ² + x²) with σ²
// twice the mean square of the impl's super-block (the block for IQ4_NL, 256 values for IQ4_XS),
// as quantize_row_iq4_nl_impl computes them. A block goes to the CPU also when an importance
// value fails weight_ok or a nonzero weight is below 2^-60: then, with |x| ≥ 2^-20 and levels of
// magnitude ≥ 1, every nonzero product is at least 2^-80 and every nonzero sum stays normal.

var<private> iq4_levels: array<f32, 16> = array<f32, 16>(
    -127.0, -104.0, -83.0, -65.0, -49.0, -35.0, -22.0, -10.0, 1.0, 13.0, 25.0, 38.0, 53.0, 69.0, 89.0, 113.0
);
// The midpoints between consecutive levels (iq4_nl.rs MIDS).
var<private> iq4_mids: array<f32, 15> = array<f32, 15>(
    -115.5, -93.5, -74.0, -57.0, -42.0, -28.5, -16.0, -4.5, 7.0, 19.0, 31.5, 45.5, 61.0, 79.0, 101.0
);
var<private> iq4_x: array<f32, 32>;
var<private> iq4_w: array<f32, 32>;
// Set when a block cannot be done exactly here: the caller sends it to the CPU.
var<private> iq4_oops: bool;

const IQ4_LOW: f32 = 0.0009765625;
const IQ4_HIGH: f32 = 1048576.0;
const IQ4_SMALL: f32 = 9.5367431640625e-7;
const IQ4_WEIGHT_LOW: f32 = 8.673617379884035e-19;

// best_index_int8(16, kvalues_iq4nl, v): the midpoints at or below v.
fn iq4_index(v: f32) -> u32 {
    var n = 0u;
    for (var i = 0u; i < 15u; i = i + 1u) {
        if v >= iq4_mids[i] {
            n = n + 1u;
        }
    }
    return n;
}

// a / b correctly rounded, for any signs (b nonzero); a zero numerator gives a signed zero.
fn iq4_div(a: f32, b: f32) -> f32 {
    let s = (bitcast<u32>(a) ^ bitcast<u32>(b)) & 0x80000000u;
    if (bitcast<u32>(a) & 0x7FFFFFFFu) == 0u {
        return bitcast<f32>(s);
    }
    let q = div_pos(abs(a), abs(b));
    if !q.ok {
        iq4_oops = true;
    }
    return bitcast<f32>(bitcast<u32>(q.v) | s);
}

// (Σ w·q·x, Σ w·q²) at inverse scale id, in index order.
fn iq4_sums(id: f32) -> vec2<f32> {
    var sqx = 0.0;
    var sq2 = 0.0;
    for (var j = 0u; j < 32u; j = j + 1u) {
        let x = iq4_x[j];
        let q = iq4_levels[iq4_index(id * x)];
        let wq = iq4_w[j] * q;
        sqx = sqx + opaque(wq * x);
        sq2 = sq2 + opaque(wq * q);
    }
    return vec2<f32>(sqx, sq2);
}

// σ² of the weighted impl over the n values from x0: Σx² in index order, times 2/n (n a power of
// two, so the product is exact).
fn iq4_sigma2(x0: u32, n: u32) -> f32 {
    var s = 0.0;
    for (var j = 0u; j < n; j = j + 1u) {
        let v = bitcast<f32>(val(x0 + j));
        s = s + opaque(v * v);
    }
    return s * (2.0 / f32(n));
}

// The weight of value v at x0 + j: x² without an importance vector, qw·sqrt(σ² + x²) with one.
fn iq4_weight(x0: u32, j: u32, v: f32, sigma2: f32) -> f32 {
    if !weighted() {
        return v * v;
    }
    let u = imp(x0 + j);
    let r = sqrt_exact(sigma2 + opaque(v * v));
    let w = bitcast<f32>(u) * r.v;
    if !weight_ok(u) || !r.ok || (w != 0.0 && abs(w) < IQ4_WEIGHT_LOW) {
        iq4_oops = true;
    }
    return w;
}

// The scale of the 32 values from x0: 0 for an all-zero block, else the best of the first
// candidate (-max / -127) and the 15 inverse scales (itry - 127) / max. `sigma2` is the weighted
// impl's (unused without an importance vector).
fn iq4_scale(x0: u32, sigma2: f32) -> f32 {
    let s = block_stats(x0, 32u);
    if needs_cpu(s) || (s.amax != 0.0 && (s.amax < IQ4_LOW || s.amax > IQ4_HIGH)) {
        iq4_oops = true;
        return 0.0;
    }
    if s.amax == 0.0 {
        return 0.0;
    }
    for (var j = 0u; j < 32u; j = j + 1u) {
        let v = bitcast<f32>(val(x0 + j));
        iq4_x[j] = v;
        iq4_w[j] = iq4_weight(x0, j, v, sigma2);
        if v != 0.0 && abs(v) < IQ4_SMALL {
            iq4_oops = true;
        }
    }
    let first = iq4_sums(iq4_div(1.0, iq4_div(s.m, 127.0)));
    var d = 0.0;
    if first.y > 0.0 {
        d = iq4_div(first.x, first.y);
    }
    var best = d * first.x;
    for (var itry = -7; itry <= 7; itry = itry + 1) {
        let t = iq4_sums(iq4_div(f32(itry - 127), s.m));
        if t.y > 0.0 && t.x * t.x > best * t.y {
            d = iq4_div(t.x, t.y);
            best = d * t.x;
        }
    }
    if is_awkward(bitcast<u32>(d)) {
        iq4_oops = true;
    }
    return d;
}

// The 16 nibble bytes of the 32 values from x0 at inverse scale id, from byte `at`: value j
// low, value j + 16 high.
fn iq4_pack(words: ptr<function, array<u32, 105>>, at: u32, x0: u32, id: f32) {
    for (var j = 0u; j < 16u; j = j + 1u) {
        let lo = iq4_index(id * bitcast<f32>(val(x0 + j)));
        let hi = iq4_index(id * bitcast<f32>(val(x0 + j + 16u)));
        put_byte(words, at + j, lo | (hi << 4u));
    }
}

// 1 / d, or 0 for a zero d.
fn iq4_inverse(d: f32) -> f32 {
    if d == 0.0 {
        return 0.0;
    }
    return iq4_div(1.0, d);
}
