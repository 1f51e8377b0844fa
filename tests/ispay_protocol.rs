//! The ispay.in v1 protocol (seed 000, PROVIDERS.md §1a), checked offline through the public
//! provider API: hand-computed signature vectors, the exact create and query requests, the
//! state table, the create/query answer readers, notify verification and the ack, and that
//! the merchant key never shows in `Debug`. No network, no clock, no ledger.
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

use base64::Engine as _;
use qrtill::model::{Channel, Fen, OrderNo, ProviderState, QrPayload};
use qrtill::providers::ispay::Ispay;
use qrtill::providers::ispay::transformers::{SignInput, map_state};
use qrtill::providers::{
    CallContext, CallbackReport, CallbackRequest, CreateOrder, HttpResponse, Method, OrderRef,
    Provider, ProviderError, QueryOutcome, StatusReport,
};
use qrtill::secret::Secret;

const BASE: &str = "https://pay.ispay.in";
const USERID: &str = "10001";
const KEY: &str = "test-key";
const LISTENER: &str = "http://127.0.0.1:8765/notify/main";
const NOW: i64 = 1_574_051_664;

/// md5("1000120191118123424test-key"): userid + order_no + key.
const ORDER_SIGN_20191118123424: &str = "7b59048c0c08a1b69b9d57ec8a735aad";
/// md5("10001ORDER-42test-key"): userid + order_no + key.
const ORDER_SIGN_ORDER_42: &str = "e19df995b2d8eab7b53c287340cd541f";

fn provider() -> Ispay {
    Ispay::new("main", BASE, USERID, Secret::new(KEY))
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

fn tiny_png() -> Vec<u8> {
    let png = qrtill::qr::to_png("x", 1).unwrap();
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"));
    png
}

// ---------------------------------------------------------------------------------------------
// Golden signatures

#[test]
fn create_sign_vectors() {
    // (userid, order_no, order_type, amount, return_url, key, md5 of their concatenation)
    let vectors: &[(&str, &str, &str, &str, &str, &str, &str)] = &[
        // "1000120191118123424P901300.00http://127.0.0.1:8765/notify/maintest-key"
        (
            "10001",
            "20191118123424",
            "P901",
            "300.00",
            "http://127.0.0.1:8765/notify/main",
            "test-key",
            "e7f4acf7b3807904ceb5dcc6cb00bdb1",
        ),
        // "1000120191118123425P9020.01http://127.0.0.1:8765/notify/maintest-key"
        (
            "10001",
            "20191118123425",
            "P902",
            "0.01",
            "http://127.0.0.1:8765/notify/main",
            "test-key",
            "7aefa79fecbbbb0b123955b3926e67ad",
        ),
        // "20002UP-0001_xP90499999.99https://shop.example.com/return/up"
        //   + "K9fQ2vL7xR4mN8pT1wZ6yB3cH5jD0sGaEeUuIiOo-long-key_0123456789"
        (
            "20002",
            "UP-0001_x",
            "P904",
            "99999.99",
            "https://shop.example.com/return/up",
            "K9fQ2vL7xR4mN8pT1wZ6yB3cH5jD0sGaEeUuIiOo-long-key_0123456789",
            "369888e9cab77a015e2e8c511132c44c",
        ),
    ];
    for &(userid, order_no, order_type, amount, return_url, key, expected) in vectors {
        let sign = SignInput::Create {
            userid,
            order_no,
            order_type,
            amount,
            return_url,
        }
        .sign(&Secret::new(key));
        assert_eq!(sign, expected, "create sign for order {order_no}");
    }
}

#[test]
fn order_no_sign_vectors() {
    let vectors: &[(&str, &str, &str, &str)] = &[
        // "1000120191118123424test-key"
        (
            "10001",
            "20191118123424",
            "test-key",
            ORDER_SIGN_20191118123424,
        ),
        // "10001ORDER-42test-key"
        ("10001", "ORDER-42", "test-key", ORDER_SIGN_ORDER_42),
    ];
    for &(userid, order_no, key, expected) in vectors {
        let sign = SignInput::OrderNo { userid, order_no }.sign(&Secret::new(key));
        assert_eq!(sign, expected, "order sign for {order_no}");
    }
}

// ---------------------------------------------------------------------------------------------
// Create request

fn assert_form_post(step: &qrtill::providers::CreateStep, body: &str) {
    let qrtill::providers::CreateStep::Server(request) = step else {
        panic!("ispay.in creates server to server, got {step:?}");
    };
    assert_eq!(request.method, Method::Post);
    assert_eq!(request.url, "https://pay.ispay.in/gateway");
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
fn create_alipay_no_subject_no_configured_urls() {
    // No configured URLs: notify_url is the listener's, and return_url falls back to it.
    // sign = md5("1000120191118123424P901300.00http://127.0.0.1:8765/notify/maintest-key")
    let request = provider()
        .build_create(
            &order("20191118123424", 30_000, Channel::Alipay, ""),
            &ctx(),
        )
        .unwrap();
    assert_form_post(
        &request,
        "userid=10001\
         &order_no=20191118123424\
         &order_type=P901\
         &amount=300.00\
         &notify_url=http%3A%2F%2F127.0.0.1%3A8765%2Fnotify%2Fmain\
         &return_url=http%3A%2F%2F127.0.0.1%3A8765%2Fnotify%2Fmain\
         &ip=127.0.0.1\
         &order_time=1574051664\
         &sign=e7f4acf7b3807904ceb5dcc6cb00bdb1",
    );
}

#[test]
fn create_wechat_with_subject_and_configured_urls() {
    // sign = md5("1000120191118123425P9020.01"
    //            + "https://shop.example.com/thanks?from=till&x=1" + "test-key")
    let provider = provider().with_urls(
        Some("https://shop.example.com/ispay/notify".into()),
        Some("https://shop.example.com/thanks?from=till&x=1".into()),
    );
    let request = provider
        .build_create(
            &order("20191118123425", 1, Channel::Wechat, "奶茶 x2"),
            &ctx(),
        )
        .unwrap();
    assert_form_post(
        &request,
        "userid=10001\
         &subject=%E5%A5%B6%E8%8C%B6+x2\
         &order_no=20191118123425\
         &order_type=P902\
         &amount=0.01\
         &notify_url=https%3A%2F%2Fshop.example.com%2Fispay%2Fnotify\
         &return_url=https%3A%2F%2Fshop.example.com%2Fthanks%3Ffrom%3Dtill%26x%3D1\
         &ip=127.0.0.1\
         &order_time=1574051664\
         &sign=25fb407498a5eb9c33595a59e789f414",
    );
}

#[test]
fn create_unionpay_with_configured_notify_only() {
    // Only notify_url configured: return_url falls back to it (not to the listener).
    // sign = md5("10001UP-0001_xP90499999.99https://shop.example.com/ispay/notifytest-key")
    let provider = provider().with_urls(Some("https://shop.example.com/ispay/notify".into()), None);
    let request = provider
        .build_create(
            &order("UP-0001_x", 9_999_999, Channel::Unionpay, ""),
            &ctx(),
        )
        .unwrap();
    assert_form_post(
        &request,
        "userid=10001\
         &order_no=UP-0001_x\
         &order_type=P904\
         &amount=99999.99\
         &notify_url=https%3A%2F%2Fshop.example.com%2Fispay%2Fnotify\
         &return_url=https%3A%2F%2Fshop.example.com%2Fispay%2Fnotify\
         &ip=127.0.0.1\
         &order_time=1574051664\
         &sign=e2bf508971c3cf8eba60329b14bf467b",
    );
}

#[test]
fn create_qq_is_not_supported() {
    let result = provider().build_create(&order("20191118123424", 100, Channel::Qq, ""), &ctx());
    assert!(
        matches!(result, Err(ProviderError::NotSupported(_))),
        "{result:?}"
    );
    assert!(!provider().channels().contains(&Channel::Qq));
}

// ---------------------------------------------------------------------------------------------
// Query request

#[test]
fn query_by_provider_id() {
    let request = provider()
        .build_query(
            &OrderRef {
                order_no: OrderNo::new("20191118123424").unwrap(),
                provider_order_id: Some("424843497502158848".into()),
            },
            &ctx(),
        )
        .unwrap();
    assert_eq!(request.method, Method::Get);
    assert_eq!(request.url, "https://pay.ispay.in/query/424843497502158848");
    assert!(request.body.is_none());
}

#[test]
fn query_by_order_no() {
    let request = provider()
        .build_query(
            &OrderRef {
                order_no: OrderNo::new("20191118123424").unwrap(),
                provider_order_id: None,
            },
            &ctx(),
        )
        .unwrap();
    assert_eq!(request.method, Method::Get);
    // md5("1000120191118123424test-key")
    assert_eq!(
        request.url,
        "https://pay.ispay.in/order/10001/20191118123424/7b59048c0c08a1b69b9d57ec8a735aad"
    );
    assert!(request.body.is_none());
}

// ---------------------------------------------------------------------------------------------
// States

#[test]
fn state_table() {
    let table: &[(i64, ProviderState)] = &[
        (1, ProviderState::Pending),
        (2, ProviderState::Pending),
        (5, ProviderState::Pending),
        (8, ProviderState::Confirming),
        (9, ProviderState::Paid),
        (3, ProviderState::Cancelled),
        (4, ProviderState::Expired),
        (6, ProviderState::Expired),
        (7, ProviderState::Failed),
        (0, ProviderState::Unknown("0".into())),
        (10, ProviderState::Unknown("10".into())),
        (-1, ProviderState::Unknown("-1".into())),
        (99, ProviderState::Unknown("99".into())),
    ];
    for (code, state) in table {
        assert_eq!(&map_state(*code), state, "state {code}");
    }
}

#[test]
fn only_nine_is_paid() {
    for code in (-1000..1000).chain([i64::MIN, i64::MAX]) {
        assert_eq!(
            map_state(code) == ProviderState::Paid,
            code == 9,
            "state {code}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Create answer

#[test]
fn parse_create_order_id_as_string_and_number() {
    for body in [
        r#"{"success":true,"errorCode":0,"errorMsg":null,"order_id":"424843497502158848"}"#,
        r#"{"success":true,"errorCode":0,"errorMsg":null,"order_id":424843497502158848}"#,
    ] {
        let outcome = provider().parse_create(&response(200, body)).unwrap();
        assert_eq!(
            outcome.provider_order_id.as_deref(),
            Some("424843497502158848"),
            "{body}"
        );
    }
}

#[test]
fn parse_create_seed_body_with_bare_nil() {
    let body =
        r#"{"success": true, "errorCode": 0, "errorMsg": nil,"order_id": "424843497502158848"}"#;
    let outcome = provider().parse_create(&response(200, body)).unwrap();
    assert_eq!(
        outcome.provider_order_id.as_deref(),
        Some("424843497502158848")
    );
}

#[test]
fn parse_create_seed_error() {
    let body = r#"{"success": false, "errorCode": 1004, "errorMsg": "订单创建失败!"}"#;
    assert_eq!(
        provider().parse_create(&response(200, body)),
        Err(ProviderError::Rejected {
            code: "1004".into(),
            message: "订单创建失败!".into(),
        })
    );
}

#[test]
fn parse_create_bad_answers() {
    let html = "<html><head><title>502 Bad Gateway</title></head>\
                <body><center><h1>502 Bad Gateway</h1></center><hr><center>nginx</center>\
                </body></html>";
    assert_eq!(
        provider().parse_create(&response(502, html)),
        Err(ProviderError::HttpStatus { status: 502 })
    );
    let cases = [
        ("200 HTML", "<html><body>维护中 maintenance</body></html>"),
        (
            "truncated",
            r#"{"success": true, "errorCode": 0, "order_id": "4248"#,
        ),
        (
            "no order_id",
            r#"{"success": true, "errorCode": 0, "errorMsg": nil}"#,
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
fn parse_query_seed_query_shape() {
    // The seed's /query example, made into JSON (its `imgtext` is a placeholder there).
    let body = r#"{
        "success": true,
        "errorCode": 0,
        "errorMsg": nil,
        "state": 5,
        "order": {
            "qrcode": "https://qr.alipay.com/xxxxxx",
            "imgtext": "",
            "alipayuid": "",
            "amount": 500,
            "sn": "424843497502158848",
            "timeout": 900
        }
    }"#;
    let report = report(provider().parse_query(&response(200, body)).unwrap());
    assert_eq!(report.state, ProviderState::Pending);
    assert_eq!(report.raw_code, "5");
    assert_eq!(
        report.qr,
        Some(QrPayload::Text("https://qr.alipay.com/xxxxxx".into()))
    );
    assert_eq!(report.amount, Some(Fen(50_000)));
    assert_eq!(report.timeout_secs, Some(900));
}

#[test]
fn parse_query_state_as_string() {
    let body = r#"{"success": true, "errorCode": 0, "errorMsg": nil,"state":"9"}"#;
    let report = report(provider().parse_query(&response(200, body)).unwrap());
    assert_eq!(report.state, ProviderState::Paid);
    assert_eq!(report.raw_code, "9");
}

#[test]
fn parse_query_qrcode_shape() {
    // /qrcode/{id}: the state sits inside "order".
    let body = r#"{
        "success": true, "errorCode": 0, "errorMsg": nil,
        "order": {
            "state": 5,
            "qrcode": "wxp://f2f0abcdef",
            "imgtext": "",
            "amount": 12.3,
            "sn": "424843497502158848",
            "timeout": 300
        }
    }"#;
    let report = report(provider().parse_query(&response(200, body)).unwrap());
    assert_eq!(report.state, ProviderState::Pending);
    assert_eq!(report.raw_code, "5");
    assert_eq!(report.qr, Some(QrPayload::Text("wxp://f2f0abcdef".into())));
    assert_eq!(report.amount, Some(Fen(1230)));
    assert_eq!(report.timeout_secs, Some(300));
}

#[test]
fn parse_query_order_lookup_shape() {
    // /order/{userid}/{order_no}/{md5}, as in the seed.
    let body = r#"{
        "success": true,
        "errorCode": 0,
        "errorMsg": nil,
        "order":{
            "sn":             "20191118123424",
            "state":          5,
            "qrcode":         "",
            "imgtext":        "",
            "returnURL":      "http://.../return/id",
            "returning":      true,
            "amount":         2000.00,
            "ip":             "127.0.0.1",
            "paytype":        "P901",
            "create_time":    "2019-10-15 17:04:00"
        }
    }"#;
    let report = report(provider().parse_query(&response(200, body)).unwrap());
    assert_eq!(report.state, ProviderState::Pending);
    assert_eq!(report.raw_code, "5");
    assert_eq!(report.qr, None);
    assert_eq!(report.amount, Some(Fen(200_000)));
    assert_eq!(report.timeout_secs, None);
}

#[test]
fn parse_query_imgtext_data_uri_and_bare_base64() {
    let png = tiny_png();
    let b64 = base64::engine::general_purpose::STANDARD.encode(&png);
    for imgtext in [format!("data:image/png;base64,{b64}"), b64.clone()] {
        let body = serde_json::json!({
            "success": true,
            "errorCode": 0,
            "errorMsg": null,
            "order": {"state": 5, "qrcode": "", "imgtext": imgtext, "amount": 500, "timeout": 900}
        })
        .to_string();
        let report = report(provider().parse_query(&response(200, &body)).unwrap());
        assert_eq!(report.state, ProviderState::Pending);
        assert_eq!(
            report.qr,
            Some(QrPayload::Image(png.clone())),
            "imgtext starting {:?}",
            &imgtext[..24]
        );
    }
}

#[test]
fn parse_query_not_found() {
    let body = r#"{"success": false, "errorCode": 0, "errorMsg": "订单不存在"}"#;
    assert_eq!(
        provider().parse_query(&response(200, body)),
        Ok(QueryOutcome::NotFound {
            message: "订单不存在".into()
        })
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

fn good_notify_pairs(state: &str, sign: &str) -> Vec<(&'static str, String)> {
    vec![
        ("order_no", "20191118123424".to_string()),
        ("amount", "12.30".to_string()),
        ("state", state.to_string()),
        ("sign", sign.to_string()),
    ]
}

fn notify_owned(pairs: &[(&'static str, String)]) -> CallbackRequest {
    let borrowed: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (*k, v.as_str())).collect();
    notify(&borrowed)
}

#[test]
fn notify_good_paid() {
    let request = notify_owned(&good_notify_pairs("9", ORDER_SIGN_20191118123424));
    assert_eq!(
        provider().verify_callback(&request),
        Ok(CallbackReport {
            order_no: OrderNo::new("20191118123424").unwrap(),
            state: ProviderState::Paid,
            raw_code: "9".into(),
            amount: Some(Fen(1230)),
            amount_signed: false,
        })
    );
}

#[test]
fn notify_uppercase_sign_accepted() {
    let upper = ORDER_SIGN_20191118123424.to_ascii_uppercase();
    let request = notify_owned(&good_notify_pairs("9", &upper));
    let report = provider().verify_callback(&request).unwrap();
    assert_eq!(report.state, ProviderState::Paid);
    assert_eq!(report.amount, Some(Fen(1230)));
}

#[test]
fn notify_forged_sign_refused() {
    for sign in [
        "00000000000000000000000000000000",
        // One hex digit off.
        "7b59048c0c08a1b69b9d57ec8a735aae",
        // Right sign for another order (md5("10001ORDER-42test-key")).
        ORDER_SIGN_ORDER_42,
        "",
    ] {
        let request = notify_owned(&good_notify_pairs("9", sign));
        assert_eq!(
            provider().verify_callback(&request),
            Err(ProviderError::BadSignature),
            "sign {sign:?}"
        );
    }
}

#[test]
fn notify_missing_fields_are_decode_errors() {
    let missing_sign = notify(&[
        ("order_no", "20191118123424"),
        ("amount", "12.30"),
        ("state", "9"),
    ]);
    let missing_order = notify(&[
        ("amount", "12.30"),
        ("state", "9"),
        ("sign", ORDER_SIGN_20191118123424),
    ]);
    for request in [missing_sign, missing_order] {
        let result = provider().verify_callback(&request);
        assert!(
            matches!(result, Err(ProviderError::Decode { .. })),
            "{request:?}: {result:?}"
        );
    }
}

#[test]
fn notify_state_not_a_number() {
    let request = notify_owned(&good_notify_pairs("abc", ORDER_SIGN_20191118123424));
    let result = provider().verify_callback(&request);
    assert!(
        matches!(result, Err(ProviderError::Decode { .. })),
        "{result:?}"
    );
}

#[test]
fn notify_state_eight_is_confirming() {
    let request = notify_owned(&good_notify_pairs("8", ORDER_SIGN_20191118123424));
    let report = provider().verify_callback(&request).unwrap();
    assert_eq!(report.state, ProviderState::Confirming);
    assert_eq!(report.raw_code, "8");
}

#[test]
fn notify_as_form_post_body() {
    let request = CallbackRequest {
        method: "POST".into(),
        query: vec![],
        body: format!(
            "order_no=20191118123424&amount=12.30&state=9&sign={ORDER_SIGN_20191118123424}"
        )
        .into_bytes(),
        content_type: Some("application/x-www-form-urlencoded".into()),
        headers: vec![],
    };
    let report = provider().verify_callback(&request).unwrap();
    assert_eq!(report.order_no.as_str(), "20191118123424");
    assert_eq!(report.state, ProviderState::Paid);
    assert_eq!(report.amount, Some(Fen(1230)));
}

#[test]
fn callback_acks() {
    let ok = provider().callback_ack(true);
    assert_eq!((ok.status, ok.body.as_str()), (200, "success"));
    let refused = provider().callback_ack(false);
    assert_eq!(refused.body, "fail");
}

// ---------------------------------------------------------------------------------------------
// Secrets

#[test]
fn debug_never_shows_the_key() {
    let plain = provider();
    let with_urls = provider().with_urls(Some(LISTENER.into()), Some(LISTENER.into()));
    for text in [
        format!("{plain:?}"),
        format!("{plain:#?}"),
        format!("{with_urls:?}"),
    ] {
        assert!(!text.contains(KEY), "{text}");
    }
    let boxed: Box<dyn Provider> = Box::new(provider());
    assert!(!format!("{boxed:?}").contains(KEY));
}
