//! The callback listener (axum): `GET|POST /notify/{provider_id}` for every configured
//! provider, and the bridge page `GET /pay/{order_no}` for providers whose create is a form
//! the payer's browser submits. Everything else is 404.
//!
//! Invariant: a callback changes an order only through [`ServiceHandle::handle_callback`],
//! which verifies it first. Hostile clients cost little: a body over [`MAX_BODY`] is refused
//! (413) without being kept, a body that does not arrive within [`Limits::body`] is answered
//! 408, no connection lives longer than [`Limits::connection`] (headers trickled in byte by
//! byte, or a connection held open and idle, are cut off), and any other path is a 404 that
//! touches nothing.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, Path, RawQuery, Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::IntoResponse;
use axum::response::{Html, Response};
use axum::routing::{any, get};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

use super::ServiceHandle;
use crate::providers::CallbackRequest;

/// The largest callback body accepted.
pub const MAX_BODY: usize = 64 * 1024;

/// How long a client may take; [`Limits::default`] is what the till uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// A request's whole body must arrive within this (from when its headers were read).
    pub body: Duration,
    /// A connection is closed this long after it was accepted, whatever it is doing: the
    /// bound on a client that trickles its headers in or holds a connection open. A
    /// provider's notify takes well under a second; one cut off is sent again.
    pub connection: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            body: Duration::from_secs(10),
            connection: Duration::from_secs(30),
        }
    }
}

/// A bound listener, serving in the background.
pub struct Listener {
    /// The address it is bound to.
    pub addr: SocketAddr,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

impl Listener {
    /// Stops taking connections and waits (at most `grace`) for the answers in flight, so a
    /// provider whose notify was just applied still gets its `success`.
    pub async fn shutdown(self, grace: Duration) {
        let _ = self.stop.send(());
        if tokio::time::timeout(grace, self.task).await.is_err() {
            tracing::warn!("callback listener: answers still in flight after {grace:?}");
        }
    }
}

/// Binds the listener's socket (so its address is known before the service starts).
///
/// # Errors
/// When the address is taken or not allowed.
pub async fn bind(addr: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(addr).await
}

/// Serves callbacks on a bound socket until the runtime stops, with the default [`Limits`].
///
/// # Errors
/// When the socket's address cannot be read.
pub fn serve(socket: TcpListener, service: ServiceHandle) -> std::io::Result<Listener> {
    serve_with(socket, service, Limits::default())
}

/// Serves callbacks on a bound socket until the runtime stops, with these limits.
///
/// # Errors
/// When the socket's address cannot be read.
pub fn serve_with(
    socket: TcpListener,
    service: ServiceHandle,
    limits: Limits,
) -> std::io::Result<Listener> {
    let addr = socket.local_addr()?;
    let app = Router::new()
        .route("/notify/{provider_id}", any(notify))
        .route("/pay/{order_no}", get(bridge))
        .fallback(|| async { (StatusCode::NOT_FOUND, "not found") })
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(axum::middleware::from_fn(
            move |request: Request, next: Next| read_body_within(limits.body, request, next),
        ))
        .with_state(service);
    let socket = ShortLived {
        socket,
        lifetime: limits.connection,
    };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let serving = axum::serve(socket, app).with_graceful_shutdown(async move {
            // Only an explicit stop ends it; a dropped handle leaves it serving.
            if stopped.await.is_err() {
                std::future::pending::<()>().await;
            }
        });
        if let Err(err) = serving.await {
            tracing::error!("callback listener stopped: {err}");
        }
    });
    tracing::info!(%addr, "callback listener");
    Ok(Listener { addr, stop, task })
}

/// Reads the whole body (at most [`MAX_BODY`]) within `limit` before any handler runs, so a
/// client that sends its body slowly is answered 408 instead of holding a handler.
async fn read_body_within(limit: Duration, request: Request, next: Next) -> Response {
    let (parts, body) = request.into_parts();
    match tokio::time::timeout(limit, axum::body::to_bytes(body, MAX_BODY)).await {
        Ok(Ok(bytes)) => {
            next.run(Request::from_parts(parts, Body::from(bytes)))
                .await
        }
        Ok(Err(err)) => {
            let too_large = err.into_inner().is::<http_body_util::LengthLimitError>();
            if too_large {
                (StatusCode::PAYLOAD_TOO_LARGE, "body too large").into_response()
            } else {
                (StatusCode::BAD_REQUEST, "body unreadable").into_response()
            }
        }
        Err(_) => {
            tracing::warn!(path = %parts.uri.path(), "callback listener: body not received within {limit:?}");
            (StatusCode::REQUEST_TIMEOUT, "body too slow").into_response()
        }
    }
}

/// The listening socket, handing out connections that end after `lifetime`.
struct ShortLived {
    socket: TcpListener,
    lifetime: Duration,
}

impl axum::serve::Listener for ShortLived {
    type Io = Deadline;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            match self.socket.accept().await {
                Ok((stream, addr)) => {
                    let io = Deadline {
                        stream,
                        end: Box::pin(tokio::time::sleep(self.lifetime)),
                    };
                    return (io, addr);
                }
                Err(err) => {
                    // Out of file descriptors and the like: wait rather than spin.
                    tracing::warn!("callback listener: accept failed: {err}");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.socket.local_addr()
    }
}

/// A connection whose reads and writes fail once its deadline has passed, so the HTTP
/// server closes it whatever state it is in (the deadline's timer wakes a read that waits).
struct Deadline {
    stream: TcpStream,
    end: Pin<Box<tokio::time::Sleep>>,
}

impl Deadline {
    fn expired(&mut self, cx: &mut Context<'_>) -> Option<std::io::Error> {
        self.end.as_mut().poll(cx).is_ready().then(|| {
            std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "connection held longer than allowed",
            )
        })
    }
}

impl AsyncRead for Deadline {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        if let Some(err) = self.expired(cx) {
            return Poll::Ready(Err(err));
        }
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Deadline {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        if let Some(err) = self.expired(cx) {
            return Poll::Ready(Err(err));
        }
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

/// The bridge page: what the payer's phone opens from the QR of a form-post provider. It
/// submits the provider's signed form from the payer's own browser.
async fn bridge(
    State(service): State<ServiceHandle>,
    Path(order_no): Path<String>,
) -> impl IntoResponse {
    let page = match crate::model::OrderNo::new(&order_no) {
        Ok(order_no) => service.bridge_page(order_no).await,
        Err(_) => None,
    };
    match page {
        Some(html) => (StatusCode::OK, Html(html)).into_response(),
        None => (
            StatusCode::NOT_FOUND,
            Html(String::from(
                "<!doctype html><meta charset=\"utf-8\"><title>qrtill</title><p>订单不存在或已结束 / no such open order</p>",
            )),
        )
            .into_response(),
    }
}

async fn notify(
    State(service): State<ServiceHandle>,
    Path(provider_id): Path<String>,
    method: Method,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> impl IntoResponse {
    if method != Method::GET && method != Method::POST {
        return (StatusCode::METHOD_NOT_ALLOWED, String::from("GET or POST")).into_response();
    }
    let request = CallbackRequest {
        method: method.to_string(),
        query: query
            .map(|q| {
                url::form_urlencoded::parse(q.as_bytes())
                    .into_owned()
                    .collect()
            })
            .unwrap_or_default(),
        body: body.to_vec(),
        content_type: headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string),
        headers: headers
            .iter()
            .filter_map(|(name, value)| {
                value
                    .to_str()
                    .ok()
                    .map(|value| (name.as_str().to_string(), value.to_string()))
            })
            .collect(),
    };
    // A slow ledger must not hold the provider's connection for ever.
    let handled = tokio::time::timeout(
        Duration::from_secs(10),
        service.handle_callback(&provider_id, request),
    )
    .await;
    match handled {
        Ok(Some(ack)) => (
            StatusCode::from_u16(ack.status).unwrap_or(StatusCode::OK),
            ack.body,
        )
            .into_response(),
        Ok(None) => (StatusCode::NOT_FOUND, String::from("unknown provider")).into_response(),
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, String::from("busy")).into_response(),
    }
}
