//! The embedded sandbox: simulators that speak each provider's wire protocol on loopback
//! (axum, random port). It is the demo/training mode and the test double for everything else.
//!
//! Layout: each protocol is mounted under `/{kind}` (e.g. `/ispay/gateway`); the control API
//! under `/_sandbox` lets the demo button and tests pay, confirm or expire an order.
//!
//! Invariants: every field and signature is checked exactly as the protocol's document
//! defines; a notify is only ever sent to a loopback address, so the sandbox never talks to
//! the outside world.

pub mod ispay;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Json};
use axum::routing::{get, post};

use crate::model::Channel;
use crate::providers::Provider;

/// How the simulated provider behaves.
#[derive(Clone, Debug)]
pub struct SandboxOptions {
    /// Time from create until the QR is issued.
    pub qr_delay: Duration,
    /// An order's lifetime, reported to the till as `timeout`.
    pub order_timeout: Duration,
    /// Pay every order by itself after this long (for unattended demos and benchmarks).
    pub auto_pay_after: Option<Duration>,
}

impl Default for SandboxOptions {
    fn default() -> Self {
        SandboxOptions {
            qr_delay: Duration::from_millis(300),
            order_timeout: Duration::from_secs(300),
            auto_pay_after: None,
        }
    }
}

/// A running sandbox.
#[derive(Clone)]
pub struct Sandbox {
    /// `http://127.0.0.1:PORT`.
    pub base_url: String,
    /// The bound address.
    pub addr: SocketAddr,
    state: Shared,
}

/// One simulated order, whatever its protocol.
#[derive(Clone, Debug)]
pub struct SimOrder {
    /// The protocol (`ispay` …).
    pub kind: &'static str,
    /// The provider's id for it.
    pub id: String,
    /// The merchant's (our) order number.
    pub order_no: String,
    /// The amount exactly as the merchant sent it.
    pub amount: String,
    /// The wallet.
    pub channel: Channel,
    /// Where to send the notify.
    pub notify_url: String,
    /// The provider's state code.
    pub state: i64,
    /// The QR payload text.
    pub qr_text: String,
    /// When it was created.
    pub created: Instant,
    /// The wall-clock creation time, for answers that show it.
    pub created_at: chrono::DateTime<chrono::Local>,
    /// The other fields as received, for answers that echo them.
    pub fields: HashMap<String, String>,
}

#[derive(Default)]
struct SandboxState {
    orders: Vec<SimOrder>,
    next_id: u64,
}

#[derive(Clone)]
struct Shared {
    inner: Arc<Mutex<SandboxState>>,
    options: SandboxOptions,
    http: reqwest::Client,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, SandboxState> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A fresh provider order id: 18 digits, like the seeds' examples.
    fn new_id(&self) -> String {
        let mut state = self.lock();
        state.next_id += 1;
        format!(
            "4248{:014}",
            state.next_id + u64::from(fastrand::u16(..)) * 1_000_000
        )
    }

    /// Advances time-driven states: QR issued after the delay, expiry, auto-pay. Returns the
    /// orders that just became paid, whose notify must go out.
    fn tick(&self) -> Vec<SimOrder> {
        let mut paid = Vec::new();
        let now = Instant::now();
        for order in &mut self.lock().orders {
            let age = now.duration_since(order.created);
            if order.state == 1 && age >= self.options.qr_delay {
                order.state = 5;
            }
            if let Some(after) = self.options.auto_pay_after
                && matches!(order.state, 1 | 2 | 5 | 8)
                && age >= after
            {
                order.state = 9;
                paid.push(order.clone());
            }
            if matches!(order.state, 1 | 2 | 5) && age >= self.options.order_timeout {
                order.state = 6;
            }
        }
        paid
    }

    /// Sets an order's state by our order number; returns it after the change.
    fn set_state(&self, order_no: &str, state: i64) -> Option<SimOrder> {
        let mut guard = self.lock();
        let order = guard.orders.iter_mut().find(|o| o.order_no == order_no)?;
        order.state = state;
        Some(order.clone())
    }

    fn send_notify(&self, order: SimOrder) {
        let Some(request) = (match order.kind {
            ispay::KIND => Some(ispay::notify_url(&order)),
            _ => None,
        }) else {
            return;
        };
        if !is_loopback_url(&request) {
            tracing::info!(order_no = %order.order_no, "sandbox: notify URL is not on this machine, not sent");
            return;
        }
        let http = self.http.clone();
        tokio::spawn(async move {
            match http.get(&request).send().await {
                Ok(response) => {
                    tracing::debug!(order_no = %order.order_no, status = %response.status(), "sandbox notify sent");
                }
                Err(err) => {
                    tracing::debug!(order_no = %order.order_no, "sandbox notify not delivered: {err}")
                }
            }
        });
    }
}

fn is_loopback_url(text: &str) -> bool {
    let Ok(url) = url::Url::parse(text) else {
        return false;
    };
    match url.host() {
        Some(url::Host::Domain(domain)) => domain == "localhost",
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        None => false,
    }
}

impl Sandbox {
    /// Starts the sandbox on `addr` (port 0 = any free port).
    ///
    /// # Errors
    /// When the address cannot be bound.
    pub async fn start(addr: SocketAddr, options: SandboxOptions) -> std::io::Result<Sandbox> {
        let socket = tokio::net::TcpListener::bind(addr).await?;
        let addr = socket.local_addr()?;
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(3))
            .build()
            .map_err(std::io::Error::other)?;
        let state = Shared {
            inner: Arc::default(),
            options,
            http,
        };
        let app = Router::new()
            .nest("/ispay", ispay::routes())
            .route("/_sandbox/orders", get(list_orders))
            .route("/_sandbox/orders/{order_no}/pay", post(pay))
            .route("/_sandbox/orders/{order_no}/confirm", post(confirm))
            .route("/_sandbox/orders/{order_no}/expire", post(expire))
            .route("/_sandbox/orders/{order_no}/state/{state}", post(set_state))
            .fallback(|| async { (StatusCode::NOT_FOUND, "not found") })
            .with_state(state.clone());
        tokio::spawn(async move {
            if let Err(err) = axum::serve(socket, app).await {
                tracing::error!("sandbox stopped: {err}");
            }
        });
        Ok(Sandbox {
            base_url: format!("http://{addr}"),
            addr,
            state,
        })
    }

    /// The control API's base URL (`…/_sandbox`).
    pub fn control_url(&self) -> String {
        format!("{}/_sandbox", self.base_url)
    }

    /// The base URL of one protocol's simulator.
    pub fn url_for(&self, kind: &str) -> String {
        format!("{}/{kind}", self.base_url)
    }

    /// Provider accounts for demo mode, one per protocol, with the sandbox's credentials.
    pub fn demo_providers(&self) -> Vec<Arc<dyn Provider>> {
        vec![Arc::new(ispay::demo_account(&self.url_for(ispay::KIND)))]
    }

    /// A config file that points every protocol at this sandbox.
    pub fn demo_config(&self) -> String {
        format!(
            "# qrtill config for the sandbox at {base}\n\
             default_provider = \"demo-ispay\"\n\
             operator = \"demo\"\n\n\
             [listener]\nlisten = \"127.0.0.1:0\"\n\n{ispay}",
            base = self.base_url,
            ispay = ispay::demo_config(&self.url_for(ispay::KIND)),
        )
    }

    /// Every simulated order (for tests).
    pub fn orders(&self) -> Vec<SimOrder> {
        self.state.tick_and_notify();
        self.state.lock().orders.clone()
    }

    /// Sets an order's provider state by our order number, sending the notify for a payment.
    /// Returns whether the order exists.
    pub fn set_state(&self, order_no: &str, state: i64) -> bool {
        control(&self.state, order_no, state)
    }
}

impl Shared {
    fn tick_and_notify(&self) {
        for order in self.tick() {
            self.send_notify(order);
        }
    }
}

/// The states a control call may set, by protocol: ispay.in's table.
fn control(state: &Shared, order_no: &str, code: i64) -> bool {
    state.tick_and_notify();
    match state.set_state(order_no, code) {
        Some(order) => {
            if code == 9 {
                state.send_notify(order);
            }
            true
        }
        None => false,
    }
}

async fn list_orders(State(state): State<Shared>) -> impl IntoResponse {
    state.tick_and_notify();
    let orders: Vec<serde_json::Value> = state
        .lock()
        .orders
        .iter()
        .map(|o| {
            serde_json::json!({
                "kind": o.kind, "id": o.id, "order_no": o.order_no, "amount": o.amount,
                "channel": o.channel.as_str(), "state": o.state, "qr": o.qr_text,
                "notify_url": o.notify_url,
            })
        })
        .collect();
    Json(orders)
}

fn control_answer(found: bool) -> (StatusCode, &'static str) {
    if found {
        (StatusCode::OK, "ok")
    } else {
        (StatusCode::NOT_FOUND, "no such order")
    }
}

async fn pay(State(state): State<Shared>, Path(order_no): Path<String>) -> impl IntoResponse {
    control_answer(control(&state, &order_no, 9))
}

async fn confirm(State(state): State<Shared>, Path(order_no): Path<String>) -> impl IntoResponse {
    control_answer(control(&state, &order_no, 8))
}

async fn expire(State(state): State<Shared>, Path(order_no): Path<String>) -> impl IntoResponse {
    control_answer(control(&state, &order_no, 6))
}

async fn set_state(
    State(state): State<Shared>,
    Path((order_no, code)): Path<(String, i64)>,
) -> impl IntoResponse {
    control_answer(control(&state, &order_no, code))
}
