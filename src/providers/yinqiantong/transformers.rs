//! yinqiantong (银钱通) v1 wire format (seed 003, PROVIDERS.md §4a): channel names, the
//! platforms a till can use, the sorted `k=v` signature, the status table, the
//! `{code, msg, data}` envelope and what a `pay_body` holds.
//!
//! Invariants: every signed message is listed below as data with its fields in signing order
//! (sorted by name, case-sensitive ASCII); empty values are never signed; integers are signed
//! without decimals; only `paid`, `1` and the JS SDK's `pay_success` map to paid.

use serde::Serialize;
use serde_json::{Map, Value};

use crate::model::{Channel, Fen, ProviderState};
use crate::providers::ProviderError;
use crate::providers::sign::md5_concat;
use crate::providers::wire;
use crate::secret::Secret;

/// The body's `channel` per wallet: `wx` WeChat, `alipay` Alipay. v1 offers no other.
pub fn channel_name(channel: Channel) -> Option<&'static str> {
    match channel {
        Channel::Alipay => Some("alipay"),
        Channel::Wechat => Some("wx"),
        Channel::Unionpay | Channel::Qq => None,
    }
}

/// The `platform` values a till can use: `h5` (mobile web: Alipay form, WeChat link), `pc`
/// (desktop web) and `scan` (added to v1 later; its `pay_body` is undocumented). `app`, `mp`
/// and `mini_app` need an app, an official account or an `open_id`, none of which a till has.
pub const TILL_PLATFORMS: &[&str] = &["h5", "pc", "scan"];

/// The default `platform`: `h5`, the one the seed's own example uses and whose `pay_body` is
/// documented for both wallets.
pub const DEFAULT_PLATFORM: &str = "h5";

/// What the provider's codes mean, for staff (`code` of the envelope; PROVIDERS.md §4b's
/// final table, which v1 shares).
pub fn code_meaning(code: i64) -> Option<&'static str> {
    Some(match code {
        200 => "成功 / ok",
        4201 => "等待支付 / waiting for payment",
        4400 => "支付失败 / payment failed",
        4403 => "签名错误 / signature refused: check appid, appkey, app_secret and the clock",
        4404 => "订单不存在 / no such order",
        4408 => "订单已过期 / order expired",
        4409 => "订单已存在 / an order with this number exists already",
        4414 => "参数错误 / bad or missing parameters",
        4500 => "服务器错误 / the provider's server failed",
        _ => return None,
    })
}

/// What kind of trouble a documented refusal code is: 4403 the signature or credentials,
/// 4500 the provider's own server.
pub fn refusal_kind(code: i64) -> Option<crate::providers::health::FailureKind> {
    use crate::providers::health::FailureKind;
    match code {
        4403 => Some(FailureKind::Authorization),
        4500 => Some(FailureKind::ProviderDown),
        _ => None,
    }
}

/// The messages yinqiantong v1 signs. The signature is
/// `md5(k1=v1&k2=v2…&ts=<ts>&app_secret=<secret>)` over the non-empty body fields sorted by
/// name; with no body fields it is `md5(ts=<ts>&app_secret=<secret>)`.
pub enum SignInput<'a> {
    /// `POST /order`: the body fields, listed in signing (name) order.
    Create {
        /// `wx` or `alipay`.
        channel: &'a str,
        /// The payer's IPv4 address (the till sends its configured one).
        client_ip: &'a str,
        /// Our order number.
        client_out_trade_no: &'a str,
        /// Integer fen.
        money: Fen,
        /// Where the notify goes.
        notify_url: &'a str,
        /// `h5`, `pc` or `scan`.
        platform: &'a str,
        /// A title; empty ones are neither sent nor signed.
        subject: &'a str,
        /// The `ts` header, 10-digit Unix seconds.
        ts: &'a str,
    },
    /// `GET /order?client_out_trade_no=…`: no body, so the signature covers only `ts`.
    Query {
        /// The `ts` header.
        ts: &'a str,
    },
    /// A JSON body as received (a notify at the till, a create at the sandbox): every field
    /// but a `sign` field, rendered by [`field_text`] and sorted by name, then the `ts` header.
    Body {
        /// The JSON body.
        body: &'a Map<String, Value>,
        /// The `ts` header as received.
        ts: &'a str,
    },
}

impl SignInput<'_> {
    /// The signed `k=v` pairs, empty values dropped, sorted by name (byte order).
    pub fn fields(&self) -> Vec<(String, String)> {
        let mut pairs: Vec<(String, String)> = match self {
            SignInput::Create {
                channel,
                client_ip,
                client_out_trade_no,
                money,
                notify_url,
                platform,
                subject,
                ts: _,
            } => [
                ("channel", channel.to_string()),
                ("client_ip", client_ip.to_string()),
                ("client_out_trade_no", client_out_trade_no.to_string()),
                ("money", money.0.to_string()),
                ("notify_url", notify_url.to_string()),
                ("platform", platform.to_string()),
                ("subject", subject.to_string()),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect(),
            SignInput::Query { .. } => Vec::new(),
            SignInput::Body { body, .. } => body
                .iter()
                // The signature cannot cover itself.
                .filter(|(key, _)| key.as_str() != "sign")
                .map(|(key, value)| (key.clone(), field_text(value)))
                .collect(),
        };
        pairs.retain(|(_, value)| !value.is_empty());
        // `str` orders by bytes: the case-sensitive ASCII order the document asks for.
        pairs.sort_by(|a, b| a.0.cmp(&b.0));
        pairs
    }

    fn ts(&self) -> &str {
        match self {
            SignInput::Create { ts, .. } | SignInput::Query { ts } | SignInput::Body { ts, .. } => {
                ts
            }
        }
    }

    /// The signature: 32 lowercase hex digits.
    pub fn sign(&self, app_secret: &Secret) -> String {
        let mut text: String = self
            .fields()
            .iter()
            .map(|(key, value)| format!("{key}={value}&"))
            .collect();
        text.push_str("ts=");
        text.push_str(self.ts());
        text.push_str("&app_secret=");
        md5_concat(&[&text, app_secret.expose()])
    }
}

/// A JSON value as the signature sees it: strings as they are, integers (also `1.0`) without
/// decimals, other numbers in their shortest form, `null` as empty (so never signed), booleans
/// as `true`/`false`, arrays and objects as compact JSON.
pub fn field_text(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(text) => text.clone(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => i.to_string(),
            (None, Some(u), _) => u.to_string(),
            (None, None, Some(f)) if f.fract() == 0.0 && f.abs() < 1e15 => format!("{f:.0}"),
            _ => n.to_string(),
        },
        Value::Array(_) | Value::Object(_) => value.to_string(),
    }
}

/// The create body, in the document's field order; empty optional fields are left out.
#[derive(Serialize)]
pub struct CreateBody<'a> {
    /// `wx` or `alipay`.
    pub channel: &'a str,
    /// `h5`, `pc` or `scan`.
    pub platform: &'a str,
    /// Integer fen.
    pub money: i64,
    /// The payer's IPv4 address.
    pub client_ip: &'a str,
    /// Where the notify goes.
    pub notify_url: &'a str,
    /// A title.
    #[serde(skip_serializing_if = "str::is_empty")]
    pub subject: &'a str,
    /// Our order number.
    #[serde(skip_serializing_if = "str::is_empty")]
    pub client_out_trade_no: &'a str,
}

impl CreateBody<'_> {
    /// The signature input for this body.
    pub fn sign_input<'s>(&'s self, ts: &'s str) -> SignInput<'s> {
        SignInput::Create {
            channel: self.channel,
            client_ip: self.client_ip,
            client_out_trade_no: self.client_out_trade_no,
            money: Fen(self.money),
            notify_url: self.notify_url,
            platform: self.platform,
            subject: self.subject,
            ts,
        }
    }
}

/// Maps an order `status`, as text (`"paid"`) or a number's text (`"1"`).
///
/// v1's document spells them `unpaid`, `paid`, `expired`, `refunding`, `refunded`; the seed's
/// own example answers with numbers, read with v2's notify table (0 unpaid, 1 paid, 2 failed,
/// 3 expired); the JS SDK checks `pay_success`.
pub fn map_status(raw: &str) -> ProviderState {
    match raw.trim() {
        "unpaid" | "0" => ProviderState::Pending,
        "paid" | "pay_success" | "1" => ProviderState::Paid,
        "2" => ProviderState::Failed,
        "expired" | "3" => ProviderState::Expired,
        // Money came and is being (or was) returned. A paid order stays paid (paid is
        // terminal here), and on an order we never saw paid a refund is no evidence of a
        // sale: leave the order as it is and keep the raw code in its log.
        "refunding" | "refunded" => ProviderState::Unknown(raw.trim().to_string()),
        other => ProviderState::Unknown(other.to_string()),
    }
}

/// Checks the HTTP status and the `{code, msg, data}` envelope; returns the whole JSON when
/// `code` is 200.
///
/// # Errors
/// [`ProviderError::HttpStatus`], [`ProviderError::Decode`], or [`ProviderError::Rejected`]
/// with the provider's code and its message and meaning.
pub fn envelope(status: u16, body: &[u8]) -> Result<Value, ProviderError> {
    let json = wire::parse_json(body);
    if !(200..300).contains(&status) {
        // The provider's own error JSON says more than the bare status.
        if let Ok(value) = &json
            && let Some(code) = value.get("code").and_then(wire::as_int)
            && code != 200
        {
            return Err(rejected(code, value));
        }
        return Err(ProviderError::HttpStatus { status });
    }
    let value = json?;
    match value.get("code").and_then(wire::as_int) {
        Some(200) => Ok(value),
        Some(code) => Err(rejected(code, &value)),
        None => Err(ProviderError::Decode {
            reason: format!(
                "no `code` field: {}",
                wire::excerpt(&String::from_utf8_lossy(body))
            ),
        }),
    }
}

fn rejected(code: i64, value: &Value) -> ProviderError {
    let msg = wire::non_empty(value, "msg");
    let message = match (msg, code_meaning(code)) {
        (Some(msg), Some(meaning)) => format!("{msg} ({meaning})"),
        (Some(msg), None) => msg,
        (None, Some(meaning)) => meaning.to_string(),
        (None, None) => "(no message)".to_string(),
    };
    ProviderError::Rejected {
        code: code.to_string(),
        message,
    }
}

/// The `data` object of an answer.
///
/// # Errors
/// [`ProviderError::Decode`] when it is missing or not an object.
pub fn data(value: &Value) -> Result<&Map<String, Value>, ProviderError> {
    value
        .get("data")
        .and_then(Value::as_object)
        .ok_or_else(|| ProviderError::Decode {
            reason: "answer has no `data` object".into(),
        })
}

/// A field of `data` as signature text (see [`field_text`]), when non-empty.
pub fn text_of(data: &Map<String, Value>, key: &str) -> Option<String> {
    data.get(key)
        .map(field_text)
        .filter(|text| !text.is_empty())
}

/// `expire_time - create_time` in seconds, when both are there and in order.
pub fn lifetime_secs(data: &Map<String, Value>) -> Option<u64> {
    let expire = data.get("expire_time").and_then(wire::as_int)?;
    let create = data.get("create_time").and_then(wire::as_int)?;
    (create > 0 && expire > create)
        .then(|| u64::try_from(expire - create).ok())
        .flatten()
}

/// What a `pay_body` holds, as far as a till can use it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PayBody {
    /// A link the payer's phone opens (WeChat H5 `wx.tenpay.com`, a native `weixin://` or
    /// `https://qr.alipay.com/` code).
    Url(String),
    /// An HTML form with an auto-submit script (Alipay `openapi.alipay.com`), as a whole page.
    Page(String),
}

/// URL schemes a phone's camera or wallet can open from a QR.
const QR_SCHEMES: &[&str] = &["http", "https", "weixin", "alipays", "alipay"];

/// Reads a `pay_body`.
///
/// # Errors
/// [`ProviderError::Decode`] for an empty body, an in-app payload (JSON for an official
/// account, an app order string) or anything else a QR cannot carry.
pub fn pay_body(text: &str) -> Result<PayBody, ProviderError> {
    let text = text.trim();
    if text.is_empty() {
        return Err(ProviderError::Decode {
            reason: "create answer has an empty `pay_body`".into(),
        });
    }
    if text.starts_with('<') {
        return Ok(PayBody::Page(as_page(text)));
    }
    if !text.contains(char::is_whitespace)
        && let Ok(url) = url::Url::parse(text)
        && QR_SCHEMES.contains(&url.scheme())
    {
        return Ok(PayBody::Url(text.to_string()));
    }
    let hint = if text.starts_with('{') {
        "a JSON payload for a payment inside WeChat or an app, which a till cannot show as a QR; use platform h5, pc or scan"
    } else {
        "neither a link nor an HTML form"
    };
    Err(ProviderError::Decode {
        reason: format!("`pay_body` is {hint}: {}", wire::excerpt(text)),
    })
}

/// A provider's form fragment as a whole page for a phone (UTF-8, phone-sized); a whole
/// document is kept as it is.
fn as_page(html: &str) -> String {
    let head = html.get(..16).unwrap_or(html).to_ascii_lowercase();
    if head.starts_with("<!doctype") || head.starts_with("<html") {
        return html.to_string();
    }
    // The provider's own form and script go in unchanged: the wallet signed them.
    format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width\">\
         <title>正在跳转支付… / Opening the payment page…</title></head><body>{html}</body></html>"
    )
}
