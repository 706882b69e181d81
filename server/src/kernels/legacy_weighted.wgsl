// The legacy formats' importance-weighted paths (CPU twins: weighted_blocks in q4_0.rs and
// q4_1.rs), with searches.wgsl: weights qw·sqrt(σ² + x²) with σ² the mean square of the whole
// row, which the host computes as the CPU does and appends to the importance vector
// (gpu/dispatch.rs); then make_qx_quants (Q4_0, Q5_0) or make_qkx3_quants (Q4_1, Q5_1) over the
// 32-value block. The block's levels go to `lbest`; `oops` says the block is the CPU's.

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

// Q4_0 and Q5_0: make_qx_quants(32, nmax, x, L, 1, weights); levels 0..2·nmax to lbest. Returns d.
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
