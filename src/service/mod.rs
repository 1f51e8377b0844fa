//! The only place that does I/O on orders: tokio tasks that create, watch, query and cancel
//! orders, the callback listener, and the ledger calls that record each step.
//!
//! The UI and the CLI talk to it through [`ServiceHandle`] (commands in) and
//! [`EventReceiver`] (events out); it never imports egui: the app hands it a repaint hook.
//!
//! Invariants kept here:
//! - an order's row is committed before its create request is built and sent;
//! - every answer a provider gives about an order is applied through the ledger's single
//!   transition function, and its raw text kept in the event log;
//! - a create whose answer never came is looked up by our order number, never re-sent;
//! - a callback is believed only after its signature checks out and its amount matches.

pub mod crash;
pub mod health;
pub mod listener;
mod order;
pub mod poll;
pub mod transport;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::runtime::Handle;
use tokio::sync::mpsc;

use crate::ledger::{
    Applied, Close, DaySummary, EventRow, HistoryChoices, HistoryFilter, Ledger, LedgerError,
    OrderRow, Totals, Update,
};
use crate::model::{Channel, Fen, OrderNo, PaymentStatus, ProviderState, QrPayload};
use crate::providers::{AccountStatus, CallContext, CreateStep};
use crate::providers::{CallbackAck, CallbackRequest, Provider};
use crate::qr::ShownQr;

pub use self::health::{Failure, FailureKind, ProviderHealth};
pub use self::transport::Transport;

/// The hook the service calls after posting events, so the UI wakes up (egui's
/// `request_repaint`); a no-op for the CLI.
pub type Repaint = Arc<dyn Fn() + Send + Sync>;

/// What the service needs to know from the config.
#[derive(Clone)]
pub struct ServiceConfig {
    /// The provider accounts.
    pub providers: Vec<Arc<dyn Provider>>,
    /// How long an order waits when its provider does not say.
    pub order_timeout: Duration,
    /// How long an ended unpaid order is still watched for a late payment.
    pub late_grace: Duration,
    /// Demo mode: orders are marked as demo and the sandbox can be told to pay.
    pub demo: bool,
    /// The sandbox's control URL (demo mode), for "simulate customer payment".
    pub sandbox_control: Option<String>,
    /// Where providers send notifies: `{notify_base}/notify/{provider_id}`.
    pub notify_base: String,
    /// The listener's URL as payers' phones reach it (`[listener] public_url`), for bridge
    /// pages; without it a form-post provider's QR is its signed link.
    pub public_url: Option<String>,
    /// When the business day starts (config `day_start`): "today's paid" covers the business
    /// day, the same window as the day summary.
    pub day_start: chrono::NaiveTime,
}

/// A sale to start.
#[derive(Clone, Debug)]
pub struct ChargeRequest {
    /// The amount.
    pub amount: Fen,
    /// The wallet.
    pub channel: Channel,
    /// The provider account.
    pub provider_id: String,
    /// A title (may be empty).
    pub subject: String,
    /// Who takes the sale.
    pub operator: String,
}

/// What the UI or CLI asks of the service.
#[derive(Clone, Debug)]
pub enum Command {
    /// Start a sale under this (fresh) order number.
    Charge(OrderNo, ChargeRequest),
    /// Staff cancel an order (the provider is still watched for a late payment).
    Cancel(OrderNo),
    /// Ask the provider about an order now.
    QueryNow(OrderNo),
    /// Demo mode: tell the sandbox the customer paid.
    SimulatePayment(OrderNo),
    /// One page of a business day's orders ([`Event::History`]).
    LoadHistory(HistoryQuery),
    /// A business day's summary and filter choices ([`Event::Summary`]).
    LoadSummary(chrono::NaiveDate),
    /// One order and its event log ([`Event::OrderDetail`]).
    LoadOrder(OrderNo),
    /// Every close, newest first ([`Event::Closes`]).
    ListCloses,
    /// What closing now would record ([`Event::ClosePreview`]).
    PreviewClose {
        /// Who closes.
        operator: String,
    },
    /// Close the till now (交班/日结) ([`Event::DayClosed`], then [`Event::Closes`]).
    CloseDay {
        /// Who closes.
        operator: String,
    },
    /// Write a CSV export to the path ([`Event::Exported`]).
    Export(ExportRequest, PathBuf),
}

/// Which rows of a business day's history to load.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HistoryQuery {
    /// The business day.
    pub date: chrono::NaiveDate,
    /// Which orders.
    pub filter: HistoryFilter,
    /// The first row, newest first.
    pub offset: usize,
    /// How many rows at most.
    pub limit: usize,
}

/// Rows of a business day's history, with the day's row count under the filter.
#[derive(Clone, Debug)]
pub struct HistoryPage {
    /// The business day.
    pub date: chrono::NaiveDate,
    /// The filter the rows pass.
    pub filter: HistoryFilter,
    /// How many rows the day has under the filter.
    pub total: usize,
    /// Where `rows` start.
    pub offset: usize,
    /// The rows, newest first.
    pub rows: Vec<OrderRow>,
}

/// What to export.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ExportRequest {
    /// The orders of business days `from..=to`.
    Days {
        /// The first business day.
        from: chrono::NaiveDate,
        /// The last business day (included).
        to: chrono::NaiveDate,
    },
    /// The orders of close number N.
    Close(i64),
}

/// An order's latest state, as the UI shows it.
#[derive(Clone, Debug)]
pub struct OrderUpdate {
    /// The ledger row after the change.
    pub order: OrderRow,
    /// The QR, when it became known with this update, with its picture made off the UI
    /// thread.
    pub qr: Option<Arc<ShownQr>>,
    /// Whether that QR leads to a web page the payer's phone browser must open (a provider's
    /// jump page or the bridge page), as the provider said for this order.
    pub browser_needed: bool,
    /// Whether the status changed with this update.
    pub status_changed: bool,
    /// Whether the order was found unfinished at start and resumed (staff see it marked
    /// "recovered" until it ends).
    pub recovered: bool,
}

/// What the service tells the UI or CLI.
#[derive(Clone, Debug)]
pub enum Event {
    /// An order was written, changed, or learnt something (e.g. its QR).
    Order(Box<OrderUpdate>),
    /// A sale could not start; no order exists for it.
    ChargeFailed {
        /// The order number that was meant for it.
        order_no: OrderNo,
        /// Why, for staff.
        message: String,
    },
    /// Today's paid sales.
    Totals(Totals),
    /// Something staff should see that belongs to no current screen (a late payment, a
    /// ledger fault).
    Notice(String),
    /// What a provider said about the merchant account (balance, quota), or why it could
    /// not be asked.
    Account {
        /// The provider account.
        provider_id: String,
        /// The answer.
        status: Result<AccountStatus, String>,
    },
    /// A page of a day's history.
    History(Box<HistoryPage>),
    /// A business day's summary, and the providers and operators of its orders.
    Summary(chrono::NaiveDate, Box<DaySummary>, HistoryChoices),
    /// One order and its event log, oldest first.
    OrderDetail(Box<OrderRow>, Vec<EventRow>),
    /// Every close, newest first.
    Closes(Vec<Close>),
    /// What closing now would record (nothing is recorded).
    ClosePreview(Box<Close>),
    /// A close was recorded.
    DayClosed(Box<Close>),
    /// An export was written (the file and its order count), or why not.
    Exported(Result<(PathBuf, usize), String>),
    /// A provider account's health changed: its last valid answer, the failures since, the
    /// last failure in plain words ([`health`]).
    Health {
        /// The provider account.
        provider_id: String,
        /// Its health now.
        health: ProviderHealth,
    },
    /// The verdict of a settings screen's "test connection".
    ConnectionTested {
        /// The account tested.
        provider_id: String,
        /// What its provider's answer proves.
        verdict: ConnectionVerdict,
    },
}

/// What one signed call says about an account's credentials.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConnectionVerdict {
    /// The provider read the signed call and answered it at business level (an answer about
    /// the account, or "no such order" for the made-up one): the credentials work.
    Accepted(String),
    /// The provider refused the signature or the merchant id.
    Refused(String),
    /// No answer (unreachable, timeout) or an answer that is not the provider's protocol.
    Unreachable(String),
    /// The protocol has no call that proves credentials before a sale.
    Unproven(String),
}

impl ConnectionVerdict {
    /// Judges `provider`'s parsed answer: a business-level refusal of the credentials (a
    /// signature, key or merchant-id code the protocol documents, or words saying so, as
    /// sorted for the provider health: [`health::FailureKind::Authorization`]) is a refusal;
    /// any other business answer proves the provider checked the signed call and went on.
    pub fn from_answer(
        provider: &dyn Provider,
        read: Result<(), crate::providers::ProviderError>,
    ) -> Self {
        match read {
            Ok(()) => ConnectionVerdict::Accepted(String::new()),
            Err(crate::providers::ProviderError::Rejected { code, message }) => {
                let words = format!("{message} ({code})");
                let err = crate::providers::ProviderError::Rejected { code, message };
                if crate::providers::health::describe(provider, &err).kind
                    == FailureKind::Authorization
                {
                    ConnectionVerdict::Refused(words)
                } else {
                    ConnectionVerdict::Accepted(words)
                }
            }
            Err(err @ crate::providers::ProviderError::BadSignature) => {
                ConnectionVerdict::Refused(err.to_string())
            }
            Err(
                err @ (crate::providers::ProviderError::HttpStatus { .. }
                | crate::providers::ProviderError::Decode { .. }),
            ) => ConnectionVerdict::Unreachable(err.to_string()),
            Err(err @ crate::providers::ProviderError::NotSupported(_)) => {
                ConnectionVerdict::Unproven(err.to_string())
            }
        }
    }
}

/// Receives the service's events.
pub type EventReceiver = mpsc::UnboundedReceiver<Event>;

/// Sends commands to the service; cheap to clone, never blocks.
#[derive(Clone)]
pub struct ServiceHandle {
    inner: Arc<Inner>,
}

struct Inner {
    runtime: Handle,
    /// The current settings; replaced whole by [`ServiceHandle::reconfigure`] (an order keeps
    /// the provider account it was created with).
    config: std::sync::RwLock<Arc<ServiceConfig>>,
    /// Bumped by every reconfiguration: account checks of an older one stop.
    generation: std::sync::atomic::AtomicU64,
    ledger: Arc<Mutex<Ledger>>,
    /// A read-only connection for lookups (a callback's order, a watch's row, totals,
    /// history), so they need not wait for the writer's fsync; the writer's own connection
    /// when there is no file to open twice.
    reader: Arc<Mutex<Ledger>>,
    transport: Transport,
    events: mpsc::UnboundedSender<Event>,
    repaint: Repaint,
    watches: Mutex<HashMap<OrderNo, mpsc::UnboundedSender<order::WatchCommand>>>,
    /// Provider pay pages waiting for the payer's browser, by order (in memory: a form-post
    /// provider's page is rebuilt from the ledger when missing).
    payer_pages: Mutex<HashMap<OrderNo, String>>,
    /// The latest account check of each provider that has one: `Some(why)` while it says no
    /// sale may start ([`AccountStatus::refuse_charges`]), `None` when it allows them or could
    /// not be read. Absent until the first answer.
    charge_refusals: Mutex<HashMap<String, Option<String>>>,
    /// Woken whenever an account check answered.
    account_checked: tokio::sync::Notify,
    /// Set when an order's status changed: today's totals are republished shortly after.
    totals_wanted: tokio::sync::Notify,
    /// The ledger's writer: writes waiting at the same moment share one commit.
    writes: mpsc::UnboundedSender<WriteJob>,
    /// The orders found unfinished at start, which are resumed.
    resumed: Vec<OrderNo>,
    /// The orders resumed at start.
    recovered: Mutex<std::collections::HashSet<OrderNo>>,
    /// Each provider account's health ([`health`]).
    health: Mutex<health::HealthBook>,
}

/// Tells a write's caller how its batch's commit went.
type Deliver = Box<dyn FnOnce(&Result<(), String>) + Send>;
/// A write for the ledger's writer: runs inside the batch, returns how to deliver its result.
type WriteJob = Box<dyn FnOnce(&mut Ledger) -> Deliver + Send>;
/// The most writes one commit takes.
const MAX_BATCH: usize = 256;

/// The ledger's writer: takes every write waiting, runs them in one transaction (each a
/// savepoint, see [`Ledger::begin_batch`]) on a blocking thread, commits once, then answers
/// each. Writes that arrive meanwhile make the next batch, so under a burst of callbacks one
/// fsync serves many; alone, a write is committed at once, as before. It is an ordinary task
/// (not a thread parked on the queue), so the runtime can always shut down.
fn spawn_writer(
    runtime: &Handle,
    ledger: Arc<Mutex<Ledger>>,
    mut queue: mpsc::UnboundedReceiver<WriteJob>,
) {
    runtime.spawn(async move {
        while let Some(first) = queue.recv().await {
            let mut jobs = vec![first];
            while jobs.len() < MAX_BATCH {
                match queue.try_recv() {
                    Ok(job) => jobs.push(job),
                    Err(_) => break,
                }
            }
            let ledger = ledger.clone();
            // A panic in a write drops its batch's answers: their callers hear the writer
            // stopped, and the batch's transaction is never committed.
            let _ = tokio::task::spawn_blocking(move || write_batch(&ledger, jobs)).await;
        }
    });
}

/// Runs `f` on a ledger connection (under its lock) off the async threads.
async fn on_blocking_thread<T: Send + 'static>(
    connection: Arc<Mutex<Ledger>>,
    f: impl FnOnce(&mut Ledger) -> Result<T, LedgerError> + Send + 'static,
) -> Result<T, LedgerError> {
    tokio::task::spawn_blocking(move || f(&mut lock(&connection)))
        .await
        .unwrap_or_else(|err| Err(LedgerError::Corrupt(format!("ledger task failed: {err}"))))
}

/// The QR with its picture, made on a blocking thread (encoding takes about a millisecond).
async fn shown_qr(payload: QrPayload) -> Arc<ShownQr> {
    let kept = payload.clone();
    tokio::task::spawn_blocking(move || Arc::new(ShownQr::new(payload)))
        .await
        .unwrap_or_else(|err| {
            Arc::new(ShownQr {
                payload: kept,
                picture: Err(format!("the QR could not be drawn: {err}")),
            })
        })
}

/// One group commit of `jobs`.
fn write_batch(ledger: &Mutex<Ledger>, jobs: Vec<WriteJob>) {
    let mut guard = lock(ledger);
    // Without a batch (it could not begin) each write is its own transaction.
    let batched = guard.begin_batch().is_ok();
    let delivers: Vec<Deliver> = jobs.into_iter().map(|job| job(&mut guard)).collect();
    let commit = if batched {
        guard.end_batch().map_err(|err| err.to_string())
    } else {
        Ok(())
    };
    drop(guard);
    if let Err(err) = &commit {
        // Nothing of the batch stays: every writer is told, none believes its write.
        tracing::error!("ledger commit failed: {err}");
    }
    for deliver in delivers {
        deliver(&commit);
    }
}

/// How long today's totals wait after a change for more changes to count in the same query.
const TOTALS_COALESCE: Duration = Duration::from_millis(30);

/// How long a charge waits for its provider's first account check (only right after start);
/// past it the charge goes ahead and the provider itself refuses if it must.
const FIRST_ACCOUNT_CHECK_WAIT: Duration = Duration::from_secs(5);

/// Starts the service on `runtime`; resumes every order that had not ended.
///
/// # Errors
/// When the HTTP client cannot start.
pub fn start(
    runtime: Handle,
    ledger: Ledger,
    config: ServiceConfig,
    repaint: Repaint,
) -> Result<(ServiceHandle, EventReceiver), transport::TransportError> {
    let (events, receiver) = mpsc::unbounded_channel();
    let (writes, write_queue) = mpsc::unbounded_channel();
    // Read before any command can add an order: only these are resumed.
    let open = ledger.open_orders();
    let resumed: Vec<OrderNo> = open
        .as_ref()
        .map(|orders| orders.iter().map(|o| o.order_no.clone()).collect())
        .unwrap_or_default();
    let reader = match ledger.reader() {
        Ok(reader) => reader,
        Err(err) => {
            tracing::warn!("no second ledger connection, reads wait for writes: {err}");
            None
        }
    };
    let ledger = Arc::new(Mutex::new(ledger));
    let reader = reader.map_or_else(|| ledger.clone(), |reader| Arc::new(Mutex::new(reader)));
    let inner = Arc::new(Inner {
        runtime,
        transport: Transport::new(Duration::from_secs(15))?,
        config: std::sync::RwLock::new(Arc::new(config)),
        generation: std::sync::atomic::AtomicU64::new(0),
        ledger,
        reader,
        events,
        repaint,
        watches: Mutex::new(HashMap::new()),
        payer_pages: Mutex::new(HashMap::new()),
        charge_refusals: Mutex::new(HashMap::new()),
        account_checked: tokio::sync::Notify::new(),
        totals_wanted: tokio::sync::Notify::new(),
        writes,
        resumed,
        recovered: Mutex::new(std::collections::HashSet::new()),
        health: health::book(),
    });
    let handle = ServiceHandle { inner };
    match open {
        Ok(orders) => handle.resume(orders),
        Err(err) => handle
            .inner
            .notice(format!("cannot read open orders: {err}")),
    }
    handle.publish_totals();
    spawn_writer(
        &handle.inner.runtime,
        handle.inner.ledger.clone(),
        write_queue,
    );
    let inner = handle.inner.clone();
    handle.inner.runtime.spawn(async move {
        loop {
            inner.totals_wanted.notified().await;
            // Changes within this moment are counted by the one query after it.
            tokio::time::sleep(TOTALS_COALESCE).await;
            inner.publish_totals().await;
        }
    });
    handle.watch_day_boundary();
    handle.watch_accounts();
    Ok((handle, receiver))
}

impl ServiceHandle {
    /// Sends a command; the work happens on the runtime.
    #[track_caller]
    pub fn send(&self, command: Command) {
        let inner = self.inner.clone();
        tracing::debug!(?command, caller = %std::panic::Location::caller(), "command");
        self.inner.runtime.spawn(async move {
            match command {
                Command::Charge(order_no, request) => {
                    order::charge(inner, order_no, request).await;
                }
                Command::Cancel(order_no) => inner.cancel(order_no).await,
                Command::QueryNow(order_no) => inner.wake(&order_no, order::WatchCommand::QueryNow),
                Command::SimulatePayment(order_no) => inner.simulate_payment(order_no).await,
                Command::LoadHistory(query) => inner.load_history(query).await,
                Command::LoadSummary(date) => inner.load_summary(date).await,
                Command::LoadOrder(order_no) => inner.load_order(order_no).await,
                Command::ListCloses => inner.list_closes().await,
                Command::PreviewClose { operator } => inner.close_day(operator, false).await,
                Command::CloseDay { operator } => inner.close_day(operator, true).await,
                Command::Export(request, path) => inner.export(request, path).await,
            }
        });
    }

    /// Starts a sale and returns its fresh order number; the order's events follow.
    pub fn charge(&self, request: ChargeRequest) -> OrderNo {
        let order_no = OrderNo::generate(chrono::Local::now(), self.inner.config().demo);
        self.send(Command::Charge(order_no.clone(), request));
        order_no
    }

    /// The bridge page of an order (HTML), or `None` when there is none.
    pub async fn bridge_page(&self, order_no: OrderNo) -> Option<String> {
        self.inner.bridge_page(order_no).await
    }

    /// Handles a callback that reached the listener for `provider_id`.
    pub async fn handle_callback(
        &self,
        provider_id: &str,
        request: CallbackRequest,
    ) -> Option<CallbackAck> {
        self.inner
            .clone()
            .handle_callback(provider_id, request)
            .await
    }

    /// The orders found unfinished at start, oldest first: each is being resumed (asked
    /// about, or watched for its notify) until it ends.
    pub fn resumed(&self) -> &[OrderNo] {
        &self.inner.resumed
    }

    /// The provider accounts.
    pub fn providers(&self) -> Vec<Arc<dyn Provider>> {
        self.inner.config().providers.clone()
    }

    /// Applies new settings at once (the settings screen's save): new sales use the new
    /// provider accounts, timeouts and business day; orders already under way keep the account
    /// they were created with; account checks restart with the new accounts. Demo mode and
    /// the sandbox stay as they were.
    pub fn reconfigure(&self, config: ServiceConfig) {
        let config = ServiceConfig {
            demo: self.inner.config().demo,
            sandbox_control: self.inner.config().sandbox_control.clone(),
            ..config
        };
        *self
            .inner
            .config
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(config);
        self.inner
            .generation
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.inner.charge_refusals().clear();
        self.publish_totals();
        self.watch_accounts();
    }

    /// Proves an account's credentials with one signed call (its account check where the
    /// protocol has one, else a status query for an order that does not exist) and reports
    /// the verdict as [`Event::ConnectionTested`]. The account need not be configured yet.
    pub fn test_connection(&self, provider: Arc<dyn Provider>) {
        let inner = self.inner.clone();
        self.inner.runtime.spawn(async move {
            let verdict = inner.test_connection(provider.as_ref()).await;
            inner.emit(Event::ConnectionTested {
                provider_id: provider.id().to_string(),
                verdict,
            });
        });
    }

    /// Where providers are told to send notifies (the listener's base URL).
    pub fn notify_base(&self) -> String {
        self.inner.config().notify_base.clone()
    }

    /// Every provider account's health now (accounts not yet called are absent), with the
    /// latest success time; changes other than the time come as [`Event::Health`].
    pub fn health(&self) -> Vec<(String, ProviderHealth)> {
        self.inner
            .health
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .all()
    }

    /// Whether this is demo mode.
    pub fn is_demo(&self) -> bool {
        self.inner.config().demo
    }

    /// Runs a closure on the ledger off the async threads (for reports and the CLI).
    ///
    /// # Errors
    /// The closure's ledger error, or one saying the ledger task failed.
    pub async fn with_ledger<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Ledger) -> Result<T, LedgerError> + Send + 'static,
    ) -> Result<T, LedgerError> {
        self.inner.with_ledger(f).await
    }

    fn resume(&self, orders: Vec<OrderRow>) {
        for row in orders {
            tracing::info!(order_no = %row.order_no, status = %row.status, "resuming an order that had not ended");
            self.inner
                .recovered
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .insert(row.order_no.clone());
            self.inner
                .runtime
                .spawn(order::resume(self.inner.clone(), row));
        }
    }

    fn publish_totals(&self) {
        let inner = self.inner.clone();
        self.inner
            .runtime
            .spawn(async move { inner.publish_totals().await });
    }

    /// When the business day starts (config `day_start`), for screens that pick a day.
    pub fn day_start(&self) -> chrono::NaiveTime {
        self.inner.config().day_start
    }

    /// Republishes today's totals when the business day turns over, so the status bar
    /// resets at `day_start` even when no sale happens then. It wakes at least once a minute
    /// and compares windows rather than trusting one long sleep, which a suspended laptop or
    /// a changed clock would throw off.
    fn watch_day_boundary(&self) {
        let inner = self.inner.clone();
        self.inner.runtime.spawn(async move {
            let mut today = today_window(inner.config().day_start);
            loop {
                let wait = today.1.saturating_sub(now_ms()).clamp(0, 60_000);
                let wait = u64::try_from(wait).unwrap_or(60_000);
                // A few ms past the boundary, so that the new window is the one computed.
                tokio::time::sleep(Duration::from_millis(wait + 5)).await;
                let now = today_window(inner.config().day_start);
                if now != today {
                    today = now;
                    inner.publish_totals().await;
                }
            }
        });
    }

    /// Asks each provider that has an account check (balance, quota) now and then, never
    /// more often than it allows.
    fn watch_accounts(&self) {
        let generation = self
            .inner
            .generation
            .load(std::sync::atomic::Ordering::SeqCst);
        for provider in self.inner.config().providers.clone() {
            let inner = self.inner.clone();
            if provider
                .build_account_check(&inner.call_context(provider.id()))
                .is_none()
            {
                continue;
            }
            self.inner.runtime.spawn(async move {
                // Only a change is posted: an unchanged answer would wake the UI for nothing.
                let mut last: Option<Result<AccountStatus, String>> = None;
                loop {
                    if inner.generation.load(std::sync::atomic::Ordering::SeqCst) != generation {
                        return; // Settings changed: the new accounts have their own checks.
                    }
                    let ctx = inner.call_context(provider.id());
                    let Some((request, every)) = provider.build_account_check(&ctx) else {
                        return;
                    };
                    let status = match inner.transport.send(&request).await {
                        Ok(response) => {
                            let status = provider.parse_account_check(&response);
                            inner.record_answer(provider.as_ref(), status.as_ref().map(|_| ()));
                            status.map_err(|err| err.to_string())
                        }
                        Err(err) => {
                            inner.record_health(
                                provider.id(),
                                Err(Failure::unreachable(err.0.clone())),
                            );
                            Err(err.to_string())
                        }
                    };
                    inner.remember_account(
                        provider.id(),
                        status
                            .as_ref()
                            .ok()
                            .and_then(|account| account.refuse_charges.clone()),
                    );
                    if last.as_ref() != Some(&status) {
                        last = Some(status.clone());
                        inner.emit(Event::Account {
                            provider_id: provider.id().to_string(),
                            status,
                        });
                    }
                    tokio::time::sleep(every).await;
                }
            });
        }
    }
}

/// `[start, end)` of the current business day in local time, as Unix ms (see [`crate::day`]).
pub fn today_window(day_start: chrono::NaiveTime) -> (i64, i64) {
    let today = crate::day::business_date(&chrono::Local, now_ms(), day_start);
    crate::day::window(&chrono::Local, today, day_start)
}

/// Now as Unix ms.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

fn lock(ledger: &Mutex<Ledger>) -> MutexGuard<'_, Ledger> {
    // A panic elsewhere must not stop the till from recording sales: SQLite's own
    // transactions keep the file consistent, so a poisoned lock is still usable.
    ledger
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Inner {
    /// The current settings.
    fn config(&self) -> Arc<ServiceConfig> {
        self.config
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// One signed call with `provider`'s credentials; see [`ServiceHandle::test_connection`].
    async fn test_connection(&self, provider: &dyn Provider) -> ConnectionVerdict {
        let ctx = self.call_context(provider.id());
        let (request, account_check) = match provider.build_account_check(&ctx) {
            Some((request, _)) => (request, true),
            None => {
                // A fresh order number: no order has it, so the answer can only be "not found"
                // or a refusal of the call itself.
                let probe = crate::providers::OrderRef {
                    order_no: OrderNo::generate(chrono::Local::now(), false),
                    provider_order_id: None,
                };
                match provider.build_query(&probe, &ctx) {
                    Ok(request) => (request, false),
                    Err(err) => return ConnectionVerdict::Unproven(err.to_string()),
                }
            }
        };
        let response = match self.transport.send(&request).await {
            Ok(response) => response,
            Err(err) => return ConnectionVerdict::Unreachable(err.to_string()),
        };
        let read = if account_check {
            provider.parse_account_check(&response).map(|_| ())
        } else {
            provider.parse_query(&response).map(|_| ())
        };
        ConnectionVerdict::from_answer(provider, read)
    }

    fn provider(&self, id: &str) -> Option<Arc<dyn Provider>> {
        self.config()
            .providers
            .iter()
            .find(|p| p.id() == id)
            .cloned()
    }

    fn notify_url(&self, provider_id: &str) -> String {
        format!("{}/notify/{provider_id}", self.config().notify_base)
    }

    /// The bridge page of an order, as the payer's phone opens it.
    fn bridge_url(&self, order_no: &OrderNo) -> String {
        let config = self.config();
        let base = config.public_url.as_deref().unwrap_or(&config.notify_base);
        format!("{base}/pay/{order_no}")
    }

    fn call_context(&self, provider_id: &str) -> CallContext {
        CallContext {
            now_unix: now_ms() / 1000,
            notify_url: self.notify_url(provider_id),
        }
    }

    fn charge_refusals(&self) -> MutexGuard<'_, HashMap<String, Option<String>>> {
        self.charge_refusals
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Keeps an account check's verdict on charging and wakes charges waiting for it.
    fn remember_account(&self, provider_id: &str, refusal: Option<String>) {
        self.charge_refusals()
            .insert(provider_id.to_string(), refusal);
        self.account_checked.notify_waiters();
    }

    /// Why a sale with `provider` may not start now, from its latest account check (e.g. the
    /// phone that sees payments is offline), or `None`. Right after start, when the first
    /// check has not answered yet, it waits for it a little.
    async fn charge_refusal(&self, provider: &dyn Provider) -> Option<String> {
        // Only accounts with a check can refuse.
        provider.build_account_check(&self.call_context(provider.id()))?;
        let first_answer = async {
            loop {
                // Registered before the look-up, so that an answer in between is not missed.
                let checked = self.account_checked.notified();
                tokio::pin!(checked);
                checked.as_mut().enable();
                if let Some(refusal) = self.charge_refusals().get(provider.id()) {
                    return refusal.clone();
                }
                checked.await;
            }
        };
        tokio::time::timeout(FIRST_ACCOUNT_CHECK_WAIT, first_answer)
            .await
            .unwrap_or_else(|_| {
                tracing::info!(
                    provider = provider.id(),
                    "no account check answer yet: charging without it"
                );
                None
            })
    }

    fn payer_pages(&self) -> MutexGuard<'_, HashMap<OrderNo, String>> {
        self.payer_pages
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The page behind an order's bridge URL: the provider's stored pay page, or its signed
    /// form rebuilt from the ledger. `None` for unknown or ended orders.
    async fn bridge_page(&self, order_no: OrderNo) -> Option<String> {
        if let Some(page) = self.payer_pages().get(&order_no) {
            return Some(page.clone());
        }
        let key = order_no.clone();
        let order = self.read_ledger(move |l| l.get(&key)).await.ok()??;
        if order.status.is_final() {
            return None;
        }
        let provider = self.provider(&order.provider_id)?;
        match provider.build_create(&create_of(&order), &self.call_context(provider.id())) {
            Ok(CreateStep::PayerForm(form)) => Some(form.to_html()),
            _ => None,
        }
    }

    /// Whether the order was resumed at start.
    fn is_recovered(&self, order_no: &OrderNo) -> bool {
        self.recovered
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .contains(order_no)
    }

    fn emit(&self, event: Event) {
        // The receiver is gone only while the app shuts down.
        let _ = self.events.send(event);
        (self.repaint)();
    }

    fn notice(&self, message: String) {
        tracing::warn!("{message}");
        self.emit(Event::Notice(message));
    }

    /// A write to the ledger (a status change, an event row, a new order), committed with
    /// the others waiting at the same moment; resolves once it is durable (or failed).
    ///
    /// The write is queued when this is called, not when the answer is awaited: what the
    /// caller does meanwhile (a QR's picture, the next request) overlaps the commit, and
    /// writes queued one after the other are committed in that order.
    fn write_ledger<T, F>(&self, f: F) -> impl Future<Output = Result<T, LedgerError>> + use<T, F>
    where
        T: Send + 'static,
        F: FnOnce(&mut Ledger) -> Result<T, LedgerError> + Send + 'static,
    {
        let (done, answer) = tokio::sync::oneshot::channel();
        let job: WriteJob = Box::new(move |ledger: &mut Ledger| {
            let out = f(ledger);
            Box::new(move |commit: &Result<(), String>| {
                let result = match commit {
                    Ok(()) => out,
                    Err(err) => Err(LedgerError::Corrupt(format!("commit failed: {err}"))),
                };
                let _ = done.send(result);
            }) as Deliver
        });
        let queued = self.writes.send(job).is_ok();
        async move {
            if !queued {
                return Err(LedgerError::Corrupt("the ledger writer stopped".into()));
            }
            answer
                .await
                .unwrap_or_else(|_| Err(LedgerError::Corrupt("the ledger writer stopped".into())))
        }
    }

    /// A read on the read-only connection, off the async threads.
    async fn read_ledger<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Ledger) -> Result<T, LedgerError> + Send + 'static,
    ) -> Result<T, LedgerError> {
        on_blocking_thread(self.reader.clone(), move |reader| f(reader)).await
    }

    async fn with_ledger<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Ledger) -> Result<T, LedgerError> + Send + 'static,
    ) -> Result<T, LedgerError> {
        on_blocking_thread(self.ledger.clone(), f).await
    }

    /// Applies an update and tells the UI; returns the result, or `None` after reporting a
    /// ledger fault.
    async fn apply(
        &self,
        order_no: &OrderNo,
        update: Update,
        qr: Option<QrPayload>,
    ) -> Option<Applied> {
        self.apply_shown(order_no, update, qr, false).await
    }

    /// [`Inner::apply`] for an update that brings a QR which, when `browser_needed`, leads to
    /// a web page the payer's phone browser opens (the QR screen says so).
    async fn apply_shown(
        &self,
        order_no: &OrderNo,
        update: Update,
        qr: Option<QrPayload>,
        browser_needed: bool,
    ) -> Option<Applied> {
        let key = order_no.clone();
        let mut update = update;
        update.raw = update.raw.map(bounded_raw);
        let (source, reported) = (update.source, update.state.clone());
        let written = self.write_ledger(move |l| l.apply(&key, &update));
        // The QR's picture is made while the update is committed; the cashier sees the QR
        // with the row it belongs to (its payable amount, its expiry), as soon as both are
        // ready.
        let qr = match qr {
            Some(payload) => Some(shown_qr(payload).await),
            None => None,
        };
        match written.await {
            Ok(applied) => {
                let changed = applied.changed_from.is_some();
                if !changed
                    && applied.order.status == PaymentStatus::Paid
                    && matches!(source, "query" | "callback")
                    && !matches!(reported, ProviderState::Paid | ProviderState::Unknown(_))
                {
                    // Paid is terminal: a later answer that says otherwise is kept in the
                    // event log and shown, never applied.
                    self.notice(format!(
                        "订单 {order_no} 已收款，支付平台后来的回答（{reported:?}）不改变它 / order {order_no} is paid; a later {source} answer says {reported:?}: it stays paid"
                    ));
                }
                if let Some(from) = applied.changed_from {
                    tracing::info!(order_no = %order_no, %from, to = %applied.order.status, "order status");
                }
                if changed && applied.order.late_paid {
                    self.emit(Event::Notice(format!(
                        "迟到的付款：订单 {} 已收款 ¥{} / late payment received for order {}",
                        order_no,
                        applied.order.paid.unwrap_or(applied.order.amount),
                        order_no
                    )));
                }
                self.emit(Event::Order(Box::new(OrderUpdate {
                    recovered: self.is_recovered(order_no),
                    order: applied.order.clone(),
                    browser_needed: browser_needed && qr.is_some(),
                    qr,
                    status_changed: changed,
                })));
                if changed {
                    // Coalesced: a burst of payments costs one totals query, not one each.
                    self.totals_wanted.notify_one();
                }
                Some(applied)
            }
            Err(err) => {
                self.notice(format!("ledger could not record order {order_no}: {err}"));
                None
            }
        }
    }

    async fn note(
        &self,
        order_no: &OrderNo,
        kind: &'static str,
        detail: String,
        raw: Option<String>,
    ) {
        tracing::info!(order_no = %order_no, kind, "{detail}");
        let raw = raw.map(bounded_raw);
        let key = order_no.clone();
        let result = self
            .write_ledger(move |l| {
                l.note(&key, kind, &detail, raw.as_deref(), now_ms())?;
                l.get(&key)
            })
            .await;
        match result {
            Ok(Some(order)) => self.emit(Event::Order(Box::new(OrderUpdate {
                recovered: self.is_recovered(&order.order_no),
                order,
                qr: None,
                browser_needed: false,
                status_changed: false,
            }))),
            Ok(None) => {}
            Err(err) => self.notice(format!("ledger could not record order {order_no}: {err}")),
        }
    }

    async fn publish_totals(&self) {
        let (from, to) = today_window(self.config().day_start);
        match self.read_ledger(move |l| l.paid_totals(from, to)).await {
            Ok(totals) => self.emit(Event::Totals(totals)),
            Err(err) => self.notice(format!("cannot read today's totals: {err}")),
        }
    }

    /// The window of business day `date` in local time.
    fn day_window(&self, date: chrono::NaiveDate) -> (i64, i64) {
        crate::day::window(&chrono::Local, date, self.config().day_start)
    }

    async fn load_history(&self, query: HistoryQuery) {
        let (from, to) = self.day_window(query.date);
        let filter = query.filter.clone();
        let result = self
            .read_ledger(move |l| {
                let total = l.history_count(from, to, &filter)?;
                let rows = l.history_page(from, to, &filter, query.offset, query.limit)?;
                Ok((total, rows))
            })
            .await;
        match result {
            Ok((total, rows)) => self.emit(Event::History(Box::new(HistoryPage {
                date: query.date,
                filter: query.filter,
                total,
                offset: query.offset,
                rows,
            }))),
            Err(err) => self.notice(format!("cannot read the history: {err}")),
        }
    }

    async fn load_summary(&self, date: chrono::NaiveDate) {
        let (from, to) = self.day_window(date);
        let result = self
            .read_ledger(move |l| Ok((l.day_summary(from, to)?, l.history_choices(from, to)?)))
            .await;
        match result {
            Ok((summary, choices)) => {
                self.emit(Event::Summary(date, Box::new(summary), choices));
            }
            Err(err) => self.notice(format!("cannot read the day summary: {err}")),
        }
    }

    async fn load_order(&self, order_no: OrderNo) {
        let key = order_no.clone();
        let result = self
            .read_ledger(move |l| Ok((l.get(&key)?, l.events(&key)?)))
            .await;
        match result {
            Ok((Some(order), events)) => self.emit(Event::OrderDetail(Box::new(order), events)),
            Ok((None, _)) => self.notice(format!("order {order_no} is not in the ledger")),
            Err(err) => self.notice(format!("cannot read order {order_no}: {err}")),
        }
    }

    async fn list_closes(&self) {
        match self.read_ledger(|l| l.list_closes()).await {
            Ok(closes) => self.emit(Event::Closes(closes)),
            Err(err) => self.notice(format!("cannot read the closes: {err}")),
        }
    }

    /// Previews or records a close at now.
    async fn close_day(&self, operator: String, record: bool) {
        let now = now_ms();
        let result = self
            .with_ledger(move |l| {
                if record {
                    l.record_close(&operator, now)
                } else {
                    l.preview_close(&operator, now)
                }
            })
            .await;
        match result {
            Ok(close) if record => {
                tracing::info!(number = close.number, "day closed");
                self.emit(Event::DayClosed(Box::new(close)));
                self.list_closes().await;
            }
            Ok(close) => self.emit(Event::ClosePreview(Box::new(close))),
            Err(err) => self.notice(format!("cannot close the day: {err}")),
        }
    }

    async fn export(&self, request: ExportRequest, path: PathBuf) {
        let day_start = self.config().day_start;
        let orders = self
            .read_ledger(move |l| match request {
                ExportRequest::Days { from, to } => {
                    let (from, to) = crate::day::range_window(&chrono::Local, from, to, day_start);
                    l.orders_between(from, to)
                }
                ExportRequest::Close(number) => l.close_orders(number),
            })
            .await;
        let result = match orders {
            Ok(orders) => {
                let target = path.clone();
                tokio::task::spawn_blocking(move || {
                    if let Some(dir) = target.parent() {
                        std::fs::create_dir_all(dir).map_err(|err| {
                            format!("cannot make the folder {}: {err}", dir.display())
                        })?;
                    }
                    crate::export::export_file(&target, &orders).map_err(|err| err.to_string())
                })
                .await
                .unwrap_or_else(|err| Err(format!("export task failed: {err}")))
                .map(|count| (path, count))
            }
            Err(err) => Err(err.to_string()),
        };
        self.emit(Event::Exported(result));
    }

    fn wake(&self, order_no: &OrderNo, command: order::WatchCommand) {
        let watches = self
            .watches
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(tx) = watches.get(order_no) {
            let _ = tx.send(command);
        }
    }

    async fn cancel(self: Arc<Self>, order_no: OrderNo) {
        let update = Update::new(
            "staff",
            ProviderState::Cancelled,
            "收银员取消 / cancelled by staff (still watched for a late payment)",
            now_ms(),
        );
        let applied = self.apply(&order_no, update, None).await;
        self.wake(&order_no, order::WatchCommand::Refresh);
        if let Some(applied) = applied
            && applied.changed_from.is_some()
        {
            self.close_at_provider(&applied.order).await;
        }
    }

    /// Tells the provider that a cancelled order is closed, where its protocol can (so that
    /// it can no longer be paid), and keeps the answer in the order's event log.
    async fn close_at_provider(&self, order: &OrderRow) {
        let Some(provider) = self.provider(&order.provider_id) else {
            return;
        };
        let order_ref = crate::providers::OrderRef {
            order_no: order.order_no.clone(),
            provider_order_id: order.provider_order_id.clone(),
        };
        let Some(request) = provider.build_close(&order_ref, &self.call_context(provider.id()))
        else {
            return;
        };
        let (detail, raw) = match self.transport.send(&request).await {
            Ok(response) => {
                let closed = provider.parse_close(&response);
                self.record_answer(provider.as_ref(), closed.as_ref().copied());
                let detail = match closed {
                    Ok(()) => "支付平台已关闭订单 / the provider closed the order".to_string(),
                    Err(err) => {
                        format!("支付平台未关闭订单 / the provider did not close the order: {err}")
                    }
                };
                (detail, Some(response.body_text()))
            }
            Err(err) => {
                self.record_health(provider.id(), Err(Failure::unreachable(err.0.clone())));
                (
                    format!("关闭订单请求失败 / the close request failed: {err}"),
                    None,
                )
            }
        };
        self.note(&order.order_no, "close", detail, raw).await;
    }

    async fn simulate_payment(self: Arc<Self>, order_no: OrderNo) {
        let Some(base) = self.config().sandbox_control.clone() else {
            self.notice("simulated payments exist only in demo mode".into());
            return;
        };
        // A form-post provider learns of the order when the payer's browser submits its
        // form: do what the payer's phone would do first.
        let key = order_no.clone();
        if let Ok(Some(order)) = self.read_ledger(move |l| l.get(&key)).await
            && let Some(provider) = self.provider(&order.provider_id)
            && let Ok(CreateStep::PayerForm(form)) =
                provider.build_create(&create_of(&order), &self.call_context(provider.id()))
        {
            let fields: Vec<(&str, &str)> = form
                .fields
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            let submit = crate::providers::HttpRequest::post_form(form.action.clone(), &fields);
            if let Err(err) = self.transport.send(&submit).await {
                self.notice(format!("sandbox unreachable: {err}"));
                return;
            }
        }
        let request =
            crate::providers::HttpRequest::post_form(format!("{base}/orders/{order_no}/pay"), &[]);
        match self.transport.send(&request).await {
            Ok(response) if response.status == 200 => {
                // The till learns of it the way it would in real life: by query or notify.
                self.wake(&order_no, order::WatchCommand::QueryNow);
            }
            Ok(response) => self.notice(format!(
                "sandbox refused the simulated payment: HTTP {} {}",
                response.status,
                crate::providers::wire::excerpt(&response.body_text())
            )),
            Err(err) => self.notice(format!("sandbox unreachable: {err}")),
        }
    }

    async fn handle_callback(
        self: Arc<Self>,
        provider_id: &str,
        request: CallbackRequest,
    ) -> Option<CallbackAck> {
        let provider = self.provider(provider_id)?;
        let raw = callback_text(&request);
        let report = match provider.verify_callback(&request) {
            Ok(report) => report,
            Err(err) => {
                tracing::warn!(
                    provider = provider_id,
                    "callback refused: {err}: {}",
                    crate::providers::wire::excerpt(&raw)
                );
                self.refused_callback(provider_id, &request, &err.to_string(), raw)
                    .await;
                return Some(provider.callback_ack(false));
            }
        };
        let order_no = report.order_no.clone();
        let key = order_no.clone();
        let order = match self.read_ledger(move |l| l.get(&key)).await {
            Ok(Some(order)) if order.provider_id == provider_id => order,
            Ok(_) => {
                // No row is made for it: the raw callback goes to the log, staff are told.
                tracing::warn!(provider = provider_id, order_no = %order_no, "callback for an order this till does not have: ignored: {}", crate::providers::wire::excerpt(&raw));
                self.notice(format!(
                    "收到本机没有的订单 {order_no} 的回调，已忽略 / a notify from {provider_id} for order {order_no}, which this till does not have, was ignored"
                ));
                return Some(provider.callback_ack(false));
            }
            Err(err) => {
                self.notice(format!("ledger unreadable while a callback arrived: {err}"));
                return Some(provider.callback_ack(false));
            }
        };
        let expected = order.payable_or_amount();
        if report.state == ProviderState::Paid
            && let Some(amount) = report.amount
            && amount != expected
        {
            let detail = format!(
                "回调金额 {amount} 与应付 {expected} 不符 / callback says {amount} paid, order asks {expected}"
            );
            if provider.can_query() && !report.amount_signed {
                // Not every protocol signs the amount: ask the provider itself.
                self.note(
                    &order_no,
                    "callback",
                    format!("{detail}: not accepted, asking the provider"),
                    Some(raw),
                )
                .await;
                self.wake(&order_no, order::WatchCommand::QueryNow);
                return Some(provider.callback_ack(true));
            }
        }
        let detail = match report.state {
            ProviderState::Paid => format!(
                "支付平台通知已付款 / the provider's notify says paid (code {})",
                report.raw_code
            ),
            _ => format!("notify: code {}", report.raw_code),
        };
        let mut update = Update::new("callback", report.state.clone(), detail, now_ms());
        update.raw = Some(raw);
        update.paid_amount = report.amount;
        update.paid_amount_signed = report.amount_signed;
        crash::reached(crash::CrashPoint::CallbackBeforeLedger);
        let applied = self.apply(&order_no, update, None).await?;
        crash::reached(crash::CrashPoint::CallbackAfterLedger);
        self.wake(
            &order_no,
            if applied.order.status == PaymentStatus::Paid {
                order::WatchCommand::Paid
            } else {
                order::WatchCommand::Refresh
            },
        );
        Some(provider.callback_ack(true))
    }
}

impl Inner {
    /// A callback whose signature (or form) did not check out: it changes nothing, but the
    /// order it names (if this till has it) keeps it in its event log, and staff are told.
    async fn refused_callback(
        &self,
        provider_id: &str,
        request: &CallbackRequest,
        why: &str,
        raw: String,
    ) {
        // Unverified: only used to find where to file it, never to change the order.
        let candidates: Vec<OrderNo> = request
            .params()
            .into_iter()
            .filter_map(|(_, value)| OrderNo::new(&value).ok())
            .collect();
        let owner = provider_id.to_string();
        let claimed = self
            .read_ledger(move |l| {
                for candidate in &candidates {
                    if let Some(order) = l.get(candidate)?
                        && order.provider_id == owner
                    {
                        return Ok(Some(order.order_no));
                    }
                }
                Ok(None)
            })
            .await
            .ok()
            .flatten();
        match claimed {
            Some(order_no) => {
                self.note(
                    &order_no,
                    "callback",
                    format!("回调验证失败，已拒绝，不算收款 / a notify was refused, it does not count as paid: {why}"),
                    Some(raw),
                )
                .await;
                self.notice(format!(
                    "订单 {order_no} 收到验证失败的回调，已拒绝 / a notify for order {order_no} failed its check and was refused: {why}"
                ));
            }
            None => self.notice(format!(
                "{provider_id} 的回调验证失败，已拒绝 / a notify from {provider_id} failed its check and was refused: {why}"
            )),
        }
    }
}

/// The most of a provider's raw answer kept in an order's event log: enough to read what
/// it said, not megabytes of an error page.
const MAX_RAW_CHARS: usize = 16 * 1024;

/// `raw`, cut to [`MAX_RAW_CHARS`] with a mark saying how long it was.
fn bounded_raw(raw: String) -> String {
    if raw.chars().nth(MAX_RAW_CHARS).is_none() {
        return raw;
    }
    let kept: String = raw.chars().take(MAX_RAW_CHARS).collect();
    format!("{kept}… [cut: {} bytes in all]", raw.len())
}

/// The create description of a stored order (to rebuild a payer's form).
fn create_of(order: &OrderRow) -> crate::providers::CreateOrder {
    crate::providers::CreateOrder {
        order_no: order.order_no.clone(),
        amount: order.amount,
        channel: order.channel,
        subject: order.subject.clone(),
    }
}

/// A callback as one line of text for the event log (signatures are not secrets).
fn callback_text(request: &CallbackRequest) -> String {
    let query = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(request.query.iter())
        .finish();
    let body = String::from_utf8_lossy(&request.body);
    format!("{} ?{query} {body}", request.method)
}
