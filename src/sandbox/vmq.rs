//! The V免签 (vmq) simulator (PROVIDERS.md §7), modelled on the PHP server (vmqphp V1.13):
//! `createOrder`, `getOrder`, `checkOrder`, `closeOrder` and `getState`, each on GET or POST
//! (query or form fields, as PHP's `input()` reads them), and the GET notify.
//!
//! What it simulates:
//! - amount nudging: each waiting order holds the slot `"<fen>-<type>"`; a create whose amount
//!   is taken steps up one fen, at most 10 tries, then refuses with "订单超出负荷，请稍后重试";
//!   `reallyPrice` is what the customer must pay, and a payment without another amount pays
//!   it;
//! - the monitor phone: online by default; `POST /_sandbox/vmq/monitor/{online|offline|
//!   unbound}` switches it, `getState` reports it as `jkstate` (1, 0, -1), and `createOrder`
//!   refuses with "监控端状态异常，请检查" while it is not online;
//! - amounts as PHP prints a MySQL `double`: `0.1`, `10`, `12.35` in `getOrder` and the notify;
//!   two decimals in `createOrder`'s `reallyPrice` (PHP's `bcdiv`) and in `checkOrder`'s link
//!   (`number_format`); `price` in the create answer is echoed as sent;
//! - `getOrder` values as strings (PDO's default), `createOrder`'s as PHP builds them.
//!
//! Every refusal is `{"code":-1,"msg":…}` with the PHP server's words. The sandbox's own
//! choices: a `price` that is not plain yuan with at most two decimals is refused with
//! "订单金额格式错误" (PHP would read it as a number); a repeated `payId` is refused before an
//! amount slot is taken (PHP takes the slot first). State mapping: open and confirming
//! orders are 0, paid 1, expired, cancelled and closed -1, a raw `state/CODE` as it is (e.g.
//! 2, paid but the notify failed). No rate limit exists (self-hosted), so none is enforced;
//! `getOrder` calls are counted.

use std::collections::HashMap;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Json, Response};
use axum::routing::any;
use serde_json::{Value, json};

use super::{NotifyRequest, Shared, SimOrder, SimState};
use crate::model::{Channel, Fen};
use crate::providers::vmq::Vmq;
use crate::providers::vmq::transformers::SignInput;
use crate::secret::{Secret, signatures_match};

/// The protocol's name.
pub const KIND: &str = "vmq";
/// The sandbox's 通讯密钥 (it protects nothing: demo only).
pub const DEMO_KEY: &str = "qrtill-sandbox-vmq-key";
/// How many amount slots a create tries before it refuses (PHP: 10).
pub const SLOT_TRIES: i64 = 10;

/// The setting that holds the monitor's state (`1`, `0`, `-1`).
const MONITOR: &str = "vmq.jkstate";

/// The demo account for this sandbox.
pub fn demo_account(base_url: &str) -> Vmq {
    Vmq::new("demo-vmq", base_url, Secret::new(DEMO_KEY))
}

/// The `[[provider]]` section for this sandbox.
pub fn demo_config(base_url: &str) -> String {
    format!(
        "[[provider]]\nid = \"demo-vmq\"\nkind = \"vmq\"\nbase_url = \"{base_url}\"\nkey = \"{DEMO_KEY}\"\n"
    )
}

pub(super) fn routes() -> Router<Shared> {
    Router::new()
        .route("/createOrder", any(create_order))
        .route("/getOrder", any(get_order))
        .route("/checkOrder", any(check_order))
        .route("/closeOrder", any(close_order))
        .route("/getState", any(get_state))
}

/// The order `state` for a simulated state.
pub fn code(state: &SimState) -> String {
    match state {
        SimState::Created | SimState::Issued | SimState::Confirming => "0".into(),
        SimState::Paid => "1".into(),
        SimState::Expired | SimState::Cancelled | SimState::Closed => "-1".into(),
        SimState::Code(code) => code.clone(),
    }
}

/// An amount as PHP prints a MySQL `double`: no trailing zeros (`0.1`, `10`, `12.35`).
pub fn php_amount(fen: Fen) -> String {
    let yuan = fen.to_yuan();
    yuan.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// `param` as the server keeps it: PHP's `if (!$param)` turns an absent, empty or `"0"`
/// param into "".
fn effective_param(raw: &str) -> &str {
    if raw == "0" { "" } else { raw }
}

/// What the customer must pay, or (once paid) what was paid.
fn really_price(order: &SimOrder) -> Fen {
    order.paid()
}

/// The notify for an order: `GET {notifyUrl}?payId&param&type&price&reallyPrice&sign`, the
/// amounts PHP-style; a forged one is signed with another key.
pub(super) fn notify(order: &SimOrder, forged: bool) -> NotifyRequest {
    let key = if forged { "forged-key" } else { DEMO_KEY };
    let param_field = order.field("param");
    let param = effective_param(&param_field);
    let pay_type = order.field("type");
    let price = php_amount(order.amount_fen);
    let really = php_amount(really_price(order));
    let sign = SignInput::Notify {
        pay_id: &order.order_no,
        param,
        pay_type: &pay_type,
        price: &price,
        really_price: &really,
    }
    .sign(&Secret::new(key));
    let query = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("payId", &order.order_no)
        .append_pair("param", param)
        .append_pair("type", &pay_type)
        .append_pair("price", &price)
        .append_pair("reallyPrice", &really)
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

/// `POST /_sandbox/vmq/monitor/{online|offline|unbound}`: switches the monitor phone.
pub(super) async fn monitor_control(
    State(state): State<Shared>,
    Path(to): Path<String>,
) -> impl IntoResponse {
    let value = match to.as_str() {
        "online" | "1" => "1",
        "offline" | "0" => "0",
        "unbound" | "-1" => "-1",
        _ => {
            return (
                StatusCode::NOT_FOUND,
                "unknown monitor state: online, offline, unbound",
            );
        }
    };
    state.set_setting(MONITOR, value);
    tracing::info!(jkstate = value, "sandbox: V免签 monitor switched");
    (StatusCode::OK, "ok")
}

fn monitor(state: &Shared) -> String {
    state.setting(MONITOR).unwrap_or_else(|| "1".into())
}

/// The fields of a call: the query string, then a form body (PHP's `input()` reads both).
fn fields(query: Option<&str>, headers: &HeaderMap, body: &[u8]) -> HashMap<String, String> {
    let mut fields: HashMap<String, String> =
        url::form_urlencoded::parse(query.unwrap_or_default().as_bytes())
            .into_owned()
            .collect();
    let form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/x-www-form-urlencoded"));
    if form {
        fields.extend(url::form_urlencoded::parse(body).into_owned());
    }
    fields
}

fn refuse(message: &str) -> Response {
    Json(json!({"code": -1, "msg": message, "data": null})).into_response()
}

fn success(data: Value) -> Response {
    Json(json!({"code": 1, "msg": "成功", "data": data})).into_response()
}

/// `timeOut`: the order lifetime in whole minutes, at least one.
fn timeout_minutes(state: &Shared) -> u64 {
    state.options().order_timeout.as_secs().div_ceil(60).max(1)
}

async fn create_order(
    State(state): State<Shared>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let fields = fields(query.as_deref(), &headers, &body);
    let get = |name: &str| fields.get(name).map(String::as_str).unwrap_or_default();
    let pay_id = get("payId");
    if pay_id.is_empty() {
        return refuse("请传入商户订单号");
    }
    let pay_type = get("type");
    if pay_type.is_empty() {
        return refuse("请传入支付方式=>1|微信 2|支付宝");
    }
    let channel = match pay_type {
        "1" => Channel::Wechat,
        "2" => Channel::Alipay,
        _ => return refuse("支付方式错误=>1|微信 2|支付宝"),
    };
    let price = get("price");
    if price.is_empty() {
        return refuse("请传入订单金额");
    }
    let price_fen = match Fen::parse_wire(price) {
        Ok(fen) if fen.0 > 0 => fen,
        Ok(_) => return refuse("订单金额必须大于0"),
        Err(_) => return refuse("订单金额格式错误: 元, 最多两位小数, 例如 12.30"),
    };
    let sign = get("sign");
    if sign.is_empty() {
        return refuse("请传入签名");
    }
    let param = effective_param(get("param"));
    let expected = SignInput::Create {
        pay_id,
        param,
        pay_type,
        price,
    }
    .sign(&Secret::new(DEMO_KEY));
    if !signatures_match(sign, &expected) {
        return refuse("签名错误");
    }
    if monitor(&state) != "1" {
        return refuse("监控端状态异常，请检查");
    }
    let id = state.new_id();
    let now = chrono::Local::now();
    // PHP: date("YmdHms") and four random digits; here the counter's last four, so that two
    // orders in one second differ.
    let order_id = format!(
        "{}{}",
        now.format("%Y%m%d%H%M%S"),
        id.get(id.len().saturating_sub(4)..).unwrap_or_default()
    );
    let mut order = SimOrder::new(KIND, order_id.clone(), pay_id, price, channel);
    order.created_at = now;
    order.notify_url = get("notifyUrl").to_string();
    order.qr_text = format!("qrtill-demo://vmq/{}/{order_id}", channel.as_str());
    order.fields = fields.clone();
    let inserted = state.insert_with(order, |order, others| {
        let taken: Vec<String> = others
            .iter()
            .filter(|o| code(&o.state) == "0")
            .map(|o| slot(really_price(o), &o.field("type")))
            .collect();
        let free = (0..SLOT_TRIES)
            .map(|step| Fen(price_fen.0 + step))
            .find(|fen| !taken.contains(&slot(*fen, pay_type)))
            .ok_or("订单超出负荷，请稍后重试")?;
        order.payable = Some(free);
        Ok::<(), &str>(())
    });
    let order = match inserted {
        Ok(Some(order)) => order,
        Ok(None) => return refuse("商户订单号已存在"),
        Err(message) => return refuse(message),
    };
    if get("isHtml") == "1" {
        return Html(format!(
            "<script>window.location.href = 'payPage/pay.html?orderId={order_id}'</script>"
        ))
        .into_response();
    }
    success(json!({
        "payId": order.order_no,
        "orderId": order.id,
        "payType": pay_type,
        "price": price,
        "reallyPrice": really_price(&order).to_yuan(),
        "payUrl": order.qr_text,
        "isAuto": 1,
        "state": 0,
        "timeOut": timeout_minutes(&state).to_string(),
        "date": order.created_at.timestamp(),
    }))
}

/// An amount slot: `"<fen>-<type>"`.
fn slot(fen: Fen, pay_type: &str) -> String {
    format!("{}-{pay_type}", fen.0)
}

async fn get_order(
    State(state): State<Shared>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let fields = fields(query.as_deref(), &headers, &body);
    let order_id = fields.get("orderId").cloned().unwrap_or_default();
    let Some(order) = state.update(
        KIND,
        |o| o.id == order_id,
        |o| o.queries.push(std::time::Instant::now()),
    ) else {
        return refuse("云端订单编号不存在");
    };
    success(json!({
        "payId": order.order_no,
        "orderId": order.id,
        "payType": order.field("type"),
        "price": php_amount(order.amount_fen),
        "reallyPrice": php_amount(really_price(&order)),
        "payUrl": order.qr_text,
        "isAuto": "1",
        "state": code(&order.state),
        "timeOut": timeout_minutes(&state).to_string(),
        "date": order.created_at.timestamp().to_string(),
    }))
}

async fn check_order(
    State(state): State<Shared>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let fields = fields(query.as_deref(), &headers, &body);
    let order_id = fields.get("orderId").cloned().unwrap_or_default();
    let Some(order) = state.find(KIND, |o| o.id == order_id) else {
        return refuse("云端订单编号不存在");
    };
    match code(&order.state).as_str() {
        "0" => return refuse("订单未支付"),
        "-1" => return refuse("订单已过期"),
        _ => {}
    }
    // PHP formats both amounts with number_format(…, 2) here.
    let param_field = order.field("param");
    let param = effective_param(&param_field);
    let pay_type = order.field("type");
    let price = order.amount_fen.to_yuan();
    let really = really_price(&order).to_yuan();
    let sign = SignInput::Notify {
        pay_id: &order.order_no,
        param,
        pay_type: &pay_type,
        price: &price,
        really_price: &really,
    }
    .sign(&Secret::new(DEMO_KEY));
    let link = format!(
        "{}?payId={}&param={param}&type={pay_type}&price={price}&reallyPrice={really}&sign={sign}",
        order.field("returnUrl"),
        order.order_no
    );
    success(Value::String(link))
}

async fn close_order(
    State(state): State<Shared>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let fields = fields(query.as_deref(), &headers, &body);
    let get = |name: &str| fields.get(name).map(String::as_str).unwrap_or_default();
    let order_id = get("orderId");
    let expected = SignInput::Close { order_id }.sign(&Secret::new(DEMO_KEY));
    if !signatures_match(get("sign"), &expected) {
        return refuse("签名校验不通过");
    }
    if state.find(KIND, |o| o.id == order_id).is_none() {
        return refuse("云端订单编号不存在");
    }
    // Only a waiting order closes; the check and the change are one step.
    match state.update(
        KIND,
        |o| o.id == order_id && code(&o.state) == "0",
        |o| o.state = SimState::Closed,
    ) {
        Some(_) => Json(json!({"code": 1, "msg": "成功", "data": null})).into_response(),
        None => refuse("订单状态不允许关闭"),
    }
}

async fn get_state(
    State(state): State<Shared>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let fields = fields(query.as_deref(), &headers, &body);
    let get = |name: &str| fields.get(name).map(String::as_str).unwrap_or_default();
    let expected = SignInput::State { t: get("t") }.sign(&Secret::new(DEMO_KEY));
    if !signatures_match(get("sign"), &expected) {
        return refuse("签名校验不通过");
    }
    let jkstate = monitor(&state);
    let now = chrono::Local::now().timestamp();
    // An online phone beats every 30 s or so; an offline one stopped over a minute ago.
    let lastheart = match jkstate.as_str() {
        "1" => now,
        "0" => now - 120,
        _ => 0,
    };
    let lastpay = state
        .orders_of(KIND)
        .iter()
        .filter(|o| o.state == SimState::Paid)
        .map(|o| o.created_at.timestamp())
        .max()
        .unwrap_or(0);
    success(json!({
        "lastheart": lastheart.to_string(),
        "lastpay": lastpay.to_string(),
        "jkstate": jkstate,
    }))
}
