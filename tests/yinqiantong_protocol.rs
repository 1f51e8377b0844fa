//! The yinqiantong (银钱通) v1 protocol (seed 003, PROVIDERS.md §4a), checked offline through the
//! public provider API: the published and hand-computed signature vectors, the exact create
//! and query requests, the status table, the create/query answer readers (the seed's own
//! answer and its error codes), notify verification and the ack, the config table, and that
//! no credential ever shows in `Debug`. No network, no clock, no ledger.
//!
//! Every MD5 below was computed outside this crate with
//! `python3 -c "import hashlib; print(hashlib.md5('...'.encode()).hexdigest())"` over the
//! input string written next to it; every JSON body was checked with Python's
//! `json.dumps(body, separators=(',', ':'), ensure_ascii=False)`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use qrtill::model::{Channel, Fen, OrderNo, ProviderState, QrPayload};
use qrtill::providers::yinqiantong::Yinqiantong;
use qrtill::providers::yinqiantong::transformers::{SignInput, field_text, map_status};
use qrtill::providers::{
    CallContext, CallbackReport, CallbackRequest, CreateOrder, CreateOutcome, CreateStep,
    HttpRequest, HttpResponse, Method, OrderRef, Provider, ProviderError, QueryOutcome,
    StatusReport,
};
use qrtill::secret::Secret;
use serde_json::{Map, Value, json};

const BASE: &str = "https://yinqiantong.com";
/// The seed's example credentials; the secret is the one of the document's sign example.
const APPID: &str = "00000000";
const APPKEY: &str = "1234567890123456";
const SECRET: &str = "your_app_secret";
const LISTENER: &str = "http://127.0.0.1:8765/notify/main";
/// The seed's curl example's `ts`.
const NOW: i64 = 1_536_200_462;

/// md5("ts=1536200462&app_secret=your_app_secret"): the query's sign over no fields.
const QUERY_SIGN: &str = "ea8a1d7c91165574fb54bd399887b67c";

/// The notify `ts` header used below.
const NOTIFY_TS: &str = "1536214101";
/// md5("app_id=00000000&channel=1&client_ip=127.0.0.1&client_out_trade_no=20180906140638001"
///   + "&create_time=1536213998&expire_time=1536221198&money=1234"
///   + "&out_trade_no=0000000013153621399830c1a3e&pay_time=1536214100&platform=3&status=1"
///   + "&ts=1536214101&app_secret=your_app_secret")
const NOTIFY_SIGN: &str = "0eb00cd2b3a3d4b4ddab25b680bfad64";
/// The same string with `app_secret=not_the_secret`.
const NOTIFY_SIGN_WRONG_SECRET: &str = "812a2d558af2d56703ea43bb80fef3d2";
/// The same string with `client_out_trade_no=20180906140638002` (another order's notify).
const NOTIFY_SIGN_OTHER_ORDER: &str = "606e7b41ecc9f62d23baf84bfaf3ee52";

fn provider() -> Yinqiantong {
    Yinqiantong::new(
        "main",
        BASE,
        APPID,
        Secret::new(APPKEY),
        Secret::new(SECRET),
    )
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

fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        other => panic!("not an object: {other}"),
    }
}

// ---------------------------------------------------------------------------------------------
// Golden signatures

#[test]
fn published_v1_vector() {
    // doc/sign.md at 089561b (PROVIDERS.md §4a):
    // "channel=wx&client_ip=127.0.0.1&money=1&platform=app&ts=1536053843&app_secret=your_app_secret"
    //   -> 1917abc8b8908f9bef5cc86559c26edc
    let secret = Secret::new("your_app_secret");
    let create = SignInput::Create {
        channel: "wx",
        client_ip: "127.0.0.1",
        client_out_trade_no: "",
        money: Fen(1),
        notify_url: "",
        platform: "app",
        subject: "",
        ts: "1536053843",
    };
    assert_eq!(create.sign(&secret), "1917abc8b8908f9bef5cc86559c26edc");
    // The same fields as a received JSON body, in another order, with an empty field.
    let body = object(
        json!({"platform": "app", "money": 1, "subject": "", "channel": "wx",
                             "client_ip": "127.0.0.1"}),
    );
    let received = SignInput::Body {
        body: &body,
        ts: "1536053843",
    };
    assert_eq!(received.sign(&secret), "1917abc8b8908f9bef5cc86559c26edc");
}

#[test]
fn published_v2_vector_is_also_a_v1_string() {
    // doc/sign.md HEAD (v2) signs appid and ts among the fields; `ts` sorts after every one of
    // them here, so the v2 string is exactly the v1 string over the other fields:
    // "appid=00000000&channel=1&client_ip=127.0.0.1&money=1&platform=2&subject=my_subject"
    //   + "&ts=1541051068&app_secret=your_app_secret" -> 65d704b3652d451355f99b173635d107
    let body = object(
        json!({"appid": "00000000", "channel": 1, "client_ip": "127.0.0.1",
                             "money": 1, "platform": 2, "subject": "my_subject"}),
    );
    let sign = SignInput::Body {
        body: &body,
        ts: "1541051068",
    }
    .sign(&Secret::new("your_app_secret"));
    assert_eq!(sign, "65d704b3652d451355f99b173635d107");
}

#[test]
fn create_sign_vectors() {
    // "channel=alipay&client_ip=127.0.0.1&client_out_trade_no=20180906140638001&money=1234"
    //   + "&notify_url=http://127.0.0.1:8765/notify/main&platform=h5&ts=1536200462"
    //   + "&app_secret=your_app_secret"
    let a = SignInput::Create {
        channel: "alipay",
        client_ip: "127.0.0.1",
        client_out_trade_no: "20180906140638001",
        money: Fen(1234),
        notify_url: LISTENER,
        platform: "h5",
        subject: "",
        ts: "1536200462",
    };
    assert_eq!(
        a.sign(&Secret::new(SECRET)),
        "745452fa618414df7437a12ea9b8ff15"
    );
    // Raw values, not URL-encoded; UTF-8 subject:
    // "channel=wx&client_ip=192.168.1.20&client_out_trade_no=ORDER-42_x&money=1"
    //   + "&notify_url=https://shop.example.com/yqt/notify?from=till&x=1&platform=scan"
    //   + "&subject=奶茶 x2&ts=1536200462&app_secret=K9fQ2vL7xR4mN8pT1wZ6yB3cH5jD0sGa-long_secret"
    let b = SignInput::Create {
        channel: "wx",
        client_ip: "192.168.1.20",
        client_out_trade_no: "ORDER-42_x",
        money: Fen(1),
        notify_url: "https://shop.example.com/yqt/notify?from=till&x=1",
        platform: "scan",
        subject: "奶茶 x2",
        ts: "1536200462",
    };
    assert_eq!(
        b.sign(&Secret::new("K9fQ2vL7xR4mN8pT1wZ6yB3cH5jD0sGa-long_secret")),
        "a9c3c9d28c68c23c01ca4e3cf987e0de"
    );
}

#[test]
fn signed_fields_are_sorted_and_empty_ones_dropped() {
    let create = SignInput::Create {
        channel: "wx",
        client_ip: "127.0.0.1",
        client_out_trade_no: "N1",
        money: Fen(5),
        notify_url: "",
        platform: "h5",
        subject: "",
        ts: "1",
    };
    let names: Vec<String> = create.fields().into_iter().map(|(k, _)| k).collect();
    assert_eq!(
        names,
        [
            "channel",
            "client_ip",
            "client_out_trade_no",
            "money",
            "platform"
        ]
    );
    // Case-sensitive ASCII: upper case sorts before lower case; `sign` is never signed.
    let body = object(
        json!({"b": "2", "A": "1", "a": "3", "sign": "x", "empty": "",
                             "nothing": null}),
    );
    let fields = SignInput::Body {
        body: &body,
        ts: "1",
    }
    .fields();
    assert_eq!(
        fields,
        [("A", "1"), ("a", "3"), ("b", "2")].map(|(k, v)| (k.to_string(), v.to_string()))
    );
}

#[test]
fn query_sign_vector() {
    // "ts=1536200462&app_secret=your_app_secret"
    assert_eq!(
        SignInput::Query { ts: "1536200462" }.sign(&Secret::new(SECRET)),
        QUERY_SIGN
    );
    // A body with no non-empty fields signs the same.
    let body = object(json!({"subject": "", "extra": null}));
    assert_eq!(
        SignInput::Body {
            body: &body,
            ts: "1536200462"
        }
        .sign(&Secret::new(SECRET)),
        QUERY_SIGN
    );
}

#[test]
fn notify_sign_vectors() {
    let body = notify_body();
    let sign = |secret: &str| {
        SignInput::Body {
            body: &body,
            ts: NOTIFY_TS,
        }
        .sign(&Secret::new(secret))
    };
    assert_eq!(sign(SECRET), NOTIFY_SIGN);
    assert_eq!(sign("not_the_secret"), NOTIFY_SIGN_WRONG_SECRET);
    // Strings, booleans, fractions, and integral floats without decimals:
    // "client_out_trade_no=20180906140638001&money=1234&paid=true&ratio=0.5&status=paid"
    //   + "&ts=1536214101&app_secret=your_app_secret"
    let mixed = object(
        json!({"client_out_trade_no": "20180906140638001", "money": 1234.0,
                              "paid": true, "ratio": 0.5, "status": "paid", "open_id": null}),
    );
    assert_eq!(
        SignInput::Body {
            body: &mixed,
            ts: NOTIFY_TS
        }
        .sign(&Secret::new(SECRET)),
        "5841b48bfe57172274978e872636ed83"
    );
}

#[test]
fn field_text_renders_integers_without_decimals() {
    assert_eq!(field_text(&json!(1)), "1");
    assert_eq!(field_text(&json!(1.0)), "1");
    assert_eq!(field_text(&json!(1_536_214_100_i64)), "1536214100");
    assert_eq!(field_text(&json!(0.5)), "0.5");
    assert_eq!(field_text(&json!("12.30")), "12.30");
    assert_eq!(field_text(&Value::Null), "");
    assert_eq!(field_text(&json!(false)), "false");
}

// ---------------------------------------------------------------------------------------------
// Create request

fn server_request(step: CreateStep) -> HttpRequest {
    match step {
        CreateStep::Server(request) => request,
        other => panic!("yinqiantong creates server to server, got {other:?}"),
    }
}

fn headers(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn create_alipay_h5() {
    let request = server_request(
        provider()
            .build_create(
                &order("20180906140638001", 1234, Channel::Alipay, ""),
                &ctx(),
            )
            .unwrap(),
    );
    assert_eq!(request.method, Method::Post);
    assert_eq!(request.url, "https://yinqiantong.com/order");
    assert_eq!(
        request.headers,
        headers(&[
            ("Content-Type", "application/json"),
            ("appid", "00000000"),
            ("appkey", "1234567890123456"),
            ("ts", "1536200462"),
            // create_sign_vectors' first string.
            ("sign", "745452fa618414df7437a12ea9b8ff15"),
        ])
    );
    // The empty subject is left out.
    assert_eq!(
        String::from_utf8(request.body.unwrap()).unwrap(),
        r#"{"channel":"alipay","platform":"h5","money":1234,"client_ip":"127.0.0.1","notify_url":"http://127.0.0.1:8765/notify/main","client_out_trade_no":"20180906140638001"}"#
    );
}

#[test]
fn create_wechat_scan_with_subject_and_client_ip() {
    let provider = Yinqiantong::new(
        "main",
        "https://yqtapi.com/",
        APPID,
        Secret::new(APPKEY),
        Secret::new("K9fQ2vL7xR4mN8pT1wZ6yB3cH5jD0sGa-long_secret"),
    )
    .with_platform("scan")
    .with_client_ip("192.168.1.20");
    let ctx = CallContext {
        now_unix: NOW,
        notify_url: "https://shop.example.com/yqt/notify?from=till&x=1".into(),
    };
    let request = server_request(
        provider
            .build_create(&order("ORDER-42_x", 1, Channel::Wechat, "奶茶 x2"), &ctx)
            .unwrap(),
    );
    assert_eq!(request.url, "https://yqtapi.com/order");
    assert_eq!(
        request.headers,
        headers(&[
            ("Content-Type", "application/json"),
            ("appid", "00000000"),
            ("appkey", "1234567890123456"),
            ("ts", "1536200462"),
            // create_sign_vectors' second string.
            ("sign", "a9c3c9d28c68c23c01ca4e3cf987e0de"),
        ])
    );
    assert_eq!(
        String::from_utf8(request.body.unwrap()).unwrap(),
        r#"{"channel":"wx","platform":"scan","money":1,"client_ip":"192.168.1.20","notify_url":"https://shop.example.com/yqt/notify?from=till&x=1","subject":"奶茶 x2","client_out_trade_no":"ORDER-42_x"}"#
    );
}

#[test]
fn create_unsupported_channels() {
    for channel in [Channel::Unionpay, Channel::Qq] {
        let result = provider().build_create(&order("N1", 100, channel, ""), &ctx());
        assert!(
            matches!(result, Err(ProviderError::NotSupported(_))),
            "{channel}: {result:?}"
        );
        assert!(!provider().channels().contains(&channel));
    }
    assert_eq!(provider().channels(), [Channel::Alipay, Channel::Wechat]);
}

// ---------------------------------------------------------------------------------------------
// Query request

#[test]
fn query_by_our_order_number() {
    for provider_order_id in [None, Some("0000000013153621399830c1a3e".to_string())] {
        let request = provider()
            .build_query(
                &OrderRef {
                    order_no: OrderNo::new("20180906140638001").unwrap(),
                    provider_order_id,
                },
                &ctx(),
            )
            .unwrap();
        assert_eq!(request.method, Method::Get);
        assert_eq!(
            request.url,
            "https://yinqiantong.com/order?client_out_trade_no=20180906140638001"
        );
        assert_eq!(
            request.headers,
            headers(&[
                ("appid", "00000000"),
                ("appkey", "1234567890123456"),
                ("ts", "1536200462"),
                ("sign", QUERY_SIGN),
            ])
        );
        assert!(request.body.is_none());
    }
}

// ---------------------------------------------------------------------------------------------
// Statuses

#[test]
fn status_table() {
    let table: &[(&str, ProviderState)] = &[
        ("unpaid", ProviderState::Pending),
        ("0", ProviderState::Pending),
        ("paid", ProviderState::Paid),
        ("1", ProviderState::Paid),
        ("pay_success", ProviderState::Paid),
        ("2", ProviderState::Failed),
        ("expired", ProviderState::Expired),
        ("3", ProviderState::Expired),
        ("refunding", ProviderState::Unknown("refunding".into())),
        ("refunded", ProviderState::Unknown("refunded".into())),
        ("4", ProviderState::Unknown("4".into())),
        ("-1", ProviderState::Unknown("-1".into())),
        ("PAID", ProviderState::Unknown("PAID".into())),
        ("failed", ProviderState::Unknown("failed".into())),
        ("", ProviderState::Unknown(String::new())),
        ("1.5", ProviderState::Unknown("1.5".into())),
    ];
    for (code, state) in table {
        assert_eq!(&map_status(code), state, "status {code:?}");
    }
}

#[test]
fn only_paid_one_and_pay_success_are_paid() {
    let words = [
        "unpaid",
        "paid",
        "expired",
        "refunding",
        "refunded",
        "pay_success",
        "Paid",
        "paid ",
        "success",
        "SUCCESS",
        "true",
        "200",
        "01",
        "1.0",
        "+1",
    ];
    for word in words {
        let paid = map_status(word) == ProviderState::Paid;
        assert_eq!(
            paid,
            matches!(word.trim(), "paid" | "pay_success"),
            "{word:?}"
        );
    }
    for code in -1000..1000 {
        assert_eq!(
            map_status(&code.to_string()) == ProviderState::Paid,
            code == 1,
            "status {code}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Create answer

/// The seed's example answer, verbatim (pay_body shortened to its shape).
const SEED_CREATE_ANSWER: &str = r#"{
    "msg": "ok",
    "code": 200,
    "data": {
        "app_id": "00000000",
        "channel": 1,
        "platform": 3,
        "out_trade_no": "0000000013153621399830c1a3e",
        "status": 0,
        "money": 1,
        "client_ip": "127.0.0.1",
        "open_id": "",
        "subject": "",
        "description": "",
        "notify_url": "",
        "success_url": "",
        "extra": "",
        "pay_body": "<form id='alipaysubmit' name='alipaysubmit' action='https://openapi.alipay.com/gateway.do?charset=utf-8' method='post'><input type='hidden' name='app_id' value='2018081661080671'/><input type='hidden' name='method' value='alipay.trade.wap.pay'/><input type='hidden' name='biz_content' value='{\"out_trade_no\":\"0000000013153621399830c1a3e\",\"total_amount\":1}'/><input type='submit' value='ok' style='display:none;'></form><script>document.forms['alipaysubmit'].submit();</script>",
        "pay_time": 0,
        "expire_time": 1536221198,
        "create_time": 1536213998
    }
}"#;

#[test]
fn parse_create_seed_answer_html_form() {
    let outcome = provider()
        .parse_create(&response(200, SEED_CREATE_ANSWER))
        .unwrap();
    assert_eq!(
        outcome.provider_order_id.as_deref(),
        Some("0000000013153621399830c1a3e")
    );
    assert_eq!(outcome.qr, None);
    assert_eq!(outcome.payable, None);
    // 1536221198 - 1536213998
    assert_eq!(outcome.timeout_secs, Some(7200));
    let page = outcome.payer_page.unwrap();
    assert!(page.starts_with("<!doctype html>"), "{page}");
    assert!(page.contains("<meta charset=\"utf-8\">"));
    assert!(page.contains(
        "<form id='alipaysubmit' name='alipaysubmit' action='https://openapi.alipay.com/gateway.do?charset=utf-8' method='post'>"
    ));
    assert!(page.contains("document.forms['alipaysubmit'].submit();"));
}

#[test]
fn parse_create_whole_html_document_kept() {
    let html = "<!DOCTYPE html><html><body><form action='https://x'></form></body></html>";
    let body = json!({"code": 200, "msg": "ok", "data": {"out_trade_no": "T1", "pay_body": html}})
        .to_string();
    let outcome = provider().parse_create(&response(200, &body)).unwrap();
    assert_eq!(outcome.payer_page.as_deref(), Some(html));
    assert_eq!(outcome.timeout_secs, None);
}

#[test]
fn parse_create_links_are_qr_text() {
    for link in [
        "https://wx.tenpay.com/cgi-bin/mmpayweb-bin/checkmweb?prepay_id=wx2016121516420242444321ca0631331346&package=1405458241&redirect_url=",
        "weixin://wxpay/bizpayurl?pr=abc123",
        "https://qr.alipay.com/bax08431mtbqjqg5dpr4001c",
    ] {
        let body = json!({"code": 200, "msg": "ok", "data": {
            "out_trade_no": "0000000013153621399830c1a3e", "status": "unpaid", "money": 1,
            "pay_body": link, "create_time": 1536213998, "expire_time": 1536214298}})
        .to_string();
        assert_eq!(
            provider().parse_create(&response(200, &body)).unwrap(),
            CreateOutcome {
                provider_order_id: Some("0000000013153621399830c1a3e".into()),
                qr: Some(QrPayload::Text(link.into())),
                payable: None,
                payer_page: None,
                timeout_secs: Some(300),
                payer_browser: false,
            },
            "{link}"
        );
    }
}

#[test]
fn parse_create_error_codes() {
    let cases: &[(&str, &str, &str)] = &[
        (
            r#"{"code":4414,"msg":"参数错误","data":null}"#,
            "4414",
            "参数错误 (参数错误 / bad or missing parameters)",
        ),
        (
            r#"{"code":4409,"msg":"订单已存在"}"#,
            "4409",
            "订单已存在 (订单已存在 / an order with this number exists already)",
        ),
        (
            r#"{"code":4403,"msg":"sign error"}"#,
            "4403",
            "sign error (签名错误 / signature refused: check appid, appkey, app_secret and the clock)",
        ),
        (
            r#"{"code":4404,"msg":""}"#,
            "4404",
            "订单不存在 / no such order",
        ),
        (
            r#"{"code":"4500","msg":"server error"}"#,
            "4500",
            "server error (服务器错误 / the provider's server failed)",
        ),
        (r#"{"code":4999,"msg":"新错误"}"#, "4999", "新错误"),
        (r#"{"code":4998}"#, "4998", "(no message)"),
    ];
    for (body, code, message) in cases {
        assert_eq!(
            provider().parse_create(&response(200, body)),
            Err(ProviderError::Rejected {
                code: (*code).into(),
                message: (*message).into(),
            }),
            "{body}"
        );
    }
    // The provider's error JSON on an HTTP error status is still its refusal.
    assert_eq!(
        provider().parse_create(&response(403, r#"{"code":4403,"msg":"签名错误"}"#)),
        Err(ProviderError::Rejected {
            code: "4403".into(),
            message: "签名错误 (签名错误 / signature refused: check appid, appkey, app_secret and the clock)".into(),
        })
    );
}

#[test]
fn parse_create_bad_answers() {
    let html = "<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>";
    assert_eq!(
        provider().parse_create(&response(502, html)),
        Err(ProviderError::HttpStatus { status: 502 })
    );
    let cases = [
        (
            "200 HTML",
            "<html><body>维护中 maintenance</body></html>".to_string(),
        ),
        ("garbage", "\u{0}\u{1}garbage".to_string()),
        ("empty", String::new()),
        (
            "truncated",
            r#"{"msg":"ok","code":200,"data":{"out_trade_no":"00000000131536"#.to_string(),
        ),
        ("no code", r#"{"msg":"ok","data":{}}"#.to_string()),
        ("no data", r#"{"msg":"ok","code":200}"#.to_string()),
        (
            "no out_trade_no",
            json!({"code":200,"msg":"ok","data":{"pay_body":"https://x.example/p"}}).to_string(),
        ),
        (
            "no pay_body",
            json!({"code":200,"msg":"ok","data":{"out_trade_no":"T1"}}).to_string(),
        ),
        (
            "empty pay_body",
            json!({"code":200,"msg":"ok","data":{"out_trade_no":"T1","pay_body":""}}).to_string(),
        ),
        (
            "official-account JSON pay_body",
            json!({"code":200,"msg":"ok","data":{"out_trade_no":"T1",
                   "pay_body":"{\"appId\":\"wx1\",\"package\":\"prepay_id=1\"}"}})
            .to_string(),
        ),
        (
            "app order string",
            json!({"code":200,"msg":"ok","data":{"out_trade_no":"T1",
                   "pay_body":"app_id=2018&biz_content=x&sign=y"}})
            .to_string(),
        ),
        (
            "script link",
            json!({"code":200,"msg":"ok","data":{"out_trade_no":"T1",
                   "pay_body":"javascript:alert(1)"}})
            .to_string(),
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
// Query answer

#[test]
fn parse_query_numeric_status_like_the_seed() {
    let body = SEED_CREATE_ANSWER.replace("\"status\": 0", "\"status\": 1");
    let report = report(provider().parse_query(&response(200, &body)).unwrap());
    assert_eq!(report.state, ProviderState::Paid);
    assert_eq!(report.raw_code, "1");
    assert_eq!(
        report.provider_order_id.as_deref(),
        Some("0000000013153621399830c1a3e")
    );
    assert_eq!(report.amount, Some(Fen(1)));
    assert_eq!(report.timeout_secs, Some(7200));
    // A form page cannot be a QR.
    assert_eq!(report.qr, None);
}

#[test]
fn parse_query_every_status() {
    let table: &[(Value, ProviderState, &str)] = &[
        (json!(0), ProviderState::Pending, "0"),
        (json!("unpaid"), ProviderState::Pending, "unpaid"),
        (json!(1), ProviderState::Paid, "1"),
        (json!("1"), ProviderState::Paid, "1"),
        (json!("paid"), ProviderState::Paid, "paid"),
        (json!(2), ProviderState::Failed, "2"),
        (json!(3), ProviderState::Expired, "3"),
        (json!("expired"), ProviderState::Expired, "expired"),
        (
            json!("refunding"),
            ProviderState::Unknown("refunding".into()),
            "refunding",
        ),
        (
            json!("refunded"),
            ProviderState::Unknown("refunded".into()),
            "refunded",
        ),
        (json!(7), ProviderState::Unknown("7".into()), "7"),
    ];
    for (status, state, raw) in table {
        let body = json!({"code": 200, "msg": "ok", "data": {
            "out_trade_no": "T1", "client_out_trade_no": "20180906140638001",
            "status": status, "money": 1234,
            "pay_body": "https://wx.tenpay.com/cgi-bin/mmpayweb-bin/checkmweb?prepay_id=wx1"}})
        .to_string();
        let report = report(provider().parse_query(&response(200, &body)).unwrap());
        assert_eq!(&report.state, state, "{status}");
        assert_eq!(report.raw_code, *raw);
        assert_eq!(report.amount, Some(Fen(1234)));
        assert_eq!(
            report.qr,
            Some(QrPayload::Text(
                "https://wx.tenpay.com/cgi-bin/mmpayweb-bin/checkmweb?prepay_id=wx1".into()
            ))
        );
    }
}

#[test]
fn parse_query_not_found_and_errors() {
    assert_eq!(
        provider().parse_query(&response(200, r#"{"code":4404,"msg":"订单不存在"}"#)),
        Ok(QueryOutcome::NotFound {
            message: "订单不存在 (订单不存在 / no such order)".into()
        })
    );
    assert_eq!(
        provider().parse_query(&response(200, r#"{"code":4403,"msg":"签名错误"}"#)),
        Err(ProviderError::Rejected {
            code: "4403".into(),
            message: "签名错误 (签名错误 / signature refused: check appid, appkey, app_secret and the clock)".into(),
        })
    );
    for body in [
        "<html>502</html>",
        r#"{"code":200,"msg":"ok","data":{"out_trade_no":"T1","status""#,
        r#"{"code":200,"msg":"ok","data":{"out_trade_no":"T1"}}"#,
        r#"{"code":200,"msg":"ok","data":{"out_trade_no":"T1","status":null}}"#,
        r#"{"code":200,"msg":"ok"}"#,
    ] {
        let result = provider().parse_query(&response(200, body));
        assert!(
            matches!(result, Err(ProviderError::Decode { .. })),
            "{body}: {result:?}"
        );
    }
    assert_eq!(
        provider().parse_query(&response(500, "oops")),
        Err(ProviderError::HttpStatus { status: 500 })
    );
}

// ---------------------------------------------------------------------------------------------
// Notify

fn notify_body() -> Map<String, Value> {
    object(json!({
        "app_id": "00000000",
        "channel": 1,
        "platform": 3,
        "out_trade_no": "0000000013153621399830c1a3e",
        "client_out_trade_no": "20180906140638001",
        "status": 1,
        "money": 1234,
        "client_ip": "127.0.0.1",
        "open_id": "",
        "subject": "",
        "description": "",
        "extra": "",
        "pay_time": 1536214100,
        "create_time": 1536213998,
        "expire_time": 1536221198
    }))
}

fn notify(body: &Map<String, Value>, sign: Option<&str>) -> CallbackRequest {
    let mut headers = vec![
        ("appid".to_string(), APPID.to_string()),
        ("appkey".to_string(), APPKEY.to_string()),
        ("ts".to_string(), NOTIFY_TS.to_string()),
    ];
    if let Some(sign) = sign {
        headers.push(("sign".to_string(), sign.to_string()));
    }
    CallbackRequest {
        method: "POST".into(),
        query: vec![],
        body: Value::Object(body.clone()).to_string().into_bytes(),
        content_type: Some("application/json".into()),
        headers,
    }
}

#[test]
fn notify_good_paid() {
    assert_eq!(
        provider().verify_callback(&notify(&notify_body(), Some(NOTIFY_SIGN))),
        Ok(CallbackReport {
            order_no: OrderNo::new("20180906140638001").unwrap(),
            state: ProviderState::Paid,
            raw_code: "1".into(),
            amount: Some(Fen(1234)),
            amount_signed: true,
        })
    );
    // Header names in any case, sign in upper case.
    let mut request = notify(&notify_body(), Some(&NOTIFY_SIGN.to_ascii_uppercase()));
    for (name, _) in &mut request.headers {
        *name = name.to_ascii_uppercase();
    }
    assert_eq!(
        provider().verify_callback(&request).unwrap().state,
        ProviderState::Paid
    );
}

#[test]
fn notify_forged_refused() {
    for sign in [
        NOTIFY_SIGN_WRONG_SECRET,
        NOTIFY_SIGN_OTHER_ORDER,
        // One hex digit off.
        "0eb00cd2b3a3d4b4ddab25b680bfad65",
        "",
    ] {
        assert_eq!(
            provider().verify_callback(&notify(&notify_body(), Some(sign))),
            Err(ProviderError::BadSignature),
            "sign {sign:?}"
        );
    }
    // Another `ts` than the one signed.
    let mut request = notify(&notify_body(), Some(NOTIFY_SIGN));
    request.headers[2].1 = "1536214102".into();
    assert_eq!(
        provider().verify_callback(&request),
        Err(ProviderError::BadSignature)
    );
}

#[test]
fn notify_wrong_amount_is_refused_or_reported_as_signed() {
    // Changing the amount after signing breaks the signature.
    let mut body = notify_body();
    body.insert("money".into(), json!(1));
    assert_eq!(
        provider().verify_callback(&notify(&body, Some(NOTIFY_SIGN))),
        Err(ProviderError::BadSignature)
    );
    // A genuine notify of a different amount is reported as such, and signed, so the service
    // records the mismatch instead of re-querying.
    let sign = SignInput::Body {
        body: &body,
        ts: NOTIFY_TS,
    }
    .sign(&Secret::new(SECRET));
    let report = provider()
        .verify_callback(&notify(&body, Some(&sign)))
        .unwrap();
    assert_eq!(report.amount, Some(Fen(1)));
    assert!(report.amount_signed);
    assert_eq!(report.state, ProviderState::Paid);
}

#[test]
fn notify_repeated_gives_the_same_report() {
    let request = notify(&notify_body(), Some(NOTIFY_SIGN));
    let first = provider().verify_callback(&request).unwrap();
    let second = provider().verify_callback(&request).unwrap();
    assert_eq!(first, second);
}

#[test]
fn notify_unknown_fields_are_signed_too() {
    let mut body = notify_body();
    body.insert("Extra_Flag".into(), json!("yes"));
    // "Extra_Flag=yes&app_id=00000000&channel=1&…&status=1&ts=1536214101&app_secret=your_app_secret"
    // (upper case sorts first).
    let report = provider()
        .verify_callback(&notify(&body, Some("ff09c9fc06325d14da3de9bde26bfe7c")))
        .unwrap();
    assert_eq!(report.state, ProviderState::Paid);
    // The same field added after signing is a forgery.
    assert_eq!(
        provider().verify_callback(&notify(&body, Some(NOTIFY_SIGN))),
        Err(ProviderError::BadSignature)
    );
}

#[test]
fn notify_missing_parts_are_decode_errors() {
    let missing_sign = notify(&notify_body(), None);
    let mut missing_ts = notify(&notify_body(), Some(NOTIFY_SIGN));
    missing_ts.headers.retain(|(name, _)| name != "ts");
    let mut not_json = notify(&notify_body(), Some(NOTIFY_SIGN));
    not_json.body = b"client_out_trade_no=20180906140638001&status=1".to_vec();
    let mut array = notify(&notify_body(), Some(NOTIFY_SIGN));
    array.body = b"[1,2]".to_vec();
    for request in [missing_sign, missing_ts, not_json, array] {
        let result = provider().verify_callback(&request);
        assert!(
            matches!(result, Err(ProviderError::Decode { .. })),
            "{request:?}: {result:?}"
        );
    }
    // Signed correctly but without the fields a report needs.
    for remove in ["client_out_trade_no", "status"] {
        let mut body = notify_body();
        body.remove(remove);
        let sign = SignInput::Body {
            body: &body,
            ts: NOTIFY_TS,
        }
        .sign(&Secret::new(SECRET));
        let result = provider().verify_callback(&notify(&body, Some(&sign)));
        assert!(
            matches!(result, Err(ProviderError::Decode { .. })),
            "without {remove}: {result:?}"
        );
    }
}

#[test]
fn notify_v2_spelling_and_other_appid() {
    let mut body = notify_body();
    let no = body.remove("client_out_trade_no").unwrap();
    body.insert("cient_out_trade_no".into(), no);
    let sign = SignInput::Body {
        body: &body,
        ts: NOTIFY_TS,
    }
    .sign(&Secret::new(SECRET));
    let report = provider()
        .verify_callback(&notify(&body, Some(&sign)))
        .unwrap();
    assert_eq!(report.order_no.as_str(), "20180906140638001");
    // A notify signed with our secret but for another app id is not ours.
    let mut request = notify(&notify_body(), Some(NOTIFY_SIGN));
    request.headers[0].1 = "99999999".into();
    assert!(matches!(
        provider().verify_callback(&request),
        Err(ProviderError::Decode { .. })
    ));
}

#[test]
fn notify_unpaid_and_string_status() {
    let mut body = notify_body();
    body.insert("status".into(), json!("unpaid"));
    let sign = SignInput::Body {
        body: &body,
        ts: NOTIFY_TS,
    }
    .sign(&Secret::new(SECRET));
    let report = provider()
        .verify_callback(&notify(&body, Some(&sign)))
        .unwrap();
    assert_eq!(report.state, ProviderState::Pending);
    assert_eq!(report.raw_code, "unpaid");
}

#[test]
fn callback_acks() {
    let ok = provider().callback_ack(true);
    assert_eq!((ok.status, ok.body.as_str()), (200, r#"{"code":200}"#));
    let refused = provider().callback_ack(false);
    assert_ne!(
        refused.status, 200,
        "a refusal must make the provider retry"
    );
}

// ---------------------------------------------------------------------------------------------
// Secrets and config

#[test]
fn debug_never_shows_the_credentials() {
    let plain = provider();
    let configured = provider().with_platform("pc").with_client_ip("10.0.0.2");
    for text in [
        format!("{plain:?}"),
        format!("{plain:#?}"),
        format!("{configured:?}"),
    ] {
        assert!(!text.contains(SECRET), "{text}");
        assert!(!text.contains(APPKEY), "{text}");
    }
    let boxed: Box<dyn Provider> = Box::new(provider());
    assert!(!format!("{boxed:?}").contains(SECRET));
}

const GOOD_CONFIG: &str = r#"
default_provider = "yqt"

[[provider]]
id = "yqt"
kind = "yinqiantong"
appid = "00000000"
appkey = "1234567890123456"
app_secret = "your_app_secret"
"#;

#[test]
fn config_good_table() {
    let config = qrtill::config::Config::parse(GOOD_CONFIG).unwrap();
    let provider = config.provider("yqt").unwrap();
    assert_eq!(provider.kind(), "yinqiantong");
    assert_eq!(provider.channels(), [Channel::Alipay, Channel::Wechat]);
    assert!(provider.can_query());
    // h5 by default: the QR leads to a web page in the payer's browser.
    assert!(provider.payer_browser_needed());
    let request = server_request(
        provider
            .build_create(&order("N1", 1, Channel::Wechat, ""), &ctx())
            .unwrap(),
    );
    assert_eq!(request.url, "https://yinqiantong.com/order");
    assert!(
        String::from_utf8(request.body.unwrap())
            .unwrap()
            .contains(r#""platform":"h5""#)
    );
    assert!(!format!("{config:?}").contains("your_app_secret"));

    let with_options = GOOD_CONFIG.replace(
        "app_secret = \"your_app_secret\"",
        "app_secret = \"your_app_secret\"\nplatform = \"scan\"\nclient_ip = \"10.0.0.2\"\nbase_url = \"https://yqtapi.com/\"",
    );
    let config = qrtill::config::Config::parse(&with_options).unwrap();
    let provider = config.provider("yqt").unwrap();
    assert!(!provider.payer_browser_needed());
    let request = server_request(
        provider
            .build_create(&order("N1", 1, Channel::Wechat, ""), &ctx())
            .unwrap(),
    );
    assert_eq!(request.url, "https://yqtapi.com/order");
    let body = String::from_utf8(request.body.unwrap()).unwrap();
    assert!(body.contains(r#""platform":"scan""#), "{body}");
    assert!(body.contains(r#""client_ip":"10.0.0.2""#), "{body}");
}

#[test]
fn config_refusals_name_the_key() {
    let cases: &[(String, &str)] = &[
        (
            GOOD_CONFIG.replace("appid = \"00000000\"\n", ""),
            "missing key `appid`",
        ),
        (
            GOOD_CONFIG.replace("appkey = \"1234567890123456\"\n", ""),
            "missing key `appkey`",
        ),
        (
            GOOD_CONFIG.replace("app_secret = \"your_app_secret\"\n", ""),
            "missing key `app_secret`",
        ),
        (
            GOOD_CONFIG.replace("app_secret = \"your_app_secret\"", "app_secret = \"\""),
            "key `app_secret` is empty",
        ),
        (
            format!("{GOOD_CONFIG}secret = \"x\"\n"),
            "unknown key `secret`",
        ),
        (
            format!("{GOOD_CONFIG}platform = \"mp\"\n"),
            "key `platform` must be one of h5, pc, scan",
        ),
        (
            format!("{GOOD_CONFIG}client_ip = \"::1\"\n"),
            "key `client_ip` must be an IPv4 address",
        ),
        (
            format!("{GOOD_CONFIG}base_url = \"ftp://yinqiantong.com\"\n"),
            "key `base_url` must be an http:// or https:// URL",
        ),
        (
            GOOD_CONFIG.replace("appid = \"00000000\"", "appid = 12345"),
            "key `appid` must be a string",
        ),
    ];
    for (text, expected) in cases {
        let err = qrtill::config::Config::parse(text).unwrap_err();
        assert!(err.contains(expected), "{expected:?} not in {err:?}");
        assert!(err.contains("[[provider]] `yqt`"), "{err}");
        assert!(!err.contains("your_app_secret"), "{err}");
    }
}
