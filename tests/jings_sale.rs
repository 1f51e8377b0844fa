//! Sales through sun.jings.wang v1 end to end: the `qrtill` binary and `qrtill sandbox` as
//! separate processes, the test acting as the payer's phone (open the QR, let its page post
//! the signed form) and as the customer paying (the sandbox's control API), over loopback
//! only. Covered: the bridge-page QR (with `public_url`), the signed-link QR (without), an
//! underpayment (paid, flagged), a forged notify that changes nothing, and, in process,
//! that the poller never queries one order twice within the provider's 60 s, even when
//! staff keep asking.
//!
//! Every child process is killed by a guard; every wait is bounded (60 s per sale test; the
//! rate-limit test needs one full minute between two queries and is bounded at 75 s).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use qrtill::ledger::Ledger;
use qrtill::model::{Channel, Fen, PaymentStatus};
use qrtill::providers::Provider;
use qrtill::sandbox::jings::{DEMO_UID, balance_calls_key, demo_account, query_calls_key};
use qrtill::sandbox::{Sandbox, SandboxOptions};
use qrtill::service::{self, ChargeRequest, Command as ServiceCommand, Event, ServiceConfig};
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_qrtill");
const S: fn(u64) -> Duration = Duration::from_secs;

// ---------------------------------------------------------------------------------------------
// Processes

/// A child process that is killed when the test ends, however it ends.
struct Guard {
    child: Child,
    name: &'static str,
}

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Guard {
    /// Waits for the process to exit by itself, until `deadline`.
    fn exit_code(&mut self, deadline: Instant) -> i32 {
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code().unwrap_or(-1);
            }
            assert!(
                Instant::now() < deadline,
                "{} did not exit in time",
                self.name
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Reads a child's output line by line on a named thread.
fn lines_of(read: impl std::io::Read + Send + 'static, name: &str) -> Receiver<String> {
    let (tx, rx) = channel();
    std::thread::Builder::new()
        .name(format!("{name}-reader"))
        .spawn(move || {
            for line in BufReader::new(read).lines() {
                let Ok(line) = line else { return };
                if tx.send(line).is_err() {
                    return;
                }
            }
        })
        .unwrap();
    rx
}

/// Collects a child's stderr for failure messages.
fn collect(read: impl std::io::Read + Send + 'static, name: &str) -> Arc<Mutex<String>> {
    let text = Arc::new(Mutex::new(String::new()));
    let sink = text.clone();
    std::thread::Builder::new()
        .name(format!("{name}-stderr"))
        .spawn(move || {
            for line in BufReader::new(read).lines() {
                let Ok(line) = line else { return };
                let mut text = sink.lock().unwrap();
                text.push_str(&line);
                text.push('\n');
            }
        })
        .unwrap();
    text
}

fn next_line(lines: &Receiver<String>, deadline: Instant, what: &str) -> String {
    let left = deadline.saturating_duration_since(Instant::now());
    match lines.recv_timeout(left) {
        Ok(line) => line,
        Err(RecvTimeoutError::Timeout) => panic!("no {what} in time"),
        Err(RecvTimeoutError::Disconnected) => panic!("output ended before {what}"),
    }
}

/// `qrtill sandbox` on a free port: its guard, its base URL and the config it printed.
fn start_sandbox(deadline: Instant) -> (Guard, String, String) {
    let mut child = Command::new(BIN)
        .args(["sandbox", "--listen", "127.0.0.1:0"])
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let lines = lines_of(child.stdout.take().unwrap(), "sandbox");
    let guard = Guard {
        child,
        name: "qrtill sandbox",
    };
    let mut base = None;
    loop {
        let line = next_line(&lines, deadline, "sandbox config");
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
        match lines.recv_timeout(Duration::from_millis(500)) {
            Ok(line) => {
                config.push_str(&line);
                config.push('\n');
            }
            Err(_) if config.contains("id = \"demo-jings\"") => break,
            Err(_) => assert!(Instant::now() < deadline, "no jings config: {config}"),
        }
    }
    (guard, base.expect("the sandbox's URL"), config)
}

/// A running `qrtill charge --json`, with its stdout lines parsed as JSON.
struct Charge {
    guard: Guard,
    lines: Receiver<String>,
    stderr: Arc<Mutex<String>>,
}

impl Charge {
    fn start(config: &Path, data: &Path) -> Charge {
        let mut child = Command::new(BIN)
            .arg("--config")
            .arg(config)
            .arg("--data-dir")
            .arg(data)
            .args([
                "charge",
                "--amount",
                "12.34",
                "--channel",
                "alipay",
                "--provider",
                "demo-jings",
                "--json",
            ])
            .env("RUST_LOG", "qrtill=info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let lines = lines_of(child.stdout.take().unwrap(), "charge");
        let stderr = collect(child.stderr.take().unwrap(), "charge");
        Charge {
            guard: Guard {
                child,
                name: "qrtill charge",
            },
            lines,
            stderr,
        }
    }

    /// The next JSON event with `"event": event`, skipping others.
    fn event(&self, event: &str, deadline: Instant) -> Value {
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = match self.lines.recv_timeout(left) {
                Ok(line) => line,
                Err(err) => panic!(
                    "no {event} event ({err:?}); stderr:\n{}",
                    self.stderr.lock().unwrap()
                ),
            };
            let value: Value = serde_json::from_str(&line)
                .unwrap_or_else(|err| panic!("not a JSON line ({err}): {line}"));
            if value["event"] == event {
                return value;
            }
            assert_ne!(value["event"], "done", "ended early: {value}");
        }
    }

    /// Whether an event line arrives within `wait` (it must not, e.g. after a forgery).
    fn quiet_for(&self, wait: Duration) -> Option<String> {
        self.lines.recv_timeout(wait).ok()
    }
}

fn status_json(config: &Path, data: &Path, order_no: &str) -> Value {
    let output = Command::new(BIN)
        .arg("--config")
        .arg(config)
        .arg("--data-dir")
        .arg(data)
        .args(["status", order_no, "--json"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "status: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

/// A port nobody listens on right now (bound, then released).
fn free_port() -> u16 {
    let socket = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    socket.local_addr().unwrap().port()
}

// ---------------------------------------------------------------------------------------------
// A tiny HTTP/1.1 client (loopback only)

struct Reply {
    status: u16,
    body: String,
}

fn http(method: &str, url: &str, form: Option<&[(String, String)]>) -> Reply {
    let parsed = url::Url::parse(url).unwrap();
    let host = parsed.host_str().unwrap();
    assert!(
        host == "127.0.0.1" || host == "localhost",
        "loopback only: {url}"
    );
    let port = parsed.port_or_known_default().unwrap();
    let target = match parsed.query() {
        Some(query) => format!("{}?{query}", parsed.path()),
        None => parsed.path().to_string(),
    };
    let body = form
        .map(|pairs| {
            url::form_urlencoded::Serializer::new(String::new())
                .extend_pairs(pairs.iter())
                .finish()
        })
        .unwrap_or_default();
    let addr: SocketAddr = format!("{host}:{port}").parse().unwrap();
    let mut stream = TcpStream::connect_timeout(&addr, S(5)).unwrap();
    stream.set_read_timeout(Some(S(10))).unwrap();
    stream.set_write_timeout(Some(S(10))).unwrap();
    let mut request =
        format!("{method} {target} HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: close\r\n");
    if form.is_some() {
        request.push_str("Content-Type: application/x-www-form-urlencoded\r\n");
    }
    request.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    stream.write_all(request.as_bytes()).unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, rest) = text.split_once("\r\n\r\n").expect("an HTTP answer");
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .expect("a status code");
    let chunked = head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked");
    let body = if chunked {
        dechunk(rest)
    } else {
        rest.to_string()
    };
    Reply { status, body }
}

fn dechunk(mut rest: &str) -> String {
    let mut out = String::new();
    while let Some((size, after)) = rest.split_once("\r\n") {
        let size = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if size == 0 {
            break;
        }
        out.push_str(&after[..size]);
        rest = after[size..].trim_start_matches("\r\n");
    }
    out
}

fn html_unescape(text: &str) -> String {
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
}

/// The value of `name="…"` inside one tag.
fn attribute(tag: &str, name: &str) -> Option<String> {
    let start = tag.find(&format!("{name}=\""))? + name.len() + 2;
    let end = tag[start..].find('"')? + start;
    Some(html_unescape(&tag[start..end]))
}

/// A page's form: its action and its hidden inputs, in order.
fn parse_form(html: &str) -> (String, Vec<(String, String)>) {
    let form_at = html.find("<form").expect("a form");
    let form_tag = &html[form_at..form_at + html[form_at..].find('>').unwrap()];
    assert_eq!(attribute(form_tag, "method").as_deref(), Some("post"));
    let action = attribute(form_tag, "action").expect("an action");
    let mut fields = Vec::new();
    let mut rest = &html[form_at..];
    while let Some(at) = rest.find("<input") {
        let end = rest[at..].find('>').unwrap() + at;
        let tag = &rest[at..end];
        if let (Some(name), Some(value)) = (attribute(tag, "name"), attribute(tag, "value")) {
            fields.push((name, value));
        }
        rest = &rest[end..];
    }
    (action, fields)
}

// ---------------------------------------------------------------------------------------------
// Sales through the binary

struct Shop {
    _sandbox: Guard,
    sandbox: String,
    config: std::path::PathBuf,
    data: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

/// The sandbox and a config for it; with `bridge`, a fixed listener port and `public_url`.
fn shop(bridge: bool, deadline: Instant) -> (Shop, Option<String>) {
    let (guard, sandbox, mut config) = start_sandbox(deadline);
    let dir = tempfile::tempdir().unwrap();
    let mut public = None;
    if bridge {
        let listener = format!("127.0.0.1:{}", free_port());
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
    let data = dir.path().join("data");
    (
        Shop {
            _sandbox: guard,
            sandbox,
            config: path,
            data,
            _dir: dir,
        },
        public,
    )
}

/// After the QR: the customer pays, the notify reaches the till, the sale ends paid.
fn pay_and_expect_paid(shop: &Shop, charge: Charge, order_no: &str, deadline: Instant) {
    pay_and_expect(shop, charge, order_no, deadline, "12.34");
}

/// The customer pays `realpay` (the sandbox's `pay?amount=`); the sale ends paid, flagged
/// when that is not the order's 12.34.
fn pay_and_expect(
    shop: &Shop,
    mut charge: Charge,
    order_no: &str,
    deadline: Instant,
    realpay: &str,
) {
    let paid = http(
        "POST",
        &format!(
            "{}/_sandbox/orders/{order_no}/pay?amount={realpay}",
            shop.sandbox
        ),
        Some(&[]),
    );
    assert_eq!((paid.status, paid.body.as_str()), (200, "ok"));
    let done = charge.event("done", deadline);
    assert_eq!(done["status"], "paid", "{done}");
    assert_eq!(done["paid"], realpay);
    assert_eq!(done["amount_mismatch"], realpay != "12.34");
    assert_eq!(charge.guard.exit_code(deadline), 0);
    let status = status_json(&shop.config, &shop.data, order_no);
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
    let charge = Charge::start(&shop.config, &shop.data);
    let qr = charge.event("qr", deadline);
    let order_no = qr["order_no"].as_str().unwrap().to_string();
    assert_eq!(qr["amount"], "12.34");
    assert_eq!(qr["provider"], "demo-jings");
    let link = qr["qr"].as_str().unwrap();
    assert_eq!(link, format!("{public}/pay/{order_no}"), "the bridge page");
    // The payer's phone opens the bridge page, which posts the signed form to the provider.
    let page = http("GET", link, None);
    assert_eq!(page.status, 200, "{}", page.body);
    let (action, fields) = parse_form(&page.body);
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
    let pay_page = http("POST", &action, Some(&fields));
    assert_eq!(pay_page.status, 200, "{}", pay_page.body);
    assert!(pay_page.body.contains("12.34"), "{}", pay_page.body);
    pay_and_expect_paid(&shop, charge, &order_no, deadline);
}

#[test]
fn sale_through_the_signed_link() {
    let deadline = Instant::now() + S(60);
    let (shop, _) = shop(false, deadline);
    let charge = Charge::start(&shop.config, &shop.data);
    let qr = charge.event("qr", deadline);
    let order_no = qr["order_no"].as_str().unwrap().to_string();
    let link = qr["qr"].as_str().unwrap();
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
    let page = http("GET", link, None);
    assert_eq!(page.status, 200, "{}", page.body);
    // Opening it twice (a reload) is the same order, not a duplicate.
    assert_eq!(http("GET", link, None).status, 200);
    // A tampered link is refused by the provider.
    let tampered = link.replace("paymoney=12.34", "paymoney=0.01");
    let refused = http("GET", &tampered, None);
    assert_eq!(refused.status, 400);
    assert!(refused.body.contains("key"), "{}", refused.body);
    pay_and_expect_paid(&shop, charge, &order_no, deadline);
}

#[test]
fn an_underpayment_is_paid_and_flagged() {
    let deadline = Instant::now() + S(60);
    let (shop, _) = shop(false, deadline);
    let charge = Charge::start(&shop.config, &shop.data);
    let qr = charge.event("qr", deadline);
    let order_no = qr["order_no"].as_str().unwrap().to_string();
    assert_eq!(http("GET", qr["qr"].as_str().unwrap(), None).status, 200);
    // realpay 12.30 is covered by the notify's key: the money is real, the ledger flags it.
    pay_and_expect(&shop, charge, &order_no, deadline, "12.30");
}

#[test]
fn a_forged_notify_changes_nothing() {
    let deadline = Instant::now() + S(60);
    let (shop, _) = shop(false, deadline);
    let charge = Charge::start(&shop.config, &shop.data);
    let qr = charge.event("qr", deadline);
    let order_no = qr["order_no"].as_str().unwrap().to_string();
    assert_eq!(
        http("GET", qr["qr"].as_str().unwrap(), None).status,
        200,
        "the payer opened the pay page"
    );
    let sent = http(
        "POST",
        &format!(
            "{}/_sandbox/orders/{order_no}/notify?forged=true",
            shop.sandbox
        ),
        Some(&[]),
    );
    assert_eq!(sent.status, 200);
    // The sandbox records how the till answered the forgery: refused.
    let answered = loop {
        let notifies: Value = serde_json::from_str(
            &http("GET", &format!("{}/_sandbox/notifies", shop.sandbox), None).body,
        )
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
    if let Some(line) = charge.quiet_for(Duration::from_secs(1)) {
        let value: Value = serde_json::from_str(&line).unwrap();
        assert_ne!(value["event"], "done", "{value}");
        assert_ne!(value["status"], "paid", "{value}");
    }
    let status = status_json(&shop.config, &shop.data, &order_no);
    assert_eq!(status["status"], "pending", "{status:#}");
    assert_eq!(status["paid"], Value::Null);
    assert!(
        !status["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["kind"] == "callback"),
        "nothing recorded from the forgery: {status:#}"
    );
    // The real payment still goes through.
    pay_and_expect_paid(&shop, charge, &order_no, deadline);
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
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, events.recv()).await {
            Ok(Some(Event::Order(update))) if update.order.order_no == no => {
                if let Some(qr) = update.qr {
                    break qr.text().unwrap().to_string();
                }
            }
            Ok(Some(_)) => {}
            other => panic!("no QR: {other:?}"),
        }
    };
    // The payer opens the signed link: the provider now knows the order.
    let opened = tokio::task::spawn_blocking(move || http("GET", &link, None).status)
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
            () = tokio::time::sleep(deadline.saturating_duration_since(Instant::now())) => {
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
