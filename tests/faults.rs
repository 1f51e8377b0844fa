//! The till against a misbehaving provider: one test per row of the README's table "Faults
//! and what the till does". Each fault is injected through the sandbox's control API
//! (`/_sandbox/faults/{kind}`, `/_sandbox/orders/{no}/fault`) and each test checks the
//! outcome: the order is never wrongly paid, staff get a clear message, and the provider's
//! raw answer is in the order's event log.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // Tests fail loudly.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use qrtill::ledger::{EventRow, Ledger, OrderRow};
use qrtill::model::{Channel, Fen, OrderNo, PaymentStatus};
use qrtill::sandbox::{Sandbox, SandboxOptions};
use qrtill::service::{self, ChargeRequest, Event, EventReceiver, ServiceConfig, ServiceHandle};

const S: fn(u64) -> Duration = Duration::from_secs;

struct Rig {
    service: ServiceHandle,
    events: EventReceiver,
    sandbox: Sandbox,
    /// Every notice the service posted so far.
    notices: Vec<String>,
    _dir: tempfile::TempDir,
}

/// A sandbox (orders living `lifetime`) and a service with its callback listener.
async fn rig(lifetime: Duration) -> Rig {
    let _ = tracing_subscriber::fmt()
        .with_env_filter("qrtill=debug")
        .with_test_writer()
        .try_init();
    let options = SandboxOptions {
        order_timeout: lifetime,
        ..SandboxOptions::default()
    };
    let sandbox = Sandbox::start(SocketAddr::from(([127, 0, 0, 1], 0)), options)
        .await
        .expect("sandbox");
    let dir = tempfile::tempdir().expect("temp dir");
    let ledger = Ledger::open(&dir.path().join("ledger.sqlite3")).expect("ledger");
    let socket = service::listener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .expect("listener socket");
    let config = ServiceConfig {
        providers: sandbox.demo_providers(),
        order_timeout: S(300),
        late_grace: S(60),
        demo: true,
        sandbox_control: Some(sandbox.control_url()),
        notify_base: format!("http://{}", socket.local_addr().expect("addr")),
        public_url: None,
        day_start: qrtill::day::MIDNIGHT,
    };
    let (service, events) = service::start(
        tokio::runtime::Handle::current(),
        ledger,
        config,
        Arc::new(|| {}),
    )
    .expect("service");
    service::listener::serve(socket, service.clone()).expect("listener");
    Rig {
        service,
        events,
        sandbox,
        notices: Vec::new(),
        _dir: dir,
    }
}

fn sale(amount: i64, provider: &str) -> ChargeRequest {
    ChargeRequest {
        amount: Fen(amount),
        channel: Channel::Alipay,
        provider_id: provider.into(),
        subject: "test".into(),
        operator: "A01".into(),
    }
}

impl Rig {
    /// Posts to the sandbox's control API (`path` after `/_sandbox`), expecting "ok".
    async fn control(&self, path: &str) {
        let url = format!("{}{path}", self.sandbox.control_url());
        let answer = reqwest::Client::new()
            .post(&url)
            .send()
            .await
            .expect("control API");
        let status = answer.status();
        let text = answer.text().await.unwrap_or_default();
        assert!(status.is_success(), "{url}: {status} {text}");
    }

    /// The next service event, keeping notices.
    async fn next(&mut self, deadline: Instant, what: &str) -> Event {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, self.events.recv()).await {
            Ok(Some(event)) => {
                if let Event::Notice(text) = &event {
                    self.notices.push(text.clone());
                }
                event
            }
            Ok(None) => panic!("service stopped"),
            Err(_) => panic!(
                "{what}: not within the time allowed; notices {:?}",
                self.notices
            ),
        }
    }

    /// Waits until the order satisfies `done`.
    async fn until(
        &mut self,
        order_no: &OrderNo,
        within: Duration,
        done: impl Fn(&OrderRow) -> bool,
    ) -> OrderRow {
        let deadline = Instant::now() + within;
        loop {
            match self.next(deadline, &format!("order {order_no}")).await {
                Event::Order(update)
                    if &update.order.order_no == order_no && done(&update.order) =>
                {
                    return update.order;
                }
                Event::ChargeFailed { message, .. } => panic!("charge failed: {message}"),
                _ => {}
            }
        }
    }

    /// Starts a sale and waits for its QR.
    async fn charge_shown(&mut self, amount: i64, provider: &str) -> OrderNo {
        let no = self.service.charge(sale(amount, provider));
        let deadline = Instant::now() + S(10);
        loop {
            if let Event::Order(update) = self.next(deadline, "QR").await
                && update.order.order_no == no
                && update.qr.is_some()
            {
                return no;
            }
        }
    }

    /// Waits for a notice containing `text`.
    async fn notice(&mut self, text: &str, within: Duration) -> String {
        let deadline = Instant::now() + within;
        loop {
            if let Some(found) = self.notices.iter().find(|n| n.contains(text)) {
                return found.clone();
            }
            self.next(deadline, &format!("notice with {text:?}")).await;
        }
    }

    async fn row(&self, order_no: &OrderNo) -> Option<OrderRow> {
        let key = order_no.clone();
        self.service
            .with_ledger(move |l| l.get(&key))
            .await
            .expect("ledger")
    }

    async fn log(&self, order_no: &OrderNo) -> Vec<EventRow> {
        let key = order_no.clone();
        self.service
            .with_ledger(move |l| l.events(&key))
            .await
            .expect("events")
    }

    /// Waits until the order's event log has an event matching `pred`; returns it.
    async fn logged(
        &self,
        order_no: &OrderNo,
        within: Duration,
        pred: impl Fn(&EventRow) -> bool,
    ) -> EventRow {
        let deadline = Instant::now() + within;
        loop {
            let events = self.log(order_no).await;
            if let Some(found) = events.iter().find(|e| pred(e)) {
                return found.clone();
            }
            assert!(
                Instant::now() < deadline,
                "no such event for {order_no}: {events:#?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The sandbox's orders with our order number (how many times it was created).
    fn sim_orders(&self, order_no: &OrderNo) -> usize {
        self.sandbox
            .orders()
            .iter()
            .filter(|o| o.order_no == order_no.as_str())
            .count()
    }

    /// Pays the order at the sandbox and waits until the till has it paid.
    async fn pays(&mut self, order_no: &OrderNo) -> OrderRow {
        self.control(&format!("/orders/{order_no}/pay")).await;
        self.until(order_no, S(10), |o| o.status == PaymentStatus::Paid)
            .await
    }
}

fn raw_has(event: &EventRow, text: &str) -> bool {
    event.raw.as_deref().is_some_and(|raw| raw.contains(text))
}

fn paid_events(events: &[EventRow]) -> usize {
    events
        .iter()
        .filter(|e| e.to.as_deref() == Some("paid"))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latency_only_slows_the_sale() {
    let mut rig = rig(S(300)).await;
    rig.control("/faults/ispay?fault=latency&ms=800").await;
    let started = Instant::now();
    let no = rig.charge_shown(1200, "demo-ispay").await;
    assert!(started.elapsed() >= Duration::from_millis(800));
    let paid = rig.pays(&no).await;
    assert_eq!(paid.paid, Some(Fen(1200)));
    let create = rig
        .logged(&no, S(1), |e| e.kind == "create" && e.to.is_some())
        .await;
    assert!(raw_has(&create, "order_id"), "{create:?}");
    assert_eq!(rig.sim_orders(&no), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_timeout_is_looked_up_never_sent_twice() {
    let mut rig = rig(S(300)).await;
    rig.control("/faults/ispay?fault=timeout&times=1").await;
    let no = rig.service.charge(sale(700, "demo-ispay"));
    // The till gives up after 15 s, says so, then finds the order by its number.
    let note = rig
        .logged(&no, S(25), |e| e.detail.contains("下单请求失败"))
        .await;
    assert!(
        note.detail.contains("timeout") && note.detail.contains("not re-sent"),
        "{note:?}"
    );
    let found = rig
        .until(&no, S(10), |o| o.status == PaymentStatus::Pending)
        .await;
    assert_eq!(found.paid, None);
    assert_eq!(rig.sim_orders(&no), 1, "created once");
    let lookup = rig
        .logged(&no, S(5), |e| e.kind == "query" && e.to.is_some())
        .await;
    assert!(raw_has(&lookup, "\"state\""), "{lookup:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_reset_on_query_keeps_watching() {
    let mut rig = rig(S(300)).await;
    let no = rig.charge_shown(880, "demo-ispay").await;
    rig.control(&format!("/orders/{no}/fault?fault=reset&times=2"))
        .await;
    let failed = rig
        .logged(&no, S(5), |e| e.detail.contains("查询失败"))
        .await;
    assert!(failed.detail.contains("retrying"), "{failed:?}");
    let row = rig.row(&no).await.expect("row");
    assert_eq!(row.status, PaymentStatus::Pending);
    assert!(row.message.unwrap_or_default().contains("查询失败"));
    // The connection comes back: the message goes, the sale goes on.
    rig.logged(&no, S(10), |e| e.detail.contains("恢复应答"))
        .await;
    let paid = rig.pays(&no).await;
    assert_eq!(paid.paid, Some(Fen(880)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_error_on_query_is_shown_with_its_answer() {
    let mut rig = rig(S(300)).await;
    let no = rig.charge_shown(300, "demo-ispay").await;
    rig.control(&format!("/orders/{no}/fault?fault=status&code=503&times=1"))
        .await;
    let failed = rig
        .logged(&no, S(5), |e| e.detail.contains("查询结果不明"))
        .await;
    assert!(raw_has(&failed, "HTTP 503"), "{failed:?}");
    assert_eq!(
        rig.row(&no).await.expect("row").status,
        PaymentStatus::Pending
    );
    let paid = rig.pays(&no).await;
    assert!(!paid.amount_mismatch && !paid.late_paid);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn html_page_instead_of_create_answer_fails_the_order_as_never_created() {
    let mut rig = rig(S(300)).await;
    // A proxy in front of the provider answers 200 with its own page: the order never
    // reached the provider.
    rig.control("/faults/ispay?fault=html&code=200&times=1")
        .await;
    let no = rig.service.charge(sale(450, "demo-ispay"));
    let failed = rig
        .until(&no, S(10), |o| o.status == PaymentStatus::Failed)
        .await;
    assert!(
        failed.message.unwrap_or_default().contains("never created"),
        "staff are told it was never created"
    );
    let unsure = rig
        .logged(&no, S(1), |e| e.detail.contains("下单结果不明"))
        .await;
    assert!(raw_has(&unsure, "Bad Gateway"), "{unsure:?}");
    assert_eq!(rig.sim_orders(&no), 0);
    assert_eq!(failed.paid, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn truncated_query_answer_is_not_understood_and_kept() {
    let mut rig = rig(S(300)).await;
    let no = rig.charge_shown(990, "demo-ispay").await;
    rig.control(&format!("/orders/{no}/fault?fault=truncate&times=1"))
        .await;
    let failed = rig
        .logged(&no, S(5), |e| e.detail.contains("查询结果不明"))
        .await;
    let raw = failed.raw.clone().unwrap_or_default();
    assert!(
        raw.contains("{\"") && !raw.trim_end().ends_with('}'),
        "the cut answer is kept: {raw}"
    );
    assert_eq!(
        rig.row(&no).await.expect("row").status,
        PaymentStatus::Pending
    );
    rig.pays(&no).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_json_create_answer_is_looked_up_and_found() {
    let mut rig = rig(S(300)).await;
    rig.control("/faults/ispay?fault=not_json&times=1").await;
    let no = rig.service.charge(sale(1500, "demo-ispay"));
    let found = rig
        .until(&no, S(10), |o| o.status == PaymentStatus::Pending)
        .await;
    assert_eq!(found.paid, None);
    let unsure = rig
        .logged(&no, S(1), |e| e.detail.contains("下单结果不明"))
        .await;
    assert!(raw_has(&unsure, "系统繁忙"), "{unsure:?}");
    assert_eq!(rig.sim_orders(&no), 1, "looked up, not created again");
    rig.pays(&no).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_signature_on_notify_is_refused_and_shown() {
    let mut rig = rig(S(300)).await;
    let no = rig.charge_shown(2000, "demo-ispay").await;
    // Queries keep saying "waiting": only the forged notify says paid.
    rig.control(&format!("/orders/{no}/fault?fault=backwards"))
        .await;
    rig.control(&format!("/orders/{no}/fault?fault=wrong_sign"))
        .await;
    rig.control(&format!("/orders/{no}/pay")).await;
    let notice = rig.notice("验证失败", S(5)).await;
    assert!(notice.contains(no.as_str()), "{notice}");
    let refused = rig
        .logged(&no, S(2), |e| e.detail.contains("回调验证失败"))
        .await;
    assert!(raw_has(&refused, "sign="), "{refused:?}");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let row = rig.row(&no).await.expect("row");
    assert_eq!(
        row.status,
        PaymentStatus::Pending,
        "a forged notify never pays"
    );
    assert_eq!(row.paid, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_status_code_leaves_the_order_pending() {
    let mut rig = rig(S(300)).await;
    let no = rig.charge_shown(620, "demo-ispay").await;
    rig.control(&format!("/orders/{no}/state/42")).await;
    let answer = rig
        .logged(&no, S(5), |e| e.detail.contains("unknown provider code 42"))
        .await;
    assert!(raw_has(&answer, "\"state\":42"), "{answer:?}");
    assert_eq!(answer.to, None, "no status change");
    let noted = rig
        .logged(&no, S(2), |e| e.detail.contains("不明状态 42"))
        .await;
    assert_eq!(noted.kind, "query");
    let row = rig.row(&no).await.expect("row");
    assert_eq!(row.status, PaymentStatus::Pending);
    assert!(row.message.unwrap_or_default().contains("不明状态 42"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn different_paid_amount_is_recorded_and_flagged() {
    let mut rig = rig(S(300)).await;
    let no = rig.charge_shown(500, "demo-gatepay").await;
    rig.control(&format!("/orders/{no}/pay?amount=1.00")).await;
    let paid = rig.until(&no, S(10), |o| o.amount_mismatch).await;
    assert_eq!(paid.status, PaymentStatus::Paid);
    assert_eq!(
        paid.paid,
        Some(Fen(100)),
        "what was really paid is recorded"
    );
    let callback = rig
        .logged(&no, S(2), |e| {
            e.kind == "callback" && raw_has(e, "realprice=1.00")
        })
        .await;
    assert!(callback.detail.contains("paid"), "{callback:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_going_backwards_never_unpays() {
    let mut rig = rig(S(300)).await;
    let no = rig.charge_shown(1800, "demo-gatepay").await;
    // Every query answer is held 1.5 s and says "unpaid" even once paid.
    rig.control(&format!("/orders/{no}/fault?fault=backwards"))
        .await;
    rig.control(&format!("/orders/{no}/fault?fault=latency&ms=1500"))
        .await;
    // Wait for a query to be under way, then pay: the notify overtakes the held answer.
    let queries = |rig: &Rig| {
        rig.sandbox
            .orders()
            .iter()
            .find(|o| o.order_no == no.as_str())
            .map_or(0, |o| o.queries.len())
    };
    let before = queries(&rig);
    let deadline = Instant::now() + S(5);
    while queries(&rig) == before {
        assert!(Instant::now() < deadline, "no query came");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    rig.control(&format!("/orders/{no}/pay")).await;
    rig.until(&no, S(5), |o| o.status == PaymentStatus::Paid)
        .await;
    let notice = rig.notice("stays paid", S(5)).await;
    assert!(notice.contains(no.as_str()), "{notice}");
    let events = rig.log(&no).await;
    let paid_at = events
        .iter()
        .position(|e| e.to.as_deref() == Some("paid"))
        .expect("paid");
    assert!(
        events[paid_at..]
            .iter()
            .any(|e| e.kind == "query" && raw_has(e, "unpaid")),
        "the backwards answer is kept: {events:#?}"
    );
    assert!(events.iter().all(|e| e.from.as_deref() != Some("paid")));
    assert_eq!(paid_events(&events), 1);
    assert_eq!(rig.row(&no).await.expect("row").status, PaymentStatus::Paid);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_notify_is_applied_once() {
    let mut rig = rig(S(300)).await;
    let no = rig.charge_shown(760, "demo-ispay").await;
    rig.control(&format!("/orders/{no}/fault?fault=backwards"))
        .await;
    rig.control(&format!("/orders/{no}/fault?fault=repeat"))
        .await;
    rig.control(&format!("/orders/{no}/pay")).await;
    rig.until(&no, S(5), |o| o.status == PaymentStatus::Paid)
        .await;
    let deadline = Instant::now() + S(5);
    while rig.sandbox.notifies().len() < 2 {
        assert!(Instant::now() < deadline, "two notifies sent");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        rig.sandbox.notifies().iter().all(|n| n.status == Some(200)),
        "both answered"
    );
    let events = rig.log(&no).await;
    let callbacks: Vec<_> = events.iter().filter(|e| e.kind == "callback").collect();
    assert_eq!(callbacks.len(), 2, "both kept: {events:#?}");
    assert!(callbacks.iter().all(|e| raw_has(e, "state=9")));
    assert_eq!(paid_events(&events), 1, "paid once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn late_notify_after_expiry_is_a_late_payment() {
    // The provider gives its orders 2 s.
    let mut rig = rig(S(2)).await;
    let no = rig.charge_shown(330, "demo-ispay").await;
    rig.control(&format!("/orders/{no}/fault?fault=backwards"))
        .await;
    rig.control(&format!("/orders/{no}/fault?fault=late&ms=3000"))
        .await;
    rig.control(&format!("/orders/{no}/pay")).await;
    rig.until(&no, S(5), |o| o.status == PaymentStatus::Expired)
        .await;
    let paid = rig
        .until(&no, S(6), |o| o.status == PaymentStatus::Paid)
        .await;
    assert!(paid.late_paid, "flagged late");
    let notice = rig.notice("迟到的付款", S(2)).await;
    assert!(notice.contains(no.as_str()), "{notice}");
    let callback = rig
        .logged(&no, S(1), |e| {
            e.kind == "callback" && e.from.as_deref() == Some("expired")
        })
        .await;
    assert!(raw_has(&callback, "state=9"), "{callback:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notify_for_an_unknown_order_is_refused_and_creates_nothing() {
    let mut rig = rig(S(300)).await;
    let no = rig.charge_shown(410, "demo-ispay").await;
    rig.control(&format!("/orders/{no}/fault?fault=unknown_order&times=1"))
        .await;
    rig.control(&format!("/orders/{no}/pay")).await;
    let stranger = format!("{no}X404");
    let notice = rig.notice("does not have", S(5)).await;
    assert!(notice.contains(&stranger), "{notice}");
    let deadline = Instant::now() + S(5);
    while !rig
        .sandbox
        .notifies()
        .iter()
        .any(|n| n.order_no == stranger)
    {
        assert!(Instant::now() < deadline, "notify sent");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        rig.row(&OrderNo::new(&stranger).expect("order no"))
            .await
            .is_none(),
        "no row is made for it"
    );
    let all = rig
        .service
        .with_ledger(|l| l.orders_between(0, i64::MAX))
        .await
        .expect("orders");
    assert_eq!(all.len(), 1);
    // The real order is still found paid by its query.
    rig.until(&no, S(5), |o| o.status == PaymentStatus::Paid)
        .await;
}
