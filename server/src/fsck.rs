//! `kiln fsck`: checks a store the way a crash could have left it. Every manifest parses and
//! names a valid model; every blob it references exists with the manifest's size and its digest;
//! no temp files remain; no blob is left that nothing references (an orphan). `--repair` removes
//! orphans and temp files (never a referenced blob). Exit status 1 when the store is inconsistent
//! or holds orphans, unless `--allow-orphans` says they are expected (blobs uploaded for a create
//! that never ran, which Ollama keeps until the next start-up prune).
//!
//! `--models s3://bucket/prefix` checks a store in a bucket the same way (`fsck/bucket.rs` is
//! [`bucket`]). There the servers never delete blobs (another server's create may be about to
//! name an unreferenced one), so orphans are normal between runs of `kiln fsck --repair`, which
//! removes only those last written at least `--min-age` minutes ago.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use clap::Args;
use kiln_core::{Digest, ModelName};
use sha2::{Digest as _, Sha256};

use crate::store::{Manifest, TEMP_PREFIX};

pub mod bucket;

/// `kiln fsck` options.
#[derive(Debug, Clone, Args)]
pub struct FsckArgs {
    /// Model store to check.
    #[arg(long, env = "OLLAMA_MODELS")]
    pub models: PathBuf,
    /// Remove orphaned blobs and temp files.
    #[arg(long)]
    pub repair: bool,
    /// Skip re-hashing blobs (sizes are still checked).
    #[arg(long)]
    pub quick: bool,
    /// Report orphaned blobs without failing: they are expected (uploads no model uses yet).
    #[arg(long)]
    pub allow_orphans: bool,
    /// With `--repair` on an `s3://` store: remove only orphans (and stray objects) last written
    /// at least this many minutes ago; a younger one may be another server's create in flight.
    #[arg(long, default_value_t = 60, value_name = "MINUTES")]
    pub min_age: u64,
}

/// What a check found.
#[derive(Debug, Default)]
pub struct Report {
    /// Manifests that parsed.
    pub manifests: usize,
    /// Referenced blobs checked.
    pub blobs: usize,
    /// Inconsistencies (the store is damaged).
    pub errors: Vec<String>,
    /// Unreferenced blobs.
    pub orphans: Vec<PathBuf>,
    /// Leftover temp files and stray entries.
    pub temp: Vec<PathBuf>,
}

fn sha256_file(path: &Path) -> std::io::Result<Digest> {
    let mut h = Sha256::new();
    std::io::copy(&mut std::fs::File::open(path)?, &mut h)?;
    Ok(crate::store::blobs::finish(h))
}

fn entries(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir).map(|rd| rd.flatten().map(|e| e.path()).collect()).unwrap_or_default()
}

fn name_of(p: &Path) -> String {
    p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
}

/// Checks the store at `root`.
#[must_use]
pub fn check(root: &Path, quick: bool) -> Report {
    let mut r = Report::default();
    let blobs = root.join("blobs");
    let manifests = root.join("manifests");
    let mut referenced: HashSet<Digest> = HashSet::new();
    for h in entries(&manifests) {
        if h.is_file() {
            if name_of(&h).starts_with(TEMP_PREFIX) {
                r.temp.push(h);
            } else {
                r.errors.push(format!("stray file in manifests/: {}", h.display()));
            }
            continue;
        }
        for n in entries(&h) {
            for m in entries(&n) {
                for t in entries(&m) {
                    let parts = [&h, &n, &m, &t].map(|p| name_of(p));
                    let Some(name) = ModelName::from_parts(&parts[0], &parts[1], &parts[2], &parts[3]) else {
                        r.errors.push(format!("{} is not a valid model name", t.display()));
                        continue;
                    };
                    let manifest = std::fs::read(&t).map_err(|e| e.to_string()).and_then(|b| Manifest::decode(&b));
                    let manifest = match manifest {
                        Ok(m) => m,
                        Err(e) => {
                            r.errors.push(format!("manifest of {} is corrupt: {e}", name.short()));
                            continue;
                        }
                    };
                    r.manifests += 1;
                    for layer in std::iter::once(&manifest.config).chain(&manifest.layers) {
                        let d = &layer.digest;
                        let path = blobs.join(d.file_name());
                        match std::fs::metadata(&path) {
                            Err(_) => r.errors.push(format!("{}: blob {d} is missing", name.short())),
                            Ok(md) if md.len() != layer.size => r.errors.push(format!(
                                "{}: blob {d} is {} bytes, the manifest says {}",
                                name.short(),
                                md.len(),
                                layer.size
                            )),
                            Ok(_) => {}
                        }
                        referenced.insert(d.clone());
                    }
                }
            }
        }
    }
    for b in entries(&blobs) {
        let file = name_of(&b);
        if file.starts_with(TEMP_PREFIX) {
            r.temp.push(b);
            continue;
        }
        let Ok(d) = Digest::parse(&file)
            .and_then(|d| if d.file_name() == file { Ok(d) } else { Err(kiln_core::Error::InvalidDigest) })
        else {
            r.temp.push(b);
            continue;
        };
        if !referenced.contains(&d) {
            r.orphans.push(b);
            continue;
        }
        r.blobs += 1;
        if !quick {
            match sha256_file(&b) {
                Ok(got) if got == d => {}
                Ok(got) => r.errors.push(format!("blob {d} holds the bytes of {got}")),
                Err(e) => r.errors.push(format!("blob {d} cannot be read: {e}")),
            }
        }
    }
    r
}

/// Runs `kiln fsck`; `Ok(false)` when the store is inconsistent or holds unexpected orphans.
///
/// # Errors
/// When repairs fail.
pub fn run(args: &FsckArgs) -> Result<bool, Box<dyn std::error::Error>> {
    if let Some(url) = args.models.to_str().filter(|m| crate::store::object::parse_url(m).is_some()) {
        return bucket::run(url, args);
    }
    let r = check(&args.models, args.quick);
    for e in &r.errors {
        println!("error: {e}");
    }
    for o in &r.orphans {
        println!("orphan: {}", o.display());
    }
    for t in &r.temp {
        println!("temp: {}", t.display());
    }
    if args.repair {
        for p in r.orphans.iter().chain(&r.temp) {
            std::fs::remove_file(p)?;
            println!("removed {}", p.display());
        }
    }
    let leftovers = if args.repair { 0 } else { r.temp.len() + if args.allow_orphans { 0 } else { r.orphans.len() } };
    println!(
        "fsck: {} manifests, {} blobs checked, {} orphans, {} temp files, {} errors",
        r.manifests,
        r.blobs,
        r.orphans.len(),
        r.temp.len(),
        r.errors.len()
    );
    Ok(r.errors.is_empty() && leftovers == 0)
}
