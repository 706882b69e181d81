//! The formats new to kiln with ggml 0.25.3 (IQ4_NL, IQ4_XS, TQ1_0, TQ2_0, Q1_0, Q2_0, MXFP4,
//! NVFP4) against ggml's own output (`shared/vectors/imatrix/`), byte for byte, on the fast and
//! reference paths: `<type>.bin` (input row r with weights row r, one call per row) and
//! `<type>.noweights.bin` (all rows in one call, no weights).

use kiln_core::ggml_type::GgmlType;

use super::weighted_tests::{
    Extras, N, ROWS, cases, differing, dir, f32s, random_rows_with, row_labels, weighted_rows,
};
use super::{Path, quantize, quantize_weighted, quantize_with};

/// Every new format, with its file name in the vectors and whether ggml uses the weights.
const TYPES: [(GgmlType, &str, bool); 8] = [
    (GgmlType::IQ4_NL, "iq4_nl", true),
    (GgmlType::IQ4_XS, "iq4_xs", true),
    (GgmlType::TQ1_0, "tq1_0", false),
    (GgmlType::TQ2_0, "tq2_0", false),
    (GgmlType::Q1_0, "q1_0", false),
    (GgmlType::Q2_0, "q2_0", false),
    (GgmlType::MXFP4, "mxfp4", false),
    (GgmlType::NVFP4, "nvfp4", false),
];

/// All of `x` in one call on `path`, as the no-weights vectors were made.
fn plain_rows(ty: GgmlType, x: &[f32], path: Path) -> Vec<u8> {
    let mut out = vec![0u8; ty.bytes_for(x.len() as u64).unwrap() as usize];
    quantize_with(ty, x, &mut out, path).unwrap();
    out
}

/// `got` against `want` for one case: a line for the record, and a failure naming the first
/// differing rows (input case / weight profile, block, byte).
fn compare(ty: GgmlType, case: &str, got: &[u8], want: &[u8], labels: &[String], failures: &mut Vec<String>) {
    assert_eq!(got.len(), want.len(), "{} {case}", ty.name());
    let bad = differing(ty, got, want, labels);
    println!("{} {case}: {} of {ROWS} rows byte-identical", ty.name(), ROWS - bad.len());
    if !bad.is_empty() {
        failures.push(format!(
            "{} {case}: {} rows differ, first: {:?}",
            ty.name(),
            bad.len(),
            &bad[..bad.len().min(3)]
        ));
    }
}

#[test]
fn new_formats_match_ggml_byte_for_byte() {
    let (x, w) = (f32s(dir("quant").join("input.f32")), f32s(dir("imatrix").join("weights.f32")));
    assert_eq!((x.len(), w.len()), (ROWS * N, ROWS * N));
    let labels = row_labels(&cases());
    let mut failures = Vec::new();
    for (ty, name, _) in TYPES {
        let weighted = std::fs::read(dir("imatrix").join(format!("{name}.bin"))).unwrap();
        let plain = std::fs::read(dir("imatrix").join(format!("{name}.noweights.bin"))).unwrap();
        for path in [Path::Reference, Path::Fast] {
            let got = weighted_rows(ty, &x, &w, path);
            compare(ty, &format!("weighted {path:?}"), &got, &weighted, &labels, &mut failures);
            let got = plain_rows(ty, &x, path);
            compare(ty, &format!("no weights {path:?}"), &got, &plain, &labels, &mut failures);
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

/// The weights change the bytes on as many rows as in ggml's run (`cases.json`): none for the
/// formats whose ggml quantizer ignores them.
#[test]
fn weights_change_as_many_rows_as_in_ggml() {
    let (x, w) = (f32s(dir("quant").join("input.f32")), f32s(dir("imatrix").join("weights.f32")));
    let cases = cases();
    let labels = row_labels(&cases);
    for (ty, name, used) in TYPES {
        let row = cases["types"].as_array().unwrap().iter().find(|t| t["type"] == name).unwrap();
        let changed = row["rows_where_weights_change_bytes"].as_u64().unwrap() as usize;
        let mut plain = vec![0u8; ty.bytes_for(x.len() as u64).unwrap() as usize];
        quantize(ty, &x, &mut plain).unwrap();
        let got = differing(ty, &weighted_rows(ty, &x, &w, Path::Fast), &plain, &labels).len();
        assert_eq!(got, changed, "{name}");
        assert_eq!(got > 0, used, "{name}");
    }
}

/// Random rows and weights (zeros, equal, 24 decades, zero sub-blocks; values at many scales,
/// constants, subnormals, one huge value): the fast paths give the reference's bytes, with and
/// without weights, and one call over many rows equals one call per row.
#[test]
fn fast_paths_equal_the_reference_on_random_rows() {
    let rows = 512;
    let extras = Extras { huge: true, specials: false, infinite_weights: false, zero_group: 16 };
    let (x, w) = random_rows_with(rows, 0x1A7E_0001_5EED_0014, extras);
    for (ty, name, _) in TYPES {
        let row = ty.bytes_for(N as u64).unwrap() as usize;
        let pairs = [
            (weighted_rows(ty, &x, &w, Path::Fast), weighted_rows(ty, &x, &w, Path::Reference), "weighted"),
            (plain_rows(ty, &x, Path::Fast), plain_rows(ty, &x, Path::Reference), "no weights"),
        ];
        for (fast, reference, case) in pairs {
            let bad: Vec<usize> = (0..rows).filter(|r| fast[r * row..][..row] != reference[r * row..][..row]).collect();
            assert!(bad.is_empty(), "{name} {case}: {} rows differ, first {:?}", bad.len(), &bad[..bad.len().min(5)]);
        }
        // The tensor-shaped call: every row with the same weights vector.
        let mut together = vec![0u8; rows * row];
        quantize_weighted(ty, &x, &w[..N], &mut together).unwrap();
        for (r, got) in together.chunks_exact(row).enumerate() {
            let mut one = vec![0u8; row];
            quantize_weighted(ty, &x[r * N..][..N], &w[..N], &mut one).unwrap();
            assert_eq!(got, &one[..], "{name} row {r}");
        }
    }
}

/// Throughput of each new format on two threads, weighted, plain, and plain by the reference
/// path, printed for the record
/// (`--nocapture`), not asserted.
#[test]
fn new_formats_throughput() {
    use rayon::prelude::*;
    let (x, w) = (f32s(dir("quant").join("input.f32")), f32s(dir("imatrix").join("weights.f32")));
    let pool = rayon::ThreadPoolBuilder::new().num_threads(2).build().unwrap();
    let reps = 4;
    for (ty, name, _) in TYPES {
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
        let start = std::time::Instant::now();
        for _ in 0..reps {
            pool.install(|| {
                out.par_chunks_mut(row_bytes).zip(x.par_chunks(N)).for_each(|(o, xr)| quantize(ty, xr, o).unwrap());
            });
        }
        let plain_secs = start.elapsed().as_secs_f64();
        let start = std::time::Instant::now();
        for _ in 0..reps {
            pool.install(|| {
                out.par_chunks_mut(row_bytes).zip(x.par_chunks(N)).for_each(|(o, xr)| {
                    quantize_with(ty, xr, o, Path::Reference).unwrap();
                });
            });
        }
        let ref_secs = start.elapsed().as_secs_f64();
        let rate = |s: f64| (reps * ROWS * N) as f64 / s / 1e6;
        println!(
            "{name}: weighted {:.1} M values/s, plain {:.1}, plain reference path {:.1} (2 threads)",
            rate(secs),
            rate(plain_secs),
            rate(ref_secs)
        );
    }
}
