//! `kiln fsck --models s3://bucket/prefix`: the checks of a folder store, made on the bucket's
//! listing. Every key under `manifests/` is a valid name holding a manifest that parses; every
//! blob it references is under `blobs/` with the manifest's size and (unless `--quick`) its
//! digest; no other key sits under `blobs/`; orphans are reported. `--repair` removes orphans
//! and stray keys last written at least `--min-age` minutes ago, after listing the manifests
//! again so that one written meanwhile keeps its blobs.

use std::collections::HashMap;
use std::time::SystemTime;

use kiln_core::Digest;
use object_store::ObjectMeta;

use super::FsckArgs;
use crate::store::Manifest;
use crate::store::object::Bucket;
use crate::store::remote::name_of;

/// What a check of a bucket found.
#[derive(Debug, Default)]
pub struct Report {
    /// Manifests that parsed.
    pub manifests: usize,
    /// Referenced blobs checked.
    pub blobs: usize,
    /// Inconsistencies (the store is damaged).
    pub errors: Vec<String>,
    /// Unreferenced blobs.
    pub orphans: Vec<ObjectMeta>,
    /// Keys under `blobs/` that are not blob names.
    pub stray: Vec<ObjectMeta>,
}

/// Every digest the manifests reference and the number of manifests that parsed; problems go to
/// `errors`.
fn manifests(bucket: &Bucket, errors: &mut Vec<String>) -> std::io::Result<(HashMap<Digest, u64>, usize)> {
    let mut referenced = HashMap::new();
    let mut n = 0;
    for (parts, meta) in bucket.list("manifests")? {
        let Some(name) = name_of(&parts) else {
            errors.push(format!("{} is not a valid model name", bucket.display(&meta.location)));
            continue;
        };
        let manifest = match bucket.get_manifest(&name)? {
            // Deleted since the listing.
            None => continue,
            Some(m) => Manifest::decode(&m.bytes),
        };
        match manifest {
            Ok(m) => {
                n += 1;
                for l in std::iter::once(&m.config).chain(&m.layers) {
                    if let Some(&size) = referenced.get(&l.digest)
                        && size != l.size
                    {
                        errors.push(format!("{}: blob {} is {size} bytes in another manifest", name.short(), l.digest));
                    }
                    referenced.insert(l.digest.clone(), l.size);
                }
            }
            Err(e) => errors.push(format!("manifest of {} is corrupt: {e}", name.short())),
        }
    }
    Ok((referenced, n))
}

/// Checks the store in `bucket`.
///
/// # Errors
/// When the bucket cannot be listed or read.
pub fn check(bucket: &Bucket, quick: bool) -> std::io::Result<Report> {
    let mut r = Report::default();
    let (referenced, n) = manifests(bucket, &mut r.errors)?;
    r.manifests = n;
    let mut stored: HashMap<Digest, ObjectMeta> = HashMap::new();
    for (parts, meta) in bucket.list("blobs")? {
        let blob = match parts.as_slice() {
            [file] => Digest::parse(file).ok().filter(|d| d.file_name() == *file),
            _ => None,
        };
        match blob {
            Some(d) => {
                stored.insert(d, meta);
            }
            None => r.stray.push(meta),
        }
    }
    let mut missing: Vec<_> = referenced.iter().filter(|(d, _)| !stored.contains_key(*d)).collect();
    missing.sort();
    for (d, _) in missing {
        r.errors.push(format!("blob {d} is missing"));
    }
    let mut stored: Vec<_> = stored.into_iter().collect();
    stored.sort_by(|a, b| a.0.cmp(&b.0));
    for (d, meta) in stored {
        let Some(&size) = referenced.get(&d) else {
            r.orphans.push(meta);
            continue;
        };
        r.blobs += 1;
        if meta.size != size {
            r.errors.push(format!("blob {d} is {} bytes, the manifest says {size}", meta.size));
        } else if !quick {
            match bucket.hash(&meta.location) {
                Ok((got, _)) if got == d => {}
                Ok((got, _)) => r.errors.push(format!("blob {d} holds the bytes of {got}")),
                Err(e) => r.errors.push(format!("blob {d} cannot be read: {e}")),
            }
        }
    }
    Ok(r)
}

/// Runs `kiln fsck` on the bucket `url`; `Ok(false)` when it is inconsistent or holds
/// unexpected orphans.
///
/// # Errors
/// When the bucket cannot be reached, or repairs fail.
pub fn run(url: &str, args: &FsckArgs) -> Result<bool, Box<dyn std::error::Error>> {
    let bucket = Bucket::open(url)?;
    let r = check(&bucket, args.quick)?;
    for e in &r.errors {
        println!("error: {e}");
    }
    for o in &r.orphans {
        println!("orphan: {}", bucket.display(&o.location));
    }
    for t in &r.stray {
        println!("temp: {}", bucket.display(&t.location));
    }
    if args.repair {
        repair(&bucket, &r, args.min_age)?;
    }
    let leftovers = if args.repair { 0 } else { r.stray.len() + if args.allow_orphans { 0 } else { r.orphans.len() } };
    println!(
        "fsck: {} manifests, {} blobs checked, {} orphans, {} temp files, {} errors",
        r.manifests,
        r.blobs,
        r.orphans.len(),
        r.stray.len(),
        r.errors.len()
    );
    Ok(r.errors.is_empty() && leftovers == 0)
}

/// Removes the orphans and stray keys at least `min_age` minutes old that no manifest listed now
/// references. A manifest that cannot be read now stops the repair: what it names is unknown.
fn repair(bucket: &Bucket, r: &Report, min_age: u64) -> Result<(), Box<dyn std::error::Error>> {
    let mut errors = Vec::new();
    let (now_referenced, _) = manifests(bucket, &mut errors)?;
    if !errors.is_empty() {
        return Err(format!("not repairing: the manifests changed into an inconsistent state ({})", errors[0]).into());
    }
    let now: chrono::DateTime<chrono::Utc> = SystemTime::now().into();
    let orphans = r.orphans.iter().filter(|m| {
        let file = m.location.filename().unwrap_or_default();
        !Digest::parse(file).is_ok_and(|d| now_referenced.contains_key(&d))
    });
    for meta in orphans.chain(&r.stray) {
        let age = now.signed_duration_since(meta.last_modified).num_minutes();
        if age < i64::try_from(min_age).unwrap_or(i64::MAX) {
            println!("kept (written {age} min ago, under --min-age {min_age}): {}", bucket.display(&meta.location));
            continue;
        }
        bucket.delete(&meta.location)?;
        println!("removed {}", bucket.display(&meta.location));
    }
    Ok(())
}
