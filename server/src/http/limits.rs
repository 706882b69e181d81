//! What one client may hold: the timeouts and caps of `kiln serve` (README, "Limits"), the
//! request-body reads that honour them, and the shared budget of buffered JSON bodies.

use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, BodyDataStream, Bytes};
use futures_util::StreamExt;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::config::LimitArgs;

/// Why a request body could not be read.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    /// No byte arrived for the body timeout.
    #[error("request body stalled: no data for {0} s")]
    Stalled(u64),
    /// The body is over the per-request limit.
    #[error("request body larger than {0} MiB")]
    TooLarge(usize),
    /// The shared JSON buffer budget is spent by other requests.
    #[error("server busy: {0} MiB of request bodies are being received already; retry later")]
    Busy(u64),
    /// The connection failed or the client broke off mid-body.
    #[error("{0}")]
    Read(axum::Error),
}

/// The limits a server runs with, built once from the command line.
#[derive(Debug)]
pub struct Limits {
    /// A request head must be complete this long after the connection or its first byte.
    pub header_timeout: Duration,
    /// An idle keep-alive connection is closed after this.
    pub idle_timeout: Duration,
    /// A request body read that makes no progress for this long fails.
    pub body_timeout: Duration,
    /// How long a shutdown waits for requests in flight.
    pub shutdown_timeout: Duration,
    /// Connections served at once (`None`: from the fd limit, decided when serving starts).
    pub max_connections: Option<usize>,
    json_buffer_mib: u64,
    /// KiB of JSON bodies being buffered, across all connections.
    json_buffer: Arc<Semaphore>,
}

impl Limits {
    /// From `kiln serve`'s flags.
    #[must_use]
    pub fn new(args: &LimitArgs) -> Self {
        let kib = usize::try_from(args.json_buffer_mib.saturating_mul(1024)).unwrap_or(usize::MAX);
        Self {
            header_timeout: Duration::from_secs(args.header_timeout),
            idle_timeout: Duration::from_secs(args.idle_timeout),
            body_timeout: Duration::from_secs(args.body_timeout),
            shutdown_timeout: Duration::from_secs(args.shutdown_timeout),
            max_connections: args.max_connections,
            json_buffer_mib: args.json_buffer_mib,
            json_buffer: Arc::new(Semaphore::new(kib.min(Semaphore::MAX_PERMITS))),
        }
    }

    /// The next chunk of a body, or [`BodyError::Stalled`] when none comes within the body
    /// timeout (the caller's error then drops what it buffered or wrote).
    ///
    /// # Errors
    /// [`BodyError::Stalled`], or [`BodyError::Read`] when the connection fails.
    pub async fn next_chunk(&self, stream: &mut BodyDataStream) -> Result<Option<Bytes>, BodyError> {
        match tokio::time::timeout(self.body_timeout, stream.next()).await {
            Err(_) => Err(BodyError::Stalled(self.body_timeout.as_secs())),
            Ok(None) => Ok(None),
            Ok(Some(chunk)) => chunk.map(Some).map_err(BodyError::Read),
        }
    }

    /// Reads a whole body of at most `limit` bytes (`declared`: its `Content-Length`), each
    /// byte counted against the shared JSON budget until the returned permit is dropped.
    ///
    /// # Errors
    /// [`BodyError::TooLarge`], [`BodyError::Busy`] (the budget is spent: refusing beats
    /// waiting, since the bodies holding it may be stalled), [`BodyError::Stalled`],
    /// [`BodyError::Read`].
    pub async fn read_json_body(
        &self,
        body: Body,
        declared: Option<u64>,
        limit: usize,
    ) -> Result<(Bytes, BufferPermit), BodyError> {
        let mut permit = BufferPermit(None);
        let mut buf = Vec::new();
        if let Some(n) = declared {
            let n = usize::try_from(n).map_err(|_| BodyError::TooLarge(limit >> 20))?;
            if n > limit {
                return Err(BodyError::TooLarge(limit >> 20));
            }
            // Reserve the declared size up front: one allocation, counted before it is made.
            self.grow(&mut permit, n)?;
            buf.reserve_exact(n);
        }
        let mut stream = body.into_data_stream();
        while let Some(chunk) = self.next_chunk(&mut stream).await? {
            let len = buf.len() + chunk.len();
            if len > limit {
                return Err(BodyError::TooLarge(limit >> 20));
            }
            self.grow(&mut permit, len.max(buf.capacity()))?;
            buf.extend_from_slice(&chunk);
            // What the vector reserved (it doubles as it grows) is what the process holds.
            self.grow(&mut permit, buf.capacity())?;
        }
        Ok((Bytes::from(buf), permit))
    }

    /// Takes permits until `permit` covers `bytes`.
    fn grow(&self, permit: &mut BufferPermit, bytes: usize) -> Result<(), BodyError> {
        let want = u32::try_from(bytes.div_ceil(1024)).unwrap_or(u32::MAX);
        let held = permit.0.as_ref().map_or(0, |p| u32::try_from(p.num_permits()).unwrap_or(u32::MAX));
        if want <= held {
            return Ok(());
        }
        let more = Arc::clone(&self.json_buffer)
            .try_acquire_many_owned(want - held)
            .map_err(|_| BodyError::Busy(self.json_buffer_mib))?;
        match &mut permit.0 {
            Some(p) => p.merge(more),
            None => permit.0 = Some(more),
        }
        Ok(())
    }
}

/// A buffered body's share of the JSON budget; dropping it gives the share back.
#[derive(Debug)]
pub struct BufferPermit(Option<OwnedSemaphorePermit>);

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(mib: u64) -> Limits {
        Limits::new(&LimitArgs { json_buffer_mib: mib, body_timeout: 1, ..LimitArgs::default() })
    }

    #[tokio::test]
    async fn the_budget_is_shared_and_given_back() {
        let l = limits(1);
        let (b, p) = l.read_json_body(Body::from(vec![b'x'; 700 << 10]), Some(700 << 10), 64 << 20).await.unwrap();
        assert_eq!(b.len(), 700 << 10);
        let again = l.read_json_body(Body::from(vec![b'x'; 700 << 10]), None, 64 << 20).await;
        assert!(matches!(again, Err(BodyError::Busy(1))), "{again:?}");
        drop(p);
        assert!(l.read_json_body(Body::from(vec![b'x'; 700 << 10]), None, 64 << 20).await.is_ok());
    }

    #[tokio::test]
    async fn over_the_limit_is_too_large() {
        let l = limits(256);
        let r = l.read_json_body(Body::from(vec![b'x'; 100]), Some(100), 10).await;
        assert!(matches!(r, Err(BodyError::TooLarge(_))));
        let r = l.read_json_body(Body::from(vec![b'x'; 100]), None, 10).await;
        assert!(matches!(r, Err(BodyError::TooLarge(_))));
    }

    #[tokio::test]
    async fn a_stalled_body_fails() {
        let l = limits(256);
        let stalled = futures_util::stream::pending::<Result<Bytes, std::io::Error>>();
        let r = l.read_json_body(Body::from_stream(stalled), None, 10).await;
        assert!(matches!(r, Err(BodyError::Stalled(1))), "{r:?}");
    }
}
