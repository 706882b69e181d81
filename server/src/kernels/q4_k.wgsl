// Q4_K (CPU twin: q4_k.rs): 8 sub-blocks of 32, QKX2(nmax 15, rmin -1, 20 steps) with weights
// av + |x|, 6-bit scales and mins. The kernel shape and the searches are kquants.wgsl's.
const SUBS: u32 = 8u;
const SUB: u32 = 32u;
const BB: u32 = 144u;

fn sub_search(sb: u32, j: u32) {
    k_search(sb, j, 15, -1.0, 20);
}

fn super_step(sb: u32) {
    k_super(sb, false);
}

fn sub_requant(sb: u32, j: u32) {
    requant_affine(sb, j, 32u, 15);
}

// d, dmin, sc[12], then qs[32g + l] = L[64g + l] | L[64g + 32 + l] << 4.
fn block_byte(sb: u32, i: u32) -> u32 {
    if i < 16u {
        return hdr[sb * 20u + i];
    }
    let k = i - 16u;
    let e = sb * 256u + 64u * (k / 32u) + k % 32u;
    return lq[e] | (lq[e + 32u] << 4u);
}
