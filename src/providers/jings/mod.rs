//! sun.jings.wang (阳光支付) v1 (seed 004, PROVIDERS.md §5a): the pay step is a signed form
//! the payer's own browser posts to `/pay.action` (the provider reads the payer's IP), the
//! POST notify carries a key over the paid amount, `/requstOrderStatus.action` answers at
//! most once a minute per order, and `/requstBalance.action` at most once every 3 minutes.
//!
//! Invariant: the notify is believed only after its key matched in constant time, and the
//! amount it reports (`realpay`) is covered by that key; the till never queries one order
//! more than once a minute.
//!
//! Choices where the seed is silent, UNKNOWN or INFERRED (each one line to change):
//! - Query key: INFERRED `md5("orderid=…&uid=…&token=…")` in the parameter table's order,
//!   because the seed's example for this call is a copy of the pay example.
//! - Query status `-2` ("查询异常", query error: bad key, unknown order, too frequent) is
//!   not an order state: it becomes [`ProviderError::Rejected`] with code `-2` and the
//!   provider's `msg`, so the order stays as it is and the till asks again later. It is
//!   never a "no such order" either, because the provider learns of an order only when the
//!   payer's browser posts the form, which may not have happened yet.
//! - `orderuid` and `orderinfo` are optional and the till has nothing to put there: both are
//!   sent empty (the key keeps `orderuid=` and `orderinfo=`). `ordername` is the sale's
//!   subject, cut to the seed's 100 bytes on a character boundary.
//! - `returnurl` is required but a till has no page to return to: without a configured
//!   `returnurl` the notify URL is sent (as with ispay), so the payer's browser lands on the
//!   listener, which shows nothing sensitive. Both URLs must fit the seed's 80 bytes.
//! - `paytype`: `11` (the seed) by default; `21`/`22` (the PHP demo's Alipay/WeChat) are
//!   also accepted. One account offers the one wallet its `paytype` names.
//! - The notify has no status field: a notify whose key matches is the provider's statement
//!   that the order was paid (seed 1.2 sends it "after the user paid"); its `raw_code` is
//!   `paid`. An empty `realpay` is refused (the seed marks it required), and so is a signed
//!   field sent twice (which value was signed is then unknowable).
//! - Ack: the seed accepts any HTTP 2xx; we answer `200 success`, and `400 fail` for a
//!   refused notify, so that the provider's 3 retries (1 min apart) cover a passing fault.
//! - Balance: `reqtime` is Beijing time (UTC+8) from `CallContext.now_unix`, checked every
//!   185 s (the seed's 3 minutes and a margin for clock and network).
//! - Query amounts: `realpay` when present, else none (the ledger then takes the order's
//!   amount); the query answer is not signed, as in the seed.

pub mod transformers;

use std::sync::Arc;
use std::time::Duration;

use self::transformers::{
    BALANCE_PATH, DEFAULT_PAYTYPE, PAY_PATH, QUERY_PATH, SignInput, balance_answer, beijing_time,
    channel_for_paytype, limit, query_answer, query_string,
};
use super::wire::{self, Table};
use super::{
    AccountStatus, CallContext, CallbackAck, CallbackReport, CallbackRequest, CreateOrder,
    CreateOutcome, CreateStep, Field, HttpRequest, HttpResponse, OrderRef, PayerForm, PollLimits,
    Provider, ProviderError, ProviderKind, QueryOutcome,
};
use crate::model::{Channel, Fen, OrderNo, ProviderState};
use crate::secret::{Secret, signatures_match};

/// The registry line.
pub const KIND: ProviderKind = ProviderKind {
    name: "jings",
    display_name: DISPLAY_NAME,
    fields: FIELDS,
    from_table,
};

/// The protocol's name for people.
const DISPLAY_NAME: &str = "sun.jings.wang 阳光支付";

/// The keys of this protocol's `[[provider]]` table.
const FIELDS: &[Field] = &[
    Field::optional("base_url"),
    Field::required("uid"),
    Field::secret("token"),
    Field::optional("paytype"),
    Field::optional("returnurl"),
];

/// The production host from the seed.
pub const DEFAULT_BASE_URL: &str = "https://sun.jings.wang";

/// The seed's limit: one status query per order per minute.
pub const QUERY_INTERVAL: Duration = Duration::from_secs(60);

/// The seed's limit on the balance query is once per 3 minutes; 5 s more is the margin.
pub const BALANCE_INTERVAL: Duration = Duration::from_secs(185);

/// The raw code a verified notify reports (the notify itself has no status field).
pub const NOTIFY_CODE: &str = "paid";

/// One sun.jings.wang merchant account.
#[derive(Debug, Clone)]
pub struct Jings {
    id: String,
    base_url: String,
    uid: String,
    token: Secret,
    paytype: String,
    channel: Channel,
    returnurl: Option<String>,
}

impl Jings {
    /// An account paying by `paytype` 11 (Alipay); `base_url` without a trailing slash.
    pub fn new(id: &str, base_url: &str, uid: &str, token: Secret) -> Self {
        Jings {
            id: id.to_string(),
            base_url: base_url.trim_end_matches('/').to_string(),
            uid: uid.to_string(),
            token,
            paytype: DEFAULT_PAYTYPE.to_string(),
            channel: Channel::Alipay,
            returnurl: None,
        }
    }

    /// Sets the `paytype` (and so the wallet).
    ///
    /// # Errors
    /// A message naming `paytype` and the allowed codes.
    pub fn with_paytype(mut self, paytype: &str) -> Result<Self, String> {
        self.channel = channel_for_paytype(paytype).ok_or_else(|| {
            format!(
                "key `paytype` must be \"11\" (Alipay, the default), \"21\" (Alipay) or \"22\" (WeChat), found `{paytype}`"
            )
        })?;
        self.paytype = paytype.to_string();
        Ok(self)
    }

    /// Sets the page the payer's browser returns to after paying.
    pub fn with_returnurl(mut self, returnurl: Option<String>) -> Self {
        self.returnurl = returnurl;
        self
    }
}

fn from_table(id: &str, raw: &toml::Table) -> Result<Arc<dyn Provider>, String> {
    let table = Table::new(raw, FIELDS)?;
    // The seed's uid is numeric (e.g. 10000001400000): accept it in quotes or bare.
    let uid = match raw.get("uid") {
        Some(toml::Value::String(s)) => s.trim().to_string(),
        Some(toml::Value::Integer(n)) => n.to_string(),
        Some(other) => {
            return Err(format!(
                "key `uid` must be the merchant id (商户ID), e.g. \"10000001400000\", found {}",
                other.type_str()
            ));
        }
        None => return Err("missing key `uid` (the merchant id, 商户ID)".into()),
    };
    // The key string is `uid=…&…`: a `&` or `=` in the id would change what is signed.
    if uid.is_empty() || !uid.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(format!(
            "key `uid` must be the merchant id (商户ID): letters and digits only, found `{uid}`"
        ));
    }
    let base_url = table
        .opt_url("base_url")?
        .unwrap_or_else(|| DEFAULT_BASE_URL.to_string());
    let token = Secret::new(table.str("token")?);
    let paytype = table
        .opt_str("paytype")?
        .unwrap_or_else(|| DEFAULT_PAYTYPE.to_string());
    let returnurl = table.opt_url("returnurl")?;
    if let (Some(url), Some(max)) = (&returnurl, limit("returnurl"))
        && url.len() > max
    {
        return Err(format!(
            "key `returnurl` may have at most {max} bytes (the provider's limit), found {}",
            url.len()
        ));
    }
    let account = Jings::new(id, &base_url, &uid, token)
        .with_paytype(paytype.trim())?
        .with_returnurl(returnurl);
    Ok(Arc::new(account))
}

/// `text` cut to at most `max` bytes on a character boundary.
fn truncate_bytes(text: &str, max: usize) -> &str {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.get(..end).unwrap_or_default()
}

impl Provider for Jings {
    fn id(&self) -> &str {
        &self.id
    }

    fn kind(&self) -> &'static str {
        KIND.name
    }

    fn display_name(&self) -> &'static str {
        DISPLAY_NAME
    }

    fn channels(&self) -> &[Channel] {
        std::slice::from_ref(&self.channel)
    }

    fn poll_limits(&self) -> PollLimits {
        PollLimits {
            min_interval: QUERY_INTERVAL,
        }
    }

    fn can_query(&self) -> bool {
        true
    }

    fn build_create(
        &self,
        order: &CreateOrder,
        ctx: &CallContext,
    ) -> Result<CreateStep, ProviderError> {
        if order.channel != self.channel {
            return Err(ProviderError::NotSupported("this channel"));
        }
        let paymoney = order.amount.to_yuan();
        let notifyurl = ctx.notify_url.as_str();
        let returnurl = self.returnurl.as_deref().unwrap_or(notifyurl);
        let ordername = truncate_bytes(&order.subject, limit("ordername").unwrap_or(100));
        let input = SignInput::Pay {
            uid: &self.uid,
            orderid: order.order_no.as_str(),
            ordername,
            paymoney: &paymoney,
            orderuid: "",
            paytype: &self.paytype,
            notifyurl,
            returnurl,
            orderinfo: "",
        };
        for (name, value) in input.fields() {
            if let Some(max) = limit(name)
                && value.len() > max
            {
                return Err(ProviderError::NotSupported(match name {
                    "notifyurl" => "a notify URL over 80 bytes (shorten [listener] public_url)",
                    "paymoney" => "an amount over 14 characters",
                    _ => "a field over the provider's length limit",
                }));
            }
        }
        let key = input.sign(&self.token);
        let mut fields: Vec<(String, String)> = input
            .fields()
            .into_iter()
            .map(|(name, value)| (name.to_string(), value.to_string()))
            .collect();
        fields.push(("key".into(), key));
        Ok(CreateStep::PayerForm(PayerForm {
            action: format!("{}{PAY_PATH}", self.base_url),
            fields,
        }))
    }

    fn parse_create(&self, _response: &HttpResponse) -> Result<CreateOutcome, ProviderError> {
        // The pay page is the payer's browser's business; the till never posts it.
        Err(ProviderError::NotSupported("a server-side create"))
    }

    fn build_query(
        &self,
        order: &OrderRef,
        _ctx: &CallContext,
    ) -> Result<HttpRequest, ProviderError> {
        let orderid = order.order_no.as_str();
        let key = SignInput::Query {
            orderid,
            uid: &self.uid,
        }
        .sign(&self.token);
        Ok(HttpRequest::get(format!(
            "{}{QUERY_PATH}?{}",
            self.base_url,
            query_string(&[("orderid", orderid), ("uid", &self.uid), ("key", &key)])
        )))
    }

    fn parse_query(&self, response: &HttpResponse) -> Result<QueryOutcome, ProviderError> {
        query_answer(response.status, &response.body)
    }

    fn verify_callback(&self, request: &CallbackRequest) -> Result<CallbackReport, ProviderError> {
        let params = request.params();
        let get = |name: &str| {
            let mut values = params.iter().filter(|(key, _)| key == name);
            match (values.next(), values.next()) {
                (Some((_, value)), None) => Ok(value.as_str()),
                (Some(_), Some(_)) => Err(ProviderError::Decode {
                    reason: format!("notify has `{name}` more than once"),
                }),
                (None, _) => Err(ProviderError::Decode {
                    reason: format!("notify has no `{name}`"),
                }),
            }
        };
        let received = get("key")?;
        let (orderid, realpay) = (get("orderid")?, get("realpay")?);
        let expected = SignInput::Notify {
            payid: get("payid")?,
            orderid,
            orderuid: get("orderuid")?,
            paymoney: get("paymoney")?,
            realpay,
        }
        .sign(&self.token);
        // Nothing of the notify is interpreted before its key matched.
        if !signatures_match(received, &expected) {
            return Err(ProviderError::BadSignature);
        }
        let order_no = OrderNo::new(orderid).map_err(|err| ProviderError::Decode {
            reason: err.to_string(),
        })?;
        let amount = Fen::parse_wire(realpay).map_err(|err| ProviderError::Decode {
            reason: format!("notify `realpay` `{}`: {err}", wire::excerpt(realpay)),
        })?;
        Ok(CallbackReport {
            order_no,
            state: ProviderState::Paid,
            raw_code: NOTIFY_CODE.into(),
            amount: Some(amount),
            // The key covers `realpay`: a different amount is a real one, flagged by the ledger.
            amount_signed: true,
        })
    }

    fn callback_ack(&self, ok: bool) -> CallbackAck {
        if ok {
            CallbackAck {
                status: 200,
                body: "success".into(),
            }
        } else {
            CallbackAck {
                status: 400,
                body: "fail".into(),
            }
        }
    }

    fn build_account_check(&self, ctx: &CallContext) -> Option<(HttpRequest, Duration)> {
        let reqtime = beijing_time(ctx.now_unix);
        let key = SignInput::Balance {
            uid: &self.uid,
            reqtime: &reqtime,
        }
        .sign(&self.token);
        let url = format!(
            "{}{BALANCE_PATH}?{}",
            self.base_url,
            query_string(&[("uid", &self.uid), ("reqtime", &reqtime), ("key", &key)])
        );
        Some((HttpRequest::get(url), BALANCE_INTERVAL))
    }

    fn parse_account_check(&self, response: &HttpResponse) -> Result<AccountStatus, ProviderError> {
        balance_answer(response.status, &response.body)
    }

    fn payer_browser_needed(&self) -> bool {
        true
    }
}
