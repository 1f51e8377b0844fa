//! Scope: a till killed at each point of an order's life, then started again.
//!
//! `qrtill sandbox` runs as its own process and plays the provider, so what the provider
//! holds survives the till. The till (`qrtill charge --json`) dies either by a real SIGKILL
//! from the test (while it polls a pending order, a moment the test can see: the QR is
//! shown) or by the crash hook `QRTILL_CRASH_AT` (points a kill from outside cannot hit: the
//! row committed but the create not sent; the create sent but its answer not applied; a
//! callback verified but not written; a callback written but not answered), which aborts
//! the process on the spot. The sandbox is then told what the customer did meanwhile, and
//! `qrtill resume --json` follows the leftover order until it ends.
//!
//! Each test checks that the order ends in the state the provider holds (paid when paid,
//! expired when expired, failed when the provider never had it), that the ledger has exactly
//! one row for it, that the provider was sent its create at most once (the sandbox counts
//! creates by our order number, a refused duplicate included), and that `PRAGMA
//! integrity_check` says `ok` after the kill and at the end.
//!
//! ispay is the provider with a query and a look-up by our order number; igepay stands for
//! the notify-only providers. The callback listener has a fixed port, as a real till's has,
//! so that a notify can find the restarted till. Every wait is bounded; only 127.0.0.1 is
//! used.

#![cfg(unix)]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

#[allow(
    dead_code,
    reason = "the sale helpers of `common` start a data folder per sale; a crash test restarts in one"
)]
mod common;

use std::os::unix::process::ExitStatusExt as _;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::Value;

use common::sandbox::Sandbox;
use common::{Proc, bounded, expect_done, http, qrtill_with, run, start_budget};

/// SIGABRT: what the crash hook ends the process with.
const SIGABRT: i32 = 6;
/// SIGKILL: what the test sends.
const SIGKILL: i32 = 9;

/// A sandbox, a till config for it with a fixed listener port, and one data folder.
struct Rig {
    sandbox: Sandbox,
    config: PathBuf,
    data: PathBuf,
    _dir: tempfile::TempDir,
}

impl Rig {
    fn start() -> Rig {
        start_budget();
        let sandbox = Sandbox::start(&[]);
        let dir = tempfile::tempdir().expect("temp dir");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let config = sandbox.config.replacen(
            "listen = \"127.0.0.1:0\"",
            &format!("listen = \"127.0.0.1:{port}\""),
            1,
        );
        assert!(config.contains(&format!(":{port}\"")), "{config}");
        let path = dir.path().join("config.toml");
        std::fs::write(&path, config).expect("write config");
        let data = dir.path().join("data");
        std::fs::create_dir_all(&data).expect("data folder");
        Rig {
            sandbox,
            config: path,
            data,
            _dir: dir,
        }
    }

    /// `qrtill ARGS…` in the rig's data folder; `crash_at` arms the crash hook.
    fn till(&self, name: &str, args: &[&str], crash_at: Option<&str>) -> Proc {
        let mut cmd = qrtill_with(&self.config, &self.data, args);
        match crash_at {
            Some(point) => cmd.env("QRTILL_CRASH_AT", point),
            None => cmd.env_remove("QRTILL_CRASH_AT"),
        };
        Proc::spawn(name, cmd)
    }

    /// `charge --amount 12.34 --channel alipay --provider PROVIDER --json`.
    fn charge(&self, provider: &str, crash_at: Option<&str>) -> Proc {
        self.till(
            "qrtill charge",
            &[
                "charge",
                "--amount",
                "12.34",
                "--channel",
                "alipay",
                "--provider",
                provider,
                "--json",
            ],
            crash_at,
        )
    }

    /// Every order row (number, status), oldest first, after `PRAGMA integrity_check` said
    /// `ok`. Read only while no till runs.
    fn ledger(&self) -> Vec<(String, String)> {
        let conn =
            rusqlite::Connection::open(self.data.join("ledger.sqlite3")).expect("open ledger");
        let check: String = conn
            .query_row("PRAGMA integrity_check", [], |row| row.get(0))
            .expect("integrity_check");
        assert_eq!(check, "ok", "PRAGMA integrity_check");
        let mut stmt = conn
            .prepare("SELECT order_no, status FROM orders ORDER BY id")
            .expect("select orders");
        stmt.query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
            .expect("query orders")
            .collect::<Result<_, _>>()
            .expect("read orders")
    }

    /// The one order of the ledger, number and status.
    fn only_order(&self) -> (String, String) {
        let rows = self.ledger();
        let [row] = rows.as_slice() else {
            panic!("not exactly one order row: {rows:?}");
        };
        row.clone()
    }

    /// `qrtill resume --json` until it lists the orders it resumes, which must be
    /// `expected`.
    fn resume(&self, expected: &[&str]) -> Proc {
        let mut resume = self.till("qrtill resume", &["resume", "--json"], None);
        let listed = resume.event_of("resumed", Duration::from_secs(20));
        assert_eq!(listed["orders"], serde_json::json!(expected), "{listed}");
        resume
    }

    /// The order's event log (`status --json`).
    fn events(&self, order_no: &str) -> Vec<Value> {
        let out = run(
            "qrtill status",
            qrtill_with(&self.config, &self.data, &["status", order_no, "--json"]),
        );
        assert_eq!(out.code, 0, "status: {}\n{}", out.stdout, out.stderr);
        let status: Value = serde_json::from_str(out.stdout.trim()).expect("status JSON");
        status["events"].as_array().expect("events").clone()
    }

    /// The end state: exactly one order row, `status`; the sandbox holds the order in
    /// `sim_state` after exactly one create (or holds nothing, `None`); the ledger intact.
    fn assert_settled(&self, order_no: &str, status: &str, sim_state: Option<&str>) {
        assert_eq!(
            self.ledger(),
            vec![(order_no.to_string(), status.to_string())],
            "the ledger"
        );
        let held = self.sandbox.orders_named(order_no);
        match sim_state {
            None => assert!(held.is_empty(), "the provider never had it: {held:?}"),
            Some(state) => {
                let [order] = held.as_slice() else {
                    panic!("not exactly one order at the provider: {held:?}");
                };
                assert_eq!(order["state"], state, "{order}");
                assert_eq!(order["creates"], 1, "the create was sent once: {order}");
            }
        }
    }
}

/// Waits (bounded) until `proc` has died of `signal`; for the crash hook, checks that it
/// died at `point` and nowhere else.
fn dies_of(proc: &mut Proc, signal: i32, point: Option<&str>) {
    let until = Instant::now() + bounded(Duration::from_secs(20));
    let status = loop {
        if let Some(status) = proc.child.try_wait().expect("wait") {
            break status;
        }
        if Instant::now() >= until {
            proc.die("still running");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    if status.signal() != Some(signal) {
        proc.die(&format!("ended with {status}, not signal {signal}"));
    }
    if let Some(point) = point {
        let said = format!("crash point `{point}` reached");
        if !proc.stderr_text().contains(&said) {
            proc.die(&format!("died, but not at `{point}`"));
        }
    }
}

/// Follows `resume` to the order's end: `done` with `status`, and the exit code.
fn resumed_to(resume: &mut Proc, order_no: &str, status: &str, code: i32) {
    let done = expect_done(resume, order_no);
    assert_eq!(done["status"], status, "{done}");
    assert_eq!(resume.wait(), code, "exit code of resume");
}

/// Whether the log has an event of `kind`.
fn has_event(events: &[Value], kind: &str) -> bool {
    events.iter().any(|e| e["kind"] == kind)
}

/// The order's row is committed and the till dies before its create leaves: the provider
/// never had it. On restart the till asks by our order number, learns that, and ends the
/// order failed; it does not create it now.
#[test]
fn killed_before_the_create_request() {
    let rig = Rig::start();
    let mut charge = rig.charge("demo-ispay", Some("before_create"));
    dies_of(&mut charge, SIGABRT, Some("before_create"));
    let (order_no, status) = rig.only_order();
    assert_eq!(status, "creating");
    assert!(rig.sandbox.orders_named(&order_no).is_empty());

    let mut resume = rig.resume(&[&order_no]);
    resumed_to(&mut resume, &order_no, "failed", 3);
    rig.assert_settled(&order_no, "failed", None);
    let events = rig.events(&order_no);
    assert!(has_event(&events, "recovery"), "{events:?}");
}

/// The create reached the provider, the till died before applying its answer; the customer
/// pays meanwhile. On restart the order is looked up by our number (its id at the provider
/// was in the lost answer) and ends paid, with the create sent once.
#[test]
fn killed_after_the_create_was_sent() {
    let rig = Rig::start();
    let mut charge = rig.charge("demo-ispay", Some("after_create_sent"));
    dies_of(&mut charge, SIGABRT, Some("after_create_sent"));
    let (order_no, status) = rig.only_order();
    assert_eq!(status, "creating", "the answer was never applied");
    assert_eq!(rig.sandbox.orders_named(&order_no).len(), 1);
    rig.sandbox.control(&order_no, "pay");

    let mut resume = rig.resume(&[&order_no]);
    resumed_to(&mut resume, &order_no, "paid", 0);
    rig.assert_settled(&order_no, "paid", Some("Paid"));
    let events = rig.events(&order_no);
    assert!(has_event(&events, "recovery"), "{events:?}");
    let paid_by = events
        .iter()
        .find(|e| e["to"] == "paid")
        .unwrap_or_else(|| panic!("nothing made it paid: {events:?}"));
    assert_eq!(paid_by["kind"], "query", "{paid_by}");
}

/// Starts a sale and kills it (SIGKILL) while it polls its pending order; returns the
/// order number.
fn killed_while_polling(rig: &Rig, provider: &str) -> (String, Value) {
    let mut charge = rig.charge(provider, None);
    let qr = charge.event_of("qr", Duration::from_secs(20));
    charge.child.kill().expect("SIGKILL");
    dies_of(&mut charge, SIGKILL, None);
    let (order_no, status) = rig.only_order();
    assert_eq!(qr["order_no"], order_no.as_str(), "{qr}");
    assert_eq!(status, "pending");
    (order_no, qr)
}

/// Killed while polling; the customer pays while the till is down (its notify finds no
/// till). On restart the till asks and ends the order paid.
#[test]
fn killed_while_polling_then_paid() {
    let rig = Rig::start();
    let (order_no, _) = killed_while_polling(&rig, "demo-ispay");
    rig.sandbox.control(&order_no, "pay");

    let mut resume = rig.resume(&[&order_no]);
    resumed_to(&mut resume, &order_no, "paid", 0);
    rig.assert_settled(&order_no, "paid", Some("Paid"));
}

/// Killed while polling; the order expires at the provider while the till is down. On
/// restart the till asks and ends it expired, not paid.
#[test]
fn killed_while_polling_then_expired() {
    let rig = Rig::start();
    let (order_no, _) = killed_while_polling(&rig, "demo-ispay");
    rig.sandbox.control(&order_no, "expire");

    let mut resume = rig.resume(&[&order_no]);
    resumed_to(&mut resume, &order_no, "expired", 3);
    rig.assert_settled(&order_no, "expired", Some("Expired"));
}

/// Pays the order of a sale armed to crash at `point` inside the callback, waits for the
/// crash and returns the order number and its status at the crash.
fn killed_in_the_callback(rig: &Rig, point: &str) -> (String, String) {
    let mut charge = rig.charge("demo-ispay", Some(point));
    let qr = charge.event_of("qr", Duration::from_secs(20));
    let order_no = qr["order_no"].as_str().expect("order_no").to_string();
    rig.sandbox.control(&order_no, "pay");
    dies_of(&mut charge, SIGABRT, Some(point));
    let (row, status) = rig.only_order();
    assert_eq!(row, order_no);
    (order_no, status)
}

/// The paid notify passed its signature check; the till died before writing it. On restart
/// the till asks the provider and ends the order paid.
#[test]
fn killed_in_the_callback_before_the_ledger_write() {
    let rig = Rig::start();
    let (order_no, status) = killed_in_the_callback(&rig, "in_callback_before_ledger");
    // The notify was not written; only a poll that happened to come first could have been.
    let mut resume = if status == "paid" {
        rig.resume(&[])
    } else {
        assert_eq!(status, "pending");
        rig.resume(&[&order_no])
    };
    if status == "paid" {
        resume.drain();
        assert_eq!(resume.wait(), 0);
    } else {
        resumed_to(&mut resume, &order_no, "paid", 0);
    }
    rig.assert_settled(&order_no, "paid", Some("Paid"));
}

/// The paid notify was written; the till died before answering the provider. The ledger
/// already holds the payment: on restart nothing is left to resume, and it stays paid once.
#[test]
fn killed_in_the_callback_after_the_ledger_write() {
    let rig = Rig::start();
    let (order_no, status) = killed_in_the_callback(&rig, "in_callback_after_ledger");
    assert_eq!(status, "paid");
    let mut resume = rig.resume(&[]);
    resume.drain();
    assert_eq!(resume.wait(), 0, "nothing left unfinished");
    rig.assert_settled(&order_no, "paid", Some("Paid"));
}

/// A notify-only provider (igepay has no query): killed while the order waits; the payer
/// opens the QR link and pays while the till is down, so the first notify is lost. On
/// restart the order is watched for its notify, and the provider's next notify pays it.
#[test]
fn notify_only_killed_while_waiting_then_paid() {
    let rig = Rig::start();
    let (order_no, qr) = killed_while_polling(&rig, "demo-igepay");
    let link = qr["qr"].as_str().expect("qr text");
    let (status, page) = http("GET", link);
    assert_eq!(status, 200, "the payer opens {link}:\n{page}");
    rig.sandbox.control(&order_no, "pay");

    let mut resume = rig.resume(&[&order_no]);
    // Its first status line comes once the listener is serving again.
    let first = resume.event_of("status", Duration::from_secs(20));
    assert_eq!(first["status"], "pending", "{first}");
    let url = format!("{}/_sandbox/orders/{order_no}/notify", rig.sandbox.base);
    let (status, body) = http("POST", &url);
    assert_eq!(status, 200, "POST {url}: {body}");
    resumed_to(&mut resume, &order_no, "paid", 0);
    rig.assert_settled(&order_no, "paid", Some("Paid"));
    let events = rig.events(&order_no);
    let paid_by = events
        .iter()
        .find(|e| e["to"] == "paid")
        .unwrap_or_else(|| panic!("nothing made it paid: {events:?}"));
    assert_eq!(paid_by["kind"], "callback", "{paid_by}");
}
