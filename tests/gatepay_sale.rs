//! Full gatepay.io sales through the `qrtill` binary against `qrtill sandbox`, as separate
//! processes on loopback: the till learns of the payment by the listener's notify, or (with
//! the listener off) only by querying `/api/order/check`; and a forged notify changes
//! nothing. The test plays the payer: it opens the QR's `pay_url` (gatepay's hosted page) and
//! then tells the sandbox the order was paid.
//!
//! Every child process is killed by a guard; every wait is bounded (60 s per test at most).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_qrtill");
const TEST_BUDGET: Duration = Duration::from_secs(60);

/// A child process that is killed when the test ends, however it ends.
struct Proc {
    child: Child,
    name: &'static str,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Proc {
    /// Waits for the process to exit, until the deadline.
    fn wait_exit(&mut self, deadline: Instant) -> i32 {
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

/// Lines of a child's stdout, read by a named thread.
fn line_reader(name: &str, stdout: impl std::io::Read + Send + 'static) -> Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::Builder::new()
        .name(format!("{name}-stdout"))
        .spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        })
        .unwrap();
    rx
}

fn remaining(deadline: Instant) -> Duration {
    deadline.saturating_duration_since(Instant::now())
}

/// A sandbox process and a till config pointing at it.
struct Rig {
    _sandbox: Proc,
    base: String,
    dir: tempfile::TempDir,
    config: PathBuf,
    deadline: Instant,
}

impl Rig {
    /// Starts `qrtill sandbox` and writes the config it prints (with the listener on or off).
    fn start(listener: bool) -> Rig {
        let deadline = Instant::now() + TEST_BUDGET;
        let dir = tempfile::tempdir().unwrap();
        let mut child = Command::new(BIN)
            .args(["sandbox", "--listen", "127.0.0.1:0"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(
                std::fs::File::create(dir.path().join("sandbox.log")).unwrap(),
            ))
            .spawn()
            .unwrap();
        let lines = line_reader("sandbox", child.stdout.take().unwrap());
        let sandbox = Proc {
            child,
            name: "qrtill sandbox",
        };
        // The config follows the line `# A config for it …` and ends when the output stops
        // (the sandbox then waits for Ctrl-C).
        let mut base = None;
        let mut config = None::<String>;
        loop {
            let wait = if config.is_some() {
                Duration::from_millis(700).min(remaining(deadline))
            } else {
                remaining(deadline)
            };
            match lines.recv_timeout(wait) {
                Ok(line) => {
                    if let Some(rest) = line.strip_prefix("qrtill sandbox listening on ") {
                        base = Some(rest.trim().to_string());
                    }
                    match &mut config {
                        Some(text) => {
                            text.push_str(&line);
                            text.push('\n');
                        }
                        None if line.starts_with("# A config for it") => {
                            config = Some(String::new());
                        }
                        None => {}
                    }
                }
                Err(RecvTimeoutError::Timeout) if config.is_some() => break,
                Err(err) => panic!("the sandbox printed no config: {err}"),
            }
        }
        let base = base.expect("the sandbox's URL");
        let mut config = config.unwrap();
        assert!(
            config.contains("id = \"demo-gatepay\""),
            "the sandbox's config has no demo-gatepay account:\n{config}"
        );
        if !listener {
            // Nobody receives the notify: the payment can only be found by query.
            config = config.replacen("[listener]\n", "[listener]\nenabled = false\n", 1);
            assert!(config.contains("enabled = false"), "{config}");
        }
        let path = dir.path().join("config.toml");
        std::fs::write(&path, config).unwrap();
        Rig {
            _sandbox: sandbox,
            base,
            dir,
            config: path,
            deadline,
        }
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn till_command(&self) -> Command {
        let mut command = Command::new(BIN);
        command
            .arg("--config")
            .arg(&self.config)
            .arg("--data-dir")
            .arg(self.data_dir())
            .stdin(Stdio::null());
        command
    }

    /// Starts `qrtill charge --amount 12.34 --provider demo-gatepay --json`.
    fn charge(&self, channel: &str) -> Charge {
        let mut child = self
            .till_command()
            .args([
                "charge",
                "--amount",
                "12.34",
                "--channel",
                channel,
                "--provider",
                "demo-gatepay",
                "--json",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::from(
                std::fs::File::create(self.charge_log()).unwrap(),
            ))
            .spawn()
            .unwrap();
        let lines = line_reader("charge", child.stdout.take().unwrap());
        Charge {
            proc: Proc {
                child,
                name: "qrtill charge",
            },
            lines,
            log: self.charge_log(),
            deadline: self.deadline,
        }
    }

    fn charge_log(&self) -> PathBuf {
        self.dir.path().join("charge.log")
    }

    /// `qrtill status ORDER_NO --json`, bounded.
    fn status(&self, order_no: &str) -> Value {
        let mut child = self
            .till_command()
            .args(["status", order_no, "--json"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::Builder::new()
            .name("status-stdout".into())
            .spawn(move || {
                let mut text = String::new();
                let _ = stdout.read_to_string(&mut text);
                let _ = tx.send(text);
            })
            .unwrap();
        let mut proc = Proc {
            child,
            name: "qrtill status",
        };
        let text = rx.recv_timeout(remaining(self.deadline)).unwrap();
        assert_eq!(proc.wait_exit(self.deadline), 0, "status: {text}");
        serde_json::from_str(text.trim()).unwrap_or_else(|err| panic!("{err}: {text}"))
    }

    /// A control call to the sandbox.
    fn control(&self, path: &str) -> (u16, String) {
        http(
            "POST",
            &format!("{}/_sandbox/{path}", self.base),
            self.deadline,
        )
    }
}

/// A running `qrtill charge`.
struct Charge {
    proc: Proc,
    lines: Receiver<String>,
    log: PathBuf,
    deadline: Instant,
}

impl Charge {
    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The next JSON line whose `event` is `name` (earlier events are checked and skipped).
    fn event(&mut self, name: &str) -> Value {
        loop {
            let line = match self.lines.recv_timeout(remaining(self.deadline)) {
                Ok(line) => line,
                Err(err) => panic!(
                    "no `{name}` event from charge ({err}); its log:\n{}",
                    self.log()
                ),
            };
            let value: Value = serde_json::from_str(&line)
                .unwrap_or_else(|err| panic!("charge printed a non-JSON line ({err}): {line}"));
            if value["event"] == "error" || (value["event"] == "done" && name != "done") {
                panic!(
                    "charge ended before `{name}`: {value}; its log:\n{}",
                    self.log()
                );
            }
            if value["event"] == name {
                return value;
            }
        }
    }

    /// Asserts that charge printed no line for `wait`.
    fn quiet_for(&mut self, wait: Duration) {
        match self.lines.recv_timeout(wait.min(remaining(self.deadline))) {
            Err(RecvTimeoutError::Timeout) => {}
            Ok(line) => {
                let value: Value = serde_json::from_str(&line).unwrap();
                // A status line that repeats "pending" would be harmless, but none is expected.
                panic!("charge printed something while nothing should change: {value}");
            }
            Err(err) => panic!("charge stopped: {err}; its log:\n{}", self.log()),
        }
    }
}

/// A tiny HTTP/1.1 client over a raw socket (loopback only): returns status and body.
fn http(method: &str, url: &str, deadline: Instant) -> (u16, String) {
    let rest = url.strip_prefix("http://").expect("an http:// URL");
    let (host, path) = match rest.find('/') {
        Some(at) => (&rest[..at], &rest[at..]),
        None => (rest, "/"),
    };
    let addr: SocketAddr = host.parse().expect("a loopback address");
    assert!(addr.ip().is_loopback(), "{addr} is not loopback");
    let timeout = remaining(deadline).max(Duration::from_millis(1));
    let mut stream = TcpStream::connect_timeout(&addr, timeout).unwrap();
    stream.set_read_timeout(Some(timeout)).unwrap();
    stream.set_write_timeout(Some(timeout)).unwrap();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
    )
    .unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").expect("an HTTP answer");
    assert!(
        !head
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked"),
        "chunked answers are not expected: {head}"
    );
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .expect("a status code");
    (status, body.to_string())
}

/// Plays the payer: opens the QR's page (gatepay's hosted pay page), then pays.
fn pay_as_the_payer(rig: &Rig, qr: &Value, channel: &str) -> String {
    let order_no = qr["order_no"].as_str().unwrap().to_string();
    assert_eq!(qr["amount"], "12.34");
    assert_eq!(qr["provider"], "demo-gatepay");
    // The QR is gatepay's pay_url (rendered locally), not the fallback picture.
    assert!(qr["qr_image_base64"].is_null(), "{qr}");
    let pay_url = qr["qr"].as_str().expect("a text QR");
    assert!(
        pay_url.starts_with(&format!("{}/gatepay/pay/api?id=", rig.base))
            && pay_url.ends_with(&format!("&type={channel}")),
        "{pay_url}"
    );
    let (status, page) = http("GET", pay_url, rig.deadline);
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("¥12.34"), "{page}");
    let (status, body) = rig.control(&format!("orders/{order_no}/pay"));
    assert_eq!((status, body.as_str()), (200, "ok"));
    order_no
}

/// The event that moved the order to paid.
fn paid_event(status: &Value) -> Value {
    status["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["to"] == "paid")
        .cloned()
        .unwrap_or_else(|| panic!("no event made the order paid: {status}"))
}

fn assert_done_paid(done: &Value, order_no: &str) {
    assert_eq!(done["order_no"], order_no);
    assert_eq!(done["status"], "paid", "{done}");
    assert_eq!(done["amount"], "12.34");
    assert_eq!(done["paid"], "12.34");
    assert_eq!(done["amount_mismatch"], false);
}

#[test]
fn sale_paid_by_the_notify() {
    let rig = Rig::start(true);
    let mut charge = rig.charge("alipay");
    let qr = charge.event("qr");
    // Paid right away: the till's first query is 2 s after the create, so the notify (sent at
    // once) is what tells it.
    let order_no = pay_as_the_payer(&rig, &qr, "alipay");
    let done = charge.event("done");
    assert_done_paid(&done, &order_no);
    assert_eq!(charge.proc.wait_exit(rig.deadline), 0, "{}", charge.log());

    let status = rig.status(&order_no);
    assert_eq!(status["status"], "paid", "{status}");
    assert_eq!(status["provider_kind"], "gatepay");
    assert_eq!(status["paid"], "12.34");
    let paid = paid_event(&status);
    assert_eq!(paid["kind"], "callback", "{status}");
    // The raw notify is kept, with its signature.
    let raw = paid["raw"].as_str().unwrap();
    assert!(raw.starts_with("POST"), "{raw}");
    assert!(raw.contains(&format!("out_order_id={order_no}")), "{raw}");
    assert!(
        raw.contains("realprice=12.34") && raw.contains("sign="),
        "{raw}"
    );
}

#[test]
fn sale_paid_found_only_by_the_query() {
    let rig = Rig::start(false);
    let mut charge = rig.charge("wechat");
    let qr = charge.event("qr");
    let order_no = pay_as_the_payer(&rig, &qr, "wechat");
    let done = charge.event("done");
    assert_done_paid(&done, &order_no);
    assert_eq!(charge.proc.wait_exit(rig.deadline), 0, "{}", charge.log());

    let status = rig.status(&order_no);
    assert_eq!(status["status"], "paid", "{status}");
    assert_eq!(status["channel"], "wechat");
    let paid = paid_event(&status);
    assert_eq!(paid["kind"], "query", "{status}");
    let raw = paid["raw"].as_str().unwrap();
    assert!(raw.contains("\"order_status\":\"paid\""), "{raw}");
    // The query named gatepay's order id, which the ledger keeps.
    assert!(status["provider_order_id"].is_string(), "{status}");
    // No notify reached the till.
    assert!(
        !status["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["kind"] == "callback"),
        "{status}"
    );
    // The sandbox saw the till's queries.
    let (code, orders) = http(
        "GET",
        &format!("{}/_sandbox/orders", rig.base),
        rig.deadline,
    );
    assert_eq!(code, 200);
    let orders: Value = serde_json::from_str(&orders).unwrap();
    let order = orders
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["order_no"] == order_no.as_str())
        .unwrap();
    assert!(order["queries"].as_u64().unwrap() >= 1, "{order}");
}

#[test]
fn forged_notify_changes_nothing() {
    let rig = Rig::start(true);
    let mut charge = rig.charge("alipay");
    let qr = charge.event("qr");
    let order_no = qr["order_no"].as_str().unwrap().to_string();

    let (code, body) = rig.control(&format!("orders/{order_no}/notify?forged=true"));
    assert_eq!((code, body.as_str()), (200, "ok"));
    // The till refuses it (its log says why) …
    while !charge.log().contains("callback refused") {
        assert!(
            Instant::now() < rig.deadline,
            "the forged notify never reached the till; its log:\n{}",
            charge.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        charge.log().contains("signature does not match"),
        "{}",
        charge.log()
    );
    // … and nothing changes: no line from charge, the order is still pending, no callback
    // event in the ledger.
    charge.quiet_for(Duration::from_millis(1500));
    let status = rig.status(&order_no);
    assert_eq!(status["status"], "pending", "{status}");
    assert!(status["paid"].is_null(), "{status}");
    assert!(
        !status["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["kind"] == "callback"),
        "{status}"
    );

    // The order is still alive: a real payment ends the sale.
    let order_no = pay_as_the_payer(&rig, &qr, "alipay");
    let done = charge.event("done");
    assert_done_paid(&done, &order_no);
    assert_eq!(charge.proc.wait_exit(rig.deadline), 0, "{}", charge.log());
}
