// F16: two values per output word, integer RNE conversion (CPU twin: f16.rs).
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = gid.x;
    if i >= params.units {
        return;
    }
    dst[i] = f32_to_f16(src[2u * i]) | (f32_to_f16(src[2u * i + 1u]) << 16u);
}
