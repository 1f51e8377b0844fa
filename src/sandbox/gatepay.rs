//! The gatepay.io simulator (seed 002): `POST /api/anypay/create`, `POST /api/cloudpay/create`,
//! `GET /api/order/check`, gatepay's hosted pay page `GET /pay/api?id&type` (what the till's
//! QR opens), its QR-image service `GET /qrcode/build?size&text`, and the POST form notify.
//!
//! It answers with the seed's own codes and words. Where the seed does not say which code a
//! fault gets, the sandbox chooses:
//! - a body that is not a form, or a missing `price`/`type`/`out_order_id`: 105 参数缺失;
//! - a parameter outside the endpoint's documented table (e.g. `notify_url` on the cloud
//!   API): 106 存在禁止传递的参数;
//! - anypay without `notify_url`: 109 通知接口url未填写 (the sandbox's backend has no notify URL
//!   configured, so the per-order one is required; cloud orders get no notify at all);
//! - a price that is not two-decimal yuan above zero: 201; an unknown `type`: 202; `wechat` on
//!   the cloud API: 203 当前支付方式已关闭;
//! - a repeated `out_order_id`: 199 未知错误 (no code is documented for it).
//!
//! `order_status` values (only `expired` is documented; the rest are the sandbox's, matching
//! the till's INFERRED table): `unpaid` while open or confirming, `paid`, `expired`, and
//! `closed` for cancelled or closed orders (a word the till does not know, so it leaves the
//! order as it is). No rate limit is documented, so none is enforced; queries are counted.

use std::collections::HashMap;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Json, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use serde_json::{Value, json};

use super::{NotifyRequest, Shared, SimOrder, SimState};
use crate::model::{Channel, Fen};
use crate::providers::gatepay::transformers::SignInput;
use crate::providers::gatepay::{Gatepay, Variant};
use crate::secret::{Secret, signatures_match};

/// The protocol's name.
pub const KIND: &str = "gatepay";
/// The sandbox's appkey (the seed's example appkey).
pub const DEMO_APPKEY: &str = "098f6bcd4621d373cade4e832627b4f6";
/// The sandbox's appsecret (it protects nothing: demo only).
pub const DEMO_APPSECRET: &str = "qrtill-sandbox-gatepay-secret";
/// The demo account's `custom`, echoed back as the notify's `extend`.
pub const DEMO_CUSTOM: &str = "demo";

/// The demo account for this sandbox (the any-amount API).
pub fn demo_account(base_url: &str) -> Gatepay {
    Gatepay::new(
        "demo-gatepay",
        base_url,
        Variant::AnyPay,
        DEMO_APPKEY,
        Secret::new(DEMO_APPSECRET),
    )
    .with_custom(DEMO_CUSTOM)
}

/// The `[[provider]]` section for this sandbox.
pub fn demo_config(base_url: &str) -> String {
    format!(
        "[[provider]]\nid = \"demo-gatepay\"\nkind = \"gatepay\"\nbase_url = \"{base_url}\"\nappkey = \"{DEMO_APPKEY}\"\nappsecret = \"{DEMO_APPSECRET}\"\ncustom = \"{DEMO_CUSTOM}\"\n"
    )
}

pub(super) fn routes() -> Router<Shared> {
    Router::new()
        .route("/api/anypay/create", post(anypay_create))
        .route("/api/cloudpay/create", post(cloudpay_create))
        .route("/api/order/check", get(check))
        .route("/pay/api", get(pay_page))
        .route("/qrcode/build", get(qrcode_build))
}

/// The `order_status` for a simulated state.
pub fn order_status(state: &SimState) -> String {
    match state {
        SimState::Created | SimState::Issued | SimState::Confirming => "unpaid".into(),
        SimState::Paid => "paid".into(),
        SimState::Expired => "expired".into(),
        SimState::Cancelled | SimState::Closed => "closed".into(),
        SimState::Code(code) => code.clone(),
    }
}

/// The notify for an order: a POST form to the order's `notify_url` with `order_id`,
/// `out_order_id`, `price`, `realprice`, `type`, `paytime`, `extend` and `sign`. It is sent
/// when the order is paid, and on request for any order: that is what gatepay does when the
/// merchant presses 我已收款 in its backend. A forged one is signed with another secret.
pub(super) fn notify(order: &SimOrder, forged: bool) -> NotifyRequest {
    let secret = if forged {
        "forged-secret"
    } else {
        DEMO_APPSECRET
    };
    let realprice = order.paid().to_yuan();
    let paytime = chrono::Utc::now().timestamp().to_string();
    let extend = order.field("custom");
    let pay_type = order.field("type");
    let sign = SignInput::Notify {
        appkey: DEMO_APPKEY,
        order_id: &order.id,
        out_order_id: &order.order_no,
        price: &order.amount,
        realprice: &realprice,
        pay_type: &pay_type,
        paytime: &paytime,
        extend: &extend,
    }
    .sign(&Secret::new(secret));
    let body = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("order_id", &order.id)
        .append_pair("out_order_id", &order.order_no)
        .append_pair("price", &order.amount)
        .append_pair("realprice", &realprice)
        .append_pair("type", &pay_type)
        .append_pair("paytime", &paytime)
        .append_pair("extend", &extend)
        .append_pair("sign", &sign)
        .finish();
    NotifyRequest {
        post: true,
        url: order.notify_url.clone(),
        content_type: "application/x-www-form-urlencoded",
        headers: Vec::new(),
        body,
    }
}

fn error(code: i64, message: &str) -> Json<Value> {
    Json(json!({"code": code, "msg": message, "time": now_text()}))
}

fn now_text() -> String {
    chrono::Utc::now().timestamp().to_string()
}

/// The fields of a form body, or `None` when the body is not a form.
fn form_fields(headers: &HeaderMap, body: &[u8]) -> Option<HashMap<String, String>> {
    let form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/x-www-form-urlencoded"));
    form.then(|| url::form_urlencoded::parse(body).into_owned().collect())
}

/// The sandbox's own absolute URL, as the client reached it (for `pay_url`).
fn own_base(headers: &HeaderMap) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("127.0.0.1");
    format!("http://{host}/{KIND}")
}

/// Checks appkey and sign the way every endpoint does (101–104); `None` when they are good.
fn check_auth(fields: &HashMap<String, String>, inner: &SignInput<'_>) -> Option<Json<Value>> {
    let appkey = fields.get("appkey").map(String::as_str).unwrap_or_default();
    if appkey.is_empty() {
        return Some(error(101, "秘钥必须"));
    }
    if appkey != DEMO_APPKEY {
        return Some(error(102, "无效的秘钥"));
    }
    let sign = fields.get("sign").map(String::as_str).unwrap_or_default();
    if sign.is_empty() {
        return Some(error(103, "签名必须"));
    }
    if !signatures_match(sign, &inner.sign(&Secret::new(DEMO_APPSECRET))) {
        return Some(error(104, "无效的签名"));
    }
    None
}

async fn anypay_create(
    State(state): State<Shared>,
    headers: HeaderMap,
    body: Bytes,
) -> Json<Value> {
    create(&state, &headers, &body, false)
}

async fn cloudpay_create(
    State(state): State<Shared>,
    headers: HeaderMap,
    body: Bytes,
) -> Json<Value> {
    create(&state, &headers, &body, true)
}

fn create(state: &Shared, headers: &HeaderMap, body: &[u8], cloud: bool) -> Json<Value> {
    let Some(fields) = form_fields(headers, body) else {
        return error(105, "参数缺失");
    };
    let allowed: &[&str] = if cloud {
        &["appkey", "price", "type", "out_order_id", "custom", "sign"]
    } else {
        &[
            "appkey",
            "price",
            "type",
            "out_order_id",
            "custom",
            "sign",
            "notify_url",
            "return_url",
        ]
    };
    if fields.keys().any(|key| !allowed.contains(&key.as_str())) {
        return error(106, "存在禁止传递的参数");
    }
    let get = |name: &str| fields.get(name).map(String::as_str).unwrap_or_default();
    let signed = SignInput::Create {
        appkey: get("appkey"),
        price: get("price"),
        pay_type: get("type"),
        out_order_id: get("out_order_id"),
        custom: get("custom"),
    };
    if let Some(refused) = check_auth(&fields, &signed) {
        return refused;
    }
    if ["price", "type", "out_order_id"]
        .iter()
        .any(|name| get(name).is_empty())
    {
        return error(105, "参数缺失");
    }
    let notify_url = get("notify_url");
    if !cloud && notify_url.is_empty() {
        return error(109, "通知接口url未填写");
    }
    let price = get("price");
    let two_decimals = price
        .split_once('.')
        .is_some_and(|(int, frac)| frac.len() == 2 && !int.is_empty());
    match Fen::parse_wire(price) {
        Ok(fen) if two_decimals && fen.0 > 0 && fen.to_yuan() == price => {}
        _ => return error(201, "价格无效"),
    }
    let channel = match get("type") {
        "alipay" => Channel::Alipay,
        "wechat" if cloud => return error(203, "当前支付方式已关闭"),
        "wechat" => Channel::Wechat,
        _ => return error(202, "无效的支付方式"),
    };
    let id = state.new_id();
    let pay_url = format!("{}/pay/api?id={id}&type={}", own_base(headers), get("type"));
    let mut order = SimOrder::new(KIND, id, get("out_order_id"), price, channel);
    order.qr_text.clone_from(&pay_url);
    order.notify_url = notify_url.to_string();
    order.fields.clone_from(&fields);
    if !state.insert(order) {
        return error(199, "未知错误: 外部订单编号重复");
    }
    let qrcode_url = format!(
        "{}/qrcode/build?size=130&text={}",
        own_base(headers),
        url::form_urlencoded::byte_serialize(pay_url.as_bytes()).collect::<String>()
    );
    let mut params = json!({
        "appkey": get("appkey"),
        "price": price,
        "type": get("type"),
        "out_order_id": get("out_order_id"),
        "custom": get("custom"),
        "sign": get("sign"),
    });
    let mut data = json!({"pay_url": pay_url, "qrcode_url": qrcode_url});
    if let Some(map) = data.as_object_mut() {
        if !cloud {
            map.insert("qrcode_body".into(), json!(qr_data_uri(&pay_url)));
        }
        map.insert("params".into(), params.take());
    }
    Json(json!({"code": 100, "msg": "请求成功", "time": now_text(), "data": data}))
}

fn qr_data_uri(text: &str) -> String {
    crate::qr::to_png(text, 4)
        .map(|png| {
            format!(
                "data:image/png;base64,{}",
                base64::engine::general_purpose::STANDARD.encode(png)
            )
        })
        .unwrap_or_default()
}

async fn check(
    State(state): State<Shared>,
    Query(fields): Query<HashMap<String, String>>,
) -> Json<Value> {
    let get = |name: &str| fields.get(name).map(String::as_str).unwrap_or_default();
    let signed = SignInput::Query {
        appkey: get("appkey"),
        out_order_id: get("out_order_id"),
    };
    if let Some(refused) = check_auth(&fields, &signed) {
        return refused;
    }
    let out_order_id = get("out_order_id");
    if out_order_id.is_empty() {
        return error(105, "参数缺失");
    }
    let found = state.update(
        KIND,
        |o| o.order_no == out_order_id,
        |o| o.queries.push(std::time::Instant::now()),
    );
    let Some(order) = found else {
        return error(201, "订单不存在");
    };
    // gatepay's order id is an integer (522 in the seed); the sandbox's ids are digits.
    let order_id = order
        .id
        .parse::<u64>()
        .map_or_else(|_| json!(order.id), |n| json!(n));
    Json(json!({
        "code": 100,
        "msg": "请求成功",
        "time": now_text(),
        "data": {
            "order_id": order_id,
            "order_name": format!("任意金额支付:{}元", order.amount),
            "order_price": order.amount,
            "order_type": order.field("type"),
            "order_status": order_status(&order.state),
        }
    }))
}

/// gatepay's hosted pay page: what the payer's phone opens from the till's QR. It shows the
/// wallet QR (here a demo payload) and the amount.
async fn pay_page(
    State(state): State<Shared>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let id = query.get("id").cloned().unwrap_or_default();
    let Some(order) = state.find(KIND, |o| o.id == id) else {
        return (
            StatusCode::NOT_FOUND,
            Html("<!doctype html><meta charset=utf-8><title>gatepay</title><p>订单不存在</p>"),
        )
            .into_response();
    };
    let wallet = format!(
        "qrtill-demo://gatepay/{}?amount={}&type={}",
        order.id,
        order.amount,
        order.field("type")
    );
    let img = crate::qr::to_png(&wallet, 6)
        .map(|png| base64::engine::general_purpose::STANDARD.encode(png))
        .unwrap_or_default();
    Html(format!(
        "<!doctype html><html><head><meta charset=utf-8><title>gatepay 支付 ¥{amount}</title></head>\
         <body style=\"font-family:sans-serif;text-align:center\"><h1>¥{amount}</h1>\
         <img alt=QR src=\"data:image/png;base64,{img}\" width=300>\
         <p>请使用{wallet_name}扫码支付 · 订单 {id} · 状态 {status}</p></body></html>",
        amount = order.amount,
        wallet_name = order.channel.name_zh(),
        id = order.id,
        status = order_status(&order.state),
    ))
    .into_response()
}

/// gatepay's QR-image service (`qrcode_url`): a PNG of `text`.
async fn qrcode_build(Query(query): Query<HashMap<String, String>>) -> Response {
    let text = query.get("text").cloned().unwrap_or_default();
    match crate::qr::to_png(&text, 4) {
        Ok(png) if !text.is_empty() => ([(header::CONTENT_TYPE, "image/png")], png).into_response(),
        _ => (StatusCode::BAD_REQUEST, "text required").into_response(),
    }
}
