//! igepay: the create is a form that the payer's browser posts to `payFor` (the provider
//! shows its own pay page), and payment is known only from the POST notify; the seed
//! documents no status query.
//!
//! Choices where the seed is silent (also in the README's provider table):
//! - The QR leads the payer's phone to the listener's bridge page, which posts the signed
//!   form from the phone; without `[listener] public_url` the QR is the signed `payFor` URL
//!   with the fields as query parameters (the seed says POST; a GET link is what a phone can
//!   follow from a QR).
//! - `order_uid` is not sent; `order_name` is sent only when the sale has a subject.
//! - `return_url` defaults to the notify URL (the seed requires one; the till has no page).
//! - The JSON create mode the seed mentions is not used: its URL and fields are unknown.
//! - The notify's signature covers `price`, so the paid amount is taken from it.

pub mod transformers;

use std::sync::Arc;
use std::time::Duration;

use self::transformers::{SignInput, channel_type, map_code};
use super::wire::{self, Table};
use super::{
    CallContext, CallbackAck, CallbackReport, CallbackRequest, CreateOrder, CreateOutcome,
    CreateStep, Field, HttpRequest, HttpResponse, OrderRef, PayerForm, PollLimits, Provider,
    ProviderError, ProviderKind, QueryOutcome,
};
use crate::model::{Channel, Fen, OrderNo};
use crate::secret::{Secret, signatures_match};

/// The registry line.
pub const KIND: ProviderKind = ProviderKind {
    name: "igepay",
    display_name: DISPLAY_NAME,
    fields: FIELDS,
    from_table,
};

/// The protocol's name for people.
const DISPLAY_NAME: &str = "igepay";

/// The keys of this protocol's `[[provider]]` table.
const FIELDS: &[Field] = &[
    Field::optional("base_url"),
    Field::required("uid"),
    Field::secret("token"),
    Field::optional("notify_url"),
    Field::optional("return_url"),
];

/// The production host from the seed.
pub const DEFAULT_BASE_URL: &str = "http://www.igepay.com";

const CHANNELS: &[Channel] = &[Channel::Alipay, Channel::Wechat];

/// One igepay merchant account.
#[derive(Debug, Clone)]
pub struct Igepay {
    id: String,
    base_url: String,
    uid: String,
    token: Secret,
    notify_url: Option<String>,
    return_url: Option<String>,
}

impl Igepay {
    /// An account; `base_url` without a trailing slash.
    pub fn new(id: &str, base_url: &str, uid: &str, token: Secret) -> Self {
        Igepay {
            id: id.to_string(),
            base_url: base_url.trim_end_matches('/').to_string(),
            uid: uid.to_string(),
            token,
            notify_url: None,
            return_url: None,
        }
    }

    /// Sets the notify and return URLs from the config.
    pub fn with_urls(mut self, notify_url: Option<String>, return_url: Option<String>) -> Self {
        self.notify_url = notify_url;
        self.return_url = return_url;
        self
    }
}

fn from_table(id: &str, raw: &toml::Table) -> Result<Arc<dyn Provider>, String> {
    let table = Table::new(raw, FIELDS)?;
    let uid = match raw.get("uid") {
        Some(toml::Value::String(s)) => s.trim().to_string(),
        Some(toml::Value::Integer(n)) => n.to_string(),
        Some(other) => {
            return Err(format!(
                "key `uid` must be the merchant uid (商户uid), e.g. \"10001\", found {}",
                other.type_str()
            ));
        }
        None => return Err("missing key `uid` (the merchant uid, 商户uid)".into()),
    };
    if uid.is_empty() || uid.len() > 10 || !uid.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "key `uid` must be the numeric merchant uid (up to 10 digits), found `{uid}`"
        ));
    }
    let base_url = table
        .opt_url("base_url")?
        .unwrap_or_else(|| DEFAULT_BASE_URL.to_string());
    let account = Igepay::new(id, &base_url, &uid, Secret::new(table.str("token")?))
        .with_urls(table.opt_url("notify_url")?, table.opt_url("return_url")?);
    Ok(Arc::new(account))
}

impl Provider for Igepay {
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
        // Never queried: there is no query.
        PollLimits {
            min_interval: Duration::from_secs(60),
        }
    }

    fn can_query(&self) -> bool {
        false
    }

    fn payer_browser_needed(&self) -> bool {
        true
    }

    fn build_create(
        &self,
        order: &CreateOrder,
        ctx: &CallContext,
    ) -> Result<CreateStep, ProviderError> {
        let kind =
            channel_type(order.channel).ok_or(ProviderError::NotSupported("this channel"))?;
        let price = order.amount.to_yuan();
        let notify_url = self.notify_url.as_deref().unwrap_or(&ctx.notify_url);
        let return_url = self.return_url.as_deref().unwrap_or(notify_url);
        // The seed's table order; optional fields only when sent.
        let mut params: Vec<(&str, &str)> = vec![
            ("uid", &self.uid),
            ("price", &price),
            ("type", kind),
            ("notify_url", notify_url),
            ("return_url", return_url),
            ("order_id", order.order_no.as_str()),
        ];
        if !order.subject.is_empty() {
            params.push(("order_name", &order.subject));
        }
        let key = SignInput::Create { params: &params }.sign(&self.token);
        let mut fields: Vec<(String, String)> = params
            .iter()
            .map(|(name, value)| ((*name).to_string(), (*value).to_string()))
            .collect();
        fields.push(("key".into(), key));
        Ok(CreateStep::PayerForm(PayerForm {
            action: format!("{}/Home/Pay/payFor", self.base_url),
            fields,
        }))
    }

    fn parse_create(&self, _response: &HttpResponse) -> Result<CreateOutcome, ProviderError> {
        Err(ProviderError::NotSupported("a server-side create"))
    }

    fn build_query(
        &self,
        _order: &OrderRef,
        _ctx: &CallContext,
    ) -> Result<HttpRequest, ProviderError> {
        Err(ProviderError::NotSupported("a status query"))
    }

    fn parse_query(&self, _response: &HttpResponse) -> Result<QueryOutcome, ProviderError> {
        Err(ProviderError::NotSupported("a status query"))
    }

    fn verify_callback(&self, request: &CallbackRequest) -> Result<CallbackReport, ProviderError> {
        let params = request.params();
        let get = |name: &str| {
            params
                .iter()
                .find(|(key, _)| key == name)
                .map(|(_, value)| value.as_str())
                .ok_or_else(|| ProviderError::Decode {
                    reason: format!("notify has no `{name}`"),
                })
        };
        let order_id = get("order_id")?;
        let price = get("price")?;
        let expected = SignInput::Notify { order_id, price }.sign(&self.token);
        if !signatures_match(get("sign")?, &expected) {
            return Err(ProviderError::BadSignature);
        }
        let order_no = OrderNo::new(order_id).map_err(|err| ProviderError::Decode {
            reason: err.to_string(),
        })?;
        let amount = Fen::parse_wire(price).map_err(|err| ProviderError::Decode {
            reason: format!("notify `price` `{}`: {err}", wire::excerpt(price)),
        })?;
        let code = get("code")?;
        Ok(CallbackReport {
            order_no,
            state: map_code(code.trim()),
            raw_code: code.to_string(),
            amount: Some(amount),
            amount_signed: true,
        })
    }

    fn callback_ack(&self, ok: bool) -> CallbackAck {
        CallbackAck {
            status: 200,
            body: if ok { "success" } else { "fail" }.into(),
        }
    }
}
