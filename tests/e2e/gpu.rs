//! The quantizer device choice on this CPU-only machine (lavapipe is its Vulkan driver): which
//! backend each `--device` gets, what `/api/kiln/info` says, the self-test failing on purpose
//! (`KILN_GPU_SELFTEST_FAIL=1`), and no Vulkan driver at all (`VK_ICD_FILENAMES` pointing at
//! nothing). The GPU's bytes are checked in server/tests/gpu.rs and tests/client/test_gpu.py.

use std::process::Command;

use serde_json::Value;

use crate::util::{TestServer, kiln_bin};

/// `kiln serve` on a fresh store with extra arguments and environment.
fn serve(args: &[&str], env: &[(&str, &str)]) -> (Command, tempfile::TempDir) {
    let models = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(kiln_bin());
    cmd.args(["serve", "--host", "127.0.0.1:0", "--models"]).arg(models.path()).args(args);
    cmd.envs(env.iter().copied());
    (cmd, models)
}

fn start(args: &[&str], env: &[(&str, &str)]) -> TestServer {
    let (cmd, models) = serve(args, env);
    TestServer::spawn(cmd, models)
}

fn quantizer(s: &TestServer) -> Value {
    let r = s.get("/api/kiln/info");
    assert_eq!(r.status, 200);
    r.json()["quantizer"].clone()
}

/// `kiln serve` that must refuse to start: its exit status and stderr.
fn refused(args: &[&str], env: &[(&str, &str)]) -> String {
    let (mut cmd, _models) = serve(args, env);
    let out = cmd.output().unwrap();
    assert!(!out.status.success(), "kiln started: {}", String::from_utf8_lossy(&out.stdout));
    assert!(out.stdout.is_empty(), "it must not have listened: {}", String::from_utf8_lossy(&out.stdout));
    String::from_utf8_lossy(&out.stderr).into_owned()
}

const NO_DRIVER: (&str, &str) = ("VK_ICD_FILENAMES", "/nonexistent/kiln-no-icd.json");
const SOFTWARE_OK: (&str, &str) = ("KILN_GPU_ALLOW_SOFTWARE", "1");
const SABOTAGE: (&str, &str) = ("KILN_GPU_SELFTEST_FAIL", "1");

#[test]
fn device_gpu_on_lavapipe_passes_the_self_test() {
    let s = start(&["--device", "gpu"], &[]);
    let q = quantizer(&s);
    assert_eq!(q["backend"], "gpu", "{q}");
    assert_eq!(q["self_test"], "passed");
    assert!(q["adapter"].as_str().unwrap().contains("llvmpipe"), "{q}");
    assert!(q["driver"].as_str().unwrap().contains("Mesa"), "{q}");
    // Where each type runs: the GPU kernels' types; the grid and ternary types stay on the CPU.
    let types: Vec<&str> = q["gpu_types"].as_array().unwrap().iter().map(|t| t.as_str().unwrap()).collect();
    assert_eq!(
        types,
        [
            "F16", "BF16", "Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K", "IQ4_NL",
            "IQ4_XS"
        ]
    );
    // With an importance matrix: every kernel whose ggml quantizer reads the weights (Q8_0 and
    // the float types ignore them).
    assert_eq!(
        q["gpu_weighted_types"],
        serde_json::json!(["Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K", "IQ4_NL", "IQ4_XS"])
    );
}

#[test]
fn auto_passes_over_a_software_adapter_for_the_cpu() {
    let s = start(&[], &[]);
    let q = quantizer(&s);
    assert_eq!(q["backend"], "cpu", "{q}");
    let why = q["self_test"].as_str().unwrap();
    assert!(why.starts_with("not run: only a software GPU adapter (llvmpipe"), "{why}");
    assert!(q["threads"].as_u64().unwrap() >= 1);
    assert_eq!(q["gpu_types"], serde_json::json!([]));
    assert_eq!(q["gpu_weighted_types"], serde_json::json!([]));
}

#[test]
fn auto_with_a_failing_self_test_quantizes_on_the_cpu() {
    let s = start(&[], &[SOFTWARE_OK, SABOTAGE]);
    let q = quantizer(&s);
    assert_eq!(q["backend"], "cpu", "{q}");
    assert_eq!(q["self_test"], "failed: F16: block 3 differs from the CPU");
    assert_eq!(q["gpu_types"], serde_json::json!([]), "nothing runs on a GPU that failed");
    assert_eq!(q["gpu_weighted_types"], serde_json::json!([]));
    assert!(q["adapter"].as_str().unwrap().contains("llvmpipe"), "{q}");
    // The same switch without the sabotage: auto takes the adapter.
    let ok = start(&[], &[SOFTWARE_OK]);
    assert_eq!(quantizer(&ok)["backend"], "gpu");
}

#[test]
fn device_gpu_with_a_failing_self_test_refuses_to_start() {
    let err = refused(&["--device", "gpu"], &[SABOTAGE]);
    assert!(err.contains("--device gpu: the GPU self-test failed on llvmpipe"), "{err}");
    assert!(err.contains("F16: block 3 differs from the CPU"), "{err}");
}

#[test]
fn no_vulkan_driver_means_the_cpu_with_a_clear_message() {
    let s = start(&[], &[NO_DRIVER, SOFTWARE_OK]);
    let q = quantizer(&s);
    assert_eq!(q["backend"], "cpu", "{q}");
    assert!(q["self_test"].as_str().unwrap().starts_with("not run: no GPU adapter"), "{q}");
    assert_eq!(q["adapter"], Value::Null);
    let err = refused(&["--device", "gpu"], &[NO_DRIVER]);
    assert!(err.contains("--device gpu: no GPU adapter"), "{err}");
}

#[test]
fn device_cpu_never_looks() {
    let s = start(&["--device", "cpu"], &[SABOTAGE]);
    let q = quantizer(&s);
    assert_eq!(q["backend"], "cpu");
    assert_eq!(q["self_test"], "not run: --device cpu");
}
