//! The ispay.in v1 simulator (seed 000): `POST /gateway`, `GET /query/{id}`,
//! `GET /qrcode/{id}`, `GET /order/{userid}/{order_no}/{md5}` and the hosted page
//! `GET /transfer/{id}`, with the seed's error JSON.
//!
//! Error codes (the seed shows only 1004 "订单创建失败!"; the others are the sandbox's own):
//! 1001 missing field, 1002 wrong merchant id, 1003 unknown order_type, 1004 duplicate
//! order_no, 1005 bad amount, 1006 bad signature, 1007 body not a form.

use std::collections::HashMap;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, header};
use axum::response::{Html, IntoResponse, Json};
use axum::routing::{get, post};
use base64::Engine as _;
use serde_json::{Value, json};

use super::{NotifyRequest, Shared, SimOrder, SimState};
use crate::model::{Channel, Fen};
use crate::providers::ispay::Ispay;
use crate::providers::ispay::transformers::SignInput;
use crate::secret::{Secret, signatures_match};

/// The protocol's name.
pub const KIND: &str = "ispay";
/// The sandbox's merchant id.
pub const DEMO_USERID: &str = "10001";
/// The sandbox's merchant key (it protects nothing: demo only).
pub const DEMO_KEY: &str = "qrtill-sandbox-ispay-key";

/// The demo account for this sandbox.
pub fn demo_account(base_url: &str) -> Ispay {
    Ispay::new("demo-ispay", base_url, DEMO_USERID, Secret::new(DEMO_KEY))
}

/// The `[[provider]]` section for this sandbox.
pub fn demo_config(base_url: &str) -> String {
    format!(
        "[[provider]]\nid = \"demo-ispay\"\nkind = \"ispay\"\nbase_url = \"{base_url}\"\nuserid = \"{DEMO_USERID}\"\nkey = \"{DEMO_KEY}\"\n"
    )
}

pub(super) fn routes() -> Router<Shared> {
    Router::new()
        .route("/gateway", post(gateway))
        .route("/query/{id}", get(query))
        .route("/qrcode/{id}", get(qrcode))
        .route("/order/{userid}/{order_no}/{sign}", get(lookup))
        .route("/transfer/{id}", get(transfer))
}

/// The seed's state code for a simulated state.
pub fn code(state: &SimState) -> i64 {
    match state {
        SimState::Created => 1,
        SimState::Issued => 5,
        SimState::Confirming => 8,
        SimState::Paid => 9,
        SimState::Expired => 6,
        SimState::Cancelled => 3,
        SimState::Closed => 7,
        SimState::Code(code) => code.parse().unwrap_or(0),
    }
}

/// The notify for an order: `GET {notify_url}?order_no&amount&state&sign`; a forged one is
/// signed with another key.
pub(super) fn notify(order: &SimOrder, forged: bool) -> NotifyRequest {
    let key = if forged { "forged-key" } else { DEMO_KEY };
    let sign = SignInput::OrderNo {
        userid: DEMO_USERID,
        order_no: &order.order_no,
    }
    .sign(&Secret::new(key));
    let query = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("order_no", &order.order_no)
        .append_pair("amount", &order.paid().to_yuan())
        .append_pair("state", &code(&order.state).to_string())
        .append_pair("sign", &sign)
        .finish();
    let separator = if order.notify_url.contains('?') {
        '&'
    } else {
        '?'
    };
    NotifyRequest {
        post: false,
        url: format!("{}{separator}{query}", order.notify_url),
        content_type: "",
        body: String::new(),
        headers: Vec::new(),
    }
}

fn error(code: i64, message: &str) -> Json<Value> {
    Json(json!({"success": false, "errorCode": code, "errorMsg": message}))
}

fn not_found() -> Json<Value> {
    error(0, "订单不存在")
}

async fn gateway(State(state): State<Shared>, headers: HeaderMap, body: Bytes) -> Json<Value> {
    let form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/x-www-form-urlencoded"));
    if !form {
        return error(1007, "请求格式错误: 需要 application/x-www-form-urlencoded");
    }
    let fields: HashMap<String, String> = url::form_urlencoded::parse(&body).into_owned().collect();
    let field = |name: &str| {
        fields
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    };
    for required in [
        "userid",
        "order_no",
        "order_type",
        "amount",
        "notify_url",
        "return_url",
        "ip",
        "sign",
    ] {
        if field(required).is_none() {
            return error(1001, &format!("缺少必填参数: {required}"));
        }
    }
    let get = |name: &str| field(name).unwrap_or_default();
    if get("userid") != DEMO_USERID {
        return error(1002, "商户ID错误");
    }
    let channel = match get("order_type") {
        "P901" => Channel::Alipay,
        "P902" => Channel::Wechat,
        "P904" => Channel::Unionpay,
        _ => return error(1003, "订单类型错误: P901 支付宝, P902 微信, P904 云闪付"),
    };
    let amount = get("amount");
    let two_decimals = amount
        .split_once('.')
        .is_some_and(|(int, frac)| frac.len() == 2 && !int.is_empty());
    match Fen::parse_wire(amount) {
        Ok(fen) if two_decimals && fen.0 > 0 && fen.to_yuan() == amount => {}
        _ => return error(1005, "金额格式错误: 必须保留 2 位小数, 例如 300.00"),
    }
    let expected = SignInput::Create {
        userid: get("userid"),
        order_no: get("order_no"),
        order_type: get("order_type"),
        amount,
        return_url: get("return_url"),
    }
    .sign(&Secret::new(DEMO_KEY));
    if !signatures_match(get("sign"), &expected) {
        return error(1006, "签名错误");
    }
    let id = state.new_id();
    let mut order = SimOrder::new(KIND, id.clone(), get("order_no"), amount, channel);
    order.qr_text = format!(
        "qrtill-demo://ispay/{id}?amount={amount}&type={}",
        get("order_type")
    );
    order.notify_url = get("notify_url").to_string();
    order.fields = fields.clone();
    if !state.insert(order) {
        return error(1004, "订单创建失败! 订单号重复");
    }
    Json(json!({"success": true, "errorCode": 0, "errorMsg": null, "order_id": id}))
}

fn find(state: &Shared, pred: impl Fn(&SimOrder) -> bool) -> Option<SimOrder> {
    state.find(KIND, pred)
}

fn issued(order: &SimOrder) -> bool {
    matches!(code(&order.state), 2 | 5 | 8 | 9)
}

/// The `order` object of `/query` and `/qrcode`.
fn order_json(state: &Shared, order: &SimOrder, with_state: bool) -> Value {
    let issued = issued(order);
    let imgtext = if issued {
        crate::qr::to_png(&order.qr_text, 4)
            .map(|png| {
                format!(
                    "data:image/png;base64,{}",
                    base64::engine::general_purpose::STANDARD.encode(png)
                )
            })
            .unwrap_or_default()
    } else {
        String::new()
    };
    let mut value = json!({
        "qrcode": if issued { order.qr_text.as_str() } else { "" },
        "imgtext": imgtext,
        "alipayuid": "",
        "amount": amount_number(&order.amount),
        "sn": order.id,
        "timeout": state.options().order_timeout.as_secs(),
    });
    if with_state && let Some(map) = value.as_object_mut() {
        map.insert("state".into(), json!(code(&order.state)));
    }
    value
}

/// The amount as a JSON number, as the seed's examples print it (`500`, `2000.00`).
fn amount_number(amount: &str) -> Value {
    serde_json::from_str::<serde_json::Number>(amount).map_or(Value::Null, Value::Number)
}

async fn query(State(state): State<Shared>, Path(id): Path<String>) -> Json<Value> {
    match find(&state, |o| o.id == id) {
        Some(order) => Json(json!({
            "success": true, "errorCode": 0, "errorMsg": null,
            "state": code(&order.state),
            "order": order_json(&state, &order, false),
        })),
        None => not_found(),
    }
}

async fn qrcode(State(state): State<Shared>, Path(id): Path<String>) -> Json<Value> {
    match find(&state, |o| o.id == id) {
        Some(order) => Json(json!({
            "success": true, "errorCode": 0, "errorMsg": null,
            "order": order_json(&state, &order, true),
        })),
        None => not_found(),
    }
}

async fn lookup(
    State(state): State<Shared>,
    Path((userid, order_no, sign)): Path<(String, String, String)>,
) -> Json<Value> {
    if userid != DEMO_USERID {
        return error(1002, "商户ID错误");
    }
    let expected = SignInput::OrderNo {
        userid: &userid,
        order_no: &order_no,
    }
    .sign(&Secret::new(DEMO_KEY));
    if !signatures_match(&sign, &expected) {
        return error(1006, "签名错误");
    }
    match find(&state, |o| o.order_no == order_no) {
        Some(order) => {
            let field = |name: &str| order.field(name);
            Json(json!({
                "success": true, "errorCode": 0, "errorMsg": null,
                "order": {
                    "sn": order.order_no,
                    "state": code(&order.state),
                    "qrcode": if issued(&order) { order.qr_text.as_str() } else { "" },
                    "imgtext": "",
                    "returnURL": field("return_url"),
                    "returning": order.state == SimState::Paid,
                    "amount": amount_number(&order.amount),
                    "ip": field("ip"),
                    "paytype": field("order_type"),
                    "create_time": order.created_at.format("%Y-%m-%d %H:%M:%S").to_string(),
                }
            }))
        }
        None => not_found(),
    }
}

/// The provider's hosted pay page, as a shop without a till would show it in a browser.
async fn transfer(State(state): State<Shared>, Path(id): Path<String>) -> impl IntoResponse {
    let Some(order) = find(&state, |o| o.id == id) else {
        return Html(
            "<!doctype html><meta charset=utf-8><title>ispay</title><p>订单不存在</p>".to_string(),
        );
    };
    let img = crate::qr::to_png(&order.qr_text, 6)
        .map(|png| base64::engine::general_purpose::STANDARD.encode(png))
        .unwrap_or_default();
    Html(format!(
        "<!doctype html><html><head><meta charset=utf-8><title>扫码支付 ¥{amount}</title></head>\
         <body style=\"font-family:sans-serif;text-align:center\"><h1>¥{amount}</h1>\
         <img alt=QR src=\"data:image/png;base64,{img}\" width=300><p>订单 {sn} · 状态 {state}</p></body></html>",
        amount = order.amount,
        sn = order.id,
        state = code(&order.state),
    ))
}
