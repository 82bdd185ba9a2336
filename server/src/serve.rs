//! Accepting connections, with the limits a hostile client runs into: a deadline for a
//! request's headers, counted from the accept for a new connection (so a socket that never
//! sends a byte is closed at it too) and also the longest a kept-alive connection may sit
//! idle; a deadline for its body; a cap on open connections, and one per client address on
//! those that have not sent a whole request yet. A response that is being written — a long
//! stream above all — is never cut: the header deadline runs only while a connection waits
//! for its next request.

use crate::throttle::Network;
use axum::{body::Body, extract::ConnectInfo, Router};
use http_body::{Body as HttpBody, Frame, SizeHint};
use hyper::body::Incoming;
use hyper_util::{
    rt::{TokioExecutor, TokioIo, TokioTimer},
    server::{conn::auto, graceful::GracefulShutdown},
    service::TowerToHyperService,
};
use std::{
    collections::HashMap,
    future::Future,
    net::IpAddr,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};
use tokio::{net::TcpListener, sync::Semaphore, time::Instant};
use tower::ServiceExt;

/// How long requests in flight may take to finish once shutdown has begun.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// For a request's headers to arrive, counted from when the connection starts waiting for
    /// them (so also the longest idle keep-alive).
    pub header_timeout: Duration,
    /// For a request's whole body to arrive, counted from its headers.
    pub body_timeout: Duration,
    /// Connections open at once; more wait in the kernel's backlog.
    pub max_connections: usize,
    /// Connections one address may hold before they have sent a whole request once half the
    /// slots are taken; more are closed at once.
    pub unanswered_per_address: usize,
}

/// Connections per client address that have not sent a whole request yet.
#[derive(Default)]
struct Unanswered(std::sync::Mutex<HashMap<IpAddr, usize>>);

impl Unanswered {
    fn counts(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, usize>> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Counts a new connection from `ip`, unless slots are `scarce` and it already holds
    /// `cap`: a burst of real requests is never cut while there is room for everyone.
    fn admit(self: &Arc<Self>, ip: IpAddr, cap: usize, scarce: bool) -> Option<Waiting> {
        let mut counts = self.counts();
        let count = counts.entry(ip).or_insert(0);
        if scarce && *count >= cap {
            return None;
        }
        *count += 1;
        Some(Waiting {
            ip,
            counts: Some(self.clone()),
        })
    }
}

/// A connection counted as not having sent a whole request: uncounted when its first request
/// arrives, or when it closes.
struct Waiting {
    ip: IpAddr,
    counts: Option<Arc<Unanswered>>,
}

impl Waiting {
    fn answered(&mut self) {
        if let Some(all) = self.counts.take() {
            let mut counts = all.counts();
            if let Some(count) = counts.get_mut(&self.ip) {
                *count = count.saturating_sub(1);
                if *count == 0 {
                    counts.remove(&self.ip);
                }
            }
        }
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        self.answered();
    }
}

/// The body did not arrive within [`Limits::body_timeout`].
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive within {0:?}")]
pub struct BodyTimeout(pub Duration);

/// A request body that fails once its deadline has passed.
struct DeadlineBody {
    inner: Incoming,
    sleep: Pin<Box<tokio::time::Sleep>>,
    timeout: Duration,
}

impl HttpBody for DeadlineBody {
    type Data = axum::body::Bytes;
    type Error = axum::BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        if let Poll::Ready(frame) = Pin::new(&mut self.inner).poll_frame(cx) {
            return Poll::Ready(frame.map(|f| f.map_err(Into::into)));
        }
        if self.sleep.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Some(Err(BodyTimeout(self.timeout).into())));
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Serves `app` on `listener` until `shutdown` resolves, then lets requests in flight finish
/// (for at most [`DRAIN_TIMEOUT`]).
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    uncapped: Arc<[Network]>,
    shutdown: impl Future<Output = ()>,
) {
    let unanswered = Arc::new(Unanswered::default());
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(Some(Duration::from_secs(30)));
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            permit = slots.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
            () = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    // Out of file descriptors and the like: wait a moment rather than spin.
                    tracing::warn!(%err, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let waiting = if uncapped.iter().any(|n| n.contains(peer.ip())) {
            None
        } else {
            // Slots are scarce once half of them are taken.
            let scarce = slots.available_permits() < limits.max_connections.div_ceil(2);
            let counted = crate::throttle::counted_as(peer.ip());
            match unanswered.admit(counted, limits.unanswered_per_address, scarce) {
                Some(waiting) => Some(waiting),
                // This address holds its share of silent connections already.
                None => continue,
            }
        };
        let waiting = Arc::new(std::sync::Mutex::new(waiting));
        let app = app.clone();
        let body_timeout = limits.body_timeout;
        let header_timeout = limits.header_timeout;
        let first = waiting.clone();
        let service = tower::service_fn(move |request: hyper::Request<Incoming>| {
            if let Some(waiting) = first
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .as_mut()
            {
                waiting.answered();
            }
            let app = app.clone();
            let mut request = request.map(|inner| {
                Body::new(DeadlineBody {
                    inner,
                    sleep: Box::pin(tokio::time::sleep_until(Instant::now() + body_timeout)),
                    timeout: body_timeout,
                })
            });
            request.extensions_mut().insert(ConnectInfo(peer));
            async move { app.oneshot(request).await }
        });
        let builder = builder.clone();
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            // A new connection's header deadline counts from the accept: one that sends
            // nothing is closed at it (hyper's own deadline starts with the first byte).
            let mut first_byte = [0u8; 1];
            match tokio::time::timeout(header_timeout, stream.peek(&mut first_byte)).await {
                Ok(Ok(n)) if n > 0 => {}
                _ => return,
            }
            let connection = builder
                .serve_connection_with_upgrades(
                    TokioIo::new(stream),
                    TowerToHyperService::new(service),
                )
                .into_owned();
            let _ = watcher.watch(connection).await;
            drop(waiting);
            drop(permit);
        });
    }
    drop(listener);
    if tokio::time::timeout(DRAIN_TIMEOUT, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("requests still running after {DRAIN_TIMEOUT:?}; closing them");
    }
}
