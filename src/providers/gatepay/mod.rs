//! gatepay.io: create at `POST /api/anypay/create` (or the cloud variant's
//! `POST /api/cloudpay/create`), the QR from the create answer, status from the signed
//! `GET /api/order/check`, and the signed notify answered `success`/`fail`.
//!
//! Invariant: an order is paid only by a notify whose double-MD5 signature checks out over
//! the strings exactly as received, or by an explicit paid `order_status` (see below).
//!
//! Choices where the seed (002) and PROVIDERS.md §3 are silent:
//! - `custom` is the config's `custom` text, default empty: a till knows no customer, and
//!   [`CreateOrder`] carries no operator. It is sent (and signed) even when empty; gatepay
//!   echoes it as the notify's `extend`. If an account refuses an empty one with 105, set
//!   `custom = "shop"` in the config.
//! - `notify_url` is the listener's URL from [`CallContext`] (not signed, as the seed says);
//!   `return_url` is sent only when configured. The cloud variant's field table has neither
//!   (its URLs live in gatepay's backend, and 106 refuses undocumented parameters), so the
//!   cloud variant sends neither and relies on the backend setting and on the query.
//! - The cloud variant offers Alipay only (`cloud.md`), queries at its own host
//!   (`https://cloud.gatepay.io/api/order/check`, INFERRED: the same path on the cloud host),
//!   and its answer has no `qrcode_body`.
//! - The QR is `pay_url` (gatepay's hosted page, not the wallet's own QR), rendered locally;
//!   without it, the `qrcode_body` picture. So [`Provider::payer_browser_needed`] is true.
//! - `order_status`: only `expired` is public. Paid is only `paid`/`success`/`已支付`/
//!   `支付成功` and pending only `unpaid`/`pending`/`waiting`/`未支付`/`待支付` (all
//!   INFERRED, see [`transformers::map_order_status`]); anything else is unknown and leaves
//!   the order as it is, so a paid order the query cannot name is still found by the notify.
//! - The create answer names no order id (`pay_url`'s `id` is a page id); the provider order
//!   id is the query's `data.order_id`, the same number the notify's `order_id` carries.
//! - The notify: GET or POST form (docs changed between revisions); a missing `extend` counts
//!   as empty (the SDK's PHP example concatenates a missing field as ""); a signed field sent
//!   twice with different values is refused as ambiguous; the paid amount is `realprice`,
//!   which the signature covers; every notify is a payment-success notify (the protocol has
//!   no state field), so a verified one means paid.
//! - Polling: no limit is documented; we ask at most every 2 s (plans are capped, error 110,
//!   and whether queries count is unknown). No order lifetime is stated, so the config's
//!   `order_timeout_secs` applies.

pub mod transformers;

use std::sync::Arc;
use std::time::Duration;

use self::transformers::{Endpoint, SignInput, envelope, pay_type};
use super::health::FailureKind;
use super::wire::{self, Table};
use super::{
    CallContext, CallbackAck, CallbackReport, CallbackRequest, CreateOrder, CreateOutcome,
    CreateStep, Field, HttpRequest, HttpResponse, OrderRef, PollLimits, Provider, ProviderError,
    ProviderKind, QueryOutcome,
};
use crate::model::{Channel, Fen, OrderNo, ProviderState};
use crate::secret::{Secret, signatures_match};

/// The registry line.
pub const KIND: ProviderKind = ProviderKind {
    name: "gatepay",
    display_name: DISPLAY_NAME,
    fields: FIELDS,
    from_table,
};

/// The protocol's name for people.
const DISPLAY_NAME: &str = "gatepay.io";

/// The keys of this protocol's `[[provider]]` table.
const FIELDS: &[Field] = &[
    Field::optional("base_url"),
    Field::required("appkey"),
    Field::secret("appsecret"),
    Field::optional("variant"),
    Field::optional("custom"),
    Field::optional("return_url"),
];

/// The any-amount API's host (seed 002).
pub const DEFAULT_BASE_URL: &str = "https://gatepay.io";

/// The cloud API's host (seed 002, `cloud.md`).
pub const CLOUD_BASE_URL: &str = "https://cloud.gatepay.io";

const CHANNELS: &[Channel] = &[Channel::Alipay, Channel::Wechat];
const CLOUD_CHANNELS: &[Channel] = &[Channel::Alipay];

/// Which create API an account uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Variant {
    /// 任意金额支付接口: `api/anypay/create`, Alipay and WeChat, `notify_url` per order.
    AnyPay,
    /// 云端支付接口: `api/cloudpay/create`, Alipay only, URLs set in gatepay's backend.
    Cloud,
}

/// One gatepay.io merchant account.
#[derive(Debug, Clone)]
pub struct Gatepay {
    id: String,
    base_url: String,
    variant: Variant,
    appkey: String,
    appsecret: Secret,
    custom: String,
    return_url: Option<String>,
}

impl Gatepay {
    /// An account; `base_url` without a trailing slash. `custom` starts empty.
    pub fn new(
        id: &str,
        base_url: &str,
        variant: Variant,
        appkey: &str,
        appsecret: Secret,
    ) -> Self {
        Gatepay {
            id: id.to_string(),
            base_url: base_url.trim_end_matches('/').to_string(),
            variant,
            appkey: appkey.to_string(),
            appsecret,
            custom: String::new(),
            return_url: None,
        }
    }

    /// Sets the `custom` text sent with every order (echoed back as the notify's `extend`).
    pub fn with_custom(mut self, custom: &str) -> Self {
        self.custom = custom.to_string();
        self
    }

    /// Sets the `return_url` sent with every order (any-amount API only).
    pub fn with_return_url(mut self, return_url: Option<String>) -> Self {
        self.return_url = return_url;
        self
    }

    /// The create API this account uses.
    pub fn variant(&self) -> Variant {
        self.variant
    }
}

fn from_table(id: &str, raw: &toml::Table) -> Result<Arc<dyn Provider>, String> {
    let table = Table::new(raw, FIELDS)?;
    let variant = match table.opt_str("variant")?.as_deref() {
        None | Some("anypay") => Variant::AnyPay,
        Some("cloud") => Variant::Cloud,
        Some(other) => {
            return Err(format!(
                "key `variant` must be \"cloud\" (云端支付, cloud.gatepay.io, Alipay only) or \"anypay\" \
                 (任意金额支付, the default when the key is left out), found `{other}`"
            ));
        }
    };
    let base_url = match table.opt_url("base_url")? {
        Some(url) => url,
        None if variant == Variant::Cloud => CLOUD_BASE_URL.to_string(),
        None => DEFAULT_BASE_URL.to_string(),
    };
    let appkey = table.str("appkey")?;
    if appkey.chars().any(char::is_whitespace) {
        return Err(
            "key `appkey` must not contain spaces (copy it from gatepay's backend, 账户设置)"
                .into(),
        );
    }
    let appsecret = Secret::new(table.str("appsecret")?);
    let return_url = table.opt_url("return_url")?;
    if variant == Variant::Cloud && return_url.is_some() {
        return Err(
            "key `return_url` is not part of the cloud API (set it in gatepay's backend); remove it or drop `variant = \"cloud\"`"
                .into(),
        );
    }
    let custom = table.opt_str("custom")?.unwrap_or_default();
    Ok(Arc::new(
        Gatepay::new(id, &base_url, variant, &appkey, appsecret)
            .with_custom(&custom)
            .with_return_url(return_url),
    ))
}

impl Provider for Gatepay {
    fn id(&self) -> &str {
        &self.id
    }

    fn kind(&self) -> &'static str {
        KIND.name
    }

    fn display_name(&self) -> &'static str {
        match self.variant {
            Variant::AnyPay => DISPLAY_NAME,
            Variant::Cloud => "gatepay.io 云端",
        }
    }

    fn channels(&self) -> &[Channel] {
        match self.variant {
            Variant::AnyPay => CHANNELS,
            Variant::Cloud => CLOUD_CHANNELS,
        }
    }

    fn poll_limits(&self) -> PollLimits {
        // No limit is documented for `order/check` (PROVIDERS.md counts it among the cheap
        // queries). One second, as for ispay.in, keeps a payment found by polling within
        // about half a second of it on average (the till's speed target: median ≤ 0.7 s).
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
        if !self.channels().contains(&order.channel) {
            return Err(ProviderError::NotSupported("this channel"));
        }
        let pay_type =
            pay_type(order.channel).ok_or(ProviderError::NotSupported("this channel"))?;
        let price = order.amount.to_yuan();
        let sign = SignInput::Create {
            appkey: &self.appkey,
            price: &price,
            pay_type,
            out_order_id: order.order_no.as_str(),
            custom: &self.custom,
        }
        .sign(&self.appsecret);
        let mut fields: Vec<(&str, &str)> = vec![
            ("appkey", &self.appkey),
            ("price", &price),
            ("type", pay_type),
            ("out_order_id", order.order_no.as_str()),
            ("custom", &self.custom),
            ("sign", &sign),
        ];
        let path = match self.variant {
            Variant::AnyPay => {
                fields.push(("notify_url", &ctx.notify_url));
                if let Some(return_url) = &self.return_url {
                    fields.push(("return_url", return_url));
                }
                "api/anypay/create"
            }
            Variant::Cloud => "api/cloudpay/create",
        };
        Ok(CreateStep::Server(HttpRequest::post_form(
            format!("{}/{path}", self.base_url),
            &fields,
        )))
    }

    fn parse_create(&self, response: &HttpResponse) -> Result<CreateOutcome, ProviderError> {
        let value = envelope(Endpoint::Create, response.status, &response.body)?;
        let data = value.get("data").ok_or_else(|| ProviderError::Decode {
            reason: "create answer has no `data`".into(),
        })?;
        let qr = transformers::qr_payload(data).ok_or_else(|| ProviderError::Decode {
            reason: "create answer has neither an http(s) `pay_url` nor a readable `qrcode_body`"
                .into(),
        })?;
        Ok(CreateOutcome {
            qr: Some(qr),
            ..CreateOutcome::default()
        })
    }

    fn build_query(
        &self,
        order: &OrderRef,
        _ctx: &CallContext,
    ) -> Result<HttpRequest, ProviderError> {
        let out_order_id = order.order_no.as_str();
        let sign = SignInput::Query {
            appkey: &self.appkey,
            out_order_id,
        }
        .sign(&self.appsecret);
        let query = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("appkey", &self.appkey)
            .append_pair("out_order_id", out_order_id)
            .append_pair("sign", &sign)
            .finish();
        Ok(HttpRequest::get(format!(
            "{}/api/order/check?{query}",
            self.base_url
        )))
    }

    fn parse_query(&self, response: &HttpResponse) -> Result<QueryOutcome, ProviderError> {
        match envelope(Endpoint::Query, response.status, &response.body) {
            Ok(value) => transformers::status_report(&value).map(QueryOutcome::Report),
            Err(ProviderError::Rejected { code, message })
                if code.trim() == transformers::CODE_NO_SUCH_ORDER.to_string() =>
            {
                Ok(QueryOutcome::NotFound { message })
            }
            Err(err) => Err(err),
        }
    }

    fn verify_callback(&self, request: &CallbackRequest) -> Result<CallbackReport, ProviderError> {
        let params = request.params();
        // A signed field must have one value: which of two would the signature cover?
        let get = |name: &str| -> Result<Option<&str>, ProviderError> {
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
        };
        let need = |name: &str| {
            get(name)?.ok_or_else(|| ProviderError::Decode {
                reason: format!("notify has no `{name}`"),
            })
        };
        let sign = need("sign")?;
        let order_id = need("order_id")?;
        let out_order_id = need("out_order_id")?;
        let price = need("price")?;
        let realprice = need("realprice")?;
        let pay_type = need("type")?;
        let paytime = need("paytime")?;
        let extend = get("extend")?.unwrap_or_default();
        let expected = SignInput::Notify {
            appkey: &self.appkey,
            order_id,
            out_order_id,
            price,
            realprice,
            pay_type,
            paytime,
            extend,
        }
        .sign(&self.appsecret);
        if !signatures_match(sign, &expected) {
            return Err(ProviderError::BadSignature);
        }
        // Only now, with the signature checked, are the fields read.
        let order_no = OrderNo::new(out_order_id).map_err(|err| ProviderError::Decode {
            reason: err.to_string(),
        })?;
        let amount = Fen::parse_wire(realprice).map_err(|err| ProviderError::Decode {
            reason: format!("notify `realprice` `{}`: {err}", wire::excerpt(realprice)),
        })?;
        Ok(CallbackReport {
            order_no,
            // The notify is gatepay's "payment succeeded" message; it has no state field.
            state: ProviderState::Paid,
            raw_code: "paid".into(),
            amount: Some(amount),
            // realprice is one of the signed fields.
            amount_signed: true,
        })
    }

    fn callback_ack(&self, ok: bool) -> CallbackAck {
        CallbackAck {
            status: 200,
            body: if ok { "success" } else { "fail" }.into(),
        }
    }

    fn payer_browser_needed(&self) -> bool {
        // The QR opens gatepay's pay page, which shows the wallet QR (WeChat payers then
        // long-press it inside WeChat, per gatepay's FAQ).
        true
    }

    fn refusal_kind(&self, code: &str, _message: &str) -> Option<FailureKind> {
        code.trim()
            .parse()
            .ok()
            .and_then(transformers::refusal_kind)
    }
}
