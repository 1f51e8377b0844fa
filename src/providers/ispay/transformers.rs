//! ispay.in v1 wire format (seed 000, PROVIDERS.md §1a): channel codes, the signed field
//! lists, the state table and the JSON envelopes.
//!
//! Invariant: every signed message is listed below as data in its signing order, and only
//! state 9 maps to paid.

use base64::Engine as _;
use serde_json::Value;

use crate::model::{Channel, ProviderState, QrPayload};
use crate::providers::sign::md5_concat;
use crate::providers::wire::{self, as_int, non_empty};
use crate::providers::{ProviderError, StatusReport};
use crate::secret::Secret;

/// `order_type` per channel: P901 Alipay, P902 WeChat, P904 UnionPay (云闪付). The seed offers
/// no QQ code, so QQ is not offered.
pub fn order_type(channel: Channel) -> Option<&'static str> {
    match channel {
        Channel::Alipay => Some("P901"),
        Channel::Wechat => Some("P902"),
        Channel::Unionpay => Some("P904"),
        Channel::Qq => None,
    }
}

/// The messages ispay.in signs, each with its fields in signing order.
pub enum SignInput<'a> {
    /// Create: `md5(userid + order_no + order_type + amount + return_url + key)`.
    Create {
        /// Merchant id.
        userid: &'a str,
        /// Our order number.
        order_no: &'a str,
        /// P901/P902/P904.
        order_type: &'a str,
        /// Two-decimal yuan.
        amount: &'a str,
        /// The return URL exactly as sent.
        return_url: &'a str,
    },
    /// Look-up by our order number (`/order/{userid}/{order_no}/{md5}`) and the notify:
    /// `md5(userid + order_no + key)`.
    OrderNo {
        /// Merchant id.
        userid: &'a str,
        /// Our order number.
        order_no: &'a str,
    },
}

impl SignInput<'_> {
    /// The signature: lowercase hex MD5 of the fields and the key, concatenated.
    pub fn sign(&self, key: &Secret) -> String {
        match self {
            SignInput::Create {
                userid,
                order_no,
                order_type,
                amount,
                return_url,
            } => md5_concat(&[
                userid,
                order_no,
                order_type,
                amount,
                return_url,
                key.expose(),
            ]),
            SignInput::OrderNo { userid, order_no } => {
                md5_concat(&[userid, order_no, key.expose()])
            }
        }
    }
}

/// Maps an order state. The seed lists 1, 2, 5, 8, 9; the demo code adds 3, 4, 6, 7.
pub fn map_state(state: i64) -> ProviderState {
    match state {
        // 1/2: accepted, no QR yet (the demo calls 2 "QR issued"); 5: QR issued, waiting.
        1 | 2 | 5 => ProviderState::Pending,
        // 8: the payer says it paid; not confirmed. Never paid on its own.
        8 => ProviderState::Confirming,
        9 => ProviderState::Paid,
        // 3: cancelled by the payer.
        3 => ProviderState::Cancelled,
        // 4: nobody took the order in time; 6: not paid in time.
        4 | 6 => ProviderState::Expired,
        // 7: payment restricted, order closed.
        7 => ProviderState::Failed,
        other => ProviderState::Unknown(other.to_string()),
    }
}

/// Checks an HTTP status and the `success` envelope; returns the JSON on success.
///
/// # Errors
/// [`ProviderError::HttpStatus`], [`ProviderError::Decode`], or [`ProviderError::Rejected`]
/// with the provider's `errorCode` and `errorMsg`.
pub fn envelope(status: u16, body: &[u8]) -> Result<Value, ProviderError> {
    let json = wire::parse_json(body);
    if !(200..300).contains(&status) {
        // A provider's own error JSON is more useful than the bare status.
        if let Ok(value) = &json
            && value.get("success") == Some(&Value::Bool(false))
        {
            return Err(rejected(value));
        }
        return Err(ProviderError::HttpStatus { status });
    }
    let value = json?;
    match value.get("success") {
        Some(Value::Bool(true)) => Ok(value),
        Some(Value::Bool(false)) => Err(rejected(&value)),
        _ => Err(ProviderError::Decode {
            reason: format!(
                "no `success` field: {}",
                wire::excerpt(&String::from_utf8_lossy(body))
            ),
        }),
    }
}

fn rejected(value: &Value) -> ProviderError {
    ProviderError::Rejected {
        code: value
            .get("errorCode")
            .and_then(wire::as_text)
            .unwrap_or_else(|| "?".into()),
        message: non_empty(value, "errorMsg").unwrap_or_else(|| "(no message)".into()),
    }
}

/// Reads a `/query/{id}`, `/qrcode/{id}` or `/order/…` answer: the state sits at the top
/// (`/query`) or inside `order` (`/qrcode`, `/order`).
///
/// # Errors
/// [`ProviderError::Decode`] when no state can be found.
pub fn status_report(value: &Value) -> Result<StatusReport, ProviderError> {
    let order = value.get("order").unwrap_or(&Value::Null);
    let state = value
        .get("state")
        .and_then(as_int)
        .or_else(|| order.get("state").and_then(as_int))
        .ok_or_else(|| ProviderError::Decode {
            reason: "answer has no `state`".into(),
        })?;
    Ok(StatusReport {
        state: map_state(state),
        raw_code: state.to_string(),
        provider_order_id: None,
        qr: qr_payload(order),
        amount: order.get("amount").and_then(wire::as_fen),
        timeout_secs: order
            .get("timeout")
            .and_then(as_int)
            .and_then(|t| u64::try_from(t).ok())
            .filter(|t| *t > 0),
    })
}

/// The QR from an `order` object: the `qrcode` text when present (rendered locally, sharp at
/// any size), else the `imgtext` picture, as a bare base64 string or a data URI.
pub fn qr_payload(order: &Value) -> Option<QrPayload> {
    if let Some(text) = non_empty(order, "qrcode") {
        return Some(QrPayload::Text(text));
    }
    let img = non_empty(order, "imgtext")?;
    decode_image_text(&img).map(QrPayload::Image)
}

/// Decodes `imgtext`: `data:image/png;base64,AAAA…` or bare `AAAA…`.
pub fn decode_image_text(text: &str) -> Option<Vec<u8>> {
    let data = match text.split_once(";base64,") {
        Some((head, data)) if head.starts_with("data:") => data,
        _ => text,
    };
    let compact: String = data.chars().filter(|c| !c.is_whitespace()).collect();
    base64::engine::general_purpose::STANDARD
        .decode(compact.as_bytes())
        .ok()
        .filter(|bytes| !bytes.is_empty())
}
