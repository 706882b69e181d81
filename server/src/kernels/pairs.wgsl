// The entry point of the formats quantized a block per invocation (q8_0.wgsl, q4_0.wgsl,
// q4_1.wgsl, q5_0.wgsl, q5_1.wgsl, iq4_nl.wgsl, iq4_xs.wgsl): one invocation quantizes a pair of
// blocks, so that the pair is a whole number of words (WGSL has no byte stores; every such block
// is an even number of bytes).

// Bytes per block, set by the host from the format's ggml type (gpu/shader.rs): where the second
// block starts, and half the words a pair writes.
override BLOCK_BYTES: u32;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = gid.x;
    if i >= params.units {
        return;
    }
    // Function-scope arrays take only fixed sizes (an override may size workgroup arrays only):
    // room for the largest pair, as every format's quantize_block declares.
    var words: array<u32, 105>;
    quantize_block(2u * i, &words, 0u);
    quantize_block(2u * i + 1u, &words, BLOCK_BYTES);
    let n = BLOCK_BYTES / 2u;
    for (var w = 0u; w < n; w = w + 1u) {
        dst[i * n + w] = words[w];
    }
}
