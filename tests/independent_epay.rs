//! qrtill's 易支付 / epay requests are accepted by an independent implementation of the
//! protocol, written from its seed alone (`tests/independent/epay_server.py`), and
//! `qrtill charge --json` ends `paid` when that server reports the payment, by query and by
//! callback (the GET notify); a forged callback never makes an order paid.
//!
//! Each test starts the Python server on a random loopback port with a requests log, points a
//! config (`kind = "epay"`, `base_url` the server, `pid` and `key`) at it with `[listener]` on
//! a loopback port picked a moment before, and runs `qrtill charge --json` as a separate
//! process; the test plays the payer's phone and the platform's back office (the server's
//! control endpoints). epay's create is a server call (`POST /mapi.php`), so the QR is what the
//! server answered (`qrcode`, or its `payurl` jump page) and no `public_url` is needed. The
//! sales: (a) Alipay, answered `qrcode`, paid by the notify (`trade_status=TRADE_SUCCESS`,
//! MD5 over the sorted fields with the key appended directly) which the listener answers
//! `success`; (b) WeChat, answered `payurl`, with the listener off (`enabled = false`), found
//! only by `api.php?act=order` (key in the URL), run with `RUST_LOG=debug` and the key shown
//! nowhere in qrtill's output; (c) a well-signed notify with `trade_status=TRADE_CLOSED` pays
//! nothing; (e) an order expired at the server, which still answers `status` 0 (the protocol
//! has no "expired"), ended by the till's own timer (`order_timeout_secs = 5`,
//! `late_grace_secs = 1`): `done` expired, exit 3.
//!
//! In every sale the requests log must show each create and query accepted (code 1, no
//! `expected_sign`/`expected_key`, no `unknown_fields`); (d) wherever the listener runs, a
//! notify with a forged sign (the server's `/control/notify/{no}?forged=1`) is answered `fail`
//! and leaves the order unpaid (`qrtill status ORDER --json`, run while `charge` waits), and
//! the real one is answered `success`.
//!
//! Skipped (with a message) when `python3` is not on PATH. Every child is killed when its
//! guard drops (also when a test fails), every wait is bounded by the test's budget, and only
//! 127.0.0.1 is ever used.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::Value;

use common::independent::{Server, path_of};
use common::{
    Proc, Sale, assert_no_key, expect_done, expect_paid, http, qrtill_with, start_budget,
    start_charge, status_json,
};

/// The merchant id and key the independent server is started with.
const PID: &str = "1001";
const KEY: &str = "indep-epay-key-5b8e3a";

/// The provider id in the config.
const PROVIDER: &str = "epay";

/// The create and the query.
const MAPI: &str = "/mapi.php";
const API: &str = "/api.php";

/// How a test's config reaches the server.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// The callback listener on, the default timeouts.
    Listening,
    /// `[listener] enabled = false`: only the query can tell.
    QueryOnly,
    /// The listener on, `order_timeout_secs = 5` and `late_grace_secs = 1`.
    ShortTimeout,
}

/// The independent epay server, a config pointing qrtill at it, the listener's URL and a
/// temporary folder.
struct Setup {
    server: Server,
    /// `http://127.0.0.1:PORT` of qrtill's callback listener (not running in `QueryOnly`).
    listener: String,
    config: PathBuf,
    dir: tempfile::TempDir,
}

/// A loopback port that was free a moment ago (bound, then closed at once).
fn free_port() -> u16 {
    let socket = TcpListener::bind("127.0.0.1:0").expect("bind a free loopback port");
    socket.local_addr().expect("its address").port()
}

impl Setup {
    /// The server started with `--answer answer`. `None` (after saying so) when `python3` is
    /// missing.
    fn start(mode: Mode, answer: &str) -> Option<Setup> {
        let dir = tempfile::tempdir().expect("temp dir");
        let server = Server::start(
            "epay_server.py",
            &["--pid", PID, "--key", KEY, "--answer", answer],
            &dir.path().join("requests.jsonl"),
        )?;
        let listener = format!("http://127.0.0.1:{}", free_port());
        let listen = listener.trim_start_matches("http://");
        let enabled = if mode == Mode::QueryOnly {
            "enabled = false\n"
        } else {
            ""
        };
        let timeouts = if mode == Mode::ShortTimeout {
            "order_timeout_secs = 5\nlate_grace_secs = 1\n"
        } else {
            ""
        };
        let text = format!(
            "default_provider = \"{PROVIDER}\"\n{timeouts}\n[listener]\n{enabled}\
             listen = \"{listen}\"\n\n[[provider]]\nid = \"{PROVIDER}\"\nkind = \"epay\"\n\
             base_url = \"{}\"\npid = \"{PID}\"\nkey = \"{KEY}\"\n",
            server.url
        );
        let config = dir.path().join("config.toml");
        std::fs::write(&config, text).expect("write config");
        Some(Setup {
            server,
            listener,
            config,
            dir,
        })
    }

    /// The server's record of one order (`GET /control/orders`).
    fn order(&self, order_no: &str) -> Value {
        self.server.order("out_trade_no", order_no)
    }

    /// `POST {server}{path}` of a control endpoint must answer 200 `{"ok": true, …}`.
    fn control(&mut self, path: &str) -> Value {
        let url = format!("{}{path}", self.server.url);
        let (status, body) = http("POST", &url);
        let answer: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
        if status != 200 || answer["ok"] != true {
            self.server
                .proc
                .die(&format!("POST {url} answered {status}: {body}"));
        }
        answer
    }

    /// The order as the server keeps it must be what the till asked for: `money`, pay
    /// `type`, and (when listening) the notify sent to the listener.
    fn check_order(&self, sale: &Sale, money: &str, pay_type: &str, answered: &str) {
        let order = self.order(&sale.order_no);
        assert_eq!(order["money"], money, "{order}");
        assert_eq!(order["type"], pay_type, "{order}");
        assert_eq!(order["pid"], PID, "{order}");
        assert_eq!(order["sign_type"], "MD5", "{order}");
        assert_eq!(
            order["notify_url"],
            format!("{}/notify/{PROVIDER}", self.listener),
            "the notify goes to the listener: {order}"
        );
        assert!(order["return_url"].is_null(), "none configured: {order}");
        assert_eq!(order["param"], "", "qrtill never sends `param`: {order}");
        assert_eq!(
            sale.qr["qr"], order["answer"][answered],
            "the QR is the server's `{answered}`: {order}"
        );
    }

    /// The server's notify log lines for `order_no` that match `pred`; waits (bounded) for
    /// the first.
    fn notify_line(&self, what: &str, order_no: &str, pred: impl Fn(&Value) -> bool) -> Value {
        self.server.log_line(what, |l| {
            l["event"] == "notify" && l["out_trade_no"] == order_no && pred(l)
        })
    }

    /// `charge` must still be waiting (no `done` within a second), and `status --json` show
    /// the order pending, with nothing paid; returns the ledger event the notify `after`
    /// left (a `callback` whose raw text holds its sign), if any.
    fn still_pending(&self, sale: &mut Sale, after: &Value) -> Option<Value> {
        if let Some(done) = sale.charge.try_event_of("done", Duration::from_secs(1)) {
            panic!("the sale ended: {done}\nafter the notify: {after}");
        }
        let status = status_json(&self.config, sale, KEY);
        assert_eq!(
            status["status"], "pending",
            "the notify changed the order: {status}\n{after}"
        );
        assert!(status["paid"].is_null(), "the notify paid: {status}");
        assert!(
            events(&status).iter().all(|e| e["to"] != "paid"),
            "an event made the order paid: {status}"
        );
        let sign = after["fields"]["sign"].as_str().expect("the notify's sign");
        events(&status).into_iter().find(|e| {
            e["kind"] == "callback" && e["raw"].as_str().is_some_and(|raw| raw.contains(sign))
        })
    }

    /// A notify with a forged sign reaches the listener, is answered `fail` (not the
    /// `success` the platform waits for), and leaves the order unpaid while `charge` waits.
    fn forged_notify_is_refused(&mut self, sale: &mut Sale) {
        let order_no = sale.order_no.clone();
        self.control(&format!("/control/notify/{order_no}?forged=1&wait=1"));
        let forged = self.notify_line("the forged notify", &order_no, |l| l["forged"] == true);
        assert!(
            forged["url"]
                .as_str()
                .is_some_and(|u| u.starts_with(&format!("{}/notify/{PROVIDER}?", self.listener))),
            "{forged}"
        );
        assert_eq!(
            forged["status"], 200,
            "the forged notify reached the listener: {forged}"
        );
        assert_eq!(
            forged["response_body"].as_str().map(str::trim),
            Some("fail"),
            "a forged notify must be refused: {forged}"
        );
        assert_eq!(forged["acknowledged"], false, "{forged}");
        // The refusal may be logged on the order for staff, but it changes nothing.
        if let Some(event) = self.still_pending(sale, &forged) {
            assert!(
                event["to"].is_null(),
                "a forged notify changed the order: {event}\n{forged}"
            );
        }
    }

    /// The real notify (GET, `TRADE_SUCCESS`, signed with the key appended directly) was
    /// answered 200 `success`, as the protocol asks of the merchant.
    fn real_notify_is_acknowledged(&self, order_no: &str, money: &str) -> Value {
        let notify = self.notify_line("the real notify", order_no, |l| {
            l["forged"] == false && l["trade_status"] == "TRADE_SUCCESS"
        });
        assert_eq!(notify["method"], "GET", "{notify}");
        assert_eq!(
            notify["fields"]["trade_status"], "TRADE_SUCCESS",
            "{notify}"
        );
        assert_eq!(notify["fields"]["money"], money, "{notify}");
        assert_eq!(notify["fields"]["sign_type"], "MD5", "{notify}");
        assert_eq!(notify["status"], 200, "notify: {notify}");
        assert_eq!(
            notify["response_body"].as_str().map(str::trim),
            Some("success"),
            "qrtill must answer the notify `success`: {notify}"
        );
        assert_eq!(notify["acknowledged"], true, "{notify}");
        notify
    }

    /// Every protocol request in the log was accepted: one create (form POST to
    /// `/mapi.php`) and, when `queries`, at least one query (GET `/api.php?act=order` by our
    /// order number, with the right key); each code 1 with no sign or key error, no unknown
    /// field and no warning; the phone's pay page answered 200.
    fn assert_all_accepted(&self, order_no: &str, queries: bool) {
        let requests = self.server.protocol_requests();
        let mut creates = 0;
        let mut asked = 0;
        for r in &requests {
            assert_eq!(r["status"], 200, "request not answered 200: {r}");
            match path_of(r) {
                path if path.starts_with("/pay/") => continue,
                MAPI => {
                    creates += 1;
                    assert_eq!(r["method"], "POST", "{r}");
                    let ctype = r["content_type"].as_str().unwrap_or_default();
                    assert!(
                        ctype.starts_with("application/x-www-form-urlencoded"),
                        "{r}"
                    );
                    assert_eq!(r["query"], "", "everything in the form body: {r}");
                    let form = fields(r["body"].as_str().unwrap_or_default());
                    assert_eq!(form.get("out_trade_no").map(String::as_str), Some(order_no));
                    assert_eq!(form.get("pid").map(String::as_str), Some(PID));
                    assert!(form.contains_key("sign"), "the create is signed: {r}");
                    assert!(!form.contains_key("key"), "the key is not sent: {r}");
                }
                API => {
                    asked += 1;
                    assert_eq!(r["method"], "GET", "{r}");
                    let query = fields(r["query"].as_str().unwrap_or_default());
                    assert_eq!(query.get("act").map(String::as_str), Some("order"));
                    assert_eq!(query.get("pid").map(String::as_str), Some(PID));
                    assert_eq!(
                        query.get("out_trade_no").map(String::as_str),
                        Some(order_no)
                    );
                    assert_eq!(r["key_matched"], true, "the right key in the URL: {r}");
                }
                other => panic!("a request qrtill should not send ({other}): {r}"),
            }
            assert_eq!(r["result"]["code"], 1, "request refused: {r}");
            assert!(r.get("reason").is_none(), "request refused: {r}");
            assert!(r.get("expected_sign").is_none(), "wrong sign: {r}");
            assert!(r.get("expected_key").is_none(), "wrong key: {r}");
            assert!(
                r["unknown_fields"].as_array().is_none_or(Vec::is_empty),
                "fields the protocol lacks: {r}"
            );
            assert!(
                r["warnings"].as_array().is_none_or(Vec::is_empty),
                "the server warned: {r}"
            );
        }
        assert_eq!(creates, 1, "one create at {MAPI}: {requests:?}");
        if queries {
            assert!(asked >= 1, "no query at {API}: {requests:?}");
        }
        let order = self.order(order_no);
        assert_eq!(
            order["bad_key_queries"], 0,
            "a query with a wrong key: {order}"
        );
    }
}

/// A form-urlencoded string's fields (the last of a repeated name).
fn fields(text: &str) -> BTreeMap<String, String> {
    url::form_urlencoded::parse(text.as_bytes())
        .into_owned()
        .collect()
}

/// The ledger events of a `status --json` answer.
fn events(status: &Value) -> Vec<Value> {
    status["events"]
        .as_array()
        .expect("status has `events`")
        .clone()
}

/// `qrtill status ORDER --json` of a paid sale: paid `amount`, made paid by a ledger event of
/// kind `by` (`callback` or `query`); returns the status.
fn ledger_paid(setup: &Setup, sale: &Sale, amount: &str, by: &str) -> Value {
    let status = status_json(&setup.config, sale, KEY);
    assert_eq!(status["status"], "paid", "{status}");
    assert_eq!(status["paid"], amount, "{status}");
    assert_eq!(status["provider_kind"], "epay", "{status}");
    let paid = events(&status)
        .into_iter()
        .find(|e| e["to"] == "paid")
        .unwrap_or_else(|| panic!("no event made the order paid: {status}"));
    assert_eq!(paid["kind"], by, "the {by} made it paid: {status}");
    status
}

// ---------------------------------------------------------------------------------------------
// Tests

#[test]
fn alipay_qrcode_paid_by_the_notify_and_a_forged_notify_pays_nothing() {
    start_budget();
    let Some(mut setup) = Setup::start(Mode::Listening, "mixed") else {
        return;
    };
    let mut sale = start_charge(&setup.config, setup.dir.path(), "12.34", "alipay");
    let qr = sale.qr["qr"].as_str().unwrap_or_default().to_string();
    assert!(
        qr.starts_with("https://qr.alipay.com/"),
        "Alipay is answered a `qrcode`: {}",
        sale.qr
    );
    setup.check_order(&sale, "12.34", "alipay", "qrcode");
    setup.forged_notify_is_refused(&mut sale);

    setup.control(&format!("/control/pay/{}?wait=1", sale.order_no));
    expect_paid(&mut sale, "12.34", KEY);
    setup.real_notify_is_acknowledged(&sale.order_no, "12.34");
    setup.assert_all_accepted(&sale.order_no, false);
    ledger_paid(&setup, &sale, "12.34", "callback");
}

#[test]
fn wechat_payurl_found_only_by_the_query_and_the_key_never_shown() {
    start_budget();
    let Some(mut setup) = Setup::start(Mode::QueryOnly, "payurl") else {
        return;
    };
    // `charge --json` as `start_charge` runs it, but with every debug log on.
    let data = setup.dir.path().join("data-debug");
    std::fs::create_dir_all(&data).expect("create data folder");
    let mut cmd = qrtill_with(
        &setup.config,
        &data,
        &[
            "charge",
            "--amount",
            "8.80",
            "--channel",
            "wechat",
            "--json",
        ],
    );
    cmd.env("RUST_LOG", "debug");
    let mut charge = Proc::spawn("qrtill charge (RUST_LOG=debug)", cmd);
    let qr = charge.event_of("qr", Duration::from_secs(20));
    assert_eq!(qr["payable"], "8.80", "{qr}");
    let order_no = qr["order_no"].as_str().unwrap_or_default().to_string();
    assert!(!order_no.is_empty(), "qr event has no order_no: {qr}");
    let mut sale = Sale {
        charge,
        order_no,
        qr,
        data,
    };
    let payurl = format!("{}/pay/", setup.server.url);
    assert!(
        sale.qr["qr"]
            .as_str()
            .is_some_and(|qr| qr.starts_with(&payurl)),
        "the QR is the server's `payurl`: {}",
        sale.qr
    );
    setup.check_order(&sale, "8.80", "wxpay", "payurl");

    // The payer's phone opens the jump page; then the platform marks the order paid.
    let link = sale.qr["qr"].as_str().unwrap_or_default().to_string();
    let (status, page) = http("GET", &link);
    assert_eq!(status, 200, "GET {link}:\n{page}");
    assert!(page.contains("¥8.80"), "not this order's page:\n{page}");
    setup.control(&format!("/control/pay/{}?wait=1", sale.order_no));
    expect_paid(&mut sale, "8.80", KEY);

    // The debug log did show the query URL, with the key masked.
    let stderr = sale.charge.stderr_text();
    assert!(
        stderr.contains("api.php?act=order"),
        "no query URL in the debug log:\n{stderr}"
    );
    assert_no_key("charge stderr (RUST_LOG=debug)", &stderr, KEY);
    assert_no_key("charge stdout", &sale.charge.seen.join("\n"), KEY);

    setup.assert_all_accepted(&sale.order_no, true);
    let order = setup.order(&sale.order_no);
    assert_eq!(order["status"], "paid", "{order}");
    assert!(order["query_count"].as_u64().unwrap_or(0) >= 1, "{order}");
    // The server did try its notify; nothing was listening.
    let notify = setup.notify_line("the real notify", &sale.order_no, |l| l["forged"] == false);
    assert_eq!(
        notify["acknowledged"], false,
        "the listener is off: {notify}"
    );
    let status = ledger_paid(&setup, &sale, "8.80", "query");
    assert!(
        events(&status).iter().all(|e| e["kind"] != "callback"),
        "no notify reached the till: {status}"
    );
}

#[test]
fn a_trade_closed_notify_pays_nothing() {
    start_budget();
    let Some(mut setup) = Setup::start(Mode::Listening, "mixed") else {
        return;
    };
    let mut sale = start_charge(&setup.config, setup.dir.path(), "5.00", "alipay");
    setup.check_order(&sale, "5.00", "alipay", "qrcode");

    let order_no = sale.order_no.clone();
    setup.control(&format!(
        "/control/notify/{order_no}?status=TRADE_CLOSED&wait=1"
    ));
    let closed = setup.notify_line("the TRADE_CLOSED notify", &order_no, |l| {
        l["trade_status"] == "TRADE_CLOSED"
    });
    assert_eq!(closed["forged"], false, "{closed}");
    assert_eq!(
        closed["status"], 200,
        "the notify reached the listener: {closed}"
    );
    assert_eq!(
        closed["response_body"].as_str().map(str::trim),
        Some("success"),
        "a well-signed notify is acknowledged, whatever its trade_status: {closed}"
    );
    let event = setup
        .still_pending(&mut sale, &closed)
        .unwrap_or_else(|| panic!("the TRADE_CLOSED notify left no callback event: {closed}"));
    assert!(event["to"].is_null(), "it changed nothing: {event}");
    setup.forged_notify_is_refused(&mut sale);

    // The order can still be paid, and then it is.
    setup.control(&format!("/control/pay/{order_no}?wait=1"));
    expect_paid(&mut sale, "5.00", KEY);
    setup.real_notify_is_acknowledged(&order_no, "5.00");
    setup.assert_all_accepted(&order_no, false);
    // Here the notify and the next poll (once a second) race after a long test: either may
    // make it paid; this test is about the TRADE_CLOSED notify above paying nothing.
    let status = status_json(&setup.config, &sale, KEY);
    assert_eq!(status["status"], "paid", "{status}");
    assert_eq!(status["paid"], "5.00", "{status}");
}

#[test]
fn expired_at_the_server_ends_expired_by_the_tills_timer() {
    start_budget();
    let Some(mut setup) = Setup::start(Mode::ShortTimeout, "mixed") else {
        return;
    };
    let started = Instant::now();
    let mut sale = start_charge(&setup.config, setup.dir.path(), "3.00", "qq");
    setup.check_order(&sale, "3.00", "qqpay", "qrcode");
    setup.forged_notify_is_refused(&mut sale);

    setup.control(&format!("/control/expire/{}", sale.order_no));
    let done = expect_done(&mut sale.charge, &sale.order_no);
    assert_eq!(done["status"], "expired", "{done}");
    assert!(done["paid"].is_null(), "{done}");
    assert_eq!(
        sale.charge.wait(),
        3,
        "exit code of a sale that ended unpaid"
    );
    assert!(
        started.elapsed() >= Duration::from_secs(5),
        "ended before its 5 s timeout: {done}"
    );
    assert_no_key("charge stdout", &sale.charge.seen.join("\n"), KEY);
    assert_no_key("charge stderr", &sale.charge.stderr_text(), KEY);

    setup.assert_all_accepted(&sale.order_no, true);
    let last_query = setup
        .server
        .protocol_requests()
        .into_iter()
        .rfind(|r| path_of(r) == API)
        .expect("a query");
    assert_eq!(
        last_query["result"]["status"], 0,
        "epay has no expired status; the query said unpaid: {last_query}"
    );
    let status = status_json(&setup.config, &sale, KEY);
    assert_eq!(status["status"], "expired", "{status}");
    assert!(status["paid"].is_null(), "{status}");
    assert_eq!(setup.order(&sale.order_no)["status"], "expired");
}
