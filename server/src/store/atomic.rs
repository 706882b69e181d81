//! The only temp-file + fsync + rename in kiln: what makes every store write all-or-nothing.

use std::fs::File;
use std::io::Write;
use std::path::Path;

use tempfile::NamedTempFile;

use super::TEMP_PREFIX;

/// A new temp file in `dir` (same filesystem as its destination, so the rename is atomic).
///
/// # Errors
/// When it cannot be created.
pub fn temp_in(dir: &Path) -> std::io::Result<NamedTempFile> {
    tempfile::Builder::new().prefix(TEMP_PREFIX).tempfile_in(dir)
}

/// fsyncs a directory so a rename inside it survives a power cut.
fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Makes `tmp` durable, readable by all (0644, like Ollama's blobs), and renames it onto `dest`.
///
/// # Errors
/// Any filesystem error; the temp file is then removed.
pub fn persist(tmp: NamedTempFile, dest: &Path) -> std::io::Result<()> {
    tmp.as_file().sync_all()?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        tmp.as_file().set_permissions(std::fs::Permissions::from_mode(0o644))?;
    }
    tmp.persist(dest).map_err(|e| e.error)?;
    if let Some(parent) = dest.parent() {
        sync_dir(parent)?;
    }
    Ok(())
}

/// Writes `bytes` to `dest` atomically, staging the temp file in `temp_dir`.
///
/// # Errors
/// Any filesystem error; `dest` is then unchanged.
pub fn write(temp_dir: &Path, dest: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut tmp = temp_in(temp_dir)?;
    tmp.write_all(bytes)?;
    persist(tmp, dest)
}
