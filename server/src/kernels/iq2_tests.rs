//! The IQ2/IQ1 grid formats against ggml's own output (`shared/vectors/imatrix/`), byte for
//! byte: `<type>.bin` is input row r of `../quant/input.f32` quantized with weights row r of
//! `weights.f32`, one call per row; `<type>.noweights.bin` all rows in one call without weights,
//! for the two types ggml quantizes without them. Both paths (reference and fast) each time.

use kiln_core::ggml_type::GgmlType;

use super::weighted_tests::{N, ROWS, cases, differing, dir, f32s, random_rows, row_labels, weighted_rows};
use super::{KernelError, Path, quantize, quantize_with};

/// The formats, their file names in the vectors, and whether ggml has a plain (no-weights)
/// path for them.
const TYPES: [(GgmlType, &str, bool); 5] = [
    (GgmlType::IQ2_XXS, "iq2_xxs", false),
    (GgmlType::IQ2_XS, "iq2_xs", false),
    (GgmlType::IQ2_S, "iq2_s", true),
    (GgmlType::IQ1_S, "iq1_s", false),
    (GgmlType::IQ1_M, "iq1_m", true),
];

fn inputs() -> (Vec<f32>, Vec<f32>) {
    let (x, w) = (f32s(dir("quant").join("input.f32")), f32s(dir("imatrix").join("weights.f32")));
    assert_eq!((x.len(), w.len()), (ROWS * N, ROWS * N));
    (x, w)
}

/// `name path: k rows differ, first: [row r (case / profile) block b byte i, …]`, or nothing.
fn compare(ty: GgmlType, what: &str, got: &[u8], want: &[u8], labels: &[String]) -> Option<String> {
    assert_eq!(got.len(), want.len(), "{what}");
    let bad = differing(ty, got, want, labels);
    println!("{what}: {} of {ROWS} rows byte-identical", ROWS - bad.len());
    (!bad.is_empty()).then(|| format!("{what}: {} rows differ, first: {:?}", bad.len(), &bad[..bad.len().min(3)]))
}

#[test]
fn iq_grid_formats_match_ggml_with_weights() {
    let (x, w) = inputs();
    let labels = row_labels(&cases());
    let mut failures = Vec::new();
    for (ty, name, _) in TYPES {
        let want = std::fs::read(dir("imatrix").join(format!("{name}.bin"))).unwrap();
        for path in [Path::Reference, Path::Fast] {
            let got = weighted_rows(ty, &x, &w, path);
            failures.extend(compare(ty, &format!("{name} {path:?}"), &got, &want, &labels));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

#[test]
fn iq_grid_formats_match_ggml_without_weights() {
    let (x, _) = inputs();
    let labels = row_labels(&cases());
    let mut failures = Vec::new();
    for (ty, name, plain) in TYPES {
        if !plain {
            continue;
        }
        let want = std::fs::read(dir("imatrix").join(format!("{name}.noweights.bin"))).unwrap();
        for path in [Path::Reference, Path::Fast] {
            let mut got = vec![0u8; want.len()];
            quantize_with(ty, &x, &mut got, path).unwrap();
            failures.extend(compare(ty, &format!("{name} no weights {path:?}"), &got, &want, &labels));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

/// The types ggml quantizes only with weights refuse the plain path with their own error; the
/// others change as many rows with weights as ggml's run says (`cases.json`).
#[test]
fn plain_paths_exist_exactly_where_ggml_has_them() {
    let (x, w) = inputs();
    let cases = cases();
    let labels = row_labels(&cases);
    for (ty, name, plain) in TYPES {
        let row = cases["types"].as_array().unwrap().iter().find(|t| t["type"] == name).unwrap();
        assert_eq!(row["ggml_requires_imatrix"].as_bool(), Some(!plain), "{name}");
        assert_eq!(super::format(ty).map(|f| f.needs_weights), Some(!plain), "{name}");
        let mut out = vec![0u8; ty.bytes_for(x.len() as u64).unwrap() as usize];
        for path in [Path::Reference, Path::Fast] {
            let got = quantize_with(ty, &x, &mut out, path);
            if plain {
                assert_eq!(got, Ok(()), "{name}");
            } else {
                assert_eq!(got, Err(KernelError::NeedsWeights(ty.name())), "{name}");
            }
        }
        if plain {
            let changed = row["rows_where_weights_change_bytes"].as_u64().unwrap() as usize;
            let weighted = weighted_rows(ty, &x, &w, Path::Fast);
            assert_eq!(differing(ty, &weighted, &out, &labels).len(), changed, "{name}");
        }
    }
    // A shape error still comes first: it is the caller's mistake whatever the type.
    assert!(matches!(quantize(GgmlType::IQ2_XXS, &[0.0; 100], &mut [0u8; 66]), Err(KernelError::Shape { .. })));
    let e = quantize(GgmlType::IQ2_XXS, &[0.0; 256], &mut [0u8; 66]).unwrap_err();
    assert_eq!(e.to_string(), "IQ2_XXS can only be quantized with an importance matrix");
}

/// Random rows and weights at many scales (with zero sub-blocks, zero weights, constants and
/// subnormals): the fast weighted paths give the reference's bytes, as do the plain ones.
#[test]
fn fast_paths_equal_the_reference_on_random_rows() {
    let rows = 256;
    let (x, w) = random_rows(rows, 0x1A7E_0002_5EED_0013);
    for (ty, name, plain) in TYPES {
        let (fast, reference) = (weighted_rows(ty, &x, &w, Path::Fast), weighted_rows(ty, &x, &w, Path::Reference));
        let row = fast.len() / rows;
        let bad: Vec<usize> = (0..rows).filter(|r| fast[r * row..][..row] != reference[r * row..][..row]).collect();
        assert!(bad.is_empty(), "{name}: {} rows differ, first {:?}", bad.len(), &bad[..bad.len().min(5)]);
        if plain {
            let (mut fast, mut reference) = (vec![0u8; fast.len()], vec![0u8; fast.len()]);
            quantize_with(ty, &x, &mut fast, Path::Fast).unwrap();
            quantize_with(ty, &x, &mut reference, Path::Reference).unwrap();
            let bad = (0..rows).filter(|r| fast[r * row..][..row] != reference[r * row..][..row]).count();
            assert_eq!(bad, 0, "{name}: plain paths differ on {bad} rows");
        }
    }
}

/// Throughput of each path on one thread (the best of three runs), printed for the record (`--nocapture`), not asserted.
#[test]
fn iq_grid_throughput() {
    let (x, w) = inputs();
    for (ty, name, plain) in TYPES {
        let rate = |f: &dyn Fn()| {
            f(); // the grid is built on first use; not timed
            let best = (0..3)
                .map(|_| {
                    let start = std::time::Instant::now();
                    f();
                    start.elapsed().as_secs_f64()
                })
                .fold(f64::MAX, f64::min);
            (ROWS * N) as f64 / best / 1e6
        };
        let row_bytes = ty.bytes_for(N as u64).unwrap() as usize;
        let fast = rate(&|| drop(weighted_rows(ty, &x, &w, Path::Fast)));
        let reference = rate(&|| drop(weighted_rows(ty, &x, &w, Path::Reference)));
        print!("{name}: weighted {fast:.2} M values/s (reference {reference:.2})");
        if plain {
            let plain_rate = rate(&|| quantize(ty, &x, &mut vec![0u8; ROWS * row_bytes]).unwrap());
            print!(", plain {plain_rate:.2}");
        }
        println!(" (1 thread)");
    }
}
