//! Sales through sun.jings.wang v1 end to end: the `qrtill` binary and `qrtill sandbox` as
//! separate processes, the test acting as the payer's phone (open the QR, let its page post
//! the signed form) and as the customer paying (the sandbox's control API), over loopback
//! only. Covered: the bridge-page QR (with `public_url`), the signed-link QR (without), an
//! underpayment (paid, flagged), a forged notify that changes nothing, and, in process,
//! that the poller never queries one order twice within the provider's 60 s, even when
//! staff keep asking.
//!
//! The processes, the HTTP client, the form reader and the time budget are `tests/common`'s:
//! every child process is killed by a guard; every wait is bounded (60 s per sale test; the
//! rate-limit test needs one full minute between two queries and is bounded at 75 s).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::page::form_of;
use common::{
    Proc, Sale, expect_paid, http, http_with, qrtill, start_budget, start_charge, status_json,
};
use qrtill::ledger::Ledger;
use qrtill::model::{Channel, Fen, PaymentStatus};
use qrtill::providers::Provider;
use qrtill::sandbox::jings::{
    DEMO_TOKEN, DEMO_UID, balance_calls_key, demo_account, query_calls_key,
};
use qrtill::sandbox::{Sandbox, SandboxOptions};
use qrtill::service::{self, ChargeRequest, Command as ServiceCommand, Event, ServiceConfig};
use serde_json::Value;

const S: fn(u64) -> Duration = Duration::from_secs;

/// The content type of a posted form (the sandbox's controls take an empty one).
const FORM: &str = "application/x-www-form-urlencoded";

/// What is left until `deadline`.
fn left(deadline: Instant) -> Duration {
    deadline.saturating_duration_since(Instant::now())
}

/// `qrtill sandbox` on a free port: its guard, its base URL and the config it printed.
fn start_sandbox(deadline: Instant) -> (Proc, String, String) {
    let mut sandbox = Proc::spawn(
        "qrtill sandbox",
        qrtill(&["sandbox", "--listen", "127.0.0.1:0"]),
    );
    let mut base = None;
    loop {
        let line = sandbox.line(left(deadline));
        if let Some(url) = line.strip_prefix("qrtill sandbox listening on ") {
            base = Some(url.trim().to_string());
        }
        if line.starts_with("# A config for it") {
            break;
        }
    }
    // The config follows in one write: read until the output pauses.
    let mut config = String::new();
    loop {
        match sandbox.try_line(Duration::from_millis(500)) {
            Ok(Some(line)) => config.push_str(&(line + "\n")),
            _ if config.contains("id = \"demo-jings\"") => break,
            Ok(None) => sandbox.die(&format!("output ended inside the config: {config}")),
            Err(()) => assert!(Instant::now() < deadline, "no jings config: {config}"),
        }
    }
    (sandbox, base.expect("the sandbox's URL"), config)
}

// ---------------------------------------------------------------------------------------------
// Sales through the binary

struct Shop {
    _sandbox: Proc,
    sandbox: String,
    config: PathBuf,
    dir: tempfile::TempDir,
}

impl Shop {
    /// `charge --amount 12.34 --channel alipay --json` with the demo-jings account, up to
    /// its QR.
    fn charge(&self) -> Sale {
        start_charge(&self.config, self.dir.path(), "12.34", "alipay")
    }

    /// `POST {sandbox}/_sandbox/orders/{order_no}/{action}`: its status and body.
    fn control(&self, order_no: &str, action: &str) -> (u16, String) {
        let url = format!("{}/_sandbox/orders/{order_no}/{action}", self.sandbox);
        http_with("POST", &url, Some(FORM), "")
    }
}

/// The sandbox and a config for it, whose default account is demo-jings; with `bridge`, a
/// fixed listener port and `public_url`.
fn shop(bridge: bool, deadline: Instant) -> (Shop, Option<String>) {
    // The shared helpers' waits draw on the test's budget, within its 60 s.
    start_budget();
    let (guard, sandbox, mut config) = start_sandbox(deadline);
    let dir = tempfile::tempdir().unwrap();
    // `charge` sells with the default account: make it demo-jings.
    let (before, after) = config
        .split_once("default_provider = ")
        .expect("a default account");
    let (_, after) = after.split_once('\n').unwrap_or((after, ""));
    config = format!("{before}default_provider = \"demo-jings\"\n{after}");
    let mut public = None;
    if bridge {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|socket| socket.local_addr())
            .unwrap()
            .port();
        let listener = format!("127.0.0.1:{port}");
        let from = "[listener]\nlisten = \"127.0.0.1:0\"\n";
        assert!(config.contains(from), "{config}");
        config = config.replace(
            from,
            &format!("[listener]\nlisten = \"{listener}\"\npublic_url = \"http://{listener}\"\n"),
        );
        public = Some(format!("http://{listener}"));
    }
    let path = dir.path().join("config.toml");
    std::fs::write(&path, &config).unwrap();
    (
        Shop {
            _sandbox: guard,
            sandbox,
            config: path,
            dir,
        },
        public,
    )
}

/// After the QR: the customer pays, the notify reaches the till, the sale ends paid.
fn pay_and_expect_paid(shop: &Shop, sale: Sale) {
    pay_and_expect(shop, sale, "12.34");
}

/// The customer pays `realpay` (the sandbox's `pay?amount=`); the sale ends paid, flagged
/// when that is not the order's 12.34.
fn pay_and_expect(shop: &Shop, mut sale: Sale, realpay: &str) {
    let (code, body) = shop.control(&sale.order_no, &format!("pay?amount={realpay}"));
    assert_eq!((code, body.as_str()), (200, "ok"));
    // `done` paid with `realpay` as the last line, the exit code 0, the token printed nowhere.
    expect_paid(&mut sale, realpay, DEMO_TOKEN);
    let done: Value = serde_json::from_str(sale.charge.seen.last().unwrap()).unwrap();
    assert_eq!(done["status"], "paid", "{done}");
    assert_eq!(done["paid"], realpay);
    assert_eq!(done["amount_mismatch"], realpay != "12.34");
    let status = status_json(&shop.config, &sale, DEMO_TOKEN);
    assert_eq!(status["status"], "paid", "{status}");
    assert_eq!(status["provider"], "demo-jings");
    assert_eq!(status["paid"], realpay);
    let events = status["events"].as_array().unwrap();
    assert!(
        events
            .iter()
            .any(|e| e["kind"] == "callback" && e["to"] == "paid"),
        "paid by the notify: {status:#}"
    );
}

#[test]
fn sale_through_the_bridge_page() {
    let deadline = Instant::now() + S(60);
    let (shop, public) = shop(true, deadline);
    let public = public.unwrap();
    let sale = shop.charge();
    let qr = &sale.qr;
    let order_no = sale.order_no.clone();
    assert_eq!(qr["amount"], "12.34");
    assert_eq!(qr["provider"], "demo-jings");
    let link = qr["qr"].as_str().unwrap();
    assert_eq!(link, format!("{public}/pay/{order_no}"), "the bridge page");
    // The payer's phone opens the bridge page, which posts the signed form to the provider.
    let (status, page) = http("GET", link);
    assert_eq!(status, 200, "{page}");
    let (action, fields) = form_of(&page);
    assert_eq!(action, format!("{}/jings/pay.action", shop.sandbox));
    let names: Vec<&str> = fields.iter().map(|(name, _)| name.as_str()).collect();
    assert_eq!(
        names,
        [
            "uid",
            "orderid",
            "ordername",
            "paymoney",
            "orderuid",
            "paytype",
            "notifyurl",
            "returnurl",
            "orderinfo",
            "key"
        ]
    );
    assert!(fields.contains(&("orderid".into(), order_no.clone())));
    assert!(fields.contains(&("paymoney".into(), "12.34".into())));
    assert!(fields.contains(&("notifyurl".into(), format!("{public}/notify/demo-jings"))));
    let body = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(&fields)
        .finish();
    let (status, pay_page) = http_with("POST", &action, Some(FORM), &body);
    assert_eq!(status, 200, "{pay_page}");
    assert!(pay_page.contains("12.34"), "{pay_page}");
    pay_and_expect_paid(&shop, sale);
}

#[test]
fn sale_through_the_signed_link() {
    let deadline = Instant::now() + S(60);
    let (shop, _) = shop(false, deadline);
    let sale = shop.charge();
    let order_no = &sale.order_no;
    let link = sale.qr["qr"].as_str().unwrap();
    // Without public_url the payer cannot reach the till: the QR is the signed GET link.
    let prefix = format!(
        "{}/jings/pay.action?uid={DEMO_UID}&orderid={order_no}&",
        shop.sandbox
    );
    assert!(link.starts_with(&prefix), "{link}");
    assert!(
        link.contains("&paymoney=12.34&") && link.contains("&key="),
        "{link}"
    );
    let (status, page) = http("GET", link);
    assert_eq!(status, 200, "{page}");
    // Opening it twice (a reload) is the same order, not a duplicate.
    assert_eq!(http("GET", link).0, 200);
    // A tampered link is refused by the provider.
    let tampered = link.replace("paymoney=12.34", "paymoney=0.01");
    let (status, refused) = http("GET", &tampered);
    assert_eq!(status, 400);
    assert!(refused.contains("key"), "{refused}");
    pay_and_expect_paid(&shop, sale);
}

#[test]
fn an_underpayment_is_paid_and_flagged() {
    let deadline = Instant::now() + S(60);
    let (shop, _) = shop(false, deadline);
    let sale = shop.charge();
    assert_eq!(http("GET", sale.qr["qr"].as_str().unwrap()).0, 200);
    // realpay 12.30 is covered by the notify's key: the money is real, the ledger flags it.
    pay_and_expect(&shop, sale, "12.30");
}

#[test]
fn a_forged_notify_changes_nothing() {
    let deadline = Instant::now() + S(60);
    let (shop, _) = shop(false, deadline);
    let mut sale = shop.charge();
    let order_no = sale.order_no.clone();
    assert_eq!(
        http("GET", sale.qr["qr"].as_str().unwrap()).0,
        200,
        "the payer opened the pay page"
    );
    assert_eq!(shop.control(&order_no, "notify?forged=true").0, 200);
    // The sandbox records how the till answered the forgery: refused.
    let answered = loop {
        let notifies: Value =
            serde_json::from_str(&http("GET", &format!("{}/_sandbox/notifies", shop.sandbox)).1)
                .unwrap();
        let answer = notifies
            .as_array()
            .unwrap()
            .iter()
            .find(|n| n["order_no"] == order_no.as_str() && n["forged"] == true)
            .map(|n| n["status"].clone());
        if let Some(status) = answer {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "the forged notify was never sent"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(answered, 400, "the till refuses a forged notify");
    if let Ok(Some(line)) = sale.charge.try_line(Duration::from_secs(1)) {
        let value: Value = serde_json::from_str(&line).unwrap();
        assert_ne!(value["event"], "done", "{value}");
        assert_ne!(value["status"], "paid", "{value}");
    }
    let status = status_json(&shop.config, &sale, DEMO_TOKEN);
    assert_eq!(status["status"], "pending", "{status:#}");
    assert_eq!(status["paid"], Value::Null);
    assert!(
        !status["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["kind"] == "callback" && !e["to"].is_null()),
        "nothing changed by the forgery: {status:#}"
    );
    // The real payment still goes through.
    pay_and_expect_paid(&shop, sale);
}

// ---------------------------------------------------------------------------------------------
// The provider's rate limit, in process

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_poller_never_queries_one_order_twice_within_60_s() {
    let deadline = Instant::now() + S(75);
    let sandbox = Sandbox::start(
        SocketAddr::from(([127, 0, 0, 1], 0)),
        SandboxOptions::default(),
    )
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ledger = Ledger::open(&dir.path().join("ledger.sqlite3")).unwrap();
    let account: Arc<dyn Provider> = Arc::new(demo_account(&sandbox.url_for("jings")));
    let config = ServiceConfig {
        providers: vec![account],
        order_timeout: S(300),
        late_grace: S(60),
        demo: false,
        sandbox_control: None,
        // Nobody listens here: the payment can only be found by query.
        notify_base: "http://127.0.0.1:9".into(),
        public_url: None,
        day_start: qrtill::day::MIDNIGHT,
    };
    let (service, mut events) = service::start(
        tokio::runtime::Handle::current(),
        ledger,
        config,
        Arc::new(|| {}),
    )
    .unwrap();
    let no = service.charge(ChargeRequest {
        amount: Fen(1234),
        channel: Channel::Alipay,
        provider_id: "demo-jings".into(),
        subject: String::new(),
        operator: "A01".into(),
    });
    let link = loop {
        match tokio::time::timeout(left(deadline), events.recv()).await {
            Ok(Some(Event::Order(update))) if update.order.order_no == no => {
                if let Some(qr) = update.qr {
                    break qr.payload.text().unwrap().to_string();
                }
            }
            Ok(Some(_)) => {}
            other => panic!("no QR: {other:?}"),
        }
    };
    // The payer opens the signed link: the provider now knows the order.
    let opened = tokio::task::spawn_blocking(move || http("GET", &link).0)
        .await
        .unwrap();
    assert_eq!(opened, 200);
    // Staff ask at once: the first query goes out.
    service.send(ServiceCommand::QueryNow(no.clone()));
    let key = query_calls_key(DEMO_UID, no.as_str());
    while sandbox.calls(&key).is_empty() {
        assert!(Instant::now() < deadline, "the first query never came");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let first = sandbox.calls(&key)[0].at;
    // The customer pays right after it; staff keep pressing "query" every second.
    assert!(sandbox.set(no.as_str(), qrtill::sandbox::SimState::Paid));
    let mut poke = tokio::time::interval(Duration::from_millis(1000));
    let paid_seen = loop {
        tokio::select! {
            _ = poke.tick() => service.send(ServiceCommand::QueryNow(no.clone())),
            event = events.recv() => match event {
                Some(Event::Order(update))
                    if update.order.order_no == no && update.order.status == PaymentStatus::Paid =>
                {
                    break Instant::now();
                }
                Some(_) => {}
                None => panic!("service stopped"),
            },
            () = tokio::time::sleep(left(deadline)) => {
                panic!("not paid in time: {:?}", sandbox.calls(&key));
            }
        }
    };
    let calls = sandbox.calls(&key);
    assert!(
        calls.iter().all(|call| !call.refused),
        "the sandbox refused a query that came too soon: {calls:?}"
    );
    assert_eq!(
        calls.len(),
        2,
        "one query, then the next a minute later: {calls:?}"
    );
    let gap = calls[1].at.duration_since(calls[0].at);
    assert!(gap >= S(60), "queries {gap:?} apart");
    assert!(gap < S(65), "and not much later than allowed: {gap:?}");
    assert!(paid_seen.duration_since(first) >= S(60));
    // The balance was asked once at start and not again (once per 3 minutes at most).
    let balance = sandbox.calls(&balance_calls_key(DEMO_UID));
    assert_eq!(balance.len(), 1, "{balance:?}");
    assert!(!balance[0].refused);
}
