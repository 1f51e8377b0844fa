//! The V免签 (vmq) protocol (PROVIDERS.md §7), checked offline through the public provider
//! API: the published signature vector and hand-computed ones, the exact create, query,
//! close and monitor-state requests, the state table, create/query/close/state answer
//! readers (refusals in plain words, garbage as decode errors), notify verification over the
//! raw amount strings and the ack, the config table, and that the 通讯密钥 never shows in
//! `Debug`. No network, no clock, no ledger.
//!
//! Every MD5 below was computed outside this crate with
//! `python3 -c "import hashlib; print(hashlib.md5(b'...').hexdigest())"` over the input string
//! written next to it; every form body was checked with Python's `urllib.parse.urlencode`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use qrtill::model::{Channel, Fen, OrderNo, ProviderState, QrPayload};
use qrtill::providers::vmq::transformers::{SignInput, map_state};
use qrtill::providers::vmq::{MONITOR_CHECK_EVERY, Vmq};
use qrtill::providers::{
    AccountStatus, CallContext, CallbackReport, CallbackRequest, CreateOrder, CreateStep,
    HttpResponse, Method, OrderRef, Provider, ProviderError, QueryOutcome, StatusReport,
};
use qrtill::secret::Secret;

const BASE: &str = "https://vmq.example.com";
const KEY: &str = "test-vmq-key";
const LISTENER: &str = "http://127.0.0.1:8765/notify/shop";
const NOW: i64 = 1_714_536_000;
const ORDER: &str = "20240501120000A01";
const VMQ_ID: &str = "202405011200001234";

/// md5("20240501120000A01" + "2" + "12.3" + "12.35" + "test-vmq-key"):
/// payId + param ("") + type + price + reallyPrice + key, amounts as PHP prints them.
const NOTIFY_SIGN_PHP: &str = "736c068f18cb5f0d052cbd9f1e6397e1";

fn provider() -> Vmq {
    Vmq::new("shop", BASE, Secret::new(KEY))
}

fn ctx() -> CallContext {
    CallContext {
        now_unix: NOW,
        notify_url: LISTENER.into(),
    }
}

fn order(no: &str, fen: i64, channel: Channel) -> CreateOrder {
    CreateOrder {
        order_no: OrderNo::new(no).unwrap(),
        amount: Fen(fen),
        channel,
        subject: "奶茶".into(),
    }
}

fn order_ref(id: Option<&str>) -> OrderRef {
    OrderRef {
        order_no: OrderNo::new(ORDER).unwrap(),
        provider_order_id: id.map(str::to_string),
    }
}

fn response(status: u16, body: &str) -> HttpResponse {
    HttpResponse {
        status,
        body: body.as_bytes().to_vec(),
    }
}

fn report(outcome: QueryOutcome) -> StatusReport {
    match outcome {
        QueryOutcome::Report(report) => report,
        other => panic!("expected a report, got {other:?}"),
    }
}

fn rejected_message<T: std::fmt::Debug>(result: Result<T, ProviderError>) -> String {
    match result {
        Err(ProviderError::Rejected { code, message }) => {
            assert_eq!(code, "-1");
            message
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// Golden signatures

#[test]
fn published_create_vector() {
    // The doc's example: md5("1547129707139" + "vone666" + "2" + "0.1"
    //   + "a7cc8678193ee9c70ae3d75fd04ae6a9") = 2b8b5d58c51203162f14939bdbc46a54.
    let sign = SignInput::Create {
        pay_id: "1547129707139",
        param: "vone666",
        pay_type: "2",
        price: "0.1",
    }
    .sign(&Secret::new("a7cc8678193ee9c70ae3d75fd04ae6a9"));
    assert_eq!(sign, "2b8b5d58c51203162f14939bdbc46a54");
}

#[test]
fn create_sign_vectors() {
    // (payId, param, type, price, md5 of payId + param + type + price + key)
    let vectors: &[(&str, &str, &str, &str, &str)] = &[
        // "20240501120000A01212.30test-vmq-key"
        (ORDER, "", "2", "12.30", "778d0be74d1eaa167165ae18d3fb0d76"),
        // "20240501120000A0210.01test-vmq-key"
        (
            "20240501120000A02",
            "",
            "1",
            "0.01",
            "40ba6baccb1d24fdb154eadd46696e8d",
        ),
        // "SHOP-99_x199999.99test-vmq-key"
        (
            "SHOP-99_x",
            "",
            "1",
            "99999.99",
            "37969deebbcef54f904e3051ac004a45",
        ),
    ];
    for &(pay_id, param, pay_type, price, expected) in vectors {
        let sign = SignInput::Create {
            pay_id,
            param,
            pay_type,
            price,
        }
        .sign(&Secret::new(KEY));
        assert_eq!(sign, expected, "create sign for {pay_id}");
    }
}

#[test]
fn notify_sign_vectors_over_raw_amounts() {
    // (param, price, reallyPrice, md5 of "20240501120000A01" + param + "2" + price +
    // reallyPrice + key): the same payment printed three ways gives three signatures.
    let vectors: &[(&str, &str, &str, &str)] = &[
        // "20240501120000A01212.312.35test-vmq-key" (PHP double)
        ("", "12.3", "12.35", NOTIFY_SIGN_PHP),
        // "20240501120000A01212.3012.35test-vmq-key" (PHP number_format, checkOrder)
        ("", "12.30", "12.35", "798277aa0d264250b9a02f88b3ae0c48"),
        // "20240501120000A0121010.01test-vmq-key" (PHP double)
        ("", "10", "10.01", "79cffec00ab9e592578074187d61755e"),
        // "20240501120000A01210.010.01test-vmq-key" (Java Double.toString)
        ("", "10.0", "10.01", "bab16910152144d28952513d37b51ce7"),
        // "20240501120000A01hello212.312.35test-vmq-key"
        ("hello", "12.3", "12.35", "c0df1890f412995b91fe087516b9df53"),
    ];
    for &(param, price, really_price, expected) in vectors {
        let sign = SignInput::Notify {
            pay_id: ORDER,
            param,
            pay_type: "2",
            price,
            really_price,
        }
        .sign(&Secret::new(KEY));
        assert_eq!(sign, expected, "notify sign for {price}/{really_price}");
    }
}

#[test]
fn close_and_state_sign_vectors() {
    // "202405011200001234test-vmq-key"
    assert_eq!(
        SignInput::Close { order_id: VMQ_ID }.sign(&Secret::new(KEY)),
        "12d992d8953c643e82795192b9752fd0"
    );
    // "1714536000test-vmq-key"
    assert_eq!(
        SignInput::State { t: "1714536000" }.sign(&Secret::new(KEY)),
        "e9cce30337bc0f4cd443fa26e84bfb78"
    );
}

// ---------------------------------------------------------------------------------------------
// Requests

fn assert_create(step: &CreateStep, body: &str) {
    let CreateStep::Server(request) = step else {
        panic!("V免签 creates server to server, got {step:?}");
    };
    assert_eq!(request.method, Method::Post);
    assert_eq!(request.url, "https://vmq.example.com/createOrder");
    assert_eq!(
        request.headers,
        vec![(
            "Content-Type".to_string(),
            "application/x-www-form-urlencoded".to_string()
        )]
    );
    let sent = String::from_utf8(request.body.clone().expect("a body")).unwrap();
    assert_eq!(sent, body);
}

#[test]
fn create_alipay() {
    // sign = md5("20240501120000A01" + "" + "2" + "12.30" + "test-vmq-key"); no `param`
    // (signed as ""), no subject, no returnUrl.
    let step = provider()
        .build_create(&order(ORDER, 1230, Channel::Alipay), &ctx())
        .unwrap();
    assert_create(
        &step,
        "payId=20240501120000A01\
         &type=2\
         &price=12.30\
         &notifyUrl=http%3A%2F%2F127.0.0.1%3A8765%2Fnotify%2Fshop\
         &isHtml=0\
         &sign=778d0be74d1eaa167165ae18d3fb0d76",
    );
}

#[test]
fn create_wechat_and_large_amount() {
    // sign = md5("20240501120000A02" + "1" + "0.01" + "test-vmq-key")
    let step = provider()
        .build_create(&order("20240501120000A02", 1, Channel::Wechat), &ctx())
        .unwrap();
    assert_create(
        &step,
        "payId=20240501120000A02&type=1&price=0.01\
         &notifyUrl=http%3A%2F%2F127.0.0.1%3A8765%2Fnotify%2Fshop&isHtml=0\
         &sign=40ba6baccb1d24fdb154eadd46696e8d",
    );
    // sign = md5("SHOP-99_x" + "1" + "99999.99" + "test-vmq-key")
    let step = provider()
        .build_create(&order("SHOP-99_x", 9_999_999, Channel::Wechat), &ctx())
        .unwrap();
    assert_create(
        &step,
        "payId=SHOP-99_x&type=1&price=99999.99\
         &notifyUrl=http%3A%2F%2F127.0.0.1%3A8765%2Fnotify%2Fshop&isHtml=0\
         &sign=37969deebbcef54f904e3051ac004a45",
    );
}

#[test]
fn base_url_with_a_path_and_trailing_slash() {
    let provider = Vmq::new("shop", "https://shop.example.com/vmq/", Secret::new(KEY));
    let CreateStep::Server(request) = provider
        .build_create(&order(ORDER, 1230, Channel::Alipay), &ctx())
        .unwrap()
    else {
        panic!("server create");
    };
    assert_eq!(request.url, "https://shop.example.com/vmq/createOrder");
}

#[test]
fn only_alipay_and_wechat() {
    assert_eq!(provider().channels(), &[Channel::Alipay, Channel::Wechat]);
    for channel in [Channel::Unionpay, Channel::Qq] {
        let result = provider().build_create(&order(ORDER, 100, channel), &ctx());
        assert!(
            matches!(result, Err(ProviderError::NotSupported(_))),
            "{channel}: {result:?}"
        );
    }
}

#[test]
fn query_by_vmq_order_id() {
    let request = provider()
        .build_query(&order_ref(Some(VMQ_ID)), &ctx())
        .unwrap();
    assert_eq!(request.method, Method::Get);
    assert_eq!(
        request.url,
        "https://vmq.example.com/getOrder?orderId=202405011200001234"
    );
    assert!(request.headers.is_empty());
    assert!(request.body.is_none());
    assert!(provider().can_query());
    assert_eq!(
        provider().poll_limits().min_interval,
        std::time::Duration::from_secs(1)
    );
}

#[test]
fn query_without_vmq_order_id_is_not_possible() {
    // getOrder knows only V免签's orderId; after a lost create answer only the notify helps.
    let result = provider().build_query(&order_ref(None), &ctx());
    assert!(
        matches!(result, Err(ProviderError::NotSupported(_))),
        "{result:?}"
    );
}

#[test]
fn close_request() {
    // sign = md5("202405011200001234" + "test-vmq-key")
    let request = provider()
        .build_close(&order_ref(Some(VMQ_ID)), &ctx())
        .unwrap();
    assert_eq!(request.method, Method::Get);
    assert_eq!(
        request.url,
        "https://vmq.example.com/closeOrder?orderId=202405011200001234\
         &sign=12d992d8953c643e82795192b9752fd0"
    );
    assert!(request.body.is_none());
    assert_eq!(provider().build_close(&order_ref(None), &ctx()), None);
}

#[test]
fn monitor_state_request() {
    // sign = md5("1714536000" + "test-vmq-key")
    let (request, every) = provider().build_account_check(&ctx()).unwrap();
    assert_eq!(request.method, Method::Get);
    assert_eq!(
        request.url,
        "https://vmq.example.com/getState?t=1714536000&sign=e9cce30337bc0f4cd443fa26e84bfb78"
    );
    assert!(request.body.is_none());
    assert_eq!(every, MONITOR_CHECK_EVERY);
}

// ---------------------------------------------------------------------------------------------
// States

#[test]
fn state_table() {
    let table: &[(i64, ProviderState)] = &[
        (-1, ProviderState::Expired),
        (0, ProviderState::Pending),
        (1, ProviderState::Paid),
        (2, ProviderState::Paid),
        (3, ProviderState::Unknown("3".into())),
        (-2, ProviderState::Unknown("-2".into())),
        (9, ProviderState::Unknown("9".into())),
    ];
    for (code, state) in table {
        assert_eq!(&map_state(*code), state, "state {code}");
    }
}

#[test]
fn only_one_and_two_are_paid() {
    for code in (-1000..1000).chain([i64::MIN, i64::MAX]) {
        assert_eq!(
            map_state(code) == ProviderState::Paid,
            code == 1 || code == 2,
            "state {code}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Create answers

#[test]
fn parse_create_php_answer() {
    // PHP: price echoed as sent, reallyPrice from bcdiv, timeOut from a setting (a string).
    let body = r#"{"code":1,"msg":"成功","data":{"payId":"20240501120000A01","orderId":"202405011200001234","payType":"2","price":"12.30","reallyPrice":"12.31","payUrl":"https://qr.alipay.com/fkx00000000000000000","isAuto":1,"state":0,"timeOut":"5","date":1714536000}}"#;
    let outcome = provider().parse_create(&response(200, body)).unwrap();
    assert_eq!(outcome.provider_order_id.as_deref(), Some(VMQ_ID));
    assert_eq!(
        outcome.qr,
        Some(QrPayload::Text(
            "https://qr.alipay.com/fkx00000000000000000".into()
        ))
    );
    // The customer must pay reallyPrice, nudged one fen up.
    assert_eq!(outcome.payable, Some(Fen(1231)));
    assert_eq!(outcome.timeout_secs, Some(300));
    assert_eq!(outcome.payer_page, None);
}

#[test]
fn parse_create_java_answer() {
    // Java: numbers, date in milliseconds.
    let body = r#"{"code":1,"msg":"成功","data":{"payId":"20240501120000A01","orderId":"202405011200001234","payType":2,"price":12.3,"reallyPrice":12.3,"payUrl":"wxp://f2f0abcdef","isAuto":0,"state":0,"timeOut":3,"date":1714536000123}}"#;
    let outcome = provider().parse_create(&response(200, body)).unwrap();
    assert_eq!(outcome.provider_order_id.as_deref(), Some(VMQ_ID));
    assert_eq!(outcome.qr, Some(QrPayload::Text("wxp://f2f0abcdef".into())));
    assert_eq!(outcome.payable, Some(Fen(1230)));
    assert_eq!(outcome.timeout_secs, Some(180));
}

#[test]
fn parse_create_refusals_in_plain_words() {
    let cases = [
        ("监控端状态异常，请检查", "monitor phone is offline"),
        ("订单超出负荷，请稍后重试", "no free amount slot"),
        ("所有金额均被占用", "no free amount slot"),
        ("签名错误", "`key`"),
        ("签名校验不通过", "`key`"),
        ("商户订单号已存在", "already used"),
        ("请您先进入后台配置程序", "not set up"),
    ];
    for (msg, words) in cases {
        let body = format!(r#"{{"code":-1,"msg":"{msg}","data":null}}"#);
        let message = rejected_message(provider().parse_create(&response(200, &body)));
        assert!(message.contains(words), "{msg}: {message}");
        // The server's own words stay visible.
        assert!(message.contains(msg), "{msg}: {message}");
    }
    // A message the table does not know is shown as it is.
    let message = rejected_message(
        provider().parse_create(&response(200, r#"{"code":-1,"msg":"请传入订单金额"}"#)),
    );
    assert_eq!(message, "请传入订单金额");
    // Without any message.
    let message = rejected_message(provider().parse_create(&response(200, r#"{"code":-1}"#)));
    assert_eq!(message, "(no message)");
}

#[test]
fn parse_create_bad_answers() {
    let html = "<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>";
    assert_eq!(
        provider().parse_create(&response(502, html)),
        Err(ProviderError::HttpStatus { status: 502 })
    );
    // A refusal on an error status still says what the server said.
    let message = rejected_message(provider().parse_create(&response(
        500,
        r#"{"code":-1,"msg":"监控端状态异常，请检查"}"#,
    )));
    assert!(message.contains("monitor phone is offline"), "{message}");
    let good_data = r#""payId":"A","orderId":"1","reallyPrice":"1.00","payUrl":"x","timeOut":"5""#;
    let cases = [
        ("200 HTML", "<html><body>维护中</body></html>".to_string()),
        (
            "isHtml=1 redirect script",
            "<script>window.location.href = 'payPage/pay.html?orderId=1'</script>".into(),
        ),
        (
            "truncated",
            r#"{"code":1,"msg":"成功","data":{"payId":"A","orderId":"2024"#.into(),
        ),
        ("empty", String::new()),
        (
            "no code",
            format!(r#"{{"msg":"成功","data":{{{good_data}}}}}"#),
        ),
        ("no data", r#"{"code":1,"msg":"成功","data":null}"#.into()),
        (
            "no orderId",
            r#"{"code":1,"data":{"reallyPrice":"1.00","payUrl":"x"}}"#.into(),
        ),
        (
            "no payUrl",
            r#"{"code":1,"data":{"orderId":"1","reallyPrice":"1.00","payUrl":""}}"#.into(),
        ),
        (
            "no reallyPrice",
            r#"{"code":1,"data":{"orderId":"1","payUrl":"x"}}"#.into(),
        ),
        (
            "reallyPrice not an amount",
            r#"{"code":1,"data":{"orderId":"1","payUrl":"x","reallyPrice":"1.005"}}"#.into(),
        ),
        (
            "reallyPrice zero",
            r#"{"code":1,"data":{"orderId":"1","payUrl":"x","reallyPrice":"0"}}"#.into(),
        ),
    ];
    for (name, body) in cases {
        let result = provider().parse_create(&response(200, &body));
        assert!(
            matches!(result, Err(ProviderError::Decode { .. })),
            "{name}: {result:?}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Query answers

#[test]
fn parse_query_every_state() {
    for (state, expected) in [
        ("\"-1\"", ProviderState::Expired),
        ("\"0\"", ProviderState::Pending),
        ("\"1\"", ProviderState::Paid),
        ("2", ProviderState::Paid),
        ("7", ProviderState::Unknown("7".into())),
    ] {
        // PHP (PDO) sends values as strings, amounts as a MySQL double prints.
        let body = format!(
            r#"{{"code":1,"msg":"成功","data":{{"payId":"{ORDER}","orderId":"{VMQ_ID}","payType":"2","price":"12.3","reallyPrice":"12.31","payUrl":"wxp://f2f0abc","isAuto":"1","state":{state},"timeOut":"5","date":"1714536000"}}}}"#
        );
        let report = report(provider().parse_query(&response(200, &body)).unwrap());
        assert_eq!(report.state, expected, "state {state}");
        assert_eq!(report.raw_code, state.trim_matches('"'));
        assert_eq!(report.provider_order_id.as_deref(), Some(VMQ_ID));
        assert_eq!(report.qr, Some(QrPayload::Text("wxp://f2f0abc".into())));
        assert_eq!(report.amount, Some(Fen(1231)));
        assert_eq!(report.timeout_secs, Some(300));
    }
}

#[test]
fn parse_query_amount_formats() {
    for (really, fen) in [("10", 1000), ("10.0", 1000), ("0.1", 10), ("12.35", 1235)] {
        let body = format!(
            r#"{{"code":1,"data":{{"orderId":"{VMQ_ID}","reallyPrice":"{really}","state":1}}}}"#
        );
        let report = report(provider().parse_query(&response(200, &body)).unwrap());
        assert_eq!(report.amount, Some(Fen(fen)), "{really}");
        assert_eq!(report.state, ProviderState::Paid);
    }
}

#[test]
fn parse_query_not_found_and_refusals() {
    assert_eq!(
        provider().parse_query(&response(
            200,
            r#"{"code":-1,"msg":"云端订单编号不存在","data":null}"#
        )),
        Ok(QueryOutcome::NotFound {
            message: "云端订单编号不存在".into()
        })
    );
    // Java's "no order id" is a refusal, not "no such order".
    let message = rejected_message(
        provider().parse_query(&response(200, r#"{"code":-1,"msg":"请传入订单编号"}"#)),
    );
    assert_eq!(message, "请传入订单编号");
}

#[test]
fn parse_query_bad_answers() {
    assert_eq!(
        provider().parse_query(&response(503, "busy")),
        Err(ProviderError::HttpStatus { status: 503 })
    );
    for (name, body) in [
        ("HTML", "<html>error</html>"),
        ("truncated", r#"{"code":1,"data":{"state":"#),
        ("no state", r#"{"code":1,"data":{"orderId":"1"}}"#),
        (
            "state not a number",
            r#"{"code":1,"data":{"state":"paid"}}"#,
        ),
        ("no data", r#"{"code":1}"#),
    ] {
        let result = provider().parse_query(&response(200, body));
        assert!(
            matches!(result, Err(ProviderError::Decode { .. })),
            "{name}: {result:?}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Close and monitor answers

#[test]
fn parse_close_answers() {
    assert_eq!(
        provider().parse_close(&response(200, r#"{"code":1,"msg":"成功","data":null}"#)),
        Ok(())
    );
    let message = rejected_message(
        provider().parse_close(&response(200, r#"{"code":-1,"msg":"订单状态不允许关闭"}"#)),
    );
    assert!(message.contains("no longer waiting"), "{message}");
    assert!(matches!(
        provider().parse_close(&response(200, "<html></html>")),
        Err(ProviderError::Decode { .. })
    ));
}

#[test]
fn parse_monitor_state() {
    // PHP names the key `jkstate`, Java `state`; values are strings or numbers.
    let online = provider()
        .parse_account_check(&response(
            200,
            r#"{"code":1,"msg":"成功","data":{"lastheart":"1714535990","lastpay":"0","jkstate":"1"}}"#,
        ))
        .unwrap();
    assert_eq!(online.refuse_charges, None);
    assert!(online.message.as_deref().unwrap().contains("online"));
    assert_eq!(online.balance, None);
    for body in [
        r#"{"code":1,"msg":"成功","data":{"lastheart":"1714535000","lastpay":"0","jkstate":"0"}}"#,
        r#"{"code":1,"msg":"成功","data":{"state":"0","lastheart":"1714535000123","lastpay":"0"}}"#,
        r#"{"code":1,"msg":"成功","data":{"jkstate":0}}"#,
    ] {
        let offline = provider()
            .parse_account_check(&response(200, body))
            .unwrap();
        let refusal = offline.refuse_charges.clone().expect("offline refuses");
        assert!(refusal.contains("offline"), "{refusal}");
        assert_eq!(offline.message, Some(refusal), "the status bar shows it");
    }
    let unbound = provider()
        .parse_account_check(&response(200, r#"{"code":1,"data":{"jkstate":"-1"}}"#))
        .unwrap();
    assert!(
        unbound
            .refuse_charges
            .as_deref()
            .unwrap()
            .contains("no monitor phone was ever bound")
    );
    // An unknown value is shown but refuses nothing.
    let unknown = provider()
        .parse_account_check(&response(200, r#"{"code":1,"data":{"jkstate":"5"}}"#))
        .unwrap();
    assert_eq!(
        unknown,
        AccountStatus {
            balance: None,
            message: Some("V免签监控端状态未知 (5) / unknown monitor state 5".into()),
            refuse_charges: None,
        }
    );
    // A wrong key is a refusal in plain words; garbage is a decode error.
    let message = rejected_message(
        provider().parse_account_check(&response(200, r#"{"code":-1,"msg":"签名校验不通过"}"#)),
    );
    assert!(message.contains("`key`"), "{message}");
    for body in ["<html></html>", r#"{"code":1,"data":{"lastheart":"1"}}"#] {
        assert!(
            matches!(
                provider().parse_account_check(&response(200, body)),
                Err(ProviderError::Decode { .. })
            ),
            "{body}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Notify

fn notify(pairs: &[(&str, &str)]) -> CallbackRequest {
    CallbackRequest {
        method: "GET".into(),
        query: pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        body: vec![],
        content_type: None,
        headers: vec![],
    }
}

/// The notify of a PHP server for a 12.30 order nudged to 12.35.
fn php_notify(sign: &str) -> Vec<(&'static str, String)> {
    vec![
        ("payId", ORDER.to_string()),
        ("param", String::new()),
        ("type", "2".to_string()),
        ("price", "12.3".to_string()),
        ("reallyPrice", "12.35".to_string()),
        ("sign", sign.to_string()),
    ]
}

fn owned(pairs: &[(&'static str, String)]) -> CallbackRequest {
    let borrowed: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (*k, v.as_str())).collect();
    notify(&borrowed)
}

fn paid(fen: i64) -> CallbackReport {
    CallbackReport {
        order_no: OrderNo::new(ORDER).unwrap(),
        state: ProviderState::Paid,
        raw_code: "1".into(),
        amount: Some(Fen(fen)),
        amount_signed: true,
    }
}

#[test]
fn notify_good_php() {
    let request = owned(&php_notify(NOTIFY_SIGN_PHP));
    assert_eq!(provider().verify_callback(&request), Ok(paid(1235)));
    // Repeated: the same answer again (the service makes a repeat harmless).
    assert_eq!(provider().verify_callback(&request), Ok(paid(1235)));
    // Upper-case hex is accepted.
    let upper = owned(&php_notify(&NOTIFY_SIGN_PHP.to_ascii_uppercase()));
    assert_eq!(provider().verify_callback(&upper), Ok(paid(1235)));
}

#[test]
fn notify_verified_over_the_raw_amount_strings() {
    // "10" (PHP) and "10.0" (Java) are signed as printed; re-formatting would break both.
    for (price, sign) in [
        ("10", "79cffec00ab9e592578074187d61755e"),
        ("10.0", "bab16910152144d28952513d37b51ce7"),
    ] {
        let request = notify(&[
            ("payId", ORDER),
            ("param", ""),
            ("type", "2"),
            ("price", price),
            ("reallyPrice", "10.01"),
            ("sign", sign),
        ]);
        assert_eq!(
            provider().verify_callback(&request),
            Ok(paid(1001)),
            "{price}"
        );
        // The same sign over the other spelling does not match.
        let other = if price == "10" { "10.00" } else { "10" };
        let request = notify(&[
            ("payId", ORDER),
            ("param", ""),
            ("type", "2"),
            ("price", other),
            ("reallyPrice", "10.01"),
            ("sign", sign),
        ]);
        assert_eq!(
            provider().verify_callback(&request),
            Err(ProviderError::BadSignature),
            "{other}"
        );
    }
}

#[test]
fn notify_as_form_post_and_without_param() {
    // A missing `param` counts as "" (the sign is the same).
    let request = CallbackRequest {
        method: "POST".into(),
        query: vec![],
        body: format!("payId={ORDER}&type=2&price=12.3&reallyPrice=12.35&sign={NOTIFY_SIGN_PHP}")
            .into_bytes(),
        content_type: Some("application/x-www-form-urlencoded".into()),
        headers: vec![],
    };
    assert_eq!(provider().verify_callback(&request), Ok(paid(1235)));
}

#[test]
fn notify_with_param_and_unknown_fields() {
    // md5("20240501120000A01" + "hello" + "2" + "12.3" + "12.35" + "test-vmq-key")
    let request = notify(&[
        ("payId", ORDER),
        ("param", "hello"),
        ("type", "2"),
        ("price", "12.3"),
        ("reallyPrice", "12.35"),
        ("sign", "c0df1890f412995b91fe087516b9df53"),
        // Not signed, not read.
        ("extra", "whatever"),
        ("state", "9"),
    ]);
    assert_eq!(provider().verify_callback(&request), Ok(paid(1235)));
}

#[test]
fn notify_forged_refused() {
    for sign in [
        "00000000000000000000000000000000",
        // One hex digit off.
        "736c068f18cb5f0d052cbd9f1e6397e2",
        // The create sign of the same order.
        "778d0be74d1eaa167165ae18d3fb0d76",
        "",
    ] {
        let request = owned(&php_notify(sign));
        assert_eq!(
            provider().verify_callback(&request),
            Err(ProviderError::BadSignature),
            "sign {sign:?}"
        );
    }
    // Signed with another key: md5 over the same fields with "other-key".
    let other = SignInput::Notify {
        pay_id: ORDER,
        param: "",
        pay_type: "2",
        price: "12.3",
        really_price: "12.35",
    }
    .sign(&Secret::new("other-key"));
    assert_eq!(
        provider().verify_callback(&owned(&php_notify(&other))),
        Err(ProviderError::BadSignature)
    );
}

#[test]
fn notify_wrong_amount() {
    // A changed amount with the original signature: refused.
    let mut pairs = php_notify(NOTIFY_SIGN_PHP);
    pairs[4].1 = "0.01".into();
    assert_eq!(
        provider().verify_callback(&owned(&pairs)),
        Err(ProviderError::BadSignature)
    );
    // A correctly signed notify for another amount is believed as the paid amount (the
    // service then flags the difference): md5("20240501120000A01" + "2" + "12.3" + "12.35" …)
    // with reallyPrice "12.30" is "798277aa…" only for price "12.30", so sign it here.
    let sign = SignInput::Notify {
        pay_id: ORDER,
        param: "",
        pay_type: "2",
        price: "12.3",
        really_price: "12.3",
    }
    .sign(&Secret::new(KEY));
    let request = notify(&[
        ("payId", ORDER),
        ("param", ""),
        ("type", "2"),
        ("price", "12.3"),
        ("reallyPrice", "12.3"),
        ("sign", &sign),
    ]);
    assert_eq!(provider().verify_callback(&request), Ok(paid(1230)));
}

#[test]
fn notify_missing_or_ambiguous_fields() {
    for missing in ["sign", "payId", "type", "price", "reallyPrice"] {
        let pairs: Vec<_> = php_notify(NOTIFY_SIGN_PHP)
            .into_iter()
            .filter(|(k, _)| *k != missing)
            .collect();
        let result = provider().verify_callback(&owned(&pairs));
        assert!(
            matches!(&result, Err(ProviderError::Decode { reason }) if reason.contains(missing)),
            "without {missing}: {result:?}"
        );
    }
    let mut twice = php_notify(NOTIFY_SIGN_PHP);
    twice.push(("reallyPrice", "0.01".into()));
    assert!(matches!(
        provider().verify_callback(&owned(&twice)),
        Err(ProviderError::Decode { .. })
    ));
    // A signed but malformed amount or order number is a decode error, never paid.
    for (field, value) in [("reallyPrice", "abc"), ("payId", "a b")] {
        let mut pairs = php_notify("");
        for pair in &mut pairs {
            if pair.0 == field {
                pair.1 = value.into();
            }
        }
        let get = |name: &str| pairs.iter().find(|(k, _)| *k == name).unwrap().1.clone();
        let sign = SignInput::Notify {
            pay_id: &get("payId"),
            param: "",
            pay_type: "2",
            price: &get("price"),
            really_price: &get("reallyPrice"),
        }
        .sign(&Secret::new(KEY));
        pairs[5].1 = sign;
        assert!(
            matches!(
                provider().verify_callback(&owned(&pairs)),
                Err(ProviderError::Decode { .. })
            ),
            "{field}={value}"
        );
    }
}

#[test]
fn callback_acks() {
    let ok = provider().callback_ack(true);
    assert_eq!((ok.status, ok.body.as_str()), (200, "success"));
    let refused = provider().callback_ack(false);
    assert_eq!(refused.body, "fail");
}

// ---------------------------------------------------------------------------------------------
// Secrets and config

#[test]
fn debug_never_shows_the_key() {
    let plain = provider();
    for text in [format!("{plain:?}"), format!("{plain:#?}")] {
        assert!(!text.contains(KEY), "{text}");
    }
    let boxed: Box<dyn Provider> = Box::new(provider());
    assert!(!format!("{boxed:?}").contains(KEY));
}

fn config(provider_table: &str) -> Result<qrtill::config::Config, String> {
    qrtill::config::Config::parse(&format!("[[provider]]\n{provider_table}"))
}

#[test]
fn config_good_table() {
    let config = config(
        "id = \"shop\"\nkind = \"vmq\"\nbase_url = \"https://vmq.example.com/\"\nkey = \"test-vmq-key\"\n",
    )
    .unwrap();
    let account = config.provider("shop").unwrap();
    assert_eq!(account.kind(), "vmq");
    assert_eq!(account.display_name(), "V免签");
    assert!(!format!("{config:?}").contains(KEY));
    // The URL is used without its trailing slash.
    let (request, _) = account.build_account_check(&ctx()).unwrap();
    assert!(
        request.url.starts_with("https://vmq.example.com/getState?"),
        "{}",
        request.url
    );
}

#[test]
fn config_errors_name_the_key() {
    let cases = [
        ("id = \"shop\"\nkind = \"vmq\"\nkey = \"k\"\n", "`base_url`"),
        (
            "id = \"shop\"\nkind = \"vmq\"\nbase_url = \"https://vmq.example.com\"\n",
            "`key`",
        ),
        (
            "id = \"shop\"\nkind = \"vmq\"\nbase_url = \"https://vmq.example.com\"\nkey = \"\"\n",
            "`key`",
        ),
        (
            "id = \"shop\"\nkind = \"vmq\"\nbase_url = \"ftp://vmq.example.com\"\nkey = \"k\"\n",
            "`base_url`",
        ),
        (
            "id = \"shop\"\nkind = \"vmq\"\nbase_url = \"https://vmq.example.com\"\nkey = \"k\"\nuserid = \"1\"\n",
            "`userid`",
        ),
    ];
    for (table, key) in cases {
        let err = config(table).expect_err(table);
        assert!(err.contains(key), "{table}: {err}");
        assert!(!err.contains(KEY), "{err}");
    }
    let missing = config("id = \"shop\"\nkind = \"vmq\"\nkey = \"k\"\n").unwrap_err();
    assert!(missing.contains("V免签"), "{missing}");
    let unknown = config(
        "id = \"shop\"\nkind = \"vmq\"\nbase_url = \"https://vmq.example.com\"\nkey = \"k\"\nsecret = \"x\"\n",
    )
    .unwrap_err();
    assert!(
        unknown.contains("allowed: id, kind, base_url, key"),
        "{unknown}"
    );
}
