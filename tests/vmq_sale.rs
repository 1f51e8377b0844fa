//! Whole V免签 (vmq) sales through the `qrtill` binary against `qrtill sandbox`, as separate
//! processes on loopback: `charge --provider demo-vmq --json` shows the QR (`payUrl`) and
//! the amount to pay (`reallyPrice`), the test pays through the sandbox's control API as the
//! customer and the monitor phone would, and the till learns of it by the notify or (with the
//! listener off) only by `getOrder`; `status` then shows it paid. Also: a second order for
//! the same amount, open at the same time, is nudged one fen up and that amount is what the
//! till asks for and records; with the monitor phone offline the till refuses to charge
//! (exit 1, an `error` event in words, nothing sent to the server); a forged notify changes
//! nothing; and the simulator answers with the PHP server's own words.
//!
//! Every child process is killed by a guard; every wait is bounded (60 s per test at most).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

#[allow(
    dead_code,
    reason = "`start_charge` charges the default provider; these sales name demo-vmq"
)]
mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use qrtill::providers::vmq::transformers::SignInput;
use qrtill::sandbox::vmq::DEMO_KEY;
use qrtill::secret::Secret;
use serde_json::Value;

use common::{
    FRESH_SALE_RESUMED, Proc, Sale, expect_paid, http, http_with, qrtill, qrtill_with,
    start_budget, status_json,
};

// ---------------------------------------------------------------------------------------------
// The sandbox and the till

/// A running `qrtill sandbox` and the config it printed, saved in a temporary folder.
struct Rig {
    _sandbox: Proc,
    base: String,
    config: PathBuf,
    dir: tempfile::TempDir,
}

impl Rig {
    /// Starts the sandbox and writes its config (with the till's listener on or off).
    fn start(listener: bool) -> Rig {
        start_budget();
        let dir = tempfile::tempdir().expect("temp dir");
        let mut sandbox = Proc::spawn(
            "qrtill sandbox",
            qrtill(&["sandbox", "--listen", "127.0.0.1:0"]),
        );
        let mut base = None;
        while base.is_none() {
            let line = sandbox.line(Duration::from_secs(20));
            if let Some(rest) = line.split("listening on ").nth(1) {
                base = Some(rest.trim().trim_end_matches('/').to_string());
            }
        }
        let base = base.unwrap();
        assert!(base.starts_with("http://127.0.0.1:"), "{base}");
        while !sandbox
            .line(Duration::from_secs(10))
            .starts_with("# A config for it")
        {}
        // The config is printed at once: a quiet spell after its first provider ends it.
        let mut lines = Vec::new();
        loop {
            let seen_provider = lines.iter().any(|l: &String| l.trim() == "[[provider]]");
            let wait = Duration::from_millis(if seen_provider { 500 } else { 10_000 });
            match sandbox.try_line(wait) {
                Ok(Some(line)) => lines.push(line),
                Err(()) if seen_provider => break,
                _ => sandbox.die("no complete config printed"),
            }
        }
        let mut config = lines.join("\n") + "\n";
        assert!(
            config.contains("id = \"demo-vmq\"") && config.contains("kind = \"vmq\""),
            "no demo-vmq account in the sandbox's config:\n{config}"
        );
        if !listener {
            // Nobody receives the notify: the payment can only be found by getOrder.
            config = config.replacen("[listener]\n", "[listener]\nenabled = false\n", 1);
            assert!(config.contains("enabled = false"), "{config}");
        }
        let path = dir.path().join("config.toml");
        std::fs::write(&path, config).unwrap();
        Rig {
            _sandbox: sandbox,
            base,
            config: path,
            dir,
        }
    }

    /// A data folder not used yet.
    fn data_dir(&self) -> PathBuf {
        let data = (1..)
            .map(|n| self.dir.path().join(format!("data-{n}")))
            .find(|d| !d.exists())
            .unwrap();
        std::fs::create_dir_all(&data).unwrap();
        data
    }

    /// Starts `charge --amount AMOUNT --channel CHANNEL --provider demo-vmq --json`.
    fn charge_process(&self, data: &Path, amount: &str, channel: &str) -> Proc {
        Proc::spawn(
            "qrtill charge",
            qrtill_with(
                &self.config,
                data,
                &[
                    "charge",
                    "--amount",
                    amount,
                    "--channel",
                    channel,
                    "--provider",
                    "demo-vmq",
                    "--json",
                ],
            ),
        )
    }

    /// Starts a sale and reads up to its QR, which must ask for `payable`.
    fn sale(&self, amount: &str, channel: &str, payable: &str) -> Sale {
        let data = self.data_dir();
        let mut charge = self.charge_process(&data, amount, channel);
        let qr = charge.event_of("qr", Duration::from_secs(20));
        if charge.stderr_now().contains(FRESH_SALE_RESUMED) {
            charge.die("a fresh sale was resumed as a leftover order");
        }
        assert_eq!(qr["provider"], "demo-vmq", "{qr}");
        assert_eq!(qr["channel"], channel, "{qr}");
        assert_eq!(qr["amount"], amount, "{qr}");
        assert_eq!(
            qr["payable"], payable,
            "the QR must ask for reallyPrice: {qr}"
        );
        // The QR is payUrl, rendered locally (not a picture).
        assert!(qr["qr_image_base64"].is_null(), "{qr}");
        let text = qr["qr"].as_str().unwrap();
        assert!(
            text.starts_with(&format!("qrtill-demo://vmq/{channel}/")),
            "{text}"
        );
        let order_no = qr["order_no"].as_str().unwrap().to_string();
        Sale {
            charge,
            order_no,
            qr,
            data,
        }
    }

    /// A control call to the sandbox: must answer 200 `ok`.
    fn control(&self, path: &str) {
        let (status, body) = http("POST", &format!("{}/_sandbox/{path}", self.base));
        assert_eq!((status, body.as_str()), (200, "ok"), "POST {path}");
    }

    /// The sandbox's record of an order.
    fn sim_order(&self, order_no: &str) -> Value {
        self.sim_orders()
            .into_iter()
            .find(|o| o["order_no"] == order_no)
            .unwrap_or_else(|| panic!("the sandbox has no order {order_no}"))
    }

    fn sim_orders(&self) -> Vec<Value> {
        let (status, body) = http("GET", &format!("{}/_sandbox/orders", self.base));
        assert_eq!(status, 200, "{body}");
        serde_json::from_str::<Value>(&body)
            .unwrap()
            .as_array()
            .unwrap()
            .clone()
    }

    /// `status ORDER_NO --json` of a sale.
    fn status(&self, sale: &Sale) -> Value {
        status_json(&self.config, sale, DEMO_KEY)
    }
}

/// The event that moved an order to paid.
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
fn has_callback(status: &Value) -> bool {
    status["events"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["kind"] == "callback" && !e["to"].is_null())
}

// ---------------------------------------------------------------------------------------------
// Sales

#[test]
fn sale_paid_by_the_notify() {
    let rig = Rig::start(true);
    let mut sale = rig.sale("12.34", "alipay", "12.34");
    // Paid at once: the notify (sent as the payment arrives) races the first getOrder.
    rig.control(&format!("orders/{}/pay", sale.order_no));
    expect_paid(&mut sale, "12.34", DEMO_KEY);

    let status = rig.status(&sale);
    assert_eq!(status["status"], "paid", "{status}");
    assert_eq!(status["provider_kind"], "vmq");
    assert_eq!(status["paid"], "12.34");
    assert_eq!(status["amount_mismatch"], false);
    // The ledger keeps V免签's own order id, from the create answer.
    let vmq_id = rig.sim_order(&sale.order_no)["id"].clone();
    assert_eq!(status["provider_order_id"], vmq_id, "{status}");
    // Whichever came first, the notify was delivered to the till's listener.
    let until = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, body) = http("GET", &format!("{}/_sandbox/notifies", rig.base));
        let notifies: Value = serde_json::from_str(&body).unwrap();
        if notifies
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n["order_no"] == sale.order_no.as_str() && n["status"] == 200)
        {
            break;
        }
        assert!(Instant::now() < until, "no notify delivered: {notifies}");
        std::thread::sleep(Duration::from_millis(50));
    }
    if paid_event(&status)["kind"] == "callback" {
        // The raw notify is kept, amounts as the PHP server prints them.
        let raw = paid_event(&status)["raw"].as_str().unwrap().to_string();
        assert!(raw.starts_with("GET"), "{raw}");
        assert!(raw.contains(&format!("payId={}", sale.order_no)), "{raw}");
        assert!(
            raw.contains("price=12.34") && raw.contains("reallyPrice=12.34"),
            "{raw}"
        );
    }
}

#[test]
fn sale_paid_found_only_by_get_order() {
    let rig = Rig::start(false);
    let mut sale = rig.sale("12.34", "wechat", "12.34");
    rig.control(&format!("orders/{}/pay", sale.order_no));
    expect_paid(&mut sale, "12.34", DEMO_KEY);

    let status = rig.status(&sale);
    assert_eq!(status["status"], "paid", "{status}");
    assert_eq!(status["channel"], "wechat");
    let paid = paid_event(&status);
    assert_eq!(paid["kind"], "query", "{status}");
    let raw = paid["raw"].as_str().unwrap();
    assert!(
        raw.contains("\"state\":\"1\"") && raw.contains("\"reallyPrice\":\"12.34\""),
        "{raw}"
    );
    assert!(!has_callback(&status), "{status}");
    assert!(
        rig.sim_order(&sale.order_no)["queries"].as_u64().unwrap() >= 1,
        "the till asked getOrder"
    );
}

#[test]
fn second_order_for_the_same_amount_is_nudged() {
    let rig = Rig::start(true);
    let mut first = rig.sale("12.34", "alipay", "12.34");
    // Open at the same time, same amount, same wallet: the server asks for one fen more so
    // that the payments can be told apart.
    let mut second = rig.sale("12.34", "alipay", "12.35");
    assert_eq!(rig.sim_order(&second.order_no)["payable"], "12.35");
    assert_ne!(
        first.qr["qr"], second.qr["qr"],
        "each order has its own payUrl"
    );
    // Another wallet has its own slots.
    let mut third = rig.sale("12.34", "wechat", "12.34");

    // The customer pays what the QR screen asked for.
    rig.control(&format!("orders/{}/pay", second.order_no));
    expect_paid(&mut second, "12.35", DEMO_KEY);
    let status = rig.status(&second);
    assert_eq!(status["status"], "paid", "{status}");
    assert_eq!(status["amount"], "12.34");
    assert_eq!(status["payable"], "12.35");
    assert_eq!(status["paid"], "12.35");
    // Paying the amount asked for is no mismatch.
    assert_eq!(status["amount_mismatch"], false, "{status}");

    for (sale, amount) in [(&mut first, "12.34"), (&mut third, "12.34")] {
        rig.control(&format!("orders/{}/pay", sale.order_no));
        expect_paid(sale, amount, DEMO_KEY);
    }
}

#[test]
fn monitor_offline_refuses_to_charge() {
    let rig = Rig::start(true);
    rig.control("vmq/monitor/offline");
    let data = rig.data_dir();
    let mut charge = rig.charge_process(&data, "12.34", "alipay");
    // The till asks getState first and refuses in words; no order reaches the server.
    let error = charge.event_of("error", Duration::from_secs(20));
    let message = error["message"].as_str().unwrap();
    assert!(
        message.contains("monitor phone is offline") && message.contains("监控端离线"),
        "{error}"
    );
    charge.drain();
    assert_eq!(charge.wait(), 1, "a refused charge exits 1");
    assert!(
        !charge.stderr_text().contains(DEMO_KEY),
        "stderr shows the key"
    );
    assert!(
        rig.sim_orders().iter().all(|o| o["kind"] != "vmq"),
        "an order reached the server: {:?}",
        rig.sim_orders()
    );

    // Back online, the next sale goes through.
    rig.control("vmq/monitor/online");
    let mut sale = rig.sale("12.34", "alipay", "12.34");
    rig.control(&format!("orders/{}/pay", sale.order_no));
    expect_paid(&mut sale, "12.34", DEMO_KEY);
}

#[test]
fn forged_notify_changes_nothing() {
    let rig = Rig::start(true);
    let mut sale = rig.sale("12.34", "alipay", "12.34");
    rig.control(&format!("orders/{}/notify?forged=true", sale.order_no));
    // The till answers the forged notify `fail` (the sandbox records the answer)…
    let until = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, body) = http("GET", &format!("{}/_sandbox/notifies", rig.base));
        let notifies: Value = serde_json::from_str(&body).unwrap();
        if notifies
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n["order_no"] == sale.order_no.as_str() && n["forged"] == true)
        {
            break;
        }
        assert!(Instant::now() < until, "the forged notify was not sent");
        std::thread::sleep(Duration::from_millis(50));
    }
    let until = Instant::now() + Duration::from_secs(10);
    while !sale.charge.stderr_now().contains("callback refused") {
        assert!(
            Instant::now() < until,
            "the till did not refuse the forged notify:\n{}",
            sale.charge.stderr_now()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        sale.charge
            .stderr_now()
            .contains("signature does not match")
    );
    // … and nothing changes: the order is still pending, no callback changed it (the refusal
    // is logged with no new state).
    let status = rig.status(&sale);
    assert_eq!(status["status"], "pending", "{status}");
    assert!(status["paid"].is_null(), "{status}");
    assert!(!has_callback(&status), "{status}");
    assert!(
        sale.charge.try_line(Duration::from_millis(1500)).is_err(),
        "charge printed something after a forged notify: {:?}",
        sale.charge.seen
    );

    // The order is still alive: a real payment ends the sale.
    rig.control(&format!("orders/{}/pay", sale.order_no));
    expect_paid(&mut sale, "12.34", DEMO_KEY);
}

// ---------------------------------------------------------------------------------------------
// The simulator

/// A form for `createOrder`, signed with the demo key unless a sign is given.
fn create_form(pay_id: &str, pay_type: &str, price: &str, sign: Option<&str>) -> String {
    let computed = SignInput::Create {
        pay_id,
        param: "",
        pay_type,
        price,
    }
    .sign(&Secret::new(DEMO_KEY));
    url::form_urlencoded::Serializer::new(String::new())
        .append_pair("payId", pay_id)
        .append_pair("type", pay_type)
        .append_pair("price", price)
        .append_pair("isHtml", "0")
        .append_pair("sign", sign.unwrap_or(&computed))
        .finish()
}

fn json(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|err| panic!("{err}: {body}"))
}

#[test]
fn sandbox_answers_like_the_php_server() {
    let rig = Rig::start(true);
    let create = format!("{}/vmq/createOrder", rig.base);
    let post = |form: &str| {
        let (status, body) = http_with(
            "POST",
            &create,
            Some("application/x-www-form-urlencoded"),
            form,
        );
        assert_eq!(status, 200, "{body}");
        json(&body)
    };
    let refusals = [
        (create_form("", "2", "1.00", None), "请传入商户订单号"),
        (
            create_form("SIM-1", "", "1.00", None),
            "请传入支付方式=>1|微信 2|支付宝",
        ),
        (
            create_form("SIM-1", "3", "1.00", None),
            "支付方式错误=>1|微信 2|支付宝",
        ),
        (create_form("SIM-1", "2", "", None), "请传入订单金额"),
        (create_form("SIM-1", "2", "0", None), "订单金额必须大于0"),
        (create_form("SIM-1", "2", "1.00", Some("")), "请传入签名"),
        (
            create_form(
                "SIM-1",
                "2",
                "1.00",
                Some("0123456789abcdef0123456789abcdef"),
            ),
            "签名错误",
        ),
        // Signed over "1.00" but sent as "1.0": the price must be signed exactly as sent.
        (
            create_form("SIM-1", "2", "1.00", None).replace("price=1.00", "price=1.0"),
            "签名错误",
        ),
    ];
    for (form, msg) in refusals {
        let answer = post(&form);
        assert_eq!(answer["code"], -1, "{form}: {answer}");
        assert_eq!(answer["msg"], msg, "{form}: {answer}");
    }

    // A good create, by GET as well as POST; PHP-style amounts in getOrder.
    let (status, body) = http(
        "GET",
        &format!("{create}?{}", create_form("SIM-1", "2", "0.10", None)),
    );
    assert_eq!(status, 200);
    let created = json(&body);
    assert_eq!(created["code"], 1, "{created}");
    assert_eq!(created["msg"], "成功");
    let data = &created["data"];
    assert_eq!(data["payId"], "SIM-1");
    assert_eq!(data["price"], "0.10");
    assert_eq!(data["reallyPrice"], "0.10");
    assert_eq!(data["state"], 0);
    assert_eq!(data["timeOut"], "5");
    let order_id = data["orderId"].as_str().unwrap().to_string();
    assert_eq!(order_id.len(), 18, "{order_id}");
    let get_order = |id: &str| {
        let (status, body) = http("GET", &format!("{}/vmq/getOrder?orderId={id}", rig.base));
        assert_eq!(status, 200);
        json(&body)
    };
    let got = get_order(&order_id);
    assert_eq!(got["data"]["price"], "0.1", "{got}");
    assert_eq!(got["data"]["reallyPrice"], "0.1", "{got}");
    assert_eq!(got["data"]["state"], "0", "{got}");
    let missing = get_order("000");
    assert_eq!(
        (missing["code"].as_i64(), missing["msg"].as_str()),
        (Some(-1), Some("云端订单编号不存在"))
    );
    // The same payId again.
    let again = post(&create_form("SIM-1", "2", "0.10", None));
    assert_eq!(again["msg"], "商户订单号已存在", "{again}");
    // checkOrder while unpaid.
    let (_, body) = http(
        "GET",
        &format!("{}/vmq/checkOrder?orderId={order_id}", rig.base),
    );
    assert_eq!(json(&body)["msg"], "订单未支付");

    // Ten orders of 5.00 take the slots 5.00 … 5.09; the eleventh finds none.
    for n in 0..10 {
        let answer = post(&create_form(&format!("SLOT-{n}"), "1", "5.00", None));
        assert_eq!(answer["code"], 1, "{answer}");
        assert_eq!(answer["data"]["reallyPrice"], format!("5.0{n}"), "{answer}");
    }
    let full = post(&create_form("SLOT-10", "1", "5.00", None));
    assert_eq!(full["msg"], "订单超出负荷，请稍后重试", "{full}");
    // Alipay's slots are separate.
    assert_eq!(post(&create_form("SLOT-A", "2", "5.00", None))["code"], 1);

    // closeOrder: signed with md5(orderId + key), only while waiting; it frees the slot.
    let slot0 = rig.sim_order("SLOT-0")["id"].as_str().unwrap().to_string();
    let close = |id: &str, sign: &str| {
        let (status, body) = http(
            "GET",
            &format!("{}/vmq/closeOrder?orderId={id}&sign={sign}", rig.base),
        );
        assert_eq!(status, 200);
        json(&body)
    };
    let good_sign = SignInput::Close { order_id: &slot0 }.sign(&Secret::new(DEMO_KEY));
    assert_eq!(close(&slot0, "bad")["msg"], "签名校验不通过");
    assert_eq!(close(&slot0, &good_sign)["code"], 1);
    assert_eq!(close(&slot0, &good_sign)["msg"], "订单状态不允许关闭");
    assert_eq!(get_order(&slot0)["data"]["state"], "-1");
    let freed = post(&create_form("SLOT-11", "1", "5.00", None));
    assert_eq!(freed["data"]["reallyPrice"], "5.00", "{freed}");

    // Paid: state 1, checkOrder's signed link with two-decimal amounts.
    rig.control("orders/SIM-1/pay");
    assert_eq!(get_order(&order_id)["data"]["state"], "1");
    let (_, body) = http(
        "GET",
        &format!("{}/vmq/checkOrder?orderId={order_id}", rig.base),
    );
    let checked = json(&body);
    assert_eq!(checked["code"], 1, "{checked}");
    let link_sign = SignInput::Notify {
        pay_id: "SIM-1",
        param: "",
        pay_type: "2",
        price: "0.10",
        really_price: "0.10",
    }
    .sign(&Secret::new(DEMO_KEY));
    assert_eq!(
        checked["data"],
        format!("?payId=SIM-1&param=&type=2&price=0.10&reallyPrice=0.10&sign={link_sign}")
    );

    // getState: signed with md5(t + key); the monitor control switches jkstate.
    let state = |sign: Option<&str>| {
        let t = "1714536000";
        let good = SignInput::State { t }.sign(&Secret::new(DEMO_KEY));
        let (_, body) = http(
            "GET",
            &format!(
                "{}/vmq/getState?t={t}&sign={}",
                rig.base,
                sign.unwrap_or(&good)
            ),
        );
        json(&body)
    };
    assert_eq!(state(Some("bad"))["msg"], "签名校验不通过");
    assert_eq!(state(None)["data"]["jkstate"], "1");
    rig.control("vmq/monitor/offline");
    assert_eq!(state(None)["data"]["jkstate"], "0");
    assert_eq!(
        post(&create_form("SIM-2", "2", "1.00", None))["msg"],
        "监控端状态异常，请检查"
    );
    rig.control("vmq/monitor/unbound");
    assert_eq!(state(None)["data"]["jkstate"], "-1");
    let (status, _) = http(
        "POST",
        &format!("{}/_sandbox/vmq/monitor/sideways", rig.base),
    );
    assert_eq!(status, 404);
}
