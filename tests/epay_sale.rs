//! Whole 易支付 / epay sales through the `qrtill` binary against `qrtill sandbox`, as separate
//! processes on loopback. The test plays the payer and the platform: it reads the QR from
//! `charge --json` (the `qrcode` for Alipay, the `payurl` jump page for WeChat, which it opens
//! as the payer's browser would), tells the sandbox the order was paid, and the till finds
//! the payment by its notify or, with the listener off, only by `api.php?act=order`; `status`
//! then shows it paid. Also: a forged notify changes nothing; a `urlscheme`-only answer ends
//! the sale with a clear refusal; with `RUST_LOG=debug` the merchant key (which travels in
//! the query's URL) is nowhere in the till's output; and the simulator answers with the
//! platform's own codes and words.
//!
//! Every child process is killed by a drop guard; every wait is bounded (60 s per test).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::path::PathBuf;
use std::time::Duration;

use qrtill::providers::epay::transformers::SignInput;
use qrtill::sandbox::epay::{DEMO_KEY, DEMO_PID};
use qrtill::secret::Secret;
use serde_json::Value;

use common::{
    Proc, Sale, bounded, expect_done, expect_paid, http, http_with, qrtill, qrtill_with,
    start_budget, start_charge, status_json,
};

/// A running `qrtill sandbox` and a till config for its demo-epay account.
struct Setup {
    _sandbox: Proc,
    base: String,
    config: PathBuf,
    dir: tempfile::TempDir,
}

impl Setup {
    /// Starts the sandbox and writes the config it prints, with `demo-epay` as the default
    /// provider, the callback listener on or off, and `extra` lines in the epay section.
    fn start(listener: bool, extra: &str) -> Setup {
        start_budget();
        let dir = tempfile::tempdir().expect("temp dir");
        let mut sandbox = Proc::spawn(
            "qrtill sandbox",
            qrtill(&["sandbox", "--listen", "127.0.0.1:0"]),
        );
        let mut base = None;
        while base.is_none() {
            let line = sandbox.line(Duration::from_secs(20));
            if let Some(rest) = line.strip_prefix("qrtill sandbox listening on ") {
                base = Some(rest.trim().trim_end_matches('/').to_string());
            }
        }
        let base = base.unwrap();
        assert!(base.starts_with("http://127.0.0.1:"), "{base}");
        while !sandbox
            .line(Duration::from_secs(10))
            .starts_with("# A config for it")
        {}
        // The config is printed at once: a quiet spell after its first section ends it.
        let mut lines = Vec::new();
        loop {
            let wait = if lines.is_empty() {
                Duration::from_secs(10)
            } else {
                Duration::from_millis(500)
            };
            match sandbox.try_line(wait) {
                Ok(Some(line)) => lines.push(line),
                Err(()) if !lines.is_empty() => break,
                Err(()) => sandbox.die("no config after `# A config for it`"),
                Ok(None) => sandbox.die("stdout ended inside the config"),
            }
        }
        let mut config = lines.join("\n") + "\n";
        let key_line = format!("key = \"{DEMO_KEY}\"\n");
        assert!(
            config.contains("id = \"demo-epay\"") && config.contains(&key_line),
            "no demo-epay account: is the binary another worktree's build?\n{config}"
        );
        config = config.replacen(
            "default_provider = \"demo-ispay\"",
            "default_provider = \"demo-epay\"",
            1,
        );
        assert!(
            config.contains("default_provider = \"demo-epay\""),
            "{config}"
        );
        config = config.replacen(&key_line, &format!("{key_line}{extra}"), 1);
        if !listener {
            // Nobody receives the notify: the payment can only be found by query.
            config = config.replacen("[listener]\n", "[listener]\nenabled = false\n", 1);
            assert!(config.contains("enabled = false"), "{config}");
        }
        let path = dir.path().join("config.toml");
        std::fs::write(&path, config).expect("write config");
        Setup {
            _sandbox: sandbox,
            base,
            config: path,
            dir,
        }
    }

    /// `charge --amount 12.34 --channel CHANNEL --json`, up to its QR.
    fn sale(&self, channel: &str) -> Sale {
        let sale = start_charge(&self.config, self.dir.path(), "12.34", channel);
        assert_eq!(sale.qr["provider"], "demo-epay", "{}", sale.qr);
        assert_eq!(sale.qr["amount"], "12.34", "{}", sale.qr);
        sale
    }

    /// `POST {base}/_sandbox/{path}` must answer 200 `ok`.
    fn control(&self, path: &str) {
        let url = format!("{}/_sandbox/{path}", self.base);
        let (status, body) = http("POST", &url);
        assert_eq!((status, body.as_str()), (200, "ok"), "POST {url}");
    }

    /// The sandbox's record of an order.
    fn sim_order(&self, order_no: &str) -> Value {
        let (status, body) = http("GET", &format!("{}/_sandbox/orders", self.base));
        assert_eq!(status, 200, "{body}");
        let orders: Value = serde_json::from_str(&body).unwrap();
        orders
            .as_array()
            .unwrap()
            .iter()
            .find(|o| o["order_no"] == order_no)
            .cloned()
            .unwrap_or_else(|| panic!("the sandbox has no order {order_no}: {body}"))
    }

    /// Waits (bounded) until the till has queried the order once more, so that the next
    /// query is about a second away.
    fn just_after_a_query(&self, order_no: &str) {
        let before = self.sim_order(order_no)["queries"].as_u64().unwrap();
        let until = std::time::Instant::now() + bounded(Duration::from_secs(10));
        while self.sim_order(order_no)["queries"].as_u64().unwrap() == before {
            assert!(
                std::time::Instant::now() < until,
                "the till stopped querying"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// The ledger event that moved the order to paid.
fn paid_event(status: &Value) -> Value {
    status["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["to"] == "paid")
        .cloned()
        .unwrap_or_else(|| panic!("no event made the order paid: {status}"))
}

/// A callback that changed the order (a refused one is logged with no new state).
fn has_accepted_callback_event(status: &Value) -> bool {
    status["events"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["kind"] == "callback" && !e["to"].is_null())
}

#[test]
fn alipay_qrcode_sale_found_by_the_notify() {
    let setup = Setup::start(true, "");
    let mut sale = setup.sale("alipay");
    // Alipay: the platform's `qrcode`, read by the wallet itself.
    let qr = sale.qr["qr"].as_str().unwrap().to_string();
    assert!(qr.starts_with("qrtill-demo://epay/"), "{qr}");
    assert_eq!(sale.qr["browser_needed"], false, "{}", sale.qr);
    // Paid right after one of the till's queries: the notify (sent at once) tells it.
    setup.just_after_a_query(&sale.order_no);
    setup.control(&format!("orders/{}/pay", sale.order_no));
    expect_paid(&mut sale, "12.34", DEMO_KEY);

    let status = status_json(&setup.config, &sale, DEMO_KEY);
    assert_eq!(status["status"], "paid", "{status}");
    assert_eq!(status["provider_kind"], "epay");
    assert_eq!(status["paid"], "12.34");
    let paid = paid_event(&status);
    assert_eq!(paid["kind"], "callback", "{status}");
    let raw = paid["raw"].as_str().unwrap();
    assert!(raw.starts_with("GET"), "{raw}");
    assert!(raw.contains("trade_status=TRADE_SUCCESS"), "{raw}");
    assert!(
        raw.contains("money=12.34") && raw.contains("sign="),
        "{raw}"
    );
    assert!(!raw.contains(DEMO_KEY), "{raw}");
    // The platform's trade number came with the create answer.
    assert!(status["provider_order_id"].is_string(), "{status}");
}

#[test]
fn wechat_payurl_sale_found_only_by_the_query() {
    let setup = Setup::start(false, "");
    let mut sale = setup.sale("wechat");
    // WeChat on `device=pc`: the platform's jump page, which the payer's browser opens.
    assert_eq!(sale.qr["browser_needed"], true, "{}", sale.qr);
    let payurl = sale.qr["qr"].as_str().unwrap().to_string();
    assert!(
        payurl.starts_with(&format!("{}/epay/pay/", setup.base)),
        "{payurl}"
    );
    let (status, page) = http("GET", &payurl);
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("¥12.34"), "{page}");
    setup.control(&format!("orders/{}/pay", sale.order_no));
    expect_paid(&mut sale, "12.34", DEMO_KEY);

    let status = status_json(&setup.config, &sale, DEMO_KEY);
    assert_eq!(status["status"], "paid", "{status}");
    assert_eq!(status["channel"], "wechat");
    let paid = paid_event(&status);
    assert_eq!(paid["kind"], "query", "{status}");
    let raw = paid["raw"].as_str().unwrap();
    assert!(raw.contains("\"status\":1"), "{raw}");
    assert!(!has_accepted_callback_event(&status), "{status}");
    assert!(
        setup.sim_order(&sale.order_no)["queries"].as_u64().unwrap() >= 1,
        "the sandbox saw no query"
    );
}

#[test]
fn forged_notify_changes_nothing() {
    let setup = Setup::start(true, "");
    let mut sale = setup.sale("alipay");
    setup.control(&format!("orders/{}/notify?forged=true", sale.order_no));
    // The till answers it (`fail`) …
    let until = std::time::Instant::now() + bounded(Duration::from_secs(10));
    loop {
        let (_, body) = http("GET", &format!("{}/_sandbox/notifies", setup.base));
        let notifies: Value = serde_json::from_str(&body).unwrap();
        let answered = notifies.as_array().unwrap().iter().any(|n| {
            n["order_no"] == sale.order_no.as_str() && n["forged"] == true && n["status"] == 200
        });
        if answered {
            break;
        }
        assert!(
            std::time::Instant::now() < until,
            "the forged notify never reached the till: {body}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // … and nothing changes: no line from charge, the order is pending, no callback event.
    assert!(
        sale.charge.try_line(Duration::from_millis(1500)).is_err(),
        "charge printed something after a forged notify: {:?}",
        sale.charge.seen.last()
    );
    let stderr = sale.charge.stderr_now();
    assert!(
        stderr.contains("callback refused") && stderr.contains("signature does not match"),
        "{stderr}"
    );
    let status = status_json(&setup.config, &sale, DEMO_KEY);
    assert_eq!(status["status"], "pending", "{status}");
    assert!(status["paid"].is_null(), "{status}");
    assert!(!has_accepted_callback_event(&status), "{status}");
    // The refusal is in the order's log with the forged notify as it came, for staff.
    assert!(
        status["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["kind"] == "callback"
                && e["detail"].as_str().unwrap().contains("refused")
                && e["raw"].as_str().unwrap().contains("TRADE_SUCCESS")),
        "{status}"
    );

    // The order is still alive: a real payment ends the sale.
    setup.control(&format!("orders/{}/pay", sale.order_no));
    expect_paid(&mut sale, "12.34", DEMO_KEY);
}

#[test]
fn urlscheme_only_answer_ends_the_sale_with_a_clear_refusal() {
    // WeChat on `device=mobile`: the sandbox answers with a mini-program scheme only.
    let setup = Setup::start(true, "device = \"mobile\"\n");
    let data = setup.dir.path().join("data-urlscheme");
    std::fs::create_dir_all(&data).unwrap();
    let mut charge = Proc::spawn(
        "qrtill charge",
        qrtill_with(
            &setup.config,
            &data,
            &[
                "charge",
                "--amount",
                "12.34",
                "--channel",
                "wechat",
                "--json",
            ],
        ),
    );
    let first: Value = serde_json::from_str(&charge.line(Duration::from_secs(20))).unwrap();
    let order_no = first["order_no"].as_str().unwrap().to_string();
    let done = expect_done(&mut charge, &order_no);
    assert_eq!(done["status"], "failed", "{done}");
    let message = done["message"].as_str().unwrap();
    assert!(
        message.contains("mini-program") && message.contains("urlscheme"),
        "{message}"
    );
    assert!(
        !charge
            .seen
            .iter()
            .any(|line| line.contains("\"event\":\"qr\"")),
        "a QR was shown: {:?}",
        charge.seen
    );
    assert_eq!(charge.wait(), 3, "exit code of an unpaid sale");
}

#[test]
fn the_merchant_key_is_never_logged_even_at_debug() {
    // No listener: the till polls `api.php?act=order&…&key=…` until the sale is paid.
    let setup = Setup::start(false, "");
    let data = setup.dir.path().join("data-debug");
    std::fs::create_dir_all(&data).unwrap();
    let mut cmd = qrtill_with(
        &setup.config,
        &data,
        &[
            "charge",
            "--amount",
            "12.34",
            "--channel",
            "alipay",
            "--provider",
            "demo-epay",
            "--json",
        ],
    );
    cmd.env("RUST_LOG", "debug");
    let mut charge = Proc::spawn("qrtill charge (debug)", cmd);
    let qr = charge.event_of("qr", Duration::from_secs(20));
    let order_no = qr["order_no"].as_str().unwrap().to_string();
    setup.just_after_a_query(&order_no);
    setup.just_after_a_query(&order_no);
    setup.control(&format!("orders/{order_no}/pay"));
    let mut sale = Sale {
        charge,
        order_no,
        qr,
        data,
    };
    // Paid, exit 0, and the key neither on stdout nor on stderr.
    expect_paid(&mut sale, "12.34", DEMO_KEY);
    let stderr = sale.charge.stderr_text();
    // The query URLs were logged, masked.
    assert!(
        stderr.contains("/epay/api.php?act=order&pid=1001&key=***&out_trade_no="),
        "no masked query URL in the debug log:\n{stderr}"
    );
    assert!(stderr.contains("/epay/mapi.php"), "{stderr}");
    let _ = status_json(&setup.config, &sale, DEMO_KEY);
}

// ---------------------------------------------------------------------------------------------
// The simulator itself

/// A `mapi.php` form for the sandbox: `fields` signed with the demo key unless `sign` is
/// given; `sign_type=MD5` is added.
fn mapi_form(fields: &[(&str, &str)], sign: Option<&str>) -> String {
    let params: Vec<(String, String)> = fields
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let computed = SignInput::Received { params: &params }.sign(&Secret::new(DEMO_KEY));
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(fields)
        .append_pair("sign", sign.unwrap_or(&computed))
        .append_pair("sign_type", "MD5")
        .finish()
}

fn good_fields<'a>(out_trade_no: &'a str, pay_type: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("pid", DEMO_PID),
        ("type", pay_type),
        ("out_trade_no", out_trade_no),
        ("notify_url", "http://127.0.0.1:9/notify/x"),
        ("name", "VIP会员"),
        ("money", "1.00"),
        ("clientip", "192.168.1.100"),
        ("device", "pc"),
    ]
}

fn with<'a>(fields: &[(&'a str, &'a str)], name: &str, value: &'a str) -> Vec<(&'a str, &'a str)> {
    fields
        .iter()
        .map(|&(k, v)| if k == name { (k, value) } else { (k, v) })
        .collect()
}

fn post_mapi(setup: &Setup, form: &str) -> Value {
    let (status, body) = http_with(
        "POST",
        &format!("{}/epay/mapi.php", setup.base),
        Some("application/x-www-form-urlencoded"),
        form,
    );
    assert_eq!(status, 200, "{body}");
    serde_json::from_str(&body).unwrap_or_else(|err| panic!("{err}: {body}"))
}

fn api(setup: &Setup, query: &str) -> Value {
    let (status, body) = http("GET", &format!("{}/epay/api.php?{query}", setup.base));
    assert_eq!(status, 200, "{body}");
    serde_json::from_str(&body).unwrap_or_else(|err| panic!("{err}: {body}"))
}

#[test]
fn sandbox_answers_with_the_platforms_codes() {
    let setup = Setup::start(true, "");
    let good = good_fields("SIM-1", "alipay");
    let bad_sign = "0123456789abcdef0123456789abcdef";
    let cases: Vec<(String, &str)> = vec![
        (mapi_form(&with(&good, "pid", "9999"), None), "PID不存在"),
        (
            mapi_form(&good, Some(bad_sign)),
            "签名校验失败，请返回重试！",
        ),
        (mapi_form(&good, Some("")), "签名校验失败，请返回重试！"),
        (
            mapi_form(&good, None).replace("sign_type=MD5", "sign_type=RSA"),
            "签名类型(sign_type)不支持",
        ),
        (
            mapi_form(&with(&good, "out_trade_no", ""), None),
            "订单号(out_trade_no)不能为空",
        ),
        (
            mapi_form(&with(&good, "notify_url", ""), None),
            "通知地址(notify_url)不能为空",
        ),
        (
            mapi_form(&with(&good, "name", ""), None),
            "商品名称(name)不能为空",
        ),
        (
            mapi_form(&with(&good, "money", ""), None),
            "金额(money)不能为空",
        ),
        (mapi_form(&with(&good, "money", "0.00"), None), "金额不合法"),
        (
            mapi_form(&with(&good, "money", "1.005"), None),
            "金额不合法",
        ),
        (
            mapi_form(&with(&good, "clientip", ""), None),
            "用户IP地址(clientip)不能为空",
        ),
        (
            mapi_form(&with(&good, "out_trade_no", "A B"), None),
            "订单号(out_trade_no)格式不正确",
        ),
        (
            mapi_form(&with(&good, "type", "bank"), None),
            "支付方式(type)不存在",
        ),
        (
            mapi_form(&with(&good, "device", "tv"), None),
            "设备类型(device)不支持",
        ),
    ];
    for (form, msg) in cases {
        let answer = post_mapi(&setup, &form);
        assert_eq!(answer["code"], -1, "{form}: {answer}");
        assert_eq!(answer["msg"], msg, "{form}: {answer}");
    }
    // Not a form: no fields, so no merchant id.
    let (_, body) = http("POST", &format!("{}/epay/mapi.php", setup.base));
    assert!(body.contains("PID不存在"), "{body}");

    // Good creates: a `qrcode` for Alipay, a `payurl` for WeChat on pc, only a `urlscheme`
    // for WeChat on mobile. An unsigned extra field breaks the signature; a signed one does
    // not.
    let answer = post_mapi(&setup, &mapi_form(&good, None));
    assert_eq!(answer["code"], 1, "{answer}");
    assert!(answer["trade_no"].is_string(), "{answer}");
    assert!(
        answer["qrcode"]
            .as_str()
            .unwrap()
            .starts_with("qrtill-demo://epay/")
    );
    let wechat = good_fields("SIM-2", "wxpay");
    let answer = post_mapi(&setup, &mapi_form(&wechat, None));
    assert!(
        answer["payurl"]
            .as_str()
            .unwrap()
            .starts_with(&format!("{}/epay/pay/", setup.base)),
        "{answer}"
    );
    assert!(answer.get("qrcode").is_none(), "{answer}");
    let answer = post_mapi(
        &setup,
        &mapi_form(
            &with(&good_fields("SIM-3", "wxpay"), "device", "mobile"),
            None,
        ),
    );
    assert!(
        answer["urlscheme"]
            .as_str()
            .unwrap()
            .starts_with("weixin://"),
        "{answer}"
    );
    let mut extra = good_fields("SIM-4", "qqpay");
    extra.push(("param", "echo"));
    assert_eq!(post_mapi(&setup, &mapi_form(&extra, None))["code"], 1);
    let unsigned = mapi_form(&good_fields("SIM-5", "qqpay"), None) + "&param=added";
    assert_eq!(
        post_mapi(&setup, &unsigned)["msg"],
        "签名校验失败，请返回重试！"
    );
    // The same order number again.
    assert_eq!(
        post_mapi(&setup, &mapi_form(&good, None))["msg"],
        "订单号(out_trade_no)已存在"
    );

    // The query: the original api.php's codes and words.
    let query = |pid: &str, key: &str, no: &str| {
        url::form_urlencoded::Serializer::new(String::new())
            .append_pair("act", "order")
            .append_pair("pid", pid)
            .append_pair("key", key)
            .append_pair("out_trade_no", no)
            .finish()
    };
    let no_act = api(&setup, "act=orders&pid=1001");
    assert_eq!(
        (no_act["code"].as_i64(), no_act["msg"].as_str()),
        (Some(-5), Some("No Act!"))
    );
    let bad_pid = api(&setup, &query("9999", DEMO_KEY, "SIM-1"));
    assert_eq!(
        (bad_pid["code"].as_i64(), bad_pid["msg"].as_str()),
        (Some(-3), Some("PID不存在"))
    );
    let bad_key = api(&setup, &query(DEMO_PID, "wrong", "SIM-1"));
    assert_eq!(
        (bad_key["code"].as_i64(), bad_key["msg"].as_str()),
        (Some(-2), Some("KEY校验失败"))
    );
    let upper_key = api(
        &setup,
        &query(DEMO_PID, &DEMO_KEY.to_ascii_uppercase(), "SIM-1"),
    );
    assert_eq!(
        upper_key["code"], -2,
        "keys are case-sensitive: {upper_key}"
    );
    let missing = api(&setup, &query(DEMO_PID, DEMO_KEY, "NO-SUCH"));
    assert_eq!(
        (missing["code"].as_i64(), missing["msg"].as_str()),
        (Some(-1), Some("订单号不存在"))
    );
    let open = api(&setup, &query(DEMO_PID, DEMO_KEY, "SIM-1"));
    assert_eq!(open["code"], 1, "{open}");
    assert_eq!(open["status"], 0, "{open}");
    assert_eq!(open["money"], "1.00");
    assert_eq!(open["type"], "alipay");
    assert_eq!(open["name"], "VIP会员");
    assert_eq!(open["out_trade_no"], "SIM-1");
    // Expired or cancelled is still "unpaid" to epay; paid is 1.
    setup.control("orders/SIM-1/expire");
    assert_eq!(
        api(&setup, &query(DEMO_PID, DEMO_KEY, "SIM-1"))["status"],
        0
    );
    setup.control("orders/SIM-1/pay");
    let paid = api(&setup, &query(DEMO_PID, DEMO_KEY, "SIM-1"));
    assert_eq!(paid["status"], 1, "{paid}");
    assert!(!paid["endtime"].as_str().unwrap().is_empty(), "{paid}");
    // The jump page.
    let (status, page) = http("GET", &format!("{}/epay/pay/no-such", setup.base));
    assert_eq!(status, 200);
    assert!(page.contains("订单号不存在"), "{page}");
}
