//! Property tests of every parser that reads hostile input: the amount parsers (what a cashier
//! types, what a provider sends) and each provider's create, query, account and close answer
//! readers and callback verifier.
//!
//! Properties: nothing panics on any bytes, text or JSON-like value; every amount in range
//! survives `to_yuan` → parse; `parse_input` refuses what a cashier may not type; a callback
//! built from arbitrary fields and an arbitrary signature is never accepted; a correctly
//! signed callback is accepted, and changing one character of a signed field or of the
//! signature makes it refused.
//!
//! The signatures here are computed with each protocol's public signing code, which the
//! `*_protocol.rs` tests pin to hand-computed MD5 vectors.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // Tests fail loudly.

use proptest::prelude::*;
use qrtill::model::{AmountError, DEFAULT_MAX_AMOUNT, Fen, OrderNo, ProviderState};
use qrtill::providers::{
    CallbackRequest, HttpResponse, Provider, ProviderError, epay, gatepay, igepay, ispay, jings,
    vmq, yinqiantong,
};
use qrtill::secret::Secret;
use serde_json::{Map, Value};

const MAX: Fen = DEFAULT_MAX_AMOUNT;

// ---------------------------------------------------------------------------------------------
// Amounts

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    #[test]
    fn every_amount_in_range_reads_back(fen in 1..=MAX.0) {
        let text = Fen(fen).to_yuan();
        prop_assert_eq!(Fen::parse_input(&text, MAX), Ok(Fen(fen)));
        prop_assert_eq!(Fen::parse_wire(&text), Ok(Fen(fen)));
        // The short forms a cashier types: `12`, `12.3`.
        let short = text.trim_end_matches('0').trim_end_matches('.');
        prop_assert_eq!(Fen::parse_input(short, MAX), Ok(Fen(fen)));
        prop_assert_eq!(Fen::parse_wire(short), Ok(Fen(fen)));
        // JSON carries the same text.
        let json = serde_json::to_string(&Fen(fen)).unwrap();
        prop_assert_eq!(serde_json::from_str::<Fen>(&json).unwrap(), Fen(fen));
    }

    #[test]
    fn every_wire_amount_reads_back(fen in 0..=99_999_999_999_999i64, zeros in 0..4usize) {
        // Trailing zeros beyond the fen are allowed on the wire (`12.300`).
        let text = format!("{}{}", Fen(fen).to_yuan(), "0".repeat(zeros));
        prop_assert_eq!(Fen::parse_wire(&text), Ok(Fen(fen)));
    }

    #[test]
    fn typed_amounts_are_plain_decimals(text in "\\PC{0,16}") {
        // Whatever is accepted is digits with at most one point, in range, and reads back.
        if let Ok(fen) = Fen::parse_input(&text, MAX) {
            prop_assert!(text.bytes().all(|b| b.is_ascii_digit() || b == b'.'));
            prop_assert!(text.matches('.').count() <= 1);
            prop_assert!(fen > Fen(0) && fen <= MAX);
            prop_assert_eq!(Fen::parse_input(&fen.to_yuan(), MAX), Ok(fen));
        }
        if let Ok(fen) = Fen::parse_wire(&text) {
            prop_assert!(fen >= Fen(0));
            prop_assert_eq!(Fen::parse_wire(&fen.to_yuan()), Ok(fen));
        }
    }

    #[test]
    fn amount_shaped_text_never_panics(text in "[0-9. +\\-eE,_]{0,24}") {
        let _ = Fen::parse_input(&text, MAX);
        let _ = Fen::parse_wire(&text);
    }

    #[test]
    fn signs_spaces_exponents_and_separators_are_refused(
        int in "[0-9]{1,4}",
        bad in prop::sample::select(vec![" ", "+", "-", "e", "E", ",", "_", "\t", "１", "¥"]),
        frac in "[0-9]{0,2}",
        at_front in any::<bool>(),
    ) {
        let text = if at_front { format!("{bad}{int}{frac}") } else { format!("{int}{bad}{frac}") };
        prop_assert_eq!(Fen::parse_input(&text, MAX), Err(AmountError::Format));
    }

    #[test]
    fn a_third_decimal_is_refused(int in 0..100_000u32, frac in 0..1000u32) {
        let text = format!("{int}.{frac:03}");
        prop_assert_eq!(Fen::parse_input(&text, MAX), Err(AmountError::TooManyDecimals));
    }

    #[test]
    fn a_bare_point_is_refused(int in "[0-9]{1,6}") {
        prop_assert_eq!(Fen::parse_input(&format!(".{int}"), MAX), Err(AmountError::Format));
        prop_assert_eq!(Fen::parse_input(&format!("{int}."), MAX), Err(AmountError::Format));
        prop_assert_eq!(Fen::parse_input(&format!("{int}.{int}.0"), MAX), Err(AmountError::Format));
    }

    #[test]
    fn above_the_maximum_is_refused(fen in (MAX.0 + 1)..=99_999_999_999_999i64) {
        let refused = Fen::parse_input(&Fen(fen).to_yuan(), MAX);
        prop_assert!(matches!(refused, Err(AmountError::TooLarge { .. })), "{:?}", refused);
    }

    #[test]
    fn zero_is_refused(int_zeros in 1..6usize, frac_zeros in 0..3usize) {
        let text = if frac_zeros == 0 {
            "0".repeat(int_zeros)
        } else {
            format!("{}.{}", "0".repeat(int_zeros), "0".repeat(frac_zeros))
        };
        prop_assert_eq!(Fen::parse_input(&text, MAX), Err(AmountError::Zero));
    }

    #[test]
    fn too_many_digits_are_refused_not_overflowed(digits in "[1-9][0-9]{12,30}") {
        prop_assert!(Fen::parse_input(&digits, MAX).is_err());
        prop_assert!(Fen::parse_wire(&digits).is_err());
    }
}

// ---------------------------------------------------------------------------------------------
// Provider accounts

const KEY: &str = "prop-test-merchant-key";
const APPKEY: &str = "prop-test-appkey";
const GATEPAY_APPKEY: &str = "098f6bcd4621d373cade4e832627b4f6";
const UID: &str = "10001";
const APPID: &str = "app-7";

fn ispay() -> ispay::Ispay {
    ispay::Ispay::new("p", "https://ispay.test", UID, Secret::new(KEY))
}
fn igepay() -> igepay::Igepay {
    igepay::Igepay::new("p", "https://igepay.test", UID, Secret::new(KEY))
}
fn gatepay(variant: gatepay::Variant) -> gatepay::Gatepay {
    gatepay::Gatepay::new(
        "p",
        "https://gatepay.test",
        variant,
        GATEPAY_APPKEY,
        Secret::new(KEY),
    )
    .with_custom("till")
}
fn yinqiantong() -> yinqiantong::Yinqiantong {
    yinqiantong::Yinqiantong::new(
        "p",
        "https://yqt.test",
        APPID,
        Secret::new(APPKEY),
        Secret::new(KEY),
    )
}
fn jings() -> jings::Jings {
    jings::Jings::new("p", "https://jings.test", UID, Secret::new(KEY))
}
fn epay() -> epay::Epay {
    epay::Epay::new("p", "https://epay.test", UID, Secret::new(KEY))
}
fn vmq() -> vmq::Vmq {
    vmq::Vmq::new("p", "https://vmq.test", Secret::new(KEY))
}

/// One account of every protocol (gatepay in both of its create APIs).
fn accounts() -> Vec<Box<dyn Provider>> {
    vec![
        Box::new(ispay()),
        Box::new(igepay()),
        Box::new(gatepay(gatepay::Variant::AnyPay)),
        Box::new(gatepay(gatepay::Variant::Cloud)),
        Box::new(yinqiantong()),
        Box::new(jings()),
        Box::new(epay()),
        Box::new(vmq()),
    ]
}

/// Every answer reader of `provider` on `response`: none may panic, and none may show the
/// key in what it returns.
fn read_answers(provider: &dyn Provider, response: &HttpResponse) {
    let shown = format!(
        "{:?}{:?}{:?}{:?}",
        provider.parse_create(response),
        provider.parse_query(response),
        provider.parse_account_check(response),
        provider.parse_close(response)
    );
    assert!(!shown.contains(KEY), "{}: key in {shown}", provider.kind());
}

// ---------------------------------------------------------------------------------------------
// Answers: arbitrary bytes and JSON-like values

/// Field names the protocols use, so generated objects reach past "field missing".
const NAMES: &[&str] = &[
    "code",
    "msg",
    "message",
    "status",
    "state",
    "success",
    "errorCode",
    "errorMsg",
    "data",
    "order",
    "order_id",
    "order_no",
    "out_order_id",
    "out_trade_no",
    "trade_no",
    "orderid",
    "payid",
    "payId",
    "price",
    "realprice",
    "reallyPrice",
    "money",
    "amount",
    "paymoney",
    "realpay",
    "qrcode",
    "qr_code",
    "qrcode_url",
    "payurl",
    "payUrl",
    "pay_body",
    "pay_url",
    "img",
    "timeout",
    "expire",
    "balance",
    "trade_status",
    "type",
    "sign",
    "key",
    "isAuto",
];

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        (-3..12_000_000i64).prop_map(Value::from),
        "\\PC{0,24}".prop_map(Value::String),
        "[0-9]{1,8}(\\.[0-9]{1,3})?".prop_map(Value::String),
        "(data:image/png;base64,|https://|weixin://|0|1|9|200|TRADE_SUCCESS|paid)\\PC{0,12}"
            .prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec(
                (
                    prop_oneof![
                        4 => prop::sample::select(NAMES).prop_map(str::to_string),
                        1 => "\\PC{0,8}",
                    ],
                    inner
                ),
                0..8
            )
            .prop_map(|pairs| Value::Object(pairs.into_iter().collect())),
        ]
    })
}

fn status() -> impl Strategy<Value = u16> {
    prop_oneof![4 => Just(200u16), 1 => 100..600u16]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn answers_of_any_bytes_never_panic(
        status in status(),
        body in prop::collection::vec(any::<u8>(), 0..300),
    ) {
        let response = HttpResponse { status, body };
        for account in accounts() {
            read_answers(account.as_ref(), &response);
        }
    }

    #[test]
    fn answers_of_any_json_never_panic(status in status(), value in json_value()) {
        let response = HttpResponse { status, body: value.to_string().into_bytes() };
        for account in accounts() {
            read_answers(account.as_ref(), &response);
        }
    }

    #[test]
    fn answers_of_json_around_success_never_panic(
        code in prop_oneof![Just(Value::from(0)), Just(Value::from(1)), Just(Value::from(200)),
            Just(Value::from("0")), Just(Value::from("1")), Just(Value::Bool(true))],
        data in json_value(),
        extra in json_value(),
    ) {
        // Success envelopes with arbitrary payloads reach past the envelope checks.
        for name in ["code", "status", "success", "state"] {
            let mut object = Map::new();
            object.insert(name.to_string(), code.clone());
            object.insert("data".into(), data.clone());
            object.insert("msg".into(), extra.clone());
            let response = HttpResponse {
                status: 200,
                body: Value::Object(object).to_string().into_bytes(),
            };
            for account in accounts() {
                read_answers(account.as_ref(), &response);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Callbacks: arbitrary fields are never believed

/// How a generated callback travels.
#[derive(Clone, Copy, Debug)]
enum Carrier {
    Query,
    Form,
    Json,
}

fn request_of(fields: &[(String, String)], carrier: Carrier) -> CallbackRequest {
    let encoded = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(fields.iter())
        .finish();
    let headers: Vec<(String, String)> = fields
        .iter()
        .map(|(name, value)| (name.to_ascii_lowercase(), value.clone()))
        .collect();
    match carrier {
        Carrier::Query => CallbackRequest {
            method: "GET".into(),
            query: fields.to_vec(),
            headers,
            ..CallbackRequest::default()
        },
        Carrier::Form => CallbackRequest {
            method: "POST".into(),
            body: encoded.into_bytes(),
            content_type: Some("application/x-www-form-urlencoded".into()),
            headers,
            ..CallbackRequest::default()
        },
        Carrier::Json => {
            let object: Map<String, Value> = fields
                .iter()
                .map(|(name, value)| (name.clone(), Value::String(value.clone())))
                .collect();
            CallbackRequest {
                method: "POST".into(),
                body: Value::Object(object).to_string().into_bytes(),
                content_type: Some("application/json".into()),
                headers,
                ..CallbackRequest::default()
            }
        }
    }
}

fn field_value() -> impl Strategy<Value = String> {
    prop_oneof![
        "\\PC{0,20}",
        "[0-9]{1,6}\\.[0-9]{2}",
        "[A-Z0-9]{6,32}",
        "[0-9a-f]{32}",
        Just("TRADE_SUCCESS".to_string()),
        Just("0000".to_string()),
        Just("9".to_string()),
        Just("paid".to_string()),
        Just(UID.to_string()),
        Just(APPID.to_string()),
        Just(GATEPAY_APPKEY.to_string()),
    ]
}

fn field_map() -> impl Strategy<Value = Vec<(String, String)>> {
    prop::collection::vec(
        (
            prop_oneof![
                6 => prop::sample::select(NAMES).prop_map(str::to_string),
                2 => prop::sample::select(vec![
                    "order_no", "order_id", "out_order_id", "price", "realprice", "type",
                    "paytime", "extend", "payid", "orderid", "orderuid", "paymoney", "realpay",
                    "pid", "trade_no", "out_trade_no", "name", "money", "trade_status",
                    "sign_type", "payId", "param", "reallyPrice", "ts", "appid",
                    "client_out_trade_no",
                ])
                .prop_map(str::to_string),
                1 => "[a-zA-Z_]{1,10}",
            ],
            field_value(),
        ),
        0..14,
    )
}

fn carrier() -> impl Strategy<Value = Carrier> {
    prop_oneof![
        Just(Carrier::Query),
        Just(Carrier::Form),
        Just(Carrier::Json)
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(600))]

    #[test]
    fn arbitrary_callbacks_are_never_accepted(
        mut fields in field_map(),
        sign in prop_oneof!["[0-9a-f]{32}", "[0-9A-F]{32}", "\\PC{0,40}"],
        sign_name in prop::sample::select(vec!["sign", "key"]),
        carrier in carrier(),
    ) {
        fields.push((sign_name.to_string(), sign));
        let request = request_of(&fields, carrier);
        for account in accounts() {
            let verdict = account.verify_callback(&request);
            prop_assert!(verdict.is_err(), "{} accepted {:?}: {:?}", account.kind(), request, verdict);
            let shown = format!("{verdict:?}");
            prop_assert!(!shown.contains(KEY), "the key shown: {}", shown);
        }
    }

    #[test]
    fn callbacks_of_any_bytes_never_panic(
        body in prop::collection::vec(any::<u8>(), 0..300),
        query in "\\PC{0,80}",
        content_type in prop::option::of(prop::sample::select(vec![
            "application/x-www-form-urlencoded", "application/json", "text/plain", "",
        ])),
        get in any::<bool>(),
    ) {
        let request = CallbackRequest {
            method: if get { "GET" } else { "POST" }.into(),
            query: url::form_urlencoded::parse(query.as_bytes()).into_owned().collect(),
            body,
            content_type: content_type.map(str::to_string),
            headers: vec![("sign".into(), "0".repeat(32)), ("ts".into(), "1".into())],
        };
        for account in accounts() {
            prop_assert!(account.verify_callback(&request).is_err(), "{}", account.kind());
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Callbacks: a signed one is believed, a changed one is not

/// A genuine callback of one protocol: its fields, which of them the signature covers (the
/// signature's own field included) and how it travels.
struct Signed {
    provider: Box<dyn Provider>,
    fields: Vec<(String, String)>,
    covered: Vec<&'static str>,
    carrier: Carrier,
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(name, value)| ((*name).to_string(), (*value).to_string()))
        .collect()
}

/// Each protocol's paid notify for `order_no` and `fen`, signed as its document says.
fn signed_notifies(order_no: &str, fen: Fen, provider_id: &str, extra: &str) -> Vec<Signed> {
    let key = Secret::new(KEY);
    let yuan = fen.to_yuan();
    let mut out = Vec::new();

    let sign = ispay::transformers::SignInput::OrderNo {
        userid: UID,
        order_no,
    }
    .sign(&key);
    out.push(Signed {
        provider: Box::new(ispay()),
        fields: pairs(&[
            ("order_no", order_no),
            ("amount", &yuan),
            ("state", "9"),
            ("sign", &sign),
        ]),
        covered: vec!["order_no", "sign"],
        carrier: Carrier::Query,
    });

    let sign = igepay::transformers::SignInput::Notify {
        order_id: order_no,
        price: &yuan,
    }
    .sign(&key);
    out.push(Signed {
        provider: Box::new(igepay()),
        fields: pairs(&[
            ("order_id", order_no),
            ("price", &yuan),
            ("code", "0000"),
            ("sign", &sign),
        ]),
        covered: vec!["order_id", "price", "sign"],
        carrier: Carrier::Form,
    });

    for variant in [gatepay::Variant::AnyPay, gatepay::Variant::Cloud] {
        let paytime = "1700000000";
        let sign = gatepay::transformers::SignInput::Notify {
            appkey: GATEPAY_APPKEY,
            order_id: provider_id,
            out_order_id: order_no,
            price: &yuan,
            realprice: &yuan,
            pay_type: "alipay",
            paytime,
            extend: extra,
        }
        .sign(&key);
        out.push(Signed {
            provider: Box::new(gatepay(variant)),
            fields: pairs(&[
                ("order_id", provider_id),
                ("out_order_id", order_no),
                ("price", &yuan),
                ("realprice", &yuan),
                ("type", "alipay"),
                ("paytime", paytime),
                ("extend", extra),
                ("sign", &sign),
            ]),
            covered: vec![
                "order_id",
                "out_order_id",
                "price",
                "realprice",
                "type",
                "paytime",
                "extend",
                "sign",
            ],
            carrier: Carrier::Form,
        });
    }

    let sign = jings::transformers::SignInput::Notify {
        payid: provider_id,
        orderid: order_no,
        orderuid: extra,
        paymoney: &yuan,
        realpay: &yuan,
    }
    .sign(&key);
    out.push(Signed {
        provider: Box::new(jings()),
        fields: pairs(&[
            ("payid", provider_id),
            ("orderid", order_no),
            ("orderuid", extra),
            ("paymoney", &yuan),
            ("realpay", &yuan),
            ("key", &sign),
        ]),
        covered: vec!["payid", "orderid", "orderuid", "paymoney", "realpay", "key"],
        carrier: Carrier::Form,
    });

    let mut fields = pairs(&[
        ("pid", UID),
        ("trade_no", provider_id),
        ("out_trade_no", order_no),
        ("type", "alipay"),
        ("name", extra),
        ("money", &yuan),
        ("trade_status", epay::transformers::TRADE_SUCCESS),
    ]);
    let sign = epay::transformers::SignInput::Received { params: &fields }.sign(&key);
    fields.push(("sign".into(), sign));
    fields.push(("sign_type".into(), "MD5".into()));
    out.push(Signed {
        provider: Box::new(epay()),
        fields,
        covered: vec![
            "pid",
            "trade_no",
            "out_trade_no",
            "type",
            "name",
            "money",
            "trade_status",
            "sign",
        ],
        carrier: Carrier::Query,
    });

    let sign = vmq::transformers::SignInput::Notify {
        pay_id: order_no,
        param: extra,
        pay_type: "2",
        price: &yuan,
        really_price: &yuan,
    }
    .sign(&key);
    out.push(Signed {
        provider: Box::new(vmq()),
        fields: pairs(&[
            ("payId", order_no),
            ("param", extra),
            ("type", "2"),
            ("price", &yuan),
            ("reallyPrice", &yuan),
            ("sign", &sign),
        ]),
        covered: vec!["payId", "param", "type", "price", "reallyPrice", "sign"],
        carrier: Carrier::Query,
    });

    // yinqiantong signs its JSON body's fields and a `ts` header, and sends the signature
    // in a header: the fields here are the body's, plus `ts` and `sign`.
    let body_fields = pairs(&[
        ("client_out_trade_no", order_no),
        ("trade_no", provider_id),
        ("status", "paid"),
        ("money", &fen.0.to_string()),
        ("subject", extra),
    ]);
    let ts = "1700000000123";
    let sign = yinqiantong::transformers::SignInput::Body {
        body: &yinqiantong_body(&body_fields),
        ts,
    }
    .sign(&key);
    let mut fields = body_fields;
    fields.push(("ts".into(), ts.into()));
    fields.push(("sign".into(), sign));
    out.push(Signed {
        provider: Box::new(yinqiantong()),
        fields,
        covered: vec![
            "client_out_trade_no",
            "trade_no",
            "status",
            "money",
            "subject",
            "ts",
            "sign",
        ],
        carrier: Carrier::Json,
    });
    out
}

/// yinqiantong's JSON body: every field but the two header fields, `money` as a number.
fn yinqiantong_body(fields: &[(String, String)]) -> Map<String, Value> {
    fields
        .iter()
        .filter(|(name, _)| name != "ts" && name != "sign")
        .map(|(name, value)| {
            let value = match value.parse::<i64>() {
                Ok(number) if name == "money" => Value::from(number),
                _ => Value::String(value.clone()),
            };
            (name.clone(), value)
        })
        .collect()
}

impl Signed {
    fn request(&self) -> CallbackRequest {
        match self.carrier {
            Carrier::Json => {
                let header = |name: &str| {
                    self.fields
                        .iter()
                        .find(|(key, _)| key == name)
                        .map(|(_, value)| value.clone())
                        .unwrap_or_default()
                };
                CallbackRequest {
                    method: "POST".into(),
                    body: Value::Object(yinqiantong_body(&self.fields))
                        .to_string()
                        .into_bytes(),
                    content_type: Some("application/json".into()),
                    headers: vec![
                        ("sign".into(), header("sign")),
                        ("ts".into(), header("ts")),
                        ("appid".into(), APPID.into()),
                    ],
                    ..CallbackRequest::default()
                }
            }
            carrier => request_of(&self.fields, carrier),
        }
    }
}

/// `text` with the character at `at` (modulo its length) replaced by a different one.
fn change_one_char(text: &str, at: usize, replacement: char) -> String {
    let chars: Vec<char> = text.chars().collect();
    if chars.is_empty() {
        return replacement.to_string();
    }
    let at = at % chars.len();
    let mut changed = chars.clone();
    // A change of letter case only is no change for a hex signature (compared without case),
    // so the replacement always differs beyond case.
    changed[at] = if chars[at].eq_ignore_ascii_case(&replacement) {
        if chars[at].eq_ignore_ascii_case(&'x') {
            'y'
        } else {
            'x'
        }
    } else {
        replacement
    };
    changed.into_iter().collect()
}

fn order_no() -> impl Strategy<Value = String> {
    "[A-Z0-9]{1,4}[0-9]{8,24}"
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn signed_callbacks_are_accepted(
        order_no in order_no(),
        fen in 1..=MAX.0,
        provider_id in "[0-9A-Za-z]{4,20}",
        extra in "[0-9A-Za-z]{1,12}",
    ) {
        for signed in signed_notifies(&order_no, Fen(fen), &provider_id, &extra) {
            let kind = signed.provider.kind();
            let report = signed.provider.verify_callback(&signed.request());
            let report = report.unwrap_or_else(|err| panic!("{kind} refused its own notify: {err}"));
            prop_assert_eq!(&report.order_no, &OrderNo::new(&order_no).unwrap(), "{}", kind);
            prop_assert_eq!(&report.state, &ProviderState::Paid, "{}", kind);
            prop_assert_eq!(report.amount, Some(Fen(fen)), "{}", kind);
        }
    }

    #[test]
    fn one_changed_character_is_refused(
        order_no in order_no(),
        fen in 1..=MAX.0,
        provider_id in "[0-9A-Za-z]{4,20}",
        extra in "[0-9A-Za-z]{1,12}",
        which in any::<prop::sample::Index>(),
        at in any::<usize>(),
        replacement in prop::char::range('0', 'z'),
    ) {
        for mut signed in signed_notifies(&order_no, Fen(fen), &provider_id, &extra) {
            let kind = signed.provider.kind();
            let name = *which.get(&signed.covered);
            let field = signed.fields.iter_mut().find(|(key, _)| key == name).unwrap();
            field.1 = change_one_char(&field.1, at, replacement);
            let changed = field.clone();
            let verdict = signed.provider.verify_callback(&signed.request());
            prop_assert!(
                verdict.is_err(),
                "{} accepted a notify whose `{}` became `{}`: {:?}", kind, changed.0, changed.1, verdict
            );
        }
    }

    #[test]
    fn a_changed_signature_is_refused_as_forged(
        order_no in order_no(),
        fen in 1..=MAX.0,
        at in 0..32usize,
        replacement in prop::sample::select(b"0123456789abcdef".to_vec()),
    ) {
        for mut signed in signed_notifies(&order_no, Fen(fen), "T1000", "x") {
            let kind = signed.provider.kind();
            let sign_name = if kind == "jings" { "key" } else { "sign" };
            let field = signed.fields.iter_mut().find(|(key, _)| key == sign_name).unwrap();
            field.1 = change_one_char(&field.1, at, char::from(replacement));
            let verdict = signed.provider.verify_callback(&signed.request());
            prop_assert_eq!(verdict, Err(ProviderError::BadSignature), "{}", kind);
        }
    }
}
