//! qrtill's gatepay.io requests are accepted by an independent implementation of the
//! protocol, written from its seed alone (`tests/independent/gatepay_server.py`), and
//! `qrtill charge --json` ends `paid` when that server reports the payment, by query and by
//! notify; a forged notify never makes an order paid.
//!
//! Each test starts the Python server on a random loopback port with a requests log, points a
//! config (`kind = "gatepay"`, `base_url` the server) at it with `[listener]` on a loopback
//! port picked a moment before, and runs `qrtill charge --json` as a separate process. The
//! test plays the payer's phone: it opens the QR, which is the server's own `pay_url` (no
//! bridge page: gatepay's create is a server call, so no `public_url` is needed), then has
//! the server mark the order paid. The sales: (a) paid by the server's notify to the
//! listener; (b) with the listener off (`enabled = false`), found only by the signed
//! `GET /api/order/check` answering `paid`; (c) a notify whose `realprice` differs from the
//! price: paid, with `amount_mismatch`; (d) the cloud variant (`/api/cloudpay/create`,
//! Alipay only, no notify URL sent), found by query; (e) expired at the server: the query
//! ends the sale `expired`, exit 3.
//!
//! In every sale the requests log must show each create and query accepted (code 100, no
//! `expected_sign`/`expected_key`, no `unknown_fields`); wherever the listener runs, a notify
//! with a forged sign (the server's `/control/notify/{no}?forged=1`) is answered `fail` and
//! leaves the order unpaid (`qrtill status ORDER --json`, run while `charge` waits), and the
//! real one is answered `success`.
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

use std::net::TcpListener;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::Value;

use common::independent::{Server, path_of};
use common::{
    Sale, bounded, expect_done, expect_paid, http, qrtill_with, run, start_budget, start_charge,
    status_json,
};

/// The merchant's appkey and appsecret the independent server is started with.
const APPKEY: &str = "indep-gatepay-appkey-2f9c";
const APPSECRET: &str = "indep-gatepay-secret-7d41";

/// The provider id in the config.
const PROVIDER: &str = "gate";

/// The create of each variant, and the query.
const ANYPAY_CREATE: &str = "/api/anypay/create";
const CLOUD_CREATE: &str = "/api/cloudpay/create";
const CHECK: &str = "/api/order/check";

/// The gatepay-hosted pay page a QR opens.
const PAY_PAGE: &str = "/pay/api";

/// How a test's config reaches the server.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// The any-amount API with the callback listener on.
    AnyPay,
    /// The any-amount API with `[listener] enabled = false`: only the query can tell.
    QueryOnly,
    /// `variant = "cloud"` (which sends no notify URL).
    Cloud,
}

/// The independent gatepay server, a config pointing qrtill at it, the listener's URL and a
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
    /// `None` (after saying so) when `python3` is missing.
    fn start(mode: Mode) -> Option<Setup> {
        let dir = tempfile::tempdir().expect("temp dir");
        let server = Server::start(
            "gatepay_server.py",
            &["--appkey", APPKEY, "--appsecret", APPSECRET],
            &dir.path().join("requests.jsonl"),
        )?;
        let listener = format!("http://127.0.0.1:{}", free_port());
        let listen = listener.trim_start_matches("http://");
        let enabled = if mode == Mode::QueryOnly {
            "enabled = false\n"
        } else {
            ""
        };
        let variant = if mode == Mode::Cloud {
            "variant = \"cloud\"\n"
        } else {
            ""
        };
        let text = format!(
            "default_provider = \"{PROVIDER}\"\n\n[listener]\n{enabled}listen = \"{listen}\"\n\n\
             [[provider]]\nid = \"{PROVIDER}\"\nkind = \"gatepay\"\nbase_url = \"{}\"\n\
             appkey = \"{APPKEY}\"\nappsecret = \"{APPSECRET}\"\n{variant}",
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

    /// Starts `charge --json` and reads up to its QR, which must be the server's `pay_url`;
    /// then the payer's phone opens it.
    fn sale(&self, amount: &str, channel: &str) -> Sale {
        let sale = start_charge(&self.config, self.dir.path(), amount, channel);
        let order = self.order(&sale.order_no);
        assert_eq!(order["price"], amount, "{order}");
        assert_eq!(order["type"], channel, "{order}");
        assert_eq!(order["custom"], "", "no `custom` configured: {order}");
        let pay_url = order["pay_url"].as_str().expect("the order's pay_url");
        assert_eq!(
            sale.qr["qr"], pay_url,
            "the QR is gatepay's pay page: {}",
            sale.qr
        );
        let (status, page) = http("GET", pay_url);
        assert_eq!(status, 200, "GET {pay_url}:\n{page}");
        assert!(
            page.contains(&format!("任意金额支付:{amount}元")),
            "not the pay page of this order:\n{page}"
        );
        sale
    }

    /// The server's record of one order (`GET /control/orders`).
    fn order(&self, order_no: &str) -> Value {
        self.server.order("out_order_id", order_no)
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

    /// Waits (bounded) until qrtill has just queried the order, so that its next query is at
    /// least its 2 s poll interval away: what the server reports next is then what tells it.
    fn right_after_a_query(&self, order_no: &str) {
        let queries = |order: &Value| order["query_count"].as_u64().unwrap_or(0);
        let before = queries(&self.order(order_no));
        let until = Instant::now() + bounded(Duration::from_secs(10));
        while queries(&self.order(order_no)) == before {
            assert!(
                Instant::now() < until,
                "qrtill did not query the order within 10 s: {}",
                self.order(order_no)
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// The server marks the order paid (with `realprice`, when given) and sends its notify.
    fn pay(&mut self, order_no: &str, realprice: Option<&str>) -> Value {
        let query = realprice
            .map(|p| format!("?realprice={p}"))
            .unwrap_or_default();
        self.control(&format!("/control/pay/{order_no}{query}"))
    }

    /// The server's notify log line for `order_no`, forged or real.
    fn notify_line(&self, order_no: &str, forged: bool) -> Value {
        let what = if forged {
            "forged notify"
        } else {
            "real notify"
        };
        self.server.log_line(what, |l| {
            l["event"] == "notify" && l["out_order_id"] == order_no && l["forged"] == forged
        })
    }

    /// A notify with a forged sign reaches the listener, is answered `fail` (the seed's
    /// refusal), and leaves the order unpaid while `charge` waits.
    fn forged_notify_is_refused(&mut self, sale: &mut Sale) {
        let order_no = sale.order_no.clone();
        self.control(&format!("/control/notify/{order_no}?forged=1"));
        let forged = self.notify_line(&order_no, true);
        assert_eq!(
            forged["url"],
            format!("{}/notify/{PROVIDER}", self.listener),
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
        if let Some(done) = sale.charge.try_event_of("done", Duration::from_secs(1)) {
            panic!("a forged notify ended the sale: {done}\nforged notify: {forged}");
        }
        let status = status_json(&self.config, sale, APPSECRET);
        assert_eq!(
            status["status"], "pending",
            "a forged notify changed the order: {status}\n{forged}"
        );
        assert!(status["paid"].is_null(), "a forged notify paid: {status}");
        // The refusal may be logged on the order for staff, but no callback changed it.
        assert!(
            events(&status)
                .iter()
                .all(|e| e["kind"] != "callback" || e["to"].is_null()),
            "a forged notify changed the order: {status}"
        );
    }

    /// The real notify was answered 200 `success`, as the seed asks of the merchant.
    fn real_notify_is_acknowledged(&self, order_no: &str) -> Value {
        let notify = self.notify_line(order_no, false);
        assert_eq!(
            notify["url"],
            format!("{}/notify/{PROVIDER}", self.listener),
            "{notify}"
        );
        assert_eq!(notify["method"], "POST", "{notify}");
        assert_eq!(notify["status"], 200, "notify: {notify}");
        assert_eq!(
            notify["response_body"].as_str().map(str::trim),
            Some("success"),
            "qrtill must answer the notify `success`: {notify}"
        );
        assert_eq!(notify["acknowledged"], true, "{notify}");
        notify
    }

    /// Every protocol request in the log was accepted: one create at `create` (form POST)
    /// and at least one signed query (GET), each code 100 with no sign or key error and no
    /// unknown field; the phone's pay page answered 200.
    fn assert_all_accepted(&self, order_no: &str, create: &str) {
        let requests = self.server.protocol_requests();
        let mut creates = 0;
        let mut queries = 0;
        for r in &requests {
            assert_eq!(r["status"], 200, "request not answered 200: {r}");
            match path_of(r) {
                PAY_PAGE => continue,
                path if path == create => {
                    creates += 1;
                    assert_eq!(r["method"], "POST", "{r}");
                    let form = fields(r["body"].as_str().unwrap_or_default());
                    assert_eq!(form.get("out_order_id").map(String::as_str), Some(order_no));
                }
                CHECK => {
                    queries += 1;
                    assert_eq!(r["method"], "GET", "{r}");
                    let query = fields(r["query"].as_str().unwrap_or_default());
                    assert_eq!(query.get("appkey").map(String::as_str), Some(APPKEY));
                    assert_eq!(
                        query.get("out_order_id").map(String::as_str),
                        Some(order_no)
                    );
                    assert!(query.contains_key("sign"), "the query is signed: {r}");
                }
                other => panic!("a request qrtill should not send ({other}): {r}"),
            }
            assert_eq!(r["result"]["code"], 100, "request refused: {r}");
            assert!(r.get("expected_sign").is_none(), "wrong sign: {r}");
            assert!(r.get("expected_key").is_none(), "wrong key: {r}");
            assert!(
                r["unknown_fields"].as_array().is_none_or(Vec::is_empty),
                "fields the protocol lacks: {r}"
            );
            assert!(
                !r.to_string().contains(APPSECRET),
                "the secret was sent: {r}"
            );
        }
        assert_eq!(creates, 1, "one create at {create}: {requests:?}");
        assert!(queries >= 1, "no query at {CHECK}: {requests:?}");
    }
}

/// A form-urlencoded string's fields (the last of a repeated name).
fn fields(text: &str) -> std::collections::BTreeMap<String, String> {
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
/// kind `by` (`callback` or `query`); returns the status and that event.
fn ledger_paid(setup: &Setup, sale: &Sale, amount: &str, by: &str) -> (Value, Value) {
    let status = status_json(&setup.config, sale, APPSECRET);
    assert_eq!(status["status"], "paid", "{status}");
    assert_eq!(status["paid"], amount, "{status}");
    let paid = events(&status)
        .into_iter()
        .find(|e| e["to"] == "paid")
        .unwrap_or_else(|| panic!("no event made the order paid: {status}"));
    assert_eq!(paid["kind"], by, "the {by} made it paid: {status}");
    assert_eq!(
        status["provider_order_id"],
        setup.order(&sale.order_no)["order_id"].to_string(),
        "the ledger keeps gatepay's order_id (from the query): {status}"
    );
    (status, paid)
}

/// The `done` line of a finished sale (its last line).
fn done_of(sale: &Sale) -> Value {
    let last = sale.charge.seen.last().expect("charge printed lines");
    serde_json::from_str(last).expect("the done line is JSON")
}

// ---------------------------------------------------------------------------------------------
// Tests

#[test]
fn paid_by_the_notify_and_a_forged_notify_pays_nothing() {
    start_budget();
    let Some(mut setup) = Setup::start(Mode::AnyPay) else {
        return;
    };
    let mut sale = setup.sale("12.34", "alipay");
    let order = setup.order(&sale.order_no);
    assert_eq!(
        order["notify_url"],
        format!("{}/notify/{PROVIDER}", setup.listener),
        "the notify goes to the listener: {order}"
    );
    assert!(order["return_url"].is_null(), "{order}");
    setup.forged_notify_is_refused(&mut sale);

    setup.right_after_a_query(&sale.order_no);
    setup.pay(&sale.order_no, None);
    expect_paid(&mut sale, "12.34", APPSECRET);
    let done = done_of(&sale);
    assert_eq!(done["amount"], "12.34", "{done}");
    assert_eq!(done["amount_mismatch"], false, "{done}");

    let notify = setup.real_notify_is_acknowledged(&sale.order_no);
    assert_eq!(notify["fields"]["realprice"], "12.34", "{notify}");
    setup.assert_all_accepted(&sale.order_no, ANYPAY_CREATE);
    ledger_paid(&setup, &sale, "12.34", "callback");
}

#[test]
fn paid_found_only_by_the_query() {
    start_budget();
    let Some(mut setup) = Setup::start(Mode::QueryOnly) else {
        return;
    };
    let mut sale = setup.sale("8.80", "wechat");
    setup.pay(&sale.order_no, None);
    expect_paid(&mut sale, "8.80", APPSECRET);
    assert_eq!(done_of(&sale)["amount_mismatch"], false);

    setup.assert_all_accepted(&sale.order_no, ANYPAY_CREATE);
    let order = setup.order(&sale.order_no);
    assert_eq!(order["order_status"], "paid", "{order}");
    // The server did try its notify; nothing was listening.
    let notify = setup.notify_line(&sale.order_no, false);
    assert_eq!(
        notify["acknowledged"], false,
        "the listener is off: {notify}"
    );
    let (status, paid) = ledger_paid(&setup, &sale, "8.80", "query");
    assert!(
        paid["raw"]
            .as_str()
            .is_some_and(|raw| raw.contains("\"order_status\":\"paid\"")),
        "{paid}"
    );
    assert!(
        events(&status).iter().all(|e| e["kind"] != "callback"),
        "no notify reached the till: {status}"
    );
}

#[test]
fn a_different_realprice_is_paid_and_flagged() {
    start_budget();
    let Some(mut setup) = Setup::start(Mode::AnyPay) else {
        return;
    };
    let mut sale = setup.sale("12.34", "wechat");
    setup.forged_notify_is_refused(&mut sale);

    // The notify, not the query (which names only the order's price), must tell the till.
    setup.right_after_a_query(&sale.order_no);
    setup.pay(&sale.order_no, Some("12.33"));
    expect_paid(&mut sale, "12.33", APPSECRET);
    let done = done_of(&sale);
    assert_eq!(done["amount"], "12.34", "{done}");
    assert_eq!(done["amount_mismatch"], true, "{done}");

    let notify = setup.real_notify_is_acknowledged(&sale.order_no);
    assert_eq!(notify["fields"]["price"], "12.34", "{notify}");
    assert_eq!(notify["fields"]["realprice"], "12.33", "{notify}");
    setup.assert_all_accepted(&sale.order_no, ANYPAY_CREATE);
    let (status, _) = ledger_paid(&setup, &sale, "12.33", "callback");
    assert_eq!(status["amount_mismatch"], true, "{status}");
}

#[test]
fn cloud_variant_is_accepted_and_paid_by_the_query() {
    start_budget();
    let Some(mut setup) = Setup::start(Mode::Cloud) else {
        return;
    };
    // Cloud is Alipay only: WeChat is refused before anything is sent.
    let data = setup.dir.path().join("data-wechat");
    let refused = run(
        "qrtill charge",
        qrtill_with(
            &setup.config,
            &data,
            &[
                "charge",
                "--amount",
                "6.60",
                "--channel",
                "wechat",
                "--json",
            ],
        ),
    );
    assert_eq!(refused.code, 2, "{}\n{}", refused.stdout, refused.stderr);
    assert!(refused.stderr.contains("alipay"), "{}", refused.stderr);
    assert!(
        setup.server.protocol_requests().is_empty(),
        "a refused channel sent a request: {:?}",
        setup.server.protocol_requests()
    );

    let mut sale = setup.sale("6.60", "alipay");
    let order = setup.order(&sale.order_no);
    assert_eq!(order["variant"], "cloudpay", "{order}");
    assert!(
        order["notify_url"].is_null() && order["return_url"].is_null(),
        "cloud sends neither URL: {order}"
    );
    let create = setup
        .server
        .protocol_requests()
        .into_iter()
        .find(|r| path_of(r) == CLOUD_CREATE)
        .expect("the cloud create");
    assert!(
        create["result"]["data"].get("qrcode_body").is_none(),
        "the cloud answer has no qrcode_body: {create}"
    );

    let paid = setup.pay(&sale.order_no, None);
    assert!(
        paid["notify"]
            .as_str()
            .is_some_and(|n| n.starts_with("not sent")),
        "a cloud order has no notify URL: {paid}"
    );
    expect_paid(&mut sale, "6.60", APPSECRET);
    setup.assert_all_accepted(&sale.order_no, CLOUD_CREATE);
    ledger_paid(&setup, &sale, "6.60", "query");
}

#[test]
fn expired_at_the_server_ends_expired() {
    start_budget();
    let Some(mut setup) = Setup::start(Mode::AnyPay) else {
        return;
    };
    let mut sale = setup.sale("3.00", "alipay");
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
    let stdout = sale.charge.seen.join("\n");
    let stderr = sale.charge.stderr_text();
    common::assert_no_key("charge stdout", &stdout, APPSECRET);
    common::assert_no_key("charge stderr", &stderr, APPSECRET);

    setup.assert_all_accepted(&sale.order_no, ANYPAY_CREATE);
    let last_query = setup
        .server
        .protocol_requests()
        .into_iter()
        .rfind(|r| path_of(r) == CHECK)
        .expect("a query");
    assert_eq!(
        last_query["result"]["data"]["order_status"], "expired",
        "the query told it: {last_query}"
    );
    let status = status_json(&setup.config, &sale, APPSECRET);
    assert_eq!(status["status"], "expired", "{status}");
    assert!(status["paid"].is_null(), "{status}");
    assert_eq!(setup.order(&sale.order_no)["order_status"], "expired");
}
