//! The 易支付 / epay MD5 merchant protocol (PROVIDERS.md §6), checked offline through the
//! public provider API: the published sign vector and hand-computed ones, the exact `mapi.php`
//! create and `api.php?act=order` query requests, the `status` and `trade_status` tables (and
//! that nothing else is ever paid), the create and query answer readers with the platform's
//! own error codes, notify verification and the ack, that the merchant key never shows in
//! `Debug` or a loggable URL, and the `[[provider]]` config table. No network, no clock, no
//! ledger.
//!
//! Every MD5 below was computed outside this crate with
//! `python3 -c "import hashlib; print(hashlib.md5('...'.encode()).hexdigest())"` over the
//! input string written next to it; every form body and query string was checked with
//! Python's `urllib.parse.urlencode`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use qrtill::model::{Channel, Fen, OrderNo, ProviderState, QrPayload};
use qrtill::providers::epay::Epay;
use qrtill::providers::epay::transformers::{
    SignInput, cut_to_bytes, map_status, map_trade_status,
};
use qrtill::providers::{
    CallContext, CallbackReport, CallbackRequest, CreateOrder, CreateOutcome, CreateStep,
    HttpRequest, HttpResponse, Method, OrderRef, Provider, ProviderError, QueryOutcome,
    StatusReport, loggable_url,
};
use qrtill::secret::Secret;

const BASE: &str = "https://pay.example.com";
const PID: &str = "1001";
const KEY: &str = "test-key";
const LISTENER: &str = "http://127.0.0.1:8765/notify/main";
const NOW: i64 = 1_735_704_000;
const ORDER: &str = "20250101120000ABC";

fn provider() -> Epay {
    Epay::new("main", BASE, PID, Secret::new(KEY))
}

fn ctx() -> CallContext {
    CallContext {
        now_unix: NOW,
        notify_url: LISTENER.into(),
    }
}

fn order(no: &str, fen: i64, channel: Channel, subject: &str) -> CreateOrder {
    CreateOrder {
        order_no: OrderNo::new(no).unwrap(),
        amount: Fen(fen),
        channel,
        subject: subject.into(),
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

fn server_request(step: CreateStep) -> HttpRequest {
    match step {
        CreateStep::Server(request) => request,
        other => panic!("epay creates server to server, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// Golden signatures

#[test]
fn published_vector_from_the_go_client() {
    // AH-dark/epay-cli pkg/epay/utils_test.go (its URLs are https://www.pay.com/…):
    // "clientip=192.168.1.100&device=pc&money=1.00&name=VIP会员"
    // + "&notify_url=https://www.pay.com/notify_url.php&out_trade_no=20160806151343349"
    // + "&pid=1001&return_url=https://www.pay.com/return_url.php&type=alipay" + "123456"
    let create = SignInput::Create {
        clientip: "192.168.1.100",
        device: "pc",
        money: "1.00",
        name: "VIP会员",
        notify_url: "https://www.pay.com/notify_url.php",
        out_trade_no: "20160806151343349",
        pid: "1001",
        return_url: "https://www.pay.com/return_url.php",
        pay_type: "alipay",
    };
    assert_eq!(
        create.prestr(),
        "clientip=192.168.1.100&device=pc&money=1.00&name=VIP会员\
         &notify_url=https://www.pay.com/notify_url.php&out_trade_no=20160806151343349\
         &pid=1001&return_url=https://www.pay.com/return_url.php&type=alipay"
    );
    assert_eq!(
        create.sign(&Secret::new("123456")),
        "4a0d8e5a6499e5de11878b87fa9ac8ba"
    );
    // The Go test's own map: in any order, with an empty `param`, and `sign`/`sign_type`,
    // none of which is signed.
    let received: Vec<(String, String)> = [
        ("sign_type", "md5"),
        ("sign", "4a0d8e5a6499e5de11878b87fa9ac8ba"),
        ("param", ""),
        ("type", "alipay"),
        ("pid", "1001"),
        ("out_trade_no", "20160806151343349"),
        ("notify_url", "https://www.pay.com/notify_url.php"),
        ("return_url", "https://www.pay.com/return_url.php"),
        ("name", "VIP会员"),
        ("money", "1.00"),
        ("clientip", "192.168.1.100"),
        ("device", "pc"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    assert_eq!(
        SignInput::Received { params: &received }.sign(&Secret::new("123456")),
        "4a0d8e5a6499e5de11878b87fa9ac8ba"
    );
}

#[test]
fn create_sign_vectors() {
    let cases: &[(SignInput<'_>, &str)] = &[
        // "clientip=127.0.0.1&device=pc&money=12.34&name=qrtill"
        // + "&notify_url=http://127.0.0.1:8765/notify/main&out_trade_no=20250101120000ABC"
        // + "&pid=1001&type=alipay" + "test-key"
        (
            SignInput::Create {
                clientip: "127.0.0.1",
                device: "pc",
                money: "12.34",
                name: "qrtill",
                notify_url: LISTENER,
                out_trade_no: ORDER,
                pid: "1001",
                return_url: "",
                pay_type: "alipay",
            },
            "4410366bbfc25617bea961e98bab3019",
        ),
        // "clientip=127.0.0.1&device=pc&money=0.01&name=奶茶 x2"
        // + "&notify_url=http://127.0.0.1:8765/notify/main&out_trade_no=ORDER-42&pid=1001"
        // + "&return_url=https://shop.example.com/thanks?from=till&x=1&type=wxpay" + "test-key"
        (
            SignInput::Create {
                clientip: "127.0.0.1",
                device: "pc",
                money: "0.01",
                name: "奶茶 x2",
                notify_url: LISTENER,
                out_trade_no: "ORDER-42",
                pid: "1001",
                return_url: "https://shop.example.com/thanks?from=till&x=1",
                pay_type: "wxpay",
            },
            "251a763a0bffee9d24d5ba711a09fc22",
        ),
        // "clientip=192.168.1.100&device=mobile&money=50000.00&name=qrtill"
        // + "&notify_url=http://127.0.0.1:8765/notify/main&out_trade_no=Q_1&pid=1001"
        // + "&type=qqpay" + "test-key"
        (
            SignInput::Create {
                clientip: "192.168.1.100",
                device: "mobile",
                money: "50000.00",
                name: "qrtill",
                notify_url: LISTENER,
                out_trade_no: "Q_1",
                pid: "1001",
                return_url: "",
                pay_type: "qqpay",
            },
            "b18ad48ef15cba21f04dfe3a9a09712a",
        ),
    ];
    for (input, expected) in cases {
        assert_eq!(
            input.sign(&Secret::new(KEY)),
            *expected,
            "{}",
            input.prestr()
        );
    }
}

/// md5("money=12.34&name=qrtill&out_trade_no=20250101120000ABC&pid=1001"
///     + "&trade_no=4248000000000001&trade_status=TRADE_SUCCESS&type=alipay" + "test-key")
const NOTIFY_SIGN: &str = "9087bf3619ab4ae50dc7b8b20820c4ea";

#[test]
fn notify_sign_vectors() {
    let owned = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    // The document's notify example:
    // "money=1.00&name=VIP会员&out_trade_no=20160806151343349&pid=1001"
    // + "&trade_no=2016080622555342651&trade_status=TRADE_SUCCESS&type=alipay" + "123456"
    let doc = owned(&[
        ("pid", "1001"),
        ("trade_no", "2016080622555342651"),
        ("out_trade_no", "20160806151343349"),
        ("type", "alipay"),
        ("name", "VIP会员"),
        ("money", "1.00"),
        ("trade_status", "TRADE_SUCCESS"),
        ("sign_type", "MD5"),
    ]);
    assert_eq!(
        SignInput::Received { params: &doc }.sign(&Secret::new("123456")),
        "b2cc0f8fc1620ae2cb4f1ad82b549878"
    );
    let ours = owned(&good_notify_pairs("TRADE_SUCCESS", "12.34", NOTIFY_SIGN)[..]);
    assert_eq!(
        SignInput::Received { params: &ours }.sign(&Secret::new(KEY)),
        NOTIFY_SIGN
    );
}

#[test]
fn names_are_cut_to_127_bytes_on_a_character_boundary() {
    assert_eq!(cut_to_bytes("abc", 127), "abc");
    assert_eq!(cut_to_bytes(&"a".repeat(130), 127), "a".repeat(127));
    // 会 is three bytes: 42 of them fit in 127 bytes (126), the 43rd does not.
    let long = "会员充值".repeat(12);
    let cut = cut_to_bytes(&long, 127);
    assert_eq!(cut.len(), 126);
    assert_eq!(cut, format!("{}会员", "会员充值".repeat(10)));
}

// ---------------------------------------------------------------------------------------------
// Create request

fn assert_mapi_post(request: &HttpRequest, body: &str) {
    assert_eq!(request.method, Method::Post);
    assert_eq!(request.url, "https://pay.example.com/mapi.php");
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
fn create_alipay_defaults() {
    // No subject: name is `qrtill`; no return_url configured: none is sent or signed.
    // sign = md5("clientip=127.0.0.1&device=pc&money=12.34&name=qrtill&notify_url=…"
    //            + "&out_trade_no=20250101120000ABC&pid=1001&type=alipay" + "test-key")
    let request = server_request(
        provider()
            .build_create(&order(ORDER, 1234, Channel::Alipay, ""), &ctx())
            .unwrap(),
    );
    assert_mapi_post(
        &request,
        "pid=1001\
         &type=alipay\
         &out_trade_no=20250101120000ABC\
         &notify_url=http%3A%2F%2F127.0.0.1%3A8765%2Fnotify%2Fmain\
         &name=qrtill\
         &money=12.34\
         &clientip=127.0.0.1\
         &device=pc\
         &sign=4410366bbfc25617bea961e98bab3019\
         &sign_type=MD5",
    );
}

#[test]
fn create_wechat_with_subject_and_return_url() {
    // sign = md5("clientip=127.0.0.1&device=pc&money=0.01&name=奶茶 x2&notify_url=…"
    //            + "&out_trade_no=ORDER-42&pid=1001"
    //            + "&return_url=https://shop.example.com/thanks?from=till&x=1&type=wxpay"
    //            + "test-key")
    let provider =
        provider().with_return_url(Some("https://shop.example.com/thanks?from=till&x=1".into()));
    let request = server_request(
        provider
            .build_create(&order("ORDER-42", 1, Channel::Wechat, " 奶茶 x2 "), &ctx())
            .unwrap(),
    );
    assert_mapi_post(
        &request,
        "pid=1001\
         &type=wxpay\
         &out_trade_no=ORDER-42\
         &notify_url=http%3A%2F%2F127.0.0.1%3A8765%2Fnotify%2Fmain\
         &return_url=https%3A%2F%2Fshop.example.com%2Fthanks%3Ffrom%3Dtill%26x%3D1\
         &name=%E5%A5%B6%E8%8C%B6+x2\
         &money=0.01\
         &clientip=127.0.0.1\
         &device=pc\
         &sign=251a763a0bffee9d24d5ba711a09fc22\
         &sign_type=MD5",
    );
}

#[test]
fn create_qq_with_device_and_client_ip() {
    // sign = md5("clientip=192.168.1.100&device=mobile&money=50000.00&name=qrtill&notify_url=…"
    //            + "&out_trade_no=Q_1&pid=1001&type=qqpay" + "test-key")
    let provider = provider()
        .with_device("mobile")
        .with_client_ip("192.168.1.100");
    let request = server_request(
        provider
            .build_create(&order("Q_1", 5_000_000, Channel::Qq, ""), &ctx())
            .unwrap(),
    );
    let body = String::from_utf8(request.body.clone().unwrap()).unwrap();
    assert!(body.contains("&type=qqpay&"), "{body}");
    assert!(
        body.ends_with(
            "&money=50000.00&clientip=192.168.1.100&device=mobile\
             &sign=b18ad48ef15cba21f04dfe3a9a09712a&sign_type=MD5"
        ),
        "{body}"
    );
}

#[test]
fn create_long_subject_is_cut_before_signing() {
    // name = "会员充值"×10 + "会员" (126 bytes);
    // sign = md5("clientip=127.0.0.1&device=pc&money=1.00&name=" + name + "&notify_url=…"
    //            + "&out_trade_no=LONG-1&pid=1001&type=alipay" + "test-key")
    let request = server_request(
        provider()
            .build_create(
                &order("LONG-1", 100, Channel::Alipay, &"会员充值".repeat(12)),
                &ctx(),
            )
            .unwrap(),
    );
    let body = String::from_utf8(request.body.unwrap()).unwrap();
    let fields: Vec<(String, String)> = url::form_urlencoded::parse(body.as_bytes())
        .into_owned()
        .collect();
    let field = |name: &str| {
        fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .unwrap()
    };
    assert_eq!(field("name"), format!("{}会员", "会员充值".repeat(10)));
    assert_eq!(field("sign"), "845059a3495cce2ae8452ae272bc81ed");
}

#[test]
fn create_unionpay_is_not_supported() {
    assert!(!provider().channels().contains(&Channel::Unionpay));
    assert_eq!(
        provider().channels(),
        [Channel::Alipay, Channel::Wechat, Channel::Qq]
    );
    assert_eq!(
        provider().build_create(&order(ORDER, 1, Channel::Unionpay, ""), &ctx()),
        Err(ProviderError::NotSupported("this channel"))
    );
}

// ---------------------------------------------------------------------------------------------
// Query request

#[test]
fn query_by_our_order_number_with_the_key_in_the_url() {
    for provider_order_id in [None, Some("4248000000000001".to_string())] {
        let request = provider()
            .build_query(
                &OrderRef {
                    order_no: OrderNo::new(ORDER).unwrap(),
                    provider_order_id,
                },
                &ctx(),
            )
            .unwrap();
        assert_eq!(request.method, Method::Get);
        assert_eq!(
            request.url,
            "https://pay.example.com/api.php?act=order&pid=1001&key=test-key&out_trade_no=20250101120000ABC"
        );
        assert!(request.headers.is_empty());
        assert_eq!(request.body, None);
        // What may be logged of it has no key.
        assert_eq!(
            request.loggable_url(),
            "https://pay.example.com/api.php?act=order&pid=1001&key=***&out_trade_no=20250101120000ABC"
        );
    }
}

#[test]
fn query_key_is_url_encoded() {
    // urlencode([("act","order"),("pid","1001"),("key","k&y=1 +/"),("out_trade_no","X")])
    let provider = Epay::new(
        "main",
        "https://pay.example.com/sub/",
        PID,
        Secret::new("k&y=1 +/"),
    );
    let request = provider
        .build_query(
            &OrderRef {
                order_no: OrderNo::new("X").unwrap(),
                provider_order_id: None,
            },
            &ctx(),
        )
        .unwrap();
    assert_eq!(
        request.url,
        "https://pay.example.com/sub/api.php?act=order&pid=1001&key=k%26y%3D1+%2B%2F&out_trade_no=X"
    );
    assert!(!request.loggable_url().contains("k%26y"));
}

#[test]
fn loggable_urls_mask_every_credential_parameter() {
    let cases = [
        (
            "https://h/api.php?act=order&KEY=abc&sign=def&token=t&app_secret=s&x=1",
            "https://h/api.php?act=order&KEY=***&sign=***&token=***&app_secret=***&x=1",
        ),
        ("https://h/mapi.php", "https://h/mapi.php"),
        ("https://h/p?keyword=k", "https://h/p?keyword=k"),
        // Not a URL at all: the query goes entirely.
        ("not a url?key=abc", "not a url?***"),
    ];
    for (url, expected) in cases {
        assert_eq!(loggable_url(url), expected, "{url}");
    }
}

// ---------------------------------------------------------------------------------------------
// Status tables

#[test]
fn query_status_table() {
    assert_eq!(map_status("1"), ProviderState::Paid);
    assert_eq!(map_status("0"), ProviderState::Pending);
    assert_eq!(map_status(" 0 "), ProviderState::Pending);
    for other in [
        "2",
        "-1",
        "3",
        "paid",
        "TRADE_SUCCESS",
        "",
        "01",
        "1.0",
        "true",
    ] {
        assert_eq!(
            map_status(other),
            ProviderState::Unknown(other.trim().to_string()),
            "{other:?}"
        );
    }
}

#[test]
fn trade_status_table() {
    assert_eq!(map_trade_status("TRADE_SUCCESS"), ProviderState::Paid);
    for other in [
        "TRADE_FINISHED",
        "WAIT_BUYER_PAY",
        "TRADE_CLOSED",
        "trade_success",
        " TRADE_SUCCESS",
        "1",
        "",
    ] {
        assert_eq!(
            map_trade_status(other),
            ProviderState::Unknown(other.to_string()),
            "{other:?}"
        );
    }
}

#[test]
fn nothing_but_status_1_is_ever_paid() {
    for code in -50..=50 {
        let text = code.to_string();
        assert_eq!(
            map_status(&text) == ProviderState::Paid,
            code == 1,
            "{code}"
        );
        let body = format!(r#"{{"code":1,"msg":"查询订单号成功！","status":{code}}}"#);
        let state = report(provider().parse_query(&response(200, &body)).unwrap()).state;
        assert_eq!(state == ProviderState::Paid, code == 1, "{body}");
    }
}

// ---------------------------------------------------------------------------------------------
// Create answers

#[test]
fn parse_create_qrcode() {
    let body = r#"{"code":1,"msg":"succ","trade_no":"2016080622555342651","qrcode":"https://qr.alipay.com/bax0123"}"#;
    assert_eq!(
        provider().parse_create(&response(200, body)).unwrap(),
        CreateOutcome {
            provider_order_id: Some("2016080622555342651".into()),
            qr: Some(QrPayload::Text("https://qr.alipay.com/bax0123".into())),
            payable: None,
            payer_page: None,
            timeout_secs: None,
            payer_browser: false,
        }
    );
}

#[test]
fn parse_create_qrcode_wins_over_payurl() {
    let body = r#"{"code":1,"trade_no":"1","payurl":"https://pay.example.com/pay/1","qrcode":"weixin://wxpay/bizpayurl?pr=abc"}"#;
    let outcome = provider().parse_create(&response(200, body)).unwrap();
    assert_eq!(
        outcome.qr,
        Some(QrPayload::Text("weixin://wxpay/bizpayurl?pr=abc".into()))
    );
    assert!(!outcome.payer_browser);
}

#[test]
fn parse_create_payurl_needs_the_payers_browser() {
    // As PHP's json_encode writes it: slashes and Chinese escaped, code as a string.
    let body = r#"{"code":"1","msg":"\u53d1\u8d77\u652f\u4ed8\u6210\u529f","trade_no":"2016080622555342651","payurl":"https:\/\/pay.example.com\/pay\/wxpay\/2016080622555342651\/"}"#;
    assert_eq!(
        provider().parse_create(&response(200, body)).unwrap(),
        CreateOutcome {
            provider_order_id: Some("2016080622555342651".into()),
            qr: Some(QrPayload::Text(
                "https://pay.example.com/pay/wxpay/2016080622555342651/".into()
            )),
            payable: None,
            payer_page: None,
            timeout_secs: None,
            payer_browser: true,
        }
    );
}

#[test]
fn parse_create_without_trade_no_is_still_an_order() {
    let body = r#"{"code":1,"qrcode":"qr-content"}"#;
    let outcome = provider().parse_create(&response(200, body)).unwrap();
    assert_eq!(outcome.provider_order_id, None);
    assert_eq!(outcome.qr, Some(QrPayload::Text("qr-content".into())));
}

#[test]
fn parse_create_urlscheme_only_is_refused_clearly() {
    let body = r#"{"code":1,"trade_no":"1","urlscheme":"weixin://dl/business/?t=abc"}"#;
    match provider().parse_create(&response(200, body)) {
        Err(ProviderError::Rejected { code, message }) => {
            assert_eq!(code, "urlscheme");
            assert!(message.contains("mini-program"), "{message}");
            assert!(message.contains("小程序"), "{message}");
            assert!(message.contains("weixin://dl/business/?t=abc"), "{message}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn parse_create_platform_errors() {
    let cases: &[(u16, &str, &str, &str)] = &[
        (
            200,
            r#"{"code":-1,"msg":"签名校验失败，请返回重试！"}"#,
            "-1",
            "签名校验失败，请返回重试！",
        ),
        (200, r#"{"code":-1,"msg":"PID不存在"}"#, "-1", "PID不存在"),
        (
            200,
            r#"{"code":"-1","msg":"\u91d1\u989d\u4e0d\u5408\u6cd5"}"#,
            "-1",
            "金额不合法",
        ),
        (200, r#"{"code":0}"#, "0", "(no message)"),
        // A refusal sent with an error status still says why.
        (
            500,
            r#"{"code":-1,"msg":"支付方式(type)不存在"}"#,
            "-1",
            "支付方式(type)不存在",
        ),
    ];
    for &(status, body, code, message) in cases {
        assert_eq!(
            provider().parse_create(&response(status, body)),
            Err(ProviderError::Rejected {
                code: code.into(),
                message: message.into()
            }),
            "{body}"
        );
    }
}

fn assert_decode<T: std::fmt::Debug>(result: Result<T, ProviderError>, what: &str) {
    assert!(
        matches!(result, Err(ProviderError::Decode { .. })),
        "{what}: {result:?}"
    );
}

#[test]
fn parse_create_unreadable_answers() {
    let bodies = [
        "<html><body>502 Bad Gateway</body></html>",
        "",
        "success",
        r#"{"code":1,"trade_no":"1","qrc"#,
        r#"[1,2,3]"#,
        r#"{"msg":"no code"}"#,
        r#"{"code":1,"trade_no":"1"}"#,
        r#"{"code":1,"trade_no":"1","qrcode":"","payurl":""}"#,
        r#"{"code":1,"trade_no":"1","payurl":"javascript:alert(1)"}"#,
    ];
    for body in bodies {
        assert_decode(provider().parse_create(&response(200, body)), body);
    }
    assert_eq!(
        provider().parse_create(&response(502, "<html>Bad Gateway</html>")),
        Err(ProviderError::HttpStatus { status: 502 })
    );
}

// ---------------------------------------------------------------------------------------------
// Query answers

#[test]
fn parse_query_document_answer() {
    // The document's example, as PHP writes it (numbers from the database as strings).
    let body = r#"{"code":1,"msg":"\u67e5\u8be2\u8ba2\u5355\u53f7\u6210\u529f\uff01","trade_no":"2016080622555342651","out_trade_no":"20160806151343349","type":"alipay","pid":"1001","addtime":"2016-08-06 22:55:52","endtime":"2016-08-06 22:55:52","name":"VIP\u4f1a\u5458","money":"1.00","status":"1"}"#;
    assert_eq!(
        report(provider().parse_query(&response(200, body)).unwrap()),
        StatusReport {
            state: ProviderState::Paid,
            raw_code: "1".into(),
            provider_order_id: Some("2016080622555342651".into()),
            qr: None,
            amount: Some(Fen(100)),
            timeout_secs: None,
        }
    );
    let unpaid = r#"{"code":1,"msg":"查询订单号成功！","trade_no":"9","out_trade_no":"X","type":"wxpay","pid":1001,"addtime":"2025-01-01 12:00:00","endtime":null,"name":"qrtill","money":12.34,"status":0}"#;
    let unpaid = report(provider().parse_query(&response(200, unpaid)).unwrap());
    assert_eq!(unpaid.state, ProviderState::Pending);
    assert_eq!(unpaid.raw_code, "0");
    assert_eq!(unpaid.amount, Some(Fen(1234)));
}

#[test]
fn parse_query_unknown_status_leaves_the_order() {
    let body = r#"{"code":1,"status":"2","money":"12.34"}"#;
    let report = report(provider().parse_query(&response(200, body)).unwrap());
    assert_eq!(report.state, ProviderState::Unknown("2".into()));
}

#[test]
fn parse_query_not_found() {
    for body in [
        r#"{"code":-1,"msg":"订单号不存在"}"#,
        r#"{"code":-1,"msg":"\u8ba2\u5355\u53f7\u4e0d\u5b58\u5728"}"#,
        r#"{"code":-4,"msg":"订单不存在"}"#,
    ] {
        match provider().parse_query(&response(200, body)).unwrap() {
            QueryOutcome::NotFound { message } => {
                assert!(message.contains("不存在"), "{message}");
            }
            other => panic!("{body}: {other:?}"),
        }
    }
}

#[test]
fn parse_query_platform_errors_in_plain_words() {
    let cases: &[(&str, &str, &str)] = &[
        (
            r#"{"code":-2,"msg":"KEY校验失败"}"#,
            "-2",
            "KEY校验失败 (商户密钥错误 / the merchant key was refused: check `key`)",
        ),
        (
            r#"{"code":-3,"msg":"PID不存在"}"#,
            "-3",
            "PID不存在 (商户ID不存在 / unknown merchant id: check `pid`)",
        ),
        (
            r#"{"code":-5,"msg":"No Act!"}"#,
            "-5",
            "No Act! (接口不存在 / the platform does not know this call: check `base_url`)",
        ),
        (
            r#"{"code":-3}"#,
            "-3",
            "商户ID不存在 / unknown merchant id: check `pid`",
        ),
    ];
    for &(body, code, message) in cases {
        assert_eq!(
            provider().parse_query(&response(200, body)),
            Err(ProviderError::Rejected {
                code: code.into(),
                message: message.into()
            }),
            "{body}"
        );
    }
}

#[test]
fn parse_query_unreadable_answers() {
    for body in [
        "<!DOCTYPE html><html><title>404</title></html>",
        r#"{"code":1,"status":"#,
        r#"{"code":1,"msg":"no status"}"#,
        r#"{"code":1,"status":""}"#,
        r#"{"code":1,"status":null}"#,
        "garbage \u{0}\u{1}",
    ] {
        assert_decode(provider().parse_query(&response(200, body)), body);
    }
    assert_eq!(
        provider().parse_query(&response(404, "not found")),
        Err(ProviderError::HttpStatus { status: 404 })
    );
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

/// The platform's notify for [`ORDER`], field by field as it sends them.
fn good_notify_pairs<'a>(
    trade_status: &'a str,
    money: &'a str,
    sign: &'a str,
) -> Vec<(&'a str, &'a str)> {
    vec![
        ("pid", "1001"),
        ("trade_no", "4248000000000001"),
        ("out_trade_no", ORDER),
        ("type", "alipay"),
        ("name", "qrtill"),
        ("money", money),
        ("trade_status", trade_status),
        ("sign", sign),
        ("sign_type", "MD5"),
    ]
}

#[test]
fn notify_good_paid() {
    let request = notify(&good_notify_pairs("TRADE_SUCCESS", "12.34", NOTIFY_SIGN));
    let expected = CallbackReport {
        order_no: OrderNo::new(ORDER).unwrap(),
        state: ProviderState::Paid,
        raw_code: "TRADE_SUCCESS".into(),
        amount: Some(Fen(1234)),
        amount_signed: true,
    };
    assert_eq!(provider().verify_callback(&request), Ok(expected.clone()));
    // Repeated: the same notify again reads the same (the ledger makes it harmless).
    assert_eq!(provider().verify_callback(&request), Ok(expected));
    // The signature's hex case does not matter.
    let upper = NOTIFY_SIGN.to_ascii_uppercase();
    let request = notify(&good_notify_pairs("TRADE_SUCCESS", "12.34", &upper));
    assert_eq!(
        provider().verify_callback(&request).unwrap().state,
        ProviderState::Paid
    );
}

#[test]
fn notify_published_example() {
    // The document's example notify with the key 123456 (see `notify_sign_vectors`).
    let provider = Epay::new("main", BASE, "1001", Secret::new("123456"));
    let request = notify(&[
        ("pid", "1001"),
        ("trade_no", "2016080622555342651"),
        ("out_trade_no", "20160806151343349"),
        ("type", "alipay"),
        ("name", "VIP会员"),
        ("money", "1.00"),
        ("trade_status", "TRADE_SUCCESS"),
        ("sign", "b2cc0f8fc1620ae2cb4f1ad82b549878"),
        ("sign_type", "MD5"),
    ]);
    let report = provider.verify_callback(&request).unwrap();
    assert_eq!(report.order_no.as_str(), "20160806151343349");
    assert_eq!(report.amount, Some(Fen(100)));
    assert_eq!(report.state, ProviderState::Paid);
}

#[test]
fn notify_forged_is_refused() {
    for sign in [
        "00000000000000000000000000000000",
        // One hex digit off.
        "9087bf3619ab4ae50dc7b8b20820c4eb",
        // The document's sign, for another order and key.
        "b2cc0f8fc1620ae2cb4f1ad82b549878",
        "not hex",
    ] {
        let request = notify(&good_notify_pairs("TRADE_SUCCESS", "12.34", sign));
        assert_eq!(
            provider().verify_callback(&request),
            Err(ProviderError::BadSignature),
            "{sign}"
        );
    }
    // Signed with another key: md5(same fields + "forged-key") is anything but ours.
    let params: Vec<(String, String)> = good_notify_pairs("TRADE_SUCCESS", "12.34", "")
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let forged = SignInput::Received { params: &params }.sign(&Secret::new("forged-key"));
    let request = notify(&good_notify_pairs("TRADE_SUCCESS", "12.34", &forged));
    assert_eq!(
        provider().verify_callback(&request),
        Err(ProviderError::BadSignature)
    );
}

#[test]
fn notify_wrong_amount() {
    // The sign of the 12.34 notify does not cover 12.30: forged.
    let request = notify(&good_notify_pairs("TRADE_SUCCESS", "12.30", NOTIFY_SIGN));
    assert_eq!(
        provider().verify_callback(&request),
        Err(ProviderError::BadSignature)
    );
    // A genuine notify for 12.30: md5("money=12.30&name=qrtill&out_trade_no=…&pid=1001"
    // + "&trade_no=4248000000000001&trade_status=TRADE_SUCCESS&type=alipay" + "test-key").
    // The amount is signed, so it is believed; the service flags the difference.
    let request = notify(&good_notify_pairs(
        "TRADE_SUCCESS",
        "12.30",
        "0a2f1665edc61873f6ec9e4454ea26da",
    ));
    let report = provider().verify_callback(&request).unwrap();
    assert_eq!(report.amount, Some(Fen(1230)));
    assert!(report.amount_signed);
    assert_eq!(report.state, ProviderState::Paid);
}

#[test]
fn notify_other_trade_status_is_not_paid() {
    // md5("money=12.34&name=qrtill&out_trade_no=…&pid=1001&trade_no=4248000000000001"
    //     + "&trade_status=WAIT_BUYER_PAY&type=alipay" + "test-key")
    let request = notify(&good_notify_pairs(
        "WAIT_BUYER_PAY",
        "12.34",
        "07765503207df336ccfc1bf9a80b38eb",
    ));
    let report = provider().verify_callback(&request).unwrap();
    assert_eq!(
        report.state,
        ProviderState::Unknown("WAIT_BUYER_PAY".into())
    );
    assert_eq!(report.raw_code, "WAIT_BUYER_PAY");
}

#[test]
fn notify_unknown_fields() {
    // A field the platform adds (and signs) is fine: here `param` and `extra`:
    // md5("extra=hello&money=12.34&name=qrtill&out_trade_no=…&param=abc&pid=1001"
    //     + "&trade_no=4248000000000001&trade_status=TRADE_SUCCESS&type=alipay" + "test-key")
    let mut pairs = good_notify_pairs("TRADE_SUCCESS", "12.34", "91b9b26d0ab990f052367be677a16f5a");
    pairs.insert(6, ("param", "abc"));
    pairs.push(("extra", "hello"));
    let report = provider().verify_callback(&notify(&pairs)).unwrap();
    assert_eq!(report.state, ProviderState::Paid);
    // An empty one is not signed, so it changes nothing.
    let mut pairs = good_notify_pairs("TRADE_SUCCESS", "12.34", NOTIFY_SIGN);
    pairs.push(("param", ""));
    assert!(provider().verify_callback(&notify(&pairs)).is_ok());
    // A field someone else adds breaks the signature.
    let mut pairs = good_notify_pairs("TRADE_SUCCESS", "12.34", NOTIFY_SIGN);
    pairs.push(("extra", "hello"));
    assert_eq!(
        provider().verify_callback(&notify(&pairs)),
        Err(ProviderError::BadSignature)
    );
}

#[test]
fn notify_missing_or_doubled_fields() {
    let without = |name: &str| -> Vec<(&str, &str)> {
        good_notify_pairs("TRADE_SUCCESS", "12.34", NOTIFY_SIGN)
            .into_iter()
            .filter(|(k, _)| *k != name)
            .collect()
    };
    // No sign at all, or an empty one.
    assert_decode(
        provider().verify_callback(&notify(&without("sign"))),
        "no sign",
    );
    assert_decode(
        provider().verify_callback(&notify(&good_notify_pairs("TRADE_SUCCESS", "12.34", ""))),
        "empty sign",
    );
    // Any other field missing changes what was signed.
    for name in ["pid", "out_trade_no", "trade_status", "money"] {
        assert_eq!(
            provider().verify_callback(&notify(&without(name))),
            Err(ProviderError::BadSignature),
            "without {name}"
        );
    }
    // A field sent twice is refused before anything is read.
    let mut pairs = good_notify_pairs("TRADE_SUCCESS", "12.34", NOTIFY_SIGN);
    pairs.push(("money", "0.01"));
    assert_decode(provider().verify_callback(&notify(&pairs)), "money twice");
    // Missing `sign_type` does not matter: it is not signed.
    let report = provider().verify_callback(&notify(&without("sign_type")));
    assert!(report.is_ok(), "{report:?}");
}

#[test]
fn notify_for_another_merchant_is_refused() {
    // Signed with our key, but for pid 2002:
    // md5("money=12.34&name=qrtill&out_trade_no=…&pid=2002&trade_no=4248000000000001"
    //     + "&trade_status=TRADE_SUCCESS&type=alipay" + "test-key")
    let pairs: Vec<(&str, &str)> =
        good_notify_pairs("TRADE_SUCCESS", "12.34", "15cecde9ac5e17854459e3f52569c758")
            .into_iter()
            .map(|(k, v)| if k == "pid" { (k, "2002") } else { (k, v) })
            .collect();
    let result = provider().verify_callback(&notify(&pairs));
    match result {
        Err(ProviderError::Decode { reason }) => assert!(reason.contains("2002"), "{reason}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn notify_as_form_post_body() {
    let body = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(good_notify_pairs("TRADE_SUCCESS", "12.34", NOTIFY_SIGN))
        .finish();
    let request = CallbackRequest {
        method: "POST".into(),
        query: vec![],
        body: body.into_bytes(),
        content_type: Some("application/x-www-form-urlencoded".into()),
        headers: vec![],
    };
    let report = provider().verify_callback(&request).unwrap();
    assert_eq!(report.order_no.as_str(), ORDER);
    assert_eq!(report.state, ProviderState::Paid);
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
fn debug_never_shows_the_key() {
    let configured = provider()
        .with_return_url(Some("https://shop.example.com/r".into()))
        .with_device("mobile");
    for text in [
        format!("{:?}", provider()),
        format!("{:#?}", provider()),
        format!("{configured:?}"),
    ] {
        assert!(!text.contains(KEY), "{text}");
    }
    let boxed: Box<dyn Provider> = Box::new(provider());
    assert!(!format!("{boxed:?}").contains(KEY));
    assert!(!provider().payer_browser_needed());
}

const GOOD_CONFIG: &str = r#"
[[provider]]
id = "ep"
kind = "epay"
base_url = "https://pay.example.com/"
pid = "1001"
key = "your-merchant-key"
"#;

#[test]
fn config_good_table() {
    let config = qrtill::config::Config::parse(GOOD_CONFIG).unwrap();
    let provider = config.provider("ep").unwrap();
    assert_eq!(provider.kind(), "epay");
    assert_eq!(provider.display_name(), "易支付 epay");
    assert!(provider.can_query());
    assert_eq!(
        provider.poll_limits().min_interval,
        std::time::Duration::from_secs(1)
    );
    assert!(!format!("{config:?}").contains("your-merchant-key"));
    let request = server_request(
        provider
            .build_create(&order(ORDER, 1234, Channel::Alipay, ""), &ctx())
            .unwrap(),
    );
    assert_eq!(request.url, "https://pay.example.com/mapi.php");
    let body = String::from_utf8(request.body.unwrap()).unwrap();
    assert!(
        body.contains("&clientip=127.0.0.1&device=pc&"),
        "defaults: {body}"
    );
    assert!(!body.contains("return_url"), "{body}");

    let with_options = GOOD_CONFIG.replace(
        "pid = \"1001\"",
        "pid = 1001\ndevice = \"mobile\"\nclient_ip = \"10.0.0.2\"\nreturn_url = \"https://shop.example.com/r\"",
    );
    let config = qrtill::config::Config::parse(&with_options).unwrap();
    let provider = config.provider("ep").unwrap();
    let request = server_request(
        provider
            .build_create(&order(ORDER, 1234, Channel::Alipay, ""), &ctx())
            .unwrap(),
    );
    let body = String::from_utf8(request.body.unwrap()).unwrap();
    assert!(body.starts_with("pid=1001&"), "{body}");
    assert!(
        body.contains("&return_url=https%3A%2F%2Fshop.example.com%2Fr&"),
        "{body}"
    );
    assert!(body.contains("&clientip=10.0.0.2&device=mobile&"), "{body}");
}

#[test]
fn config_refusals_name_the_key() {
    let cases: &[(String, &str)] = &[
        (
            GOOD_CONFIG.replace("base_url = \"https://pay.example.com/\"\n", ""),
            "missing key `base_url`",
        ),
        (
            GOOD_CONFIG.replace(
                "base_url = \"https://pay.example.com/\"",
                "base_url = \"pay.example.com\"",
            ),
            "key `base_url`",
        ),
        (
            GOOD_CONFIG.replace("pid = \"1001\"\n", ""),
            "missing key `pid`",
        ),
        (
            GOOD_CONFIG.replace("pid = \"1001\"", "pid = \"abc\""),
            "key `pid` must be the numeric merchant id",
        ),
        (
            GOOD_CONFIG.replace("pid = \"1001\"", "pid = 1.5"),
            "key `pid`",
        ),
        (
            GOOD_CONFIG.replace("key = \"your-merchant-key\"\n", ""),
            "missing key `key`",
        ),
        (
            GOOD_CONFIG.replace("key = \"your-merchant-key\"", "key = \"\""),
            "key `key` is empty",
        ),
        (
            format!("{GOOD_CONFIG}device = \"tablet\"\n"),
            "key `device` must be one of pc, mobile, wechat",
        ),
        (
            format!("{GOOD_CONFIG}client_ip = \"localhost\"\n"),
            "key `client_ip` must be an IP address",
        ),
        (
            format!("{GOOD_CONFIG}return_url = \"ftp://x\"\n"),
            "key `return_url`",
        ),
        (
            format!("{GOOD_CONFIG}notify_url = \"https://x\"\n"),
            "unknown key `notify_url`",
        ),
        (
            format!("{GOOD_CONFIG}secret = \"x\"\n"),
            "unknown key `secret`",
        ),
    ];
    for (text, expected) in cases {
        let err = qrtill::config::Config::parse(text).unwrap_err();
        assert!(err.contains(expected), "{expected:?} not in {err:?}");
        assert!(err.contains("[[provider]] `ep`"), "{err}");
        assert!(!err.contains("your-merchant-key"), "{err}");
    }
}
