//! igepay wire format (seed 001, PROVIDERS.md §2a): channel codes, the signed field lists
//! and the notify's codes.
//!
//! Invariant: the create `key` is the MD5 of the sent parameters' values sorted by their
//! names with the token among them; the notify `sign` is `md5(order_id + price + token)`;
//! only `code` `0000` is paid.

use crate::model::{Channel, ProviderState};
use crate::providers::sign::md5_concat;
use crate::secret::Secret;

/// `type` per channel: 1 WeChat Pay, 2 Alipay (the reverse of PaysApi's `istype`).
pub fn channel_type(channel: Channel) -> Option<&'static str> {
    match channel {
        Channel::Wechat => Some("1"),
        Channel::Alipay => Some("2"),
        Channel::Unionpay | Channel::Qq => None,
    }
}

/// The messages igepay signs.
pub enum SignInput<'a> {
    /// Create `key`: the values of every sent parameter plus the token, ordered by parameter
    /// name. With every parameter we send: `notify_url`, `order_id`, `order_name`, `price`,
    /// `return_url`, `token`, `type`, `uid` (`order_uid`, never sent, would sort between
    /// `order_name` and `price`).
    Create {
        /// Sent parameters as (name, value), any order; the token is added here.
        params: &'a [(&'a str, &'a str)],
    },
    /// Notify `sign`: `md5(order_id + price + token)`.
    Notify {
        /// Our order number, as received.
        order_id: &'a str,
        /// The price, as received.
        price: &'a str,
    },
}

impl SignInput<'_> {
    /// The signature, lowercase hex.
    pub fn sign(&self, token: &Secret) -> String {
        match self {
            SignInput::Create { params } => {
                let mut named: Vec<(&str, &str)> = params.to_vec();
                named.push(("token", token.expose()));
                named.sort_by(|a, b| a.0.cmp(b.0));
                let values: Vec<&str> = named.iter().map(|(_, value)| *value).collect();
                md5_concat(&values)
            }
            SignInput::Notify { order_id, price } => md5_concat(&[order_id, price, token.expose()]),
        }
    }
}

/// Maps the notify's `code`: only `0000` is success; anything else is a code we do not know
/// (the seed defines no other), which leaves the order as it is.
pub fn map_code(code: &str) -> ProviderState {
    match code {
        "0000" => ProviderState::Paid,
        other => ProviderState::Unknown(other.to_string()),
    }
}
