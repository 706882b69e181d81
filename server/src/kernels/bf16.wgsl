// BF16 (CPU twin: bf16.rs): the top 16 bits of each value, rounded to nearest even
// (exact.wgsl's f32_to_bf16), two values to an output word, one word per invocation.
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = gid.x;
    if i >= params.units {
        return;
    }
    dst[i] = f32_to_bf16(val(2u * i)) | (f32_to_bf16(val(2u * i + 1u)) << 16u);
}
