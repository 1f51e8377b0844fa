//! qrtill's sun.jings.wang (阳光支付) v1 requests are accepted by an independent implementation
//! of the protocol written from its seed alone (`tests/independent/jings_server.py`), and
//! `qrtill charge --json` ends `paid` when that server reports the payment, by query and by
//! callback; a forged callback never makes an order paid.
//!
//! Each test starts the Python server on a random loopback port with a requests log, points a
//! config at it (a `[[provider]]` of kind `jings`, a `[listener]` on a free loopback port) and
//! runs `qrtill charge --json` as a separate process, then acts as the payer's phone:
//! - with `public_url`, the QR is qrtill's bridge page: the test opens it and posts the signed
//!   form it holds to the server's `/pay.action`; without it, the QR is the signed
//!   `/pay.action` link itself, opened with a GET (the server's tolerance);
//! - the server's forged notify (`/control/notify/{no}?forged=1`) must be refused (not 2xx)
//!   and leave the order unpaid, as `qrtill status ORDER --json` shows while `charge` waits;
//! - the real notify (`/control/pay/{no}`, `?realpay=` for an underpayment) must be
//!   answered 2xx and end the sale paid, flagged `amount_mismatch` when less came;
//! - with the listener off no notify can arrive, and the sale ends paid by qrtill's status
//!   query, which for this provider comes a full minute after the order.
//!
//! After every sale the requests log shows that every request was accepted (no
//! `expected_key`, no unknown field, no `rate_limited`): the pay form, the status query
//! (`requstOrderStatus.action`, its key INFERRED from the seed) and the start-up balance
//! query (`requstBalance.action`, keyed over Beijing time); and the server's own record shows
//! that no order was queried twice within 60 s.
//!
//! Skipped (with a message) when `python3` is not on PATH. Every child is killed when its
//! guard drops (also when a test fails), only 127.0.0.1 is ever used, and every wait is
//! bounded by the test's budget, but for one: the minute before qrtill's first status query,
//! bounded at [`QUERY_WAIT`].

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

use serde_json::{Value, json};

use common::independent::{Server, path_of};
use common::page::form_of;
use common::{
    Sale, assert_no_key, expect_paid, http, http_with, start_budget, start_charge, status_json,
};

/// The merchant id (商户ID, the seed's shape) and token the server is started with.
const UID: &str = "10000001400000";
const TOKEN: &str = "indep-jings-token-789";

/// The provider id in the config: notifies come to `/notify/sun`.
const PROVIDER: &str = "sun";

/// The protocol's three endpoints (sic "requst").
const PAY_PATH: &str = "/pay.action";
const QUERY_PATH: &str = "/requstOrderStatus.action";
const BALANCE_PATH: &str = "/requstBalance.action";

/// The pay form's fields in the seed's key order, then the key.
const PAY_FORM: &str =
    "uid orderid ordername paymoney orderuid paytype notifyurl returnurl orderinfo key";

/// What every sale charges (paytype 11 is Alipay).
const AMOUNT: &str = "3.50";

/// The seed's limit: one status query per order per minute.
const QUERY_INTERVAL_SECS: f64 = 60.0;

/// How long after its QR a sale may wait for qrtill's first status query (a minute, by the
/// provider's limit, and a margin).
const QUERY_WAIT: Duration = Duration::from_secs(70);

/// qrtill's callback listener in a test's config.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Listener {
    /// Listening, with `public_url` its own address: the QR is the bridge page.
    Public,
    /// Listening without `public_url`: the QR is the signed link; notifies still arrive.
    Local,
    /// Not listening (`enabled = false`): no notify arrives, only the query finds the payment.
    Off,
}

/// The independent server, a config pointing qrtill at it, and a temporary folder.
struct Setup {
    server: Server,
    mode: Listener,
    /// `http://127.0.0.1:PORT` of qrtill's listener (nobody listens there with `Off`).
    listener: String,
    config: PathBuf,
    dir: tempfile::TempDir,
}

impl Setup {
    /// `None` (after saying so) when `python3` is missing.
    fn start(mode: Listener) -> Option<Setup> {
        let dir = tempfile::tempdir().expect("temp dir");
        let server = Server::start(
            "jings_server.py",
            &["--uid", UID, "--token", TOKEN],
            &dir.path().join("requests.jsonl"),
        )?;
        // A loopback port free a moment ago.
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|socket| socket.local_addr())
            .expect("a free loopback port")
            .port();
        let listener = format!("http://127.0.0.1:{port}");
        let how = match mode {
            Listener::Public => format!("public_url = \"{listener}\""),
            Listener::Local => String::new(),
            Listener::Off => "enabled = false".into(),
        };
        let config = dir.path().join("config.toml");
        let text = [
            format!("default_provider = \"{PROVIDER}\""),
            String::new(),
            "[listener]".into(),
            format!("listen = \"127.0.0.1:{port}\""),
            how,
            String::new(),
            "[[provider]]".into(),
            format!("id = \"{PROVIDER}\""),
            "kind = \"jings\"".into(),
            format!("base_url = \"{}\"", server.url),
            format!("uid = \"{UID}\""),
            format!("token = \"{TOKEN}\""),
        ]
        .join("\n");
        std::fs::write(&config, text + "\n").expect("write config");
        Some(Setup {
            server,
            mode,
            listener,
            config,
            dir,
        })
    }

    /// Starts `charge --amount 3.50 --channel alipay --json` and reads up to its QR.
    fn sale(&self) -> Sale {
        start_charge(&self.config, self.dir.path(), AMOUNT, "alipay")
    }

    /// The payer's phone opens the QR and reaches the server's pay page: through the bridge
    /// page's form (posted) with `public_url`, else by the signed link (a GET). The server
    /// must accept that one request.
    fn open_pay_page(&self, sale: &Sale) {
        let qr = sale.qr["qr"].as_str().unwrap_or_default();
        assert_no_key("the QR", qr, TOKEN);
        let pay_url = format!("{}{PAY_PATH}", self.server.url);
        let (method, (status, answer)) = if self.mode == Listener::Public {
            let bridge = format!("{}/pay/{}", self.listener, sale.order_no);
            assert_eq!(qr, bridge, "with public_url the QR is the bridge page");
            let (status, page) = http("GET", qr);
            assert_eq!(status, 200, "GET {qr}:\n{page}");
            assert_no_key("the bridge page", &page, TOKEN);
            let (action, fields) = form_of(&page);
            assert_eq!(action, pay_url, "the form goes to the provider:\n{page}");
            let names: Vec<&str> = fields.iter().map(|(name, _)| name.as_str()).collect();
            assert_eq!(
                names.join(" "),
                PAY_FORM,
                "the seed's fields, in order:\n{page}"
            );
            let body = url::form_urlencoded::Serializer::new(String::new())
                .extend_pairs(&fields)
                .finish();
            let form = Some("application/x-www-form-urlencoded");
            ("POST", http_with("POST", &action, form, &body))
        } else {
            assert!(
                qr.starts_with(&format!("{pay_url}?")),
                "without public_url the QR is the signed pay link: {qr}"
            );
            assert!(qr.contains("&key="), "the link is signed: {qr}");
            ("GET", http("GET", qr))
        };
        assert_eq!(status, 200, "{method} {pay_url}:\n{answer}");
        assert!(
            !answer.contains("支付请求错误") && answer.contains("data-state=\"waiting\""),
            "not the server's pay page, waiting:\n{answer}"
        );
        assert!(
            answer.contains(&format!("<span id=\"orderid\">{}</span>", sale.order_no)),
            "not the pay page of order {}:\n{answer}",
            sale.order_no
        );

        let pay = self.only_request_to(PAY_PATH);
        assert_eq!(pay["method"], method, "{pay}");
        assert_accepted(&pay);
        let order = self.server.order("orderid", &sale.order_no);
        assert_eq!(order["method"], method, "{order}");
        assert_eq!(order["state"], "waiting", "{order}");
        assert_eq!(order["paymoney"], AMOUNT, "{order}");
        assert_eq!(order["paytype"], "11", "alipay is paytype 11: {order}");
        let notifyurl = format!("{}/notify/{PROVIDER}", self.listener);
        assert_eq!(order["notifyurl"], notifyurl, "{order}");
        // qrtill's choice: with no `returnurl` configured the payer returns to the listener.
        assert_eq!(order["returnurl"], notifyurl, "{order}");
        assert_eq!(
            order["absent_fields"],
            json!([]),
            "every field sent: {order}"
        );
        assert_eq!(order["unknown_fields"], json!({}), "{order}");
    }

    /// The one request the server logged for `path`.
    fn only_request_to(&self, path: &str) -> Value {
        let mut requests: Vec<Value> = self
            .server
            .protocol_requests()
            .into_iter()
            .filter(|r| path_of(r) == path)
            .collect();
        assert_eq!(requests.len(), 1, "one request to {path}: {requests:?}");
        requests.remove(0)
    }

    /// The server's log line of the (real or forged) notify it sent for `order_no`.
    fn notify_of(&self, order_no: &str, forged: bool) -> Value {
        self.server.log_line("the notify", |l| {
            l["event"] == "notify" && l["orderid"] == order_no && l["forged"] == forged
        })
    }

    /// The server sends a notify whose key was made with a wrong token: qrtill must refuse
    /// it (not 2xx, so the platform would retry a real one) and the order stay unpaid.
    fn forged_notify_changes_nothing(&mut self, sale: &mut Sale) {
        self.server.control(
            "POST",
            &format!("/control/notify/{}?forged=1", sale.order_no),
        );
        let forged = self.notify_of(&sale.order_no, true);
        assert!(
            forged["status"]
                .as_u64()
                .is_some_and(|code| !(200..300).contains(&code)),
            "a forged notify must reach the listener and be refused: {forged}"
        );
        assert_eq!(forged["ok"], false, "{forged}");
        if let Some(done) = sale.charge.try_event_of("done", Duration::from_secs(1)) {
            panic!("a forged notify ended the sale: {done}\nforged notify: {forged}");
        }
        let status = status_json(&self.config, sale, TOKEN);
        assert_eq!(status["status"], "pending", "{status}\n{forged}");
        assert!(status["paid"].is_null(), "a forged notify paid: {status}");
        let callbacks = status["events"]
            .as_array()
            .expect("status has `events`")
            .iter()
            .filter(|e| e["kind"] == "callback" && e["to"] == "paid")
            .count();
        assert_eq!(callbacks, 0, "a forged notify paid: {status}");
    }

    /// The payer pays `realpay` at the server (`/control/pay`, which sends the real notify
    /// at once).
    fn pay(&mut self, order_no: &str, realpay: &str) {
        let realpay = if realpay == AMOUNT {
            String::new()
        } else {
            format!("?realpay={realpay}")
        };
        self.server
            .control("POST", &format!("/control/pay/{order_no}{realpay}"));
    }

    /// Ends a sale paid by the real notify: `realpay` paid, exit 0, the notify answered 2xx.
    fn paid_by_notify(&mut self, sale: &mut Sale, realpay: &str) -> Value {
        self.pay(&sale.order_no, realpay);
        expect_paid(sale, realpay, TOKEN);
        let notify = self.notify_of(&sale.order_no, false);
        assert!(
            notify["status"]
                .as_u64()
                .is_some_and(|code| (200..300).contains(&code)),
            "the real notify must be answered 2xx (seed: 返回 http 状态即可): {notify}"
        );
        assert_eq!(notify["ok"], true, "{notify}");
        let status = status_json(&self.config, sale, TOKEN);
        assert_eq!(status["status"], "paid", "{status}");
        assert_eq!(status["paid"], realpay, "{status}");
        assert_eq!(
            paid_by(&status),
            "callback",
            "the notify marked it paid: {status}"
        );
        status
    }

    /// Waits until qrtill has sent its first status query for `order_no`, which it does a
    /// full minute after the order (the provider's limit): at most [`QUERY_WAIT`] after
    /// `since`. Reads only the requests log, so the test's budget is not drawn on.
    fn await_first_query(&self, order_no: &str, since: Instant) {
        let orderid = format!("orderid={order_no}");
        let until = since + QUERY_WAIT;
        while !self.server.log().iter().any(|l| {
            path_of(l) == QUERY_PATH && l["query"].as_str().is_some_and(|q| q.contains(&orderid))
        }) {
            assert!(
                Instant::now() < until,
                "no status query for {order_no} within {QUERY_WAIT:?} of its QR:\n{:?}",
                self.server.log()
            );
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// After the sales: every protocol request was accepted, the start-up balance query
    /// among them, and no order was queried twice within 60 s.
    fn assert_protocol_accepted(&self) {
        self.server
            .log_line("the start-up balance query", |l| path_of(l) == BALANCE_PATH);
        for r in self.server.protocol_requests() {
            assert_accepted(&r);
            match path_of(&r) {
                PAY_PATH => {}
                QUERY_PATH => {
                    assert_eq!(r["method"], "GET", "{r}");
                    assert_eq!(r["result"]["msg"], "", "query refused: {r}");
                    assert!(
                        ["-1", "0", "1"].contains(&r["result"]["status"].as_str().unwrap_or("")),
                        "query not answered with an order state: {r}"
                    );
                }
                BALANCE_PATH => {
                    assert_eq!(r["method"], "GET", "{r}");
                    assert_eq!(r["result"]["status"], "0", "balance refused: {r}");
                    assert_eq!(r["result"]["msg"], "", "balance refused: {r}");
                }
                other => panic!("a request outside the protocol ({other}): {r}"),
            }
        }
        let (status, body) = http("GET", &format!("{}/control/orders", self.server.url));
        assert_eq!(status, 200, "GET /control/orders: {body}");
        let orders: Value = serde_json::from_str(&body).expect("/control/orders is JSON");
        for order in orders.as_array().expect("/control/orders is a list") {
            let times: Vec<f64> = order["query_times"]
                .as_array()
                .expect("an order has `query_times`")
                .iter()
                .map(|t| t["at"].as_f64().expect("a query time"))
                .collect();
            for pair in times.windows(2) {
                assert!(
                    pair[1] - pair[0] >= QUERY_INTERVAL_SECS,
                    "order {} queried twice within 60 s: {order}",
                    order["orderid"]
                );
            }
        }
        let limited: Vec<Value> = self
            .server
            .log()
            .into_iter()
            .filter(|l| l["rate_limited"] == true)
            .collect();
        assert!(limited.is_empty(), "the server rate-limited: {limited:?}");
    }
}

/// A logged request the server accepted: HTTP 200, the right key, no field the protocol
/// lacks, not rate-limited, and (for `pay.action`) no error page.
fn assert_accepted(r: &Value) {
    assert_eq!(r["status"], 200, "not answered 200: {r}");
    for wrong in [
        "expected_key",
        "expected_sign",
        "key_case_only",
        "error_code",
    ] {
        assert!(r.get(wrong).is_none(), "refused (`{wrong}`): {r}");
    }
    assert_eq!(
        r["unknown_fields"],
        json!([]),
        "fields the protocol lacks: {r}"
    );
    assert_eq!(r["rate_limited"], false, "rate-limited: {r}");
}

/// The `kind` of the ledger event that made a `status --json` order paid.
fn paid_by(status: &Value) -> &str {
    let to_paid: Vec<&Value> = status["events"]
        .as_array()
        .expect("status has `events`")
        .iter()
        .filter(|e| e["to"] == "paid")
        .collect();
    let [event] = to_paid.as_slice() else {
        panic!("not one move to paid: {status}");
    };
    event["kind"].as_str().unwrap_or_default()
}

// ---------------------------------------------------------------------------------------------
// Tests

/// A sale through `mode`'s QR: the payer opens it, a forged notify changes nothing, the
/// server's real notify pays `realpay` of 3.50; then every request must have been accepted.
/// Returns the finished sale and its `status --json`; `None` without `python3`.
fn sale_paid_by_notify(mode: Listener, realpay: &str) -> Option<(Sale, Value)> {
    start_budget();
    let mut setup = Setup::start(mode)?;
    let mut sale = setup.sale();
    setup.open_pay_page(&sale);
    setup.forged_notify_changes_nothing(&mut sale);
    let status = setup.paid_by_notify(&mut sale, realpay);
    setup.assert_protocol_accepted();
    Some((sale, status))
}

#[test]
fn bridge_page_form_is_accepted_and_only_the_real_notify_pays() {
    let Some((_sale, status)) = sale_paid_by_notify(Listener::Public, AMOUNT) else {
        return;
    };
    assert_eq!(status["amount_mismatch"], false, "{status}");
}

#[test]
fn signed_link_underpaid_is_paid_and_flagged() {
    // 3.40 of 3.50: the notify's key covers `realpay`, so the money is real and flagged.
    let Some((sale, status)) = sale_paid_by_notify(Listener::Local, "3.40") else {
        return;
    };
    let done: Value = serde_json::from_str(sale.charge.seen.last().expect("a line")).expect("JSON");
    assert_eq!(done["amount_mismatch"], true, "{done}");
    assert_eq!(done["payable"], AMOUNT, "{done}");
    assert_eq!(status["amount_mismatch"], true, "{status}");
}

/// The one test past 60 s: qrtill asks this provider about an order a full minute after it.
#[test]
fn paid_by_query_when_no_notify_can_arrive() {
    start_budget();
    let Some(mut setup) = Setup::start(Listener::Off) else {
        return;
    };
    let mut sale = setup.sale();
    let qr_at = Instant::now();
    setup.open_pay_page(&sale);
    setup.pay(&sale.order_no, AMOUNT);
    let notify = setup.notify_of(&sale.order_no, false);
    assert!(
        notify["status"].is_null() && notify["error"].is_string(),
        "nobody listens, so the notify cannot arrive: {notify}"
    );
    if let Some(done) = sale.charge.try_event_of("done", Duration::from_secs(1)) {
        panic!("paid before any query: {done}");
    }

    setup.await_first_query(&sale.order_no, qr_at);
    // The minute is over: a new budget for the end of the sale.
    start_budget();
    expect_paid(&mut sale, AMOUNT, TOKEN);
    let status = status_json(&setup.config, &sale, TOKEN);
    assert_eq!(status["status"], "paid", "{status}");
    assert_eq!(status["paid"], AMOUNT, "{status}");
    assert_eq!(paid_by(&status), "query", "the query found it: {status}");

    setup.assert_protocol_accepted();
    let query = setup.only_request_to(QUERY_PATH);
    assert_eq!(query["result"]["status"], "0", "paid: {query}");
    assert_eq!(query["result"]["realpay"], AMOUNT, "{query}");
}
