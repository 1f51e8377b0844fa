//! The gatepay.io protocol (seed 002, PROVIDERS.md §3), checked offline through the public
//! provider API: hand-computed double-MD5 vectors, the exact create (any-amount and cloud)
//! and query requests, the `order_status` table (and that nothing else is ever paid), the
//! create/query answer readers with every error code of the seed, notify verification and
//! the ack, the config table, and that the appsecret never shows in `Debug`. No network, no
//! clock, no ledger.
//!
//! Every MD5 below was computed outside this crate with
//! `python3 -c "import hashlib; print(hashlib.md5(b'...').hexdigest())"`, first over the
//! inner string written next to it, then over that hex digest followed by the appsecret;
//! every form body and query string was checked with Python's `urllib.parse.urlencode`.
//! The seed's own example sign (`45f46863…`) cannot serve as a published vector: its
//! appsecret is not published, and the cloud example repeats it for different fields.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use base64::Engine as _;
use qrtill::model::{Channel, Fen, OrderNo, ProviderState, QrPayload};
use qrtill::providers::gatepay::transformers::{Endpoint, SignInput, code_text, map_order_status};
use qrtill::providers::gatepay::{Gatepay, Variant};
use qrtill::providers::{
    CallContext, CallbackReport, CallbackRequest, CreateOrder, CreateStep, HttpResponse, Method,
    OrderRef, Provider, ProviderError, QueryOutcome, StatusReport,
};
use qrtill::secret::Secret;

/// The seed's example appkey (it is md5("test")).
const APPKEY: &str = "098f6bcd4621d373cade4e832627b4f6";
const SECRET: &str = "test-secret";
const LONG_SECRET: &str = "K9fQ2vL7xR4mN8pT1wZ6yB3cH5jD0sGaEeUuIiOo-long-secret_0123456789";
const LISTENER: &str = "http://127.0.0.1:8765/notify/main";
const NOW: i64 = 1_557_056_209;

/// inner md5("098f6bcd4621d373cade4e832627b4f612.34alipay20191118123424") =
/// ccc862d00f582e7df9fb0f1f0759ebc3; + "test-secret" →
const CREATE_SIGN_TILL: &str = "0d7f6b662aa204c54608c6892fc589ef";
/// inner md5("098f6bcd4621d373cade4e832627b4f620191118123424") =
/// c7608283c7b38934cdc850fe28a9062a; + "test-secret" →
const QUERY_SIGN_TILL: &str = "64e271e9fe6b7a48a88bc071b4b310e8";
/// inner md5("098f6bcd4621d373cade4e832627b4f6" + "522" + "20191118123424" + "12.34" + "12.34"
/// + "alipay" + "1557056209" + "terry") = c4e3b3aa275c32ae4e9cc30ae2cde21b; + "test-secret" →
const NOTIFY_SIGN: &str = "7e7c284aa415f7262b1823d2a7ca0834";
/// inner md5("098f6bcd4621d373cade4e832627b4f6" + "522" + "20191118123424" + "12.34" + "12.33"
/// + "wechat" + "1557056209" + "") = 84855e53681f3f0a58cf1bbe3eb950e2; + "test-secret" →
const NOTIFY_SIGN_NUDGED: &str = "fd23b315d57beba7533249f842fb4c8f";
/// inner md5("098f6bcd4621d373cade4e832627b4f6" + "523" + "ORDER-42" + "1.00" + "1.00"
/// + "alipay" + "1557056300" + "terry") = dfba2509f4949ad20c45a02c9061ab1b; + "test-secret" →
const NOTIFY_SIGN_OTHER_ORDER: &str = "c206f8e9e5be62a946477937b1e3f3d5";

fn provider() -> Gatepay {
    Gatepay::new(
        "main",
        "https://gatepay.io",
        Variant::AnyPay,
        APPKEY,
        Secret::new(SECRET),
    )
}

fn cloud() -> Gatepay {
    Gatepay::new(
        "cloud",
        "https://cloud.gatepay.io",
        Variant::Cloud,
        APPKEY,
        Secret::new(LONG_SECRET),
    )
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
        subject: "奶茶 x2".into(),
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

fn order_ref(no: &str) -> OrderRef {
    OrderRef {
        order_no: OrderNo::new(no).unwrap(),
        provider_order_id: None,
    }
}

// ---------------------------------------------------------------------------------------------
// Golden signatures

#[test]
fn create_sign_vectors() {
    // (appkey, price, type, out_order_id, custom, appsecret, sign)
    let vectors: &[(&str, &str, &str, &str, &str, &str, &str)] = &[
        // The seed's example fields. Inner string
        // "098f6bcd4621d373cade4e832627b4f60.82wechat5cc75a6a0b418terry"
        // → 0207c13c767394c5769edcb2b5cec1a8; + "test-secret":
        (
            APPKEY,
            "0.82",
            "wechat",
            "5cc75a6a0b418",
            "terry",
            SECRET,
            "5b525bb8e60c157ab7a4485589a2857e",
        ),
        // Empty custom: "098f6bcd4621d373cade4e832627b4f612.34alipay20191118123424"
        (
            APPKEY,
            "12.34",
            "alipay",
            "20191118123424",
            "",
            SECRET,
            CREATE_SIGN_TILL,
        ),
        // UTF-8 custom: "098f6bcd4621d373cade4e832627b4f699999.99alipayUP-0001_x收银台1号"
        // → cd0c91246d7059656f8d69c4bf9040e6; + LONG_SECRET:
        (
            APPKEY,
            "99999.99",
            "alipay",
            "UP-0001_x",
            "收银台1号",
            LONG_SECRET,
            "b6059db18e84700e95cd4d25e7077ed4",
        ),
        // The sandbox's demo custom: "098f6bcd4621d373cade4e832627b4f612.34alipay20191118123424demo"
        // → b02d15d1da939ec049cfad97f9413d1d; + "test-secret":
        (
            APPKEY,
            "12.34",
            "alipay",
            "20191118123424",
            "demo",
            SECRET,
            "657f1ff35a52e50d79a7b80fb2f4564a",
        ),
    ];
    for &(appkey, price, pay_type, out_order_id, custom, secret, expected) in vectors {
        let sign = SignInput::Create {
            appkey,
            price,
            pay_type,
            out_order_id,
            custom,
        }
        .sign(&Secret::new(secret));
        assert_eq!(sign, expected, "create sign for {out_order_id}");
    }
}

#[test]
fn query_sign_vectors() {
    let vectors: &[(&str, &str)] = &[
        // "098f6bcd4621d373cade4e832627b4f65cc75a6a0b418" → 381567492d27d2898b131d07c39b5707
        ("5cc75a6a0b418", "642274bcc16cd462a901ad4d16173f15"),
        ("20191118123424", QUERY_SIGN_TILL),
    ];
    for &(out_order_id, expected) in vectors {
        let sign = SignInput::Query {
            appkey: APPKEY,
            out_order_id,
        }
        .sign(&Secret::new(SECRET));
        assert_eq!(sign, expected, "query sign for {out_order_id}");
    }
}

#[test]
fn notify_sign_vectors() {
    // (order_id, out_order_id, price, realprice, type, paytime, extend, sign)
    let vectors: &[[&str; 8]] = &[
        [
            "522",
            "20191118123424",
            "12.34",
            "12.34",
            "alipay",
            "1557056209",
            "terry",
            NOTIFY_SIGN,
        ],
        [
            "522",
            "20191118123424",
            "12.34",
            "12.33",
            "wechat",
            "1557056209",
            "",
            NOTIFY_SIGN_NUDGED,
        ],
        [
            "523",
            "ORDER-42",
            "1.00",
            "1.00",
            "alipay",
            "1557056300",
            "terry",
            NOTIFY_SIGN_OTHER_ORDER,
        ],
    ];
    for &[
        order_id,
        out_order_id,
        price,
        realprice,
        pay_type,
        paytime,
        extend,
        expected,
    ] in vectors
    {
        let sign = SignInput::Notify {
            appkey: APPKEY,
            order_id,
            out_order_id,
            price,
            realprice,
            pay_type,
            paytime,
            extend,
        }
        .sign(&Secret::new(SECRET));
        assert_eq!(sign, expected, "notify sign for {out_order_id}");
    }
}

// ---------------------------------------------------------------------------------------------
// Create request

fn assert_form_post(step: &CreateStep, url: &str, body: &str) {
    let CreateStep::Server(request) = step else {
        panic!("gatepay creates server to server, got {step:?}");
    };
    assert_eq!(request.method, Method::Post);
    assert_eq!(request.url, url);
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
fn create_anypay_alipay_empty_custom() {
    // The subject is not sent (gatepay has no title field); notify_url is the listener's and
    // is not signed; no return_url unless configured.
    let step = provider()
        .build_create(&order("20191118123424", 1234, Channel::Alipay), &ctx())
        .unwrap();
    assert_form_post(
        &step,
        "https://gatepay.io/api/anypay/create",
        "appkey=098f6bcd4621d373cade4e832627b4f6\
         &price=12.34\
         &type=alipay\
         &out_order_id=20191118123424\
         &custom=\
         &sign=0d7f6b662aa204c54608c6892fc589ef\
         &notify_url=http%3A%2F%2F127.0.0.1%3A8765%2Fnotify%2Fmain",
    );
}

#[test]
fn create_anypay_wechat_with_custom_and_return_url() {
    let provider = provider()
        .with_custom("terry")
        .with_return_url(Some("https://shop.example.com/thanks?from=till&x=1".into()));
    let step = provider
        .build_create(&order("5cc75a6a0b418", 82, Channel::Wechat), &ctx())
        .unwrap();
    assert_form_post(
        &step,
        "https://gatepay.io/api/anypay/create",
        "appkey=098f6bcd4621d373cade4e832627b4f6\
         &price=0.82\
         &type=wechat\
         &out_order_id=5cc75a6a0b418\
         &custom=terry\
         &sign=5b525bb8e60c157ab7a4485589a2857e\
         &notify_url=http%3A%2F%2F127.0.0.1%3A8765%2Fnotify%2Fmain\
         &return_url=https%3A%2F%2Fshop.example.com%2Fthanks%3Ffrom%3Dtill%26x%3D1",
    );
}

#[test]
fn create_cloud_has_only_the_documented_fields() {
    let provider = cloud().with_custom("收银台1号");
    let step = provider
        .build_create(&order("UP-0001_x", 9_999_999, Channel::Alipay), &ctx())
        .unwrap();
    assert_form_post(
        &step,
        "https://cloud.gatepay.io/api/cloudpay/create",
        "appkey=098f6bcd4621d373cade4e832627b4f6\
         &price=99999.99\
         &type=alipay\
         &out_order_id=UP-0001_x\
         &custom=%E6%94%B6%E9%93%B6%E5%8F%B01%E5%8F%B7\
         &sign=b6059db18e84700e95cd4d25e7077ed4",
    );
}

#[test]
fn channels_offered() {
    assert_eq!(provider().channels(), &[Channel::Alipay, Channel::Wechat]);
    assert_eq!(cloud().channels(), &[Channel::Alipay]);
    for (account, channel) in [
        (provider(), Channel::Unionpay),
        (provider(), Channel::Qq),
        (cloud(), Channel::Wechat),
        (cloud(), Channel::Qq),
    ] {
        let result = account.build_create(&order("20191118123424", 100, channel), &ctx());
        assert!(
            matches!(result, Err(ProviderError::NotSupported(_))),
            "{channel}: {result:?}"
        );
    }
    assert!(provider().can_query());
    assert!(provider().payer_browser_needed());
    assert!(cloud().payer_browser_needed());
}

// ---------------------------------------------------------------------------------------------
// Query request

#[test]
fn query_request() {
    for provider_order_id in [None, Some("522".to_string())] {
        let request = provider()
            .build_query(
                &OrderRef {
                    order_no: OrderNo::new("20191118123424").unwrap(),
                    provider_order_id,
                },
                &ctx(),
            )
            .unwrap();
        assert_eq!(request.method, Method::Get);
        assert_eq!(
            request.url,
            "https://gatepay.io/api/order/check\
             ?appkey=098f6bcd4621d373cade4e832627b4f6\
             &out_order_id=20191118123424\
             &sign=64e271e9fe6b7a48a88bc071b4b310e8"
        );
        assert!(request.headers.is_empty());
        assert!(request.body.is_none());
    }
}

#[test]
fn query_request_cloud_host() {
    let request = cloud()
        .build_query(&order_ref("5cc75a6a0b418"), &ctx())
        .unwrap();
    // inner "098f6bcd4621d373cade4e832627b4f65cc75a6a0b418" → 381567492d27d2898b131d07c39b5707;
    // + LONG_SECRET → d6fb290347636fd17ca518b36e519e6e
    assert_eq!(request.method, Method::Get);
    assert_eq!(
        request.url,
        "https://cloud.gatepay.io/api/order/check\
         ?appkey=098f6bcd4621d373cade4e832627b4f6\
         &out_order_id=5cc75a6a0b418\
         &sign=d6fb290347636fd17ca518b36e519e6e"
    );
}

// ---------------------------------------------------------------------------------------------
// order_status

#[test]
fn order_status_table() {
    let table: &[(&str, ProviderState)] = &[
        // The only documented value.
        ("expired", ProviderState::Expired),
        // INFERRED explicit paid words.
        ("paid", ProviderState::Paid),
        ("PAID", ProviderState::Paid),
        ("success", ProviderState::Paid),
        ("已支付", ProviderState::Paid),
        ("支付成功", ProviderState::Paid),
        // INFERRED explicit waiting words.
        ("unpaid", ProviderState::Pending),
        ("pending", ProviderState::Pending),
        ("waiting", ProviderState::Pending),
        ("未支付", ProviderState::Pending),
        ("待支付", ProviderState::Pending),
        // Everything else leaves the order as it is.
        ("closed", ProviderState::Unknown("closed".into())),
        ("1", ProviderState::Unknown("1".into())),
        ("", ProviderState::Unknown(String::new())),
        ("paying", ProviderState::Unknown("paying".into())),
        ("not paid", ProviderState::Unknown("not paid".into())),
        ("unsuccess", ProviderState::Unknown("unsuccess".into())),
    ];
    for (status, state) in table {
        assert_eq!(&map_order_status(status), state, "order_status {status:?}");
    }
}

#[test]
fn only_explicit_words_are_paid() {
    let paid = ["paid", "success", "已支付", "支付成功"];
    let mut candidates: Vec<String> = (-100..1000).map(|n| n.to_string()).collect();
    candidates.extend(
        [
            "true",
            "ok",
            "done",
            "finish",
            "finished",
            "complete",
            "completed",
            "payed",
            "pay",
            "1",
            "9",
            "100",
            "paid ",
            "success!",
            "succeeded",
            "支付",
            "已付款",
            "成功",
            "付款成功",
            "paid_unconfirmed",
            "unpaid",
            "expired",
            "refund",
            "closed",
            "null",
        ]
        .iter()
        .map(|s| s.to_string()),
    );
    for status in candidates {
        let is_paid = map_order_status(&status) == ProviderState::Paid;
        let explicit = paid.iter().any(|p| p.eq_ignore_ascii_case(status.trim()));
        assert_eq!(is_paid, explicit, "order_status {status:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// Create answer

fn tiny_png() -> Vec<u8> {
    let png = qrtill::qr::to_png("x", 1).unwrap();
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"));
    png
}

#[test]
fn parse_create_seed_example_verbatim() {
    // The seed's success example as printed, `\/` escapes and trailing comma included.
    let body = r#"{
    "code": 100,
    "msg": "请求成功",
    "time": "1556614084",
    "data": {
        "pay_url": "https:\/\/gatepay.io\/pay\/api?id=5cc75a6a0b418&type=wechat",
        "qrcode_url": "https:\/\/gatepay.io\/qrcode\/buildsize=130&text=https%3A%2F%2Fgatepay.io%2Fpay%2Fapi%3Fid%3D5cc75a6a0b418%26type%3Dwechat",
        "qrcode_body": "data:image\/jpeg;base64,iVBORw0KGgoAAAANSUhEUgAAAKAAAACgAQMAAACxAfVuAAAABlBMVEX\/\/\/8AAABVwtN+AAAACXBIWXMAAA7EAAAOxAGVKw4bAAABg0lEQVRIie2WMY7EIAxFHVH4Ukhciw46roXkS1Egeb8hkWa73eByXETK0yh4Pt8fiL71ui5VlUkxVCqV8VL\/BzsF6TF1HtxaJfaAoiI96eRRWmvanGAPPcjgQewHRXSmNiCIE4Qg6F1Ud+fsAW3jrJrV526+h6sCdg6dj1+Geg8vdK6msgJlKFI9YCSKFCOPnIl10DkkCAyFZ9I28rNxh\/CywdIZg\/WO7tUBkmnR0yTMa2k2tecQIttohZ6pQI39w0MIebEQnrnAto8fziCGCyiJYIU7W87hBJAZYQlY4R6Dv0N0GE3NiDZh+\/3NUxhmsviMGX9eR3GBtkqaMdnbY6VDeK2g6zEsiHKAlh+Qw84OeKncqx9CWEksRJDIYDtDTmHaUwR\/Wnr6wLAMGrrNJnaOPeDiOI0z1\/KZywdwnR3dDFbWYVw9oN0ZrFaA8Mc95ADus1hkWDBpLV5w5TIEHrmoE8QtZMayTNtcoN0ZwlxBN1h94Loz7KMYk3Bn8hn81sv6AcQJdFCohA5NAAAAAElFTkSuQmCC",
        "params": {
            "appkey": "098f6bcd4621d373cade4e832627b4f6",
            "price": "0.82",
            "type": "wechat",
            "out_order_id": "5cc75a6a0b418",
            "custom": "terry",
            "sign": "45f46863f10965c0f0671fb738efb13e",
        }
    }
}"#;
    let outcome = provider().parse_create(&response(200, body)).unwrap();
    assert_eq!(
        outcome.qr,
        Some(QrPayload::Text(
            "https://gatepay.io/pay/api?id=5cc75a6a0b418&type=wechat".into()
        ))
    );
    // The create answer names no order id, no adjusted amount and no lifetime.
    assert_eq!(outcome.provider_order_id, None);
    assert_eq!(outcome.payable, None);
    assert_eq!(outcome.timeout_secs, None);
    assert_eq!(outcome.payer_page, None);
}

#[test]
fn parse_create_cloud_example() {
    // The seed's cloud example (no qrcode_body; a tab and a trailing comma as printed).
    let body = "{\n    \"code\": 100,\n    \"msg\": \"请求成功\",\n    \"time\": \"1556614084\",\n    \"data\": {\n        \"pay_url\": \"https://cloud.gatepay.io\\/pay\\/api?id=5cc75a6a0b418&type=alipay\",\n        \"qrcode_url\": \"https://cloud.gatepay.io/qrcode\\/buildsize=130&text=https://cloud.gatepay.io%2Fpay%2Fapi%3Fid%3D5cc75a6a0b418%26type%3Dalipay\",\n       \t\"params\": {\n            \"appkey\": \"098f6bcd4621d373cade4e832627b4f6\",\n            \"price\": \"0.82\",\n            \"type\": \"alipay\",\n            \"out_order_id\": \"5cc75a6a0b418\",\n            \"custom\": \"test_user\",\n            \"sign\": \"45f46863f10965c0f0671fb738efb13e\",\n        }\n    }\n}";
    let outcome = cloud().parse_create(&response(200, body)).unwrap();
    assert_eq!(
        outcome.qr,
        Some(QrPayload::Text(
            "https://cloud.gatepay.io/pay/api?id=5cc75a6a0b418&type=alipay".into()
        ))
    );
}

#[test]
fn parse_create_without_pay_url_uses_qrcode_body() {
    let png = tiny_png();
    let b64 = base64::engine::general_purpose::STANDARD.encode(&png);
    for qrcode_body in [
        format!("data:image/jpeg;base64,{b64}"),
        format!("data:image/png;base64,{b64}"),
        b64.clone(),
    ] {
        for pay_url in ["", "not a url"] {
            let body = serde_json::json!({
                "code": 100, "msg": "请求成功", "time": "1556614084",
                "data": {"pay_url": pay_url, "qrcode_url": "", "qrcode_body": qrcode_body}
            })
            .to_string();
            let outcome = provider().parse_create(&response(200, &body)).unwrap();
            assert_eq!(
                outcome.qr,
                Some(QrPayload::Image(png.clone())),
                "{pay_url:?}"
            );
        }
    }
}

#[test]
fn parse_create_code_as_string() {
    let body = r#"{"code":"100","msg":"请求成功","time":1556614084,
        "data":{"pay_url":"https://gatepay.io/pay/api?id=x&type=alipay"}}"#;
    let outcome = provider().parse_create(&response(200, body)).unwrap();
    assert_eq!(
        outcome.qr.as_ref().and_then(QrPayload::text),
        Some("https://gatepay.io/pay/api?id=x&type=alipay")
    );
}

/// Every code of the seed's create tables (anypay and cloudpay), with the seed's words.
const CREATE_CODES: &[(i64, &str, &str)] = &[
    (101, "秘钥必须", "appkey is required"),
    (102, "无效的秘钥", "invalid appkey"),
    (103, "秘钥已过期", "expired"),
    (103, "签名必须", "sign is missing"),
    (104, "无效的签名", "invalid signature"),
    (105, "参数缺失", "missing"),
    (106, "存在禁止传递的参数", "may not be sent"),
    (107, "api已关闭", "API is switched off"),
    (108, "回调接口url未填写", "callback URL is not set"),
    (109, "通知接口url未填写", "notify URL is not set"),
    (110, "套餐已超额", "quota"),
    (199, "未知错误", "unknown error"),
    (201, "价格无效", "invalid price"),
    (202, "无效的支付方式", "invalid payment type"),
    (203, "当前支付方式已关闭", "switched off"),
    (204, "无可用支付方式", "no payment QR"),
    (205, "分类创建错误", "category"),
    (206, "产品创建错误", "product"),
    (207, "库存创建错误", "stock"),
    (208, "队列创建错误", "queue"),
    (209, "非代理用户", "agent"),
];

#[test]
fn parse_create_every_seed_error_code() {
    for &(code, zh, en) in CREATE_CODES {
        let body = serde_json::json!({"code": code, "msg": zh, "time": "1556614084"}).to_string();
        for account in [provider(), cloud()] {
            match account.parse_create(&response(200, &body)) {
                Err(ProviderError::Rejected { code: got, message }) => {
                    assert_eq!(got, code.to_string());
                    assert!(message.starts_with(zh), "{code}: {message}");
                    assert!(message.contains(en), "{code}: {message}");
                    // The seed's words are in the message once: no echo of the same text.
                    assert!(!message.contains("(gatepay:"), "{code}: {message}");
                }
                other => panic!("{code}: {other:?}"),
            }
        }
    }
}

#[test]
fn code_103_without_words_names_both_meanings() {
    let text = code_text(Endpoint::Create, 103, "").unwrap();
    assert!(
        text.contains("秘钥已过期") && text.contains("签名必须"),
        "{text}"
    );
    // Codes 201–209 mean other things at the query.
    assert_eq!(
        code_text(Endpoint::Query, 201, "").unwrap(),
        "订单不存在 / no such order"
    );
    assert_eq!(code_text(Endpoint::Query, 202, ""), None);
    assert_eq!(code_text(Endpoint::Create, 100, ""), None);
}

#[test]
fn parse_create_error_with_other_words_and_unknown_codes() {
    let body = r#"{"code":104,"msg":"sign error","time":"1556614084"}"#;
    assert_eq!(
        provider().parse_create(&response(200, body)),
        Err(ProviderError::Rejected {
            code: "104".into(),
            message: "无效的签名 / invalid signature: check `appsecret` in the config (gatepay: sign error)"
                .into(),
        })
    );
    let body = r#"{"code":300,"msg":"系统维护","time":"1556614084"}"#;
    assert_eq!(
        provider().parse_create(&response(200, body)),
        Err(ProviderError::Rejected {
            code: "300".into(),
            message: "系统维护 / an error code this version does not know".into(),
        })
    );
    // An error JSON behind an HTTP error status is still the provider's refusal.
    let body = r#"{"code":110,"msg":"套餐已超额","time":"1556614084"}"#;
    assert!(matches!(
        provider().parse_create(&response(403, body)),
        Err(ProviderError::Rejected { code, .. }) if code == "110"
    ));
}

#[test]
fn parse_create_bad_answers() {
    let html = "<html><head><title>502 Bad Gateway</title></head>\
                <body><center><h1>502 Bad Gateway</h1></center></body></html>";
    assert_eq!(
        provider().parse_create(&response(502, html)),
        Err(ProviderError::HttpStatus { status: 502 })
    );
    let cases = [
        ("200 HTML", "<html><body>维护中 maintenance</body></html>"),
        ("empty", ""),
        ("garbage", "\u{0}\u{1}garbage"),
        (
            "truncated",
            r#"{"code": 100, "msg": "请求成功", "data": {"pay_url": "https://gatepay.io/pay/api?id=5c"#,
        ),
        ("no code", r#"{"msg": "请求成功", "data": {}}"#),
        ("no data", r#"{"code": 100, "msg": "请求成功"}"#),
        (
            "no QR at all",
            r#"{"code": 100, "msg": "请求成功", "data": {"pay_url": "", "qrcode_url": "https://gatepay.io/qrcode/build"}}"#,
        ),
        (
            "qrcode_body not an image",
            r#"{"code": 100, "data": {"qrcode_body": "data:image/png;base64,aGVsbG8gd29ybGQ="}}"#,
        ),
        (
            "qrcode_body not base64",
            r#"{"code": 100, "data": {"qrcode_body": "data:image/png;base64,!!!"}}"#,
        ),
    ];
    for (name, body) in cases {
        let result = provider().parse_create(&response(200, body));
        assert!(
            matches!(result, Err(ProviderError::Decode { .. })),
            "{name}: {result:?}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Query answer

#[test]
fn parse_query_seed_example() {
    let body = r#"{
  "code": 100,
  "msg": "请求成功",
  "time": "1557056209",
  "data": {
    "order_id": 522,
    "order_name": "任意金额支付:1.88元",
    "order_price": "1.88",
    "order_type": "alipay",
    "order_status": "expired"
  }
}"#;
    let report = report(provider().parse_query(&response(200, body)).unwrap());
    assert_eq!(
        report,
        StatusReport {
            state: ProviderState::Expired,
            raw_code: "expired".into(),
            provider_order_id: Some("522".into()),
            qr: None,
            amount: Some(Fen(188)),
            timeout_secs: None,
        }
    );
}

#[test]
fn parse_query_paid_pending_unknown() {
    for (status, state) in [
        ("paid", ProviderState::Paid),
        ("unpaid", ProviderState::Pending),
        ("closed", ProviderState::Unknown("closed".into())),
    ] {
        let body = serde_json::json!({
            "code": 100, "msg": "请求成功", "time": "1557056209",
            "data": {"order_id": "523", "order_name": "任意金额支付:12.34元",
                     "order_price": 12.34, "order_type": "wechat", "order_status": status}
        })
        .to_string();
        let report = report(provider().parse_query(&response(200, &body)).unwrap());
        assert_eq!(report.state, state, "{status}");
        assert_eq!(report.raw_code, status);
        assert_eq!(report.amount, Some(Fen(1234)));
        assert_eq!(report.provider_order_id.as_deref(), Some("523"));
    }
}

#[test]
fn parse_query_not_found_is_201() {
    let body = r#"{"code":201,"msg":"订单不存在","time":"1557056209"}"#;
    assert_eq!(
        provider().parse_query(&response(200, body)),
        Ok(QueryOutcome::NotFound {
            message: "订单不存在 / no such order".into()
        })
    );
}

#[test]
fn parse_query_every_common_error_code() {
    for &(code, zh, en) in CREATE_CODES.iter().filter(|(code, ..)| *code < 200) {
        let body = serde_json::json!({"code": code, "msg": zh, "time": "1557056209"}).to_string();
        match provider().parse_query(&response(200, &body)) {
            Err(ProviderError::Rejected { code: got, message }) => {
                assert_eq!(got, code.to_string());
                assert!(message.starts_with(zh) && message.contains(en), "{message}");
            }
            other => panic!("{code}: {other:?}"),
        }
    }
    // 202 means nothing at the query: reported with gatepay's words, as unknown.
    let body = r#"{"code":202,"msg":"无效的支付方式","time":"1557056209"}"#;
    assert_eq!(
        provider().parse_query(&response(200, body)),
        Err(ProviderError::Rejected {
            code: "202".into(),
            message: "无效的支付方式 / an error code this version does not know".into(),
        })
    );
}

#[test]
fn parse_query_bad_answers() {
    assert_eq!(
        provider().parse_query(&response(500, "<html>500</html>")),
        Err(ProviderError::HttpStatus { status: 500 })
    );
    for (name, body) in [
        ("html", "<html><body>502</body></html>"),
        ("truncated", r#"{"code":100,"data":{"order_status":"pa"#),
        ("no status", r#"{"code":100,"data":{"order_id":522}}"#),
        ("no data", r#"{"code":100,"msg":"请求成功"}"#),
        (
            "status not text",
            r#"{"code":100,"data":{"order_status":{"a":1}}}"#,
        ),
    ] {
        let result = provider().parse_query(&response(200, body));
        assert!(
            matches!(result, Err(ProviderError::Decode { .. })),
            "{name}: {result:?}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Notify

fn good_pairs() -> Vec<(&'static str, String)> {
    vec![
        ("order_id", "522".into()),
        ("out_order_id", "20191118123424".into()),
        ("price", "12.34".into()),
        ("realprice", "12.34".into()),
        ("type", "alipay".into()),
        ("paytime", "1557056209".into()),
        ("extend", "terry".into()),
        ("sign", NOTIFY_SIGN.into()),
    ]
}

fn form_body(pairs: &[(&'static str, String)]) -> Vec<u8> {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs.iter().map(|(k, v)| (*k, v.as_str())))
        .finish()
        .into_bytes()
}

fn post(pairs: &[(&'static str, String)]) -> CallbackRequest {
    CallbackRequest {
        method: "POST".into(),
        query: vec![],
        body: form_body(pairs),
        content_type: Some("application/x-www-form-urlencoded".into()),
        headers: Vec::new(),
    }
}

fn get(pairs: &[(&'static str, String)]) -> CallbackRequest {
    CallbackRequest {
        method: "GET".into(),
        query: pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect(),
        body: vec![],
        content_type: None,
        headers: Vec::new(),
    }
}

fn with(pairs: &[(&'static str, String)], name: &str, value: &str) -> Vec<(&'static str, String)> {
    pairs
        .iter()
        .map(|(k, v)| {
            (
                *k,
                if *k == name {
                    value.to_string()
                } else {
                    v.clone()
                },
            )
        })
        .collect()
}

fn without(pairs: &[(&'static str, String)], name: &str) -> Vec<(&'static str, String)> {
    pairs.iter().filter(|(k, _)| *k != name).cloned().collect()
}

fn paid_report(fen: i64) -> CallbackReport {
    CallbackReport {
        order_no: OrderNo::new("20191118123424").unwrap(),
        state: ProviderState::Paid,
        raw_code: "paid".into(),
        amount: Some(Fen(fen)),
        amount_signed: true,
    }
}

#[test]
fn notify_good_post_and_get() {
    for request in [post(&good_pairs()), get(&good_pairs())] {
        assert_eq!(provider().verify_callback(&request), Ok(paid_report(1234)));
    }
}

#[test]
fn notify_uppercase_sign_accepted() {
    let pairs = with(&good_pairs(), "sign", &NOTIFY_SIGN.to_ascii_uppercase());
    assert_eq!(
        provider().verify_callback(&post(&pairs)),
        Ok(paid_report(1234))
    );
}

#[test]
fn notify_forged_refused() {
    for sign in [
        "00000000000000000000000000000000",
        // One hex digit off.
        "7e7c284aa415f7262b1823d2a7ca0835",
        // Right sign for another order.
        NOTIFY_SIGN_OTHER_ORDER,
        // The inner MD5 alone (the appsecret left out).
        "c4e3b3aa275c32ae4e9cc30ae2cde21b",
        "",
    ] {
        let pairs = with(&good_pairs(), "sign", sign);
        assert_eq!(
            provider().verify_callback(&post(&pairs)),
            Err(ProviderError::BadSignature),
            "sign {sign:?}"
        );
    }
    // The right fields signed with another appsecret.
    let other = Gatepay::new(
        "main",
        "https://gatepay.io",
        Variant::AnyPay,
        APPKEY,
        Secret::new("another-secret"),
    );
    assert_eq!(
        other.verify_callback(&post(&good_pairs())),
        Err(ProviderError::BadSignature)
    );
}

#[test]
fn notify_wrong_amount() {
    // A genuinely signed nudged amount (realprice differs from price) is reported as paid
    // with that amount, and the signature covers it: the service compares it with the order.
    let nudged = vec![
        ("order_id", "522".to_string()),
        ("out_order_id", "20191118123424".into()),
        ("price", "12.34".into()),
        ("realprice", "12.33".into()),
        ("type", "wechat".into()),
        ("paytime", "1557056209".into()),
        ("extend", String::new()),
        ("sign", NOTIFY_SIGN_NUDGED.into()),
    ];
    assert_eq!(
        provider().verify_callback(&post(&nudged)),
        Ok(paid_report(1233))
    );
    // A tampered amount breaks the signature, whichever amount field is touched.
    for (field, value) in [
        ("realprice", "1234.00"),
        ("realprice", "12.340"),
        ("realprice", "12.3"),
        ("price", "0.01"),
    ] {
        let pairs = with(&good_pairs(), field, value);
        assert_eq!(
            provider().verify_callback(&post(&pairs)),
            Err(ProviderError::BadSignature),
            "{field}={value}"
        );
    }
}

#[test]
fn notify_repeated_is_the_same_report() {
    // gatepay retries a notify three times; each verifies alike (the ledger makes it
    // idempotent: paid is terminal).
    let request = post(&good_pairs());
    let first = provider().verify_callback(&request);
    for _ in 0..3 {
        assert_eq!(provider().verify_callback(&request), first);
    }
    assert_eq!(first, Ok(paid_report(1234)));
}

#[test]
fn notify_unknown_fields_ignored() {
    // The SDK examples read `appkey` too; other extra fields are ignored. A notify that names
    // another appkey still has to be signed with ours.
    let mut pairs = good_pairs();
    pairs.push(("appkey", "someone-else".into()));
    pairs.push(("foo", "bar".into()));
    pairs.insert(0, ("_t", "1557056210".into()));
    assert_eq!(
        provider().verify_callback(&post(&pairs)),
        Ok(paid_report(1234))
    );
}

#[test]
fn notify_missing_fields() {
    for name in [
        "sign",
        "order_id",
        "out_order_id",
        "price",
        "realprice",
        "type",
        "paytime",
    ] {
        let result = provider().verify_callback(&post(&without(&good_pairs(), name)));
        match result {
            Err(ProviderError::Decode { reason }) => {
                assert!(reason.contains(&format!("`{name}`")), "{name}: {reason}");
            }
            other => panic!("{name}: {other:?}"),
        }
    }
    // A missing `extend` counts as empty: here the signature was over "terry", so it fails.
    assert_eq!(
        provider().verify_callback(&post(&without(&good_pairs(), "extend"))),
        Err(ProviderError::BadSignature)
    );
    // …and over "" it passes.
    let nudged_without_extend = vec![
        ("order_id", "522".to_string()),
        ("out_order_id", "20191118123424".into()),
        ("price", "12.34".into()),
        ("realprice", "12.33".into()),
        ("type", "wechat".into()),
        ("paytime", "1557056209".into()),
        ("sign", NOTIFY_SIGN_NUDGED.into()),
    ];
    assert_eq!(
        provider().verify_callback(&get(&nudged_without_extend)),
        Ok(paid_report(1233))
    );
}

#[test]
fn notify_ambiguous_duplicates_refused() {
    // A signed field in both the query and the body with different values.
    let mut request = post(&good_pairs());
    request.query = vec![("realprice".into(), "1000.00".into())];
    assert!(matches!(
        provider().verify_callback(&request),
        Err(ProviderError::Decode { .. })
    ));
    // The same value twice is harmless.
    let mut request = post(&good_pairs());
    request.query = vec![("realprice".into(), "12.34".into())];
    assert_eq!(provider().verify_callback(&request), Ok(paid_report(1234)));
}

#[test]
fn notify_signed_but_malformed_fields() {
    // Well signed, but the order number breaks our rules: refused after the check.
    let secret = Secret::new(SECRET);
    let sign = SignInput::Notify {
        appkey: APPKEY,
        order_id: "522",
        out_order_id: "a b",
        price: "12.34",
        realprice: "12.34",
        pay_type: "alipay",
        paytime: "1557056209",
        extend: "",
    }
    .sign(&secret);
    let pairs = vec![
        ("order_id", "522".to_string()),
        ("out_order_id", "a b".into()),
        ("price", "12.34".into()),
        ("realprice", "12.34".into()),
        ("type", "alipay".into()),
        ("paytime", "1557056209".into()),
        ("extend", String::new()),
        ("sign", sign),
    ];
    assert!(matches!(
        provider().verify_callback(&post(&pairs)),
        Err(ProviderError::Decode { .. })
    ));
}

#[test]
fn callback_acks() {
    let ok = provider().callback_ack(true);
    assert_eq!((ok.status, ok.body.as_str()), (200, "success"));
    let refused = provider().callback_ack(false);
    assert_eq!((refused.status, refused.body.as_str()), (200, "fail"));
}

// ---------------------------------------------------------------------------------------------
// Secrets and config

#[test]
fn debug_never_shows_the_secret() {
    let plain = provider();
    let custom = provider().with_custom("terry");
    for text in [
        format!("{plain:?}"),
        format!("{plain:#?}"),
        format!("{custom:?}"),
        format!("{:?}", cloud()),
    ] {
        assert!(!text.contains(SECRET), "{text}");
        assert!(!text.contains(LONG_SECRET), "{text}");
    }
    let boxed: Box<dyn Provider> = Box::new(provider());
    assert!(!format!("{boxed:?}").contains(SECRET));
}

fn config(provider_table: &str) -> Result<qrtill::config::Config, String> {
    qrtill::config::Config::parse(&format!(
        "[[provider]]\nid = \"gp\"\nkind = \"gatepay\"\n{provider_table}"
    ))
}

#[test]
fn config_good_tables() {
    let cfg = config(&format!(
        "appkey = \"{APPKEY}\"\nappsecret = \"{SECRET}\"\n"
    ))
    .unwrap();
    let account = cfg.provider("gp").unwrap();
    assert_eq!(account.kind(), "gatepay");
    assert_eq!(account.display_name(), "gatepay.io");
    assert_eq!(account.channels(), &[Channel::Alipay, Channel::Wechat]);
    assert!(!format!("{cfg:?}").contains(SECRET));
    // The default host is gatepay's.
    let request = account
        .build_query(&order_ref("20191118123424"), &ctx())
        .unwrap();
    assert!(
        request
            .url
            .starts_with("https://gatepay.io/api/order/check?")
    );

    let cfg = config(&format!(
        "appkey = \"{APPKEY}\"\nappsecret = \"{LONG_SECRET}\"\nvariant = \"cloud\"\ncustom = \"收银台1号\"\n"
    ))
    .unwrap();
    let account = cfg.provider("gp").unwrap();
    assert_eq!(account.display_name(), "gatepay.io 云端");
    assert_eq!(account.channels(), &[Channel::Alipay]);
    // Same bytes as the hand-checked cloud request above.
    let step = account
        .build_create(&order("UP-0001_x", 9_999_999, Channel::Alipay), &ctx())
        .unwrap();
    let expected = cloud()
        .with_custom("收银台1号")
        .build_create(&order("UP-0001_x", 9_999_999, Channel::Alipay), &ctx())
        .unwrap();
    assert_eq!(step, expected);

    let cfg = config(&format!(
        "appkey = \"{APPKEY}\"\nappsecret = \"{SECRET}\"\nvariant = \"anypay\"\nbase_url = \"http://127.0.0.1:9/gatepay/\"\nreturn_url = \"https://shop.example.com/thanks\"\n"
    ))
    .unwrap();
    let request = cfg
        .provider("gp")
        .unwrap()
        .build_query(&order_ref("20191118123424"), &ctx())
        .unwrap();
    assert!(
        request
            .url
            .starts_with("http://127.0.0.1:9/gatepay/api/order/check?"),
        "{}",
        request.url
    );
}

#[test]
fn config_refusals_name_the_key() {
    let cases: &[(&str, &str)] = &[
        ("appsecret = \"s\"\n", "missing key `appkey`"),
        ("appkey = \"k\"\n", "missing key `appsecret`"),
        (
            "appkey = \"\"\nappsecret = \"s\"\n",
            "key `appkey` is empty",
        ),
        (
            "appkey = \"k\"\nappsecret = \"s\"\napp_secret = \"x\"\n",
            "unknown key `app_secret`",
        ),
        (
            "appkey = \"k\"\nappsecret = \"s\"\nkey = \"x\"\n",
            "unknown key `key`",
        ),
        (
            "appkey = \"k\"\nappsecret = \"s\"\nvariant = \"clouds\"\n",
            "key `variant`",
        ),
        (
            "appkey = \"k\"\nappsecret = 42\n",
            "key `appsecret` must be a string",
        ),
        (
            "appkey = \"k\"\nappsecret = \"s\"\nbase_url = \"gatepay.io\"\n",
            "key `base_url`",
        ),
        ("appkey = \"k k\"\nappsecret = \"s\"\n", "key `appkey`"),
        (
            "appkey = \"k\"\nappsecret = \"s\"\nvariant = \"cloud\"\nreturn_url = \"https://a.example\"\n",
            "key `return_url`",
        ),
    ];
    for (table, expected) in cases {
        let err = config(table).unwrap_err();
        assert!(err.contains(expected), "{table}: {err}");
        assert!(err.contains("`gp`") && err.contains("gatepay"), "{err}");
    }
    // A secret is never part of a refusal.
    let err = config(&format!(
        "appkey = \"{APPKEY}\"\nappsecret = \"{SECRET}\"\nvariant = \"x\"\n"
    ))
    .unwrap_err();
    assert!(!err.contains(SECRET), "{err}");
}
