//! gatepay.io wire format (seed 002, PROVIDERS.md §3): channel names, the signed field lists,
//! the error-code tables, the `order_status` table and the JSON envelope.
//!
//! Invariants: every signed message is listed below as data in its signing order; only an
//! explicit paid `order_status` (INFERRED list, see [`map_order_status`]) maps to paid, and
//! every other value is pending or unknown.

use base64::Engine as _;
use serde_json::Value;

use crate::model::{Channel, ProviderState, QrPayload};
use crate::providers::health::FailureKind;
use crate::providers::sign::md5_concat;
use crate::providers::wire::{self, as_int, non_empty};
use crate::providers::{ProviderError, StatusReport};
use crate::secret::Secret;

/// The `code` of a successful answer.
pub const CODE_OK: i64 = 100;

/// The query's "no such order" code (`订单不存在`).
pub const CODE_NO_SUCH_ORDER: i64 = 201;

/// The `type` value per channel: `alipay` and `wechat`; gatepay has no other wallet.
pub fn pay_type(channel: Channel) -> Option<&'static str> {
    match channel {
        Channel::Alipay => Some("alipay"),
        Channel::Wechat => Some("wechat"),
        Channel::Unionpay | Channel::Qq => None,
    }
}

/// The messages gatepay signs, each with its fields in signing order. Every signature is
/// `md5(md5(appkey + fields…) + appsecret)`.
pub enum SignInput<'a> {
    /// anypay and cloudpay create: `appkey + price + type + out_order_id + custom`.
    /// `notify_url` and `return_url` are not signed.
    Create {
        /// The merchant's appkey.
        appkey: &'a str,
        /// Two-decimal yuan, exactly as sent.
        price: &'a str,
        /// `alipay` or `wechat`.
        pay_type: &'a str,
        /// Our order number.
        out_order_id: &'a str,
        /// The custom text exactly as sent (may be empty).
        custom: &'a str,
    },
    /// The status query: `appkey + out_order_id`.
    Query {
        /// The merchant's appkey.
        appkey: &'a str,
        /// Our order number.
        out_order_id: &'a str,
    },
    /// The async notify:
    /// `appkey + order_id + out_order_id + price + realprice + type + paytime + extend`, each
    /// exactly as received.
    Notify {
        /// The merchant's appkey (ours, never the one the notify names).
        appkey: &'a str,
        /// gatepay's order id.
        order_id: &'a str,
        /// Our order number.
        out_order_id: &'a str,
        /// The order price.
        price: &'a str,
        /// The amount actually paid.
        realprice: &'a str,
        /// `alipay` or `wechat`.
        pay_type: &'a str,
        /// Payment time.
        paytime: &'a str,
        /// Our `custom`, echoed.
        extend: &'a str,
    },
}

impl SignInput<'_> {
    /// The fields after `appkey`, in signing order.
    fn fields(&self) -> Vec<&str> {
        match self {
            SignInput::Create {
                appkey,
                price,
                pay_type,
                out_order_id,
                custom,
            } => vec![appkey, price, pay_type, out_order_id, custom],
            SignInput::Query {
                appkey,
                out_order_id,
            } => vec![appkey, out_order_id],
            SignInput::Notify {
                appkey,
                order_id,
                out_order_id,
                price,
                realprice,
                pay_type,
                paytime,
                extend,
            } => vec![
                appkey,
                order_id,
                out_order_id,
                price,
                realprice,
                pay_type,
                paytime,
                extend,
            ],
        }
    }

    /// The signature: `md5(md5(fields…) + appsecret)`, lowercase hex.
    pub fn sign(&self, appsecret: &Secret) -> String {
        let inner = md5_concat(&self.fields());
        md5_concat(&[&inner, appsecret.expose()])
    }
}

/// Maps a query's `order_status`.
///
/// The seed and every public revision show only `"expired"` (PROVIDERS.md §3); the values
/// for "paid" and "waiting" are UNKNOWN. So that the till never shows paid on a guess about
/// an ambiguous word, only these explicit words count as paid (INFERRED): `paid`,
/// `success`, `已支付`, `支付成功`. Explicit not-yet-paid words are pending (INFERRED):
/// `unpaid`, `pending`, `waiting`, `未支付`, `待支付`. Everything else, e.g. `closed`, a
/// number or an empty string, is [`ProviderState::Unknown`] and leaves the order as it is;
/// the signed notify remains the authoritative "paid".
pub fn map_order_status(status: &str) -> ProviderState {
    const PAID: &[&str] = &["paid", "success", "已支付", "支付成功"];
    const PENDING: &[&str] = &["unpaid", "pending", "waiting", "未支付", "待支付"];
    let status = status.trim();
    let is = |list: &[&str]| list.iter().any(|word| word.eq_ignore_ascii_case(status));
    if status.eq_ignore_ascii_case("expired") {
        ProviderState::Expired
    } else if is(PAID) {
        ProviderState::Paid
    } else if is(PENDING) {
        ProviderState::Pending
    } else {
        ProviderState::Unknown(status.to_string())
    }
}

/// Which call an answer belongs to: the codes 201–209 mean different things per call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Endpoint {
    /// `api/anypay/create` or `api/cloudpay/create`.
    Create,
    /// `api/order/check`.
    Query,
}

/// The seed's text for a code, with an English gloss and, where the fix is in the merchant's
/// hands, what to do. `None` for a code the seed does not list.
pub fn code_text(endpoint: Endpoint, code: i64, provider_msg: &str) -> Option<String> {
    let text = match (endpoint, code) {
        (_, 101) => "秘钥必须 / appkey is required: set `appkey` in the config",
        (_, 102) => "无效的秘钥 / invalid appkey: check `appkey` in the config",
        // 103 stands for two errors in the seed; the provider's own words tell them apart.
        (_, 103) if provider_msg.contains("签名") => "签名必须 / the sign is missing",
        (_, 103) if provider_msg.contains("过期") => {
            "秘钥已过期 / the appkey has expired: renew it in gatepay's backend"
        }
        (_, 103) => "秘钥已过期 或 签名必须 / the appkey has expired, or the sign is missing",
        (_, 104) => "无效的签名 / invalid signature: check `appsecret` in the config",
        (_, 105) => "参数缺失 / a required parameter is missing",
        (_, 106) => "存在禁止传递的参数 / a parameter was sent that may not be sent",
        (_, 107) => "api已关闭 / the API is switched off for this account",
        (_, 108) => {
            "回调接口url未填写 / the callback URL is not set: fill it in gatepay's backend (账户配置)"
        }
        (_, 109) => {
            "通知接口url未填写 / the notify URL is not set: fill it in gatepay's backend (账户配置)"
        }
        (_, 110) => "套餐已超额 / the plan's quota is used up: upgrade or renew the plan",
        (_, 199) => "未知错误 / unknown error at gatepay",
        (Endpoint::Create, 201) => "价格无效 / invalid price",
        (Endpoint::Create, 202) => "无效的支付方式 / invalid payment type",
        (Endpoint::Create, 203) => "当前支付方式已关闭 / this payment type is switched off",
        (Endpoint::Create, 204) => "无可用支付方式 / no payment QR is available",
        (Endpoint::Create, 205) => "分类创建错误 / gatepay could not create the category",
        (Endpoint::Create, 206) => "产品创建错误 / gatepay could not create the product",
        (Endpoint::Create, 207) => "库存创建错误 / gatepay could not create the stock",
        (Endpoint::Create, 208) => "队列创建错误 / gatepay could not queue the order",
        (Endpoint::Create, 209) => "非代理用户 / not an agent user (cloud API)",
        (Endpoint::Query, 201) => "订单不存在 / no such order",
        _ => return None,
    };
    Some(text.to_string())
}

/// What kind of trouble a documented refusal code is (seed 002's table, shared by every
/// endpoint): 101–104 the appkey or sign, 107 the API switched off for the account, 209 not
/// an agent user, 110 the plan's quota used up.
pub fn refusal_kind(code: i64) -> Option<FailureKind> {
    match code {
        101..=104 | 107 | 209 => Some(FailureKind::Authorization),
        110 => Some(FailureKind::Quota),
        _ => None,
    }
}

/// A refusal with the seed's words for its code, plus the provider's own words when they say
/// something else.
pub fn rejected(endpoint: Endpoint, value: &Value) -> ProviderError {
    let msg = non_empty(value, "msg").unwrap_or_default();
    let code = value.get("code").and_then(as_int);
    let known = code.and_then(|code| code_text(endpoint, code, &msg));
    let message = match known {
        Some(text) if msg.is_empty() || text.starts_with(msg.as_str()) => text,
        Some(text) => format!("{text} (gatepay: {})", wire::excerpt(&msg)),
        None if msg.is_empty() => "未知错误码 / an error code this version does not know".into(),
        None => format!(
            "{} / an error code this version does not know",
            wire::excerpt(&msg)
        ),
    };
    ProviderError::Rejected {
        code: value
            .get("code")
            .and_then(wire::as_text)
            .unwrap_or_else(|| "?".into()),
        message,
    }
}

/// Parses a body as JSON. Besides the shared tolerance for `nil`, a trailing comma before `}`
/// or `]` is accepted, because the seed's own success example has one.
///
/// # Errors
/// [`ProviderError::Decode`] when the body is not JSON even so.
pub fn parse_json(body: &[u8]) -> Result<Value, ProviderError> {
    match wire::parse_json(body) {
        Ok(value) => Ok(value),
        Err(first) => {
            let patched = strip_trailing_commas(&String::from_utf8_lossy(body));
            wire::parse_json(patched.as_bytes()).map_err(|_| first)
        }
    }
}

/// Drops a `,` that (after white space) closes an object or array, outside JSON strings.
fn strip_trailing_commas(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut in_string = false;
    let mut escaped = false;
    for (index, ch) in text.char_indices() {
        if in_string {
            if escaped {
                escaped = false;
            } else if ch == '\\' {
                escaped = true;
            } else if ch == '"' {
                in_string = false;
            }
        } else if ch == '"' {
            in_string = true;
        } else if ch == ',' {
            let rest = text.get(index + 1..).unwrap_or_default().trim_start();
            if rest.starts_with('}') || rest.starts_with(']') {
                continue;
            }
        }
        out.push(ch);
    }
    out
}

/// Checks the HTTP status and the `code` envelope; returns the JSON of a `code: 100` answer.
///
/// # Errors
/// [`ProviderError::HttpStatus`], [`ProviderError::Decode`], or [`ProviderError::Rejected`]
/// with the code and the seed's words for it.
pub fn envelope(endpoint: Endpoint, status: u16, body: &[u8]) -> Result<Value, ProviderError> {
    let json = parse_json(body);
    if !(200..300).contains(&status) {
        // gatepay's own error JSON says more than the bare status.
        if let Ok(value) = &json
            && value
                .get("code")
                .and_then(as_int)
                .is_some_and(|code| code != CODE_OK)
        {
            return Err(rejected(endpoint, value));
        }
        return Err(ProviderError::HttpStatus { status });
    }
    let value = json?;
    match value.get("code").and_then(as_int) {
        Some(CODE_OK) => Ok(value),
        Some(_) => Err(rejected(endpoint, &value)),
        None => Err(ProviderError::Decode {
            reason: format!(
                "no numeric `code` field: {}",
                wire::excerpt(&String::from_utf8_lossy(body))
            ),
        }),
    }
}

/// The QR from a create answer's `data`: `pay_url` (gatepay's pay page, rendered locally,
/// sharp at any size) when it is an http(s) URL, else the `qrcode_body` picture.
pub fn qr_payload(data: &Value) -> Option<QrPayload> {
    if let Some(url) = non_empty(data, "pay_url")
        && (url.starts_with("https://") || url.starts_with("http://"))
    {
        return Some(QrPayload::Text(url));
    }
    let body = non_empty(data, "qrcode_body")?;
    decode_image(&body).map(QrPayload::Image)
}

/// Decodes `qrcode_body`: `data:image/…;base64,AAAA…` or bare base64. Only PNG, JPEG or GIF
/// bytes are accepted (the seed labels a PNG as `image/jpeg`, so the label is not trusted).
pub fn decode_image(text: &str) -> Option<Vec<u8>> {
    let data = match text.split_once(";base64,") {
        Some((head, data)) if head.starts_with("data:") => data,
        _ => text,
    };
    let compact: String = data.chars().filter(|c| !c.is_whitespace()).collect();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(compact.as_bytes())
        .ok()?;
    let is_image = bytes.starts_with(b"\x89PNG\r\n\x1a\n")
        || bytes.starts_with(b"\xff\xd8\xff")
        || bytes.starts_with(b"GIF87a")
        || bytes.starts_with(b"GIF89a");
    is_image.then_some(bytes)
}

/// Reads a query answer's `data`.
///
/// # Errors
/// [`ProviderError::Decode`] when `data.order_status` is missing.
pub fn status_report(value: &Value) -> Result<StatusReport, ProviderError> {
    let data = value.get("data").unwrap_or(&Value::Null);
    let status = data
        .get("order_status")
        .and_then(wire::as_text)
        .ok_or_else(|| ProviderError::Decode {
            reason: "query answer has no `data.order_status`".into(),
        })?;
    Ok(StatusReport {
        state: map_order_status(&status),
        raw_code: status,
        provider_order_id: non_empty(data, "order_id"),
        qr: None,
        amount: data.get("order_price").and_then(wire::as_fen),
        timeout_secs: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trailing_commas_outside_strings_only() {
        let v = parse_json(br#"{"a": {"b": "x,}", "c": [1, 2,],},}"#).unwrap_or(Value::Null);
        assert_eq!(v["a"]["b"], "x,}");
        assert_eq!(v["a"]["c"], serde_json::json!([1, 2]));
        assert!(parse_json(b"{\"a\": 1,,}").is_err());
    }
}
