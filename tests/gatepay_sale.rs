//! Full gatepay.io sales through the `qrtill` binary against `qrtill sandbox`, as separate
//! processes on loopback: the till learns of the payment by the listener's notify, or (with
//! the listener off) only by querying `/api/order/check`; and a forged notify changes
//! nothing. The test plays the payer: it opens the QR's `pay_url` (gatepay's hosted page) and
//! then tells the sandbox the order was paid. One more test checks that the simulator
//! itself answers with the seed's codes and words (101–106, 109, 199, 201–203, query 201).
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

use qrtill::providers::gatepay::transformers::SignInput;
use qrtill::sandbox::gatepay::{DEMO_APPKEY, DEMO_APPSECRET};
use qrtill::secret::Secret;
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
    http_form(method, url, None, deadline)
}

/// The same, with an optional `application/x-www-form-urlencoded` body.
fn http_form(method: &str, url: &str, form: Option<&str>, deadline: Instant) -> (u16, String) {
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
    let body = form.unwrap_or_default();
    let content_type = if form.is_some() {
        "Content-Type: application/x-www-form-urlencoded\r\n"
    } else {
        ""
    };
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n{content_type}Content-Length: {}\r\n\r\n{body}",
        body.len()
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

/// A create form for the sandbox, signed with `secret` unless a sign is given.
fn create_form(
    price: &str,
    pay_type: &str,
    out_order_id: &str,
    extra: &[(&str, &str)],
    sign: Option<&str>,
) -> String {
    let computed = SignInput::Create {
        appkey: DEMO_APPKEY,
        price,
        pay_type,
        out_order_id,
        custom: "demo",
    }
    .sign(&Secret::new(DEMO_APPSECRET));
    let mut form = url::form_urlencoded::Serializer::new(String::new());
    form.append_pair("appkey", DEMO_APPKEY)
        .append_pair("price", price)
        .append_pair("type", pay_type)
        .append_pair("out_order_id", out_order_id)
        .append_pair("custom", "demo")
        .append_pair("sign", sign.unwrap_or(&computed));
    for (name, value) in extra {
        form.append_pair(name, value);
    }
    form.finish()
}

#[test]
fn sandbox_answers_with_the_seeds_codes() {
    let rig = Rig::start(true);
    let anypay = format!("{}/gatepay/api/anypay/create", rig.base);
    let cloudpay = format!("{}/gatepay/api/cloudpay/create", rig.base);
    let notify: &[(&str, &str)] = &[("notify_url", "http://127.0.0.1:9/notify/x")];
    let post = |url: &str, form: &str| {
        let (status, body) = http_form("POST", url, Some(form), rig.deadline);
        assert_eq!(status, 200, "{body}");
        serde_json::from_str::<Value>(&body).unwrap_or_else(|err| panic!("{err}: {body}"))
    };
    let good = create_form("12.34", "alipay", "SIM-1", notify, None);
    let cases: Vec<(&str, String, i64, &str)> = vec![
        (
            anypay.as_str(),
            good.replace("appkey=", "x="),
            106,
            "存在禁止传递的参数",
        ),
        (
            anypay.as_str(),
            good.replacen(&format!("appkey={DEMO_APPKEY}&"), "", 1),
            101,
            "秘钥必须",
        ),
        (
            anypay.as_str(),
            good.replacen(DEMO_APPKEY, "0000", 1),
            102,
            "无效的秘钥",
        ),
        (
            anypay.as_str(),
            create_form("12.34", "alipay", "SIM-1", notify, Some("")),
            103,
            "签名必须",
        ),
        (
            anypay.as_str(),
            create_form(
                "12.34",
                "alipay",
                "SIM-1",
                notify,
                Some("0123456789abcdef0123456789abcdef"),
            ),
            104,
            "无效的签名",
        ),
        (
            anypay.as_str(),
            create_form("12.34", "alipay", "", notify, None),
            105,
            "参数缺失",
        ),
        (
            anypay.as_str(),
            create_form("12.34", "alipay", "SIM-1", &[("foo", "bar")], None),
            106,
            "存在禁止传递的参数",
        ),
        (
            anypay.as_str(),
            create_form("12.34", "alipay", "SIM-1", &[], None),
            109,
            "通知接口url未填写",
        ),
        (
            anypay.as_str(),
            create_form("12.3", "alipay", "SIM-1", notify, None),
            201,
            "价格无效",
        ),
        (
            anypay.as_str(),
            create_form("12.34", "qq", "SIM-1", notify, None),
            202,
            "无效的支付方式",
        ),
        (
            cloudpay.as_str(),
            create_form("12.34", "wechat", "SIM-2", &[], None),
            203,
            "当前支付方式已关闭",
        ),
        (cloudpay.as_str(), good.clone(), 106, "存在禁止传递的参数"),
    ];
    for (url, form, code, msg) in cases {
        let answer = post(url, &form);
        assert_eq!(answer["code"], code, "{form}: {answer}");
        assert_eq!(answer["msg"], msg, "{form}: {answer}");
    }
    // Not a form at all.
    let (_, body) = http_form("POST", &anypay, None, rig.deadline);
    assert!(body.contains("105"), "{body}");

    // Good creates: the any-amount answer has a qrcode_body, the cloud one has none.
    let answer = post(&anypay, &good);
    assert_eq!(answer["code"], 100, "{answer}");
    assert!(
        answer["data"]["pay_url"]
            .as_str()
            .unwrap()
            .contains("/gatepay/pay/api?id=")
    );
    assert!(
        answer["data"]["qrcode_body"]
            .as_str()
            .unwrap()
            .starts_with("data:image/png;base64,")
    );
    assert_eq!(answer["data"]["params"]["out_order_id"], "SIM-1");
    let (status, png) = http(
        "GET",
        answer["data"]["qrcode_url"].as_str().unwrap(),
        rig.deadline,
    );
    assert_eq!(status, 200);
    assert!(png.starts_with("\u{fffd}PNG"), "{png:.8}");
    let cloud = post(
        &cloudpay,
        &create_form("12.34", "alipay", "SIM-3", &[], None),
    );
    assert_eq!(cloud["code"], 100, "{cloud}");
    assert!(cloud["data"].get("qrcode_body").is_none(), "{cloud}");
    // The same order number again.
    let again = post(&anypay, &good);
    assert_eq!(again["code"], 199, "{again}");

    // The query: signed, 201 for an unknown order, `unpaid` then `expired`.
    let check = |out_order_id: &str, sign: Option<&str>| {
        let computed = SignInput::Query {
            appkey: DEMO_APPKEY,
            out_order_id,
        }
        .sign(&Secret::new(DEMO_APPSECRET));
        let query = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("appkey", DEMO_APPKEY)
            .append_pair("out_order_id", out_order_id)
            .append_pair("sign", sign.unwrap_or(&computed))
            .finish();
        let (status, body) = http(
            "GET",
            &format!("{}/gatepay/api/order/check?{query}", rig.base),
            rig.deadline,
        );
        assert_eq!(status, 200, "{body}");
        serde_json::from_str::<Value>(&body).unwrap()
    };
    assert_eq!(
        check("SIM-1", Some("0123456789abcdef0123456789abcdef"))["code"],
        104
    );
    let missing = check("NO-SUCH", None);
    assert_eq!(
        (missing["code"].as_i64(), missing["msg"].as_str()),
        (Some(201), Some("订单不存在"))
    );
    let open = check("SIM-1", None);
    assert_eq!(open["code"], 100, "{open}");
    assert_eq!(open["data"]["order_status"], "unpaid");
    assert_eq!(open["data"]["order_price"], "12.34");
    assert!(open["data"]["order_id"].is_u64(), "{open}");
    let (status, _) = rig.control("orders/SIM-1/expire");
    assert_eq!(status, 200);
    assert_eq!(check("SIM-1", None)["data"]["order_status"], "expired");
}
