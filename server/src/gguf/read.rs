//! A GGUF file → `kiln_core::gguf::Header`, read through a buffer: only the header is read, and
//! the parser's bounds (checked against the file length) come before any allocation.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;

use kiln_core::gguf::{self, GgufError, Header, Source};

/// A buffered file as a parser source.
pub struct FileSource<R: Read>(pub R);

impl<R: Read> Source for FileSource<R> {
    fn read_exact(&mut self, buf: &mut [u8]) -> Result<(), GgufError> {
        self.0.read_exact(buf).map_err(|e| GgufError::Io(e.to_string()))
    }
}

/// Whether the file starts with the GGUF magic.
///
/// # Errors
/// When it cannot be read.
pub fn is_gguf(path: &Path) -> std::io::Result<bool> {
    let mut magic = [0u8; 4];
    let mut f = File::open(path)?;
    let mut n = 0;
    while n < 4 {
        let r = f.read(&mut magic[n..])?;
        if r == 0 {
            break;
        }
        n += r;
    }
    Ok(gguf::sniff(&magic[..n]))
}

/// Parses the header of a GGUF file.
///
/// # Errors
/// A [`GgufError`] (I/O failures as [`GgufError::Io`]).
pub fn read_header(path: &Path) -> Result<Header, GgufError> {
    let f = File::open(path).map_err(|e| GgufError::Io(e.to_string()))?;
    let len = f.metadata().map_err(|e| GgufError::Io(e.to_string()))?.len();
    gguf::parse(&mut FileSource(BufReader::with_capacity(1 << 20, f)), len)
}
