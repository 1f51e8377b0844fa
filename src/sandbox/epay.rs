//! The 易支付 / epay simulator (MD5 merchant protocol, PROVIDERS.md §6): `POST /mapi.php`,
//! `GET /api.php?act=order`, the platform's jump page `GET /pay/{trade_no}` (what a `payurl`
//! opens), and the GET notify.
//!
//! It answers with the platform's own codes and words where its original source shows them:
//! `api.php` says -3 `PID不存在`, -2 `KEY校验失败`, -1 `订单号不存在`, -5 `No Act!`; the create
//! refuses with code -1 and `submit.php`'s words (`PID不存在`, `签名校验失败，请返回重试！`,
//! `订单号(out_trade_no)不能为空`, `通知地址(notify_url)不能为空`, `商品名称(name)不能为空`,
//! `金额(money)不能为空`, `金额不合法`, `订单号(out_trade_no)格式不正确`). Where the source has no
//! words the sandbox chooses, in the same style and also with code -1:
//! `签名类型(sign_type)不支持` (anything but `MD5`), `用户IP地址(clientip)不能为空`,
//! `支付方式(type)不存在`, `设备类型(device)不支持`, `订单号(out_trade_no)已存在`.
//!
//! What the create answers (the document says it depends on the channel): Alipay and QQ
//! Wallet a `qrcode`; WeChat a `payurl` (the jump page) for `device=pc`, and only a
//! `urlscheme` (a mini-program) for `device=mobile` or `wechat`.
//!
//! The query's `status` is 1 once paid and 0 otherwise (epay has no expired or cancelled
//! state); a raw code set through the control API is sent as it is. The notify is sent for a
//! paid order (`trade_status=TRADE_SUCCESS`) or with a raw code; a forged one (wrong key)
//! always claims `TRADE_SUCCESS`. No rate limit is documented, so none is enforced; queries
//! are counted.

use std::collections::HashMap;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, header};
use axum::response::{Html, IntoResponse, Json};
use axum::routing::{get, post};
use base64::Engine as _;
use serde_json::{Value, json};
use subtle::ConstantTimeEq as _;

use super::{NotifyRequest, Shared, SimOrder, SimState};
use crate::model::{Channel, Fen};
use crate::providers::epay::Epay;
use crate::providers::epay::transformers::{SignInput, TRADE_SUCCESS};
use crate::secret::{Secret, signatures_match};

/// The protocol's name.
pub const KIND: &str = "epay";
/// The sandbox's merchant id (the document's example).
pub const DEMO_PID: &str = "1001";
/// The sandbox's merchant key (it protects nothing: demo only).
pub const DEMO_KEY: &str = "qrtill-sandbox-epay-key";

/// The demo account for this sandbox.
pub fn demo_account(base_url: &str) -> Epay {
    Epay::new("demo-epay", base_url, DEMO_PID, Secret::new(DEMO_KEY))
}

/// The `[[provider]]` section for this sandbox.
pub fn demo_config(base_url: &str) -> String {
    format!(
        "[[provider]]\nid = \"demo-epay\"\nkind = \"epay\"\nbase_url = \"{base_url}\"\npid = \"{DEMO_PID}\"\nkey = \"{DEMO_KEY}\"\n"
    )
}

pub(super) fn routes() -> Router<Shared> {
    Router::new()
        .route("/mapi.php", post(mapi))
        .route("/api.php", get(api))
        .route("/pay/{trade_no}", get(pay_page))
}

/// The query's `status` for a simulated state: 1 paid, 0 otherwise, a raw code as it is.
pub fn status(state: &SimState) -> String {
    match state {
        SimState::Paid => "1".into(),
        SimState::Created
        | SimState::Issued
        | SimState::Confirming
        | SimState::Expired
        | SimState::Cancelled
        | SimState::Closed => "0".into(),
        SimState::Code(code) => code.clone(),
    }
}

/// The notify for an order: `GET {notify_url}?pid&trade_no&out_trade_no&type&name&money&
/// trade_status[&param]&sign&sign_type`, signed over every field; `None` for an unpaid order
/// (epay notifies only payments). A forged one claims `TRADE_SUCCESS`, signed with another
/// key.
pub(super) fn notify(order: &SimOrder, forged: bool) -> Option<NotifyRequest> {
    let trade_status = match &order.state {
        SimState::Paid => TRADE_SUCCESS.to_string(),
        SimState::Code(code) => code.clone(),
        _ if forged => TRADE_SUCCESS.to_string(),
        _ => return None,
    };
    let key = if forged { "forged-key" } else { DEMO_KEY };
    let mut params: Vec<(String, String)> = vec![
        ("pid".into(), DEMO_PID.into()),
        ("trade_no".into(), order.id.clone()),
        ("out_trade_no".into(), order.order_no.clone()),
        ("type".into(), order.field("type")),
        ("name".into(), order.field("name")),
        ("money".into(), order.paid().to_yuan()),
        ("trade_status".into(), trade_status),
    ];
    let param = order.field("param");
    if !param.is_empty() {
        params.push(("param".into(), param));
    }
    let sign = SignInput::Received { params: &params }.sign(&Secret::new(key));
    params.push(("sign".into(), sign));
    params.push(("sign_type".into(), "MD5".into()));
    let query = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params.iter())
        .finish();
    let separator = if order.notify_url.contains('?') {
        '&'
    } else {
        '?'
    };
    Some(NotifyRequest {
        post: false,
        url: format!("{}{separator}{query}", order.notify_url),
        content_type: "",
        body: String::new(),
        headers: Vec::new(),
    })
}

fn error(code: i64, message: &str) -> Json<Value> {
    Json(json!({"code": code, "msg": message}))
}

/// The sandbox's own absolute URL, as the client reached it (for `payurl`).
fn own_base(headers: &HeaderMap) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("127.0.0.1");
    format!("http://{host}/{KIND}")
}

/// `submit.php`'s rule for `out_trade_no`: `^[a-zA-Z0-9._\-|]+$`.
fn good_out_trade_no(text: &str) -> bool {
    !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'|'))
}

async fn mapi(State(state): State<Shared>, headers: HeaderMap, body: Bytes) -> Json<Value> {
    let form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/x-www-form-urlencoded"));
    // Without a form the platform sees no fields at all, so no merchant id.
    let params: Vec<(String, String)> = if form {
        url::form_urlencoded::parse(&body).into_owned().collect()
    } else {
        Vec::new()
    };
    let fields: HashMap<String, String> = params.iter().cloned().collect();
    let get = |name: &str| fields.get(name).map(String::as_str).unwrap_or_default();
    if get("pid") != DEMO_PID {
        return error(-1, "PID不存在");
    }
    let expected = SignInput::Received { params: &params }.sign(&Secret::new(DEMO_KEY));
    if get("sign").is_empty() || !signatures_match(get("sign"), &expected) {
        return error(-1, "签名校验失败，请返回重试！");
    }
    if !get("sign_type").eq_ignore_ascii_case("MD5") {
        return error(-1, "签名类型(sign_type)不支持");
    }
    for (name, message) in [
        ("out_trade_no", "订单号(out_trade_no)不能为空"),
        ("notify_url", "通知地址(notify_url)不能为空"),
        ("name", "商品名称(name)不能为空"),
        ("money", "金额(money)不能为空"),
        ("clientip", "用户IP地址(clientip)不能为空"),
    ] {
        if get(name).is_empty() {
            return error(-1, message);
        }
    }
    let money = get("money");
    match Fen::parse_wire(money) {
        Ok(fen) if fen.0 > 0 => {}
        _ => return error(-1, "金额不合法"),
    }
    if !good_out_trade_no(get("out_trade_no")) {
        return error(-1, "订单号(out_trade_no)格式不正确");
    }
    let channel = match get("type") {
        "alipay" => Channel::Alipay,
        "wxpay" => Channel::Wechat,
        "qqpay" => Channel::Qq,
        _ => return error(-1, "支付方式(type)不存在"),
    };
    let device = match get("device") {
        "" => "pc",
        device @ ("pc" | "mobile" | "wechat") => device,
        _ => return error(-1, "设备类型(device)不支持"),
    };
    let trade_no = state.new_id();
    let (target, qr_text) = match (channel, device) {
        (Channel::Wechat, "pc") => ("payurl", format!("{}/pay/{trade_no}", own_base(&headers))),
        (Channel::Wechat, _) => (
            "urlscheme",
            format!("weixin://dl/business/?t=qrtilldemo{trade_no}"),
        ),
        _ => (
            "qrcode",
            format!(
                "qrtill-demo://epay/{trade_no}?money={money}&type={}",
                get("type")
            ),
        ),
    };
    let mut order = SimOrder::new(KIND, trade_no.clone(), get("out_trade_no"), money, channel);
    order.qr_text.clone_from(&qr_text);
    order.notify_url = get("notify_url").to_string();
    order.fields = fields.clone();
    if !state.insert(order) {
        return error(-1, "订单号(out_trade_no)已存在");
    }
    let mut answer = json!({"code": 1, "msg": "发起支付成功", "trade_no": trade_no});
    if let Some(map) = answer.as_object_mut() {
        map.insert(target.into(), Value::String(qr_text));
    }
    Json(answer)
}

#[derive(serde::Deserialize)]
struct ApiQuery {
    act: Option<String>,
    pid: Option<String>,
    key: Option<String>,
    out_trade_no: Option<String>,
}

async fn api(State(state): State<Shared>, Query(query): Query<ApiQuery>) -> Json<Value> {
    if query.act.as_deref() != Some("order") {
        // The platform has other calls (query, orders, settle …); the till uses none of them.
        return error(-5, "No Act!");
    }
    if query.pid.as_deref() != Some(DEMO_PID) {
        return error(-3, "PID不存在");
    }
    // The key itself, compared exactly (keys are case-sensitive) and in constant time.
    let key = query.key.unwrap_or_default();
    if !bool::from(key.as_bytes().ct_eq(DEMO_KEY.as_bytes())) {
        return error(-2, "KEY校验失败");
    }
    let out_trade_no = query.out_trade_no.unwrap_or_default();
    let found = state.update(
        KIND,
        |o| !out_trade_no.is_empty() && o.order_no == out_trade_no,
        |o| o.queries.push(std::time::Instant::now()),
    );
    let Some(order) = found else {
        return error(-1, "订单号不存在");
    };
    let endtime = if order.state == SimState::Paid {
        chrono::Local::now().format("%Y-%m-%d %H:%M:%S").to_string()
    } else {
        String::new()
    };
    // PHP answers with the database's strings, and `status` as a number (the document
    // types it Int); a raw code that is no number goes out as text.
    let code = status(&order.state);
    let status_value = code
        .parse::<i64>()
        .map_or_else(|_| Value::String(code.clone()), Value::from);
    Json(json!({
        "code": 1,
        "msg": "查询订单号成功！",
        "trade_no": order.id,
        "out_trade_no": order.order_no,
        "type": order.field("type"),
        "pid": DEMO_PID,
        "addtime": order.created_at.format("%Y-%m-%d %H:%M:%S").to_string(),
        "endtime": endtime,
        "name": order.field("name"),
        "money": order.amount,
        "status": status_value,
    }))
}

/// The platform's jump page behind a `payurl`, as the payer's browser shows it.
async fn pay_page(State(state): State<Shared>, Path(trade_no): Path<String>) -> impl IntoResponse {
    let Some(order) = state.find(KIND, |o| o.id == trade_no) else {
        return Html(
            "<!doctype html><meta charset=utf-8><title>易支付</title><p>订单号不存在</p>"
                .to_string(),
        );
    };
    let img = crate::qr::to_png(&format!("qrtill-demo://epay/{}", order.id), 6)
        .map(|png| base64::engine::general_purpose::STANDARD.encode(png))
        .unwrap_or_default();
    Html(format!(
        "<!doctype html><html><head><meta charset=utf-8><title>易支付 ¥{amount}</title></head>\
         <body style=\"font-family:sans-serif;text-align:center\"><h1>¥{amount}</h1>\
         <p>{name}</p><img alt=QR src=\"data:image/png;base64,{img}\" width=300>\
         <p>订单 {trade_no} · {paid}</p></body></html>",
        amount = order.amount,
        name = crate::providers::html_escape(&order.field("name")),
        trade_no = order.id,
        paid = if order.state == SimState::Paid {
            "已支付"
        } else {
            "等待支付"
        },
    ))
}
