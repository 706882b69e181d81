// Q5_K (CPU twin: q5_k.rs): Q4_K's search with nmax 31, rmin -0.5, 15 steps; the fifth bits go
// to qh[32]. The kernel shape and the searches are kquants.wgsl's.
const SUBS: u32 = 8u;
const SUB: u32 = 32u;
const BB: u32 = 176u;

fn sub_search(sb: u32, j: u32) {
    k_search(sb, j, 31, -0.5, 15);
}

fn super_step(sb: u32) {
    k_super(sb, true);
}

fn sub_requant(sb: u32, j: u32) {
    requant_affine(sb, j, 32u, 31);
}

// d, dmin, sc[12], qh[32] (bit 2g: element 64g + l > 15; bit 2g + 1: element 64g + 32 + l), qs[128].
fn block_byte(sb: u32, i: u32) -> u32 {
    if i < 16u {
        return hdr[sb * 20u + i];
    }
    if i < 48u {
        let l = i - 16u;
        var v = 0u;
        for (var g = 0u; g < 4u; g = g + 1u) {
            let e = sb * 256u + 64u * g + l;
            v = v | (select(0u, 1u, lq[e] > 15u) << (2u * g)) | (select(0u, 2u, lq[e + 32u] > 15u) << (2u * g));
        }
        return v;
    }
    let k = i - 48u;
    let e = sb * 256u + 64u * (k / 32u) + k % 32u;
    return (lq[e] & 15u) | ((lq[e + 32u] & 15u) << 4u);
}
