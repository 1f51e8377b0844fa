//! The two general service hooks V免签 needed, in process against the embedded sandbox on
//! loopback: a staff cancel sends the provider's close request (`closeOrder`) and keeps its
//! answer in the order's event log (and the freed amount can be asked for again), and an
//! account check that refuses charges (the monitor phone offline) is shown as the account's
//! status and stops the next charge with a `ChargeFailed` in words, before any order exists.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use qrtill::ledger::{EventRow, Ledger, OrderRow};
use qrtill::model::{Channel, Fen, OrderNo, PaymentStatus};
use qrtill::sandbox::{Sandbox, SandboxOptions, SimState, vmq};
use qrtill::service::{
    self, ChargeRequest, Command, Event, EventReceiver, ServiceConfig, ServiceHandle,
};

struct Rig {
    service: ServiceHandle,
    events: EventReceiver,
    sandbox: Sandbox,
    _dir: tempfile::TempDir,
}

/// The sandbox (its monitor set to `monitor` before the till starts) and a service with the
/// demo V免签 account only; no listener, so payments are found by query.
async fn rig(monitor: &str) -> Rig {
    let sandbox = Sandbox::start(
        SocketAddr::from(([127, 0, 0, 1], 0)),
        SandboxOptions::default(),
    )
    .await
    .expect("sandbox");
    let answer = reqwest::Client::new()
        .post(format!("{}/vmq/monitor/{monitor}", sandbox.control_url()))
        .send()
        .await
        .expect("monitor control");
    assert_eq!(answer.status().as_u16(), 200);
    let dir = tempfile::tempdir().expect("temp dir");
    let ledger = Ledger::open(&dir.path().join("ledger.sqlite3")).expect("ledger");
    let config = ServiceConfig {
        providers: vec![Arc::new(vmq::demo_account(&sandbox.url_for(vmq::KIND)))],
        order_timeout: Duration::from_secs(300),
        late_grace: Duration::from_secs(60),
        demo: true,
        sandbox_control: Some(sandbox.control_url()),
        notify_base: "http://127.0.0.1:9".into(),
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
    Rig {
        service,
        events,
        sandbox,
        _dir: dir,
    }
}

fn sale(fen: i64) -> ChargeRequest {
    ChargeRequest {
        amount: Fen(fen),
        channel: Channel::Alipay,
        provider_id: "demo-vmq".into(),
        subject: String::new(),
        operator: "A01".into(),
    }
}

impl Rig {
    /// The next event that `pick` accepts, within 10 s.
    async fn next<T>(&mut self, what: &str, pick: impl Fn(Event) -> Option<T>) -> T {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, self.events.recv()).await {
                Ok(Some(event)) => {
                    if let Some(found) = pick(event) {
                        return found;
                    }
                }
                Ok(None) => panic!("service stopped before {what}"),
                Err(_) => panic!("no {what} in time"),
            }
        }
    }

    async fn pending(&mut self, order_no: &OrderNo) -> OrderRow {
        let no = order_no.clone();
        self.next("a pending order", move |event| match event {
            Event::Order(update)
                if update.order.order_no == no && update.order.status == PaymentStatus::Pending =>
            {
                Some(update.order)
            }
            Event::ChargeFailed { message, .. } => panic!("charge failed: {message}"),
            _ => None,
        })
        .await
    }

    async fn events_of(&self, order_no: &OrderNo) -> Vec<EventRow> {
        let no = order_no.clone();
        self.service
            .with_ledger(move |l| l.events(&no))
            .await
            .expect("events")
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn staff_cancel_closes_the_order_at_the_server() {
    let mut rig = rig("online").await;
    let first = rig.service.charge(sale(1234));
    let row = rig.pending(&first).await;
    assert_eq!(row.payable, Some(Fen(1234)));
    let vmq_id = row.provider_order_id.clone().expect("V免签's orderId");
    // A second open order of the same amount is nudged.
    let second = rig.service.charge(sale(1234));
    assert_eq!(rig.pending(&second).await.payable, Some(Fen(1235)));

    rig.service.send(Command::Cancel(first.clone()));
    let deadline = Instant::now() + Duration::from_secs(10);
    let close = loop {
        if let Some(close) = rig
            .events_of(&first)
            .await
            .into_iter()
            .find(|e| e.kind == "close")
        {
            break close;
        }
        assert!(Instant::now() < deadline, "no close event recorded");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(
        close.detail.contains("the provider closed the order"),
        "{close:?}"
    );
    assert!(
        close
            .raw
            .as_deref()
            .is_some_and(|raw| raw.contains("\"code\":1")),
        "{close:?}"
    );
    let sim = rig
        .sandbox
        .orders()
        .into_iter()
        .find(|o| o.id == vmq_id)
        .expect("the order at the server");
    assert_eq!(sim.state, SimState::Closed);
    let row = rig
        .service
        .with_ledger({
            let no = first.clone();
            move |l| l.get(&no)
        })
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.status, PaymentStatus::Cancelled);

    // Its amount is free again.
    let third = rig.service.charge(sale(1234));
    assert_eq!(rig.pending(&third).await.payable, Some(Fen(1234)));

    // Cancelling an order the server no longer holds open keeps the server's refusal.
    assert!(rig.sandbox.set(second.as_str(), SimState::Expired));
    rig.service.send(Command::Cancel(second.clone()));
    let deadline = Instant::now() + Duration::from_secs(10);
    let refused = loop {
        if let Some(close) = rig
            .events_of(&second)
            .await
            .into_iter()
            .find(|e| e.kind == "close")
        {
            break close;
        }
        assert!(Instant::now() < deadline, "no close event recorded");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(
        refused.detail.contains("did not close") && refused.detail.contains("订单状态不允许关闭"),
        "{refused:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offline_monitor_refuses_charges() {
    let mut rig = rig("offline").await;
    // The status bar's source: the account check says why.
    let account = rig
        .next("the account check", |event| match event {
            Event::Account {
                provider_id,
                status,
            } if provider_id == "demo-vmq" => Some(status),
            _ => None,
        })
        .await
        .expect("getState answered");
    let refusal = account.refuse_charges.clone().expect("offline refuses");
    assert!(refusal.contains("offline"), "{refusal}");
    assert_eq!(account.message.as_deref(), Some(refusal.as_str()));

    let order_no = rig.service.charge(sale(1234));
    let message = rig
        .next("ChargeFailed", |event| match event {
            Event::ChargeFailed {
                order_no: no,
                message,
            } if no == order_no => Some(message),
            Event::Order(update) => panic!("an order was written: {:?}", update.order),
            _ => None,
        })
        .await;
    assert_eq!(message, refusal);
    assert!(
        rig.sandbox.orders().is_empty(),
        "nothing reached the server"
    );
    let row = rig
        .service
        .with_ledger({
            let no = order_no.clone();
            move |l| l.get(&no)
        })
        .await
        .unwrap();
    assert!(row.is_none(), "no order row for a refused charge");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_charge_right_after_start_waits_for_the_first_check() {
    // No Account event is awaited here: the charge itself must wait for getState.
    let mut rig = rig("unbound").await;
    let order_no = rig.service.charge(sale(500));
    let message = rig
        .next("ChargeFailed", |event| match event {
            Event::ChargeFailed {
                order_no: no,
                message,
            } if no == order_no => Some(message),
            Event::Order(update) => panic!("an order was written: {:?}", update.order),
            _ => None,
        })
        .await;
    assert!(message.contains("ever bound"), "{message}");
}
