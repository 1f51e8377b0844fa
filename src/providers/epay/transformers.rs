//! 易支付 / epay merchant protocol, MD5 version (PROVIDERS.md §6): the `type` codes, the sorted
//! `k=v` signature with the key appended directly, the `{code, msg, …}` answers, the query's
//! `status` and the notify's `trade_status`.
//!
//! Invariants: every signed message is listed below as data, with its fields in signing order
//! (sorted by name, byte order); empty values are never signed, nor are `sign` and
//! `sign_type`; only `status` 1 (query) and `trade_status` `TRADE_SUCCESS` (notify) map to
//! paid.

use serde_json::Value;

use crate::model::{Channel, ProviderState};
use crate::providers::ProviderError;
use crate::providers::sign::md5_concat;
use crate::providers::wire;
use crate::secret::Secret;

/// The `type` per wallet: `alipay`, `wxpay`, `qqpay`. Some platforms add `bank` and `jdpay`,
/// which are no wallet a till's QR serves, so UnionPay is not offered.
pub fn pay_type(channel: Channel) -> Option<&'static str> {
    match channel {
        Channel::Alipay => Some("alipay"),
        Channel::Wechat => Some("wxpay"),
        Channel::Qq => Some("qqpay"),
        Channel::Unionpay => None,
    }
}

/// The `device` values the till may send (the Go client's list): `pc` (the default, which
/// makes platforms answer with a QR code where they can), `mobile` and `wechat`.
pub const DEVICES: &[&str] = &["pc", "mobile", "wechat"];

/// The `device` sent unless the config says otherwise.
pub const DEFAULT_DEVICE: &str = "pc";

/// The `name` sent when the sale has no subject (the platform requires one).
pub const DEFAULT_NAME: &str = "qrtill";

/// The longest `name` the platform keeps, in bytes (it cuts longer ones).
pub const MAX_NAME_BYTES: usize = 127;

/// The only `trade_status` that means paid.
pub const TRADE_SUCCESS: &str = "TRADE_SUCCESS";

/// `text` cut to at most `max` bytes on a character boundary.
pub fn cut_to_bytes(text: &str, max: usize) -> &str {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.get(..end).unwrap_or_default()
}

/// The messages epay signs. The signature is `md5(k1=v1&k2=v2…` + `key)`: the non-empty
/// fields but `sign` and `sign_type`, sorted by name, joined with raw (not URL-encoded)
/// values, and the merchant key appended directly, with no `&key=`.
pub enum SignInput<'a> {
    /// `POST mapi.php`: the create fields, listed in signing (name) order.
    Create {
        /// The payer's IP address (the till sends its configured one).
        clientip: &'a str,
        /// `pc`, `mobile` or `wechat`.
        device: &'a str,
        /// Two-decimal yuan.
        money: &'a str,
        /// The order's title.
        name: &'a str,
        /// Where the notify goes.
        notify_url: &'a str,
        /// Our order number.
        out_trade_no: &'a str,
        /// The merchant id.
        pid: &'a str,
        /// Where the payer's browser returns; empty (so neither sent nor signed) unless
        /// configured.
        return_url: &'a str,
        /// `alipay`, `wxpay` or `qqpay` (the field is named `type`).
        pay_type: &'a str,
    },
    /// A message as received (a notify at the till, a create at the sandbox): every
    /// parameter, whatever its name.
    Received {
        /// The decoded parameters.
        params: &'a [(String, String)],
    },
}

impl SignInput<'_> {
    /// The signed `k=v` pairs: empty values, `sign` and `sign_type` dropped, sorted by name.
    pub fn fields(&self) -> Vec<(String, String)> {
        let mut pairs: Vec<(String, String)> = match self {
            SignInput::Create {
                clientip,
                device,
                money,
                name,
                notify_url,
                out_trade_no,
                pid,
                return_url,
                pay_type,
            } => [
                ("clientip", clientip),
                ("device", device),
                ("money", money),
                ("name", name),
                ("notify_url", notify_url),
                ("out_trade_no", out_trade_no),
                ("pid", pid),
                ("return_url", return_url),
                ("type", pay_type),
            ]
            .into_iter()
            .map(|(key, value)| (key.to_string(), value.to_string()))
            .collect(),
            SignInput::Received { params } => params.to_vec(),
        };
        pairs.retain(|(key, value)| !value.is_empty() && key != "sign" && key != "sign_type");
        // `str` orders by bytes: the ASCII order the document asks for (PHP's ksort).
        pairs.sort_by(|a, b| a.0.cmp(&b.0));
        pairs
    }

    /// The text that is hashed before the key: `k1=v1&k2=v2…`.
    pub fn prestr(&self) -> String {
        self.fields()
            .iter()
            .map(|(key, value)| format!("{key}={value}"))
            .collect::<Vec<_>>()
            .join("&")
    }

    /// The signature: 32 lowercase hex digits.
    pub fn sign(&self, key: &Secret) -> String {
        md5_concat(&[&self.prestr(), key.expose()])
    }
}

/// Maps the query's `status`: `1` paid, `0` unpaid; anything else is unknown (the document
/// lists no other value).
pub fn map_status(raw: &str) -> ProviderState {
    match raw.trim() {
        "1" => ProviderState::Paid,
        "0" => ProviderState::Pending,
        other => ProviderState::Unknown(other.to_string()),
    }
}

/// Maps a notify's `trade_status`: only `TRADE_SUCCESS` is paid; anything else is unknown
/// and leaves the order as it is.
pub fn map_trade_status(raw: &str) -> ProviderState {
    if raw == TRADE_SUCCESS {
        ProviderState::Paid
    } else {
        ProviderState::Unknown(raw.to_string())
    }
}

/// What the platform's error codes mean, for staff (the original `api.php`: -1 no such
/// order, -2 key refused, -3 unknown merchant id, -5 unknown `act`; `mapi.php` answers -1
/// with its own words).
pub fn code_meaning(code: i64) -> Option<&'static str> {
    Some(match code {
        -2 => "商户密钥错误 / the merchant key was refused: check `key`",
        -3 => "商户ID不存在 / unknown merchant id: check `pid`",
        -5 => "接口不存在 / the platform does not know this call: check `base_url`",
        _ => return None,
    })
}

/// What kind of trouble a documented refusal code is: -2 the merchant key, -3 an unknown
/// merchant id (the platform's `-1` is any refusal: its words decide).
pub fn refusal_kind(code: i64) -> Option<crate::providers::health::FailureKind> {
    matches!(code, -2 | -3).then_some(crate::providers::health::FailureKind::Authorization)
}

/// Whether a refusal's words say "no such order" (`订单号不存在`, `订单不存在`).
pub fn says_no_such_order(message: &str) -> bool {
    message.contains("订单") && message.contains("不存在")
}

/// Checks the HTTP status and the `{code, msg}` answer; returns the JSON when `code` is 1.
///
/// # Errors
/// [`ProviderError::HttpStatus`], [`ProviderError::Decode`] (not JSON, no `code`), or
/// [`ProviderError::Rejected`] with the platform's code and its `msg` (and what the code
/// means, when known).
pub fn envelope(status: u16, body: &[u8]) -> Result<Value, ProviderError> {
    let json = wire::parse_json(body);
    if !(200..300).contains(&status) {
        // The platform's own error JSON says more than the bare status.
        if let Ok(value) = &json
            && let Some(code) = value.get("code").and_then(wire::as_int)
            && code != 1
        {
            return Err(rejected(code, value));
        }
        return Err(ProviderError::HttpStatus { status });
    }
    let value = json?;
    if !value.is_object() {
        return Err(ProviderError::Decode {
            reason: format!(
                "answer is not a JSON object: {}",
                wire::excerpt(&String::from_utf8_lossy(body))
            ),
        });
    }
    match value.get("code").and_then(wire::as_int) {
        Some(1) => Ok(value),
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

/// What a create answer offers the payer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PayTarget {
    /// `qrcode`: content for a QR the wallet reads directly.
    QrCode(String),
    /// `payurl`: the platform's jump page, which the payer's browser opens.
    PayUrl(String),
    /// `urlscheme`: a mini-program scheme, which a till cannot use.
    UrlScheme(String),
}

/// Reads the pay target of a create answer: `qrcode` first, then `payurl`, then `urlscheme`.
///
/// # Errors
/// [`ProviderError::Decode`] when none is there, or `payurl` is not an http(s) link.
pub fn pay_target(value: &Value) -> Result<PayTarget, ProviderError> {
    if let Some(qrcode) = wire::non_empty(value, "qrcode") {
        return Ok(PayTarget::QrCode(qrcode.trim().to_string()));
    }
    if let Some(payurl) = wire::non_empty(value, "payurl") {
        let payurl = payurl.trim().to_string();
        return match url::Url::parse(&payurl) {
            Ok(url) if matches!(url.scheme(), "http" | "https") => Ok(PayTarget::PayUrl(payurl)),
            _ => Err(ProviderError::Decode {
                reason: format!(
                    "`payurl` is not an http(s) link: {}",
                    wire::excerpt(&payurl)
                ),
            }),
        };
    }
    if let Some(scheme) = wire::non_empty(value, "urlscheme") {
        return Ok(PayTarget::UrlScheme(scheme));
    }
    Err(ProviderError::Decode {
        reason: "create answer has none of `qrcode`, `payurl`, `urlscheme`".into(),
    })
}
