//! The accept loop: each connection served by hyper's HTTP/1 under a watchdog (header and idle
//! timeouts), a cap on open connections answered with `503` rather than a hang, and a shutdown
//! that waits for requests in flight up to a deadline, then cancels them.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::Request;
use http_body::{Frame, SizeHint};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt as _, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tower::ServiceExt as _;

use super::limits::Limits;

/// How often a connection's watchdog looks at its clocks.
const TICK: Duration = Duration::from_millis(250);

/// Connections being answered `503` at once; past this a refused one is just closed.
const MAX_REFUSING: usize = 64;

/// What a refused connection is told.
const BUSY: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json; charset=utf-8\r\nconnection: close\r\ncontent-length: 60\r\n\r\n{\"error\":\"server busy: too many open connections; retry later\"}";

/// File descriptors kept back from connections for the store, uploads and blob reads.
const FD_RESERVE: u64 = 64;

/// Raises the soft file-descriptor limit to the hard one and returns the connection cap for
/// it: half of what is left after a reserve, since a connection may hold a temp file too.
#[must_use]
pub fn raise_fd_limit() -> usize {
    let soft = match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(n) => n,
        Err(e) => {
            tracing::warn!("could not read or raise the file-descriptor limit: {e}");
            rlimit::getrlimit(rlimit::Resource::NOFILE).map_or(1024, |(soft, _)| soft)
        }
    };
    usize::try_from(soft.saturating_sub(FD_RESERVE) / 2).unwrap_or(usize::MAX).max(8)
}

/// Serves `app` on `listener` until `shutdown` resolves; then stops accepting, lets requests
/// in flight finish for up to the shutdown timeout, and cancels what is left (dropping a request
/// removes its temp files, as a client disconnect does).
///
/// # Errors
/// None today: accept errors are logged and retried.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: Arc<Limits>,
    max_connections: usize,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    let open = Arc::new(AtomicUsize::new(0));
    let refusing = Arc::new(AtomicUsize::new(0));
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut conns = JoinSet::new();
    // One descriptor held back: when accept fails for want of descriptors, freeing it lets the
    // loop accept the waiting client and answer it, instead of spinning or leaving it hanging.
    let mut spare = std::fs::File::open("/dev/null").ok();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    if open.load(Ordering::Relaxed) >= max_connections {
                        refuse(stream, &refusing);
                        continue;
                    }
                    let slot = Slot::take(&open);
                    conns.spawn(connection(stream, app.clone(), Arc::clone(&limits), stop_rx.clone(), slot));
                }
                Err(e) if matches!(e.raw_os_error(), Some(23 | 24)) => {
                    tracing::warn!("out of file descriptors: answering 503 to the next client");
                    drop(spare.take());
                    if let Ok((stream, _)) = listener.accept().await {
                        let _ = stream.try_write(BUSY);
                    }
                    spare = std::fs::File::open("/dev/null").ok();
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                Err(e) => {
                    tracing::debug!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            },
        }
    }
    drop(listener);
    let _ = stop_tx.send(true);
    let drained =
        tokio::time::timeout(limits.shutdown_timeout, async { while conns.join_next().await.is_some() {} }).await;
    if drained.is_err() {
        tracing::warn!(
            connections = conns.len(),
            "requests still in flight at the shutdown deadline ({} s): cancelling them",
            limits.shutdown_timeout.as_secs()
        );
        conns.shutdown().await;
    }
    Ok(())
}

/// Answers an over-the-cap connection `503` and closes it: after reading what it sent of its
/// request (briefly), so that the close does not reset the answer away.
fn refuse(mut stream: TcpStream, refusing: &Arc<AtomicUsize>) {
    if refusing.load(Ordering::Relaxed) >= MAX_REFUSING {
        let _ = stream.try_write(BUSY);
        return;
    }
    let slot = Slot::take(refusing);
    tokio::spawn(async move {
        let _slot = slot;
        let mut head = [0u8; 4096];
        let _ = tokio::time::timeout(Duration::from_millis(500), tokio::io::AsyncReadExt::read(&mut stream, &mut head))
            .await;
        let _ = tokio::time::timeout(Duration::from_secs(2), async {
            stream.write_all(BUSY).await?;
            stream.shutdown().await
        })
        .await;
    });
}

/// A counted place (an open connection, a refusal being written), given back on drop.
struct Slot(Arc<AtomicUsize>);

impl Slot {
    fn take(counter: &Arc<AtomicUsize>) -> Self {
        counter.fetch_add(1, Ordering::Relaxed);
        Self(Arc::clone(counter))
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// One connection: hyper's HTTP/1 with keep-alive, ended by the watchdog when a head takes too
/// long or the connection idles too long, and gracefully when the server stops.
async fn connection(stream: TcpStream, app: Router, limits: Arc<Limits>, mut stop: watch::Receiver<bool>, _slot: Slot) {
    let _ = stream.set_nodelay(true);
    let clock = Arc::new(Clock::new());
    let io = TokioIo::new(Watched { inner: stream, clock: Arc::clone(&clock) });
    let svc_clock = Arc::clone(&clock);
    let service = hyper::service::service_fn(move |req: Request<Incoming>| {
        let request = InFlight::begin(&svc_clock);
        let app = app.clone();
        async move {
            let res = app.oneshot(req.map(Body::new)).await?;
            Ok::<_, std::convert::Infallible>(res.map(|body| Body::new(Tracked { inner: body, _request: request })))
        }
    });
    // Header and idle timeouts are the watchdog's: hyper's header timer also runs while a
    // keep-alive connection is idle, which would make the two one.
    let conn = hyper::server::conn::http1::Builder::new().header_read_timeout(None).serve_connection(io, service);
    let mut conn = std::pin::pin!(conn);
    let mut tick = tokio::time::interval(TICK);
    let mut stopping = *stop.borrow();
    if stopping {
        conn.as_mut().graceful_shutdown();
    }
    loop {
        tokio::select! {
            res = conn.as_mut() => {
                if let Err(e) = res {
                    tracing::debug!("connection ended: {e}");
                }
                return;
            }
            changed = stop.changed(), if !stopping => {
                stopping = true;
                if changed.is_ok() {
                    conn.as_mut().graceful_shutdown();
                }
            }
            _ = tick.tick() => {
                if let Some(why) = clock.expired(&limits) {
                    tracing::debug!("closing a connection: {why}");
                    return;
                }
            }
        }
    }
}

/// A connection's clocks, in milliseconds since it opened.
struct Clock {
    opened: Instant,
    /// Requests whose response is not yet fully sent.
    in_flight: AtomicUsize,
    /// Requests seen.
    served: AtomicU64,
    /// When the last response was sent.
    idle_since: AtomicU64,
    /// When the first byte of the next request head came ([`NONE`] before it).
    head_started: AtomicU64,
}

const NONE: u64 = u64::MAX;

impl Clock {
    fn new() -> Self {
        Self {
            opened: Instant::now(),
            in_flight: AtomicUsize::new(0),
            served: AtomicU64::new(0),
            idle_since: AtomicU64::new(0),
            head_started: AtomicU64::new(NONE),
        }
    }

    fn now(&self) -> u64 {
        u64::try_from(self.opened.elapsed().as_millis()).unwrap_or(NONE - 1)
    }

    /// Why the connection should close now, if it should: a request head (the first one
    /// counted from the connection's opening) not complete within the header timeout, or no
    /// request for the idle timeout. A request in flight is the body timeout's business.
    fn expired(&self, limits: &Limits) -> Option<&'static str> {
        if self.in_flight.load(Ordering::Acquire) > 0 {
            return None;
        }
        let now = self.now();
        let since = |t: u64| Duration::from_millis(now.saturating_sub(t));
        let head = self.head_started.load(Ordering::Acquire);
        if self.served.load(Ordering::Acquire) == 0 {
            return (since(0) > limits.header_timeout).then_some("no request head within the header timeout");
        }
        if head != NONE {
            return (since(head) > limits.header_timeout).then_some("request head incomplete at the header timeout");
        }
        (since(self.idle_since.load(Ordering::Acquire)) > limits.idle_timeout).then_some("idle")
    }
}

/// Marks a request in flight from the moment hyper hands it over until its response body is
/// done (dropped).
struct InFlight(Arc<Clock>);

impl InFlight {
    fn begin(clock: &Arc<Clock>) -> Self {
        clock.in_flight.fetch_add(1, Ordering::AcqRel);
        clock.served.fetch_add(1, Ordering::AcqRel);
        clock.head_started.store(NONE, Ordering::Release);
        Self(Arc::clone(clock))
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.idle_since.store(self.0.now(), Ordering::Release);
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A response body that ends its request's [`InFlight`] when hyper drops it.
struct Tracked {
    inner: Body,
    _request: InFlight,
}

impl http_body::Body for Tracked {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// The socket, noting when bytes of a new request head arrive on an idle connection.
struct Watched {
    inner: TcpStream,
    clock: Arc<Clock>,
}

impl AsyncRead for Watched {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let res = Pin::new(&mut self.inner).poll_read(cx, buf);
        let c = &self.clock;
        if buf.filled().len() > before
            && c.in_flight.load(Ordering::Acquire) == 0
            && c.head_started.load(Ordering::Acquire) == NONE
        {
            c.head_started.store(c.now(), Ordering::Release);
        }
        res
    }
}

impl AsyncWrite for Watched {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}
