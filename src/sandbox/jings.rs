//! The sun.jings.wang v1 simulator (seed 004): the pay page `/pay.action` (the payer's
//! browser posts the signed form; a GET with the same fields is taken too, for the till's
//! signed-link QR), `GET /requstOrderStatus.action`, `GET /requstBalance.action`, and the
//! POST notify.
//!
//! Answers: the query and balance calls answer HTTP 200 JSON in the seed's shapes, a refusal
//! being query status `-2` ("查询异常") or balance status `1` with the reason in `msg` (the
//! seed gives no message texts: the ones here are the sandbox's own, each starting with the
//! seed's word for the failure). The pay page answers HTML, as the real one does; a refused
//! form gets HTTP 400 and a page saying why (the real page's errors are UNKNOWN).
//!
//! Invariants: every required field, the seed's byte limits and every key are checked as the
//! seed defines them (the query key as PROVIDERS.md infers it); the seed's rate limits are
//! enforced, one status query per order per minute and one balance query per 3 minutes,
//! and every such call is recorded ([`super::Sandbox::calls`]) so tests can check the till.

use std::collections::HashMap;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Json, Response};
use axum::routing::get;
use base64::Engine as _;
use serde_json::{Value, json};

use super::{NotifyRequest, Shared, SimOrder, SimState};
use crate::model::{Channel, Fen};
use crate::providers::html_escape;
use crate::providers::jings::Jings;
use crate::providers::jings::transformers::{BALANCE_PATH, PAY_PATH, QUERY_PATH, SignInput, limit};
use crate::secret::{Secret, signatures_match};

/// The protocol's name.
pub const KIND: &str = "jings";
/// The sandbox's merchant id (the seed's example uid).
pub const DEMO_UID: &str = "10000001400000";
/// The sandbox's merchant token (it protects nothing: demo only).
pub const DEMO_TOKEN: &str = "qrtill-sandbox-jings-token";
/// The only `paytype` the seed documents (Alipay), the only one the sandbox takes.
pub const DEMO_PAYTYPE: &str = "11";

/// The seed: "一个订单号一分钟只能查询一次".
pub const QUERY_EVERY: Duration = Duration::from_secs(60);
/// The seed: "三分钟只能查询一次".
pub const BALANCE_EVERY: Duration = Duration::from_secs(180);
/// The seed: `reqtime` may differ from the provider's clock by at most 10 minutes.
pub const REQTIME_SKEW_SECS: i64 = 600;

/// The demo account for this sandbox.
pub fn demo_account(base_url: &str) -> Jings {
    Jings::new("demo-jings", base_url, DEMO_UID, Secret::new(DEMO_TOKEN))
}

/// The `[[provider]]` section for this sandbox.
pub fn demo_config(base_url: &str) -> String {
    format!(
        "[[provider]]\nid = \"demo-jings\"\nkind = \"jings\"\nbase_url = \"{base_url}\"\nuid = \"{DEMO_UID}\"\ntoken = \"{DEMO_TOKEN}\"\npaytype = \"{DEMO_PAYTYPE}\"\n"
    )
}

/// The rate-limit key of an order's status queries (see [`super::Sandbox::calls`]).
pub fn query_calls_key(uid: &str, orderid: &str) -> String {
    format!("{KIND}/query/{uid}/{orderid}")
}

/// The rate-limit key of an account's balance queries.
pub fn balance_calls_key(uid: &str) -> String {
    format!("{KIND}/balance/{uid}")
}

pub(super) fn routes() -> Router<Shared> {
    Router::new()
        .route(PAY_PATH, get(pay_link).post(pay_form))
        .route(QUERY_PATH, get(query))
        .route(BALANCE_PATH, get(balance))
}

/// The seed's query status for a simulated state: `-1` waiting, `0` paid, `1` timed out.
/// The protocol has no cancelled or closed state: an order that can no longer be paid is
/// reported as timed out.
pub fn code(state: &SimState) -> String {
    match state {
        SimState::Created | SimState::Issued | SimState::Confirming => "-1".into(),
        SimState::Paid => "0".into(),
        SimState::Expired | SimState::Cancelled | SimState::Closed => "1".into(),
        SimState::Code(code) => code.clone(),
    }
}

/// The notify for a paid order: `POST notifyurl` with `payid, orderid, orderuid, paymoney,
/// realpay, key`. The notify has no status, so a genuine one exists only for a paid order; a
/// forged one (signed with another token) is sent whatever the state, as an attacker would.
pub(super) fn notify(order: &SimOrder, forged: bool) -> Option<NotifyRequest> {
    if !forged && code(&order.state) != "0" {
        return None;
    }
    let token = Secret::new(if forged { "forged-token" } else { DEMO_TOKEN });
    let orderuid = order.field("orderuid");
    let realpay = order.paid().to_yuan();
    let key = SignInput::Notify {
        payid: &order.id,
        orderid: &order.order_no,
        orderuid: &orderuid,
        paymoney: &order.amount,
        realpay: &realpay,
    }
    .sign(&token);
    let body = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("payid", &order.id)
        .append_pair("orderid", &order.order_no)
        .append_pair("orderuid", &orderuid)
        .append_pair("paymoney", &order.amount)
        .append_pair("realpay", &realpay)
        .append_pair("key", &key)
        .finish();
    Some(NotifyRequest {
        post: true,
        url: order.notify_url.clone(),
        content_type: "application/x-www-form-urlencoded",
        headers: Vec::new(),
        body,
    })
}

/// Decoded pairs; a name sent twice is refused (which value was signed would be unknown).
fn fields_of(raw: &[u8]) -> Result<HashMap<String, String>, String> {
    let mut fields = HashMap::new();
    for (name, value) in url::form_urlencoded::parse(raw).into_owned() {
        if fields.contains_key(&name) {
            return Err(format!("参数重复: {name}"));
        }
        fields.insert(name, value);
    }
    Ok(fields)
}

fn field<'a>(fields: &'a HashMap<String, String>, name: &str) -> &'a str {
    fields.get(name).map_or("", String::as_str)
}

/// The first required field that is missing or empty.
fn missing<'a>(fields: &HashMap<String, String>, required: &[&'a str]) -> Option<&'a str> {
    required
        .iter()
        .find(|name| field(fields, name).is_empty())
        .copied()
}

// ---------------------------------------------------------------------------------------------
// Pay page

fn pay_page(status: StatusCode, title: &str, body: &str) -> Response {
    (
        status,
        Html(format!(
            "<!doctype html><html><head><meta charset=\"utf-8\"><title>{}</title></head>\
             <body style=\"font-family:sans-serif;text-align:center\">{body}</body></html>",
            html_escape(title)
        )),
    )
        .into_response()
}

fn pay_refused(message: &str) -> Response {
    pay_page(
        StatusCode::BAD_REQUEST,
        "支付请求错误",
        &format!(
            "<h1>支付请求错误</h1><p id=\"error\">{}</p>",
            html_escape(message)
        ),
    )
}

async fn pay_link(State(state): State<Shared>, RawQuery(query): RawQuery) -> Response {
    pay(&state, query.unwrap_or_default().as_bytes())
}

async fn pay_form(State(state): State<Shared>, body: Bytes) -> Response {
    pay(&state, &body)
}

fn pay(state: &Shared, raw: &[u8]) -> Response {
    let fields = match fields_of(raw) {
        Ok(fields) => fields,
        Err(message) => return pay_refused(&message),
    };
    match check_pay(&fields) {
        Ok(()) => {}
        Err(message) => return pay_refused(&message),
    }
    let orderid = field(&fields, "orderid");
    // A reload of the pay page posts the same form again: show the same order.
    let existing = state.find(KIND, |o| o.order_no == orderid);
    let order = match existing {
        Some(order) if order.field("key") == field(&fields, "key") => order,
        Some(_) => return pay_refused("订单号重复: 该订单号已用于另一笔支付"),
        None => {
            let paymoney = field(&fields, "paymoney");
            let id = state.new_id();
            let mut order = SimOrder::new(KIND, id.clone(), orderid, paymoney, Channel::Alipay);
            order.qr_text = format!("qrtill-demo://jings/{id}?amount={paymoney}");
            order.notify_url = field(&fields, "notifyurl").to_string();
            order.fields = fields.clone();
            if !state.insert(order.clone()) {
                return pay_refused("订单号重复");
            }
            order
        }
    };
    let img = crate::qr::to_png(&order.qr_text, 6)
        .map(|png| base64::engine::general_purpose::STANDARD.encode(png))
        .unwrap_or_default();
    pay_page(
        StatusCode::OK,
        &format!("阳光支付 ¥{}", order.amount),
        &format!(
            "<h1>¥<span id=\"amount\">{amount}</span></h1>\
             <img alt=\"QR\" src=\"data:image/png;base64,{img}\" width=\"300\">\
             <p>请使用支付宝扫码支付 · 订单 <span id=\"orderid\">{orderid}</span> · \
             支付号 <span id=\"payid\">{payid}</span></p><p>(qrtill sandbox)</p>",
            amount = html_escape(&order.amount),
            orderid = html_escape(&order.order_no),
            payid = html_escape(&order.id),
        ),
    )
}

/// The seed's rules for the pay form.
fn check_pay(fields: &HashMap<String, String>) -> Result<(), String> {
    let required = [
        "uid",
        "orderid",
        "paymoney",
        "paytype",
        "notifyurl",
        "returnurl",
        "key",
    ];
    if let Some(name) = missing(fields, &required) {
        return Err(format!("缺少必填参数: {name}"));
    }
    for (name, value) in fields {
        if let Some(max) = limit(name)
            && value.len() > max
        {
            return Err(format!("参数过长: {name} 最多 {max} 字节"));
        }
    }
    if field(fields, "uid") != DEMO_UID {
        return Err("商户不存在: uid 错误".into());
    }
    if field(fields, "paytype") != DEMO_PAYTYPE {
        return Err(format!(
            "支付方式错误: paytype 仅支持 {DEMO_PAYTYPE} (支付宝)"
        ));
    }
    let paymoney = field(fields, "paymoney");
    let two_decimals = paymoney
        .split_once('.')
        .is_some_and(|(int, frac)| frac.len() == 2 && !int.is_empty());
    match Fen::parse_wire(paymoney) {
        Ok(fen) if two_decimals && fen.0 > 0 && fen.to_yuan() == paymoney => {}
        _ => return Err("金额格式错误: paymoney 单位元, 保留 2 位小数, 例如 1.01".into()),
    }
    for name in ["notifyurl", "returnurl"] {
        let ok = url::Url::parse(field(fields, name))
            .is_ok_and(|url| matches!(url.scheme(), "http" | "https"));
        if !ok {
            return Err(format!("{name} 不是有效的网址"));
        }
    }
    let expected = SignInput::Pay {
        uid: field(fields, "uid"),
        orderid: field(fields, "orderid"),
        ordername: field(fields, "ordername"),
        paymoney,
        orderuid: field(fields, "orderuid"),
        paytype: field(fields, "paytype"),
        notifyurl: field(fields, "notifyurl"),
        returnurl: field(fields, "returnurl"),
        orderinfo: field(fields, "orderinfo"),
    }
    .sign(&Secret::new(DEMO_TOKEN));
    if !signatures_match(field(fields, "key"), &expected) {
        return Err("校验秘钥错误: key 不正确".into());
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Status query

fn query_refused(orderid: &str, message: &str) -> Json<Value> {
    Json(json!({
        "msg": message, "orderid": orderid, "payid": "", "paymoney": "", "realpay": "",
        "status": "-2",
    }))
}

async fn query(State(state): State<Shared>, RawQuery(raw): RawQuery) -> Json<Value> {
    let fields = match fields_of(raw.unwrap_or_default().as_bytes()) {
        Ok(fields) => fields,
        Err(message) => return query_refused("", &format!("查询异常: {message}")),
    };
    let orderid = field(&fields, "orderid");
    if let Some(name) = missing(&fields, &["orderid", "uid", "key"]) {
        return query_refused(orderid, &format!("查询异常: 缺少参数 {name}"));
    }
    let uid = field(&fields, "uid");
    if uid != DEMO_UID {
        return query_refused(orderid, "查询异常: 商户不存在");
    }
    let expected = SignInput::Query { orderid, uid }.sign(&Secret::new(DEMO_TOKEN));
    if !signatures_match(field(&fields, "key"), &expected) {
        return query_refused(orderid, "查询异常: 校验秘钥错误");
    }
    if let Err(wait) = state.rate_limit(&query_calls_key(uid, orderid), QUERY_EVERY) {
        return query_refused(
            orderid,
            &format!(
                "查询异常: 查询过于频繁, 一个订单号一分钟只能查询一次 ({}s 后再试)",
                wait.as_secs() + 1
            ),
        );
    }
    let now = std::time::Instant::now();
    let Some(order) = state.update(KIND, |o| o.order_no == orderid, |o| o.queries.push(now)) else {
        return query_refused(orderid, "查询异常: 订单不存在");
    };
    let status = code(&order.state);
    let realpay = if status == "0" {
        order.paid().to_yuan()
    } else {
        String::new()
    };
    Json(json!({
        "msg": "", "orderid": order.order_no, "payid": order.id, "paymoney": order.amount,
        "realpay": realpay, "status": status,
    }))
}

// ---------------------------------------------------------------------------------------------
// Balance

fn balance_refused(fields: &HashMap<String, String>, message: &str) -> Json<Value> {
    Json(json!({
        "balance": "", "msg": message, "reqtime": field(fields, "reqtime"), "status": "1",
        "uid": field(fields, "uid"),
    }))
}

/// How far `reqtime` (Beijing time) is from now, in seconds; `None` when it is malformed.
fn reqtime_skew(reqtime: &str) -> Option<i64> {
    let local = chrono::NaiveDateTime::parse_from_str(reqtime, "%Y-%m-%d %H:%M:%S").ok()?;
    let unix = local.and_utc().timestamp() - 8 * 3600;
    Some((chrono::Utc::now().timestamp() - unix).abs())
}

async fn balance(State(state): State<Shared>, RawQuery(raw): RawQuery) -> Json<Value> {
    let fields = match fields_of(raw.unwrap_or_default().as_bytes()) {
        Ok(fields) => fields,
        Err(message) => return balance_refused(&HashMap::new(), &message),
    };
    if let Some(name) = missing(&fields, &["uid", "reqtime", "key"]) {
        return balance_refused(&fields, &format!("缺少参数: {name}"));
    }
    let (uid, reqtime) = (field(&fields, "uid"), field(&fields, "reqtime"));
    if uid != DEMO_UID {
        return balance_refused(&fields, "商户不存在");
    }
    match reqtime_skew(reqtime) {
        None => {
            return balance_refused(
                &fields,
                "reqtime 格式错误: 应为北京时间 yyyy-MM-dd HH:mm:ss",
            );
        }
        Some(skew) if skew > REQTIME_SKEW_SECS => {
            return balance_refused(&fields, "请求时间与服务器时间误差超过 10 分钟");
        }
        Some(_) => {}
    }
    let expected = SignInput::Balance { uid, reqtime }.sign(&Secret::new(DEMO_TOKEN));
    if !signatures_match(field(&fields, "key"), &expected) {
        return balance_refused(&fields, "校验秘钥错误");
    }
    if state
        .rate_limit(&balance_calls_key(uid), BALANCE_EVERY)
        .is_err()
    {
        return balance_refused(&fields, "查询过于频繁: 三分钟只能查询一次");
    }
    // The balance is what the sandbox's payers have paid so far.
    let balance: i64 = state
        .orders_of(KIND)
        .iter()
        .filter(|o| code(&o.state) == "0")
        .map(|o| o.paid().0)
        .sum();
    Json(json!({
        "balance": Fen(balance).to_yuan(), "msg": "", "reqtime": reqtime, "status": "0",
        "uid": uid,
    }))
}
