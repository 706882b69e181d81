// Exact arithmetic shared by every kiln kernel (shared/spec/quantization.md §3.2, §3.6): integer
// f16/bf16 conversions, a correctly rounded division, an opaque identity that keeps a driver from
// fusing a product into the add that follows, and the fallback list the host finishes on the CPU.

struct Params {
    // Always 0: XOR-ing a product's bits with it hides the product from the compiler.
    zero: u32,
    // Units (block pairs, word pairs, workgroups) in this dispatch.
    units: u32,
    // The source values in `src`: 0 = F32, 1 = F16, 2 = BF16 (two per word, low half first).
    kind: u32,
    // Values per row of the importance vector in `wts`; 0 when there is none.
    row: u32,
    // Where in its row this dispatch's first value sits.
    first: u32,
    // The chunk row of this dispatch's first value (for the rows' σ² after the importance
    // vector: legacy.wgsl).
    row0: u32,
    pad1: u32,
    pad2: u32,
}

@group(0) @binding(0) var<storage, read> src: array<u32>;
@group(0) @binding(1) var<storage, read_write> dst: array<u32>;
// fallback[0]: count; fallback[1..]: indices of blocks the host must redo.
@group(0) @binding(2) var<storage, read_write> fallback: array<atomic<u32>>;
@group(0) @binding(3) var<uniform> params: Params;
// The tensor's importance vector (f32 bits), one row's worth shared by every row (an imatrix);
// for the legacy formats, each chunk row's σ² follows it.
@group(0) @binding(4) var<storage, read> wts: array<u32>;

// The f32 bits of source value i, widened exactly as the host would (quantize/widen.rs).
fn val(i: u32) -> u32 {
    if params.kind == 0u {
        return src[i];
    }
    let h = (src[i >> 1u] >> ((i & 1u) * 16u)) & 0xFFFFu;
    if params.kind == 2u {
        return h << 16u;
    }
    return bitcast<u32>(f16_to_f32(h));
}

// Whether this dispatch quantizes with importance weights.
fn weighted() -> bool {
    return params.row != 0u;
}

// The f32 bits of source value i's importance weight (weighted dispatches only).
fn imp(i: u32) -> u32 {
    return wts[(params.first + i) % params.row];
}

// Importance values the weighted kernels take: finite, not subnormal, at most 2^40 (real
// matrices stay far below). With values of the usual magnitudes this keeps the searches' sums
// of weight × level² finite, where WGSL promises no IEEE infinities; for extreme values too the
// kernels rely, as the plain ones do, on the device's IEEE behaviour, which the self-test checks.
// Others send their block to the CPU.
fn weight_ok(u: u32) -> bool {
    return !is_awkward(u) && bitcast<f32>(u & 0x7FFFFFFFu) <= 1099511627776.0;
}

// binary16 bits → f32, integer only; NaNs quieted as the `half` crate and F16C do.
fn f16_to_f32(h: u32) -> f32 {
    let s = (h & 0x8000u) << 16u;
    var e = (h >> 10u) & 0x1Fu;
    var m = h & 0x3FFu;
    if e == 31u {
        if m == 0u {
            return bitcast<f32>(s | 0x7F800000u);
        }
        return bitcast<f32>(s | 0x7FC00000u | (m << 13u));
    }
    if e == 0u {
        if m == 0u {
            return bitcast<f32>(s);
        }
        e = 113u;
        while (m & 0x400u) == 0u {
            m = m << 1u;
            e = e - 1u;
        }
        return bitcast<f32>(s | (e << 23u) | ((m & 0x3FFu) << 13u));
    }
    return bitcast<f32>(s | ((e + 112u) << 23u) | (m << 13u));
}

fn opaque(x: f32) -> f32 {
    return bitcast<f32>(bitcast<u32>(x) ^ params.zero);
}

fn flag_block(block: u32) {
    let slot = atomicAdd(&fallback[0], 1u) + 1u;
    if slot < arrayLength(&fallback) {
        atomicStore(&fallback[slot], block);
    }
}

// Non-finite or subnormal (zero excepted): such inputs go to the CPU.
fn is_awkward(u: u32) -> bool {
    let e = (u >> 23u) & 0xFFu;
    return e == 255u || (e == 0u && (u & 0x7FFFFFu) != 0u);
}

// f32 bits → f16 bits, round to nearest even, integer only (§3.2).
fn f32_to_f16(u: u32) -> u32 {
    let s = (u >> 16u) & 0x8000u;
    let a = u & 0x7FFFFFFFu;
    if a > 0x7F800000u {
        return s | 0x7E00u;
    }
    if a >= 0x47800000u {
        return s | 0x7C00u;
    }
    let e = a >> 23u;
    if e >= 113u {
        let m = a & 0x7FFFFFu;
        var h = ((e - 112u) << 10u) | (m >> 13u);
        let r = m & 0x1FFFu;
        if r > 0x1000u || (r == 0x1000u && (h & 1u) == 1u) {
            h = h + 1u;
        }
        return s | h;
    }
    if e < 102u {
        return s;
    }
    let m = (a & 0x7FFFFFu) | 0x800000u;
    let sh = 126u - e;
    var h = m >> sh;
    let r = m & ((1u << sh) - 1u);
    let half = 1u << (sh - 1u);
    if r > half || (r == half && (h & 1u) == 1u) {
        h = h + 1u;
    }
    return s | h;
}

// f32 bits → bf16 bits as ggml_fp32_to_bf16_row_ref (§2.1).
fn f32_to_bf16(u: u32) -> u32 {
    if (u & 0x7FFFFFFFu) > 0x7F800000u {
        return ((u >> 16u) | 0x0040u) & 0xFFFFu;
    }
    return ((u + 0x7FFFu + ((u >> 16u) & 1u)) >> 16u) & 0xFFFFu;
}

// The exact quotient of two positive normal floats, or ok = false when it would be subnormal
// or overflow (§3.6 item 3: restoring division of the significands, then RNE with sticky bit).
struct Quot {
    v: f32,
    ok: bool,
}

fn div_pos(a: f32, b: f32) -> Quot {
    let ua = bitcast<u32>(a);
    let ub = bitcast<u32>(b);
    let ea = i32(ua >> 23u);
    let eb = i32(ub >> 23u);
    if ea == 0 || ea == 255 || eb == 0 || eb == 255 {
        return Quot(0.0, false);
    }
    var ma = (ua & 0x7FFFFFu) | 0x800000u;
    let mb = (ub & 0x7FFFFFu) | 0x800000u;
    var e = ea - eb + 127;
    if ma < mb {
        ma = ma << 1u;
        e = e - 1;
    }
    var q = 0u;
    var r = ma;
    for (var i = 0; i < 25; i = i + 1) {
        q = q << 1u;
        if r >= mb {
            r = r - mb;
            q = q | 1u;
        }
        r = r << 1u;
    }
    var m = q >> 1u;
    let round = q & 1u;
    let sticky = r != 0u;
    if round == 1u && (sticky || (m & 1u) == 1u) {
        m = m + 1u;
        if m == (1u << 24u) {
            m = m >> 1u;
            e = e + 1;
        }
    }
    if e <= 0 || e >= 255 {
        return Quot(0.0, false);
    }
    return Quot(bitcast<f32>((u32(e) << 23u) | (m & 0x7FFFFFu)), true);
}

// The correctly rounded square root of a non-negative normal float (or zero): digit-by-digit
// on the 24-bit significand, then round to nearest with a sticky bit. ok = false for a
// negative, subnormal or non-finite input.
fn sqrt_exact(v: f32) -> Quot {
    let u = bitcast<u32>(v);
    if (u & 0x7FFFFFFFu) == 0u {
        return Quot(v, true);
    }
    let e = i32(u >> 23u);
    if e == 0 || e >= 255 {
        return Quot(0.0, false);
    }
    // v = m * 2^ex with ex even and m in [2^23, 2^25).
    var m = (u & 0x7FFFFFu) | 0x800000u;
    var ex = e - 150;
    if (ex & 1) != 0 {
        m = m << 1u;
        ex = ex - 1;
    }
    // R = m * 2^s in [2^48, 2^50), so that its root has 25 bits (24 and a round bit).
    let s = select(24, 26, m < 0x1000000u);
    var rem = 0u;
    var root = 0u;
    for (var i = 0; i < 25; i = i + 1) {
        let p = 48 - 2 * i - s;
        var two = 0u;
        if p >= 0 {
            two = (m >> u32(p)) & 3u;
        }
        rem = (rem << 2u) | two;
        let trial = (root << 2u) | 1u;
        root = root << 1u;
        if rem >= trial {
            rem = rem - trial;
            root = root | 1u;
        }
    }
    var r = root >> 1u;
    var be = 127 + 24 + (ex - s) / 2;
    if (root & 1u) == 1u && (rem != 0u || (r & 1u) == 1u) {
        r = r + 1u;
        if r == 0x1000000u {
            r = r >> 1u;
            be = be + 1;
        }
    }
    return Quot(bitcast<f32>((u32(be) << 23u) | (r & 0x7FFFFFu)), true);
}

// Below 2^-40 a block's intermediates can go subnormal: such blocks go to the CPU (§3.6 item 6).
const TINY: f32 = 9.094947e-13;

// One pass over a block: largest magnitude (and the signed value that has it first), minimum,
// maximum, and whether any input is non-finite or subnormal.
struct Stats {
    amax: f32,
    m: f32,
    mn: f32,
    mx: f32,
    awkward: bool,
}

fn block_stats(x0: u32, n: u32) -> Stats {
    var s = Stats(0.0, 0.0, 3.4028235e38, -3.4028235e38, false);
    for (var i = 0u; i < n; i = i + 1u) {
        let u = val(x0 + i);
        s.awkward = s.awkward || is_awkward(u);
        let v = bitcast<f32>(u);
        let a = bitcast<f32>(u & 0x7FFFFFFFu);
        if a > s.amax {
            s.amax = a;
            s.m = v;
        }
        if v < s.mn {
            s.mn = v;
        }
        if v > s.mx {
            s.mx = v;
        }
    }
    return s;
}

// Whether the CPU must do this block instead.
fn needs_cpu(s: Stats) -> bool {
    return s.awkward || (s.amax > 0.0 && s.amax < TINY);
}

// d = v / n and id = 1 / d, both exact, for a positive normal v; ok = false otherwise.
struct Scale {
    d: f32,
    id: f32,
    ok: bool,
}

fn scale_of(v: f32, n: f32) -> Scale {
    let dq = div_pos(v, n);
    let iq = div_pos(1.0, dq.v);
    return Scale(dq.v, iq.v, dq.ok && iq.ok);
}

// Q4_0 and Q5_0: d = m / -n with m the signed value of largest magnitude, id = 1 / d. An
// all-zero block gets 0 / -n = -0.0 and id = 0 (spec §2.11). ok = false: the CPU does it.
fn symmetric_scale(s: Stats, n: f32) -> Scale {
    if s.amax == 0.0 {
        return Scale(-0.0, 0.0, true);
    }
    let sc = scale_of(s.amax, n);
    return Scale(select(sc.d, -sc.d, s.m > 0.0), select(sc.id, -sc.id, s.m > 0.0), sc.ok);
}

// Q4_1 and Q5_1: d = (max - min) / n, id = 1 / d; both 0 for a constant block.
fn range_scale(s: Stats, n: f32) -> Scale {
    let range = s.mx - s.mn;
    if is_awkward(bitcast<u32>(range)) {
        return Scale(0.0, 0.0, false);
    }
    if range > 0.0 {
        return scale_of(range, n);
    }
    return Scale(0.0, 0.0, true);
}

// Writes byte `i` of a block assembled in `words`.
fn put_byte(words: ptr<function, array<u32, 105>>, i: u32, b: u32) {
    let w = i >> 2u;
    let sh = (i & 3u) * 8u;
    (*words)[w] = ((*words)[w] & ~(0xFFu << sh)) | ((b & 0xFFu) << sh);
}

// Writes a little-endian u16 (an f16 scale) at byte `i`.
fn put_u16(words: ptr<function, array<u32, 105>>, i: u32, h: u32) {
    put_byte(words, i, h);
    put_byte(words, i + 1u, h >> 8u);
}
