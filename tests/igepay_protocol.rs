//! igepay (seed 001, PROVIDERS.md §2a) offline through the public provider API: the create
//! `key` over the sorted parameter names with hand-computed vectors, the signed payer form
//! and its GET link, the absence of a query, and notify verification.
//!
//! Every MD5 below was computed outside this crate with Python's hashlib over the string
//! written next to it.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use qrtill::model::{Channel, Fen, OrderNo, ProviderState};
use qrtill::providers::igepay::Igepay;
use qrtill::providers::igepay::transformers::SignInput;
use qrtill::providers::{
    CallContext, CallbackRequest, CreateOrder, CreateStep, OrderRef, PayerForm, Provider,
    ProviderError,
};
use qrtill::secret::Secret;

const NOTIFY: &str = "http://127.0.0.1:8765/notify/main";

fn provider() -> Igepay {
    Igepay::new(
        "main",
        "http://www.igepay.com",
        "20001",
        Secret::new("test-token"),
    )
}

fn ctx() -> CallContext {
    CallContext {
        now_unix: 1_574_051_664,
        notify_url: NOTIFY.into(),
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

fn form(step: CreateStep) -> PayerForm {
    match step {
        CreateStep::PayerForm(form) => form,
        other => panic!("igepay's create is the payer's form post, got {other:?}"),
    }
}

#[test]
fn key_sorts_values_by_parameter_name_with_the_token() {
    // The seed's own order with every parameter (order_uid not sent):
    // notify_url + order_id + order_name + price + return_url + token + type + uid
    // "http://www.aaa.com/qpay_notify201710192541name0.01http://www.aaa.com/qpay_returntok2123"
    let params = [
        ("uid", "123"),
        ("price", "0.01"),
        ("type", "2"),
        ("notify_url", "http://www.aaa.com/qpay_notify"),
        ("return_url", "http://www.aaa.com/qpay_return"),
        ("order_id", "201710192541"),
        ("order_name", "name"),
    ];
    assert_eq!(
        SignInput::Create { params: &params }.sign(&Secret::new("tok")),
        "291cbc046c36c98e7eff8af97a54d987"
    );
}

#[test]
fn create_is_a_signed_payer_form() {
    // key = md5("http://127.0.0.1:8765/notify/main201911181234243.50http://127.0.0.1:8765/notify/maintest-token120001")
    let form = form(
        provider()
            .build_create(&order("20191118123424", 350, Channel::Wechat, ""), &ctx())
            .unwrap(),
    );
    assert_eq!(form.action, "http://www.igepay.com/Home/Pay/payFor");
    let expected: Vec<(String, String)> = [
        ("uid", "20001"),
        ("price", "3.50"),
        ("type", "1"),
        ("notify_url", NOTIFY),
        ("return_url", NOTIFY),
        ("order_id", "20191118123424"),
        ("key", "aa2e4d58024967896dab01ba865035fa"),
    ]
    .iter()
    .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
    .collect();
    assert_eq!(form.fields, expected);
    // The same request as a link for a QR (checked with urllib.parse.urlencode).
    assert_eq!(
        form.to_get_url(),
        "http://www.igepay.com/Home/Pay/payFor?uid=20001&price=3.50&type=1\
         &notify_url=http%3A%2F%2F127.0.0.1%3A8765%2Fnotify%2Fmain\
         &return_url=http%3A%2F%2F127.0.0.1%3A8765%2Fnotify%2Fmain\
         &order_id=20191118123424&key=aa2e4d58024967896dab01ba865035fa"
    );
    let html = form.to_html();
    assert!(html.contains(r#"action="http://www.igepay.com/Home/Pay/payFor""#));
    assert!(
        html.contains(
            r#"<input type="hidden" name="key" value="aa2e4d58024967896dab01ba865035fa">"#
        )
    );
    assert!(
        !html.contains("test-token"),
        "the token never leaves the till"
    );
}

#[test]
fn create_with_subject_and_return_url_alipay() {
    // key = md5("http://127.0.0.1:8765/notify/mainA1奶茶12.30https://shop.example/backtest-token220001")
    let account = provider().with_urls(None, Some("https://shop.example/back".into()));
    let form = form(
        account
            .build_create(&order("A1", 1230, Channel::Alipay, "奶茶"), &ctx())
            .unwrap(),
    );
    let get = |name: &str| {
        form.fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    assert_eq!(get("type").as_deref(), Some("2"));
    assert_eq!(get("order_name").as_deref(), Some("奶茶"));
    assert_eq!(
        get("return_url").as_deref(),
        Some("https://shop.example/back")
    );
    assert_eq!(
        get("order_uid"),
        None,
        "optional fields not sent are not signed"
    );
    assert_eq!(
        get("key").as_deref(),
        Some("73a8db8b09dec10b3f93929845608e9d")
    );
}

#[test]
fn unsupported_channels_and_no_query() {
    let p = provider();
    for channel in [Channel::Unionpay, Channel::Qq] {
        assert!(matches!(
            p.build_create(&order("A1", 100, channel, ""), &ctx()),
            Err(ProviderError::NotSupported(_))
        ));
    }
    assert!(!p.can_query());
    assert!(p.payer_browser_needed());
    let order_ref = OrderRef {
        order_no: OrderNo::new("A1").unwrap(),
        provider_order_id: None,
    };
    assert!(matches!(
        p.build_query(&order_ref, &ctx()),
        Err(ProviderError::NotSupported(_))
    ));
}

fn notify(pairs: &[(&str, &str)]) -> CallbackRequest {
    let body = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs.iter())
        .finish();
    CallbackRequest {
        method: "POST".into(),
        query: Vec::new(),
        body: body.into_bytes(),
        content_type: Some("application/x-www-form-urlencoded".into()),
        headers: Vec::new(),
    }
}

// sign = md5("201911181234243.50test-token")
const SIGN: &str = "885e2df30ed5238dbd2d488cbf0c8441";

fn good(code: &str, sign: &str) -> Vec<(&'static str, String)> {
    vec![
        ("pay_num", "P1".into()),
        ("transaction_id", "4200000001".into()),
        ("order_id", "20191118123424".into()),
        ("price", "3.50".into()),
        ("code", code.into()),
        ("key", "aa2e4d58024967896dab01ba865035fa".into()),
        ("sign", sign.into()),
    ]
}

fn verify(
    pairs: &[(&'static str, String)],
) -> Result<qrtill::providers::CallbackReport, ProviderError> {
    let borrowed: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (*k, v.as_str())).collect();
    provider().verify_callback(&notify(&borrowed))
}

#[test]
fn notify_paid_with_signed_amount() {
    let report = verify(&good("0000", SIGN)).unwrap();
    assert_eq!(report.order_no.as_str(), "20191118123424");
    assert_eq!(report.state, ProviderState::Paid);
    assert_eq!(report.amount, Some(Fen(350)));
    assert!(
        report.amount_signed,
        "md5(order_id + price + token) covers the price"
    );
    assert_eq!(
        verify(&good("0000", &SIGN.to_uppercase())).unwrap().state,
        ProviderState::Paid
    );
}

#[test]
fn notify_other_codes_are_not_paid() {
    for code in ["0001", "9999", "", "success"] {
        let report = verify(&good(code, SIGN)).unwrap();
        assert_eq!(report.state, ProviderState::Unknown(code.into()));
    }
}

#[test]
fn forged_or_altered_notifies_are_refused() {
    assert_eq!(
        verify(&good("0000", "0".repeat(32).as_str())),
        Err(ProviderError::BadSignature)
    );
    // The amount is signed: changing it breaks the signature.
    let mut altered = good("0000", SIGN);
    altered[3].1 = "350.00".into();
    assert_eq!(verify(&altered), Err(ProviderError::BadSignature));
    let mut other_order = good("0000", SIGN);
    other_order[2].1 = "20191118123425".into();
    assert_eq!(verify(&other_order), Err(ProviderError::BadSignature));
    let without_sign: Vec<(&'static str, String)> = good("0000", SIGN)
        .into_iter()
        .filter(|(k, _)| *k != "sign")
        .collect();
    assert!(matches!(
        verify(&without_sign),
        Err(ProviderError::Decode { .. })
    ));
    let ack = provider().callback_ack(true);
    assert_eq!((ack.status, ack.body.as_str()), (200, "success"));
}

#[test]
fn config_names_the_key() {
    let good = "[[provider]]\nid = \"ige\"\nkind = \"igepay\"\nuid = 20001\ntoken = \"t\"\n";
    let config = qrtill::config::Config::parse(good).unwrap();
    assert_eq!(config.providers[0].kind(), "igepay");
    assert!(!format!("{:?}", config.providers[0]).contains("\"t\""));
    let missing = "[[provider]]\nid = \"ige\"\nkind = \"igepay\"\nuid = \"20001\"\n";
    assert!(
        qrtill::config::Config::parse(missing)
            .unwrap_err()
            .contains("`token`")
    );
    let unknown = "[[provider]]\nid = \"ige\"\nkind = \"igepay\"\nuid = \"20001\"\ntoken = \"t\"\nkey = \"x\"\n";
    assert!(
        qrtill::config::Config::parse(unknown)
            .unwrap_err()
            .contains("unknown key `key`")
    );
}
