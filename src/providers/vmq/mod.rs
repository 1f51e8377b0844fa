//! V免签 (vmq, self-hosted; PROVIDERS.md §7): create at `{base_url}/createOrder`, status from
//! `getOrder`, close at `closeOrder` when staff cancel, the monitor phone's state from
//! `getState`, and the GET notify answered `success`.
//!
//! The merchant runs the server; an Android "monitor" app on the shop's phone relays wallet
//! notifications to it, and payments are matched by amount only. So the customer must pay
//! `reallyPrice` (the order's amount, nudged by a fen or more while another unpaid order
//! holds the same amount), which the till shows as the amount to pay.
//!
//! Invariant: an order is paid only by a notify whose signature checks out over the strings
//! exactly as received (the server prints amounts its own way: `0.1`, `10`, `10.0`), or by
//! `getOrder` state 1 or 2.
//!
//! Choices where PROVIDERS.md is silent:
//! - Every call accepts GET or POST: `createOrder` is a form POST (fields `payId`, `type`,
//!   `price`, `notifyUrl`, `isHtml=0`, `sign`), the others are GETs with query parameters.
//! - `param` is not sent (both servers then sign and echo it as ""); `returnUrl` is not sent
//!   (there is no payer's browser to send back). The subject is not sent: V免签 has no field
//!   for it.
//! - `price` is `Fen::to_yuan` (`12.30`), signed exactly as sent.
//! - `getOrder` is the status query (one call gives every state); `checkOrder` is not used:
//!   it only tells paid from unpaid and answers with a return link instead of a state.
//! - `getOrder` knows orders only by V免签's `orderId`, so when a create answer is lost the
//!   order cannot be looked up; the query then says so and the notify remains the way to
//!   learn of a payment.
//! - `state` -1 (expired or closed) maps to expired; 2 (paid, the server's notify failed) to
//!   paid.
//! - `closeOrder` is sent when staff cancel, with V免签's `orderId`; its answer is kept in the
//!   order's event log.
//! - `getState` is the account check, every [`MONITOR_CHECK_EVERY`], with `t` = Unix
//!   seconds: offline (0) or never bound (-1) refuses charges until it is back. The PHP
//!   server updates `jkstate` lazily (on create and heartbeat), so a phone that just went
//!   quiet may still read online; its `createOrder` then refuses with "监控端状态异常",
//!   shown in plain words.
//! - The notify: a missing `param` counts as ""; a signed field sent twice with different
//!   values is refused as ambiguous; a verified notify means paid (it is only sent on
//!   payment and carries no state); its `reallyPrice` is the paid amount (signed).
//! - No poll limit (self-hosted): at most one query a second.

pub mod transformers;

use std::sync::Arc;
use std::time::Duration;

use self::transformers::{SignInput, envelope, is_not_found, order_data, pay_type};
use super::wire::{self, Table};
use super::{
    AccountStatus, CallContext, CallbackAck, CallbackReport, CallbackRequest, CreateOrder,
    CreateOutcome, CreateStep, Field, HttpRequest, HttpResponse, OrderRef, PollLimits, Provider,
    ProviderError, ProviderKind, QueryOutcome,
};
use crate::model::{Channel, Fen, OrderNo, ProviderState, QrPayload};
use crate::secret::{Secret, signatures_match};

/// The registry line.
pub const KIND: ProviderKind = ProviderKind {
    name: "vmq",
    display_name: DISPLAY_NAME,
    fields: FIELDS,
    from_table,
};

/// The protocol's name for people.
const DISPLAY_NAME: &str = "V免签";

/// The keys of this protocol's `[[provider]]` table.
const FIELDS: &[Field] = &[Field::required("base_url"), Field::secret("key")];

/// How often the monitor phone's state is asked (`getState`): often enough that the status
/// bar and the charge check follow the phone within seconds; a self-hosted server has no
/// limit.
pub const MONITOR_CHECK_EVERY: Duration = Duration::from_secs(15);

const CHANNELS: &[Channel] = &[Channel::Alipay, Channel::Wechat];

/// One V免签 server.
#[derive(Debug, Clone)]
pub struct Vmq {
    id: String,
    base_url: String,
    key: Secret,
}

impl Vmq {
    /// An account: the server's base URL (without a trailing slash) and its 通讯密钥.
    pub fn new(id: &str, base_url: &str, key: Secret) -> Self {
        Vmq {
            id: id.to_string(),
            base_url: base_url.trim_end_matches('/').to_string(),
            key,
        }
    }

    /// `{base_url}/{path}?{query}`, the values form-encoded.
    fn url(&self, path: &str, query: &[(&str, &str)]) -> String {
        let query = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(query)
            .finish();
        format!("{}/{path}?{query}", self.base_url)
    }
}

fn from_table(id: &str, raw: &toml::Table) -> Result<Arc<dyn Provider>, String> {
    let table = Table::new(raw, FIELDS)?;
    let base_url = table.url("base_url").map_err(|err| {
        format!("{err}: the shop's own V免签 server, e.g. \"https://vmq.example.com\"")
    })?;
    let key = table
        .str("key")
        .map_err(|err| format!("{err}: the 通讯密钥 from the V免签 back office"))?;
    Ok(Arc::new(Vmq::new(id, &base_url, Secret::new(key))))
}

/// Reads a callback's field: `None` when absent, an error when sent twice with different
/// values (which of them would the signature cover?).
fn single<'a>(
    params: &'a [(String, String)],
    name: &str,
) -> Result<Option<&'a str>, ProviderError> {
    let mut values = params
        .iter()
        .filter(|(key, _)| key == name)
        .map(|(_, value)| value.as_str());
    let first = values.next();
    if values.any(|other| Some(other) != first) {
        return Err(ProviderError::Decode {
            reason: format!("notify has two different `{name}` values"),
        });
    }
    Ok(first)
}

impl Provider for Vmq {
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
        CHANNELS
    }

    fn poll_limits(&self) -> PollLimits {
        PollLimits {
            min_interval: Duration::from_secs(1),
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
        let pay_type =
            pay_type(order.channel).ok_or(ProviderError::NotSupported("this channel"))?;
        let price = order.amount.to_yuan();
        let sign = SignInput::Create {
            pay_id: order.order_no.as_str(),
            // Not sent: both servers sign an absent `param` as "".
            param: "",
            pay_type,
            price: &price,
        }
        .sign(&self.key);
        Ok(CreateStep::Server(HttpRequest::post_form(
            format!("{}/createOrder", self.base_url),
            &[
                ("payId", order.order_no.as_str()),
                ("type", pay_type),
                ("price", &price),
                ("notifyUrl", &ctx.notify_url),
                // 0: a JSON answer (1 would be a redirect script to the server's pay page).
                ("isHtml", "0"),
                ("sign", &sign),
            ],
        )))
    }

    fn parse_create(&self, response: &HttpResponse) -> Result<CreateOutcome, ProviderError> {
        let value = envelope(response.status, &response.body)?;
        let data = order_data(&value)?;
        let missing = |name: &str| ProviderError::Decode {
            reason: format!("create answer has no `{name}`"),
        };
        let order_id = data.order_id.ok_or_else(|| missing("orderId"))?;
        let pay_url = data.pay_url.ok_or_else(|| missing("payUrl"))?;
        // Payments are matched by amount: without reallyPrice the customer cannot be told
        // what to pay.
        let really_price = data.really_price.ok_or_else(|| missing("reallyPrice"))?;
        if really_price == Fen(0) {
            return Err(ProviderError::Decode {
                reason: "create answer asks for `reallyPrice` 0".into(),
            });
        }
        Ok(CreateOutcome {
            provider_order_id: Some(order_id),
            qr: Some(QrPayload::Text(pay_url)),
            payable: Some(really_price),
            payer_page: None,
            payer_browser: false,
            timeout_secs: data.timeout_secs,
        })
    }

    fn build_query(
        &self,
        order: &OrderRef,
        _ctx: &CallContext,
    ) -> Result<HttpRequest, ProviderError> {
        let order_id = order.provider_order_id.as_deref().ok_or(ProviderError::NotSupported(
            "a look-up by our order number (V免签 knows an order only by its own orderId, which was in the lost create answer; its notify still reaches the till)",
        ))?;
        Ok(HttpRequest::get(
            self.url("getOrder", &[("orderId", order_id)]),
        ))
    }

    fn parse_query(&self, response: &HttpResponse) -> Result<QueryOutcome, ProviderError> {
        match envelope(response.status, &response.body) {
            Ok(value) => transformers::status_report(&value).map(QueryOutcome::Report),
            // "云端订单编号不存在": the server has no order with that id.
            Err(ProviderError::Rejected { message, .. }) if is_not_found(&message) => {
                Ok(QueryOutcome::NotFound { message })
            }
            Err(err) => Err(err),
        }
    }

    fn verify_callback(&self, request: &CallbackRequest) -> Result<CallbackReport, ProviderError> {
        let params = request.params();
        let need = |name: &str| {
            single(&params, name)?.ok_or_else(|| ProviderError::Decode {
                reason: format!("notify has no `{name}`"),
            })
        };
        let sign = need("sign")?;
        let pay_id = need("payId")?;
        let param = single(&params, "param")?.unwrap_or_default();
        let pay_type = need("type")?;
        let price = need("price")?;
        let really_price = need("reallyPrice")?;
        let expected = SignInput::Notify {
            pay_id,
            param,
            pay_type,
            price,
            really_price,
        }
        .sign(&self.key);
        if !signatures_match(sign, &expected) {
            return Err(ProviderError::BadSignature);
        }
        // Only now, with the signature checked, are the fields read.
        let order_no = OrderNo::new(pay_id).map_err(|err| ProviderError::Decode {
            reason: err.to_string(),
        })?;
        let amount = Fen::parse_wire(really_price).map_err(|err| ProviderError::Decode {
            reason: format!(
                "notify `reallyPrice` `{}`: {err}",
                wire::excerpt(really_price)
            ),
        })?;
        Ok(CallbackReport {
            order_no,
            // The server sends its notify only when a payment matched the order (state 1).
            state: ProviderState::Paid,
            raw_code: "1".into(),
            amount: Some(amount),
            // reallyPrice is one of the signed fields.
            amount_signed: true,
        })
    }

    fn callback_ack(&self, ok: bool) -> CallbackAck {
        // The server wants exactly `success` and never retries; anything else makes it set
        // state 2, which a query still reads as paid.
        CallbackAck {
            status: 200,
            body: if ok { "success" } else { "fail" }.into(),
        }
    }

    fn build_account_check(&self, ctx: &CallContext) -> Option<(HttpRequest, Duration)> {
        let t = ctx.now_unix.to_string();
        let sign = SignInput::State { t: &t }.sign(&self.key);
        Some((
            HttpRequest::get(self.url("getState", &[("t", &t), ("sign", &sign)])),
            MONITOR_CHECK_EVERY,
        ))
    }

    fn parse_account_check(&self, response: &HttpResponse) -> Result<AccountStatus, ProviderError> {
        let value = envelope(response.status, &response.body)?;
        transformers::monitor_status(&value)
    }

    fn build_close(&self, order: &OrderRef, _ctx: &CallContext) -> Option<HttpRequest> {
        let order_id = order.provider_order_id.as_deref()?;
        let sign = SignInput::Close { order_id }.sign(&self.key);
        Some(HttpRequest::get(self.url(
            "closeOrder",
            &[("orderId", order_id), ("sign", &sign)],
        )))
    }

    fn parse_close(&self, response: &HttpResponse) -> Result<(), ProviderError> {
        envelope(response.status, &response.body).map(|_| ())
    }
}
