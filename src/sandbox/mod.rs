//! The embedded sandbox: simulators that speak each provider's wire protocol on loopback
//! (axum, random port). It is the demo/training mode and the test double for everything else.
//!
//! Layout: each protocol is one module mounted under `/{kind}` (e.g. `/ispay/gateway`) that
//! maps the shared [`SimState`] to its own codes and builds its own notify; the control API
//! under `/_sandbox` lets the demo button and tests pay, underpay, confirm, expire, cancel,
//! close, set a raw code, or (re)send a genuine or forged notify, and switch V免签's monitor
//! phone on or off (`/_sandbox/vmq/monitor/{state}`). Faults (latency, timeouts, dropped
//! connections, gateway errors, spoiled answers, forged/repeated/late/misaddressed notifies,
//! a state going backwards) are set per protocol at `/_sandbox/faults/{kind}` or per order at
//! `/_sandbox/orders/{no}/fault` and applied in one place ([`faults`]).
//!
//! Invariants: every field and signature is checked exactly as the protocol's document
//! defines; a notify is only ever sent to a loopback address, so the sandbox never talks to
//! the outside world.

pub mod epay;
pub mod faults;
pub mod gatepay;
pub mod igepay;
pub mod ispay;
pub mod jings;
pub mod vmq;
pub mod yinqiantong;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Json};
use axum::routing::{get, post};

use self::faults::{Fault, FaultRule, Faults, Target};

use crate::model::{Channel, Fen};
use crate::providers::Provider;

/// How the simulated providers behave.
#[derive(Clone, Debug)]
pub struct SandboxOptions {
    /// Time from create until the QR is issued.
    pub qr_delay: Duration,
    /// An order's lifetime, reported to the till where the protocol has a field for it.
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

/// A simulated order's state, shared by all protocols; each maps it to its own codes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SimState {
    /// Accepted, no QR yet.
    Created,
    /// QR issued, waiting for the payer.
    Issued,
    /// The payer says it paid; not confirmed (only protocols that have such a state).
    Confirming,
    /// Paid.
    Paid,
    /// Timed out unpaid.
    Expired,
    /// Cancelled.
    Cancelled,
    /// Closed or restricted by the provider.
    Closed,
    /// A raw protocol code, e.g. one the till does not know.
    Code(String),
}

impl SimState {
    /// Still waiting for payment (time can move it on).
    pub fn is_open(&self) -> bool {
        matches!(self, SimState::Created | SimState::Issued)
    }

    fn from_control(name: &str) -> Option<SimState> {
        Some(match name {
            "pay" => SimState::Paid,
            "confirm" => SimState::Confirming,
            "expire" => SimState::Expired,
            "cancel" => SimState::Cancelled,
            "close" => SimState::Closed,
            "issue" => SimState::Issued,
            _ => return None,
        })
    }
}

/// A notify for the sandbox to send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NotifyRequest {
    /// `GET` or `POST`.
    pub post: bool,
    /// Where.
    pub url: String,
    /// The content type of the body, for a POST.
    pub content_type: &'static str,
    /// The body, for a POST.
    pub body: String,
    /// Extra headers (for protocols that sign in headers).
    pub headers: Vec<(String, String)>,
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
    /// The amount in fen.
    pub amount_fen: Fen,
    /// What the payer paid, when it differs from the amount (an underpayment or a nudge).
    pub paid_fen: Option<Fen>,
    /// What the provider asks the payer to pay, when it adjusts the amount (V免签's
    /// `reallyPrice`); a payment without another amount pays this.
    pub payable: Option<Fen>,
    /// The wallet.
    pub channel: Channel,
    /// Where to send the notify.
    pub notify_url: String,
    /// The state.
    pub state: SimState,
    /// The QR payload text.
    pub qr_text: String,
    /// When it was created.
    pub created: Instant,
    /// The wall-clock creation time, for answers that show it.
    pub created_at: chrono::DateTime<chrono::Local>,
    /// The fields as received, for answers that echo them.
    pub fields: HashMap<String, String>,
    /// How many times its status was queried, with when (rate-limit checks).
    pub queries: Vec<Instant>,
    /// How many create requests named its order number: 1, plus each refused duplicate (a
    /// till must never send a create twice).
    pub creates: u32,
}

impl SimOrder {
    /// A new order in state `Created`.
    pub fn new(
        kind: &'static str,
        id: String,
        order_no: &str,
        amount: &str,
        channel: Channel,
    ) -> Self {
        SimOrder {
            kind,
            id,
            order_no: order_no.to_string(),
            amount: amount.to_string(),
            amount_fen: Fen::parse_wire(amount).unwrap_or_default(),
            paid_fen: None,
            payable: None,
            channel,
            notify_url: String::new(),
            state: SimState::Created,
            qr_text: String::new(),
            created: Instant::now(),
            created_at: chrono::Local::now(),
            fields: HashMap::new(),
            queries: Vec::new(),
            creates: 1,
        }
    }

    /// What was paid: the payer's amount when set, else what the provider asked for, else
    /// the order's amount.
    pub fn paid(&self) -> Fen {
        self.paid_fen.or(self.payable).unwrap_or(self.amount_fen)
    }

    /// A field as received, or "".
    pub fn field(&self, name: &str) -> String {
        self.fields.get(name).cloned().unwrap_or_default()
    }
}

#[derive(Default)]
struct SandboxState {
    orders: Vec<SimOrder>,
    next_id: u64,
    /// Calls to rate-limited endpoints, by the protocol's key (see [`Shared::rate_limit`]).
    calls: HashMap<String, Vec<CallRecord>>,
    /// Every notify sent, with how the till answered.
    notifies: Vec<NotifyRecord>,
    /// Simulated server settings by key (e.g. V免签's monitor state), see
    /// [`Shared::setting`].
    settings: HashMap<String, String>,
    /// The faults in force.
    faults: Faults,
    /// How many protocol requests the sandbox has answered, and its time inside them.
    handling: Handling,
}

/// The sandbox's own share of every protocol request since it started: a running total (not
/// a list), so that reading it costs the same after a million requests as after one.
/// Read through `GET /_sandbox/handling`: the till benchmark (another process) subtracts
/// the difference of two readings from a round trip to get the till's own share.
#[derive(Debug, Clone, Copy, Default)]
struct Handling {
    /// Protocol requests answered.
    requests: u64,
    /// Time spent inside the sandbox answering them (fault injection included).
    time: Duration,
}

impl SandboxState {
    /// Whether `order`'s number is taken in its protocol; a duplicate create is counted on
    /// the stored order ([`SimOrder::creates`]).
    fn count_duplicate(&mut self, order: &SimOrder) -> bool {
        match self
            .orders
            .iter_mut()
            .find(|o| o.kind == order.kind && o.order_no == order.order_no)
        {
            Some(stored) => {
                stored.creates = stored.creates.saturating_add(1);
                true
            }
            None => false,
        }
    }
}

/// One call to a rate-limited endpoint, as the sandbox saw it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CallRecord {
    /// When it arrived.
    pub at: Instant,
    /// Whether it came too soon and was refused.
    pub refused: bool,
}

/// One notify the sandbox sent, and the answer it got.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NotifyRecord {
    /// Our (the merchant's) order number.
    pub order_no: String,
    /// Whether it carried a wrong signature on purpose.
    pub forged: bool,
    /// The HTTP status the till answered, or `None` when it could not be delivered.
    pub status: Option<u16>,
}

/// The sandbox's shared state, handed to every protocol's handlers.
#[derive(Clone)]
pub struct Shared {
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

    /// The options the sandbox runs with.
    pub fn options(&self) -> &SandboxOptions {
        &self.options
    }

    /// A fresh provider order id: 18 digits, like the seeds' examples.
    pub fn new_id(&self) -> String {
        let mut state = self.lock();
        state.next_id += 1;
        format!(
            "4248{:014}",
            state.next_id + u64::from(fastrand::u16(..)) * 1_000_000
        )
    }

    /// Records a call to a rate-limited endpoint under `key` (e.g. the protocol, the call and
    /// the order) and says whether it may be answered: `Err(wait)` when the last answered
    /// call under the same key was less than `every` ago. Refused calls are recorded too, so
    /// that tests can see them, but do not restart the clock.
    ///
    /// # Errors
    /// The time left until the next call may be answered.
    pub fn rate_limit(&self, key: &str, every: Duration) -> Result<(), Duration> {
        let now = Instant::now();
        let mut state = self.lock();
        let log = state.calls.entry(key.to_string()).or_default();
        let verdict = match log.iter().rev().find(|call| !call.refused) {
            Some(last) if now.duration_since(last.at) < every => {
                Err(every.saturating_sub(now.duration_since(last.at)))
            }
            _ => Ok(()),
        };
        log.push(CallRecord {
            at: now,
            refused: verdict.is_err(),
        });
        if verdict.is_err() {
            tracing::warn!(key, "sandbox: rate limit exceeded, call refused");
        }
        verdict
    }

    /// Every order of a protocol, after time-driven changes.
    pub fn orders_of(&self, kind: &str) -> Vec<SimOrder> {
        self.tick_and_notify();
        self.lock()
            .orders
            .iter()
            .filter(|o| o.kind == kind)
            .cloned()
            .collect()
    }

    /// A simulated server setting (e.g. `vmq.jkstate`), if set.
    pub fn setting(&self, key: &str) -> Option<String> {
        self.lock().settings.get(key).cloned()
    }

    /// Sets a simulated server setting.
    pub fn set_setting(&self, key: &str, value: &str) {
        self.lock()
            .settings
            .insert(key.to_string(), value.to_string());
    }

    /// Stores a new order after `prepare` has adjusted it in view of the protocol's other
    /// orders, all under one lock, so that two creates cannot both take, e.g., the same
    /// amount slot. `Ok(None)` for a duplicate order number of the same protocol (checked
    /// first); `Err` when `prepare` refuses, and then nothing is stored.
    ///
    /// # Errors
    /// `prepare`'s refusal.
    pub fn insert_with<E>(
        &self,
        mut order: SimOrder,
        prepare: impl FnOnce(&mut SimOrder, &[SimOrder]) -> Result<(), E>,
    ) -> Result<Option<SimOrder>, E> {
        self.tick_and_notify();
        let mut state = self.lock();
        if state.count_duplicate(&order) {
            return Ok(None);
        }
        let others: Vec<SimOrder> = state
            .orders
            .iter()
            .filter(|o| o.kind == order.kind)
            .cloned()
            .collect();
        prepare(&mut order, &others)?;
        state.orders.push(order.clone());
        Ok(Some(order))
    }

    /// Stores a new order; refuses a duplicate order number of the same protocol.
    pub fn insert(&self, order: SimOrder) -> bool {
        self.tick_and_notify();
        let mut state = self.lock();
        if state.count_duplicate(&order) {
            return false;
        }
        state.orders.push(order);
        true
    }

    /// An order of a protocol matching `pred`, after time-driven changes.
    pub fn find(&self, kind: &str, pred: impl Fn(&SimOrder) -> bool) -> Option<SimOrder> {
        self.tick_and_notify();
        let mut state = self.lock();
        let order = state
            .orders
            .iter()
            .find(|o| o.kind == kind && pred(o))
            .cloned()?;
        Some(shown(&mut state.faults, order))
    }

    /// Changes an order of a protocol in place; returns it after the change.
    pub fn update(
        &self,
        kind: &str,
        pred: impl Fn(&SimOrder) -> bool,
        change: impl FnOnce(&mut SimOrder),
    ) -> Option<SimOrder> {
        self.tick_and_notify();
        let mut state = self.lock();
        let order = state
            .orders
            .iter_mut()
            .find(|o| o.kind == kind && pred(o))?;
        change(order);
        let order = order.clone();
        Some(shown(&mut state.faults, order))
    }

    /// Advances time-driven states: QR issued after the delay, auto-pay, expiry. Returns the
    /// orders that just became paid, whose notify must go out.
    fn tick(&self) -> Vec<SimOrder> {
        let mut paid = Vec::new();
        let now = Instant::now();
        for order in &mut self.lock().orders {
            let age = now.duration_since(order.created);
            if order.state == SimState::Created && age >= self.options.qr_delay {
                order.state = SimState::Issued;
            }
            if let Some(after) = self.options.auto_pay_after
                && (order.state.is_open() || order.state == SimState::Confirming)
                && age >= after
            {
                order.state = SimState::Paid;
                paid.push(order.clone());
            }
            if order.state.is_open() && age >= self.options.order_timeout {
                order.state = SimState::Expired;
            }
        }
        paid
    }

    fn tick_and_notify(&self) {
        for order in self.tick() {
            self.send_notify(&order, false);
        }
    }

    /// Whether any fault is set (the fast path of the fault middleware).
    fn has_faults(&self) -> bool {
        let state = self.lock();
        !(state.faults.by_kind.is_empty() && state.faults.by_order.is_empty())
    }

    /// Takes the faults of `target` for protocol `kind` and for the orders whose number or
    /// provider id occurs in `haystack` (a request's URL and body).
    fn take_faults(&self, kind: &str, haystack: &str, target: Target) -> Vec<Fault> {
        let mut state = self.lock();
        let SandboxState { orders, faults, .. } = &mut *state;
        faults.take(
            kind,
            |order_no| {
                haystack.contains(order_no)
                    || orders
                        .iter()
                        .any(|o| o.order_no == order_no && haystack.contains(&o.id))
            },
            target,
        )
    }

    /// Sends an order's notify (a forged one has a wrong signature), to loopback only, with
    /// the notify faults in force for it.
    fn send_notify(&self, order: &SimOrder, forged: bool) {
        let notify_faults = {
            let mut state = self.lock();
            state
                .faults
                .take(order.kind, |no| no == order.order_no, Target::Notify)
        };
        let mut order = order.clone();
        let mut forged = forged;
        let mut copies = 1;
        let mut delay = Duration::ZERO;
        for fault in &notify_faults {
            match fault {
                Fault::WrongSignature => forged = true,
                Fault::RepeatNotify => copies += 1,
                Fault::LateNotify(late) => delay += *late,
                // Correctly signed, for an order number nobody has.
                Fault::UnknownOrderNotify => order.order_no = format!("{}X404", order.order_no),
                _ => {}
            }
        }
        if !notify_faults.is_empty() {
            tracing::info!(order_no = %order.order_no, ?notify_faults, "sandbox: fault injected into a notify");
        }
        let Some(request) = notify_for(&order, forged) else {
            return;
        };
        if !is_loopback_url(&request.url) {
            tracing::info!(order_no = %order.order_no, "sandbox: notify URL is not on this machine, not sent");
            return;
        }
        let http = self.http.clone();
        let order_no = order.order_no.clone();
        let shared = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            for _ in 0..copies {
                let status = deliver(&http, &request, &order_no).await;
                shared.lock().notifies.push(NotifyRecord {
                    order_no: order_no.clone(),
                    forged,
                    status,
                });
            }
        });
    }
}

/// Sends one notify; the till's HTTP status, or `None` when it could not be delivered.
async fn deliver(http: &reqwest::Client, request: &NotifyRequest, order_no: &str) -> Option<u16> {
    let mut builder = if request.post {
        http.post(&request.url)
            .header("Content-Type", request.content_type)
            .body(request.body.clone())
    } else {
        http.get(&request.url)
    };
    for (name, value) in &request.headers {
        builder = builder.header(name, value);
    }
    match builder.send().await {
        Ok(response) => {
            tracing::debug!(%order_no, status = %response.status(), "sandbox notify sent");
            Some(response.status().as_u16())
        }
        Err(err) => {
            tracing::debug!(%order_no, "sandbox notify not delivered: {err}");
            None
        }
    }
}

/// An order as the protocol handlers see it: under [`Fault::Backwards`] a paid order is
/// shown as still waiting.
fn shown(faults: &mut Faults, mut order: SimOrder) -> SimOrder {
    if order.state == SimState::Paid
        && !faults
            .take(order.kind, |no| no == order.order_no, Target::State)
            .is_empty()
    {
        order.state = SimState::Issued;
    }
    order
}

/// Each protocol's notify, by kind: one line per protocol.
fn notify_for(order: &SimOrder, forged: bool) -> Option<NotifyRequest> {
    match order.kind {
        ispay::KIND => Some(ispay::notify(order, forged)),
        igepay::KIND => Some(igepay::notify(order, forged)),
        yinqiantong::KIND => Some(yinqiantong::notify(order, forged)),
        jings::KIND => jings::notify(order, forged),
        gatepay::KIND => Some(gatepay::notify(order, forged)),
        epay::KIND => epay::notify(order, forged),
        vmq::KIND => Some(vmq::notify(order, forged)),
        _ => None,
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
        let protocols = Router::new()
            .nest(&format!("/{}", ispay::KIND), ispay::routes())
            .nest(&format!("/{}", igepay::KIND), igepay::routes())
            .nest(&format!("/{}", yinqiantong::KIND), yinqiantong::routes())
            .nest(&format!("/{}", jings::KIND), jings::routes())
            .nest(&format!("/{}", gatepay::KIND), gatepay::routes())
            .nest(&format!("/{}", epay::KIND), epay::routes())
            .nest(&format!("/{}", vmq::KIND), vmq::routes())
            .layer(axum::middleware::from_fn_with_state(
                state.clone(),
                faults::inject,
            ))
            .layer(axum::middleware::from_fn_with_state(
                state.clone(),
                time_handling,
            ));
        let app = Router::new()
            .merge(protocols)
            .route("/_sandbox/vmq/monitor/{state}", post(vmq::monitor_control))
            .route("/_sandbox/faults", get(list_faults))
            .route(
                "/_sandbox/faults/{kind}",
                post(set_kind_fault).delete(clear_kind_faults),
            )
            .route(
                "/_sandbox/orders/{order_no}/fault",
                post(set_order_fault).delete(clear_order_faults),
            )
            .route("/_sandbox/orders", get(list_orders))
            .route("/_sandbox/calls", get(list_calls))
            .route("/_sandbox/notifies", get(list_notifies))
            .route("/_sandbox/handling", get(handling_totals))
            .route("/_sandbox/orders/{order_no}/notify", post(resend_notify))
            .route("/_sandbox/orders/{order_no}/state/{code}", post(set_code))
            .route("/_sandbox/orders/{order_no}/{action}", post(control))
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
        vec![
            Arc::new(ispay::demo_account(&self.url_for(ispay::KIND))),
            Arc::new(igepay::demo_account(&self.url_for(igepay::KIND))),
            Arc::new(yinqiantong::demo_account(&self.url_for(yinqiantong::KIND))),
            Arc::new(jings::demo_account(&self.url_for(jings::KIND))),
            Arc::new(gatepay::demo_account(&self.url_for(gatepay::KIND))),
            Arc::new(epay::demo_account(&self.url_for(epay::KIND))),
            Arc::new(vmq::demo_account(&self.url_for(vmq::KIND))),
        ]
    }

    /// A config file that points every protocol at this sandbox.
    pub fn demo_config(&self) -> String {
        demo_config_at(&self.base_url)
    }

    /// Every simulated order (for tests).
    pub fn orders(&self) -> Vec<SimOrder> {
        self.state.tick_and_notify();
        self.state.lock().orders.clone()
    }
}

/// The config for a sandbox at `base_url` (e.g. one started by `qrtill sandbox` in another
/// process): one account per protocol.
pub fn demo_config_at(base_url: &str) -> String {
    let url_for = |kind: &str| format!("{base_url}/{kind}");
    {
        let sections = [
            ispay::demo_config(&url_for(ispay::KIND)),
            igepay::demo_config(&url_for(igepay::KIND)),
            yinqiantong::demo_config(&url_for(yinqiantong::KIND)),
            jings::demo_config(&url_for(jings::KIND)),
            gatepay::demo_config(&url_for(gatepay::KIND)),
            epay::demo_config(&url_for(epay::KIND)),
            vmq::demo_config(&url_for(vmq::KIND)),
        ];
        format!(
            "# qrtill config for the sandbox at {base}\n\
             default_provider = \"demo-ispay\"\n\
             operator = \"demo\"\n\n\
             [listener]\nlisten = \"127.0.0.1:0\"\n\n{}",
            sections.join("\n"),
            base = base_url,
        )
    }
}

impl Sandbox {
    /// The calls to a rate-limited endpoint under `key`, oldest first (for tests).
    pub fn calls(&self, key: &str) -> Vec<CallRecord> {
        self.state
            .lock()
            .calls
            .get(key)
            .cloned()
            .unwrap_or_default()
    }

    /// Every notify sent so far and the till's answers (for tests).
    pub fn notifies(&self) -> Vec<NotifyRecord> {
        self.state.lock().notifies.clone()
    }

    /// Moves an order (by our order number) to a state, sending the notify for a payment.
    /// Returns whether the order exists.
    pub fn set(&self, order_no: &str, state: SimState) -> bool {
        apply_control(&self.state, order_no, state, None)
    }

    /// Pays an order with a different amount (an underpayment or a nudge).
    pub fn pay_amount(&self, order_no: &str, paid: Fen) -> bool {
        apply_control(&self.state, order_no, SimState::Paid, Some(paid))
    }

    /// Sets a fault on every request or notify of protocol `kind` (`times`: how many;
    /// `None` until cleared).
    pub fn fault_kind(&self, kind: &str, fault: Fault, times: Option<u32>) {
        add_fault(
            &self.state,
            FaultScope::Kind(kind.to_string()),
            fault,
            times,
        );
    }

    /// Sets a fault on the requests and notifies about one order (our order number; it may
    /// be set before the order reaches the sandbox).
    pub fn fault_order(&self, order_no: &str, fault: Fault, times: Option<u32>) {
        add_fault(
            &self.state,
            FaultScope::Order(order_no.to_string()),
            fault,
            times,
        );
    }

    /// Sends an order's notify again; `forged` gives it a wrong signature.
    pub fn notify(&self, order_no: &str, forged: bool) -> bool {
        match self.state.find_any(order_no) {
            Some(order) => {
                self.state.send_notify(&order, forged);
                true
            }
            None => false,
        }
    }
}

impl Shared {
    fn find_any(&self, order_no: &str) -> Option<SimOrder> {
        self.tick_and_notify();
        self.lock()
            .orders
            .iter()
            .find(|o| o.order_no == order_no)
            .cloned()
    }
}

fn apply_control(state: &Shared, order_no: &str, to: SimState, paid: Option<Fen>) -> bool {
    state.tick_and_notify();
    let changed = {
        let mut guard = state.lock();
        guard
            .orders
            .iter_mut()
            .find(|o| o.order_no == order_no)
            .map(|order| {
                order.state = to.clone();
                if paid.is_some() {
                    order.paid_fen = paid;
                }
                order.clone()
            })
    };
    match changed {
        Some(order) => {
            if to == SimState::Paid {
                state.send_notify(&order, false);
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
                "paid": o.paid().to_yuan(), "payable": o.payable.map(Fen::to_yuan),
                "channel": o.channel.as_str(),
                "state": format!("{:?}", o.state), "qr": o.qr_text, "notify_url": o.notify_url,
                "queries": o.queries.len(), "creates": o.creates,
            })
        })
        .collect();
    Json(orders)
}

/// `GET /_sandbox/calls`: the rate-limited calls by key, each with its age and whether it
/// was refused.
async fn list_calls(State(state): State<Shared>) -> impl IntoResponse {
    let now = Instant::now();
    let calls: serde_json::Map<String, serde_json::Value> = state
        .lock()
        .calls
        .iter()
        .map(|(key, log)| {
            let entries = log
                .iter()
                .map(|call| {
                    serde_json::json!({
                        "age_ms": u64::try_from(now.duration_since(call.at).as_millis()).unwrap_or(u64::MAX),
                        "refused": call.refused,
                    })
                })
                .collect();
            (key.clone(), serde_json::Value::Array(entries))
        })
        .collect();
    Json(serde_json::Value::Object(calls))
}

/// `GET /_sandbox/notifies`: every notify sent and the till's answer.
/// Times each protocol request inside the sandbox (fault injection included).
async fn time_handling(
    State(state): State<Shared>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let started = std::time::Instant::now();
    let response = next.run(request).await;
    let took = started.elapsed();
    let handling = &mut state.lock().handling;
    handling.requests += 1;
    handling.time += took;
    response
}

/// `GET /_sandbox/handling`: `{"requests": …, "micros": …}`, the running totals of
/// [`Handling`].
async fn handling_totals(State(state): State<Shared>) -> impl IntoResponse {
    let Handling { requests, time } = state.lock().handling;
    axum::Json(serde_json::json!({"requests": requests, "micros": time.as_micros()}))
}

async fn list_notifies(State(state): State<Shared>) -> impl IntoResponse {
    let notifies: Vec<serde_json::Value> = state
        .lock()
        .notifies
        .iter()
        .map(
            |n| serde_json::json!({"order_no": n.order_no, "forged": n.forged, "status": n.status}),
        )
        .collect();
    Json(notifies)
}

fn control_answer(found: bool) -> (StatusCode, &'static str) {
    if found {
        (StatusCode::OK, "ok")
    } else {
        (StatusCode::NOT_FOUND, "no such order")
    }
}

#[derive(serde::Deserialize)]
struct ControlQuery {
    /// For `pay`: the amount the payer paid, in yuan.
    amount: Option<String>,
    /// For `notify`: send a forged one.
    forged: Option<bool>,
}

async fn control(
    State(state): State<Shared>,
    Path((order_no, action)): Path<(String, String)>,
    Query(query): Query<ControlQuery>,
) -> impl IntoResponse {
    let Some(to) = SimState::from_control(&action) else {
        return (
            StatusCode::NOT_FOUND,
            "unknown control: pay[?amount=], confirm, expire, cancel, close, issue, notify[?forged=true], state/CODE",
        );
    };
    let paid = match query.amount.as_deref().map(Fen::parse_wire) {
        None => None,
        Some(Ok(fen)) => Some(fen),
        Some(Err(_)) => return (StatusCode::BAD_REQUEST, "amount must be yuan, e.g. 12.30"),
    };
    control_answer(apply_control(&state, &order_no, to, paid))
}

async fn set_code(
    State(state): State<Shared>,
    Path((order_no, code)): Path<(String, String)>,
) -> impl IntoResponse {
    control_answer(apply_control(&state, &order_no, SimState::Code(code), None))
}

async fn resend_notify(
    State(state): State<Shared>,
    Path(order_no): Path<String>,
    Query(query): Query<ControlQuery>,
) -> impl IntoResponse {
    let order = state.find_any(&order_no);
    if let Some(order) = &order {
        state.send_notify(order, query.forged.unwrap_or(false));
    }
    control_answer(order.is_some())
}

/// Whom a fault is set on.
enum FaultScope {
    Kind(String),
    Order(String),
}

fn add_fault(state: &Shared, scope: FaultScope, fault: Fault, times: Option<u32>) {
    let rule = FaultRule { fault, left: times };
    tracing::info!(?rule, "sandbox: fault set");
    let mut guard = state.lock();
    let faults = &mut guard.faults;
    let list = match scope {
        FaultScope::Kind(kind) => faults.by_kind.entry(kind).or_default(),
        FaultScope::Order(order_no) => faults.by_order.entry(order_no).or_default(),
    };
    list.push(rule);
}

#[derive(serde::Deserialize)]
struct FaultSpec {
    /// The fault's name (see [`Fault::parse`]).
    fault: String,
    /// Milliseconds, for `latency` and `late`.
    ms: Option<u64>,
    /// The HTTP status, for `status` and `html`.
    code: Option<u16>,
    /// How many answers or notifies it spoils; absent: until cleared.
    times: Option<u32>,
}

const PROTOCOLS: [&str; 7] = [
    ispay::KIND,
    igepay::KIND,
    yinqiantong::KIND,
    jings::KIND,
    gatepay::KIND,
    epay::KIND,
    vmq::KIND,
];

fn set_fault(state: &Shared, scope: FaultScope, spec: &FaultSpec) -> (StatusCode, String) {
    match Fault::parse(&spec.fault, spec.ms, spec.code) {
        Ok(fault) => {
            add_fault(state, scope, fault, spec.times);
            (StatusCode::OK, "ok".into())
        }
        Err(message) => (StatusCode::BAD_REQUEST, message),
    }
}

/// `POST /_sandbox/faults/{kind}?fault=NAME[&ms=][&code=][&times=]`.
async fn set_kind_fault(
    State(state): State<Shared>,
    Path(kind): Path<String>,
    Query(spec): Query<FaultSpec>,
) -> impl IntoResponse {
    if !PROTOCOLS.contains(&kind.as_str()) {
        return (
            StatusCode::NOT_FOUND,
            format!("unknown protocol `{kind}`: one of {}", PROTOCOLS.join(", ")),
        );
    }
    set_fault(&state, FaultScope::Kind(kind), &spec)
}

/// `DELETE /_sandbox/faults/{kind}`: the protocol's faults end.
async fn clear_kind_faults(
    State(state): State<Shared>,
    Path(kind): Path<String>,
) -> impl IntoResponse {
    state.lock().faults.by_kind.remove(&kind);
    "ok"
}

/// `POST /_sandbox/orders/{no}/fault?fault=NAME[&ms=][&code=][&times=]`.
async fn set_order_fault(
    State(state): State<Shared>,
    Path(order_no): Path<String>,
    Query(spec): Query<FaultSpec>,
) -> impl IntoResponse {
    set_fault(&state, FaultScope::Order(order_no), &spec)
}

/// `DELETE /_sandbox/orders/{no}/fault`: the order's faults end.
async fn clear_order_faults(
    State(state): State<Shared>,
    Path(order_no): Path<String>,
) -> impl IntoResponse {
    state.lock().faults.by_order.remove(&order_no);
    "ok"
}

/// `GET /_sandbox/faults`: the faults in force, by protocol and by order.
async fn list_faults(State(state): State<Shared>) -> impl IntoResponse {
    let guard = state.lock();
    let describe = |rules: &Vec<FaultRule>| -> Vec<serde_json::Value> {
        rules
            .iter()
            .map(|r| serde_json::json!({"fault": format!("{:?}", r.fault), "left": r.left}))
            .collect()
    };
    let by_kind: serde_json::Map<String, serde_json::Value> = guard
        .faults
        .by_kind
        .iter()
        .map(|(k, rules)| (k.clone(), serde_json::json!(describe(rules))))
        .collect();
    let by_order: serde_json::Map<String, serde_json::Value> = guard
        .faults
        .by_order
        .iter()
        .map(|(k, rules)| (k.clone(), serde_json::json!(describe(rules))))
        .collect();
    Json(serde_json::json!({"by_kind": by_kind, "by_order": by_order}))
}
