// F16 (CPU twin: f16.rs): each value rounded to binary16, integer only (exact.wgsl's f32_to_f16),
// two values to an output word, one word per invocation.
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = gid.x;
    if i >= params.units {
        return;
    }
    dst[i] = f32_to_f16(val(2u * i)) | (f32_to_f16(val(2u * i + 1u)) << 16u);
}
