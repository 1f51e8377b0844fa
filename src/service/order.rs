//! One task per order: write it, create it at the provider, then watch it (query on the poll
//! schedule, react to staff and callbacks) until it is paid or its watch window closes.
//!
//! Invariant: the create request is built only after the ledger insert returned, and it is
//! sent at most once; when its answer is lost the order is looked up, never re-created.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;

use super::crash::{self, CrashPoint};
use super::{ChargeRequest, Event, Inner, now_ms, poll};
use crate::ledger::{NewOrder, OrderRow, Update};
use crate::model::{OrderNo, PaymentStatus, ProviderState, QrPayload};
use crate::providers::health::Failure;
use crate::providers::{
    CreateOrder, CreateStep, HttpResponse, OrderRef, PayerForm, Provider, ProviderError,
    QueryOutcome,
};

/// What a watch can be told.
#[derive(Clone, Copy, Debug)]
pub enum WatchCommand {
    /// Query the provider now (staff asked, or a callback needs checking).
    QueryNow,
    /// The order changed elsewhere (staff, callback): re-read it.
    Refresh,
    /// A callback's paid status is committed: the watch ends (paid is terminal) without
    /// reading the order again, one read less per paying notify.
    Paid,
}

/// Starts a sale: ledger first, then the create request, then the watch.
pub async fn charge(inner: Arc<Inner>, order_no: OrderNo, request: ChargeRequest) {
    let fail = |message: String| {
        tracing::warn!(order_no = %order_no, "charge refused: {message}");
        inner.emit(Event::ChargeFailed {
            order_no: order_no.clone(),
            message,
        });
    };
    let Some(provider) = inner.provider(&request.provider_id) else {
        fail(format!(
            "no provider `{}` in the config",
            request.provider_id
        ));
        return;
    };
    if !provider.channels().contains(&request.channel) {
        fail(format!(
            "{} 不支持 {} / {} does not offer {}",
            provider.display_name(),
            request.channel.name_zh(),
            provider.display_name(),
            request.channel.name_en()
        ));
        return;
    }
    if let Some(refusal) = inner.charge_refusal(provider.as_ref()).await {
        // The provider's own words, e.g. V免签's "the monitor phone is offline".
        fail(refusal);
        return;
    }
    let created_at = now_ms();
    let new = NewOrder {
        order_no: order_no.clone(),
        provider_id: provider.id().to_string(),
        provider_kind: provider.kind().to_string(),
        channel: request.channel,
        amount: request.amount,
        subject: request.subject.clone(),
        operator: request.operator.clone(),
        demo: inner.config().demo,
        created_at,
        expires_at: created_at + millis(inner.config().order_timeout),
    };
    let row = match inner.with_ledger(move |l| l.insert_order(&new)).await {
        Ok(row) => row,
        Err(err) => {
            fail(format!(
                "账本写入失败，未收款 / the ledger refused the order, nothing was charged: {err}"
            ));
            return;
        }
    };
    inner.emit(Event::Order(Box::new(super::OrderUpdate {
        order: row.clone(),
        qr: None,
        browser_needed: false,
        status_changed: true,
        recovered: false,
    })));
    let create = CreateOrder {
        order_no: order_no.clone(),
        amount: request.amount,
        channel: request.channel,
        subject: request.subject,
    };
    let Some(mut watch) = Watch::new(inner.clone(), provider, &row) else {
        return;
    };
    // The row is committed: only now is the request built and sent.
    if watch.create(&create, &row).await {
        watch.run().await;
    }
    watch.finish();
}

/// Resumes an order found unfinished at start: asks its provider about it first (by our
/// order number when the create's answer was lost), then watches it as a sale's own watch
/// does; a provider without a query is watched for its notify.
pub async fn resume(inner: Arc<Inner>, row: OrderRow) {
    let Some(provider) = inner.provider(&row.provider_id) else {
        inner
            .note(
                &row.order_no,
                "recovery",
                format!(
                    "provider `{}` is no longer configured: order cannot be followed",
                    row.provider_id
                ),
                None,
            )
            .await;
        return;
    };
    let detail = if provider.can_query() {
        "恢复的订单 / recovered after a restart: asking the provider"
    } else {
        "恢复的订单 / recovered after a restart: this provider has no query, waiting for its notify"
    };
    inner
        .note(&row.order_no, "recovery", detail.into(), None)
        .await;
    let Some(mut watch) = Watch::new(inner, provider, &row) else {
        return;
    };
    // The provider is asked before anything else, the expiry timer included: it knows
    // whether the order exists (a `creating` order's create may never have left, or its
    // answer was lost; either way it is looked up by our order number, never sent again)
    // and whether it was paid while the till was down.
    if watch.provider.can_query() {
        watch.query(&row, false).await;
    }
    watch.run().await;
    watch.finish();
}

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

struct Watch {
    inner: Arc<Inner>,
    provider: Arc<dyn Provider>,
    order_no: OrderNo,
    created_at: i64,
    provider_order_id: Option<String>,
    qr: Option<QrPayload>,
    rx: mpsc::UnboundedReceiver<WatchCommand>,
    /// Our own sender, so the channel never closes under us and `finish` removes only ours.
    tx: mpsc::UnboundedSender<WatchCommand>,
    failures: u32,
    last_code: Option<String>,
    last_query: Option<tokio::time::Instant>,
    ended_at: Option<i64>,
}

impl Watch {
    /// A watch for the order, or `None` when one already runs (an order has one watch).
    fn new(inner: Arc<Inner>, provider: Arc<dyn Provider>, row: &OrderRow) -> Option<Self> {
        let (tx, rx) = mpsc::unbounded_channel();
        {
            let mut watches = inner
                .watches
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if watches.contains_key(&row.order_no) {
                return None;
            }
            watches.insert(row.order_no.clone(), tx.clone());
        }
        Some(Watch {
            inner,
            provider,
            order_no: row.order_no.clone(),
            created_at: row.created_at,
            provider_order_id: row.provider_order_id.clone(),
            qr: None,
            rx,
            tx,
            failures: 0,
            last_code: None,
            last_query: None,
            ended_at: None,
        })
    }

    fn finish(self) {
        let mut watches = self
            .inner
            .watches
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if watches
            .get(&self.order_no)
            .is_some_and(|tx| tx.same_channel(&self.tx))
        {
            watches.remove(&self.order_no);
            // The order is no longer watched: its stored pay page (if any) goes with it.
            self.inner.payer_pages().remove(&self.order_no);
        }
    }

    /// Sends the create request once. Returns whether the order should be watched (false
    /// only when the provider refused it outright, so it never existed there). `row` is the
    /// order as written before the request.
    async fn create(&mut self, create: &CreateOrder, row: &OrderRow) -> bool {
        let ctx = self.inner.call_context(self.provider.id());
        let request = match self.provider.build_create(create, &ctx) {
            Ok(CreateStep::Server(request)) => request,
            Ok(CreateStep::PayerForm(form)) => {
                self.payer_form(&form).await;
                return true;
            }
            Err(err) => {
                let update = Update::new(
                    "create",
                    ProviderState::Failed,
                    format!("not sent: {err}"),
                    now_ms(),
                );
                self.inner.apply(&self.order_no, update, None).await;
                return false;
            }
        };
        // Some protocols carry credentials in the URL: only the masked form is ever logged.
        tracing::debug!(order_no = %self.order_no, url = %request.loggable_url(), "create");
        crash::reached(CrashPoint::BeforeCreate);
        let response = match self.inner.transport.send(&request).await {
            Ok(response) => {
                crash::reached(CrashPoint::AfterCreateSent);
                response
            }
            Err(err) => {
                self.inner
                    .record_health(self.provider.id(), Err(Failure::unreachable(err.0.clone())));
                self.unsure(format!("下单请求失败 / create request failed: {err}"), None)
                    .await;
                return true;
            }
        };
        let parsed = self.provider.parse_create(&response);
        self.inner
            .record_answer(self.provider.as_ref(), parsed.as_ref().map(|_| ()));
        match parsed {
            Ok(outcome) => {
                // A pay page for the payer's browser is served at the bridge, and the QR
                // leads there.
                let browser_needed = outcome.payer_browser || outcome.payer_page.is_some();
                let qr = match outcome.payer_page {
                    Some(page) => {
                        self.inner.payer_pages().insert(self.order_no.clone(), page);
                        Some(QrPayload::Text(self.inner.bridge_url(&self.order_no)))
                    }
                    None => outcome.qr,
                };
                self.provider_order_id
                    .clone_from(&outcome.provider_order_id);
                self.qr.clone_from(&qr);
                let mut update = Update::new(
                    "create",
                    ProviderState::Pending,
                    "已下单 / order created at the provider",
                    now_ms(),
                );
                update.raw = Some(response.body_text());
                update.provider_order_id = outcome.provider_order_id;
                update.payable = outcome.payable;
                update.expires_at = outcome.timeout_secs.map(|secs| self.expiry_after(secs));
                let ask_now = qr.is_none() && self.provider.can_query();
                let (inner, order_no) = (self.inner.clone(), self.order_no.clone());
                let recorded = inner.apply_shown(&order_no, update, qr, browser_needed);
                if ask_now {
                    // An answer without the QR (ispay.in gives only its order id): the QR
                    // comes with the status, and the cashier is waiting for it, so it is
                    // asked for while this answer is committed. `join!` polls `recorded`
                    // first, which queues its write before the query is sent: the query's
                    // own update is committed after it.
                    tokio::join!(recorded, self.query(row, false));
                } else {
                    recorded.await;
                }
                true
            }
            Err(ProviderError::Rejected { code, message }) => {
                let mut update = Update::new(
                    "create",
                    ProviderState::Failed,
                    format!(
                        "支付平台拒绝下单 / provider refused the order: {message} (code {code})"
                    ),
                    now_ms(),
                );
                update.raw = Some(response.body_text());
                self.inner.apply(&self.order_no, update, None).await;
                false
            }
            Err(err) => {
                self.unsure(
                    format!("下单结果不明 / create answer not understood: {err}"),
                    Some(&response),
                )
                .await;
                true
            }
        }
    }

    /// The provider's create is a form the payer's browser submits: the QR is the bridge
    /// page (when payers can reach the listener) or the signed link itself.
    async fn payer_form(&mut self, form: &PayerForm) {
        let (qr, how) = if self.inner.config().public_url.is_some() || self.inner.config().demo {
            (self.inner.bridge_url(&self.order_no), "bridge page")
        } else {
            (form.to_get_url(), "signed link")
        };
        let qr = QrPayload::Text(qr);
        self.qr = Some(qr.clone());
        let update = Update::new(
            "create",
            ProviderState::Pending,
            format!(
                "等待顾客手机打开支付页 / the QR ({how}) opens the provider's page on the payer's phone"
            ),
            now_ms(),
        );
        // Either way the payer's phone browser opens the provider's page.
        self.inner
            .apply_shown(&self.order_no, update, Some(qr), true)
            .await;
    }

    fn expiry_after(&self, secs: u64) -> i64 {
        self.created_at + i64::try_from(secs).unwrap_or(0).saturating_mul(1000)
    }

    /// The create's outcome is unknown: say so; the watch then looks the order up.
    async fn unsure(&mut self, detail: String, response: Option<&HttpResponse>) {
        self.failures = 1;
        let detail = if self.provider.can_query() {
            format!("{detail}; asking the provider whether the order exists (it is not re-sent)")
        } else {
            format!("{detail}; this provider has no query: waiting for its notify")
        };
        self.inner
            .note(
                &self.order_no,
                "create",
                detail,
                response.map(HttpResponse::body_text),
            )
            .await;
    }

    async fn current(&self) -> Option<OrderRow> {
        let key = self.order_no.clone();
        match self.inner.read_ledger(move |l| l.get(&key)).await {
            Ok(row) => row,
            Err(err) => {
                self.inner
                    .notice(format!("cannot read order {}: {err}", self.order_no));
                None
            }
        }
    }

    async fn run(&mut self) {
        let grace = millis(self.inner.config().late_grace);
        let min_interval = self.provider.poll_limits().min_interval;
        loop {
            let Some(order) = self.current().await else {
                return;
            };
            if order.status == PaymentStatus::Paid {
                return;
            }
            let now = now_ms();
            let expires_at = order.expires_at.unwrap_or(self.created_at);
            if matches!(
                order.status,
                PaymentStatus::Creating | PaymentStatus::Pending
            ) && now >= expires_at
            {
                let update = Update::new(
                    "timer",
                    ProviderState::Expired,
                    "二维码已过期 / no payment in time",
                    now,
                );
                self.inner.apply(&self.order_no, update, None).await;
                continue;
            }
            let ended = order.status.is_final();
            if ended && self.ended_at.is_none() {
                self.ended_at = Some(now);
            }
            let watch_until = expires_at.max(self.ended_at.unwrap_or(expires_at)) + grace;
            let age = Duration::from_millis(u64::try_from(now - self.created_at).unwrap_or(0));
            let delay = if !self.provider.can_query() {
                (now < watch_until)
                    .then(|| Duration::from_millis(u64::try_from(watch_until - now).unwrap_or(0)))
            } else if self.failures > 0 {
                (now < watch_until).then(|| poll::retry_delay(self.failures - 1, min_interval))
            } else {
                poll::next_poll(
                    age,
                    min_interval,
                    ended || now >= expires_at,
                    now < watch_until,
                )
            };
            let Some(delay) = delay else {
                tracing::debug!(order_no = %self.order_no, "watch window closed");
                return;
            };
            // No QR and never asked (the create's answer was lost or not understood; an
            // answer without the QR is asked about in `create` already): ask at once rather
            // than after the polling interval, the cashier is waiting. Later queries keep
            // the provider's interval.
            let delay = if self.qr.is_none()
                && self.last_query.is_none()
                && self.provider.can_query()
                && !ended
            {
                Duration::ZERO
            } else {
                delay
            };
            // Wake at expiry to mark it, whatever the poll delay.
            let delay = if ended {
                delay
            } else {
                delay.min(Duration::from_millis(
                    u64::try_from(expires_at - now).unwrap_or(0),
                ))
            };
            tokio::select! {
                () = tokio::time::sleep(delay) => self.query(&order, false).await,
                command = self.rx.recv() => match command {
                    Some(WatchCommand::QueryNow) => self.query(&order, true).await,
                    Some(WatchCommand::Paid) => return,
                    Some(WatchCommand::Refresh) | None => {}
                },
            }
        }
    }

    async fn query(&mut self, order: &OrderRow, asked: bool) {
        if !self.provider.can_query() {
            if asked {
                self.inner
                    .note(
                        &self.order_no,
                        "query",
                        "this provider has no status query: waiting for its notify".into(),
                        None,
                    )
                    .await;
            }
            return;
        }
        let min_interval = self.provider.poll_limits().min_interval;
        if let Some(last) = self.last_query
            && last.elapsed() < min_interval
        {
            let wait = min_interval.saturating_sub(last.elapsed());
            if !asked {
                return;
            }
            if wait > Duration::from_secs(5) {
                self.inner
                    .note(
                        &self.order_no,
                        "query",
                        format!(
                            "provider allows one query per {}s: next in {}s",
                            min_interval.as_secs(),
                            wait.as_secs() + 1
                        ),
                        None,
                    )
                    .await;
                return;
            }
            // Staff asked: a short wait keeps within the provider's limit.
            tokio::time::sleep(wait).await;
        }
        let order_ref = OrderRef {
            order_no: self.order_no.clone(),
            provider_order_id: self.provider_order_id.clone(),
        };
        let ctx = self.inner.call_context(self.provider.id());
        let request = match self.provider.build_query(&order_ref, &ctx) {
            Ok(request) => request,
            Err(err) => {
                // Counted as a failure: backs off and is told once, not at every poll.
                self.failed(format!("cannot query: {err}"), None).await;
                return;
            }
        };
        tracing::debug!(order_no = %self.order_no, url = %request.loggable_url(), "query");
        let sent = self.inner.transport.send(&request).await;
        // Timed from the answer, not the request: the provider saw the request before it
        // answered, so a limit like "one query per minute" holds on its clock too, whatever
        // the network delays were.
        self.last_query = Some(tokio::time::Instant::now());
        let response = match sent {
            Ok(response) => response,
            Err(err) => {
                self.inner
                    .record_health(self.provider.id(), Err(Failure::unreachable(err.0.clone())));
                self.failed(
                    format!("查询失败，稍后重试 / query failed, retrying: {err}"),
                    None,
                )
                .await;
                return;
            }
        };
        let parsed = self.provider.parse_query(&response);
        self.inner
            .record_answer(self.provider.as_ref(), parsed.as_ref().map(|_| ()));
        match parsed {
            Ok(QueryOutcome::Report(report)) => {
                let recovered = self.failures > 0;
                self.failures = 0;
                let qr_new = self.qr.is_none() && report.qr.is_some();
                if qr_new {
                    self.qr.clone_from(&report.qr);
                }
                let code_new = self.last_code.as_deref() != Some(report.raw_code.as_str());
                let learns_id =
                    self.provider_order_id.is_none() && report.provider_order_id.is_some();
                if learns_id {
                    self.provider_order_id.clone_from(&report.provider_order_id);
                }
                let moves = order.status.apply(&report.state).is_some();
                let news = moves || qr_new || code_new || learns_id || recovered || asked;
                // A notify may have paid the order while this answer was on its way: an
                // answer that says otherwise is then recorded (and shown), never dropped.
                // (Read only when nothing else makes the answer worth recording.)
                if !news
                    && (report.state == ProviderState::Paid
                        || !self
                            .current()
                            .await
                            .is_some_and(|now| now.status == PaymentStatus::Paid))
                {
                    return;
                }
                self.last_code = Some(report.raw_code.clone());
                let detail = match &report.state {
                    ProviderState::Confirming => {
                        "已付款，待平台确认 / paid, awaiting the provider's confirmation"
                            .to_string()
                    }
                    ProviderState::Paid => {
                        "支付平台确认已付款 / the provider confirms payment".to_string()
                    }
                    _ => format!("provider state {}", report.raw_code),
                };
                let still_open = matches!(
                    report.state,
                    ProviderState::Pending | ProviderState::Confirming
                );
                let reported = report.state.clone();
                let mut update = Update::new("query", report.state.clone(), detail, now_ms());
                update.raw = Some(response.body_text());
                update.provider_order_id = report.provider_order_id;
                if report.state == ProviderState::Paid {
                    update.paid_amount = report.amount;
                }
                update.expires_at = report.timeout_secs.map(|secs| {
                    self.created_at + i64::try_from(secs).unwrap_or(0).saturating_mul(1000)
                });
                self.inner
                    .apply(
                        &self.order_no,
                        update,
                        if qr_new { report.qr } else { None },
                    )
                    .await;
                if let ProviderState::Unknown(code) = &reported
                    && code_new
                {
                    // Shown on the QR screen: the till does not guess what a new code means.
                    self.inner
                        .note(
                            &self.order_no,
                            "query",
                            format!(
                                "支付平台返回不明状态 {code}，订单保持不变 / the provider answered an unknown state {code}: the order is left as it is"
                            ),
                            None,
                        )
                        .await;
                } else if recovered && still_open {
                    // Replaces the failure message staff were shown.
                    self.inner
                        .note(
                            &self.order_no,
                            "query",
                            "支付平台恢复应答 / the provider answers again".into(),
                            None,
                        )
                        .await;
                }
            }
            Ok(QueryOutcome::NotFound { message }) => {
                if order.status == PaymentStatus::Creating && self.provider_order_id.is_none() {
                    let mut update = Update::new(
                        "query",
                        ProviderState::Failed,
                        format!(
                            "支付平台没有此订单：下单未成功 / the provider has no such order, so it was never created: {message}"
                        ),
                        now_ms(),
                    );
                    update.raw = Some(response.body_text());
                    self.inner.apply(&self.order_no, update, None).await;
                } else {
                    self.failed(
                        format!("provider says it has no such order: {message}"),
                        Some(&response),
                    )
                    .await;
                }
            }
            Err(err) => {
                self.failed(
                    format!("查询结果不明 / query answer not understood: {err}"),
                    Some(&response),
                )
                .await
            }
        }
    }

    /// A query failed: back off, and tell staff on the first failure and every tenth.
    async fn failed(&mut self, detail: String, response: Option<&HttpResponse>) {
        self.failures = self.failures.saturating_add(1);
        if self.failures == 1 || self.failures.is_multiple_of(10) {
            let raw = response.map(|r| format!("HTTP {}\n{}", r.status, r.body_text()));
            self.inner.note(&self.order_no, "query", detail, raw).await;
        }
    }
}
