//! V免签 (vmq) wire format (PROVIDERS.md §7): wallet codes, the signed field lists, the order
//! state table, the `{code, msg, data}` envelope with its refusals in plain words, and the
//! monitor state of `getState`.
//!
//! Invariants: every signed message is listed below as data in its signing order, signed over
//! the strings exactly as sent or received; only states 1 and 2 (both mean the money arrived)
//! map to paid; any state this table does not know is [`ProviderState::Unknown`].

use serde_json::Value;

use crate::model::{Channel, Fen, ProviderState, QrPayload};
use crate::providers::sign::md5_concat;
use crate::providers::wire::{self, as_int, non_empty};
use crate::providers::{AccountStatus, ProviderError, StatusReport};
use crate::secret::Secret;

/// The `code` of a successful answer; every refusal is `-1`.
pub const CODE_OK: i64 = 1;

/// The `type` value per channel: `1` WeChat, `2` Alipay; V免签 watches no other wallet.
pub fn pay_type(channel: Channel) -> Option<&'static str> {
    match channel {
        Channel::Wechat => Some("1"),
        Channel::Alipay => Some("2"),
        Channel::Unionpay | Channel::Qq => None,
    }
}

/// The messages V免签 signs, each with its fields in signing order; every signature is
/// `md5(fields… + key)`, lowercase hex.
pub enum SignInput<'a> {
    /// `createOrder`: `payId + param + type + price`, with `price` exactly as sent and an
    /// empty `param` when none is sent.
    Create {
        /// Our order number.
        pay_id: &'a str,
        /// The `param` sent ("" when none is sent).
        param: &'a str,
        /// `1` WeChat, `2` Alipay.
        pay_type: &'a str,
        /// Yuan, exactly as sent.
        price: &'a str,
    },
    /// The notify (and `checkOrder`'s return link): `payId + param + type + price +
    /// reallyPrice`, each exactly as received (the server formats the amounts itself).
    Notify {
        /// Our order number.
        pay_id: &'a str,
        /// `param`, echoed.
        param: &'a str,
        /// `1` WeChat, `2` Alipay.
        pay_type: &'a str,
        /// The order's price as the server prints it (`0.1`, `10`, `10.0`).
        price: &'a str,
        /// The amount the customer had to pay, as the server prints it.
        really_price: &'a str,
    },
    /// `closeOrder`: `orderId` (V免签's own order id).
    Close {
        /// V免签's order id.
        order_id: &'a str,
    },
    /// `getState`: `t` (any timestamp the caller chooses).
    State {
        /// The timestamp exactly as sent.
        t: &'a str,
    },
}

impl SignInput<'_> {
    /// The fields before the key, in signing order.
    fn fields(&self) -> Vec<&str> {
        match self {
            SignInput::Create {
                pay_id,
                param,
                pay_type,
                price,
            } => vec![pay_id, param, pay_type, price],
            SignInput::Notify {
                pay_id,
                param,
                pay_type,
                price,
                really_price,
            } => vec![pay_id, param, pay_type, price, really_price],
            SignInput::Close { order_id } => vec![order_id],
            SignInput::State { t } => vec![t],
        }
    }

    /// The signature: `md5(fields… + key)`, lowercase hex.
    pub fn sign(&self, key: &Secret) -> String {
        let mut parts = self.fields();
        parts.push(key.expose());
        md5_concat(&parts)
    }
}

/// Maps an order `state`: `-1` expired or closed, `0` waiting, `1` paid, `2` paid but the
/// server's own notify failed (the money still arrived); anything else is unknown.
pub fn map_state(state: i64) -> ProviderState {
    match state {
        0 => ProviderState::Pending,
        1 | 2 => ProviderState::Paid,
        // The server does not say whether time or `closeOrder` ended it; both free the
        // amount slot, and for the till both mean "no payment will match any more".
        -1 => ProviderState::Expired,
        other => ProviderState::Unknown(other.to_string()),
    }
}

/// Refusal messages (as the PHP and Java servers word them) with what they mean for staff.
/// Matched by substring: the servers add their own suffixes (`，请检查`, `！`).
const REFUSALS: &[(&str, &str)] = &[
    (
        "监控端状态异常",
        "V免签监控端离线：收款手机上的监控App不在线，付款无法被确认，请检查手机 / the V免签 monitor phone is offline, so no payment could be seen: check the monitor app on the shop's phone",
    ),
    (
        "订单超出负荷",
        "同一金额的待付订单太多，没有空闲的金额，请稍后再试 / too many unpaid orders for this amount (no free amount slot left): try again in a few minutes",
    ),
    (
        "所有金额均被占用",
        "同一金额的待付订单太多，没有空闲的金额，请稍后再试 / too many unpaid orders for this amount (no free amount slot left): try again in a few minutes",
    ),
    (
        "签名",
        "签名不对：配置中的 key 与V免签后台的通讯密钥不一致 / signature refused: the config's `key` is not this server's 通讯密钥",
    ),
    (
        "商户订单号已存在",
        "此订单号已在V免签服务器上使用过 / this order number was already used at the V免签 server",
    ),
    (
        "请您先进入后台配置程序",
        "V免签服务器尚未配置收款码：请先在后台上传微信/支付宝收款码 / the V免签 server is not set up: upload the wallet QR codes in its back office first",
    ),
    (
        "订单状态不允许关闭",
        "订单已不是待支付状态（可能已付款或已过期），无法关闭 / the order is no longer waiting (paid or expired meanwhile), so it cannot be closed",
    ),
];

/// The provider's refusal message with what it means, for staff.
pub fn plain_words(message: &str) -> String {
    match REFUSALS.iter().find(|(needle, _)| message.contains(needle)) {
        Some((_, words)) => format!("{words} ({message})"),
        None => message.to_string(),
    }
}

/// Checks the HTTP status and the `{code, msg, data}` envelope; returns the whole answer when
/// `code` is 1.
///
/// # Errors
/// [`ProviderError::HttpStatus`], [`ProviderError::Decode`] for a body that is not the
/// envelope (an HTML page, a redirect script, a cut-off body), or
/// [`ProviderError::Rejected`] with the server's code and its message in plain words.
pub fn envelope(status: u16, body: &[u8]) -> Result<Value, ProviderError> {
    let json = wire::parse_json(body);
    if !(200..300).contains(&status) {
        // The server's own refusal says more than the bare status.
        if let Ok(value) = &json
            && let Some(code) = value.get("code").and_then(as_int)
            && code != CODE_OK
        {
            return Err(rejected(code, value));
        }
        return Err(ProviderError::HttpStatus { status });
    }
    let value = json?;
    match value.get("code").and_then(as_int) {
        Some(CODE_OK) => Ok(value),
        Some(code) => Err(rejected(code, &value)),
        None => Err(ProviderError::Decode {
            reason: format!(
                "no `code` field: {}",
                wire::excerpt(&String::from_utf8_lossy(body))
            ),
        }),
    }
}

/// The refusal of an answer whose `code` is not 1.
pub fn rejected(code: i64, value: &Value) -> ProviderError {
    ProviderError::Rejected {
        code: code.to_string(),
        message: plain_words(
            &non_empty(value, "msg").unwrap_or_else(|| "(no message)".to_string()),
        ),
    }
}

/// Whether a refusal is the server's "no such order" (`云端订单编号不存在`).
pub fn is_not_found(message: &str) -> bool {
    message.contains("不存在")
}

/// The `data` object of an order answer (`createOrder`, `getOrder`), read leniently: the PHP
/// server sends most values as strings, the Java server as numbers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OrderData {
    /// V免签's order id.
    pub order_id: Option<String>,
    /// The wallet QR content (`payUrl`).
    pub pay_url: Option<String>,
    /// What the customer must pay (`reallyPrice`).
    pub really_price: Option<Fen>,
    /// The raw `state`, when it is an integer.
    pub state: Option<i64>,
    /// `timeOut` (minutes) in seconds.
    pub timeout_secs: Option<u64>,
}

/// Reads an answer's `data` object.
///
/// # Errors
/// [`ProviderError::Decode`] when `data` is missing, or `reallyPrice` is present but not an
/// amount (the customer must pay exactly it, so it is never guessed).
pub fn order_data(value: &Value) -> Result<OrderData, ProviderError> {
    let data = value
        .get("data")
        .filter(|data| data.is_object())
        .ok_or_else(|| ProviderError::Decode {
            reason: "answer has no `data` object".into(),
        })?;
    let really_price = match data.get("reallyPrice").and_then(wire::as_text) {
        None => None,
        Some(text) => Some(Fen::parse_wire(&text).map_err(|err| ProviderError::Decode {
            reason: format!("`reallyPrice` `{}`: {err}", wire::excerpt(&text)),
        })?),
    };
    Ok(OrderData {
        order_id: non_empty(data, "orderId"),
        pay_url: non_empty(data, "payUrl"),
        really_price,
        state: data.get("state").and_then(as_int),
        timeout_secs: data
            .get("timeOut")
            .and_then(as_int)
            .and_then(|minutes| u64::try_from(minutes).ok())
            .filter(|minutes| *minutes > 0)
            .map(|minutes| minutes.saturating_mul(60)),
    })
}

/// A `getOrder` answer as a status report.
///
/// # Errors
/// [`ProviderError::Decode`] when the answer has no integer `state`.
pub fn status_report(value: &Value) -> Result<StatusReport, ProviderError> {
    let data = order_data(value)?;
    let state = data.state.ok_or_else(|| ProviderError::Decode {
        reason: "order answer has no integer `state`".into(),
    })?;
    Ok(StatusReport {
        state: map_state(state),
        raw_code: state.to_string(),
        provider_order_id: data.order_id,
        qr: data.pay_url.map(QrPayload::Text),
        amount: data.really_price,
        timeout_secs: data.timeout_secs,
    })
}

/// The monitor phone's state from `getState`: `jkstate` (PHP) or `state` (Java); `1`
/// online, `0` offline (no heartbeat for 60 s), `-1` never bound. Offline and never bound
/// refuse charges: no payment would be seen. An unknown value is shown but refuses nothing.
///
/// # Errors
/// [`ProviderError::Decode`] when neither key holds an integer.
pub fn monitor_status(value: &Value) -> Result<AccountStatus, ProviderError> {
    let data = value.get("data").unwrap_or(&Value::Null);
    let state = data
        .get("jkstate")
        .and_then(as_int)
        .or_else(|| data.get("state").and_then(as_int))
        .ok_or_else(|| ProviderError::Decode {
            reason: "getState answer has no `jkstate` or `state`".into(),
        })?;
    let (message, refuse) = match state {
        1 => ("V免签监控端在线 / monitor phone online".to_string(), false),
        0 => (
            "V免签监控端离线，暂停收款：请检查收款手机上的监控App / the V免签 monitor phone is offline: charges are paused until it is back (check the monitor app on the shop's phone)".to_string(),
            true,
        ),
        -1 => (
            "V免签监控端从未绑定，暂停收款：请先在收款手机上配置监控App / no monitor phone was ever bound to this V免签 server: charges are paused until the monitor app is set up".to_string(),
            true,
        ),
        other => (
            format!("V免签监控端状态未知 ({other}) / unknown monitor state {other}"),
            false,
        ),
    };
    Ok(AccountStatus {
        balance: None,
        refuse_charges: refuse.then(|| message.clone()),
        message: Some(message),
    })
}
