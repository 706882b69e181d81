// The legacy formats' block searches (CPU twins: q4_0.rs, q4_1.rs, q5_0.rs, q5_1.rs), with
// searches.wgsl: each gives d (and the stored min) and leaves the block's levels in `lbest`;
// `oops` says the block is the CPU's. Without an importance vector, the reference's closed forms;
// with one, ggml's quantize_row_q{4,5}_{0,1}_impl: weights qw·sqrt(σ² + x²) with σ² the mean
// square of the whole row, which the host computes as the CPU does and appends to the importance
// vector (gpu/dispatch.rs), then make_qx_quants (Q4_0, Q5_0) or make_qkx3_quants (Q4_1, Q5_1).

// Q4_0 and Q5_0 (nmax 8, 16): d = m / -nmax with m the signed value of largest magnitude and
// q = min(2·nmax - 1, trunc(x·id + nmax + 0.5)), or the weighted search. Returns d.
fn symmetric_block(block: u32, nmax: i32) -> f32 {
    if weighted() {
        return weighted_symmetric(block, nmax);
    }
    let x0 = block * 32u;
    let s = block_stats(x0, 32u);
    let sc = symmetric_scale(s, f32(nmax));
    oops = needs_cpu(s) || !sc.ok;
    let top = u32(2 * nmax - 1);
    let bias = f32(nmax) + 0.5;
    for (var j = 0u; j < 32u; j = j + 1u) {
        lbest[j] = min(top, u32(trunc(opaque(bitcast<f32>(val(x0 + j)) * sc.id) + bias)));
    }
    return sc.d;
}

// Q4_1 and Q5_1 (nmax 15, 31): d = (max - min) / nmax, stored with min, and
// q = trunc((x - min)·id + 0.5), clamped to nmax where the reference clamps (Q4_1), or the
// weighted search. Returns (d, min).
fn affine_block(block: u32, nmax: i32, clamped: bool) -> vec2<f32> {
    if weighted() {
        return weighted_affine(block, nmax);
    }
    let x0 = block * 32u;
    let s = block_stats(x0, 32u);
    let sc = range_scale(s, f32(nmax));
    oops = needs_cpu(s) || !sc.ok;
    for (var j = 0u; j < 32u; j = j + 1u) {
        let q = u32(trunc(opaque((bitcast<f32>(val(x0 + j)) - s.mn) * sc.id) + 0.5));
        lbest[j] = select(q & 0xFFu, min(q, u32(nmax)), clamped);
    }
    return vec2<f32>(sc.d, s.mn);
}

// The σ² of the row that holds source value i: after the importance vector, one per row of the
// chunk, the dispatch's first row being params.row0.
fn row_sigma2(i: u32) -> f32 {
    return bitcast<f32>(wts[params.row + params.row0 + (params.first + i) / params.row]);
}

// The block's values into xs, their importance values into qs and weights into ws.
fn weighted_load(block: u32) {
    let x0 = block * 32u;
    oops = needs_cpu(block_stats(x0, 32u));
    let sigma2 = row_sigma2(x0);
    if is_awkward(bitcast<u32>(sigma2)) {
        oops = true;
    }
    for (var i = 0u; i < 32u; i = i + 1u) {
        xs[i] = bitcast<f32>(val(x0 + i));
        let u = imp(x0 + i);
        if !weight_ok(u) {
            oops = true;
        }
        qs[i] = bitcast<f32>(u);
    }
    importance_weights(sigma2, 32u);
}

// Q4_0 and Q5_0: make_qx_quants(32, nmax, x, L, 1, weights); levels (0 to 2·nmax - 1) to
// lbest. Returns d.
fn weighted_symmetric(block: u32, nmax: i32) -> f32 {
    weighted_load(block);
    let f = qx_fit(nmax, 32u);
    for (var i = 0u; i < 32u; i = i + 1u) {
        lbest[i] = qx_level(f.y, nmax, xs[i]);
    }
    return f.x;
}

// Q4_1 and Q5_1: make_qkx3_quants(32, nmax, x, weights, L, &the_min, -0.9, 0.05, 36); levels to
// lbest. Returns (d, m) with x ≈ d·L + m (m = -the_min, what the block stores).
fn weighted_affine(block: u32, nmax: i32) -> vec2<f32> {
    weighted_load(block);
    let r = qkx2(32u, nmax, -0.9, 0.05, 36, false);
    return vec2<f32>(r.x, -r.y);
}

// Q5_0 and Q5_1's 16 bytes of low nibbles (level j low, j + 16 high) from byte `at`; returns the
// fifth bits (bit j: level j, bit j + 16: level j + 16).
fn put_low_nibbles(words: ptr<function, array<u32, 105>>, at: u32) -> u32 {
    var qh = 0u;
    for (var j = 0u; j < 16u; j = j + 1u) {
        let lo = lbest[j];
        let hi = lbest[j + 16u];
        qh = qh | (((lo >> 4u) & 1u) << j) | (((hi >> 4u) & 1u) << (j + 16u));
        put_byte(words, at + j, (lo & 15u) | ((hi & 15u) << 4u));
    }
    return qh;
}
