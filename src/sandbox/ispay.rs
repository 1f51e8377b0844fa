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
use axum::http::{HeaderMap, StatusCode, header};
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

/// The provider's hosted pay page (`GET /transfer/{id}`), as a shop without a till shows it
/// in a browser: the amount, the QR of the payment link as an inline PNG, the time left, and
/// a script that counts down every second and asks `/query/{id}` every 5 s (as the provider's
/// own page does) until the order is paid or closed. Self-contained: one HTML document, no
/// other requests than the status polls. An unknown order is a 404.
///
/// With `#timing` in the address, the page also logs its paint times to the console
/// (`qrtill-paint NAME UNIX_MS SINCE_NAVIGATION_MS`), which tests/xvfb/bench.sh reads from a
/// headless browser's log to compare the till's start-up with the page's.
async fn transfer(State(state): State<Shared>, Path(id): Path<String>) -> impl IntoResponse {
    let Some(order) = find(&state, |o| o.id == id) else {
        return (
            StatusCode::NOT_FOUND,
            Html(
                "<!doctype html><meta charset=utf-8><title>ispay</title><p>订单不存在</p>"
                    .to_string(),
            ),
        );
    };
    let qr = crate::qr::to_png(&order.qr_text, 6)
        .map(|png| {
            format!(
                "data:image/png;base64,{}",
                base64::engine::general_purpose::STANDARD.encode(png)
            )
        })
        .unwrap_or_default();
    let left = state
        .options()
        .order_timeout
        .saturating_sub(order.created.elapsed())
        .as_secs();
    let (wallet, colour) = match order.channel {
        Channel::Alipay => ("支付宝", "#1677ff"),
        Channel::Wechat => ("微信", "#07c160"),
        Channel::Unionpay => ("云闪付", "#d7000f"),
        Channel::Qq => ("QQ钱包", "#12b7f5"),
    };
    let page = TRANSFER_PAGE
        .replace("{amount}", &order.amount)
        .replace("{wallet}", wallet)
        .replace("{colour}", colour)
        .replace("{qr}", &qr)
        .replace("{left}", &left.to_string())
        .replace("{state}", &code(&order.state).to_string())
        .replace(
            "{created}",
            &order.created_at.format("%Y-%m-%d %H:%M:%S").to_string(),
        )
        .replace("{id}", &crate::providers::html_escape(&order.id))
        // Last: the merchant's text is not searched for marks.
        .replace(
            "{order_no}",
            &crate::providers::html_escape(&order.order_no),
        );
    (StatusCode::OK, Html(page))
}

/// The hosted pay page; `{name}` marks are filled in by [`transfer`] (the amount is checked
/// digits, the ids are escaped).
const TRANSFER_PAGE: &str = r##"<!doctype html>
<html lang="zh-CN">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1">
<title>{wallet}扫码支付 ¥{amount}</title>
<style>
*{box-sizing:border-box}
body{margin:0;background:#f2f3f5;color:#222;font:15px/1.5 -apple-system,"PingFang SC","Microsoft YaHei","Noto Sans CJK SC",sans-serif}
header{background:{colour};color:#fff;padding:14px 20px;font-size:18px;font-weight:600}
main{max-width:420px;margin:24px auto;background:#fff;border-radius:10px;box-shadow:0 2px 12px rgba(0,0,0,.08);padding:24px;text-align:center}
.amount{font-size:40px;font-weight:700;margin:4px 0 12px}
.amount small{font-size:22px;margin-right:2px}
.qr{width:240px;height:240px;image-rendering:pixelated;border:1px solid #eee;border-radius:6px}
.hint{color:{colour};font-weight:600;margin:10px 0 4px}
.left{color:#666}
.left b{color:#e6393a;font-variant-numeric:tabular-nums}
.state{margin:14px 0 0;padding:10px;border-radius:6px;background:#f7f8fa;color:#555}
.state.paid{background:#e8f8ee;color:#0a7d3b;font-weight:600}
.state.closed{background:#fdecec;color:#b42318}
dl{display:grid;grid-template-columns:auto 1fr;gap:4px 12px;text-align:left;margin:18px 0 0;color:#666;font-size:13px}
dd{margin:0;color:#333;word-break:break-all}
</style>
</head>
<body>
<header>{wallet} · 扫码支付</header>
<main>
<div>应付金额</div>
<div class="amount"><small>¥</small>{amount}</div>
<img class="qr" id="qr" alt="付款二维码" src="{qr}">
<div class="hint">请打开{wallet}，扫一扫完成付款</div>
<div class="left">二维码有效时间 <b id="left">--:--</b></div>
<div class="state" id="state">等待付款…</div>
<dl><dt>订单编号</dt><dd>{order_no}</dd><dt>平台单号</dt><dd>{id}</dd><dt>创建时间</dt><dd>{created}</dd></dl>
</main>
<script>
(function () {
  var deadline = Date.now() + {left} * 1000;
  var leftEl = document.getElementById("left");
  var stateEl = document.getElementById("state");
  var done = false;
  function pad(n) { return (n < 10 ? "0" : "") + n; }
  function finish(text, cls) {
    done = true;
    stateEl.textContent = text;
    stateEl.className = "state " + cls;
    if (cls !== "paid") { document.getElementById("qr").style.opacity = "0.2"; }
  }
  function show(state) {
    if (state === 9) { finish("支付成功", "paid"); }
    else if (state === 8) { stateEl.textContent = "已付款，等待确认…"; }
    else if (state === 3 || state === 4 || state === 6 || state === 7) { finish("订单已关闭", "closed"); }
  }
  function tick() {
    if (done) { return; }
    var s = Math.max(0, Math.round((deadline - Date.now()) / 1000));
    leftEl.textContent = pad(Math.floor(s / 60)) + ":" + pad(s % 60);
    if (s === 0) { finish("二维码已过期，请重新下单", "closed"); return; }
    setTimeout(tick, 1000 - (Date.now() % 1000));
  }
  function poll() {
    if (done) { return; }
    fetch("../query/{id}", {cache: "no-store"})
      .then(function (r) { return r.json(); })
      .then(function (j) { if (j && j.success) { show(Number(j.state)); } })
      .catch(function () {})
      .then(function () { if (!done) { setTimeout(poll, 5000); } });
  }
  show({state});
  tick();
  setTimeout(poll, 5000);
  if (location.hash === "#timing" && window.PerformanceObserver) {
    new PerformanceObserver(function (list) {
      list.getEntries().forEach(function (e) {
        console.log("qrtill-paint " + e.name + " " + (performance.timeOrigin + e.startTime).toFixed(3) + " " + e.startTime.toFixed(3));
      });
    }).observe({type: "paint", buffered: true});
  }
})();
</script>
</body>
</html>
"##;
