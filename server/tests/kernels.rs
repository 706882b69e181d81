//! Every block format against ggml's own output (`shared/vectors/quant/`), byte for byte: 512 rows
//! × 256 values of Gaussian, heavy-tailed, zero, constant, tiny, grid and real-weight data.
#![expect(clippy::unwrap_used, reason = "a test fails loudly on the first surprise")]

use std::path::PathBuf;

use kiln_core::ggml_type::GgmlType;
use kiln_core::rng::Rng;
use kiln_server::kernels::{self, Path};
use sha2::{Digest, Sha256};

fn vectors() -> PathBuf {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/vectors/quant");
    assert!(p.is_dir(), "shared/ must sit beside the repository: {}", p.display());
    p
}

fn input() -> Vec<f32> {
    let bytes = std::fs::read(vectors().join("input.f32")).unwrap();
    bytes.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()
}

fn case_of(row: usize) -> String {
    let cases: serde_json::Value =
        serde_json::from_slice(&std::fs::read(vectors().join("cases.json")).unwrap()).unwrap();
    for c in cases["cases"].as_array().unwrap() {
        let first = c["first_row"].as_u64().unwrap() as usize;
        if row >= first && row < first + c["rows"].as_u64().unwrap() as usize {
            return c["name"].as_str().unwrap().to_owned();
        }
    }
    "?".into()
}

#[test]
fn vectors_arrived_intact() {
    let sums = std::fs::read_to_string(vectors().join("SHA256SUMS")).unwrap();
    for line in sums.lines() {
        let (hash, name) = line.split_once("  ").unwrap();
        let got = kiln_core::Digest::from_bytes(&Sha256::digest(std::fs::read(vectors().join(name)).unwrap()).into());
        assert_eq!(got.hex(), hash, "{name}");
    }
}

fn check(ty: GgmlType, file: &str) {
    for path in [Path::Reference, Path::Fast] {
        check_path(ty, file, path);
    }
}

fn check_path(ty: GgmlType, file: &str, path: Path) {
    let x = input();
    let want = std::fs::read(vectors().join(file)).unwrap();
    let row_bytes = ty.bytes_for(256).unwrap() as usize;
    assert_eq!(want.len(), 512 * row_bytes);
    let mut got = vec![0u8; want.len()];
    kernels::quantize_with(ty, &x, &mut got, path).unwrap();
    let mut bad = Vec::new();
    for row in 0..512 {
        let (g, w) = (&got[row * row_bytes..][..row_bytes], &want[row * row_bytes..][..row_bytes]);
        if g != w {
            let byte = g.iter().zip(w).position(|(a, b)| a != b).unwrap();
            let block = byte / ty.block_bytes() as usize;
            bad.push(format!("row {row} ({}) block {block} byte {byte}", case_of(row)));
        }
    }
    assert!(bad.is_empty(), "{}: {} of 512 rows differ, first: {:?}", ty.name(), bad.len(), &bad[..bad.len().min(5)]);
}

#[test]
fn f16() {
    check(GgmlType::F16, "f16.bin");
}
#[test]
fn bf16() {
    check(GgmlType::BF16, "bf16.bin");
}
#[test]
fn q8_0() {
    check(GgmlType::Q8_0, "q8_0.bin");
}
#[test]
fn q4_0() {
    check(GgmlType::Q4_0, "q4_0.bin");
}
#[test]
fn q4_1() {
    check(GgmlType::Q4_1, "q4_1.bin");
}
#[test]
fn q5_0() {
    check(GgmlType::Q5_0, "q5_0.bin");
}
#[test]
fn q5_1() {
    check(GgmlType::Q5_1, "q5_1.bin");
}
#[test]
fn q2_k() {
    check(GgmlType::Q2_K, "q2_K.bin");
}
#[test]
fn q3_k() {
    check(GgmlType::Q3_K, "q3_K.bin");
}
#[test]
fn q4_k() {
    check(GgmlType::Q4_K, "q4_K.bin");
}
#[test]
fn q5_k() {
    check(GgmlType::Q5_K, "q5_K.bin");
}
#[test]
fn q6_k() {
    check(GgmlType::Q6_K, "q6_K.bin");
}

#[test]
fn shape_errors_are_typed() {
    let mut out = vec![0u8; 10];
    assert!(kernels::quantize(GgmlType::Q4_K, &[0.0; 100], &mut out).is_err());
    assert!(kernels::quantize(GgmlType::IQ2_XXS, &[0.0; 256], &mut out).is_err());
}

/// Rows that stress the search: Gaussian at many scales, outliers, ties on a grid, constants,
/// zeros, tiny and huge magnitudes, signs, subnormals.
fn random_rows(seed: u64, rows: usize) -> Vec<f32> {
    let mut rng = Rng::new(seed);
    let mut next = move || rng.next_u64();
    let mut out = Vec::with_capacity(rows * 256);
    for r in 0..rows {
        let kind = next() % 10;
        let scale = [1e-30f32, 1e-8, 1e-3, 0.02, 1.0, 300.0, 1e6, 1e-40, 7.0, 0.5][(next() % 10) as usize];
        for i in 0..256 {
            let u = (next() >> 40) as f32 / (1u64 << 24) as f32 - 0.5;
            let g = (0..4).map(|_| (next() >> 40) as f32 / (1u64 << 24) as f32 - 0.5).sum::<f32>();
            let v = match kind {
                0 => g * scale,
                1 => {
                    if next() % 97 == 0 {
                        g * scale * 40.0
                    } else {
                        g * scale
                    }
                }
                2 => (u * 16.0).round() / 8.0,
                3 => {
                    if i % 32 < 16 {
                        0.0
                    } else {
                        g
                    }
                }
                4 => scale,
                5 => -scale,
                6 => g.abs() * scale,
                7 => {
                    if r % 2 == 0 {
                        0.0
                    } else {
                        -g.abs() * scale
                    }
                }
                8 => f32::from_bits((next() as u32) & 0x807F_FFFF),
                _ => u * scale * if i % 7 == 0 { 10.0 } else { 1.0 },
            };
            out.push(v);
        }
    }
    out
}

#[test]
fn fast_paths_equal_the_reference_on_random_rows() {
    let x = random_rows(0x5EED_1234_ABCD_0001, 2048);
    // Types ggml quantizes only with importance weights have no plain path to compare.
    for ty in kernels::FORMATS.iter().filter(|f| !f.needs_weights).map(|f| f.ty) {
        let n = ty.bytes_for(x.len() as u64).unwrap() as usize;
        let (mut fast, mut reference) = (vec![0u8; n], vec![0u8; n]);
        kernels::quantize_with(ty, &x, &mut fast, Path::Fast).unwrap();
        kernels::quantize_with(ty, &x, &mut reference, Path::Reference).unwrap();
        let row = ty.bytes_for(256).unwrap() as usize;
        let bad: Vec<usize> = (0..2048).filter(|r| fast[r * row..][..row] != reference[r * row..][..row]).collect();
        assert!(bad.is_empty(), "{}: {} rows differ, first {:?}", ty.name(), bad.len(), &bad[..bad.len().min(5)]);
    }
}

#[test]
fn one_table_lists_every_format_once() {
    let mut seen = std::collections::HashSet::new();
    for f in kernels::FORMATS {
        assert!(seen.insert(f.ty), "{} listed twice", f.ty.name());
        assert!(kernels::format(f.ty).is_some());
    }
    assert_eq!(kernels::SUPPORTED.len(), kernels::FORMATS.len());
    // The GPU's list is the table's rows with a kernel, in the table's order.
    let gpu: Vec<GgmlType> = kernels::FORMATS.iter().filter(|f| f.gpu.is_some()).map(|f| f.ty).collect();
    assert_eq!(gpu, kiln_server::gpu::SUPPORTED);
    assert_eq!(
        kernels::quantize(GgmlType::Q8_1, &[0.0; 32], &mut [0u8; 36]),
        Err(kernels::KernelError::Unsupported("Q8_1"))
    );
}
