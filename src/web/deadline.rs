//! Bounds on slow clients, so a few thousand dripping connections cannot hold the server.
//!
//! - actix-web bounds the first request's headers (`client_request_timeout`).
//! - A watchdog per connection bounds every later request's headers: once a response is
//!   done (or the connection opened), the next request must arrive whole within the
//!   timeout, or the connection is shut down. Connections busy with a request are left
//!   alone.
//! - Every request body is wrapped so it must arrive within the timeout of its headers,
//!   and never grows past `MAX_BODY_BYTES` on any route.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use actix_web::HttpMessage as _;
use actix_web::body::BoxBody;
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::error::PayloadError;
use actix_web::http::header;
use actix_web::middleware::Next;
use actix_web::web::Bytes;
use futures_util::Stream;
use tokio::sync::Notify;
use tokio::time::{Instant, Sleep};

use super::MAX_BODY_BYTES;

/// The configured bound, registered as app data for the middleware.
#[derive(Debug, Clone, Copy)]
pub struct RequestTimeout(pub Duration);

/// Milliseconds since the first call, a cheap monotonic clock for the atomics below.
fn now_ms() -> u64 {
    static START: OnceLock<Instant> = OnceLock::new();
    START.get_or_init(Instant::now).elapsed().as_millis() as u64
}

/// What a connection's requests tell its watchdog.
#[derive(Default)]
struct Activity {
    in_flight: AtomicUsize,
    /// When the connection last became idle (opened, or finished a response).
    idle_since_ms: AtomicU64,
    closed: Notify,
}

/// Lives in the connection's data; dropping it (the connection ended) stops the watchdog.
pub struct Connection(Arc<Activity>);

impl Drop for Connection {
    fn drop(&mut self) {
        self.0.closed.notify_one();
    }
}

/// Starts watching a new plain-TCP connection (`HttpServer::on_connect`).
pub fn watch(
    connection: &dyn std::any::Any,
    data: &mut actix_web::dev::Extensions,
    timeout: Duration,
) {
    #[cfg(unix)]
    {
        use std::os::fd::AsFd;
        let Some(stream) = connection.downcast_ref::<actix_web::rt::net::TcpStream>() else {
            return;
        };
        // A duplicate of the socket, only ever used to shut it down.
        let Ok(socket) = stream.as_fd().try_clone_to_owned() else {
            return;
        };
        let activity = Arc::new(Activity::default());
        activity.idle_since_ms.store(now_ms(), Ordering::SeqCst);
        data.insert(Connection(activity.clone()));
        actix_web::rt::spawn(watchdog(activity, socket, timeout));
    }
    #[cfg(not(unix))]
    let _ = (connection, data, timeout);
}

#[cfg(unix)]
async fn watchdog(activity: Arc<Activity>, socket: std::os::fd::OwnedFd, timeout: Duration) {
    let timeout_ms = timeout.as_millis() as u64;
    loop {
        let idle_since = activity.idle_since_ms.load(Ordering::SeqCst);
        let wake = Instant::now()
            + Duration::from_millis((idle_since + timeout_ms).saturating_sub(now_ms()));
        tokio::select! {
            () = activity.closed.notified() => return,
            () = tokio::time::sleep_until(wake) => {}
        }
        let idle = activity.in_flight.load(Ordering::SeqCst) == 0;
        let since = activity.idle_since_ms.load(Ordering::SeqCst);
        if idle && now_ms() >= since + timeout_ms {
            tracing::debug!("connection cut: no complete request within the timeout");
            let _ = std::net::TcpStream::from(socket).shutdown(std::net::Shutdown::Both);
            return;
        }
        if !idle {
            // Busy: look again a timeout later (the request itself is bounded elsewhere).
            activity.idle_since_ms.fetch_max(now_ms(), Ordering::SeqCst);
        }
    }
}

/// Marks the connection busy while a request is handled.
struct Busy(Option<Arc<Activity>>);

impl Busy {
    fn start(req: &ServiceRequest) -> Self {
        let activity = req.conn_data::<Connection>().map(|c| c.0.clone());
        if let Some(a) = &activity {
            a.in_flight.fetch_add(1, Ordering::SeqCst);
        }
        Self(activity)
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        if let Some(a) = &self.0 {
            a.idle_since_ms.store(now_ms(), Ordering::SeqCst);
            a.in_flight.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

/// The middleware: marks the connection busy and bounds the body in time and size.
pub async fn bound_requests(
    mut req: ServiceRequest,
    next: Next<BoxBody>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let _busy = Busy::start(&req);
    let has_body = req.headers().contains_key(header::TRANSFER_ENCODING)
        || req
            .headers()
            .get(header::CONTENT_LENGTH)
            .is_some_and(|v| v.as_bytes() != b"0");
    if has_body {
        let timeout = req
            .app_data::<RequestTimeout>()
            .map_or(Duration::from_secs(10), |t| t.0);
        let inner = req.take_payload();
        let bounded: Pin<Box<dyn Stream<Item = Result<Bytes, PayloadError>>>> =
            Box::pin(BoundedBody {
                inner,
                deadline: Box::pin(tokio::time::sleep(timeout)),
                read: 0,
                done: false,
            });
        req.set_payload(Payload::from(bounded));
    }
    next.call(req).await
}

/// The error a body that did not arrive in time ends with.
pub fn body_timed_out() -> PayloadError {
    PayloadError::Io(std::io::Error::new(
        std::io::ErrorKind::TimedOut,
        "the request body did not arrive in time",
    ))
}

/// Whether `error` is the one `body_timed_out` makes.
pub fn is_timeout(error: &PayloadError) -> bool {
    matches!(error, PayloadError::Io(e) if e.kind() == std::io::ErrorKind::TimedOut)
}

struct BoundedBody {
    inner: Payload,
    deadline: Pin<Box<Sleep>>,
    read: usize,
    done: bool,
}

impl Stream for BoundedBody {
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.done {
            return Poll::Ready(None);
        }
        match Pin::new(&mut self.inner).poll_next(cx) {
            Poll::Ready(Some(Ok(chunk))) => {
                self.read += chunk.len();
                if self.read > MAX_BODY_BYTES {
                    self.done = true;
                    return Poll::Ready(Some(Err(PayloadError::Overflow)));
                }
                Poll::Ready(Some(Ok(chunk)))
            }
            Poll::Ready(other) => Poll::Ready(other),
            Poll::Pending => {
                if self.deadline.as_mut().poll(cx).is_ready() {
                    self.done = true;
                    return Poll::Ready(Some(Err(body_timed_out())));
                }
                Poll::Pending
            }
        }
    }
}
