//! Connections: the accept loop of `ratchet serve`, with the bounds that
//! keep slow or half-sent requests from holding connections, and a
//! shutdown that ends within a bounded time.
//!
//! Written over hyper's HTTP/1 connection builder (rather than
//! `axum::serve`, which sets none of these) so that:
//! - **headers** must arrive within [`ConnLimits::header`] of the
//!   connection waiting for them: half-sent headers, a slowloris trickle and
//!   an idle keep-alive connection are all closed then (hyper's
//!   `header_read_timeout`, which starts whenever a request head is awaited);
//! - **headers are bounded in size** ([`MAX_HEAD_BYTES`]): a larger head is
//!   answered 431 by hyper;
//! - **bodies** are bounded by the handlers ([`crate::serve::body`]): size,
//!   idle time between frames and total time;
//! - **writes** that make no progress for [`ConnLimits::write_stall`] (a
//!   client that stops reading its response) fail and close the connection
//!   ([`StallGuard`]);
//! - **shutdown** (SIGINT/SIGTERM): the listener closes, idle connections
//!   close at once, requests in flight may finish, and after
//!   [`ConnLimits::shutdown_grace`] whatever is left is dropped.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::{Instant, Sleep};
use tower::ServiceExt;

/// The largest request head (request line and headers) a client may send.
pub const MAX_HEAD_BYTES: usize = 64 << 10;

/// The time bounds of connections.
#[derive(Clone, Copy, Debug)]
pub struct ConnLimits {
    /// Longest wait for a complete request head (also the keep-alive idle time).
    pub header: Duration,
    /// Longest a response write may make no progress.
    pub write_stall: Duration,
    /// Longest the server waits for requests in flight after a stop signal.
    pub shutdown_grace: Duration,
}

impl Default for ConnLimits {
    fn default() -> Self {
        ConnLimits {
            header: Duration::from_secs(10),
            write_stall: Duration::from_secs(30),
            shutdown_grace: Duration::from_secs(10),
        }
    }
}

/// Serves `app` on `listener` until `stop` resolves, then drains as the
/// module doc says. Returns whether every connection ended within the grace.
pub async fn serve(listener: TcpListener, app: Router, limits: ConnLimits, stop: impl Future<Output = ()>) -> bool {
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder.timer(TokioTimer::new()).header_read_timeout(limits.header).max_buf_size(MAX_HEAD_BYTES);
    tokio::pin!(stop);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: wait a little
                    // (the header timeout frees connections) instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut stop => break,
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
            req.extensions_mut().insert(ConnectInfo(peer));
            app.clone().oneshot(req.map(axum::body::Body::new))
        });
        let conn = builder.serve_connection(TokioIo::new(StallGuard::new(stream, limits.write_stall)), service);
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    tracing::info!(grace_s = limits.shutdown_grace.as_secs_f64(), "shutting down: finishing requests in flight");
    tokio::time::timeout(limits.shutdown_grace, graceful.shutdown()).await.is_ok()
}

/// A TCP stream whose writes fail once they have made no progress for
/// `stall`; reads are untouched (their bounds are hyper's header timeout
/// and the body reader's).
pub struct StallGuard {
    inner: TcpStream,
    stall: Duration,
    timer: Option<Pin<Box<Sleep>>>,
}

impl StallGuard {
    pub fn new(inner: TcpStream, stall: Duration) -> StallGuard {
        StallGuard { inner, stall, timer: None }
    }

    fn on_write<T>(&mut self, cx: &mut Context<'_>, r: Poll<io::Result<T>>) -> Poll<io::Result<T>> {
        match r {
            Poll::Ready(r) => {
                self.timer = None;
                Poll::Ready(r)
            }
            Poll::Pending => {
                let stall = self.stall;
                let timer =
                    self.timer.get_or_insert_with(|| Box::pin(tokio::time::sleep_until(Instant::now() + stall)));
                ready!(timer.as_mut().poll(cx));
                self.timer = None;
                Poll::Ready(Err(io::Error::new(io::ErrorKind::TimedOut, "the client stopped reading the response")))
            }
        }
    }
}

impl AsyncRead for StallGuard {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for StallGuard {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.on_write(cx, r)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.on_write(cx, r)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let r = Pin::new(&mut self.inner).poll_flush(cx);
        self.on_write(cx, r)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
