//! qrtill's ispay.in requests are accepted by an independent implementation of the
//! protocol, written from the seed alone (`tests/independent/ispay_server.py`), which drives
//! the order to paid, including state 8 (paid, awaiting confirmation) before 9.
//!
//! Each test starts the Python server on a random loopback port with a requests log, points a
//! config at it and runs `qrtill charge --json` as a separate process: paid found by query
//! (state 8 must show as `confirming`, never as paid), paid by the server's notify reaching
//! qrtill's listener (answered `success`), and a create whose answer is lost on the way back,
//! found again by our order number (`/order/{userid}/{order_no}/{md5}`) and never re-sent.
//! The log shows every request qrtill made was accepted: right signature, no unknown field.
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

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::Value;

use common::independent::{Server, path_of};
use common::{Sale, spawn_named, start_budget, start_charge};

/// The merchant id and key the independent server is started with.
const USERID: &str = "10001";
const KEY: &str = "indep-key-123";

// ---------------------------------------------------------------------------------------------
// The independent server

/// The independent ispay.in server, a config pointing qrtill at `base_url` (the server
/// itself, or a proxy in front of it), and a temporary folder.
struct Setup {
    server: Server,
    config: PathBuf,
    dir: tempfile::TempDir,
}

impl Setup {
    /// `None` (after saying so) when `python3` is missing.
    fn start() -> Option<Setup> {
        let dir = tempfile::tempdir().expect("temp dir");
        let server = Server::start(
            "ispay_server.py",
            &["--userid", USERID, "--key", KEY],
            &dir.path().join("requests.jsonl"),
        )?;
        let url = server.url.clone();
        let config = dir.path().join("config.toml");
        let mut setup = Setup {
            server,
            config,
            dir,
        };
        setup.point_at(&url);
        Some(setup)
    }

    /// Writes the config with this provider base URL.
    fn point_at(&mut self, base_url: &str) {
        let text = format!(
            "default_provider = \"indep\"\n\n[listener]\nlisten = \"127.0.0.1:0\"\n\n\
             [[provider]]\nid = \"indep\"\nkind = \"ispay\"\nbase_url = \"{base_url}\"\n\
             userid = \"{USERID}\"\nkey = \"{KEY}\"\n"
        );
        std::fs::write(&self.config, text).expect("write config");
    }

    /// Starts `charge --json` and reads up to its QR.
    fn sale(&self, amount: &str, channel: &str) -> Sale {
        start_charge(&self.config, self.dir.path(), amount, channel)
    }

    /// `POST /control/state/{order_no}?state=N` must answer 200 `ok`.
    fn set_state(&mut self, order_no: &str, state: u8) {
        self.server
            .control("POST", &format!("/control/state/{order_no}?state={state}"));
    }

    /// The server's record of one order (`GET /control/orders`).
    fn order(&self, order_no: &str) -> Value {
        self.server.order("order_no", order_no)
    }

    /// Waits (bounded) until a log line satisfies `pred`; returns it.
    fn log_line(&self, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
        self.server.log_line(what, pred)
    }

    /// Protocol requests (not the test's control calls) in the log.
    fn protocol_requests(&self) -> Vec<Value> {
        self.server.protocol_requests()
    }

    /// Every protocol request qrtill sent was accepted: HTTP 200, `success: true`, the right
    /// signature, no field the protocol does not define.
    fn assert_all_accepted(&self) {
        let requests = self.protocol_requests();
        assert!(!requests.is_empty(), "qrtill sent no request at all");
        for r in &requests {
            assert_eq!(r["status"], 200, "request not answered 200: {r}");
            assert_eq!(r["result"]["success"], true, "request refused: {r}");
            assert!(r.get("expected_sign").is_none(), "wrong signature: {r}");
            assert!(
                r.get("unknown_fields").is_none(),
                "fields the protocol lacks: {r}"
            );
        }
    }
}

/// `status ORDER_NO --json` of a finished sale.
fn status_json(setup: &Setup, sale: &Sale) -> Value {
    common::status_json(&setup.config, sale, KEY)
}

/// The ledger events of a `status --json` answer that moved the order to `to`.
fn transitions_to<'a>(status: &'a Value, to: &str) -> Vec<&'a Value> {
    status["events"]
        .as_array()
        .expect("status has `events`")
        .iter()
        .filter(|e| e["to"] == to)
        .collect()
}

/// Ends a paid sale: `done` paid with `amount`, exit 0, no key printed.
fn expect_paid(sale: &mut Sale, amount: &str) {
    common::expect_paid(sale, amount, KEY);
}

// ---------------------------------------------------------------------------------------------
// Tests

#[test]
fn paid_by_query_with_state_8_before_9() {
    start_budget();
    let Some(mut setup) = Setup::start() else {
        return;
    };
    let mut sale = setup.sale("7.50", "wechat");
    let server_order = setup.order(&sale.order_no);
    assert_eq!(server_order["amount"], "7.50", "{server_order}");
    assert_eq!(
        server_order["order_type"], "P902",
        "wechat is P902: {server_order}"
    );
    assert_eq!(
        sale.qr["qr"], server_order["qrcode"],
        "the till shows the server's own QR text"
    );

    setup.set_state(&sale.order_no, 8);
    loop {
        let status = sale.charge.event_of("status", Duration::from_secs(20));
        assert_ne!(
            status["status"], "paid",
            "state 8 alone must never count as paid: {status}"
        );
        if status["status"] == "confirming" {
            break;
        }
    }
    setup.set_state(&sale.order_no, 9);
    expect_paid(&mut sale, "7.50");

    setup.assert_all_accepted();
    let requests = setup.protocol_requests();
    let gateways: Vec<_> = requests
        .iter()
        .filter(|r| path_of(r) == "/gateway")
        .collect();
    assert_eq!(gateways.len(), 1, "one create, sent once: {gateways:?}");
    assert!(
        requests.iter().any(|r| path_of(r).starts_with("/query/")),
        "qrtill never asked /query/: {requests:?}"
    );
    let server_order = setup.order(&sale.order_no);
    assert_eq!(server_order["state"], 9, "{server_order}");

    // The ledger saw state 8 (confirming) before the payment.
    let status = status_json(&setup, &sale);
    assert_eq!(status["status"], "paid", "{status}");
    assert_eq!(status["paid"], "7.50", "{status}");
    let events = status["events"].as_array().expect("events");
    let confirming = events.iter().position(|e| e["to"] == "confirming");
    let paid = events.iter().position(|e| e["to"] == "paid");
    assert!(
        matches!((confirming, paid), (Some(c), Some(p)) if c < p),
        "confirming must come before paid: {status}"
    );
}

/// A sale paid by the server's notify: returns the server's log line of that notify and
/// the ledger's `status --json`.
fn sale_paid_by_notify(setup: &mut Setup) -> (Value, Value) {
    let mut sale = setup.sale("18.80", "alipay");
    // Right after a query brought the QR, so the notify (sent at once) comes well before the
    // next query (one a second).
    setup.set_state(&sale.order_no, 9);
    expect_paid(&mut sale, "18.80");

    let order_no = sale.order_no.clone();
    let notify = setup.log_line("notify for this order", |l| {
        l["event"] == "notify" && l["order_no"] == order_no.as_str()
    });
    assert!(
        notify["url"]
            .as_str()
            .is_some_and(|u| u.starts_with("http://127.0.0.1:")),
        "notify not to a loopback listener: {notify}"
    );
    setup.assert_all_accepted();
    let status = status_json(setup, &sale);
    assert_eq!(status["status"], "paid", "{status}");
    assert_eq!(status["paid"], "18.80", "{status}");
    (notify, status)
}

#[test]
fn paid_by_notify() {
    start_budget();
    let Some(mut setup) = Setup::start() else {
        return;
    };
    let (_notify, status) = sale_paid_by_notify(&mut setup);
    let to_paid = transitions_to(&status, "paid");
    assert_eq!(to_paid.len(), 1, "{status}");
    assert_eq!(
        to_paid[0]["kind"], "callback",
        "the notify, not a query, marked it paid: {status}"
    );
}

/// The seed: the merchant answers a notify with `success`, or the provider keeps retrying.
/// `qrtill charge` prints `done` and exits as soon as the notify's ledger update lands, which
/// is before its listener has written the answer; the server then logs "Remote end closed
/// connection without response" (about half the runs here).
#[test]
fn notify_that_pays_is_answered_success() {
    start_budget();
    let Some(mut setup) = Setup::start() else {
        return;
    };
    // Several sales, as one run may well get its answer out in time.
    for _ in 0..4 {
        let (notify, _status) = sale_paid_by_notify(&mut setup);
        assert_eq!(notify["status"], 200, "notify: {notify}");
        assert_eq!(
            notify["body"].as_str().map(str::trim),
            Some("success"),
            "qrtill must answer the notify `success`: {notify}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Recovery by our order number: a proxy that loses the create's answer

/// A loopback proxy in front of the server that forwards every request and its answer,
/// except that it swallows the answers to the first `drop_gateway` `POST /gateway`s (the
/// server did create the order; the till never hears so).
struct Proxy {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    dropped: Arc<AtomicUsize>,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so that it sees the flag.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
    }
}

impl Proxy {
    fn start(upstream: SocketAddr, drop_gateway: usize) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind proxy");
        let addr = listener.local_addr().expect("proxy address");
        let stop = Arc::new(AtomicBool::new(false));
        let dropped = Arc::new(AtomicUsize::new(0));
        let (stop2, dropped2) = (stop.clone(), dropped.clone());
        spawn_named("proxy", move || {
            for conn in listener.incoming() {
                if stop2.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let dropped = dropped2.clone();
                spawn_named("proxy connection", move || {
                    let _ = forward(conn, upstream, &dropped, drop_gateway);
                });
            }
        });
        Proxy {
            addr,
            stop,
            dropped,
        }
    }
}

/// One request through the proxy, with `Connection: close` both ways.
fn forward(
    mut client: TcpStream,
    upstream: SocketAddr,
    dropped: &AtomicUsize,
    drop_gateway: usize,
) -> std::io::Result<()> {
    let timeout = Some(Duration::from_secs(10));
    client.set_read_timeout(timeout)?;
    client.set_write_timeout(timeout)?;
    let mut raw = Vec::new();
    let mut byte = [0u8; 1];
    while !raw.ends_with(b"\r\n\r\n") {
        if client.read(&mut byte)? == 0 || raw.len() > 64 * 1024 {
            return Ok(());
        }
        raw.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&raw).into_owned();
    let mut lines = head.split("\r\n").filter(|l| !l.is_empty());
    let request_line = lines.next().unwrap_or_default().to_string();
    let headers: Vec<&str> = lines
        .filter(|l| {
            let l = l.to_ascii_lowercase();
            !l.starts_with("connection:") && !l.starts_with("keep-alive:")
        })
        .collect();
    let length = headers
        .iter()
        .find_map(|h| {
            let (name, value) = h.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse::<usize>().ok())?
        })
        .unwrap_or(0);
    let mut body = vec![0u8; length];
    client.read_exact(&mut body)?;

    let mut server = TcpStream::connect_timeout(&upstream, Duration::from_secs(5))?;
    server.set_read_timeout(timeout)?;
    server.set_write_timeout(timeout)?;
    let mut out = format!("{request_line}\r\n");
    for h in &headers {
        out.push_str(h);
        out.push_str("\r\n");
    }
    out.push_str("Connection: close\r\n\r\n");
    server.write_all(out.as_bytes())?;
    server.write_all(&body)?;
    let mut answer = Vec::new();
    server.read_to_end(&mut answer)?;

    let is_create = request_line.starts_with("POST /gateway ");
    if is_create && dropped.load(Ordering::SeqCst) < drop_gateway {
        dropped.fetch_add(1, Ordering::SeqCst);
        // The order exists at the server; the till's connection just closes.
        let _ = client.shutdown(std::net::Shutdown::Both);
        return Ok(());
    }
    // Pass the answer on, marked `Connection: close` (so the till opens a new connection
    // for its next request).
    let split = answer
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or(answer.len());
    let head = String::from_utf8_lossy(&answer[..split]).into_owned();
    let mut new_head: Vec<&str> = head
        .split("\r\n")
        .filter(|l| !l.to_ascii_lowercase().starts_with("connection:"))
        .collect();
    new_head.push("Connection: close");
    client.write_all(new_head.join("\r\n").as_bytes())?;
    client.write_all(answer.get(split..).unwrap_or_default())?;
    client.flush()?;
    let _ = client.shutdown(std::net::Shutdown::Both);
    Ok(())
}

#[test]
fn lost_create_answer_is_recovered_by_our_order_number() {
    start_budget();
    let Some(mut setup) = Setup::start() else {
        return;
    };
    let upstream: SocketAddr = setup
        .server
        .url
        .trim_start_matches("http://")
        .parse()
        .expect("server address");
    let proxy = Proxy::start(upstream, 1);
    setup.point_at(&format!("http://{}", proxy.addr));

    // The QR can only come from the look-up by our order number: the till never learnt the
    // server's order id.
    let mut sale = setup.sale("9.99", "unionpay");
    assert_eq!(
        proxy.dropped.load(Ordering::SeqCst),
        1,
        "the create's answer was lost"
    );
    let server_order = setup.order(&sale.order_no);
    assert_eq!(sale.qr["qr"], server_order["qrcode"], "{}", sale.qr);

    setup.set_state(&sale.order_no, 9);
    expect_paid(&mut sale, "9.99");

    setup.assert_all_accepted();
    let requests = setup.protocol_requests();
    let gateways = requests.iter().filter(|r| path_of(r) == "/gateway").count();
    assert_eq!(
        gateways, 1,
        "a create whose answer was lost must not be re-sent: {requests:?}"
    );
    let lookup = format!("/order/{USERID}/{}/", sale.order_no);
    assert!(
        requests.iter().any(|r| path_of(r).starts_with(&lookup)),
        "qrtill never looked the order up by its number ({lookup}…): {requests:?}"
    );
    assert_eq!(setup.order(&sale.order_no)["state"], 9);
    let status = status_json(&setup, &sale);
    assert_eq!(status["status"], "paid", "{status}");
    assert_eq!(status["paid"], "9.99", "{status}");
}
