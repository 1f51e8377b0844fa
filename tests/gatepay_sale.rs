//! Full gatepay.io sales through the `qrtill` binary against `qrtill sandbox`, as separate
//! processes on loopback: the till learns of the payment by the listener's notify, or (with
//! the listener off) only by querying `/api/order/check`; and a forged notify changes
//! nothing. The test plays the payer: it opens the QR's `pay_url` (gatepay's hosted page) and
//! then tells the sandbox the order was paid. One more test checks that the simulator
//! itself answers with the seed's codes and words (101–106, 109, 199, 201–203, query 201).
//!
//! The processes, the HTTP client and the time budget are `tests/common`'s: every child
//! process is killed by a guard; every wait is bounded (60 s per test at most).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use qrtill::providers::gatepay::transformers::SignInput;
use qrtill::sandbox::gatepay::{DEMO_APPKEY, DEMO_APPSECRET};
use qrtill::secret::Secret;
use serde_json::Value;

use common::{
    Proc, Sale, bounded, expect_paid, http, http_with, qrtill, start_budget, start_charge,
};

/// The content type of the create forms.
const FORM: &str = "application/x-www-form-urlencoded";

/// A sandbox process and a till config pointing at it.
struct Rig {
    _sandbox: Proc,
    base: String,
    dir: tempfile::TempDir,
    config: PathBuf,
}

impl Rig {
    /// Starts the test's time budget and `qrtill sandbox`, and writes the config it prints
    /// (with the listener on or off).
    fn start(listener: bool) -> Rig {
        start_budget();
        let dir = tempfile::tempdir().unwrap();
        let mut sandbox = Proc::spawn(
            "qrtill sandbox",
            qrtill(&["sandbox", "--listen", "127.0.0.1:0"]),
        );
        // The config follows the line `# A config for it …` and ends when the output stops
        // (the sandbox then waits for Ctrl-C).
        let mut base = None;
        let mut config = None::<String>;
        loop {
            let wait = if config.is_some() {
                Duration::from_millis(700)
            } else {
                Duration::from_secs(60)
            };
            match sandbox.try_line(wait) {
                Ok(Some(line)) => {
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
                Err(()) if config.is_some() => break,
                Err(()) => sandbox.die("the sandbox printed no config in time"),
                Ok(None) => sandbox.die("the sandbox's output ended before its config"),
            }
        }
        let base = base.expect("the sandbox's URL");
        let mut config = config.unwrap();
        assert!(
            config.contains("id = \"demo-gatepay\""),
            "the sandbox's config has no demo-gatepay account:\n{config}"
        );
        // `charge` takes the default account.
        let default = config
            .lines()
            .find(|line| line.starts_with("default_provider = "))
            .expect("the sandbox's config names a default account")
            .to_string();
        config = config.replacen(&default, "default_provider = \"demo-gatepay\"", 1);
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
        }
    }

    /// Starts `qrtill charge --amount 12.34 --json` (the demo-gatepay account) and reads up
    /// to its QR.
    fn charge(&self, channel: &str) -> Sale {
        start_charge(&self.config, self.dir.path(), "12.34", channel)
    }

    /// `qrtill status ORDER_NO --json` of a sale, bounded.
    fn status(&self, sale: &Sale) -> Value {
        common::status_json(&self.config, sale, DEMO_APPSECRET)
    }

    /// A control call to the sandbox.
    fn control(&self, path: &str) -> (u16, String) {
        http("POST", &format!("{}/_sandbox/{path}", self.base))
    }
}

/// Ends a paid sale (`done` last, exit 0, the secret printed nowhere); returns its `done`.
fn expect_paid_done(sale: &mut Sale) -> Value {
    expect_paid(sale, "12.34", DEMO_APPSECRET);
    serde_json::from_str(sale.charge.seen.last().unwrap()).unwrap()
}

/// Asserts that charge printed no line for `wait`.
fn quiet_for(charge: &mut Proc, wait: Duration) {
    match charge.try_line(wait) {
        Err(()) => {}
        // A status line that repeats "pending" would be harmless, but none is expected.
        Ok(Some(line)) => {
            panic!("charge printed something while nothing should change: {line}")
        }
        Ok(None) => charge.die("charge stopped"),
    }
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
    let (status, page) = http("GET", pay_url);
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
    let mut sale = rig.charge("alipay");
    // Paid right away: the till's first query is 2 s after the create, so the notify (sent at
    // once) is what tells it.
    let order_no = pay_as_the_payer(&rig, &sale.qr, "alipay");
    let done = expect_paid_done(&mut sale);
    assert_done_paid(&done, &order_no);

    let status = rig.status(&sale);
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
    let mut sale = rig.charge("wechat");
    let order_no = pay_as_the_payer(&rig, &sale.qr, "wechat");
    let done = expect_paid_done(&mut sale);
    assert_done_paid(&done, &order_no);

    let status = rig.status(&sale);
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
    let (code, orders) = http("GET", &format!("{}/_sandbox/orders", rig.base));
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
    let mut sale = rig.charge("alipay");
    let order_no = sale.order_no.clone();

    let (code, body) = rig.control(&format!("orders/{order_no}/notify?forged=true"));
    assert_eq!((code, body.as_str()), (200, "ok"));
    // The till refuses it (its log says why) …
    let deadline = Instant::now() + bounded(Duration::from_secs(60));
    while !sale.charge.stderr_now().contains("callback refused") {
        assert!(
            Instant::now() < deadline,
            "the forged notify never reached the till; its log:\n{}",
            sale.charge.stderr_now()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        sale.charge
            .stderr_now()
            .contains("signature does not match"),
        "{}",
        sale.charge.stderr_now()
    );
    // … and nothing changes: no line from charge, the order is still pending, no callback
    // event in the ledger.
    quiet_for(&mut sale.charge, Duration::from_millis(1500));
    let status = rig.status(&sale);
    assert_eq!(status["status"], "pending", "{status}");
    assert!(status["paid"].is_null(), "{status}");
    assert!(
        !status["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["kind"] == "callback" && !e["to"].is_null()),
        "{status}"
    );

    // The order is still alive: a real payment ends the sale.
    let order_no = pay_as_the_payer(&rig, &sale.qr, "alipay");
    let done = expect_paid_done(&mut sale);
    assert_done_paid(&done, &order_no);
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
        let (status, body) = http_with("POST", url, Some(FORM), form);
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
    let (_, body) = http("POST", &anypay);
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
    let (status, png) = http("GET", answer["data"]["qrcode_url"].as_str().unwrap());
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
