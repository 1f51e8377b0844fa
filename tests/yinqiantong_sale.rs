//! A whole yinqiantong (银钱通) sale through the `qrtill` binary against `qrtill sandbox`, as
//! separate processes on loopback: the till creates the order, the test acts as the payer on
//! the QR (a WeChat H5 link, or the bridge page serving Alipay's HTML form), pays through the
//! sandbox's control API, and the till finds the payment by query (with no listener) or by
//! notify; `status` then shows it paid. A forged notify changes nothing, and the simulator
//! refuses what the seed forbids with the provider's own codes.
//!
//! Every child process is killed by a drop guard; every wait is bounded.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::{Duration, Instant};

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_qrtill");
/// No test may take longer than this.
const TEST_LIMIT: Duration = Duration::from_secs(60);

/// A child process that is killed when dropped, with its output as lines.
struct Proc {
    child: Child,
    stdout: Receiver<String>,
    stderr: Receiver<String>,
    name: &'static str,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn lines_of(name: String, stream: impl std::io::Read + Send + 'static) -> Receiver<String> {
    let (tx, rx) = channel();
    std::thread::Builder::new()
        .name(name)
        .spawn(move || {
            for line in BufReader::new(stream).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        })
        .expect("reader thread");
    rx
}

fn spawn(name: &'static str, args: &[&str]) -> Proc {
    let mut child = Command::new(BIN)
        .args(args)
        .env("RUST_LOG", "qrtill=info,warn")
        .env_remove("QRTILL_CONFIG")
        .env_remove("QRTILL_DATA_DIR")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start qrtill");
    let stdout = lines_of(format!("{name}-out"), child.stdout.take().unwrap());
    let stderr = lines_of(format!("{name}-err"), child.stderr.take().unwrap());
    Proc {
        child,
        stdout,
        stderr,
        name,
    }
}

impl Proc {
    /// The next stdout line, within the test's deadline.
    fn line(&self, deadline: Instant) -> String {
        let left = deadline.saturating_duration_since(Instant::now());
        match self.stdout.recv_timeout(left) {
            Ok(line) => line,
            Err(RecvTimeoutError::Timeout) => panic!("{}: no output in time", self.name),
            Err(RecvTimeoutError::Disconnected) => {
                let err: Vec<String> = self.stderr.try_iter().collect();
                panic!("{}: output ended; stderr:\n{}", self.name, err.join("\n"))
            }
        }
    }

    /// The next JSON event line whose `event` is `wanted` (other events are skipped).
    fn event(&self, wanted: &str, deadline: Instant) -> Value {
        loop {
            let line = self.line(deadline);
            let value: Value = serde_json::from_str(&line)
                .unwrap_or_else(|err| panic!("{}: not JSON ({err}): {line}", self.name));
            if value["event"] == wanted {
                return value;
            }
            assert_ne!(
                value["event"], "done",
                "{}: ended early: {value}",
                self.name
            );
            assert_ne!(value["event"], "error", "{}: {value}", self.name);
        }
    }

    /// Waits for a stderr line containing `needle`.
    fn stderr_until(&self, needle: &str, deadline: Instant) -> String {
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.stderr.recv_timeout(left) {
                Ok(line) if line.contains(needle) => return line,
                Ok(_) => {}
                Err(err) => panic!("{}: no `{needle}` on stderr: {err}", self.name),
            }
        }
    }

    fn exit(&mut self, deadline: Instant) -> ExitStatus {
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "{}: did not exit in time",
                self.name
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// A running `qrtill sandbox`: its base URL and the config it printed.
struct SandboxProc {
    _proc: Proc,
    base: String,
    config: String,
}

fn sandbox(deadline: Instant) -> SandboxProc {
    let proc = spawn("sandbox", &["sandbox", "--listen", "127.0.0.1:0"]);
    let first = proc.line(deadline);
    let base = first
        .strip_prefix("qrtill sandbox listening on ")
        .unwrap_or_else(|| panic!("unexpected first line: {first}"))
        .trim()
        .to_string();
    while !proc.line(deadline).starts_with("# A config for it") {}
    // The config is printed at once; it ends when the output goes quiet.
    let mut config = String::new();
    while let Ok(line) = proc.stdout.recv_timeout(Duration::from_millis(500)) {
        config.push_str(&line);
        config.push('\n');
    }
    assert!(
        config.contains("id = \"demo-yinqiantong\""),
        "no yinqiantong section: is {BIN} another worktree's build (a shared target dir)?\n{config}"
    );
    SandboxProc {
        _proc: proc,
        base,
        config,
    }
}

/// A tiny HTTP/1.1 client for loopback: `(status, body)`.
fn http(method: &str, url: &str, body: &str) -> (u16, String) {
    let form = [(
        "Content-Type".to_string(),
        "application/x-www-form-urlencoded".to_string(),
    )];
    http_with(method, url, &form, body.as_bytes())
}

/// [`http`] with the given headers and body bytes.
fn http_with(method: &str, url: &str, headers: &[(String, String)], body: &[u8]) -> (u16, String) {
    let rest = url.strip_prefix("http://").expect("http URL");
    let (host, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let path = if path.is_empty() { "/" } else { path };
    assert!(host.starts_with("127.0.0.1:"), "loopback only: {url}");
    let mut stream = TcpStream::connect(host).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream
        .set_write_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(body).unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).expect("read answer");
    let text = String::from_utf8_lossy(&answer).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("not HTTP: {text}"));
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_string())
        .unwrap_or_default();
    (status, body)
}

struct Till {
    dir: tempfile::TempDir,
    config: PathBuf,
}

impl Till {
    fn new(config_text: &str) -> Till {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("config.toml");
        std::fs::write(&config, config_text).unwrap();
        Till { dir, config }
    }

    fn data(&self) -> &Path {
        self.dir.path()
    }

    fn args<'a>(&'a self, rest: &[&'a str]) -> Vec<&'a str> {
        let mut args = vec![
            "--config",
            self.config.to_str().unwrap(),
            "--data-dir",
            self.data().to_str().unwrap(),
        ];
        args.extend_from_slice(rest);
        args
    }

    fn charge(&self, channel: &'static str) -> Proc {
        spawn(
            "charge",
            &self.args(&[
                "charge",
                "--amount",
                "12.34",
                "--channel",
                channel,
                "--provider",
                "demo-yinqiantong",
                "--json",
            ]),
        )
    }

    fn status(&self, order_no: &str, deadline: Instant) -> Value {
        let mut proc = spawn("status", &self.args(&["status", order_no, "--json"]));
        let line = proc.line(deadline);
        assert!(proc.exit(deadline).success(), "status failed");
        serde_json::from_str(&line).unwrap()
    }
}

fn events_of(status: &Value) -> Vec<Value> {
    status["events"].as_array().cloned().unwrap_or_default()
}

fn sim_state(base: &str, order_no: &str) -> String {
    let (code, body) = http("GET", &format!("{base}/_sandbox/orders"), "");
    assert_eq!(code, 200);
    let orders: Vec<Value> = serde_json::from_str(&body).unwrap();
    let order = orders
        .iter()
        .find(|o| o["order_no"] == order_no)
        .unwrap_or_else(|| panic!("sandbox has no order {order_no}: {body}"));
    assert_eq!(order["kind"], "yinqiantong");
    assert_eq!(order["amount"], "12.34");
    order["state"].as_str().unwrap().to_string()
}

#[test]
fn wechat_h5_link_paid_found_by_query() {
    let deadline = Instant::now() + TEST_LIMIT;
    let sandbox = sandbox(deadline);
    // No listener: the notify cannot arrive, so only the query can find the payment.
    let config = sandbox.config.replace(
        "[listener]\nlisten = \"127.0.0.1:0\"",
        "[listener]\nenabled = false",
    );
    assert!(config.contains("enabled = false"), "{config}");
    let till = Till::new(&config);
    let mut charge = till.charge("wechat");
    let qr = charge.event("qr", deadline);
    let order_no = qr["order_no"].as_str().unwrap().to_string();
    assert_eq!(qr["provider"], "demo-yinqiantong");
    assert_eq!(qr["amount"], "12.34");
    assert_eq!(qr["payable"], "12.34");
    // h5 + WeChat: the QR is the provider's H5 link, for the payer's browser to open.
    let link = qr["qr"].as_str().unwrap();
    let prefix = format!("{}/yinqiantong/_pay/", sandbox.base);
    assert!(link.starts_with(&prefix), "{link}");
    assert!(link.contains("?prepay_id=wx"), "{link}");
    let (code, page) = http("GET", link, "");
    assert_eq!(code, 200);
    assert!(page.contains("¥12.34"), "{page}");
    // The payer pays in the wallet.
    let (code, _) = http(
        "POST",
        &format!("{}/_sandbox/orders/{order_no}/pay", sandbox.base),
        "",
    );
    assert_eq!(code, 200);
    let done = charge.event("done", deadline);
    assert_eq!(done["status"], "paid", "{done}");
    assert_eq!(done["paid"], "12.34");
    assert_eq!(done["amount_mismatch"], false);
    assert_eq!(charge.exit(deadline).code(), Some(0));

    let status = till.status(&order_no, deadline);
    assert_eq!(status["status"], "paid", "{status}");
    assert_eq!(status["provider_kind"], "yinqiantong");
    assert_eq!(status["paid"], "12.34");
    assert!(
        status["provider_order_id"]
            .as_str()
            .is_some_and(|id| !id.is_empty())
    );
    let events = events_of(&status);
    let paid_by = events
        .iter()
        .find(|e| e["to"] == "paid")
        .unwrap_or_else(|| panic!("no paid event: {status}"));
    assert_eq!(paid_by["kind"], "query", "{status}");
    assert!(
        paid_by["raw"].as_str().unwrap().contains("\"status\":1"),
        "{paid_by}"
    );
    assert!(events.iter().all(|e| e["kind"] != "callback"), "{status}");
    assert_eq!(sim_state(&sandbox.base, &order_no), "Paid");
}

#[test]
fn alipay_form_via_bridge_page_paid_found_by_notify() {
    let deadline = Instant::now() + TEST_LIMIT;
    let sandbox = sandbox(deadline);
    let till = Till::new(&sandbox.config);
    let mut charge = till.charge("alipay");
    let qr = charge.event("qr", deadline);
    let order_no = qr["order_no"].as_str().unwrap().to_string();
    // h5 + Alipay: the provider's answer is an HTML form; the QR is the till's bridge page.
    let bridge = qr["qr"].as_str().unwrap();
    assert!(
        bridge.starts_with("http://127.0.0.1:") && bridge.ends_with(&format!("/pay/{order_no}")),
        "{bridge}"
    );
    assert!(!bridge.starts_with(&sandbox.base), "{bridge}");
    let (code, page) = http("GET", bridge, "");
    assert_eq!(code, 200, "{page}");
    assert!(page.contains("<form id='alipaysubmit'"), "{page}");
    assert!(
        page.contains("document.forms['alipaysubmit'].submit();"),
        "{page}"
    );
    // The payer's browser submits the form to the wallet's page.
    let action_start = page.find("action='").unwrap() + "action='".len();
    let action = &page[action_start..];
    let action = &action[..action.find('\'').unwrap()];
    assert!(action.starts_with(&format!("{}/yinqiantong/_pay/", sandbox.base)));
    let (code, wallet) = http("POST", action, "total_amount=12.34");
    assert_eq!(code, 200);
    assert!(wallet.contains("¥12.34"), "{wallet}");
    let (code, _) = http(
        "POST",
        &format!("{}/_sandbox/orders/{order_no}/pay", sandbox.base),
        "",
    );
    assert_eq!(code, 200);
    let done = charge.event("done", deadline);
    assert_eq!(done["status"], "paid", "{done}");
    assert_eq!(done["paid"], "12.34");
    assert_eq!(charge.exit(deadline).code(), Some(0));

    let status = till.status(&order_no, deadline);
    assert_eq!(status["status"], "paid", "{status}");
    // The notify was verified and recorded (the poll may rarely have seen "paid" first).
    let events = events_of(&status);
    let callback = events
        .iter()
        .find(|e| e["kind"] == "callback")
        .unwrap_or_else(|| panic!("no accepted notify in the log: {status}"));
    assert!(
        callback["detail"]
            .as_str()
            .is_some_and(|d| d.contains("notify says paid (code 1)")),
        "{callback}"
    );
    assert!(
        callback["raw"].as_str().unwrap().contains("\"money\":1234"),
        "{callback}"
    );
}

#[test]
fn forged_notify_changes_nothing() {
    let deadline = Instant::now() + TEST_LIMIT;
    let sandbox = sandbox(deadline);
    let till = Till::new(&sandbox.config);
    let mut charge = till.charge("wechat");
    let qr = charge.event("qr", deadline);
    let order_no = qr["order_no"].as_str().unwrap().to_string();
    // A forged notify claims the order paid in full, signed with the wrong secret.
    let (code, _) = http(
        "POST",
        &format!(
            "{}/_sandbox/orders/{order_no}/notify?forged=true",
            sandbox.base
        ),
        "",
    );
    assert_eq!(code, 200);
    let refused = charge.stderr_until("callback refused", deadline);
    assert!(refused.contains("signature does not match"), "{refused}");

    let status = till.status(&order_no, deadline);
    assert_eq!(status["status"], "pending", "{status}");
    assert!(status["paid"].is_null(), "{status}");
    assert!(
        events_of(&status).iter().all(|e| e["kind"] != "callback"),
        "{status}"
    );
    assert_ne!(sim_state(&sandbox.base, &order_no), "Paid");
    // The order then ends unpaid the normal way.
    let (code, _) = http(
        "POST",
        &format!("{}/_sandbox/orders/{order_no}/expire", sandbox.base),
        "",
    );
    assert_eq!(code, 200);
    let done = charge.event("done", deadline);
    assert_eq!(done["status"], "expired", "{done}");
    assert_eq!(charge.exit(deadline).code(), Some(3));
}

/// The simulator checks what the seed defines and answers with the provider's codes.
#[test]
fn sandbox_refuses_like_the_seed() {
    use qrtill::model::{Channel, Fen, OrderNo};
    use qrtill::providers::yinqiantong::Yinqiantong;
    use qrtill::providers::yinqiantong::transformers::SignInput;
    use qrtill::providers::{
        CallContext, CreateOrder, CreateStep, HttpResponse, OrderRef, Provider, ProviderError,
        QueryOutcome,
    };
    use qrtill::sandbox::yinqiantong::{DEMO_APP_SECRET, DEMO_APPID, DEMO_APPKEY};
    use qrtill::secret::Secret;

    let deadline = Instant::now() + TEST_LIMIT;
    let sandbox = sandbox(deadline);
    let account = |secret: &str| {
        Yinqiantong::new(
            "t",
            &format!("{}/yinqiantong", sandbox.base),
            DEMO_APPID,
            Secret::new(DEMO_APPKEY),
            Secret::new(secret),
        )
    };
    let provider = account(DEMO_APP_SECRET);
    let now = i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    )
    .unwrap();
    let ctx = |now_unix: i64| CallContext {
        now_unix,
        notify_url: "http://127.0.0.1:9/notify/t".into(),
    };
    let create = CreateOrder {
        order_no: OrderNo::new("SBX0001").unwrap(),
        amount: Fen(1234),
        channel: Channel::Alipay,
        subject: "测试".into(),
    };
    let build = |provider: &Yinqiantong, now_unix: i64| match provider
        .build_create(&create, &ctx(now_unix))
        .unwrap()
    {
        CreateStep::Server(request) => request,
        other => panic!("{other:?}"),
    };
    let send = |request: &qrtill::providers::HttpRequest| {
        let method = match request.method {
            qrtill::providers::Method::Get => "GET",
            qrtill::providers::Method::Post => "POST",
        };
        let (status, body) = http_with(
            method,
            &request.url,
            &request.headers,
            request.body.as_deref().unwrap_or_default(),
        );
        HttpResponse {
            status,
            body: body.into_bytes(),
        }
    };
    let code_of = |response: &HttpResponse| -> (i64, String) {
        let value: Value = serde_json::from_slice(&response.body).unwrap();
        (
            value["code"].as_i64().unwrap(),
            value["msg"].as_str().unwrap_or_default().to_string(),
        )
    };

    // Refused before anything is stored.
    let good = build(&provider, now);
    let mut tampered = good.clone();
    tampered.body = Some(
        String::from_utf8(good.body.clone().unwrap())
            .unwrap()
            .replace("1234", "1")
            .into_bytes(),
    );
    assert_eq!(
        code_of(&send(&tampered)).0,
        4403,
        "money changed after signing"
    );
    assert_eq!(
        code_of(&send(&build(&account("wrong"), now))).0,
        4403,
        "wrong secret"
    );
    let mut wrong_key = good.clone();
    wrong_key.headers[2].1 = "not-the-appkey".into();
    assert_eq!(code_of(&send(&wrong_key)).0, 4403);
    let mut no_sign = good.clone();
    no_sign.headers.retain(|(name, _)| name != "sign");
    assert_eq!(
        code_of(&send(&no_sign)),
        (4414, "缺少 header 参数: sign".to_string())
    );
    assert_eq!(
        code_of(&send(&build(&provider, now - 90_000))).0,
        4414,
        "stale ts"
    );
    let mut form = good.clone();
    form.headers[0].1 = "application/x-www-form-urlencoded".into();
    assert_eq!(code_of(&send(&form)).0, 4414);
    // A body without notify_url, and one with money as text, both correctly signed.
    let ts = now.to_string();
    for (body, message) in [
        (
            serde_json::json!({"channel": "wx", "platform": "h5", "money": 1,
                               "client_ip": "127.0.0.1"}),
            "缺少必填参数: notify_url",
        ),
        (
            serde_json::json!({"channel": "wx", "platform": "h5", "money": "1",
                               "client_ip": "127.0.0.1", "notify_url": "http://127.0.0.1:9/n"}),
            "money 必须是大于 0 的整数 (单位: 分)",
        ),
        (
            serde_json::json!({"channel": "qq", "platform": "h5", "money": 1,
                               "client_ip": "127.0.0.1", "notify_url": "http://127.0.0.1:9/n"}),
            "channel 错误: wx 微信, alipay 支付宝",
        ),
    ] {
        let map = body.as_object().unwrap();
        let sign = SignInput::Body { body: map, ts: &ts }.sign(&Secret::new(DEMO_APP_SECRET));
        let mut request = good.clone();
        request.headers[4].1 = sign;
        request.body = Some(body.to_string().into_bytes());
        assert_eq!(code_of(&send(&request)), (4414, message.to_string()));
    }

    // Accepted once, then the order number is taken.
    let outcome = provider.parse_create(&send(&good)).unwrap();
    assert!(outcome.payer_page.unwrap().contains("alipaysubmit"));
    assert_eq!(outcome.timeout_secs, Some(300));
    assert_eq!(
        provider.parse_create(&send(&good)),
        Err(ProviderError::Rejected {
            code: "4409".into(),
            message: "订单已存在: client_out_trade_no 重复 (订单已存在 / an order with this number exists already)".into(),
        })
    );

    // Query: found, not found, wrong signature.
    let order_ref = |no: &str| OrderRef {
        order_no: OrderNo::new(no).unwrap(),
        provider_order_id: None,
    };
    let found = provider
        .parse_query(&send(
            &provider
                .build_query(&order_ref("SBX0001"), &ctx(now))
                .unwrap(),
        ))
        .unwrap();
    let QueryOutcome::Report(report) = found else {
        panic!("{found:?}")
    };
    assert_eq!(report.raw_code, "0");
    assert_eq!(report.amount, Some(Fen(1234)));
    assert!(matches!(
        provider.parse_query(&send(
            &provider
                .build_query(&order_ref("SBX9999"), &ctx(now))
                .unwrap()
        )),
        Ok(QueryOutcome::NotFound { .. })
    ));
    let wrong = account("wrong");
    assert!(matches!(
        wrong.parse_query(&send(&wrong.build_query(&order_ref("SBX0001"), &ctx(now)).unwrap())),
        Err(ProviderError::Rejected { code, .. }) if code == "4403"
    ));
}
