//! Would the start-up self-test notice a GPU that flushes subnormals to zero? lavapipe keeps
//! them, so CI cannot run such a device; this machine's CPU can be made to behave like one
//! (x86 MXCSR flush-to-zero and denormals-are-zero). Flushing must change some K-quant's bytes
//! on the self-test corpus in blocks the GPU keeps (it hands non-finite, subnormal and tiny ones
//! back to the CPU), so that a flushing device fails the self-test instead of writing other
//! bytes.
#![cfg(target_arch = "x86_64")]
#![expect(
    unsafe_code,
    deprecated,
    reason = "MXCSR through the deprecated _mm_getcsr/_mm_setcsr: the only way to make this CPU flush like a GPU"
)]

use kiln_core::ggml_type::GgmlType;
use kiln_server::gpu::selftest;
use kiln_server::kernels::{self, Path};

/// Runs `f` with FTZ and DAZ set on this thread.
fn flushing<T>(f: impl FnOnce() -> T) -> T {
    // SAFETY: reads this thread's floating-point mode.
    let old = unsafe { std::arch::x86_64::_mm_getcsr() };
    // SAFETY: changes only this thread's floating-point mode (FTZ, DAZ), restored below.
    unsafe { std::arch::x86_64::_mm_setcsr(old | 0x8040) };
    let r = f();
    // SAFETY: restores the mode read above.
    unsafe { std::arch::x86_64::_mm_setcsr(old) };
    r
}

#[test]
fn a_flushing_device_fails_the_self_test() {
    let x = selftest::corpus(8);
    let mut detected = 0;
    for ty in [GgmlType::Q2_K, GgmlType::Q3_K, GgmlType::Q4_K, GgmlType::Q5_K, GgmlType::Q6_K] {
        let bb = ty.block_bytes() as usize;
        let mut exact = vec![0u8; x.len() / 256 * bb];
        let mut flushed = exact.clone();
        kernels::quantize_with(ty, &x, &mut exact, Path::Reference).unwrap();
        flushing(|| kernels::quantize_with(ty, &x, &mut flushed, Path::Reference)).unwrap();
        // Blocks that differ, among those the GPU keeps (no non-finite, subnormal or tiny input).
        let kept: Vec<usize> = (0..exact.len() / bb)
            .filter(|&b| exact[b * bb..(b + 1) * bb] != flushed[b * bb..(b + 1) * bb])
            .filter(|&b| {
                let xb = &x[b * 256..(b + 1) * 256];
                let sub = if matches!(ty, GgmlType::Q4_K | GgmlType::Q5_K) { 32 } else { 16 };
                xb.iter().all(|v| v.is_normal() || *v == 0.0)
                    && xb.chunks(sub).all(|s| {
                        let amax = s.iter().fold(0f32, |m, v| m.max(v.abs()));
                        amax == 0.0 || amax >= 9.094_947e-13
                    })
            })
            .collect();
        eprintln!("{}: {} self-test blocks the GPU keeps differ under flush-to-zero", ty.name(), kept.len());
        detected += kept.len();
    }
    // The self-test compares every format: one that differs is enough to refuse the device.
    assert!(detected > 0, "the self-test corpus cannot tell a flushing device");
}
