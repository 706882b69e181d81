// BF16: two values per output word (CPU twin: bf16.rs).
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = gid.x;
    if i >= params.units {
        return;
    }
    dst[i] = f32_to_bf16(src[2u * i]) | (f32_to_bf16(src[2u * i + 1u]) << 16u);
}
