//! The weighted paths against ggml's own output with importance weights
//! (`shared/vectors/imatrix/`), byte for byte: input row r of `../quant/input.f32` quantized with
//! weights row r of `weights.f32`, one call per row, as the vectors were made.

use std::path::PathBuf;

use kiln_core::ggml_type::GgmlType;
use sha2::{Digest, Sha256};

use super::{KernelError, Path, quantize, quantize_weighted, quantize_weighted_with};

pub(super) const ROWS: usize = 512;
pub(super) const N: usize = 256;

/// Every format with a weighted path in ggml (and Q8_0, whose ggml quantizer ignores the
/// weights), with its file name in the vectors.
const TYPES: [(GgmlType, &str); 10] = [
    (GgmlType::Q4_0, "q4_0"),
    (GgmlType::Q4_1, "q4_1"),
    (GgmlType::Q5_0, "q5_0"),
    (GgmlType::Q5_1, "q5_1"),
    (GgmlType::Q8_0, "q8_0"),
    (GgmlType::Q2_K, "q2_K"),
    (GgmlType::Q3_K, "q3_K"),
    (GgmlType::Q4_K, "q4_K"),
    (GgmlType::Q5_K, "q5_K"),
    (GgmlType::Q6_K, "q6_K"),
];

pub(super) fn dir(which: &str) -> PathBuf {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/vectors").join(which);
    assert!(p.is_dir(), "shared/ must sit beside the repository: {}", p.display());
    p
}

pub(super) fn f32s(path: PathBuf) -> Vec<f32> {
    let bytes = std::fs::read(path).unwrap();
    bytes.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()
}

pub(super) fn cases() -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(dir("imatrix").join("cases.json")).unwrap()).unwrap()
}

/// `(input case, weight profile)` of every row, for failure messages.
pub(super) fn row_labels(cases: &serde_json::Value) -> Vec<String> {
    let rows = cases["row_weights"].as_array().unwrap();
    assert_eq!(rows.len(), ROWS);
    rows.iter().map(|r| format!("{} / {}", r["input_case"].as_str().unwrap(), r["profile"].as_str().unwrap())).collect()
}

/// Every row quantized with its own weights row, as the vectors were made.
pub(super) fn weighted_rows(ty: GgmlType, x: &[f32], w: &[f32], path: Path) -> Vec<u8> {
    let row_bytes = ty.bytes_for(N as u64).unwrap() as usize;
    let mut out = vec![0u8; x.len() / N * row_bytes];
    for ((xr, wr), or) in x.chunks_exact(N).zip(w.chunks_exact(N)).zip(out.chunks_exact_mut(row_bytes)) {
        quantize_weighted_with(ty, xr, wr, or, path).unwrap();
    }
    out
}

/// Rows of `got` that differ from `want`, as `row (labels) block b byte i`.
pub(super) fn differing(ty: GgmlType, got: &[u8], want: &[u8], labels: &[String]) -> Vec<String> {
    let row_bytes = got.len() / ROWS;
    let mut bad = Vec::new();
    for (row, (g, w)) in got.chunks_exact(row_bytes).zip(want.chunks_exact(row_bytes)).enumerate() {
        if let Some(byte) = g.iter().zip(w).position(|(a, b)| a != b) {
            let block = byte / ty.block_bytes() as usize;
            bad.push(format!("row {row} ({}) block {block} byte {byte}", labels[row]));
        }
    }
    bad
}

#[test]
fn imatrix_vectors_arrived_intact() {
    let sums = std::fs::read_to_string(dir("imatrix").join("SHA256SUMS")).unwrap();
    for line in sums.lines() {
        let (hash, name) = line.split_once("  ").unwrap();
        let got: String = Sha256::digest(std::fs::read(dir("imatrix").join(name)).unwrap())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(got, hash, "{name}");
    }
}

#[test]
fn weighted_paths_match_ggml_byte_for_byte() {
    let (x, w) = (f32s(dir("quant").join("input.f32")), f32s(dir("imatrix").join("weights.f32")));
    assert_eq!((x.len(), w.len()), (ROWS * N, ROWS * N));
    let labels = row_labels(&cases());
    let mut failures = Vec::new();
    for (ty, name) in TYPES {
        let want = std::fs::read(dir("imatrix").join(format!("{name}.bin"))).unwrap();
        for path in [Path::Reference, Path::Fast] {
            let got = weighted_rows(ty, &x, &w, path);
            assert_eq!(got.len(), want.len(), "{name}");
            let bad = differing(ty, &got, &want, &labels);
            println!("{name} ({path:?}): {} of {ROWS} rows byte-identical", ROWS - bad.len());
            if !bad.is_empty() {
                failures.push(format!(
                    "{name} {path:?}: {} rows differ, first: {:?}",
                    bad.len(),
                    &bad[..bad.len().min(3)]
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

/// The weights change the bytes on as many rows as ggml's own run says (`cases.json`); Q8_0's
/// quantizer (`quantize_q8_0`) ignores them, so its weighted bytes are the plain ones.
#[test]
fn weights_change_as_many_rows_as_in_ggml() {
    let (x, w) = (f32s(dir("quant").join("input.f32")), f32s(dir("imatrix").join("weights.f32")));
    let cases = cases();
    let labels = row_labels(&cases);
    for (ty, name) in TYPES {
        let row = cases["types"].as_array().unwrap().iter().find(|t| t["type"] == name).unwrap();
        let changed = row["rows_where_weights_change_bytes"].as_u64().unwrap() as usize;
        let mut plain = vec![0u8; ty.bytes_for(x.len() as u64).unwrap() as usize];
        quantize(ty, &x, &mut plain).unwrap();
        let got = differing(ty, &weighted_rows(ty, &x, &w, Path::Fast), &plain, &labels).len();
        assert_eq!(got, changed, "{name}");
        if ty == GgmlType::Q8_0 {
            assert_eq!(got, 0, "ggml's quantize_q8_0 ignores quant_weights");
        }
    }
}

/// Equal weights are not the unweighted path: ggml's `_impl` is a different algorithm (its own
/// weights `sqrt(σ² + x²)`, its own searches), so even all-ones weights change many rows.
#[test]
fn equal_weights_are_not_the_plain_path() {
    let x = f32s(dir("quant").join("input.f32"));
    let labels = row_labels(&cases());
    let ones = vec![1.0f32; N];
    for (ty, name) in TYPES {
        let mut plain = vec![0u8; ty.bytes_for(x.len() as u64).unwrap() as usize];
        quantize(ty, &x, &mut plain).unwrap();
        let mut weighted = vec![0u8; plain.len()];
        // All 512 rows in one call, every row with the same weights: the tensor-shaped API.
        quantize_weighted(ty, &x, &ones, &mut weighted).unwrap();
        let changed = differing(ty, &weighted, &plain, &labels).len();
        println!("{name}: all-ones weights change {changed} of {ROWS} rows");
        if ty == GgmlType::Q8_0 {
            assert_eq!(changed, 0);
        } else {
            assert!(changed > ROWS / 4, "{name}: only {changed} rows changed");
        }
    }
}

#[test]
fn weighted_shapes_and_types_are_checked() {
    let mut out = vec![0u8; 144];
    let x = vec![0.5f32; 256];
    // Weights that are not whole blocks, rows that are not whole weight vectors, wrong output.
    assert!(matches!(quantize_weighted(GgmlType::Q4_K, &x, &[1.0; 100], &mut out), Err(KernelError::Shape { .. })));
    assert!(matches!(
        quantize_weighted(GgmlType::Q4_0, &x[..96], &[1.0; 64], &mut out),
        Err(KernelError::Shape { .. })
    ));
    assert!(matches!(
        quantize_weighted(GgmlType::Q4_K, &x, &[1.0; 256], &mut out[..100]),
        Err(KernelError::Shape { .. })
    ));
    assert!(matches!(quantize_weighted(GgmlType::Q4_K, &[], &[], &mut []), Err(KernelError::Shape { .. })));
    assert_eq!(quantize_weighted(GgmlType::Q8_1, &x, &[1.0; 256], &mut out), Err(KernelError::Unsupported("Q8_1")));
    // Two rows of 128 sharing one weights vector are two one-row calls.
    let mut w = [1.0f32; 128];
    w[3] = 50.0;
    let x: Vec<f32> = (0..256).map(|i| ((i * 37 % 101) as f32 - 50.0) / 7.0).collect();
    let mut both = vec![0u8; 144];
    quantize_weighted(GgmlType::Q4_0, &x, &w, &mut both).unwrap();
    let mut first = vec![0u8; 72];
    quantize_weighted(GgmlType::Q4_0, &x[..128], &w, &mut first).unwrap();
    assert_eq!(both[..72], first[..]);
}

/// What [`random_rows_with`] mixes in beyond [`random_rows`]' kinds.
#[derive(Debug, Clone, Copy)]
pub(super) struct Extras {
    /// A row kind with one value of 3e38 (the overflow paths of the largest magnitudes).
    pub huge: bool,
    /// A row kind on a coarse grid (rounding ties), and one with NaN, ±∞, ±MAX, a denormal and -0.
    pub specials: bool,
    /// A weight kind with some infinite weights.
    pub infinite_weights: bool,
    /// The groups the zero-group weight kind zeroes one in five of (16 or 32 values).
    pub zero_group: usize,
}

/// [`random_rows_with`] without extras: finite values and weights, zeroed 16-value groups.
pub(super) fn random_rows(rows: usize, seed: u64) -> (Vec<f32>, Vec<f32>) {
    random_rows_with(rows, seed, Extras { huge: false, specials: false, infinite_weights: false, zero_group: 16 })
}

/// `rows` random rows and weights from `seed`: values at eight scales from 1e-40 to 1e6 as
/// Gaussians, their magnitudes, zero half-blocks, constants and outliers (and the `extras`);
/// weights equal, over 24 decades, 30% zero, zero groups (and the `extras`). The corpus the fast
/// paths are checked against the reference on.
pub(super) fn random_rows_with(rows: usize, seed: u64, extras: Extras) -> (Vec<f32>, Vec<f32>) {
    const SPECIALS: [f32; 7] = [f32::NAN, f32::INFINITY, f32::NEG_INFINITY, f32::MAX, -f32::MAX, 1e-45, -0.0];
    let mut rng = kiln_core::rng::Rng::new(seed);
    let mut unit = move || (rng.next_u64() >> 40) as f32 / (1u64 << 24) as f32;
    // Row kinds: 0 Gaussian, 1 magnitudes, 2 zero half-blocks, 3 constant, then the extras,
    // last the outliers; weight kinds likewise.
    let mut row_kinds = vec![0, 1, 2, 3];
    if extras.huge {
        row_kinds.push(4);
    }
    if extras.specials {
        row_kinds.extend([5, 6]);
    }
    row_kinds.push(7);
    let weight_kinds = if extras.infinite_weights { 6 } else { 5 };
    let (mut x, mut w) = (Vec::with_capacity(rows * N), Vec::with_capacity(rows * N));
    for r in 0..rows {
        let scale = [1e-30f32, 1e-8, 1e-3, 0.02, 1.0, 300.0, 1e6, 1e-40][r % 8];
        let kind = row_kinds[(r / 8) % row_kinds.len()];
        let weight_kind = (r / (8 * row_kinds.len())) % weight_kinds;
        for i in 0..N {
            let g = (0..4).map(|_| unit() - 0.5).sum::<f32>();
            x.push(match kind {
                0 => g * scale,
                1 => g.abs() * scale,
                2 if i % 32 < 16 => 0.0,
                3 => scale,
                4 if i == 77 => 3e38,
                5 => (g * 8.0).round() * scale,
                6 if (i * 7 + r) % 13 == 0 => SPECIALS[(i + r) % SPECIALS.len()],
                _ => g * scale * if i % 7 == 0 { 30.0 } else { 1.0 },
            });
            w.push(match weight_kind {
                0 => 1.0,
                1 => 10f32.powf(unit() * 24.0 - 12.0),
                2 if unit() < 0.3 => 0.0,
                3 if (i / extras.zero_group) % 5 == 1 => 0.0,
                5 if (i * 5 + r) % 17 == 0 => f32::INFINITY,
                _ => unit() * unit() + 1e-4,
            });
        }
    }
    (x, w)
}

/// Random rows and weights (zeros, equal, 24 decades, whole zero sub-blocks; values at many
/// scales, constants, subnormals): the fast weighted paths give the reference's bytes.
#[test]
fn fast_weighted_paths_equal_the_reference_on_random_rows() {
    let rows = 1024;
    let (x, w) = random_rows(rows, 0x1A7E_0001_5EED_0013);
    for (ty, name) in TYPES {
        let (fast, reference) = (weighted_rows(ty, &x, &w, Path::Fast), weighted_rows(ty, &x, &w, Path::Reference));
        let row = fast.len() / rows;
        let bad: Vec<usize> = (0..rows).filter(|r| fast[r * row..][..row] != reference[r * row..][..row]).collect();
        assert!(bad.is_empty(), "{name}: {} rows differ, first {:?}", bad.len(), &bad[..bad.len().min(5)]);
    }
}

/// Throughput of each weighted path on two threads (rows split over a two-thread pool), printed
/// for the record (`--nocapture`), not asserted.
#[test]
fn weighted_throughput() {
    use rayon::prelude::*;
    let (x, w) = (f32s(dir("quant").join("input.f32")), f32s(dir("imatrix").join("weights.f32")));
    let pool = rayon::ThreadPoolBuilder::new().num_threads(2).build().unwrap();
    let reps = 4;
    for (ty, name) in TYPES {
        let row_bytes = ty.bytes_for(N as u64).unwrap() as usize;
        let mut out = vec![0u8; ROWS * row_bytes];
        let start = std::time::Instant::now();
        for _ in 0..reps {
            pool.install(|| {
                out.par_chunks_mut(row_bytes).zip(x.par_chunks(N)).zip(w.par_chunks(N)).for_each(|((o, xr), wr)| {
                    quantize_weighted(ty, xr, wr, o).unwrap();
                });
            });
        }
        let secs = start.elapsed().as_secs_f64();
        let mut plain = vec![0u8; out.len()];
        let start = std::time::Instant::now();
        for _ in 0..reps {
            pool.install(|| {
                plain.par_chunks_mut(row_bytes).zip(x.par_chunks(N)).for_each(|(o, xr)| quantize(ty, xr, o).unwrap());
            });
        }
        let plain_secs = start.elapsed().as_secs_f64();
        let rate = |s: f64| (reps * ROWS * N) as f64 / s / 1e6;
        println!("{name}: weighted {:.1} M values/s, plain {:.1} (2 threads)", rate(secs), rate(plain_secs));
    }
}
