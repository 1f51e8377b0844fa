//! The sun.jings.wang v1 protocol (seed 004, PROVIDERS.md §5a), checked offline through the
//! public provider API: the seed's published key vector and hand-computed ones, the exact
//! pay form (and its signed GET link), query and balance requests, the status table, the
//! query and balance answer readers, notify verification and the ack, the config table, and
//! that the token never shows in `Debug`. No network, no clock, no ledger.
//!
//! Every MD5 below was computed outside this crate with
//! `python3 -c "import hashlib; print(hashlib.md5('...'.encode()).hexdigest())"` over the
//! input string written next to it; every form body and query string was checked with
//! Python's `urllib.parse.urlencode` (with `quote_via=urllib.parse.quote` where a space is
//! sent as `%20`).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::time::Duration;

use qrtill::config::Config;
use qrtill::model::{Channel, Fen, OrderNo, ProviderState};
use qrtill::providers::jings::transformers::{SignInput, beijing_time, map_status};
use qrtill::providers::jings::{self, Jings};
use qrtill::providers::{
    AccountStatus, CallContext, CallbackReport, CallbackRequest, CreateOrder, CreateStep,
    HttpResponse, Method, OrderRef, Provider, ProviderError, QueryOutcome, StatusReport,
};
use qrtill::secret::Secret;

const BASE: &str = "https://sun.jings.wang";
/// The seed's balance example's uid and token.
const UID: &str = "10000001400000";
const TOKEN: &str = "10665CF54E90822951FE80330E9CF715";
const LISTENER: &str = "http://127.0.0.1:8765/notify/main";
/// 2018-09-02 04:35:06 UTC = 2018-09-02 12:35:06 in Beijing: the seed's `reqtime`.
const NOW: i64 = 1_535_862_906;
const ORDER: &str = "20180902123506001";

/// md5("payid=424800000000000001&orderid=20180902123506001&orderuid=&paymoney=12.34"
///     + "&realpay=12.34&token=10665CF54E90822951FE80330E9CF715")
const NOTIFY_KEY_PAID: &str = "0151ba7f7599bd3f846f494ca7deddf3";
/// The same with realpay=12.33.
const NOTIFY_KEY_UNDERPAID: &str = "9c1e96009a7641d606d821eacce67ffe";
/// The same as `NOTIFY_KEY_PAID` with token=wrong.
const NOTIFY_KEY_FORGED: &str = "4636fc586e770f67582c0b0c99c065d0";

fn provider() -> Jings {
    Jings::new("main", BASE, UID, Secret::new(TOKEN))
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

fn form_of(step: CreateStep) -> qrtill::providers::PayerForm {
    match step {
        CreateStep::PayerForm(form) => form,
        other => panic!("jings creates by the payer's browser, got {other:?}"),
    }
}

fn pairs(fields: &[(&str, &str)]) -> Vec<(String, String)> {
    fields
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Golden keys

#[test]
fn published_balance_vector_from_the_seed() {
    // Seed 1.5, verbatim: "uid=10000001400000&reqtime=2018-09-02 12:35:06&token=10665CF5
    // 4E90822951FE80330E9CF715" gives c9b922d7dde2c8ad614b998f8d183e84.
    let key = SignInput::Balance {
        uid: "10000001400000",
        reqtime: "2018-09-02 12:35:06",
    }
    .sign(&Secret::new("10665CF54E90822951FE80330E9CF715"));
    assert_eq!(key, "c9b922d7dde2c8ad614b998f8d183e84");
}

#[test]
fn seed_notify_example_vector() {
    // Seed 1.2's plain text (no digest is published; this one is python's):
    // "payid=10000000480012&orderid=10000000480010&orderuid=10000000480011&paymoney=0.01
    //  &realpay=0.01&token=2f44c6b906208208c4122c83125ccd7b"
    let key = SignInput::Notify {
        payid: "10000000480012",
        orderid: "10000000480010",
        orderuid: "10000000480011",
        paymoney: "0.01",
        realpay: "0.01",
    }
    .sign(&Secret::new("2f44c6b906208208c4122c83125ccd7b"));
    assert_eq!(key, "ca1da861b827a0862de28a17fc99ce05");
}

#[test]
fn seed_pay_example_vector() {
    // Seed 1.1's example, whose PDF text is garbled across a line break
    // ("…paytype=11¬ifyurl=http://r / eturnurl&orderinfo=&token=ABC123"), read as:
    // "uid=123&orderid=123&ordername=abc&paymoney=1.01&orderuid=123&paytype=11
    //  &notifyurl=http://notifyurl&returnurl=http://returnurl&orderinfo=&token=ABC123"
    let key = SignInput::Pay {
        uid: "123",
        orderid: "123",
        ordername: "abc",
        paymoney: "1.01",
        orderuid: "123",
        paytype: "11",
        notifyurl: "http://notifyurl",
        returnurl: "http://returnurl",
        orderinfo: "",
    }
    .sign(&Secret::new("ABC123"));
    assert_eq!(key, "684708ec6a42c6d70ff3477281c067d9");
}

#[test]
fn query_key_vector() {
    // INFERRED key string (PROVIDERS.md §5a), with the seed's query answer's orderid:
    // "orderid=10000000900000&uid=10000001400000&token=10665CF54E90822951FE80330E9CF715"
    let key = SignInput::Query {
        orderid: "10000000900000",
        uid: "10000001400000",
    }
    .sign(&Secret::new(TOKEN));
    assert_eq!(key, "4ceb420edb88182c3423f4bc4d9bf51a");
}

#[test]
fn signing_order_is_data() {
    let names = |input: SignInput<'_>| {
        input
            .fields()
            .into_iter()
            .map(|(name, _)| name)
            .collect::<Vec<_>>()
    };
    let pay = SignInput::Pay {
        uid: "",
        orderid: "",
        ordername: "",
        paymoney: "",
        orderuid: "",
        paytype: "",
        notifyurl: "",
        returnurl: "",
        orderinfo: "",
    };
    assert_eq!(
        names(pay),
        [
            "uid",
            "orderid",
            "ordername",
            "paymoney",
            "orderuid",
            "paytype",
            "notifyurl",
            "returnurl",
            "orderinfo"
        ]
    );
    let notify = SignInput::Notify {
        payid: "",
        orderid: "",
        orderuid: "",
        paymoney: "",
        realpay: "",
    };
    assert_eq!(
        names(notify),
        ["payid", "orderid", "orderuid", "paymoney", "realpay"]
    );
}

// ---------------------------------------------------------------------------------------------
// Pay form

#[test]
fn create_is_a_payer_form_with_every_field_in_order() {
    // key = md5("uid=10000001400000&orderid=20180902123506001&ordername=奶茶 x2&paymoney=12.34
    //   &orderuid=&paytype=11&notifyurl=http://127.0.0.1:8765/notify/main
    //   &returnurl=http://127.0.0.1:8765/notify/main&orderinfo=
    //   &token=10665CF54E90822951FE80330E9CF715") (UTF-8, values not encoded)
    let form = form_of(
        provider()
            .build_create(&order(ORDER, 1234, Channel::Alipay, "奶茶 x2"), &ctx())
            .unwrap(),
    );
    assert_eq!(form.action, "https://sun.jings.wang/pay.action");
    assert_eq!(
        form.fields,
        pairs(&[
            ("uid", UID),
            ("orderid", ORDER),
            ("ordername", "奶茶 x2"),
            ("paymoney", "12.34"),
            ("orderuid", ""),
            ("paytype", "11"),
            ("notifyurl", LISTENER),
            ("returnurl", LISTENER),
            ("orderinfo", ""),
            ("key", "bbce5b26a922d1de556dae0acf9382b8"),
        ])
    );
    // The same fields as the signed link a QR carries (urllib.parse.urlencode of the pairs).
    assert_eq!(
        form.to_get_url(),
        "https://sun.jings.wang/pay.action?uid=10000001400000&orderid=20180902123506001\
         &ordername=%E5%A5%B6%E8%8C%B6+x2&paymoney=12.34&orderuid=&paytype=11\
         &notifyurl=http%3A%2F%2F127.0.0.1%3A8765%2Fnotify%2Fmain\
         &returnurl=http%3A%2F%2F127.0.0.1%3A8765%2Fnotify%2Fmain&orderinfo=\
         &key=bbce5b26a922d1de556dae0acf9382b8"
    );
    // The bridge page posts exactly these fields to the provider.
    let html = form.to_html();
    assert!(html.contains("<form method=\"post\" action=\"https://sun.jings.wang/pay.action\">"));
    assert!(html.contains("<input type=\"hidden\" name=\"ordername\" value=\"奶茶 x2\">"));
    assert!(html.contains("<input type=\"hidden\" name=\"orderinfo\" value=\"\">"));
    assert!(!html.contains(TOKEN), "the token never reaches the payer");
    assert!(provider().payer_browser_needed());
}

#[test]
fn create_with_configured_returnurl_paytype_and_base() {
    // key = md5("uid=10000001400000&orderid=ORDER-42&ordername=&paymoney=0.01&orderuid=
    //   &paytype=22&notifyurl=http://127.0.0.1:8765/notify/main
    //   &returnurl=https://shop.example.com/thanks?from=till&x=1&orderinfo=
    //   &token=10665CF54E90822951FE80330E9CF715")
    let provider = Jings::new("main", "http://top.jings.wang/", UID, Secret::new(TOKEN))
        .with_paytype("22")
        .unwrap()
        .with_returnurl(Some("https://shop.example.com/thanks?from=till&x=1".into()));
    assert_eq!(provider.channels(), &[Channel::Wechat]);
    let form = form_of(
        provider
            .build_create(&order("ORDER-42", 1, Channel::Wechat, ""), &ctx())
            .unwrap(),
    );
    assert_eq!(form.action, "http://top.jings.wang/pay.action");
    assert_eq!(
        form.fields.last(),
        Some(&(
            "key".to_string(),
            "187327a02ea3a14f1bda3278a66da278".to_string()
        ))
    );
    assert_eq!(
        form.fields[7],
        (
            "returnurl".to_string(),
            "https://shop.example.com/thanks?from=till&x=1".to_string()
        )
    );
}

#[test]
fn create_refuses_other_channels_and_overlong_fields() {
    for channel in [Channel::Wechat, Channel::Unionpay, Channel::Qq] {
        let result = provider().build_create(&order(ORDER, 100, channel, ""), &ctx());
        assert!(
            matches!(result, Err(ProviderError::NotSupported(_))),
            "{channel}: {result:?}"
        );
    }
    assert_eq!(provider().channels(), &[Channel::Alipay]);
    let long_notify = CallContext {
        now_unix: NOW,
        notify_url: format!("https://till.example.com/{}", "n".repeat(60)),
    };
    let result = provider().build_create(&order(ORDER, 100, Channel::Alipay, ""), &long_notify);
    assert!(
        matches!(&result, Err(ProviderError::NotSupported(what)) if what.contains("80 bytes")),
        "{result:?}"
    );
    // A long subject is cut to the seed's 100 bytes on a character boundary, not refused.
    let subject = "茶".repeat(40);
    let form = form_of(
        provider()
            .build_create(&order(ORDER, 100, Channel::Alipay, &subject), &ctx())
            .unwrap(),
    );
    assert_eq!(form.fields[2].0, "ordername");
    assert_eq!(form.fields[2].1, "茶".repeat(33));
}

#[test]
fn parse_create_is_not_part_of_the_protocol() {
    let result = provider().parse_create(&response(200, "<html>pay page</html>"));
    assert!(
        matches!(result, Err(ProviderError::NotSupported(_))),
        "{result:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// Query and balance requests

#[test]
fn query_request() {
    for provider_order_id in [None, Some("424800000000000001".to_string())] {
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
        // key = md5("orderid=20180902123506001&uid=10000001400000
        //   &token=10665CF54E90822951FE80330E9CF715")
        assert_eq!(
            request.url,
            "https://sun.jings.wang/requstOrderStatus.action?orderid=20180902123506001\
             &uid=10000001400000&key=042f1045ca8b6a6fb05f312f47921383"
        );
        assert!(request.headers.is_empty());
        assert!(request.body.is_none());
    }
    assert!(provider().can_query());
    assert_eq!(
        provider().poll_limits().min_interval,
        Duration::from_secs(60),
        "one query per order per minute"
    );
}

#[test]
fn balance_request_reproduces_the_seed_example() {
    assert_eq!(beijing_time(NOW), "2018-09-02 12:35:06");
    let (request, every) = provider().build_account_check(&ctx()).unwrap();
    assert_eq!(request.method, Method::Get);
    // The seed's own key; the space in reqtime travels as %20, the colons as %3A.
    assert_eq!(
        request.url,
        "https://sun.jings.wang/requstBalance.action?uid=10000001400000\
         &reqtime=2018-09-02%2012%3A35%3A06&key=c9b922d7dde2c8ad614b998f8d183e84"
    );
    assert!(request.body.is_none());
    assert!(every > Duration::from_secs(180), "3 minutes and a margin");
    assert!(every <= Duration::from_secs(240));
}

#[test]
fn beijing_time_is_utc_plus_eight_whatever_the_local_zone() {
    assert_eq!(beijing_time(0), "1970-01-01 08:00:00");
    // 2018-12-31 16:00:00 UTC is already the new year in Beijing.
    assert_eq!(beijing_time(1_546_272_000), "2019-01-01 00:00:00");
}

// ---------------------------------------------------------------------------------------------
// Status table

#[test]
fn status_table() {
    let table: &[(i64, ProviderState)] = &[
        (-1, ProviderState::Pending),
        (0, ProviderState::Paid),
        (1, ProviderState::Expired),
        (-2, ProviderState::Unknown("-2".into())),
        (2, ProviderState::Unknown("2".into())),
        (9, ProviderState::Unknown("9".into())),
    ];
    for (code, state) in table {
        assert_eq!(&map_status(*code), state, "status {code}");
    }
}

#[test]
fn only_zero_is_paid() {
    for code in (-1000..1000).chain([i64::MIN, i64::MAX]) {
        assert_eq!(
            map_status(code) == ProviderState::Paid,
            code == 0,
            "status {code}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Query answers

#[test]
fn parse_query_seed_example() {
    // Seed 1.4's example answer, verbatim but for the PDF's line breaks: timed out.
    let body = r#"{"msg":"","orderid":"10000000900000","payid":"10000000900002","paymoney":"0.05","realpay":"0.05","status":"1"}"#;
    let report = report(provider().parse_query(&response(200, body)).unwrap());
    assert_eq!(report.state, ProviderState::Expired);
    assert_eq!(report.raw_code, "1");
    assert_eq!(report.provider_order_id.as_deref(), Some("10000000900002"));
    assert_eq!(report.amount, Some(Fen(5)));
    assert_eq!(report.qr, None);
}

#[test]
fn parse_query_waiting_and_paid() {
    let waiting = r#"{"msg":"","orderid":"20180902123506001","payid":"424800000000000001","paymoney":"12.34","realpay":"","status":"-1"}"#;
    let report1 = report(provider().parse_query(&response(200, waiting)).unwrap());
    assert_eq!(report1.state, ProviderState::Pending);
    assert_eq!(report1.amount, None, "realpay is empty until paid");
    let paid = r#"{"msg":"","orderid":"20180902123506001","payid":"424800000000000001","paymoney":"12.34","realpay":"12.33","status":0}"#;
    let report2 = report(provider().parse_query(&response(200, paid)).unwrap());
    assert_eq!(report2.state, ProviderState::Paid);
    assert_eq!(report2.raw_code, "0");
    assert_eq!(report2.amount, Some(Fen(1233)), "the amount is realpay");
}

#[test]
fn parse_query_minus_two_is_an_error_not_a_state() {
    let body = r#"{"msg":"查询异常: 查询过于频繁, 一个订单号一分钟只能查询一次","orderid":"20180902123506001","payid":"","paymoney":"","realpay":"","status":"-2"}"#;
    assert_eq!(
        provider().parse_query(&response(200, body)),
        Err(ProviderError::Rejected {
            code: "-2".into(),
            message: "查询异常: 查询过于频繁, 一个订单号一分钟只能查询一次".into(),
        })
    );
    let bare = r#"{"msg":"","status":-2}"#;
    let err = provider().parse_query(&response(200, bare)).unwrap_err();
    assert!(
        err.to_string().contains("-2") && err.to_string().contains("查询异常"),
        "{err}"
    );
}

#[test]
fn parse_query_unknown_status_is_unknown() {
    let body =
        r#"{"msg":"","orderid":"1","payid":"2","paymoney":"1.00","realpay":"1.00","status":"7"}"#;
    let report = report(provider().parse_query(&response(200, body)).unwrap());
    assert_eq!(report.state, ProviderState::Unknown("7".into()));
}

#[test]
fn parse_query_bad_answers() {
    let html = "<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>";
    assert_eq!(
        provider().parse_query(&response(502, html)),
        Err(ProviderError::HttpStatus { status: 502 })
    );
    // A 500 that still carries the provider's JSON says what it says.
    assert_eq!(
        provider().parse_query(&response(500, r#"{"msg":"系统繁忙","status":"-2"}"#)),
        Err(ProviderError::Rejected {
            code: "-2".into(),
            message: "系统繁忙".into()
        })
    );
    let cases = [
        ("200 HTML", "<html><body>维护中 maintenance</body></html>"),
        ("truncated", r#"{"msg":"","orderid":"2018090212350600"#),
        ("no status", r#"{"msg":"","orderid":"1","realpay":""}"#),
        ("status not a number", r#"{"msg":"","status":"paid"}"#),
        ("not an object", r#"["status", 0]"#),
        (
            "bad realpay",
            r#"{"msg":"","status":"0","realpay":"12.3.4"}"#,
        ),
        ("empty", ""),
    ];
    for (name, body) in cases {
        let result = provider().parse_query(&response(200, body));
        assert!(
            matches!(result, Err(ProviderError::Decode { .. })),
            "{name}: {result:?}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Balance answers

#[test]
fn parse_balance_seed_example() {
    let body = r#"{"balance":"5.94","msg":"","reqtime":"2018-09-02 12:35:06","status":"0","uid":"10000001400000"}"#;
    assert_eq!(
        provider().parse_account_check(&response(200, body)),
        Ok(AccountStatus {
            balance: Some(Fen(594)),
            message: None,
            refuse_charges: None,
        })
    );
}

#[test]
fn parse_balance_refusal_and_garbage() {
    let refused = r#"{"balance":"","msg":"查询过于频繁: 三分钟只能查询一次","reqtime":"2018-09-02 12:35:06","status":"1","uid":"10000001400000"}"#;
    assert_eq!(
        provider().parse_account_check(&response(200, refused)),
        Err(ProviderError::Rejected {
            code: "1".into(),
            message: "查询过于频繁: 三分钟只能查询一次".into()
        })
    );
    for body in [
        "<html>error</html>",
        r#"{"balance":"5.9"#,
        r#"{"balance":"","msg":"","status":"0"}"#,
        r#"{"balance":"abc","msg":"","status":"0"}"#,
        r#"{"balance":"5.94","msg":""}"#,
    ] {
        let result = provider().parse_account_check(&response(200, body));
        assert!(
            matches!(result, Err(ProviderError::Decode { .. })),
            "{body}: {result:?}"
        );
    }
    assert_eq!(
        provider().parse_account_check(&response(503, "busy")),
        Err(ProviderError::HttpStatus { status: 503 })
    );
}

// ---------------------------------------------------------------------------------------------
// Notify

fn notify_body(fields: &[(&str, &str)]) -> CallbackRequest {
    let body = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(fields.iter())
        .finish();
    CallbackRequest {
        method: "POST".into(),
        query: vec![],
        body: body.into_bytes(),
        content_type: Some("application/x-www-form-urlencoded".into()),
        headers: Vec::new(),
    }
}

fn good_fields(realpay: &'static str, key: &'static str) -> Vec<(&'static str, &'static str)> {
    vec![
        ("payid", "424800000000000001"),
        ("orderid", ORDER),
        ("orderuid", ""),
        ("paymoney", "12.34"),
        ("realpay", realpay),
        ("key", key),
    ]
}

#[test]
fn notify_good() {
    let request = notify_body(&good_fields("12.34", NOTIFY_KEY_PAID));
    let expected = CallbackReport {
        order_no: OrderNo::new(ORDER).unwrap(),
        state: ProviderState::Paid,
        raw_code: "paid".into(),
        amount: Some(Fen(1234)),
        amount_signed: true,
    };
    assert_eq!(provider().verify_callback(&request), Ok(expected.clone()));
    // The provider retries a notify: a repeat verifies the same (the ledger applies it once).
    assert_eq!(provider().verify_callback(&request), Ok(expected));
    // Upper-case hex is the same key.
    let upper = NOTIFY_KEY_PAID.to_ascii_uppercase();
    let mut fields = good_fields("12.34", "");
    fields[5].1 = &upper;
    assert!(provider().verify_callback(&notify_body(&fields)).is_ok());
}

#[test]
fn notify_wrong_amount_is_reported_as_signed() {
    // realpay 12.33 on a 12.34 order, correctly signed: the provider says so, the ledger
    // flags the difference; it is not something to re-query.
    let report = provider()
        .verify_callback(&notify_body(&good_fields("12.33", NOTIFY_KEY_UNDERPAID)))
        .unwrap();
    assert_eq!(report.state, ProviderState::Paid);
    assert_eq!(report.amount, Some(Fen(1233)));
    assert!(report.amount_signed);
    // The paid key with a changed amount is a forgery.
    assert_eq!(
        provider().verify_callback(&notify_body(&good_fields("12.33", NOTIFY_KEY_PAID))),
        Err(ProviderError::BadSignature)
    );
}

#[test]
fn notify_forged_refused() {
    for key in [
        NOTIFY_KEY_FORGED,
        "00000000000000000000000000000000",
        // One hex digit off.
        "0151ba7f7599bd3f846f494ca7deddf4",
        "",
    ] {
        let result = provider().verify_callback(&notify_body(&good_fields("12.34", key)));
        assert_eq!(result, Err(ProviderError::BadSignature), "key {key:?}");
    }
    // A right key for another order number.
    let mut fields = good_fields("12.34", NOTIFY_KEY_PAID);
    fields[1].1 = "20180902123506002";
    assert_eq!(
        provider().verify_callback(&notify_body(&fields)),
        Err(ProviderError::BadSignature)
    );
}

#[test]
fn notify_unknown_fields_are_ignored() {
    let mut fields = good_fields("12.34", NOTIFY_KEY_PAID);
    fields.insert(2, ("extra", "1"));
    fields.push(("sign_type", "MD5"));
    let report = provider().verify_callback(&notify_body(&fields)).unwrap();
    assert_eq!(report.state, ProviderState::Paid);
}

#[test]
fn notify_missing_or_repeated_fields_are_decode_errors() {
    for drop in ["key", "payid", "orderid", "orderuid", "paymoney", "realpay"] {
        let fields: Vec<_> = good_fields("12.34", NOTIFY_KEY_PAID)
            .into_iter()
            .filter(|(name, _)| *name != drop)
            .collect();
        let result = provider().verify_callback(&notify_body(&fields));
        assert!(
            matches!(&result, Err(ProviderError::Decode { reason }) if reason.contains(drop)),
            "without {drop}: {result:?}"
        );
    }
    let mut twice = good_fields("12.34", NOTIFY_KEY_PAID);
    twice.push(("realpay", "99.99"));
    let result = provider().verify_callback(&notify_body(&twice));
    assert!(
        matches!(&result, Err(ProviderError::Decode { reason }) if reason.contains("more than once")),
        "{result:?}"
    );
}

#[test]
fn notify_signed_but_empty_realpay_is_refused() {
    // md5("payid=424800000000000001&orderid=20180902123506001&orderuid=&paymoney=12.34
    //   &realpay=&token=10665CF54E90822951FE80330E9CF715")
    let result = provider().verify_callback(&notify_body(&good_fields(
        "",
        "184f8f7ff3b12fb8cce0ad98b964212c",
    )));
    // The key matches, but an empty realpay is never a payment.
    assert!(
        matches!(&result, Err(ProviderError::Decode { reason }) if reason.contains("realpay")),
        "{result:?}"
    );
}

#[test]
fn notify_in_the_query_string_is_read_too() {
    let request = CallbackRequest {
        method: "GET".into(),
        query: pairs(&good_fields("12.34", NOTIFY_KEY_PAID)),
        body: vec![],
        content_type: None,
        headers: Vec::new(),
    };
    assert_eq!(
        provider().verify_callback(&request).unwrap().amount,
        Some(Fen(1234))
    );
}

#[test]
fn callback_acks() {
    let ok = provider().callback_ack(true);
    assert_eq!((ok.status, ok.body.as_str()), (200, "success"));
    let refused = provider().callback_ack(false);
    assert_eq!((refused.status, refused.body.as_str()), (400, "fail"));
}

// ---------------------------------------------------------------------------------------------
// Secrets and config

#[test]
fn debug_never_shows_the_token() {
    let plain = provider();
    let configured = provider()
        .with_returnurl(Some(LISTENER.into()))
        .with_paytype("21")
        .unwrap();
    for text in [
        format!("{plain:?}"),
        format!("{plain:#?}"),
        format!("{configured:?}"),
    ] {
        assert!(!text.contains(TOKEN), "{text}");
    }
    let boxed: Box<dyn Provider> = Box::new(provider());
    assert!(!format!("{boxed:?}").contains(TOKEN));
}

fn config(provider_lines: &str) -> Result<Config, String> {
    Config::parse(&format!(
        "default_provider = \"shop\"\n\n[[provider]]\nid = \"shop\"\nkind = \"jings\"\n{provider_lines}"
    ))
}

#[test]
fn config_good_table() {
    let config = config(&format!(
        "uid = \"{UID}\"\ntoken = \"{TOKEN}\"\npaytype = \"11\"\nbase_url = \"https://sun.jings.wang/\"\n"
    ))
    .unwrap();
    let provider = config.provider("shop").unwrap();
    assert_eq!(provider.kind(), "jings");
    assert_eq!(provider.channels(), &[Channel::Alipay]);
    assert!(!format!("{config:?}").contains(TOKEN));
    // Defaults: the real host, paytype 11; a bare integer uid is the same uid.
    let minimal = self::config(&format!("uid = {UID}\ntoken = \"{TOKEN}\"\n")).unwrap();
    let (request, _) = minimal
        .provider("shop")
        .unwrap()
        .build_account_check(&ctx())
        .unwrap();
    assert!(
        request
            .url
            .starts_with("https://sun.jings.wang/requstBalance.action?uid=10000001400000&"),
        "{}",
        request.url
    );
    assert_eq!(jings::KIND.name, "jings");
}

#[test]
fn config_errors_name_the_key() {
    let cases = [
        (format!("token = \"{TOKEN}\"\n"), "`uid`"),
        (format!("uid = \"{UID}\"\n"), "`token`"),
        (format!("uid = \"{UID}\"\ntoken = \"\"\n"), "`token`"),
        (
            format!("uid = \"{UID}\"\ntoken = \"{TOKEN}\"\nkey = \"x\"\n"),
            "unknown key `key`",
        ),
        (
            format!("uid = \"{UID}\"\ntoken = \"{TOKEN}\"\npaytype = \"12\"\n"),
            "`paytype`",
        ),
        (format!("uid = \"100&x=1\"\ntoken = \"{TOKEN}\"\n"), "`uid`"),
        (
            format!("uid = \"{UID}\"\ntoken = \"{TOKEN}\"\nbase_url = \"ftp://x\"\n"),
            "`base_url`",
        ),
        (
            format!(
                "uid = \"{UID}\"\ntoken = \"{TOKEN}\"\nreturnurl = \"https://shop.example.com/{}\"\n",
                "r".repeat(80)
            ),
            "`returnurl`",
        ),
    ];
    for (lines, named) in cases {
        let err = config(&lines).unwrap_err();
        assert!(err.contains(named), "{lines}: {err}");
        assert!(err.contains("`shop`"), "{err}");
        assert!(!err.contains(TOKEN), "{err}");
    }
}
