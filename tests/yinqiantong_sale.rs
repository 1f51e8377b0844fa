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

mod common;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::Value;

use qrtill::sandbox::yinqiantong::DEMO_APP_SECRET;

use common::{
    Proc, Sale, bounded, expect_done, expect_paid, http, http_with, qrtill, start_budget,
    start_charge, status_json,
};

/// How long one wait may take: whatever is left of the test's budget (`common`'s, under the
/// 60 s every test must stay within) cuts it shorter.
const WAIT: Duration = Duration::from_secs(60);

/// The content type of the payer's form post.
const FORM: &str = "application/x-www-form-urlencoded";

/// Waits for a stderr line of `proc` containing `needle`, and returns that line.
fn stderr_until(proc: &mut Proc, needle: &str) -> String {
    let until = Instant::now() + bounded(WAIT);
    loop {
        if let Some(line) = proc.stderr_now().lines().find(|l| l.contains(needle)) {
            return line.to_string();
        }
        if Instant::now() >= until {
            proc.die(&format!("no `{needle}` on stderr"));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A running `qrtill sandbox`: its base URL and the config it printed.
struct SandboxProc {
    _proc: Proc,
    base: String,
    config: String,
}

fn sandbox() -> SandboxProc {
    let mut proc = Proc::spawn("sandbox", qrtill(&["sandbox", "--listen", "127.0.0.1:0"]));
    let first = proc.line(WAIT);
    let base = first
        .strip_prefix("qrtill sandbox listening on ")
        .unwrap_or_else(|| panic!("unexpected first line: {first}"))
        .trim()
        .to_string();
    while !proc.line(WAIT).starts_with("# A config for it") {}
    // The config is printed at once; it ends when the output goes quiet.
    let mut config = String::new();
    while let Ok(Some(line)) = proc.try_line(Duration::from_millis(500)) {
        config.push_str(&line);
        config.push('\n');
    }
    assert!(
        config.contains("id = \"demo-yinqiantong\""),
        "no yinqiantong section: is the binary another worktree's build (a shared target dir)?\n{config}"
    );
    SandboxProc {
        _proc: proc,
        base,
        config,
    }
}

/// A till using the sandbox's config, with `demo-yinqiantong` as its default provider.
struct Till {
    dir: tempfile::TempDir,
    config: PathBuf,
}

impl Till {
    fn new(config_text: &str) -> Till {
        let config_text: Vec<&str> = config_text
            .lines()
            .map(|line| {
                if line.starts_with("default_provider = ") {
                    "default_provider = \"demo-yinqiantong\""
                } else {
                    line
                }
            })
            .collect();
        let config_text = config_text.join("\n");
        assert!(
            config_text.contains("default_provider = \"demo-yinqiantong\""),
            "{config_text}"
        );
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("config.toml");
        std::fs::write(&config, config_text).unwrap();
        Till { dir, config }
    }

    /// `charge --amount 12.34 --channel CHANNEL --json`, read up to its QR.
    fn charge(&self, channel: &str) -> Sale {
        start_charge(&self.config, self.dir.path(), "12.34", channel)
    }

    fn status(&self, sale: &Sale) -> Value {
        status_json(&self.config, sale, DEMO_APP_SECRET)
    }
}

fn events_of(status: &Value) -> Vec<Value> {
    status["events"].as_array().cloned().unwrap_or_default()
}

/// `POST {base}/_sandbox/orders/{order_no}/{action}`, which must answer 200.
fn control(base: &str, order_no: &str, action: &str) {
    let (code, body) = http(
        "POST",
        &format!("{base}/_sandbox/orders/{order_no}/{action}"),
    );
    assert_eq!(code, 200, "{action}: {body}");
}

fn sim_state(base: &str, order_no: &str) -> String {
    let (code, body) = http("GET", &format!("{base}/_sandbox/orders"));
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
    start_budget();
    let sandbox = sandbox();
    // No listener: the notify cannot arrive, so only the query can find the payment.
    let config = sandbox.config.replace(
        "[listener]\nlisten = \"127.0.0.1:0\"",
        "[listener]\nenabled = false",
    );
    assert!(config.contains("enabled = false"), "{config}");
    let till = Till::new(&config);
    let mut sale = till.charge("wechat");
    let qr = sale.qr.clone();
    let order_no = sale.order_no.clone();
    assert_eq!(qr["provider"], "demo-yinqiantong");
    assert_eq!(qr["amount"], "12.34");
    assert_eq!(qr["payable"], "12.34");
    // h5 + WeChat: the QR is the provider's H5 link, for the payer's browser to open.
    let link = qr["qr"].as_str().unwrap();
    let prefix = format!("{}/yinqiantong/_pay/", sandbox.base);
    assert!(link.starts_with(&prefix), "{link}");
    assert!(link.contains("?prepay_id=wx"), "{link}");
    let (code, page) = http("GET", link);
    assert_eq!(code, 200);
    assert!(page.contains("¥12.34"), "{page}");
    // The payer pays in the wallet.
    control(&sandbox.base, &order_no, "pay");
    let done = expect_done(&mut sale.charge, &order_no);
    assert_eq!(done["status"], "paid", "{done}");
    assert_eq!(done["paid"], "12.34");
    assert_eq!(done["amount_mismatch"], false);
    assert_eq!(sale.charge.wait(), 0);

    let status = till.status(&sale);
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
    start_budget();
    let sandbox = sandbox();
    let till = Till::new(&sandbox.config);
    let mut sale = till.charge("alipay");
    let qr = sale.qr.clone();
    let order_no = sale.order_no.clone();
    // h5 + Alipay: the provider's answer is an HTML form; the QR is the till's bridge page.
    let bridge = qr["qr"].as_str().unwrap();
    assert!(
        bridge.starts_with("http://127.0.0.1:") && bridge.ends_with(&format!("/pay/{order_no}")),
        "{bridge}"
    );
    assert!(!bridge.starts_with(&sandbox.base), "{bridge}");
    let (code, page) = http("GET", bridge);
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
    let (code, wallet) = http_with("POST", action, Some(FORM), "total_amount=12.34");
    assert_eq!(code, 200);
    assert!(wallet.contains("¥12.34"), "{wallet}");
    control(&sandbox.base, &order_no, "pay");
    // `done` paid with 12.34, exit 0.
    expect_paid(&mut sale, "12.34", DEMO_APP_SECRET);

    let status = till.status(&sale);
    assert_eq!(status["status"], "paid", "{status}");
    // The notify was verified and recorded (the poll may rarely have seen "paid" first).
    let events = events_of(&status);
    let callback = events
        .iter()
        .find(|e| e["kind"] == "callback")
        .unwrap_or_else(|| panic!("no accepted notify in the log: {status}"));
    let detail = callback["detail"].as_str().unwrap_or_default();
    assert!(detail.contains("notify says paid (code 1)"), "{callback}");
    assert!(
        callback["raw"].as_str().unwrap().contains("\"money\":1234"),
        "{callback}"
    );
}

#[test]
fn forged_notify_changes_nothing() {
    start_budget();
    let sandbox = sandbox();
    let till = Till::new(&sandbox.config);
    let mut sale = till.charge("wechat");
    let order_no = sale.order_no.clone();
    // A forged notify claims the order paid in full, signed with the wrong secret.
    control(&sandbox.base, &order_no, "notify?forged=true");
    let refused = stderr_until(&mut sale.charge, "callback refused");
    assert!(refused.contains("signature does not match"), "{refused}");

    let status = till.status(&sale);
    assert_eq!(status["status"], "pending", "{status}");
    assert!(status["paid"].is_null(), "{status}");
    assert!(
        events_of(&status).iter().all(|e| e["kind"] != "callback"),
        "{status}"
    );
    assert_ne!(sim_state(&sandbox.base, &order_no), "Paid");
    // The order then ends unpaid the normal way.
    control(&sandbox.base, &order_no, "expire");
    let done = expect_done(&mut sale.charge, &order_no);
    assert_eq!(done["status"], "expired", "{done}");
    assert_eq!(sale.charge.wait(), 3);
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
    use qrtill::sandbox::yinqiantong::{DEMO_APPID, DEMO_APPKEY};
    use qrtill::secret::Secret;

    start_budget();
    let sandbox = sandbox();
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
    // The till's own HTTP client sends each request as built (every header as it is).
    let transport = qrtill::service::Transport::new(bounded(Duration::from_secs(10))).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let send = |request: &qrtill::providers::HttpRequest| -> HttpResponse {
        assert!(
            request.url.starts_with("http://127.0.0.1:"),
            "loopback only: {}",
            request.url
        );
        runtime.block_on(transport.send(request)).unwrap()
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
