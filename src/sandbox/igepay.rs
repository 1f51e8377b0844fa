//! The igepay simulator (seed 001): `POST /Home/Pay/payFor` (also as a GET link), the
//! payer's pay page, and the POST notify. igepay has no query, so the sandbox has none.
//!
//! Errors answer a JSON `{"msg": …, "code": …}` (the seed's "JSON 请求的返回值" shape; its
//! codes are not documented, so these are the sandbox's own): 1 missing field, 2 wrong uid,
//! 3 bad type, 4 bad price, 5 bad key, 6 duplicate order_id.

use std::collections::HashMap;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::response::{Html, IntoResponse, Json, Response};
use axum::routing::get;
use serde_json::json;

use super::{NotifyRequest, Shared, SimOrder, SimState};
use crate::model::{Channel, Fen};
use crate::providers::igepay::Igepay;
use crate::providers::igepay::transformers::SignInput;
use crate::secret::{Secret, signatures_match};

/// The protocol's name.
pub const KIND: &str = "igepay";
/// The sandbox's merchant uid.
pub const DEMO_UID: &str = "20001";
/// The sandbox's token (it protects nothing: demo only).
pub const DEMO_TOKEN: &str = "qrtill-sandbox-igepay-token";

/// The demo account for this sandbox.
pub fn demo_account(base_url: &str) -> Igepay {
    Igepay::new("demo-igepay", base_url, DEMO_UID, Secret::new(DEMO_TOKEN))
}

/// The `[[provider]]` section for this sandbox.
pub fn demo_config(base_url: &str) -> String {
    format!(
        "[[provider]]\nid = \"demo-igepay\"\nkind = \"igepay\"\nbase_url = \"{base_url}\"\nuid = \"{DEMO_UID}\"\ntoken = \"{DEMO_TOKEN}\"\n"
    )
}

pub(super) fn routes() -> Router<Shared> {
    Router::new().route("/Home/Pay/payFor", get(pay_for_get).post(pay_for_post))
}

/// The notify: POST form `pay_num, transaction_id, order_id, price, code, key, sign` with
/// `sign = md5(order_id + price + token)`; a forged one is signed with another token.
pub(super) fn notify(order: &SimOrder, forged: bool) -> NotifyRequest {
    let token = Secret::new(if forged { "forged-token" } else { DEMO_TOKEN });
    let price = order.paid().to_yuan();
    let sign = SignInput::Notify {
        order_id: &order.order_no,
        price: &price,
    }
    .sign(&token);
    let code = match &order.state {
        SimState::Paid => "0000".to_string(),
        SimState::Code(code) => code.clone(),
        _ => "9999".to_string(),
    };
    let mut body = url::form_urlencoded::Serializer::new(String::new());
    body.append_pair("pay_num", &order.id)
        .append_pair("transaction_id", &format!("4200{}", order.id))
        .append_pair("order_id", &order.order_no)
        .append_pair("price", &price);
    if let Some(uid) = order.fields.get("order_uid") {
        body.append_pair("order_uid", uid);
    }
    body.append_pair("code", &code)
        .append_pair("key", &order.field("key"))
        .append_pair("sign", &sign);
    NotifyRequest {
        post: true,
        url: order.notify_url.clone(),
        content_type: "application/x-www-form-urlencoded",
        headers: Vec::new(),
        body: body.finish(),
    }
}

fn error(code: i64, msg: &str) -> Response {
    Json(json!({"msg": msg, "code": code})).into_response()
}

async fn pay_for_get(State(state): State<Shared>, RawQuery(query): RawQuery) -> Response {
    pay_for(&state, query.unwrap_or_default().as_bytes())
}

async fn pay_for_post(State(state): State<Shared>, body: Bytes) -> Response {
    pay_for(&state, &body)
}

fn pay_for(state: &Shared, form: &[u8]) -> Response {
    let fields: HashMap<String, String> = url::form_urlencoded::parse(form).into_owned().collect();
    let field = |name: &str| {
        fields
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    };
    for required in [
        "uid",
        "price",
        "type",
        "notify_url",
        "return_url",
        "order_id",
        "key",
    ] {
        if field(required).is_none() {
            return error(1, &format!("缺少必填参数: {required}"));
        }
    }
    let get = |name: &str| field(name).unwrap_or_default();
    if get("uid") != DEMO_UID {
        return error(2, "商户uid错误");
    }
    let channel = match get("type") {
        "1" => Channel::Wechat,
        "2" => Channel::Alipay,
        _ => return error(3, "支付渠道错误: 1 微信支付, 2 支付宝"),
    };
    let price = get("price");
    match Fen::parse_wire(price) {
        Ok(fen) if fen.0 > 0 && fen.to_yuan() == price => {}
        _ => return error(4, "价格错误: 单位元, 精确到小数点后 2 位"),
    }
    if get("order_id").len() > 50 {
        return error(1, "order_id 最长 50 字符");
    }
    // Every sent parameter except `key` takes part, by name.
    let params: Vec<(&str, &str)> = fields
        .iter()
        .filter(|(name, _)| name.as_str() != "key")
        .map(|(name, value)| (name.as_str(), value.as_str()))
        .collect();
    let expected = SignInput::Create { params: &params }.sign(&Secret::new(DEMO_TOKEN));
    if !signatures_match(get("key"), &expected) {
        return error(5, "秘钥key错误");
    }
    let existing = state.find(KIND, |o| o.order_no == get("order_id"));
    let order = match existing {
        // The same order opened again from the payer's phone: show its page again.
        Some(order) if order.field("key") == get("key") => order,
        Some(_) => return error(6, "订单号重复"),
        None => {
            let mut order = SimOrder::new(KIND, state.new_id(), get("order_id"), price, channel);
            order.notify_url = get("notify_url").to_string();
            order.qr_text = format!("qrtill-demo://igepay/{}?price={price}", order.id);
            order.fields = fields.clone();
            order.state = SimState::Issued;
            if !state.insert(order.clone()) {
                return error(6, "订单号重复");
            }
            order
        }
    };
    Html(format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>igepay 收银台</title></head>\
         <body style=\"font-family:sans-serif;text-align:center\"><h1>¥{price}</h1>\
         <p>{}扫码支付 · 订单 {}</p><p>演示沙箱 DEMO SANDBOX</p></body></html>",
        channel.name_zh(),
        crate::providers::html_escape(&order.order_no)
    ))
    .into_response()
}
