//! IQ3_XXS and IQ3_S against ggml's own output (`shared/vectors/imatrix/`), byte for byte, on
//! both paths: with weights (input row r with weights row r, one call per row, as the vectors were
//! made) and without (all 512 rows in one call with a NULL weights pointer); then the fast paths
//! against the reference on random rows, and throughput.

use kiln_core::ggml_type::GgmlType;

use super::weighted_tests::{
    Extras, N, ROWS, cases, differing, dir, f32s, random_rows_with, row_labels, weighted_rows,
};
use super::{Path, quantize_with};

const TYPES: [(GgmlType, &str); 2] = [(GgmlType::IQ3_XXS, "iq3_xxs"), (GgmlType::IQ3_S, "iq3_s")];

/// `x` quantized without weights through `path`, all rows in one call.
fn plain(ty: GgmlType, x: &[f32], path: Path) -> Vec<u8> {
    let mut out = vec![0u8; ty.bytes_for(x.len() as u64).unwrap() as usize];
    quantize_with(ty, x, &mut out, path).unwrap();
    out
}

#[test]
fn iq3_match_ggml_byte_for_byte_with_and_without_weights() {
    let (x, w) = (f32s(dir("quant").join("input.f32")), f32s(dir("imatrix").join("weights.f32")));
    assert_eq!((x.len(), w.len()), (ROWS * N, ROWS * N));
    let labels = row_labels(&cases());
    let mut failures = Vec::new();
    for (ty, name) in TYPES {
        for weighted in [true, false] {
            let file = if weighted { format!("{name}.bin") } else { format!("{name}.noweights.bin") };
            let want = std::fs::read(dir("imatrix").join(&file)).unwrap();
            for path in [Path::Reference, Path::Fast] {
                let got = if weighted { weighted_rows(ty, &x, &w, path) } else { plain(ty, &x, path) };
                assert_eq!(got.len(), want.len(), "{file}");
                let bad = differing(ty, &got, &want, &labels);
                println!("{file} ({path:?}): {} of {ROWS} rows byte-identical", ROWS - bad.len());
                if !bad.is_empty() {
                    failures.push(format!(
                        "{file} {path:?}: {} rows differ, first: {:?}",
                        bad.len(),
                        &bad[..bad.len().min(3)]
                    ));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

/// The weights change the bytes of as many rows as in ggml's own run (`cases.json`).
#[test]
fn iq3_weights_change_as_many_rows_as_in_ggml() {
    let (x, w) = (f32s(dir("quant").join("input.f32")), f32s(dir("imatrix").join("weights.f32")));
    let cases = cases();
    let labels = row_labels(&cases);
    for (ty, name) in TYPES {
        let row = cases["types"].as_array().unwrap().iter().find(|t| t["type"] == name).unwrap();
        let changed = row["rows_where_weights_change_bytes"].as_u64().unwrap() as usize;
        let got = differing(ty, &weighted_rows(ty, &x, &w, Path::Fast), &plain(ty, &x, Path::Fast), &labels);
        assert_eq!(got.len(), changed, "{name}");
    }
}

/// Random rows at many scales (with zero groups, constants, outliers, subnormals, and rows
/// sprinkled with NaN, infinities and f32::MAX) and weights (equal, 24 decades, zeros, zero
/// groups, infinities): the fast paths give the reference's bytes, and nothing panics.
#[test]
fn iq3_fast_paths_equal_the_reference_on_random_rows() {
    let rows = 448;
    let extras = Extras { huge: false, specials: true, infinite_weights: true, zero_group: 32 };
    let (x, w) = random_rows_with(rows, 0x1A3_0001_5EED_0013, extras);
    for (ty, name) in TYPES {
        let row = ty.bytes_for(N as u64).unwrap() as usize;
        for weighted in [true, false] {
            let run = |path| if weighted { weighted_rows(ty, &x, &w, path) } else { plain(ty, &x, path) };
            let (fast, reference) = (run(Path::Fast), run(Path::Reference));
            let bad: Vec<usize> = (0..rows).filter(|r| fast[r * row..][..row] != reference[r * row..][..row]).collect();
            assert!(
                bad.is_empty(),
                "{name} weighted={weighted}: {} rows differ, first {:?}",
                bad.len(),
                &bad[..bad.len().min(5)]
            );
        }
    }
}

/// Throughput of both paths, weighted and not, on one thread; printed (`--nocapture`), not
/// asserted.
#[test]
fn iq3_throughput() {
    let (x, w) = (f32s(dir("quant").join("input.f32")), f32s(dir("imatrix").join("weights.f32")));
    for (ty, name) in TYPES {
        for path in [Path::Reference, Path::Fast] {
            let start = std::time::Instant::now();
            let a = weighted_rows(ty, &x, &w, path);
            let weighted = start.elapsed().as_secs_f64();
            let start = std::time::Instant::now();
            let b = plain(ty, &x, path);
            let plain_secs = start.elapsed().as_secs_f64();
            assert_eq!(a.len(), b.len());
            let rate = |s: f64| (ROWS * N) as f64 / s / 1e6;
            println!(
                "{name} {path:?}: weighted {:.2} M values/s, plain {:.2} (1 thread)",
                rate(weighted),
                rate(plain_secs)
            );
        }
    }
}
