// The searches of shared/spec/quantization.md §2.5, transcribed from ggml.rs operation by
// operation, shared by the K-quant kernels (kquants.wgsl) and the legacy formats' weighted paths:
// make_qkx2_quants (which is also make_qkx3_quants), make_qx_quants with x² or importance
// weights, make_qp_quants, and their exact helpers. They work on this invocation's values (xs),
// weights (ws) and importance values (qs); anything they cannot do exactly sets `oops`, and the
// host redoes that block on the CPU.
//
// Exactness: every product that meets an add goes through opaque(); every quotient is exact
// (div), except rne(a / b), which takes the hardware quotient only when it is far from a
// rounding tie (rne_div); sqrt is exact (sqrt_exact).

const EPS: f32 = 1e-15;

var<private> oops: bool;
var<private> xs: array<f32, 32>;
var<private> ws: array<f32, 32>;
// The importance values of xs (weighted dispatches).
var<private> qs: array<f32, 32>;
// qkx2's candidate quants and its best ones.
var<private> la: array<u32, 32>;
var<private> lbest: array<u32, 32>;
// make_qp_quants' values, weights and levels (the weighted super-block steps).
var<private> qp_x: array<f32, 16>;
var<private> qp_w: array<f32, 16>;
var<private> qp_l: array<u32, 16>;

// ggml's nearest_int (ties to even), valid where the magic-number trick is.
fn rne(v: f32) -> i32 {
    if !(abs(v) <= 4194303.0) {
        oops = true;
        return 0;
    }
    return i32(round(v));
}

// The correctly rounded quotient for any signs (b != 0).
fn div(a: f32, b: f32) -> f32 {
    let ua = bitcast<u32>(a);
    let ub = bitcast<u32>(b);
    let s = (ua ^ ub) & 0x80000000u;
    if (ua & 0x7FFFFFFFu) == 0u {
        if (ub & 0x7FFFFFFFu) == 0u {
            oops = true;
        }
        return bitcast<f32>(s);
    }
    let q = div_pos(bitcast<f32>(ua & 0x7FFFFFFFu), bitcast<f32>(ub & 0x7FFFFFFFu));
    if !q.ok {
        oops = true;
    }
    return bitcast<f32>(bitcast<u32>(q.v) | s);
}

// rne(a / b): the hardware quotient (2.5 ULP in WGSL) decides when it is at least 1/1000 away
// from a tie, which is 30 ULP and more below 256; otherwise the exact quotient does.
fn rne_div(a: f32, b: f32) -> i32 {
    let q0 = a / b;
    if abs(q0) < 256.0 {
        let f = q0 - floor(q0);
        if abs(f - 0.5) > 0.001 {
            return i32(round(q0));
        }
    }
    return rne(div(a, b));
}

// exact.wgsl's sqrt_exact; an input it cannot take is the CPU's.
fn sqrt_k(v: f32) -> f32 {
    let r = sqrt_exact(v);
    if !r.ok {
        oops = true;
    }
    return r.v;
}

// i32 → its low byte read as i8.
fn wrap_i8(v: i32) -> i32 {
    return (v << 24u) >> 24u;
}

// The weighted paths' weights qw·sqrt(σ² + x²) into ws[0..n] from xs and qs; returns their sum
// in order (a K-quant sub-block's weight in its super-block step).
fn importance_weights(sigma2: f32, n: u32) -> f32 {
    var sw = 0.0;
    for (var i = 0u; i < n; i = i + 1u) {
        // Opaque: the product meets the sum below (and qkx2's sum of the weights).
        ws[i] = opaque(qs[i] * sqrt_k(sigma2 + opaque(xs[i] * xs[i])));
        sw = sw + ws[i];
    }
    return sw;
}

// make_qkx2_quants over xs/ws[0..n] (§2.5.3); the best quants go to lbest. Returns
// (scale, offset). With rmin -0.9, rdelta 0.05 and 36 steps it is also make_qkx3_quants, the
// weighted paths' search (ggml.rs: the same steps for any input).
fn qkx2(n: u32, nmax: i32, rmin: f32, rdelta: f32, nstep: i32, mad: bool) -> vec2<f32> {
    var mn = xs[0];
    var mx = xs[0];
    var sw = ws[0];
    var sx = opaque(sw * xs[0]);
    for (var i = 1u; i < n; i = i + 1u) {
        if xs[i] < mn {
            mn = xs[i];
        }
        if xs[i] > mx {
            mx = xs[i];
        }
        sw = sw + ws[i];
        sx = sx + opaque(ws[i] * xs[i]);
    }
    if mn > 0.0 {
        mn = 0.0;
    }
    if mx == mn {
        for (var i = 0u; i < n; i = i + 1u) {
            lbest[i] = 0u;
        }
        return vec2<f32>(0.0, -mn);
    }
    let nmaxf = f32(nmax);
    var iscale = div(nmaxf, mx - mn);
    var scale = div(1.0, iscale);
    var best = 0.0;
    for (var i = 0u; i < n; i = i + 1u) {
        let q = clamp(rne(iscale * (xs[i] - mn)), 0, nmax);
        lbest[i] = u32(q);
        let diff = (opaque(scale * f32(q)) + mn) - xs[i];
        var e = diff * diff;
        if mad {
            e = abs(diff);
        }
        best = best + opaque(ws[i] * e);
    }
    for (var k = 0; k <= nstep; k = k + 1) {
        // mn is the best offset so far, as in ggml (it moves when a candidate wins). The inner sum
        // is opaque too: a compiler folding the constants rmin and nmax into one (the inner sum
        // plus 2.1, say, for -0.9 and 3) rounds differently; lavapipe does.
        iscale = div(opaque(rmin + opaque(rdelta * f32(k))) + nmaxf, mx - mn);
        var sl = 0.0;
        var sl2 = 0.0;
        var sxl = 0.0;
        for (var i = 0u; i < n; i = i + 1u) {
            let q = clamp(rne(iscale * (xs[i] - mn)), 0, nmax);
            la[i] = u32(q);
            let w = ws[i];
            let qf = f32(q);
            sl = sl + opaque(w * qf);
            sl2 = sl2 + opaque((w * qf) * qf);
            sxl = sxl + opaque((w * qf) * xs[i]);
        }
        let d = opaque(sw * sl2) - opaque(sl * sl);
        if d > 0.0 {
            var ts = div(opaque(sw * sxl) - opaque(sx * sl), d);
            var tm = div(opaque(sl2 * sx) - opaque(sl * sxl), d);
            if tm > 0.0 {
                tm = 0.0;
                ts = div(sxl, sl2);
            }
            var cur = 0.0;
            for (var i = 0u; i < n; i = i + 1u) {
                let diff = (opaque(ts * f32(la[i])) + tm) - xs[i];
                var e = diff * diff;
                if mad {
                    e = abs(diff);
                }
                cur = cur + opaque(ws[i] * e);
            }
            if cur < best {
                for (var i = 0u; i < n; i = i + 1u) {
                    lbest[i] = la[i];
                }
                best = cur;
                scale = ts;
                mn = tm;
            }
        }
    }
    return vec2<f32>(scale, -mn);
}

// argabsmax over xs[0..n]: (signed value, magnitude), ties keep the first.
fn argabsmax(n: u32) -> vec2<f32> {
    var m = 0.0;
    var amax = 0.0;
    for (var i = 0u; i < n; i = i + 1u) {
        let a = abs(xs[i]);
        if a > amax {
            amax = a;
            m = xs[i];
        }
    }
    return vec2<f32>(m, amax);
}

// One pass of make_qx_quants at inverse scale `is` with weights ws: (sumlx, suml2).
fn qx_pass(is: f32, nmax: i32, n: u32) -> vec2<f32> {
    var sumlx = 0.0;
    var suml2 = 0.0;
    for (var i = 0u; i < n; i = i + 1u) {
        let q = f32(clamp(rne(is * xs[i]), -nmax, nmax - 1));
        let w = ws[i];
        sumlx = sumlx + opaque((w * xs[i]) * q);
        suml2 = suml2 + opaque((w * q) * q);
    }
    return vec2<f32>(sumlx, suml2);
}

// The level of x at inverse scale `is`, biased to 0..2·nmax; 0 for an all-zero fit (is = 0).
fn qx_level(is: f32, nmax: i32, x: f32) -> u32 {
    if is == 0.0 {
        return 0u;
    }
    return u32(clamp(rne(is * x), -nmax, nmax - 1) + nmax);
}

// make_qx_quants(n, nmax, xs, rmse_type 1, ws) (§2.5.1) up to its levels: (scale, the best
// inverse scale), (0, 0) when the values are all below EPS. ws is x² without an importance
// vector (rmse_type 1), the weights with one.
fn qx_fit(nmax: i32, n: u32) -> vec2<f32> {
    let ma = argabsmax(n);
    if ma.y < EPS {
        return vec2<f32>(0.0, 0.0);
    }
    let nmaxf = f32(nmax);
    var is = div(-nmaxf, ma.x);
    var best_is = is;
    var p = qx_pass(is, nmax, n);
    var scale = 0.0;
    if p.y != 0.0 {
        scale = div(p.x, p.y);
    }
    var best = scale * p.x;
    for (var k = -9; k <= 9; k = k + 1) {
        if k == 0 {
            continue;
        }
        is = div(-(nmaxf + opaque(0.1 * f32(k))), ma.x);
        p = qx_pass(is, nmax, n);
        if p.y > 0.0 && p.x * p.x > best * p.y {
            best_is = is;
            scale = div(p.x, p.y);
            best = scale * p.x;
        }
    }
    return vec2<f32>(scale, best_is);
}

// make_qp_quants(n, nmax, qp_x, L, qp_w) (ggml.rs): levels (C's uint8_t, wrapped) to qp_l;
// returns the scale.
fn qp(n: u32, nmax: i32) -> f32 {
    var mx = 0.0;
    for (var i = 0u; i < n; i = i + 1u) {
        // MAX(max, x[i])
        mx = select(qp_x[i], mx, mx > qp_x[i]);
    }
    if mx < EPS {
        for (var i = 0u; i < n; i = i + 1u) {
            qp_l[i] = 0u;
        }
        return 0.0;
    }
    let nmaxf = f32(nmax);
    var iscale = div(nmaxf, mx);
    for (var i = 0u; i < n; i = i + 1u) {
        qp_l[i] = bitcast<u32>(rne(iscale * qp_x[i])) & 0xFFu;
    }
    let scale = div(1.0, iscale);
    var best = 0.0;
    for (var i = 0u; i < n; i = i + 1u) {
        let diff = qp_x[i] - opaque(scale * f32(qp_l[i]));
        best = best + opaque((qp_w[i] * diff) * diff);
    }
    for (var k = -4; k <= 4; k = k + 1) {
        if k == 0 {
            continue;
        }
        let is = div(opaque(0.1 * f32(k)) + nmaxf, mx);
        let sc = div(1.0, is);
        var mse = 0.0;
        for (var i = 0u; i < n; i = i + 1u) {
            let q = min(nmax, rne(is * qp_x[i]));
            let diff = qp_x[i] - opaque(sc * f32(q));
            mse = mse + opaque((qp_w[i] * diff) * diff);
        }
        if mse < best {
            best = mse;
            iscale = is;
        }
    }
    var sumlx = 0.0;
    var suml2 = 0.0;
    for (var i = 0u; i < n; i = i + 1u) {
        let q = min(nmax, rne(iscale * qp_x[i]));
        qp_l[i] = bitcast<u32>(q) & 0xFFu;
        let w = qp_w[i];
        let qf = f32(q);
        sumlx = sumlx + opaque((w * qp_x[i]) * qf);
        suml2 = suml2 + opaque((w * qf) * qf);
    }
    for (var it = 0; it < 5; it = it + 1) {
        var changed = 0;
        for (var i = 0u; i < n; i = i + 1u) {
            let w = qp_w[i];
            let li = f32(qp_l[i]);
            var slx = sumlx - opaque((w * qp_x[i]) * li);
            var sl2 = suml2 - opaque((w * li) * li);
            if slx > 0.0 && sl2 > 0.0 {
                let nl = min(nmax, rne_div(qp_x[i] * sl2, slx));
                if nl != i32(qp_l[i]) {
                    let nf = f32(nl);
                    slx = slx + opaque((w * qp_x[i]) * nf);
                    sl2 = sl2 + opaque((w * nf) * nf);
                    if (slx * slx) * suml2 > (sumlx * sumlx) * sl2 {
                        qp_l[i] = bitcast<u32>(nl) & 0xFFu;
                        sumlx = slx;
                        suml2 = sl2;
                        changed = changed + 1;
                    }
                }
            }
        }
        if changed == 0 {
            break;
        }
    }
    if suml2 > 0.0 {
        return div(sumlx, suml2);
    }
    return 0.0;
}
