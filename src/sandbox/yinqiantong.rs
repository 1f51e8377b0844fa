//! The yinqiantong (银钱通) v1 simulator (seed 003, PROVIDERS.md §4a): `POST /order`,
//! `GET /order?client_out_trade_no=…|out_trade_no=…`, the JSON notify with its four headers,
//! and `GET|POST /_pay/{out_trade_no}`, the page a `pay_body` leads to (standing in for
//! Alipay's form target and WeChat's H5 page).
//!
//! It answers like the seed's example: `{msg, code, data}` with numeric `channel`, `platform`
//! and `status` (0 unpaid, 1 paid, 2 failed, 3 expired). Error codes are the provider's own
//! (4403 bad sign or credentials, 4404 no such order, 4409 order exists, 4414 bad parameters);
//! the messages are the sandbox's. No rate limit is documented, so none is enforced; the
//! `ts` header must be within 86400 s of the sandbox's clock, as the seed says.

use std::collections::HashMap;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, header};
use axum::response::{Html, IntoResponse, Json};
use axum::routing::{any, post};
use serde_json::{Map, Value, json};

use super::{NotifyRequest, Shared, SimOrder, SimState};
use crate::model::{Channel, Fen};
use crate::providers::html_escape;
use crate::providers::yinqiantong::Yinqiantong;
use crate::providers::yinqiantong::transformers::{SignInput, field_text};
use crate::secret::{Secret, signatures_match};

/// The protocol's name.
pub const KIND: &str = "yinqiantong";
/// The sandbox's App ID.
pub const DEMO_APPID: &str = "10000001";
/// The sandbox's App Key.
pub const DEMO_APPKEY: &str = "qrtill-sandbox-yqt-appkey";
/// The sandbox's App Secret (it protects nothing: demo only).
pub const DEMO_APP_SECRET: &str = "qrtill-sandbox-yinqiantong-secret";

/// How far `ts` may be from the server's clock (the seed).
const TS_WINDOW_SECS: i64 = 86_400;

/// The demo account for this sandbox.
pub fn demo_account(base_url: &str) -> Yinqiantong {
    Yinqiantong::new(
        "demo-yinqiantong",
        base_url,
        DEMO_APPID,
        Secret::new(DEMO_APPKEY),
        Secret::new(DEMO_APP_SECRET),
    )
}

/// The `[[provider]]` section for this sandbox.
pub fn demo_config(base_url: &str) -> String {
    format!(
        "[[provider]]\nid = \"demo-yinqiantong\"\nkind = \"yinqiantong\"\nbase_url = \"{base_url}\"\nappid = \"{DEMO_APPID}\"\nappkey = \"{DEMO_APPKEY}\"\napp_secret = \"{DEMO_APP_SECRET}\"\n"
    )
}

pub(super) fn routes() -> Router<Shared> {
    Router::new()
        .route("/order", post(create).get(query))
        .route("/_pay/{out_trade_no}", any(pay_page))
}

/// The numeric status the seed's example answers with, for a simulated state.
pub fn status(state: &SimState) -> Value {
    match state {
        SimState::Created | SimState::Issued | SimState::Confirming => json!(0),
        SimState::Paid => json!(1),
        SimState::Cancelled | SimState::Closed => json!(2),
        SimState::Expired => json!(3),
        SimState::Code(code) => code
            .parse::<i64>()
            .map_or_else(|_| json!(code), |n| json!(n)),
    }
}

/// v2's numeric channel (the seed's example answers `channel: 1` for Alipay).
fn channel_code(channel: &str) -> i64 {
    match channel {
        "alipay" => 1,
        _ => 2,
    }
}

/// v2's numeric platform (the seed's example answers `platform: 3` for h5).
fn platform_code(platform: &str) -> i64 {
    match platform {
        "pc" => 1,
        "app" => 2,
        "h5" => 3,
        "mp" => 4,
        "mini_app" => 5,
        _ => 6,
    }
}

fn error(code: i64, message: &str) -> Json<Value> {
    Json(json!({"code": code, "msg": message, "data": null}))
}

fn now_unix() -> i64 {
    chrono::Utc::now().timestamp()
}

/// Checks the four headers; returns `ts` and `sign`.
fn check_headers(headers: &HeaderMap) -> Result<(String, String), Json<Value>> {
    let get = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_string)
            .ok_or_else(|| error(4414, &format!("缺少 header 参数: {name}")))
    };
    let appid = get("appid")?;
    let appkey = get("appkey")?;
    let ts = get("ts")?;
    let sign = get("sign")?;
    if appid != DEMO_APPID || !signatures_match(&appkey, DEMO_APPKEY) {
        return Err(error(4403, "appid 或 appkey 错误"));
    }
    let fresh = ts.len() == 10
        && ts
            .parse::<i64>()
            .is_ok_and(|t| (t - now_unix()).abs() <= TS_WINDOW_SECS);
    if !fresh {
        return Err(error(
            4414,
            "ts 必须是 10 位时间戳，且与服务器时间相差不超过 86400 秒",
        ));
    }
    Ok((ts, sign))
}

async fn create(State(state): State<Shared>, headers: HeaderMap, body: Bytes) -> Json<Value> {
    let json_body = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/json"));
    if !json_body {
        return error(4414, "请求格式错误: 需要 Content-Type: application/json");
    }
    let (ts, sign) = match check_headers(&headers) {
        Ok(pair) => pair,
        Err(answer) => return answer,
    };
    let Ok(Value::Object(fields)) = serde_json::from_slice::<Value>(&body) else {
        return error(4414, "请求体必须是 JSON 对象");
    };
    let text = |name: &str| fields.get(name).map(field_text).unwrap_or_default();
    for required in ["channel", "platform", "money", "client_ip", "notify_url"] {
        if text(required).is_empty() {
            return error(4414, &format!("缺少必填参数: {required}"));
        }
    }
    let channel = match text("channel").as_str() {
        "alipay" => Channel::Alipay,
        "wx" => Channel::Wechat,
        _ => return error(4414, "channel 错误: wx 微信, alipay 支付宝"),
    };
    let platform = text("platform");
    if !["app", "mp", "mini_app", "h5", "pc", "scan"].contains(&platform.as_str()) {
        return error(4414, "platform 错误: app, mp, mini_app, h5, pc");
    }
    if matches!(platform.as_str(), "mp" | "mini_app") && text("open_id").is_empty() {
        return error(4414, "缺少必填参数: open_id (公众号/小程序支付必填)");
    }
    let money = match fields.get("money").and_then(Value::as_i64) {
        Some(money) if money > 0 => money,
        _ => return error(4414, "money 必须是大于 0 的整数 (单位: 分)"),
    };
    if text("client_ip").parse::<std::net::Ipv4Addr>().is_err() {
        return error(4414, "client_ip 必须是 IPv4 地址, 如: 127.0.0.1");
    }
    let expected = SignInput::Body {
        body: &fields,
        ts: &ts,
    }
    .sign(&Secret::new(DEMO_APP_SECRET));
    if !signatures_match(&sign, &expected) {
        return error(4403, "签名错误");
    }
    let id = state.new_id();
    let our_no = text("client_out_trade_no");
    let order_no = if our_no.is_empty() { &id } else { &our_no };
    let mut order = SimOrder::new(KIND, id.clone(), order_no, &Fen(money).to_yuan(), channel);
    order.notify_url = text("notify_url");
    order.fields = fields
        .iter()
        .map(|(key, value)| (key.clone(), field_text(value)))
        .collect::<HashMap<_, _>>();
    let base = format!(
        "http://{}/{KIND}",
        headers
            .get(header::HOST)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("127.0.0.1")
    );
    let pay_body = pay_body(&base, &order, &platform);
    order.qr_text = format!("{base}/_pay/{id}");
    order.fields.insert("pay_body".into(), pay_body);
    let answer = data(&state, &order);
    if !state.insert(order) {
        return error(4409, "订单已存在: client_out_trade_no 重复");
    }
    Json(json!({"msg": "ok", "code": 200, "data": answer}))
}

/// What the provider hands back to open the wallet: Alipay's auto-submitting form for web
/// platforms, WeChat's H5 link, a code link for `scan`, in-app payloads for the rest. Every
/// link and form leads to this sandbox's pay page.
fn pay_body(base: &str, order: &SimOrder, platform: &str) -> String {
    let page = format!("{base}/_pay/{}", order.id);
    match (order.channel, platform) {
        (Channel::Alipay, "h5" | "pc") => format!(
            "<form id='alipaysubmit' name='alipaysubmit' action='{}' method='post'>\
             <input type='hidden' name='out_trade_no' value='{}'/>\
             <input type='hidden' name='total_amount' value='{}'/>\
             <input type='submit' value='ok' style='display:none;'></form>\
             <script>document.forms['alipaysubmit'].submit();</script>",
            html_escape(&page),
            html_escape(&order.id),
            html_escape(&order.amount),
        ),
        (_, "h5") => format!("{page}?prepay_id=wx{}&package=1037687096", order.id),
        (_, "app") => format!("app_id={DEMO_APPID}&out_trade_no={}", order.id),
        (_, "mp" | "mini_app") => json!({
            "appId": "wx0000000000000000",
            "package": format!("prepay_id=wx{}", order.id),
            "signType": "MD5",
        })
        .to_string(),
        _ => page,
    }
}

/// The `data` object of create and query answers.
fn data(state: &Shared, order: &SimOrder) -> Value {
    let field = |name: &str| order.field(name);
    let created = order.created_at.timestamp();
    let lifetime = i64::try_from(state.options().order_timeout.as_secs()).unwrap_or(300);
    json!({
        "app_id": DEMO_APPID,
        "channel": channel_code(&field("channel")),
        "platform": platform_code(&field("platform")),
        "out_trade_no": order.id,
        "client_out_trade_no": field("client_out_trade_no"),
        "status": status(&order.state),
        "money": order.amount_fen.0,
        "client_ip": field("client_ip"),
        "open_id": field("open_id"),
        "subject": field("subject"),
        "description": field("description"),
        "notify_url": field("notify_url"),
        "success_url": "",
        "extra": field("extra"),
        "pay_body": field("pay_body"),
        "pay_time": if order.state == SimState::Paid { now_unix() } else { 0 },
        "expire_time": created + lifetime,
        "create_time": created,
    })
}

#[derive(serde::Deserialize)]
struct QueryParams {
    client_out_trade_no: Option<String>,
    out_trade_no: Option<String>,
}

async fn query(
    State(state): State<Shared>,
    headers: HeaderMap,
    Query(params): Query<QueryParams>,
) -> Json<Value> {
    let (ts, sign) = match check_headers(&headers) {
        Ok(pair) => pair,
        Err(answer) => return answer,
    };
    let expected = SignInput::Query { ts: &ts }.sign(&Secret::new(DEMO_APP_SECRET));
    if !signatures_match(&sign, &expected) {
        return error(4403, "签名错误");
    }
    let found = match (params.client_out_trade_no, params.out_trade_no) {
        (Some(no), _) if !no.is_empty() => state.update(
            KIND,
            |o| o.field("client_out_trade_no") == no,
            |o| o.queries.push(std::time::Instant::now()),
        ),
        (_, Some(id)) if !id.is_empty() => state.update(
            KIND,
            |o| o.id == id,
            |o| o.queries.push(std::time::Instant::now()),
        ),
        _ => return error(4414, "缺少参数: client_out_trade_no 或 out_trade_no"),
    };
    match found {
        Some(order) => Json(json!({"msg": "ok", "code": 200, "data": data(&state, &order)})),
        None => error(4404, "订单不存在"),
    }
}

/// The notify: `POST {notify_url}` with a JSON body of the order's fields and the `appid`,
/// `appkey`, `ts` and `sign` headers. A forged one claims the order paid in full and is
/// signed with another secret.
pub(super) fn notify(order: &SimOrder, forged: bool) -> NotifyRequest {
    let field = |name: &str| order.field(name);
    let (status, money, secret) = if forged {
        (json!(1), order.amount_fen.0, "forged-secret")
    } else {
        (status(&order.state), order.paid().0, DEMO_APP_SECRET)
    };
    let ts = now_unix().to_string();
    let mut body = Map::new();
    for (key, value) in [
        ("app_id", json!(DEMO_APPID)),
        ("channel", json!(channel_code(&field("channel")))),
        ("platform", json!(platform_code(&field("platform")))),
        ("out_trade_no", json!(order.id)),
        ("client_out_trade_no", json!(field("client_out_trade_no"))),
        ("status", status),
        ("money", json!(money)),
        ("client_ip", json!(field("client_ip"))),
        ("open_id", json!(field("open_id"))),
        ("subject", json!(field("subject"))),
        ("description", json!(field("description"))),
        ("extra", json!(field("extra"))),
        ("pay_time", json!(now_unix())),
        ("create_time", json!(order.created_at.timestamp())),
    ] {
        body.insert(key.to_string(), value);
    }
    let sign = SignInput::Body {
        body: &body,
        ts: &ts,
    }
    .sign(&Secret::new(secret));
    NotifyRequest {
        post: true,
        url: order.notify_url.clone(),
        content_type: "application/json",
        body: Value::Object(body).to_string(),
        headers: vec![
            ("appid".into(), DEMO_APPID.into()),
            ("appkey".into(), DEMO_APPKEY.into()),
            ("ts".into(), ts),
            ("sign".into(), sign),
        ],
    }
}

/// The wallet page a `pay_body` leads to: the amount, the state, and a button that pays the
/// order through the control API (as the payer would in the wallet).
async fn pay_page(State(state): State<Shared>, Path(id): Path<String>) -> impl IntoResponse {
    let Some(order) = state.find(KIND, |o| o.id == id) else {
        return Html(
            "<!doctype html><meta charset=utf-8><title>银钱通 sandbox</title><p>订单不存在</p>"
                .to_string(),
        );
    };
    Html(format!(
        "<!doctype html><html><head><meta charset=utf-8><meta name=viewport content=\"width=device-width\">\
         <title>银钱通 sandbox ¥{amount}</title></head>\
         <body style=\"font-family:sans-serif;text-align:center\"><h1>{wallet} ¥{amount}</h1>\
         <p>订单 {id} · 状态 {status}</p>\
         <form method=post action=\"/_sandbox/orders/{order_no}/pay\"><button type=submit>确认付款 / Pay</button></form>\
         </body></html>",
        wallet = order.channel.name_zh(),
        amount = html_escape(&order.amount),
        id = html_escape(&order.id),
        status = status(&order.state),
        order_no = html_escape(&order.order_no),
    ))
}
