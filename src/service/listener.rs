//! The callback listener (axum): `GET|POST /notify/{provider_id}` for every configured
//! provider, and the bridge page `GET /pay/{order_no}` for providers whose create is a form
//! the payer's browser submits. Everything else is 404.
//!
//! Invariant: a callback changes an order only through [`ServiceHandle::handle_callback`],
//! which verifies it first; bodies over [`MAX_BODY`] are refused before they are read, and a
//! client that sends too slowly is cut off.

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, RawQuery, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::Html;
use axum::response::IntoResponse;
use axum::routing::{any, get};

use super::ServiceHandle;
use crate::providers::CallbackRequest;

/// The largest callback body accepted.
pub const MAX_BODY: usize = 64 * 1024;

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

/// Serves callbacks on a bound socket until the runtime stops.
///
/// # Errors
/// When the socket's address cannot be read.
pub fn serve(socket: tokio::net::TcpListener, service: ServiceHandle) -> std::io::Result<Listener> {
    let addr = socket.local_addr()?;
    let app = Router::new()
        .route("/notify/{provider_id}", any(notify))
        .route("/pay/{order_no}", get(bridge))
        .fallback(|| async { (StatusCode::NOT_FOUND, "not found") })
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(service);
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
