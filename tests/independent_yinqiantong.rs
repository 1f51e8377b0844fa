//! qrtill's yinqiantong (银钱通) v1 requests are accepted by an independent implementation of
//! the protocol written from its seed alone (`tests/independent/yinqiantong_server.py`), and
//! `qrtill charge --json` ends `paid` when that server reports the payment, by query and by
//! notify; a forged notify never makes an order paid.
//!
//! Each test starts the Python server on a random loopback port with a requests log, points a
//! `[[provider]]` of kind `yinqiantong` at it (default platform `h5`) with the listener on a
//! free loopback port, runs `qrtill charge --json` as a separate process and acts as the
//! payer's phone:
//! - WeChat, listener off: the QR is the server's H5 link; paid at the server, the till finds
//!   it by `GET /order?client_out_trade_no=…` (signed over the empty set) alone.
//! - Alipay: the `pay_body` is the server's HTML form, served on the bridge page
//!   `/pay/{order_no}` (`public_url`); paid at the server, its JSON notify (headers `appid`,
//!   `appkey`, `ts`, `sign`) reaches the listener and is answered HTTP 200 `{"code":200}`.
//! - The server answering channel, platform and status as numbers (`--numeric-fields`, like
//!   the seed's example): still paid by query.
//! - A notify signed with a wrong secret (`/control/notify/{no}?forged=1`) is refused and
//!   leaves the order unpaid (`qrtill status` run while `charge` waits); the real one pays.
//! - Expired at the server: `done` expired, exit 3.
//!
//! In every sale the requests log shows each create and query accepted: code 200, the right
//! signature, no field the protocol lacks.
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
    Sale, assert_no_key, bounded, expect_done, http, http_with, start_budget, start_charge,
    status_json,
};

/// The app the independent server is started with.
const APPID: &str = "10001";
const APPKEY: &str = "indep-appkey-789";
const APP_SECRET: &str = "indep-secret-789";

/// The provider id in the config.
const PROVIDER: &str = "yqt";

/// How qrtill's callback listener is configured.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Listener {
    /// `enabled = false`: only the query can find a payment (the notify finds nobody).
    Off,
    /// On a free loopback port, without `public_url`.
    Local,
    /// On a free loopback port, with `public_url` the same address (the bridge page's base).
    Public,
}

/// The independent yinqiantong server, a config pointing qrtill at it, and a temporary folder.
struct Setup {
    server: Server,
    /// `http://127.0.0.1:PORT` of qrtill's callback listener (its `listen` address when off).
    listener: String,
    config: PathBuf,
    dir: tempfile::TempDir,
}

impl Setup {
    /// Starts the server with `server_args` and writes the config (`platform` only when
    /// given). `None` (after saying so) when `python3` is missing.
    fn start(server_args: &[&str], listener: Listener, platform: Option<&str>) -> Option<Setup> {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut args = vec![
            "--appid",
            APPID,
            "--appkey",
            APPKEY,
            "--app-secret",
            APP_SECRET,
        ];
        args.extend_from_slice(server_args);
        let server = Server::start(
            "yinqiantong_server.py",
            &args,
            &dir.path().join("requests.jsonl"),
        )?;
        // A loopback port free a moment ago (bound, then closed).
        let listen = TcpListener::bind("127.0.0.1:0")
            .and_then(|socket| socket.local_addr())
            .expect("a free loopback port");
        let listener_url = format!("http://{listen}");
        let listener_keys = match listener {
            Listener::Off => format!("enabled = false\nlisten = \"{listen}\"\n"),
            Listener::Local => format!("listen = \"{listen}\"\n"),
            Listener::Public => {
                format!("listen = \"{listen}\"\npublic_url = \"{listener_url}\"\n")
            }
        };
        let platform = platform
            .map(|p| format!("platform = \"{p}\"\n"))
            .unwrap_or_default();
        let text = format!(
            "default_provider = \"{PROVIDER}\"\n\n[listener]\n{listener_keys}\n\
             [[provider]]\nid = \"{PROVIDER}\"\nkind = \"yinqiantong\"\nbase_url = \"{}\"\n\
             appid = \"{APPID}\"\nappkey = \"{APPKEY}\"\napp_secret = \"{APP_SECRET}\"\n{platform}",
            server.url
        );
        let config = dir.path().join("config.toml");
        std::fs::write(&config, text).expect("write config");
        Some(Setup {
            server,
            listener: listener_url,
            config,
            dir,
        })
    }

    /// The server's record of our order (`GET /control/orders`).
    fn order(&self, order_no: &str) -> Value {
        self.server.order("client_out_trade_no", order_no)
    }

    /// Protocol requests to `/order` (creates and queries).
    fn order_requests(&self, method: &str) -> Vec<Value> {
        self.server
            .protocol_requests()
            .into_iter()
            .filter(|r| path_of(r) == "/order" && r["method"] == method)
            .collect()
    }

    /// Every create and query qrtill sent was accepted: HTTP 200, code 200, the right
    /// signature and keys, no field the protocol lacks; at least one create.
    fn assert_all_accepted(&self) {
        let requests = [self.order_requests("POST"), self.order_requests("GET")].concat();
        assert!(
            requests.iter().any(|r| r["method"] == "POST"),
            "qrtill sent no create: {requests:?}"
        );
        for r in &requests {
            assert_eq!(r["status"], 200, "request not answered 200: {r}");
            assert!(r.get("expected_sign").is_none(), "wrong signature: {r}");
            assert!(r.get("expected_key").is_none(), "wrong key: {r}");
            assert!(
                r.get("unknown_fields").is_none(),
                "fields the protocol lacks: {r}"
            );
            assert_eq!(r["result"]["code"], 200, "request refused: {r}");
        }
    }

    /// The one create of `sale` was accepted and the server holds what the till sent:
    /// `channel` (`wx` or `alipay`), platform `h5`, `money` in fen, the notify to the listener.
    fn assert_create_accepted(&self, sale: &Sale, channel: &str, money: i64) {
        let creates: Vec<Value> = self
            .order_requests("POST")
            .into_iter()
            .filter(|r| r["result"]["data"]["client_out_trade_no"] == sale.order_no.as_str())
            .collect();
        assert_eq!(creates.len(), 1, "one create, sent once: {creates:?}");
        self.assert_all_accepted();
        let order = self.order(&sale.order_no);
        assert_eq!(order["channel"], channel, "{order}");
        assert_eq!(order["platform"], "h5", "the default platform: {order}");
        assert_eq!(order["money"], money, "{order}");
        assert_eq!(order["client_ip"], "127.0.0.1", "{order}");
        assert_eq!(
            order["notify_url"],
            format!("{}/notify/{PROVIDER}", self.listener),
            "the notify goes to the listener: {order}"
        );
    }

    /// The queries for `order_no`: at least one, each by our number alone, all accepted.
    fn assert_queries_accepted(&self, order_no: &str) -> Vec<Value> {
        let queries = self.order_requests("GET");
        assert!(!queries.is_empty(), "qrtill never queried the order");
        for q in &queries {
            assert_eq!(
                q["query"],
                format!("client_out_trade_no={order_no}"),
                "the query asks by our order number: {q}"
            );
        }
        self.assert_all_accepted();
        queries
    }

    /// `POST /control/pay/{order_no}`: paid at the server, which sends its notify.
    fn pay(&mut self, order_no: &str) {
        self.server
            .control("POST", &format!("/control/pay/{order_no}"));
    }

    /// The server's log line of a notify for `order_no` sent by `trigger` (`pay`, `control`).
    fn notify(&self, order_no: &str, trigger: &str, forged: bool) -> Value {
        self.server
            .log_line(&format!("a {trigger} notify (forged: {forged})"), |l| {
                l["event"] == "notify"
                    && l["client_out_trade_no"] == order_no
                    && l["trigger"] == trigger
                    && l["forged"] == forged
            })
    }

    /// The real notify of a payment reached the listener and was answered HTTP 200
    /// `{"code":200}`.
    fn assert_real_notify_acknowledged(&self, order_no: &str) -> Value {
        let notify = self.notify(order_no, "pay", false);
        assert_eq!(
            notify["url"],
            format!("{}/notify/{PROVIDER}", self.listener),
            "{notify}"
        );
        assert_eq!(notify["status"], 200, "notify: {notify}");
        let answer: Value = serde_json::from_str(notify["response_body"].as_str().unwrap_or(""))
            .unwrap_or_else(|err| panic!("the notify's answer is not JSON ({err}): {notify}"));
        assert_eq!(answer, serde_json::json!({"code": 200}), "{notify}");
        assert_eq!(notify["ack_code_200"], true, "{notify}");
        notify
    }

    /// The server sends a notify signed with a wrong secret: qrtill refuses it, the sale goes
    /// on, and `status` (a separate process, while `charge` waits) shows the order unpaid.
    fn assert_forged_notify_refused(&mut self, sale: &mut Sale) {
        let no = sale.order_no.clone();
        self.server
            .control("POST", &format!("/control/notify/{no}?forged=1"));
        let forged = self.notify(&no, "control", true);
        assert!(
            forged["status"].is_number(),
            "the forged notify reached the listener: {forged}"
        );
        assert_ne!(
            forged["status"], 200,
            "a forged notify was accepted: {forged}"
        );
        assert_eq!(
            forged["ack_code_200"], false,
            "a forged notify must not be acknowledged: {forged}"
        );

        // The till says why.
        let until = Instant::now() + bounded(Duration::from_secs(10));
        while !sale.charge.stderr_now().contains("callback refused") {
            if Instant::now() >= until {
                sale.charge.die(&format!(
                    "no `callback refused` after the forged notify {forged}"
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let stderr = sale.charge.stderr_now();
        assert!(
            stderr.contains("signature"),
            "refused for another reason than its signature:\n{stderr}"
        );
        if let Some(done) = sale.charge.try_event_of("done", Duration::from_secs(1)) {
            panic!("a forged notify ended the sale: {done}\nforged notify: {forged}");
        }
        let status = status_json(&self.config, sale, APP_SECRET);
        assert_eq!(
            status["status"], "pending",
            "a forged notify moved the order: {status}\n{forged}"
        );
        assert!(status["paid"].is_null(), "a forged notify paid: {status}");
        assert!(
            events(&status).iter().all(|e| e["kind"] != "callback"),
            "a forged notify is in the ledger: {status}"
        );
        assert_eq!(self.order(&no)["status"], "unpaid");
    }
}

/// Starts the server (with `server_args`), qrtill's config and a sale of `amount` yuan by
/// `channel`, whose one create the server must have accepted. `None` (after saying so) when
/// `python3` is missing.
fn start_sale(
    server_args: &[&str],
    listener: Listener,
    platform: Option<&str>,
    amount: &str,
    channel: &str,
) -> Option<(Setup, Sale)> {
    let setup = Setup::start(server_args, listener, platform)?;
    let sale = start_charge(&setup.config, setup.dir.path(), amount, channel);
    let wire_channel = if channel == "wechat" { "wx" } else { channel };
    let fen = amount
        .replace('.', "")
        .parse()
        .expect("an amount with two decimals");
    setup.assert_create_accepted(&sale, wire_channel, fen);
    Some((setup, sale))
}

/// The ledger events of a `status --json` answer.
fn events(status: &Value) -> Vec<Value> {
    status["events"].as_array().cloned().unwrap_or_default()
}

/// The first ledger event whose `key` is `value`.
fn event_where(status: &Value, key: &str, value: &str) -> Value {
    events(status)
        .into_iter()
        .find(|e| e[key] == value)
        .unwrap_or_else(|| panic!("no event with {key} {value}: {status}"))
}

/// The `data.status` of the query answer a ledger event recorded.
fn answered_status(event: &Value) -> Value {
    let raw: Value = serde_json::from_str(event["raw"].as_str().unwrap_or_default())
        .unwrap_or_else(|err| panic!("the event's raw answer is not JSON ({err}): {event}"));
    raw["data"]["status"].clone()
}

/// Ends a paid sale: `done` paid with `amount`, exit 0, neither the app secret nor the app
/// key printed.
fn expect_paid(sale: &mut Sale, amount: &str) {
    common::expect_paid(sale, amount, APP_SECRET);
    assert_no_key("charge stdout", &sale.charge.seen.join("\n"), APPKEY);
    assert_no_key("charge stderr", &sale.charge.stderr_text(), APPKEY);
}

/// `status --json` of a finished sale, which must be paid with `amount`.
fn paid_status(setup: &Setup, sale: &Sale, amount: &str) -> Value {
    let status = status_json(&setup.config, sale, APP_SECRET);
    assert_no_key("status", &status.to_string(), APPKEY);
    assert_eq!(status["status"], "paid", "{status}");
    assert_eq!(status["paid"], amount, "{status}");
    assert_eq!(status["provider_kind"], "yinqiantong", "{status}");
    status
}

/// The payer's phone opens `url` (a `GET`, or a `POST` of the form-urlencoded `form`): the
/// answer must be HTTP 200 with a page that contains `marker`.
fn phone_opens(url: &str, form: Option<&str>, marker: &str) -> String {
    let (status, page) = match form {
        None => http("GET", url),
        Some(body) => http_with("POST", url, Some("application/x-www-form-urlencoded"), body),
    };
    assert_eq!(status, 200, "{url}:\n{page}");
    assert!(
        page.contains(marker),
        "not the expected page at {url} (no `{marker}`):\n{page}"
    );
    page
}

/// The text between the first `start` and the next `end` after it.
fn between<'a>(text: &'a str, start: &str, end: &str) -> Option<&'a str> {
    let rest = &text[text.find(start)? + start.len()..];
    Some(&rest[..rest.find(end)?])
}

/// The server's form as the payer's browser submits it: its action and the
/// form-urlencoded hidden inputs (single-quoted attributes, unescaped).
fn form_submission(page: &str) -> (String, String) {
    let action = between(page, "action='", "'")
        .unwrap_or_else(|| panic!("no form action on the page:\n{page}"))
        .replace("&amp;", "&");
    let mut body = url::form_urlencoded::Serializer::new(String::new());
    for input in page.split("<input ").skip(1) {
        if !input.starts_with("type='hidden'") {
            continue;
        }
        let name = between(input, "name='", "'").expect("a named input");
        let value = between(input, "value='", "'")
            .unwrap_or_default()
            .replace("&#39;", "'")
            .replace("&lt;", "<")
            .replace("&amp;", "&");
        body.append_pair(name, &value);
    }
    (action, body.finish())
}

// ---------------------------------------------------------------------------------------------
// Tests

#[test]
fn wechat_h5_link_paid_found_by_query_alone() {
    start_budget();
    let Some((mut setup, mut sale)) = start_sale(&[], Listener::Off, None, "12.34", "wechat")
    else {
        return;
    };

    // h5 + WeChat: the QR is the server's own H5 link, which the phone opens.
    let order = setup.order(&sale.order_no);
    let link = sale.qr["qr"].as_str().unwrap_or_default().to_string();
    assert_eq!(link, order["pay_body"].as_str().unwrap(), "{order}");
    assert!(
        link.starts_with(&format!("{}/wx/checkmweb?prepay_id=wx", setup.server.url)),
        "{link}"
    );
    phone_opens(&link, None, "微信支付");

    setup.pay(&sale.order_no);
    expect_paid(&mut sale, "12.34");

    // The server's notify found no listener: the query alone found the payment.
    let notify = setup.notify(&sale.order_no, "pay", false);
    assert_ne!(notify["status"], 200, "no listener runs: {notify}");
    setup.assert_queries_accepted(&sale.order_no);
    assert_eq!(setup.order(&sale.order_no)["status"], "paid");
    let status = paid_status(&setup, &sale, "12.34");
    let paid = event_where(&status, "to", "paid");
    assert_eq!(paid["kind"], "query", "{status}");
    assert_eq!(answered_status(&paid), "paid", "{paid}");
    assert!(
        events(&status).iter().all(|e| e["kind"] != "callback"),
        "{status}"
    );
}

#[test]
fn alipay_form_on_bridge_page_paid_by_notify() {
    start_budget();
    let Some((mut setup, mut sale)) =
        start_sale(&[], Listener::Public, Some("h5"), "18.80", "alipay")
    else {
        return;
    };
    let bridge = format!("{}/pay/{}", setup.listener, sale.order_no);
    assert_eq!(sale.qr["qr"], bridge.as_str(), "the QR is the bridge page");

    // The phone opens the bridge page: it holds the server's own form, unchanged.
    let form = setup.order(&sale.order_no)["pay_body"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        form.starts_with("<form id='alipaysubmit'"),
        "the server answered a form: {form}"
    );
    let page = phone_opens(&bridge, None, &form);
    assert_no_key("the bridge page", &page, APP_SECRET);
    assert_no_key("the bridge page", &page, APPKEY);
    // Its browser submits the form to the wallet.
    let (action, body) = form_submission(&page);
    assert_eq!(
        action,
        format!("{}/alipay/gateway.do?charset=utf-8", setup.server.url)
    );
    phone_opens(&action, Some(&body), "支付宝");

    setup.pay(&sale.order_no);
    expect_paid(&mut sale, "18.80");
    setup.assert_real_notify_acknowledged(&sale.order_no);
    setup.assert_all_accepted();

    // The notify was verified and recorded (a query may rarely have seen paid first).
    let status = paid_status(&setup, &sale, "18.80");
    let callback = event_where(&status, "kind", "callback");
    assert!(
        callback["raw"]
            .as_str()
            .is_some_and(|raw| raw.contains("\"money\":1880") && raw.contains("\"paid\"")),
        "{callback}"
    );
}

#[test]
fn numeric_fields_sale_still_paid_by_query() {
    start_budget();
    let Some((mut setup, mut sale)) =
        start_sale(&["--numeric-fields"], Listener::Off, None, "6.66", "wechat")
    else {
        return;
    };
    // The server did answer in numbers, as the seed's example does.
    let create = &setup.order_requests("POST")[0];
    let data = &create["result"]["data"];
    assert_eq!(data["channel"], 2, "wx is 2: {create}");
    assert_eq!(data["platform"], 3, "h5 is 3: {create}");
    assert_eq!(data["status"], 0, "unpaid is 0: {create}");
    assert_eq!(
        sale.qr["qr"],
        setup.order(&sale.order_no)["pay_body"],
        "{}",
        sale.qr
    );

    setup.pay(&sale.order_no);
    expect_paid(&mut sale, "6.66");
    let queries = setup.assert_queries_accepted(&sale.order_no);
    assert!(
        queries.iter().any(|q| q["result"]["data"]["status"] == 1),
        "no query answered status 1: {queries:?}"
    );
    let status = paid_status(&setup, &sale, "6.66");
    let paid = event_where(&status, "to", "paid");
    assert_eq!(paid["kind"], "query", "{status}");
    assert_eq!(answered_status(&paid), 1, "{paid}");
}

#[test]
fn forged_notify_is_refused_and_the_real_one_pays() {
    start_budget();
    let Some((mut setup, mut sale)) = start_sale(&[], Listener::Local, None, "9.90", "wechat")
    else {
        return;
    };
    setup.assert_forged_notify_refused(&mut sale);

    setup.pay(&sale.order_no);
    expect_paid(&mut sale, "9.90");
    setup.assert_real_notify_acknowledged(&sale.order_no);
    setup.assert_queries_accepted(&sale.order_no);
    let status = paid_status(&setup, &sale, "9.90");
    // Only the real notify was taken; a forged one is at most logged as refused.
    for e in events(&status).iter().filter(|e| {
        e["kind"] == "callback"
            && !e["detail"]
                .as_str()
                .is_some_and(|d| d.contains("a notify was refused"))
    }) {
        assert!(
            e["raw"]
                .as_str()
                .is_some_and(|raw| raw.contains("\"status\":\"paid\"")),
            "a callback other than the real notify: {e}\n{status}"
        );
    }
}

#[test]
fn expired_at_the_server_ends_expired_exit_3() {
    start_budget();
    let Some((mut setup, mut sale)) = start_sale(&[], Listener::Local, None, "3.20", "wechat")
    else {
        return;
    };
    setup.assert_forged_notify_refused(&mut sale);

    let no = sale.order_no.clone();
    setup
        .server
        .control("POST", &format!("/control/expire/{no}"));
    let done = expect_done(&mut sale.charge, &no);
    assert_eq!(done["status"], "expired", "{done}");
    assert!(done["paid"].is_null(), "{done}");
    assert_eq!(sale.charge.wait(), 3, "exit code of an expired charge");

    setup.assert_queries_accepted(&no);
    assert_eq!(setup.order(&no)["status"], "expired");
    let status = status_json(&setup.config, &sale, APP_SECRET);
    assert_eq!(status["status"], "expired", "{status}");
    assert!(status["paid"].is_null(), "{status}");
    let expired = event_where(&status, "to", "expired");
    assert_eq!(expired["kind"], "query", "{status}");
}
