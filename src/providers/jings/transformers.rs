//! sun.jings.wang (阳光支付) v1 wire format (seed 004, PROVIDERS.md §5a): the paths, the
//! `paytype` table, the four signed messages, the query status table, Beijing time for
//! `reqtime`, and the readers of the query and balance answers.
//!
//! Invariants: every signed message is listed below as data, in its signing order; the key
//! is `md5("name=value&…&token=TOKEN")` over the raw (not URL-encoded) values, an empty
//! field keeping its `name=`; only query status `0` maps to paid, and `-2` (a failed query)
//! is never read as an order state.

use serde_json::Value;

use crate::model::{Channel, Fen, ProviderState};
use crate::providers::sign::md5_concat;
use crate::providers::wire::{self, as_int};
use crate::providers::{AccountStatus, ProviderError, QueryOutcome, StatusReport};
use crate::secret::Secret;

/// The pay page the payer's browser posts the signed form to.
pub const PAY_PATH: &str = "/pay.action";
/// The order status query (the provider's own spelling, `requst`).
pub const QUERY_PATH: &str = "/requstOrderStatus.action";
/// The balance query (the provider's own spelling, `requst`).
pub const BALANCE_PATH: &str = "/requstBalance.action";

/// The `paytype` the seed documents: 11, Alipay.
pub const DEFAULT_PAYTYPE: &str = "11";

/// The seed's byte limits on the pay form's fields (`ordername` 100, `orderinfo` 500 …).
pub const LIMITS: &[(&str, usize)] = &[
    ("orderid", 40),
    ("ordername", 100),
    ("paymoney", 14),
    ("orderuid", 40),
    ("notifyurl", 80),
    ("returnurl", 80),
    ("orderinfo", 500),
];

/// The byte limit of a pay-form field, when the seed gives one.
pub fn limit(field: &str) -> Option<usize> {
    LIMITS
        .iter()
        .find(|(name, _)| *name == field)
        .map(|(_, max)| *max)
}

/// The wallet a `paytype` pays with: `11` (the seed, and the production `zfbpost.php`) and
/// `21` (the PHP demo's `index.html`) are Alipay, `22` (the same demo) is WeChat. The codes
/// vary by deployment (PROVIDERS.md §5a), so anything else is refused at config time.
pub fn channel_for_paytype(paytype: &str) -> Option<Channel> {
    match paytype {
        "11" | "21" => Some(Channel::Alipay),
        "22" => Some(Channel::Wechat),
        _ => None,
    }
}

/// The messages the protocol signs, each with its fields in signing order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SignInput<'a> {
    /// The pay form (seed 1.1):
    /// `uid&orderid&ordername&paymoney&orderuid&paytype&notifyurl&returnurl&orderinfo&token`.
    Pay {
        /// Merchant id.
        uid: &'a str,
        /// Our order number.
        orderid: &'a str,
        /// Order name (may be empty).
        ordername: &'a str,
        /// Two-decimal yuan.
        paymoney: &'a str,
        /// The merchant's user id for the order (may be empty).
        orderuid: &'a str,
        /// The wallet code, e.g. `11`.
        paytype: &'a str,
        /// Where the notify goes, unencoded.
        notifyurl: &'a str,
        /// Where the payer's browser goes after paying, unencoded.
        returnurl: &'a str,
        /// Order note (may be empty).
        orderinfo: &'a str,
    },
    /// The notify (seed 1.2): `payid&orderid&orderuid&paymoney&realpay&token`.
    Notify {
        /// The provider's payment id.
        payid: &'a str,
        /// Our order number.
        orderid: &'a str,
        /// Echo of `orderuid`.
        orderuid: &'a str,
        /// Echo of `paymoney`.
        paymoney: &'a str,
        /// What was actually paid.
        realpay: &'a str,
    },
    /// The status query (seed 1.4): `orderid&uid&token`. INFERRED: the seed's example for
    /// this call is a copy of the pay example, so the parameter-table order is assumed.
    Query {
        /// Our order number.
        orderid: &'a str,
        /// Merchant id.
        uid: &'a str,
    },
    /// The balance query (seed 1.5): `uid&reqtime&token`, the space in `reqtime` kept raw.
    Balance {
        /// Merchant id.
        uid: &'a str,
        /// Beijing time, `YYYY-MM-DD HH:MM:SS`.
        reqtime: &'a str,
    },
}

impl<'a> SignInput<'a> {
    /// The signed fields, in signing order (the token is appended by [`SignInput::sign`]).
    pub fn fields(&self) -> Vec<(&'static str, &'a str)> {
        match *self {
            SignInput::Pay {
                uid,
                orderid,
                ordername,
                paymoney,
                orderuid,
                paytype,
                notifyurl,
                returnurl,
                orderinfo,
            } => vec![
                ("uid", uid),
                ("orderid", orderid),
                ("ordername", ordername),
                ("paymoney", paymoney),
                ("orderuid", orderuid),
                ("paytype", paytype),
                ("notifyurl", notifyurl),
                ("returnurl", returnurl),
                ("orderinfo", orderinfo),
            ],
            SignInput::Notify {
                payid,
                orderid,
                orderuid,
                paymoney,
                realpay,
            } => vec![
                ("payid", payid),
                ("orderid", orderid),
                ("orderuid", orderuid),
                ("paymoney", paymoney),
                ("realpay", realpay),
            ],
            SignInput::Query { orderid, uid } => vec![("orderid", orderid), ("uid", uid)],
            SignInput::Balance { uid, reqtime } => vec![("uid", uid), ("reqtime", reqtime)],
        }
    }

    /// The key: lowercase hex `md5("name=value&…&token=TOKEN")`, values raw.
    pub fn sign(&self, token: &Secret) -> String {
        let fields = self.fields();
        let mut parts: Vec<&str> = Vec::with_capacity(fields.len() * 4 + 2);
        for (index, (name, value)) in fields.iter().enumerate() {
            if index > 0 {
                parts.push("&");
            }
            parts.extend([*name, "=", *value]);
        }
        parts.extend(["&token=", token.expose()]);
        md5_concat(&parts)
    }
}

/// Maps a query `status`: `-1` waiting, `0` paid normally, `1` timed out. `-2` ("query
/// error") is not an order state: [`query_answer`] turns it into an error before this table
/// is read, so here it is as unknown as any other code.
pub fn map_status(status: i64) -> ProviderState {
    match status {
        -1 => ProviderState::Pending,
        0 => ProviderState::Paid,
        1 => ProviderState::Expired,
        other => ProviderState::Unknown(other.to_string()),
    }
}

/// Beijing time (UTC+8, the provider's clock) of a Unix time, as `reqtime` wants it:
/// `2018-09-02 12:35:06`.
pub fn beijing_time(now_unix: i64) -> String {
    let beijing = chrono::FixedOffset::east_opt(8 * 3600);
    match (chrono::DateTime::from_timestamp(now_unix, 0), beijing) {
        (Some(utc), Some(offset)) => utc
            .with_timezone(&offset)
            .format("%Y-%m-%d %H:%M:%S")
            .to_string(),
        // Outside chrono's range (year ±262143): no real clock gets there.
        _ => String::new(),
    }
}

/// A query string from pairs, percent-encoded, with a space as `%20` rather than `+` (the
/// provider's servlet decodes both the same in theory; `%20` is the one no server misreads).
pub fn query_string(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(name, value)| format!("{}={}", encode(name), encode(value)))
        .collect::<Vec<_>>()
        .join("&")
}

fn encode(text: &str) -> String {
    // `byte_serialize` writes a space as `+` and a literal `+` as `%2B`, so this swap is safe.
    url::form_urlencoded::byte_serialize(text.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}

/// Parses an answer's JSON after checking the HTTP status; a non-2xx answer that still
/// carries the provider's JSON with a `msg` is reported with that message.
fn answer_json(status: u16, body: &[u8], code_key: &str) -> Result<Value, ProviderError> {
    let json = wire::parse_json(body);
    if !(200..300).contains(&status) {
        if let Ok(value) = &json
            && let Some(message) = wire::non_empty(value, "msg")
        {
            return Err(ProviderError::Rejected {
                code: value
                    .get(code_key)
                    .and_then(wire::as_text)
                    .unwrap_or_else(|| format!("HTTP {status}")),
                message,
            });
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
    Ok(value)
}

/// Reads a status-query answer `{msg, orderid, payid, paymoney, realpay, status}`.
///
/// # Errors
/// [`ProviderError::Rejected`] with code `-2` and the provider's `msg` for a failed query
/// (bad key, unknown order, too frequent: the order's state is not known);
/// [`ProviderError::HttpStatus`]; [`ProviderError::Decode`] for a body that is not the
/// answer, has no readable `status`, or a `realpay` that is not an amount.
pub fn query_answer(status: u16, body: &[u8]) -> Result<QueryOutcome, ProviderError> {
    let value = answer_json(status, body, "status")?;
    let raw = value.get("status").ok_or_else(|| ProviderError::Decode {
        reason: format!(
            "query answer has no `status`: {}",
            wire::excerpt(&String::from_utf8_lossy(body))
        ),
    })?;
    let code = as_int(raw).ok_or_else(|| ProviderError::Decode {
        reason: format!("query `status` is not a number: {raw}"),
    })?;
    let message = wire::non_empty(&value, "msg");
    if code == -2 {
        return Err(ProviderError::Rejected {
            code: "-2".into(),
            message: message.unwrap_or_else(|| "查询异常 / query error".into()),
        });
    }
    // `realpay` is empty until something was paid; when present it must be an amount.
    let amount = match wire::non_empty(&value, "realpay") {
        None => None,
        Some(text) => Some(Fen::parse_wire(&text).map_err(|err| ProviderError::Decode {
            reason: format!("query `realpay` `{}`: {err}", wire::excerpt(&text)),
        })?),
    };
    Ok(QueryOutcome::Report(StatusReport {
        state: map_status(code),
        raw_code: code.to_string(),
        provider_order_id: wire::non_empty(&value, "payid"),
        qr: None,
        amount,
        timeout_secs: None,
    }))
}

/// Reads a balance answer `{balance, msg, reqtime, status, uid}`: status `0` is normal,
/// `1` is a refusal whose reason is in `msg`.
///
/// # Errors
/// [`ProviderError::Rejected`] for status `1` (or any code but `0`) with the provider's
/// `msg`; [`ProviderError::HttpStatus`]; [`ProviderError::Decode`] for a body that is not the
/// answer or a `balance` that is not an amount.
pub fn balance_answer(status: u16, body: &[u8]) -> Result<AccountStatus, ProviderError> {
    let value = answer_json(status, body, "status")?;
    let code = value
        .get("status")
        .and_then(as_int)
        .ok_or_else(|| ProviderError::Decode {
            reason: format!(
                "balance answer has no numeric `status`: {}",
                wire::excerpt(&String::from_utf8_lossy(body))
            ),
        })?;
    if code != 0 {
        return Err(ProviderError::Rejected {
            code: code.to_string(),
            message: wire::non_empty(&value, "msg").unwrap_or_else(|| "(no message)".into()),
        });
    }
    let text = wire::non_empty(&value, "balance").ok_or_else(|| ProviderError::Decode {
        reason: "balance answer has status 0 but no `balance`".into(),
    })?;
    let balance = Fen::parse_wire(&text).map_err(|err| ProviderError::Decode {
        reason: format!("`balance` `{}`: {err}", wire::excerpt(&text)),
    })?;
    Ok(AccountStatus {
        balance: Some(balance),
        message: None,
        refuse_charges: None,
    })
}
