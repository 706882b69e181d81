//! `kiln create NAME [-f Modelfile] [-q TYPE]`: parse the Modelfile (kiln-core's parser), resolve
//! `FROM`/`ADAPTER` paths against the Modelfile's folder, hash the files in parallel, upload only
//! the blobs the server lacks (`HEAD` first), then stream `POST /api/create` as `ollama create`.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Read;
use std::path::{Component, Path, PathBuf};

use kiln_core::modelfile::{ModelfileError, parse_modelfile_paths};
use kiln_core::name::ModelName;
use rayon::prelude::*;
use serde_json::Value;
use sha2::{Digest as _, Sha256};

use super::client::Client;
use super::progress::{Line, Progress, StreamView};
use super::{CliError, Stage, set_stage};

/// `kiln create` options (`ollama create`'s).
#[derive(Debug, Clone, clap::Args)]
pub struct CreateArgs {
    /// Name of the model to create (`name`, `name:tag`, `namespace/name:tag`).
    pub name: String,
    /// The Modelfile (default: `Modelfile` in the current folder; without one, `FROM .`).
    #[arg(short = 'f', long = "file", value_name = "MODELFILE")]
    pub file: Option<PathBuf>,
    /// Quantize to this type: q4_K_M, q8_0, q6_K, iq4_XS, iq3_M, iq2_XXS (with --imatrix), tq1_0,
    /// f16… — every type llama-quantize lists, any case.
    #[arg(short = 'q', long = "quantize", value_name = "TYPE")]
    pub quantize: Option<String>,
    /// An importance matrix (`llama-imatrix` output, GGUF or `.dat`) to quantize with, as
    /// `llama-quantize --imatrix` (a kiln extension; needs `-q`).
    #[arg(long, value_name = "FILE")]
    pub imatrix: Option<PathBuf>,
    /// llama-quantize's per-tensor controls, under its flag names (kiln extensions; need `-q`).
    #[command(flatten)]
    pub controls: Controls,
}

/// `llama-quantize`'s per-tensor flags, sent as the create request's control fields.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct Controls {
    /// `PATTERN=TYPE`: tensors whose (lower-cased) name the regular expression matches get TYPE;
    /// the first matching flag wins. Repeatable.
    #[arg(long = "tensor-type", value_name = "PATTERN=TYPE")]
    pub tensor_types: Vec<String>,
    /// The type of `output.weight` (with tied embeddings, of `token_embd.weight`).
    #[arg(long, value_name = "TYPE")]
    pub output_tensor_type: Option<String>,
    /// The type of `token_embd.weight`, used as given.
    #[arg(long, value_name = "TYPE")]
    pub token_embedding_type: Option<String>,
    /// Every tensor gets the file type's default type: no mixture rules.
    #[arg(long)]
    pub pure: bool,
    /// `output.weight` is not quantized.
    #[arg(long)]
    pub leave_output_tensor: bool,
    /// Use only the importance matrix's entries whose name contains this. Repeatable.
    #[arg(long = "include-weights", value_name = "NAME")]
    pub include_weights: Vec<String>,
    /// Drop the importance matrix's entries whose name contains this. Repeatable.
    #[arg(long = "exclude-weights", value_name = "NAME")]
    pub exclude_weights: Vec<String>,
}

impl Controls {
    /// Sets the request's control fields (absent when not given).
    fn apply(&self, req: &mut kiln_core::request::CreateRequest) {
        let list = |v: &Vec<String>| (!v.is_empty()).then(|| v.clone());
        req.tensor_types = list(&self.tensor_types);
        req.output_tensor_type.clone_from(&self.output_tensor_type);
        req.token_embedding_type.clone_from(&self.token_embedding_type);
        req.pure = self.pure.then_some(true);
        req.leave_output_tensor = self.leave_output_tensor.then_some(true);
        req.imatrix_include = list(&self.include_weights);
        req.imatrix_exclude = list(&self.exclude_weights);
    }

    /// Checks the flags with kiln-core's rules before anything is hashed or sent.
    fn check(&self, quantize: Option<&str>, imatrix: bool) -> Result<(), CliError> {
        let mut probe = kiln_core::request::CreateRequest {
            model: Some("probe".into()),
            from: Some("probe".into()),
            quantize: quantize.map(str::to_owned),
            imatrix: imatrix.then(|| format!("sha256:{}", "0".repeat(64))),
            ..Default::default()
        };
        self.apply(&mut probe);
        kiln_core::validate::validate_create(&probe).map(|_| ()).map_err(|e| CliError::Message(e.to_string()))
    }
}

fn io_err(path: &Path, source: std::io::Error) -> CliError {
    CliError::Io { path: path.display().to_string(), source }
}

/// The Modelfile's text: UTF-8, or UTF-16 with a byte-order mark; a BOM is dropped.
fn decode(bytes: &[u8], path: &Path) -> Result<String, CliError> {
    let utf16 = |be: bool| {
        let units: Vec<u16> = bytes[2..]
            .chunks_exact(2)
            .map(|c| if be { u16::from_be_bytes([c[0], c[1]]) } else { u16::from_le_bytes([c[0], c[1]]) })
            .collect();
        String::from_utf16(&units).map_err(|_| CliError::Message(format!("{}: invalid UTF-16 text", path.display())))
    };
    match bytes {
        [0xFF, 0xFE, ..] => utf16(false),
        [0xFE, 0xFF, ..] => utf16(true),
        _ => {
            let b = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
            String::from_utf8(b.to_vec()).map_err(|_| {
                CliError::Message(format!("{}: not UTF-8 text (save the Modelfile as UTF-8)", path.display()))
            })
        }
    }
}

/// `Modelfile:LINE:COLUMN: message`, then the line and a caret under the column.
fn render_error(name: &str, text: &str, e: &ModelfileError) -> String {
    let line = text.split('\n').nth(e.line.saturating_sub(1)).unwrap_or("").trim_end_matches('\r');
    let caret = " ".repeat(e.column.saturating_sub(1));
    format!("{name}:{}:{}: {}\n  {line}\n  {caret}^", e.line, e.column, e.message)
}

/// `~` and `~/…` → the home folder; relative paths → under `base` (the Modelfile's folder).
fn expand(value: &str, base: &Path) -> PathBuf {
    let home = || std::env::var_os("HOME").map(PathBuf::from);
    if value == "~"
        && let Some(h) = home()
    {
        return h;
    }
    if let Some(rest) = value.strip_prefix("~/")
        && let Some(h) = home()
    {
        return h.join(rest);
    }
    base.join(value)
}

fn glob(dir: &Path, prefix: &str, suffix: &str, nested: bool) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else { return out };
    let mut entries: Vec<_> = entries.filter_map(Result::ok).map(|e| e.path()).collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            if nested {
                out.extend(glob(&p, prefix, suffix, false));
            }
            continue;
        }
        let name = p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        if name.starts_with(prefix) && name.ends_with(suffix) {
            out.push(p);
        }
    }
    out
}

/// The files a model folder contributes (`ollama`'s `filesForModel`): the first weights group
/// that matches, then the JSON files, the chat template and the SentencePiece tokenizer.
fn pick_dir(dir: &Path) -> Result<Vec<PathBuf>, CliError> {
    let root = dir.canonicalize().map_err(|e| io_err(dir, e))?;
    let groups: [&[(&str, &str, bool)]; 6] = [
        &[("model", ".safetensors", true)],
        &[("consolidated", ".safetensors", false)],
        &[("pytorch_model", ".bin", false)],
        &[("consolidated", ".pth", false)],
        &[("", ".gguf", false)],
        &[("", ".bin", false)],
    ];
    let mut files = groups
        .iter()
        .map(|g| g.iter().flat_map(|(p, s, n)| glob(&root, p, s, *n)).collect::<Vec<_>>())
        .find(|g| !g.is_empty())
        .unwrap_or_default();
    files.extend(glob(&root, "", ".json", true));
    files.extend(glob(&root, "chat_template.jinja", "chat_template.jinja", false));
    let tokenizer = glob(&root, "tokenizer.model", "tokenizer.model", true);
    files.extend(tokenizer.into_iter().take(1));
    files.sort();
    files.dedup();
    if files.is_empty() {
        return Err(CliError::Message(format!("no Modelfile or safetensors files found in {}", dir.display())));
    }
    // A symlink pointing out of the folder would upload a file the user did not pick.
    for f in &files {
        let real = f.canonicalize().map_err(|e| io_err(f, e))?;
        if !real.starts_with(&root) {
            let rel = f.strip_prefix(&root).unwrap_or(f).display().to_string();
            let hint = if f.to_string_lossy().contains(".cache") {
                " (use `huggingface-cli download --local-dir`)"
            } else {
                ""
            };
            return Err(CliError::Message(format!("insecure path: {rel}{hint}")));
        }
    }
    Ok(files)
}

/// Request keys: the base name for one file; for several, the path relative to their common
/// folder, with `/` separators.
fn keys(files: &[PathBuf]) -> Vec<String> {
    let base = |p: &PathBuf| p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    if files.len() < 2 {
        return files.iter().map(base).collect();
    }
    let mut root: Vec<Component<'_>> = files[0].parent().map(|p| p.components().collect()).unwrap_or_default();
    for f in &files[1..] {
        let comps: Vec<_> = f.parent().map(|p| p.components().collect()).unwrap_or_default();
        let common = root.iter().zip(&comps).take_while(|(a, b)| a == b).count();
        root.truncate(common);
    }
    let root: PathBuf = root.iter().collect();
    files
        .iter()
        .map(|f| {
            let rel = f.strip_prefix(&root).unwrap_or(f);
            rel.components().map(|c| c.as_os_str().to_string_lossy().into_owned()).collect::<Vec<_>>().join("/")
        })
        .collect()
}

/// SHA-256 of a file, streamed, advancing `bar`.
fn hash_file(path: &Path, bar: &Line) -> Result<String, CliError> {
    let mut f = File::open(path).map_err(|e| io_err(path, e))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).map_err(|e| io_err(path, e))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
        bar.inc(n as u64);
    }
    Ok(kiln_core::digest::Digest::from_bytes(&h.finalize().into()).to_string())
}

/// A reader that advances a progress line as the upload body is read.
struct Counting<R> {
    inner: R,
    line: Line,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.line.inc(n as u64);
        Ok(n)
    }
}

/// Hashes `files` in parallel under one bar; their sizes sum to the bar's total.
fn hash_all(progress: &Progress, files: &[PathBuf]) -> Result<Vec<(String, u64)>, CliError> {
    if files.is_empty() {
        return Ok(Vec::new());
    }
    let sizes = files
        .iter()
        .map(|f| std::fs::metadata(f).map(|m| m.len()).map_err(|e| io_err(f, e)))
        .collect::<Result<Vec<_>, _>>()?;
    let bar = progress.bar("hashing files", sizes.iter().sum(), true);
    let digests = files.par_iter().map(|f| hash_file(f, &bar)).collect::<Result<Vec<_>, _>>();
    bar.finish();
    Ok(digests?.into_iter().zip(sizes).collect())
}

/// Uploads each file whose digest the server lacks, streamed from disk.
fn upload_missing(
    client: &Client,
    progress: &Progress,
    files: &[PathBuf],
    digests: &[(String, u64)],
) -> Result<(), CliError> {
    let mut seen = std::collections::BTreeSet::new();
    for (path, (digest, size)) in files.iter().zip(digests) {
        if !seen.insert(digest.clone()) || client.has_blob(digest)? {
            continue;
        }
        // The stage is set before the line shows: a Ctrl-C after the line is an upload's.
        set_stage(Stage::Upload);
        let line = progress.bar(&format!("copying file {digest}"), *size, true);
        let file = File::open(path).map_err(|e| io_err(path, e))?;
        client.upload_blob(digest, *size, Counting { inner: file, line: line.clone() })?;
        line.finish();
    }
    set_stage(Stage::Local);
    Ok(())
}

/// Shows the create stream as `ollama create` does: a status without a digest is a spinner line
/// (a new one when the text changes); one with a digest and a total is a bar.
fn show_stream(client: &Client, progress: &Progress, req: &kiln_core::request::CreateRequest) -> Result<(), CliError> {
    let mut view = StreamView::new(progress);
    set_stage(Stage::Create);
    let result = client.stream("/api/create", req, |v: &Value| {
        let status = v.get("status").and_then(Value::as_str).unwrap_or("");
        let digest = v.get("digest").and_then(Value::as_str).unwrap_or("");
        let total = v.get("total").and_then(Value::as_u64).unwrap_or(0);
        if !digest.is_empty() && total > 0 {
            let label = if status.is_empty() {
                format!("pulling {}...", &digest[..digest.len().min(12)])
            } else {
                status.to_owned()
            };
            let completed = v.get("completed").and_then(Value::as_u64).unwrap_or(0);
            view.bar(&label, &label, completed, total, false);
        } else {
            view.status(status);
        }
    });
    set_stage(Stage::Local);
    view.finish();
    result.map_err(CliError::from)
}

/// Runs `kiln create`.
///
/// # Errors
/// A bad name or Modelfile (before anything is sent), a missing file, or the server's error.
pub fn run(args: &CreateArgs) -> Result<(), CliError> {
    if ModelName::parse(&args.name).is_none() {
        return Err(CliError::Message(format!("invalid model name: {}", args.name)));
    }
    let cwd = std::env::current_dir().map_err(|e| io_err(Path::new("."), e))?;
    let path = args.file.clone().unwrap_or_else(|| PathBuf::from("Modelfile"));
    let (text, base) = match std::fs::read(&path) {
        Ok(bytes) => {
            let abs = cwd.join(&path);
            (decode(&bytes, &path)?, abs.parent().map_or_else(|| cwd.clone(), Path::to_path_buf))
        }
        // As `ollama create`: no Modelfile means the current folder is the model.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => ("FROM .".to_owned(), cwd.clone()),
        Err(e) => return Err(io_err(&path, e)),
    };
    let parsed = parse_modelfile_paths(&text)
        .map_err(|e| CliError::Modelfile(render_error(&path.display().to_string(), &text, &e)))?;
    let client = Client::from_env()?;
    let progress = Progress::new();
    let gathering = progress.spinner("gathering model components");

    let mut files = Vec::new();
    let mut from_name = None;
    for value in &parsed.from {
        let p = expand(value, &base);
        match std::fs::metadata(&p) {
            Ok(m) if m.is_dir() => files.extend(pick_dir(&p)?),
            Ok(_) => files.push(p),
            Err(_) => from_name = Some(value.clone()),
        }
    }
    let adapter_files = match &parsed.adapter {
        Some(a) => {
            let p = expand(a, &base);
            let m = std::fs::metadata(&p).map_err(|e| CliError::Message(format!("stat {}: {e}", p.display())))?;
            if m.is_dir() { pick_dir(&p)? } else { vec![p] }
        }
        None => Vec::new(),
    };
    if args.imatrix.is_some() && args.quantize.as_deref().is_none_or(str::is_empty) {
        return Err(CliError::Message(
            "--imatrix needs --quantize: an importance matrix only changes how weights are quantized".into(),
        ));
    }
    args.controls.check(args.quantize.as_deref().filter(|q| !q.is_empty()), args.imatrix.is_some())?;
    let imatrix_file: Vec<PathBuf> = args.imatrix.iter().map(|p| cwd.join(p)).collect();
    let all: Vec<PathBuf> = files.iter().chain(&adapter_files).chain(&imatrix_file).cloned().collect();
    let digests = hash_all(&progress, &all)?;
    gathering.finish();
    upload_missing(&client, &progress, &all, &digests)?;

    let map = |paths: &[PathBuf], digests: &[(String, u64)]| {
        (!paths.is_empty())
            .then(|| keys(paths).into_iter().zip(digests.iter().map(|(d, _)| d.clone())).collect::<BTreeMap<_, _>>())
    };
    let mut req = parsed.request;
    req.model = Some(args.name.clone());
    req.files = map(&files, &digests[..files.len()]);
    req.from = if req.files.is_some() { None } else { from_name };
    req.adapters = map(&adapter_files, &digests[files.len()..files.len() + adapter_files.len()]);
    req.imatrix = imatrix_file.first().map(|_| digests[files.len() + adapter_files.len()].0.clone());
    args.controls.apply(&mut req);
    req.quantize = args.quantize.clone().filter(|q| !q.is_empty());
    req.stream = Some(true);
    show_stream(&client, &progress, &req)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_relative_to_common_root() {
        let files = [PathBuf::from("/m/a/config.json"), PathBuf::from("/m/a/sub/tok.json")];
        assert_eq!(keys(&files), ["config.json", "sub/tok.json"]);
        assert_eq!(keys(&[PathBuf::from("/m/x.gguf")]), ["x.gguf"]);
    }

    #[test]
    fn error_shows_line_and_caret() {
        let e = ModelfileError { line: 2, column: 3, message: "bad".into() };
        assert_eq!(render_error("Modelfile", "FROM x\nab cd\n", &e), "Modelfile:2:3: bad\n  ab cd\n    ^");
    }
}
