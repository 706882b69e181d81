//! Writing a GGUF while hashing it: every byte goes through SHA-256 on its way to the file, so
//! the blob's digest is known the moment the last byte is written — no second read.

use std::io::{self, Write};

use sha2::{Digest as _, Sha256};

/// A writer that hashes and counts what passes through.
pub struct HashingWriter<W: Write> {
    inner: W,
    hasher: Sha256,
    written: u64,
}

impl<W: Write> HashingWriter<W> {
    /// Wraps `inner`.
    pub fn new(inner: W) -> Self {
        Self { inner, hasher: Sha256::new(), written: 0 }
    }

    /// Bytes written so far.
    #[must_use]
    pub fn written(&self) -> u64 {
        self.written
    }

    /// Writes zeros up to the next multiple of `alignment`.
    ///
    /// # Errors
    /// Write errors.
    pub fn pad_to(&mut self, alignment: u64) -> io::Result<()> {
        let pad = self.written.div_ceil(alignment) * alignment - self.written;
        const ZEROS: [u8; 64] = [0; 64];
        let mut left = pad as usize;
        while left > 0 {
            let n = left.min(ZEROS.len());
            self.write_all(&ZEROS[..n])?;
            left -= n;
        }
        Ok(())
    }

    /// Flushes and returns the inner writer, the digest and the byte count.
    ///
    /// # Errors
    /// Flush errors.
    pub fn finish(mut self) -> io::Result<(W, kiln_core::Digest, u64)> {
        self.inner.flush()?;
        let digest = crate::store::blobs::finish(self.hasher);
        Ok((self.inner, digest, self.written))
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}
