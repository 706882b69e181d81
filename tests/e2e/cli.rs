//! The `kiln` client commands against a real server: `create` from a GGUF file, from a model
//! name and with `-q`; `list`/`show`/`cp`/`rm` output; the `show --modelfile` round trip; a
//! second create uploads nothing; bad Modelfiles fail before any upload; Ctrl-C mid-quantize.

use std::io::{BufRead as _, BufReader};
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use serde_json::json;

use crate::util::{TestServer, shared};

/// A temp folder with `model.gguf` (the tiny llama fixture, linked) and a Modelfile.
fn model_dir(modelfile: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(shared().join("fixtures/tiny-llama-f16.gguf"), dir.path().join("model.gguf")).unwrap();
    std::fs::write(dir.path().join("Modelfile"), modelfile).unwrap();
    dir
}

fn layers(server: &TestServer, name: &str) -> Vec<String> {
    let m = server.manifest(&format!("registry.ollama.ai/library/{name}/latest"));
    m["layers"].as_array().unwrap().iter().map(|l| l["digest"].as_str().unwrap().to_owned()).collect()
}

#[test]
fn create_from_gguf_file_then_list_and_a_second_create_uploads_nothing() {
    let server = TestServer::start();
    let dir = model_dir("FROM ./model.gguf\nTEMPLATE \"\"\"{{ .Prompt }} \"quoted\" \"\"\"\r\n# a comment\r\n");
    // Run from elsewhere: FROM is relative to the Modelfile, not to the current folder.
    let elsewhere = tempfile::tempdir().unwrap();
    let modelfile = dir.path().join("Modelfile");
    let out = server.cli(elsewhere.path(), &["create", "tiny", "-f", modelfile.to_str().unwrap()]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let fixture = crate::util::digest(&crate::util::tiny_llama());
    assert!(out.stderr.contains(&format!("copying file {fixture}")), "{}", out.stderr);
    assert!(out.stderr.contains("parsing GGUF\n") && out.stderr.ends_with("success\n"), "{}", out.stderr);
    let tags = server.get("/api/tags").json();
    let m = &tags["models"][0];
    assert_eq!(m["name"], "tiny:latest");
    assert_eq!(server.post("/api/show", &json!({"model": "tiny"})).json()["template"], "{{ .Prompt }} \"quoted\" ");

    let list = server.cli(elsewhere.path(), &["list"]);
    assert_eq!(list.code, Some(0), "{}", list.stderr);
    let size = m["size"].as_u64().unwrap();
    let id = &m["digest"].as_str().unwrap()[..12];
    let human =
        if size >= 10_000_000 { format!("{} MB", size / 1_000_000) } else { format!("{:.1} MB", size as f64 / 1e6) };
    let row = format!("tiny:latest    {id}    {human}    ");
    let lines: Vec<&str> = list.stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{}", list.stdout);
    assert!(lines[0].starts_with("NAME           ID              SIZE"), "{:?}", lines[0]);
    assert!(lines[0].ends_with("MODIFIED".to_owned().as_str()) || lines[0].contains("MODIFIED "), "{:?}", lines[0]);
    assert!(lines[1].starts_with(&row), "{:?} vs {row:?}", lines[1]);
    assert!(lines[1].contains("ago    "), "{:?}", lines[1]);
    assert_eq!(server.cli(elsewhere.path(), &["ls", "TI"]).stdout, list.stdout);
    assert_eq!(server.cli(elsewhere.path(), &["ls", "zzz"]).stdout.lines().count(), 1);

    // The blob is there: HEAD hits, nothing is uploaded (no line, no blob rewritten).
    let before = server.blob_times();
    let again = server.cli(elsewhere.path(), &["create", "tiny2", "-f", modelfile.to_str().unwrap()]);
    assert_eq!(again.code, Some(0), "{}", again.stderr);
    assert!(!again.stderr.contains("copying file"), "{}", again.stderr);
    assert!(again.stderr.contains(&format!("using existing layer {fixture}")), "{}", again.stderr);
    let after = server.blob_times();
    let weights = fixture.replace(':', "-");
    let time = |times: &[(String, std::time::SystemTime)]| times.iter().find(|(n, _)| *n == weights).map(|(_, t)| *t);
    assert!(time(&before).is_some());
    assert_eq!(time(&before), time(&after), "the weights blob was rewritten");
}

#[test]
fn create_from_a_name_with_directives_quantize_and_show_round_trip() {
    let server = TestServer::start();
    let dir = model_dir("FROM ./model.gguf\n");
    let cwd = dir.path();
    assert_eq!(server.cli(cwd, &["create", "base"]).code, Some(0), "default -f is ./Modelfile");
    let text = "FROM base\n\
                TEMPLATE \"\"\"<|user|>{{ .Prompt }}<|end|>\"\"\"\n\
                SYSTEM You are \"Mario\".\n\
                PARAMETER temperature 0.7\n\
                PARAMETER stop <|end|>\n\
                PARAMETER stop \"USER:\"\n\
                MESSAGE user Who are you?\n\
                MESSAGE assistant \"It's-a me!\"\n\
                LICENSE MIT\n\
                LICENSE \"\"\"Apache\nLicense\"\"\"\n";
    std::fs::write(cwd.join("Named"), text).unwrap();
    let out = server.cli(cwd, &["create", "mario", "-f", "Named"]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(!out.stderr.contains("copying file"), "{}", out.stderr);
    let show = server.post("/api/show", &json!({"model": "mario"})).json();
    assert_eq!(show["system"], "You are \"Mario\".");
    assert_eq!(show["template"], "<|user|>{{ .Prompt }}<|end|>");
    assert!(show["parameters"].as_str().unwrap().contains("\"USER:\""), "{}", show["parameters"]);
    assert_eq!(show["messages"].as_array().unwrap().len(), 2);
    assert_eq!(show["license"], "MIT\nApache\nLicense");

    let shown = server.cli(cwd, &["show", "mario"]);
    assert_eq!(shown.code, Some(0), "{}", shown.stderr);
    assert!(shown.stdout.starts_with("  Model\n    architecture        llama    \n"), "{}", shown.stdout);
    assert!(shown.stdout.contains("    quantization        F16      \n"), "{}", shown.stdout);
    assert!(shown.stdout.contains("  License\n    MIT       \n    Apache    \n    ...       \n"), "{}", shown.stdout);
    assert_eq!(server.cli(cwd, &["show", "mario", "--system"]).stdout, "You are \"Mario\".");
    assert_eq!(server.cli(cwd, &["show", "mario", "--license"]).stdout, "MIT\nApache\nLicense\n");
    let both = server.cli(cwd, &["show", "mario", "--system", "--license"]);
    assert_eq!(both.code, Some(1));
    assert!(both.stderr.starts_with("Error: only one of '--license'"), "{}", both.stderr);

    // show --modelfile reads back to the same model: FROM is a blob path that exists, so it
    // is hashed, HEAD hits, and nothing is uploaded.
    let modelfile = server.cli(cwd, &["show", "mario", "--modelfile"]);
    assert_eq!(modelfile.code, Some(0), "{}", modelfile.stderr);
    std::fs::write(cwd.join("Shown"), &modelfile.stdout).unwrap();
    let back = server.cli(cwd, &["create", "mario2", "-f", "Shown"]);
    assert_eq!(back.code, Some(0), "{}\n{}", modelfile.stdout, back.stderr);
    assert!(!back.stderr.contains("copying file"), "{}", back.stderr);
    let (a, b) = (layers(&server, "mario"), layers(&server, "mario2"));
    let mut sorted = (a.clone(), b.clone());
    sorted.0.sort();
    sorted.1.sort();
    assert_eq!(sorted.0, sorted.1, "{}", modelfile.stdout);

    // -q: quantized on the server, shown by show.
    let q = server.cli(cwd, &["create", "small", "-q", "q4_k_m"]);
    assert_eq!(q.code, Some(0), "{}", q.stderr);
    assert!(q.stderr.contains("quantizing F16 model to Q4_K_M\n"), "{}", q.stderr);
    assert!(server.cli(cwd, &["show", "small"]).stdout.contains("    quantization        Q4_K_M    \n"));
}

#[test]
fn bad_modelfiles_fail_with_line_and_column_before_any_upload() {
    let server = TestServer::start();
    let cases = [
        ("FROM ./model.gguf\nPARAMETER tempurature 1\n", "Modelfile:2:11: ", "did you mean 'temperature'"),
        ("FROM ./model.gguf\nTEMPLATE \"\"\"open\n", "Modelfile:2:10: ", "unterminated \"\"\" block"),
        ("FROM ./model.gguf\n  BOGUS y\n", "Modelfile:2:3: ", "unknown command BOGUS"),
        ("FROM ./model.gguf\nMESSAGE robot hi\n", "Modelfile:2:9: ", "message role"),
        ("SYSTEM hi\n", "Modelfile:1:1: ", "no FROM line"),
    ];
    for (text, position, message) in cases {
        let dir = model_dir(text);
        let out = server.cli(dir.path(), &["create", "bad"]);
        assert_eq!(out.code, Some(1), "{text:?}: {}", out.stderr);
        let first = out.stderr.lines().next().unwrap_or("");
        assert!(
            first.starts_with(&format!("Error: {position}")) && first.contains(message),
            "{text:?}: {}",
            out.stderr
        );
        assert!(out.stderr.lines().count() >= 3, "the line and a caret follow: {}", out.stderr);
    }
    let dir = model_dir("FROM ./model.gguf\nADAPTER ./missing.gguf\n");
    let out = server.cli(dir.path(), &["create", "bad"]);
    assert_eq!(out.code, Some(1));
    assert!(out.stderr.contains("missing.gguf") && out.stderr.contains("No such file"), "{}", out.stderr);
    let out = server.cli(dir.path(), &["create", "bad name!"]);
    assert_eq!(out.stderr, "Error: invalid model name: bad name!\n");
    assert!(server.blob_times().is_empty(), "nothing uploaded: {:?}", server.blob_times());
    // A server error before the stream: `<status line>: <error>`.
    let dir = model_dir("FROM nothing-here\n");
    let out = server.cli(dir.path(), &["create", "x"]);
    assert_eq!(out.code, Some(1));
    assert!(
        out.stderr.contains("Error: 404 Not Found: ") || out.stderr.contains("Error: 400 Bad Request: "),
        "{}",
        out.stderr
    );
}

#[test]
fn cp_and_rm_print_ollamas_lines() {
    let server = TestServer::start();
    let dir = model_dir("FROM ./model.gguf\n");
    assert_eq!(server.cli(dir.path(), &["create", "one"]).code, Some(0));
    let cp = server.cli(dir.path(), &["cp", "one", "two"]);
    assert_eq!((cp.code, cp.stdout.as_str()), (Some(0), "copied 'one' to 'two'\n"), "{}", cp.stderr);
    let rm = server.cli(dir.path(), &["rm", "one", "two"]);
    assert_eq!((rm.code, rm.stdout.as_str(), rm.stderr.as_str()), (Some(0), "deleted 'one'\ndeleted 'two'\n", ""));
    let rm = server.cli(dir.path(), &["rm", "two"]);
    assert_eq!(rm.code, Some(1));
    assert!(rm.stderr.starts_with("Error: ") && rm.stderr.contains("not found"), "{}", rm.stderr);
    let show = server.cli(dir.path(), &["show", "two"]);
    assert_eq!(show.code, Some(1));
    assert!(show.stderr.contains("not found"), "{}", show.stderr);
}

#[test]
fn ctrl_c_mid_quantize_exits_130_and_leaves_a_consistent_store() {
    let server = TestServer::start();
    let dir = model_dir("FROM ./model.gguf\n");
    // A release build may finish quantizing tiny-llama before the signal lands: then the model
    // is deleted and the race run again; the signal must land in one of a few tries.
    let mut landed = None;
    for _ in 0..5 {
        let (status, seen) = interrupt_at(&server, dir.path(), &["create", "big", "-q", "q2_k"], "quantizing");
        if status.code() == Some(0) {
            assert_eq!(server.delete(&serde_json::json!({"model": "big"})).status, 200);
            continue;
        }
        landed = Some((status, seen));
        break;
    }
    let (status, seen) = landed.expect("the create finished before SIGINT landed in all 5 tries");
    assert_eq!(status.code(), Some(130), "{seen}");
    assert!(seen.contains("interrupted: cancelled the create"), "{seen}");
    // The uploaded GGUF stays (an orphan nothing references yet); no temp files, no manifest.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let (ok, report) = loop {
        let (ok, report) = server.fsck_allowing_orphans();
        if ok && !has_temp(server.models.path()) || std::time::Instant::now() > deadline {
            break (ok, report);
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(ok, "{report}");
    assert!(!has_temp(server.models.path()), "{:?}", server.files());
    assert!(server.get("/api/tags").json()["models"].as_array().is_some_and(Vec::is_empty));
}

/// Runs `kiln ARGS` in `dir` and sends it SIGINT when a stderr line starts with `at`: its exit
/// status and everything it printed to stderr.
fn interrupt_at(server: &TestServer, dir: &Path, args: &[&str], at: &str) -> (std::process::ExitStatus, String) {
    let mut child = server.cli_command(dir, args).stderr(Stdio::piped()).stdout(Stdio::null()).spawn().unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut seen = String::new();
    loop {
        let mut line = String::new();
        if stderr.read_line(&mut line).unwrap() == 0 {
            break;
        }
        seen.push_str(&line);
        if line.starts_with(at) {
            let pid = child.id().to_string();
            assert!(std::process::Command::new("kill").args(["-INT", &pid]).status().unwrap().success());
        }
    }
    (child.wait().unwrap(), seen)
}

fn has_temp(models: &Path) -> bool {
    crate::util::list_files(models)
        .iter()
        .any(|f| f.contains("tmp") || f.contains(".partial") || f.ends_with("-partial"))
}

#[test]
fn from_a_folder_picks_its_gguf_and_refuses_links_out_of_it() {
    let server = TestServer::start();
    let dir = model_dir("FROM ./weights\n");
    let weights = dir.path().join("weights");
    std::fs::create_dir(&weights).unwrap();
    std::fs::copy(shared().join("fixtures/tiny-llama-f16.gguf"), weights.join("model.gguf")).unwrap();
    std::fs::write(weights.join("README.md"), "not picked").unwrap();
    let out = server.cli(dir.path(), &["create", "folder"]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let fixture = crate::util::digest(&crate::util::tiny_llama());
    assert!(layers(&server, "folder").contains(&fixture));

    // A link from the folder to a file outside it is refused before anything is sent.
    std::fs::remove_file(weights.join("model.gguf")).unwrap();
    std::os::unix::fs::symlink(dir.path().join("model.gguf"), weights.join("model.gguf")).unwrap();
    let out = server.cli(dir.path(), &["create", "linked"]);
    assert_eq!(out.code, Some(1));
    assert_eq!(out.stderr, "gathering model components\nError: insecure path: model.gguf\n");
}

#[test]
fn ctrl_c_mid_upload_exits_130_and_the_server_keeps_nothing() {
    let server = TestServer::start();
    let dir = tempfile::tempdir().unwrap();
    // Big enough that the upload is still going when the signal lands, in a release build too
    // (about a second at loopback speed).
    std::fs::write(dir.path().join("big.gguf"), vec![7u8; 256 << 20]).unwrap();
    std::fs::write(dir.path().join("Modelfile"), "FROM big.gguf\n").unwrap();
    let (status, seen) = interrupt_at(&server, dir.path(), &["create", "big"], "copying file");
    assert_eq!(status.code(), Some(130), "{seen}");
    assert!(seen.contains("interrupted: cancelled the upload"), "{seen}");
    let (ok, report) = server.fsck_settled(Duration::from_secs(20));
    assert!(ok, "{report}");
    assert!(!has_temp(server.models.path()), "{:?}", server.files());
    assert!(server.blob_times().is_empty(), "{:?}", server.blob_times());
}

#[test]
fn adapter_file_relative_to_the_modelfile_round_trips_through_show() {
    let server = TestServer::start();
    // With a template: `show --modelfile` always prints one (`{{ .Prompt }}` when the model has
    // none, as Ollama does), so only then does the round trip give the very same layers.
    let dir = model_dir("FROM ./model.gguf\nADAPTER lora.gguf\nTEMPLATE {{ .Prompt }}\n");
    std::fs::write(dir.path().join("lora.gguf"), crate::util::minimal_gguf()).unwrap();
    let out = server.cli(dir.path(), &["create", "tuned"]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let adapter = crate::util::digest(&crate::util::minimal_gguf());
    let m = server.manifest("registry.ollama.ai/library/tuned/latest");
    let kinds: Vec<(&str, &str)> = m["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| (l["mediaType"].as_str().unwrap(), l["digest"].as_str().unwrap()))
        .collect();
    assert!(kinds.contains(&("application/vnd.ollama.image.adapter", adapter.as_str())), "{kinds:?}");
    let shown = server.cli(dir.path(), &["show", "tuned", "--modelfile"]);
    assert!(shown.stdout.contains("\nADAPTER "), "{}", shown.stdout);
    std::fs::write(dir.path().join("Shown"), &shown.stdout).unwrap();
    let back = server.cli(dir.path(), &["create", "tuned2", "-f", "Shown"]);
    assert_eq!(back.code, Some(0), "{}", back.stderr);
    let (mut a, mut b) = (layers(&server, "tuned"), layers(&server, "tuned2"));
    a.sort();
    b.sort();
    assert_eq!(a, b);
}

#[test]
fn from_a_hugging_face_folder_converts_and_quantizes_as_llama_cpp() {
    let server = TestServer::start();
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("qwen3");
    std::fs::create_dir(&folder).unwrap();
    for f in std::fs::read_dir(crate::util::hf_fixture("qwen3")).unwrap() {
        let f = f.unwrap().path();
        std::fs::copy(&f, folder.join(f.file_name().unwrap())).unwrap();
    }
    std::fs::write(dir.path().join("Modelfile"), "FROM ./qwen3\n").unwrap();
    // Named `model`, so general.name is the reference's for its folder `model`: the whole file
    // is then llama-quantize's.
    let out = server.cli(dir.path(), &["create", "model", "-q", "q8_0"]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(out.stderr.contains("converting model\n"), "{}", out.stderr);
    let expected: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(shared().join("fixtures/hf/qwen3-quant-expected.json")).unwrap())
            .unwrap();
    let want = format!("sha256:{}", expected["runs"]["Q8_0"]["sha256"].as_str().unwrap());
    assert_eq!(layers(&server, "model")[0], want);

    // Without -q: the reference's default output (BF16 stays BF16), the same file.
    assert_eq!(server.cli(dir.path(), &["rm", "model"]).code, Some(0));
    let out = server.cli(dir.path(), &["create", "model"]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(!out.stderr.contains("copying file"), "the second create uploaded again: {}", out.stderr);
    let expected: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(shared().join("fixtures/hf/qwen3-expected.json")).unwrap())
            .unwrap();
    let auto = expected["auto_outtype"].as_str().unwrap();
    let want = format!("sha256:{}", expected["outtypes"][auto]["sha256"].as_str().unwrap());
    assert_eq!(layers(&server, "model")[0], want);

    // A PyTorch checkpoint folder gets the reason and the fix.
    std::fs::remove_file(folder.join("model.safetensors")).unwrap();
    std::fs::write(folder.join("pytorch_model.bin"), b"not a pickle").unwrap();
    let out = server.cli(dir.path(), &["create", "pickled"]);
    assert_eq!(out.code, Some(1));
    assert!(
        out.stderr.contains("PyTorch checkpoints (.bin, .pth) are not supported: save the model as safetensors"),
        "{}",
        out.stderr
    );
}

#[test]
fn llama_quantize_flags_give_the_model_the_same_request_gives() {
    let server = TestServer::start();
    let dir = model_dir("FROM ./model.gguf\n");
    let flags =
        ["--tensor-type", "attn_v=q8_0", "--tensor-type", "ffn_down=q6_k", "--output-tensor-type", "q5_0", "--pure"];
    let mut args = vec!["create", "flagged", "-q", "q4_K_M"];
    args.extend(flags);
    let out = server.cli(dir.path(), &args);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let digest = crate::util::digest(&crate::util::tiny_llama());
    server.create_ok(&json!({
        "model": "direct", "files": {"model.gguf": digest}, "quantize": "q4_K_M",
        "tensor_types": ["attn_v=q8_0", "ffn_down=q6_k"], "output_tensor_type": "q5_0", "pure": true,
    }));
    assert_eq!(layers(&server, "flagged")[0], layers(&server, "direct")[0]);
    let plain = server.cli(dir.path(), &["create", "plain", "-q", "q4_K_M"]);
    assert_eq!(plain.code, Some(0), "{}", plain.stderr);
    assert_ne!(layers(&server, "flagged")[0], layers(&server, "plain")[0], "the flags changed nothing");

    // A bad pattern, or a control without -q, is refused before anything is hashed or sent.
    let fresh = TestServer::start();
    let bad = fresh.cli(dir.path(), &["create", "bad", "-q", "q4_K_M", "--tensor-type", "ffn_(up=q8_0"]);
    assert_eq!(bad.code, Some(1));
    assert!(
        bad.stderr.contains("is not a valid regular expression") && !bad.stderr.contains("copying"),
        "{}",
        bad.stderr
    );
    let bad = fresh.cli(dir.path(), &["create", "bad", "--pure"]);
    assert_eq!(bad.code, Some(1));
    assert!(bad.stderr.contains("needs quantize") && !bad.stderr.contains("copying"), "{}", bad.stderr);
    assert!(fresh.blob_times().is_empty(), "{:?}", fresh.blob_times());
}
