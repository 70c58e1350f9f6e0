//! The HTTP server loop. axum's `serve` takes every connection it can and keeps each as long
//! as the client likes; this one bounds both, so thousands of clients cost bounded memory:
//! at most `server.max_connections` are open (the rest wait in the kernel's backlog), and a
//! connection that sends no complete request head within `server.header_read_timeout_seconds`
//! (a slow client, or an idle keep-alive) is closed. Between its requests a connection holds
//! only its socket: each request gets an HTTP connection of its own, made once its bytes have
//! come and intake (`super::intake`) has given it a place. Each request is admitted (see
//! `super::admission`) before the router sees it.

use std::convert::Infallible;
use std::future::Future;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures::FutureExt;
use futures::future::BoxFuture;
use hyper::body::Incoming;
use hyper::header::HeaderValue;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::Service;

use super::admission::Admission;
use super::error::AppError;
use super::intake::{Connection, Intake, IntakeStream, ObservedBody};
use super::layers::REQUEST_ID_HEADER;

/// After an accept error (out of file descriptors, say), a pause before the next accept, so the
/// loop does not spin while connections close.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(50);

/// How long a shed request's body is waited for, and up to what size it is read.
const SHED_BODY_WAIT: Duration = Duration::from_millis(10);
const SHED_BODY_LIMIT: usize = 64 * 1024;

pub struct ConnectionLimits {
    pub max_connections: usize,
    pub header_read_timeout: Duration,
}

/// Serves `router` on `listener` until `shutdown` resolves, then stops accepting and waits at
/// most `grace` for the connections still answering.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    admission: Admission,
    intake: Intake,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()>,
    grace: Duration,
) {
    // HTTP/1.1 only: sniffing for an HTTP/2 preface waits on the client with no timeout, so a
    // silent connection would escape the header timeout. hyper's own HTTP/1 connection, not
    // hyper-util's auto one: the auto one also carries a copy of its builder, HTTP/2 settings
    // included, in every connection.
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        // While a request is being answered, hyper by default keeps reading, to notice a
        // client that hangs up; each such read reserves a fresh 8 KiB buffer, as the old one
        // is still pinned by the request's head and body. A sale parks thousands of requests
        // at once for a handler slot, and that buffer would be most of what each one costs. A
        // client that hangs up mid-request is noticed when its answer is written instead.
        .half_close(true);
    let builder = Arc::new(builder);
    let open = Arc::new(Semaphore::new(limits.max_connections));
    let overdue = tokio::spawn(intake.clone().let_in_overdue_forever());
    let stopping = CancellationToken::new();
    let connections = TaskTracker::new();
    let mut shutdown = pin!(shutdown);
    loop {
        let slot = tokio::select! {
            slot = open.clone().acquire_owned() => slot,
            () = &mut shutdown => break,
        };
        let Ok(slot) = slot else { break };
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(error) => {
                    tracing::warn!(%error, "cannot accept a connection");
                    tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        // Answers are small; waiting to fill a packet only adds latency.
        if let Err(error) = stream.set_nodelay(true) {
            tracing::debug!(%error, "cannot set TCP_NODELAY");
        }
        let service = RouterService {
            router: router.clone(),
            admission: admission.clone(),
            connection: intake.connection(),
        };
        let exchanges = Exchanges {
            builder: builder.clone(),
            idle_timeout: limits.header_read_timeout,
            stopping: stopping.clone(),
        };
        // `map`, not an `async move` block awaiting the connection: such a block keeps room
        // for the connection twice (the captured one and the one being awaited), and each of
        // thousands of open connections is one task.
        connections.spawn(exchanges.serve(stream, service).map(move |()| drop(slot)));
    }
    drop(listener);
    overdue.abort();
    stopping.cancel();
    connections.close();
    if tokio::time::timeout(grace, connections.wait())
        .await
        .is_err()
    {
        tracing::warn!(?grace, "open connections did not finish in time");
    }
}

/// What serves a connection's requests one exchange at a time.
struct Exchanges {
    builder: Arc<http1::Builder>,
    /// How long a connection may stay open with no request coming.
    idle_timeout: Duration,
    stopping: CancellationToken,
}

impl Exchanges {
    /// Serves a connection until the client leaves, it idles past the timeout, or the server
    /// stops. Each request gets an HTTP connection of its own over the socket, made once its
    /// first bytes have come and it has an intake place: between requests the connection
    /// holds only its socket, not hyper's state and its two 8 KiB buffers (a page of each in
    /// use once it has answered). Thousands of clients waiting for their next answer cost
    /// about 1.2 KiB each (`cargo bench --bench connections`, benches/README.md).
    async fn serve(self, mut stream: TcpStream, mut service: RouterService) {
        let connection = service.connection.clone();
        let mut leftover = Bytes::new();
        loop {
            let next = tokio::select! {
                next = connection.next_request(&stream, &leftover) => next,
                () = tokio::time::sleep(self.idle_timeout) => return,
                () = self.stopping.cancelled() => return,
            };
            match next {
                Ok(true) => {}
                Ok(false) => return,
                Err(error) => {
                    tracing::trace!(%error, "connection failed while idle");
                    return;
                }
            }
            let io = IntakeStream::new(stream, connection.clone(), std::mem::take(&mut leftover));
            // Boxed: only an exchange in progress needs room for hyper's connection.
            let mut http = Box::new(self.builder.serve_connection(TokioIo::new(io), service));
            if let Err(error) = self.exchange(&mut http).await {
                tracing::trace!(%error, "connection ended with an error");
                return;
            }
            let parts = http.into_parts();
            service = parts.service;
            match parts.io.into_inner().into_reusable(parts.read_buf) {
                Some(reusable) if !self.stopping.is_cancelled() => (stream, leftover) = reusable,
                // The client left, or hyper ended the connection (`Connection: close`).
                _ => return,
            }
        }
    }

    /// Runs one exchange to its end, winding it up gracefully if the server stops meanwhile.
    async fn exchange(
        &self,
        http: &mut http1::Connection<TokioIo<IntakeStream>, RouterService>,
    ) -> hyper::Result<()> {
        let mut stopping = pin!(self.stopping.cancelled());
        let mut winding_up = false;
        std::future::poll_fn(|cx| {
            if !winding_up && stopping.as_mut().poll(cx).is_ready() {
                winding_up = true;
                Pin::new(&mut *http).graceful_shutdown();
            }
            http.poll_without_shutdown(cx)
        })
        .await
    }
}

/// The router as hyper's service. A request waits for its handler slot here, before the
/// router: while it waits it holds only itself and this future, not the state every
/// middleware keeps for it (a sale opening parks thousands of writes at once).
#[derive(Clone)]
struct RouterService {
    router: Router,
    admission: Admission,
    connection: Arc<Connection>,
}

impl hyper::service::Service<hyper::Request<Incoming>> for RouterService {
    type Response = Response;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Response, Infallible>>;

    fn call(&self, request: hyper::Request<Incoming>) -> Self::Future {
        // The router is always ready; `call` takes it by `&mut`, so a clone (an `Arc`) answers.
        let mut router = self.router.clone();
        let admission = self.admission.clone();
        let (intake_place, arrived, request) = self.connection.answering(request);
        async move {
            let admitted = match admission
                .admit(request.method(), request.uri().path(), arrived)
                .await
            {
                Ok(admitted) => admitted,
                Err(shed) => return Ok(shed_answer(shed, request).await),
            };
            let Ok(response) = router.call(request).await;
            drop(admitted);
            drop(intake_place);
            Ok(response)
        }
        .boxed()
    }
}

/// A shed request's answer, with the request id the middleware would have given it. The body
/// is read first if it comes at once (it usually came with the head), so the connection's
/// exchange can end and its HTTP state go while the client decides whether to try again.
async fn shed_answer(shed: AppError, request: hyper::Request<ObservedBody>) -> Response {
    let (head, body) = request.into_parts();
    let _ = tokio::time::timeout(
        SHED_BODY_WAIT,
        axum::body::to_bytes(axum::body::Body::new(body), SHED_BODY_LIMIT),
    )
    .await;
    let mut response = shed.into_response();
    let id = match head.headers.get(REQUEST_ID_HEADER) {
        Some(id) => Some(id.clone()),
        None => HeaderValue::from_str(&uuid::Uuid::new_v4().to_string()).ok(),
    };
    if let Some(id) = id {
        response.headers_mut().insert(REQUEST_ID_HEADER, id);
    }
    response
}
